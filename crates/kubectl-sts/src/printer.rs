//! The printer layer: every view goes through [`Printer::print`] for every `-o` format.
//!
//! A view is a struct with a stable, documented schema (docs/contracts.md; JSON Schemas in
//! docs/schemas/). `-o json|yaml` serialise it; `-o table|wide` call its [`View::write_text`];
//! `-o jsonpath=…` and `-o custom-columns=…` read its JSON form ([`crate::output`]); `-o name`
//! asks it for [`View::object_names`]; `--sort-by` reorders its rows ([`View::rows_field`],
//! [`View::reordered`]) before any of these. A new view gets json, yaml, jsonpath and
//! custom-columns (one row for the whole view) by implementing `write_text` alone; the other
//! methods have defaults that make `-o name`, `--sort-by` and `-L`/`--show-labels` a usage
//! error naming the view's kind.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::Context;
use crate::cli::{GlobalArgs, OutputFormat};
use crate::error::{Error, Result};
use crate::output::{JsonPathExpr, Output, label_header, labels_cell, sort_order};
use crate::render::{new_table, write_structured};

/// What the printer takes from the command line: `-o`, `--sort-by`, `--no-headers`, `-L`,
/// `--show-labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintOptions {
    pub output: Output,
    pub sort_by: Option<JsonPathExpr>,
    pub no_headers: bool,
    pub label_columns: Vec<String>,
    pub show_labels: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        Self {
            output: Output::Table,
            sort_by: None,
            no_headers: false,
            label_columns: Vec::new(),
            show_labels: false,
        }
    }
}

impl PrintOptions {
    pub fn from_args(args: &GlobalArgs) -> Self {
        Self {
            output: args.output.clone(),
            sort_by: args.sort_by.clone(),
            no_headers: args.no_headers,
            label_columns: args
                .label_columns
                .iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            show_labels: args.show_labels,
        }
    }
}

/// What a text view needs besides itself.
#[derive(Debug, Clone)]
pub struct TextStyle {
    /// `-o wide`: extra columns.
    pub wide: bool,
    /// Whether ANSI colour may be written.
    pub color: bool,
    /// `-A`: views listing several namespaces add a NAMESPACE column.
    pub all_namespaces: bool,
    /// The instant ages are counted to.
    pub now: Timestamp,
    /// `--no-headers`: tables print no header line ([`TextStyle::write_table`]).
    pub no_headers: bool,
    /// `-L KEY,...`: a column per label key, after the view's own columns.
    pub label_columns: Vec<String>,
    /// `--show-labels`: a LABELS column, last.
    pub show_labels: bool,
}

impl TextStyle {
    /// Headers of the `-L` and `--show-labels` columns, to append to a table's header.
    pub fn label_headers(&self) -> Vec<String> {
        let mut headers: Vec<String> = self.label_columns.iter().map(|k| label_header(k)).collect();
        if self.show_labels {
            headers.push("LABELS".into());
        }
        headers
    }

    /// One row's `-L` and `--show-labels` cells for an object with `labels` (an absent label is
    /// an empty cell, as in kubectl).
    pub fn label_cells(&self, labels: &BTreeMap<String, String>) -> Vec<String> {
        let mut cells: Vec<String> = self
            .label_columns
            .iter()
            .map(|k| labels.get(k).cloned().unwrap_or_default())
            .collect();
        if self.show_labels {
            cells.push(labels_cell(labels));
        }
        cells
    }

