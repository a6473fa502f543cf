//! Rendering helpers every view shares: kubectl-like tables, coloured text, the unified diff
//! writer, and the JSON/YAML encoding, all to `impl Write`. Views reach them through
//! [`crate::printer`].

use std::io::Write;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::{Error, Result};

/// `apiVersion` of every structured view (docs/contracts.md).
pub const VIEW_API_VERSION: &str = "sts.dev/v1alpha1";

/// Write `view` as pretty JSON or YAML. Callers only use this for structured formats.
pub fn write_structured<T: Serialize + ?Sized>(
    out: &mut impl Write,
    format: OutputFormat,
    view: &T,
) -> Result<()> {
    match format {
        OutputFormat::Yaml => {
            let text = serde_yaml::to_string(view)?;
            out.write_all(text.as_bytes())?;
        }
        _ => {
            serde_json::to_writer_pretty(&mut *out, view).map_err(|e| {
                // Keep write failures (e.g. a closed pipe) distinguishable from encoding bugs.
                if e.is_io() {
                    Error::Output(e.into())
                } else {
                    Error::Json(e)
                }
            })?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A borderless, left-aligned table like kubectl's, never wrapped (pipes and `grep` stay usable).
pub fn new_table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        // Whether colour is allowed is decided per cell by `cell(..)`, from `Context::color`;
        // without this comfy-table would drop styles whenever *its* stdout check fails,
        // which makes rendering into a buffer untestable.
        .enforce_styling()
        .set_header(header.into_iter().map(|h| Cell::new(h.into())));
    // comfy-table pads each column with one space on both sides; kubectl uses 3 spaces between
    // columns and none before the first.
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

/// Write a table with trailing whitespace trimmed from each line.
pub fn write_table(out: &mut impl Write, table: &Table) -> Result<()> {
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A cell, coloured only when colour is allowed.
pub fn cell(text: impl Into<String>, color: Option<Color>, allow_color: bool) -> Cell {
    let cell = Cell::new(text.into());
    match (color, allow_color) {
        (Some(c), true) => cell.fg(c),
        _ => cell,
    }
}

/// The governing Service of a StatefulSet, as shown in `list` and `inspect` views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceView {
    pub name: Option<String>,
    pub health: sts_model::service_health::ServiceHealth,
}

/// Colour for a Service health.
pub fn health_color(health: sts_model::service_health::ServiceHealth) -> Option<Color> {
    use sts_model::service_health::ServiceHealth as H;
    match health {
        H::Ok => Some(Color::Green),
        H::Missing | H::NotHeadless | H::SelectorMismatch => Some(Color::Red),
        H::NotSet => Some(Color::Yellow),
    }
}

/// Colour for a rollout state.
pub fn rollout_color(state: sts_model::rollout::RolloutState) -> Option<Color> {
    use sts_model::rollout::RolloutState as R;
    match state {
        R::Complete => Some(Color::Green),
        R::Rolling | R::PausedByPartition => Some(Color::Yellow),
        R::Stalled => Some(Color::Red),
    }
}

/// `text` in the ANSI colour `c` when colour is allowed, else as it is.
pub fn paint(text: &str, c: Option<Color>, allow_color: bool) -> String {
    match (allow_color, c) {
        (true, Some(c)) => {
            let style = anstyle::Style::new().fg_color(Some(ansi(c)));
            format!("{style}{text}{style:#}")
        }
        _ => text.to_string(),
    }
}

fn ansi(c: Color) -> anstyle::Color {
    use anstyle::AnsiColor as A;
    anstyle::Color::Ansi(match c {
        Color::Red => A::Red,
        Color::Green => A::Green,
        Color::Yellow => A::Yellow,
        Color::Cyan => A::Cyan,
        _ => A::White,
    })
}

/// Writes unified diff text, colouring lines like `git diff` when `color` is set.
pub fn write_unified(out: &mut impl Write, text: &str, color: bool) -> Result<()> {
    use anstyle::{AnsiColor, Style};
    for line in text.lines() {
        let style = if !color {
            Style::new()
        } else if line.starts_with("+++") || line.starts_with("---") {
            Style::new().bold()
        } else if line.starts_with("@@") {
            Style::new().fg_color(Some(AnsiColor::Cyan.into()))
        } else if line.starts_with('+') {
            Style::new().fg_color(Some(AnsiColor::Green.into()))
        } else if line.starts_with('-') {
            Style::new().fg_color(Some(AnsiColor::Red.into()))
        } else {
            Style::new()
        };
        // An empty Style renders as nothing, so plain output carries no escape codes.
        writeln!(out, "{style}{line}{style:#}")?;
    }
    Ok(())
}

/// The field names of a JSON object, sorted: the view tests pin each view's schema with it.
#[cfg(test)]
pub fn sorted_keys(value: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}
