//! The printer layer: every view goes through [`Printer::print`] for every `-o` format.
//!
//! A view is a struct with a stable, documented schema (docs/contracts.md). `-o json|yaml`
//! serialise it; `-o table|wide` call its [`View::write_text`]. Output formats added later
//! (`name`, `jsonpath`, `custom-columns`) plug in here, once, for every view.

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use crate::Context;
use crate::cli::OutputFormat;
use crate::error::Result;
use crate::render::write_structured;

/// What a text view needs besides itself.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    /// `-o wide`: extra columns.
    pub wide: bool,
    /// Whether ANSI colour may be written.
    pub color: bool,
    /// `-A`: views listing several namespaces add a NAMESPACE column.
    pub all_namespaces: bool,
    /// The instant ages are counted to.
    pub now: Timestamp,
}

/// A view that can be printed: serialisable for `-o json|yaml`, drawable as text.
pub trait View: Serialize {
    /// The `table`/`wide` form.
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()>;

    /// The `json`/`yaml` form; by default the view itself, serialised.
    fn write_structured(&self, out: &mut impl Write, format: OutputFormat) -> Result<()> {
        write_structured(out, format, self)
    }
}

/// Prints views in one `-o` format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: OutputFormat,
    style: TextStyle,
}

impl Printer {
    /// A printer for `format`, ages counted to now, one namespace.
    pub fn new(format: OutputFormat, color: bool) -> Self {
        Self {
            format,
            style: TextStyle {
                wide: format == OutputFormat::Wide,
                color,
                all_namespaces: false,
                now: Timestamp::now(),
            },
        }
    }

    /// The printer the global flags ask for (`-o`, colour, `-A`).
    pub fn for_context(ctx: &Context) -> Self {
        Self::new(ctx.output, ctx.color).all_namespaces(ctx.all_namespaces)
    }

    /// Add a NAMESPACE column where a view lists several namespaces.
    pub fn all_namespaces(mut self, all: bool) -> Self {
        self.style.all_namespaces = all;
        self
    }

    /// Count ages to `now` (tests pin it).
    pub fn at(mut self, now: Timestamp) -> Self {
        self.style.now = now;
        self
    }

    pub fn style(&self) -> &TextStyle {
        &self.style
    }

    /// Write `view` in this printer's format.
    pub fn print<V: View>(&self, out: &mut impl Write, view: &V) -> Result<()> {
        if self.format.is_structured() {
            view.write_structured(out, self.format)
        } else {
            view.write_text(out, &self.style)
        }
    }
}