    /// Write a table made with [`crate::render::new_table`], without its header line under
    /// `--no-headers`.
    pub fn write_table(&self, out: &mut impl Write, table: &comfy_table::Table) -> Result<()> {
        let skip = usize::from(self.no_headers);
        for line in table.lines().skip(skip) {
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A view that can be printed: serialisable for `-o json|yaml`, drawable as text.
pub trait View: Serialize {
    /// The `table`/`wide` form.
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()>;

    /// The `json`/`yaml` form; by default the view itself, serialised.
    fn write_structured(&self, out: &mut impl Write, format: OutputFormat) -> Result<()> {
        write_structured(out, format, self)
    }

    /// `-o name`: each object the view shows, as kubectl names it —
    /// `<resource>[.<group>]/<name>` (`statefulset.apps/web`, `persistentvolumeclaim/data-web-3`,
    /// `controllerrevision.apps/web-6c5f8b9d4`), in the order the view shows them. `None` (the
    /// default): the view shows no object of its own (a diff), and `-o name` is a usage error.
    fn object_names(&self) -> Option<Vec<String>> {
        None
    }

    /// For list-like views, the field of the JSON view that holds the rows (`"items"`,
    /// `"revisions"`): `-o custom-columns` prints one line per element and `--sort-by` sorts
    /// them. `None` (the default): the whole view is one row, and `--sort-by` is a usage error.
    fn rows_field(&self) -> Option<&'static str> {
        None
    }

    /// A copy with the rows in `order` (`order[i]` = the index, in [`View::rows_field`], of the
    /// row to put at `i`), every output format then printing that order. Views with a
    /// `rows_field` implement it; `None` (the default) makes `--sort-by` a usage error.
    fn reordered(&self, _order: &[usize]) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// Whether the `table`/`wide` form adds the `-L`/`--show-labels` columns
    /// ([`TextStyle::label_headers`], [`TextStyle::label_cells`]). `false` (the default): those
    /// flags are a usage error with `table`/`wide`.
    fn shows_labels(&self) -> bool {
        false
    }
}

/// Reorder `rows` by `order` (as [`View::reordered`] gets it); indices out of range are
/// skipped, so a wrong order can lose rows but never panic.
pub fn reorder<T: Clone>(rows: &[T], order: &[usize]) -> Vec<T> {
    order.iter().filter_map(|&i| rows.get(i).cloned()).collect()
}

/// Prints views in one `-o` format.
#[derive(Debug, Clone)]
pub struct Printer {
    output: Output,
    sort_by: Option<JsonPathExpr>,
    style: TextStyle,
}

impl Printer {
    /// A printer for `format`, ages counted to now, one namespace. `jsonpath` and
    /// `custom-columns` need their template: use [`Printer::with_output`].
    pub fn new(format: OutputFormat, color: bool) -> Self {
        Self::with_output(Output::from(format), color)
    }

    /// A printer for a parsed `-o` value.
    pub fn with_output(output: Output, color: bool) -> Self {
        Self::from_options(
            &PrintOptions {
                output,
                ..PrintOptions::default()
            },
            color,
        )
    }

    /// A printer for everything the command line says about printing.
    pub fn from_options(options: &PrintOptions, color: bool) -> Self {
        Self {
            style: TextStyle {
                wide: options.output == Output::Wide,
                color,
                all_namespaces: false,
                now: Timestamp::now(),
                no_headers: options.no_headers,
                label_columns: options.label_columns.clone(),
                show_labels: options.show_labels,
            },
            output: options.output.clone(),
            sort_by: options.sort_by.clone(),
        }
    }

    /// The printer the global flags ask for (`-o`, `--sort-by`, `--no-headers`, `-L`,
    /// `--show-labels`, colour, `-A`).
    pub fn for_context(ctx: &Context) -> Self {
        Self::from_options(&ctx.print, ctx.color).all_namespaces(ctx.all_namespaces)
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

    /// `--sort-by`.
    pub fn sort_by(mut self, expr: Option<JsonPathExpr>) -> Self {
        self.sort_by = expr;
        self
    }

    /// `--no-headers`.
    pub fn no_headers(mut self, no_headers: bool) -> Self {
        self.style.no_headers = no_headers;
        self
    }

    /// `-L` keys and `--show-labels`.
    pub fn labels(mut self, label_columns: Vec<String>, show_labels: bool) -> Self {
        self.style.label_columns = label_columns;
        self.style.show_labels = show_labels;
        self
    }

    pub fn style(&self) -> &TextStyle {
        &self.style
    }

    /// Write `view` in this printer's format, its rows sorted first with `--sort-by`. A flag
    /// the view cannot honour is a usage error (exit 2), reported before anything is written.
    pub fn print<V: View>(&self, out: &mut impl Write, view: &V) -> Result<()> {
        let labels = self.style.show_labels || !self.style.label_columns.is_empty();
        if labels && self.output.format().is_text() && !view.shows_labels() {
            return Err(Error::Usage(format!(
                "-L/--label-columns and --show-labels: the {} has no labelled objects to show them for",
                kind_of(view)
            )));
        }
        let Some(expr) = &self.sort_by else {
            return self.print_unsorted(out, view);
        };
        let not_a_list = || {
            Error::Usage(format!(
                "--sort-by: the {} is not a list; it sorts the rows of list, history and orphans",
                kind_of(view)
            ))
        };
        let field = view.rows_field().ok_or_else(not_a_list)?;
        let doc = serde_json::to_value(view)?;
        let rows = doc
            .get(field)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let order = sort_order(&doc, rows, expr)?;
        let sorted = view.reordered(&order).ok_or_else(not_a_list)?;
        self.print_unsorted(out, &sorted)
    }

    fn print_unsorted<V: View>(&self, out: &mut impl Write, view: &V) -> Result<()> {
        match &self.output {
            Output::Table | Output::Wide => view.write_text(out, &self.style),
            Output::Json | Output::Yaml => view.write_structured(out, self.output.format()),
            Output::Name => {
                let names = view.object_names().ok_or_else(|| {
                    Error::Usage(format!(
                        "-o name: the {} names no Kubernetes objects; use -o json or -o jsonpath",
                        kind_of(view)
                    ))
                })?;
                for name in names {
                    writeln!(out, "{name}")?;
                }
                Ok(())
            }
            Output::JsonPath(template) => template.render(out, &serde_json::to_value(view)?),
            Output::CustomColumns(columns) => {
                let doc = serde_json::to_value(view)?;
                let rows: Vec<&Value> = match view.rows_field() {
                    Some(field) => doc
                        .get(field)
                        .and_then(Value::as_array)
                        .map(|rows| rows.iter().collect())
                        .unwrap_or_default(),
                    None => vec![&doc],
                };
                // kubectl prints nothing, not even the header, when there is no row.
                if rows.is_empty() {
                    return Ok(());
                }
                let mut table = new_table(columns.headers());
                for row in rows {
                    table.add_row(columns.cells(&doc, row)?);
                }
                self.style.write_table(out, &table)
            }
        }
    }
}

/// The view for messages: "RevisionDiff view" (its `kind`), or "this view".
fn kind_of<V: Serialize>(view: &V) -> String {
    serde_json::to_value(view)
        .ok()
        .and_then(|v| {
            v.get("kind")
                .and_then(Value::as_str)
                .map(|k| format!("{k} view"))
        })
        .unwrap_or_else(|| "this view".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;

    /// A view that implements `write_text` only, as a new view (e.g. `status`) may: it gets
    /// json, yaml, jsonpath and custom-columns; `-o name`, `--sort-by` and `-L` are usage errors.
    #[derive(Serialize)]
    struct Minimal {
        kind: &'static str,
        name: &'static str,
        replicas: i32,
    }

    impl View for Minimal {
        fn write_text(&self, out: &mut impl Write, _style: &TextStyle) -> Result<()> {
            writeln!(out, "{} {}", self.name, self.replicas)?;
            Ok(())
        }
    }

    const VIEW: Minimal = Minimal {
        kind: "StatefulSetStatus",
        name: "web",
        replicas: 3,
    };

    fn print(printer: Printer) -> Result<String> {
        let mut out = Vec::new();
        printer.print(&mut out, &VIEW)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }

    fn output(value: &str) -> Printer {
        Printer::with_output(Output::parse(value).unwrap(), false)
    }

    #[test]
    fn a_view_with_write_text_only_gets_the_json_based_forms() {
        assert_eq!(
            print(Printer::new(OutputFormat::Table, false)).unwrap(),
            "web 3\n"
        );
        let json: Value =
            serde_json::from_str(&print(Printer::new(OutputFormat::Json, false)).unwrap()).unwrap();
        assert_eq!(json["replicas"], 3);
        assert_eq!(
            print(output("jsonpath={.name}={.replicas}")).unwrap(),
            "web=3"
        );
        assert_eq!(
            print(output("custom-columns=NAME:.name,REPLICAS:.replicas")).unwrap(),
            "NAME   REPLICAS\nweb    3\n"
        );
        assert_eq!(
            print(output("custom-columns=NAME:.name").no_headers(true)).unwrap(),
            "web\n"
        );
    }

    #[test]
    fn what_the_view_cannot_do_is_a_usage_error_naming_its_kind() {
        let errors = [
            print(Printer::new(OutputFormat::Name, false)).unwrap_err(),
            print(
                Printer::new(OutputFormat::Table, false)
                    .sort_by(JsonPathExpr::parse_relaxed(".name").ok()),
            )
            .unwrap_err(),
            print(Printer::new(OutputFormat::Wide, false).labels(vec!["app".into()], false))
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(err.to_string().contains("StatefulSetStatus view"), "{err}");
        }
        // Label flags are ignored, as by kubectl, where there is no table.
        assert!(print(Printer::new(OutputFormat::Json, false).labels(vec![], true)).is_ok());
    }
}
