//! kubectl's output family beyond the tables: the parsed `-o` value ([`Output`]), kubectl's
//! JSONPath template dialect ([`Template`], `-o jsonpath=…`), `-o custom-columns=…`
//! ([`Columns`]) and the relaxed expressions of `--sort-by` and custom columns
//! ([`JsonPathExpr`]). The printer ([`crate::printer`]) applies them to every view.
//!
//! JSONPath evaluation is done by the `jsonpath-rust` crate (RFC 9535; kube-client already
//! depends on it for kubeconfig `auth-provider` paths, so it costs no new dependency). No crate
//! implements kubectl's *template* layer — literal text with `{EXPR}`, `{range EXPR}…{end}` and
//! `{"literal"}` actions (<https://kubernetes.io/docs/reference/kubectl/jsonpath/>) — so that
//! thin layer is written here; it only splits the template and hands each expression to the
//! crate.

use std::fmt;
use std::io::Write;

use jsonpath_rust::JsonPath;
use serde_json::Value;

use crate::error::{Error, Result};

/// The kind of `-o` output; the parsed value, with a template or columns, is
/// [`Output`] (`Output::format()` gives this kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// kubectl-like table
    Table,
    /// table with extra columns
    Wide,
    /// JSON view (documented schema)
    Json,
    /// YAML view (same schema as JSON)
    Yaml,
    /// `resource.group/name` per object
    Name,
    /// kubectl JSONPath template over the JSON view
    JsonPath,
    /// kubectl custom columns over the JSON view
    CustomColumns,
}

impl OutputFormat {
    /// True for the machine-readable serialisations (json, yaml) only; `name`, `jsonpath` and
    /// `custom-columns` are neither this nor [`OutputFormat::is_text`].
    pub fn is_structured(self) -> bool {
        matches!(self, OutputFormat::Json | OutputFormat::Yaml)
    }

    /// True for the views' own text forms (table, wide).
    pub fn is_text(self) -> bool {
        matches!(self, OutputFormat::Table | OutputFormat::Wide)
    }
}

/// A parsed `-o` value: one of [`OutputFormat`]'s kinds, with the template or column spec the
/// kinds `jsonpath` and `custom-columns` carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Table,
    Wide,
    Json,
    Yaml,
    /// `-o name`: `<resource>[.<group>]/<name>` per object, as kubectl prints it.
    Name,
    /// `-o jsonpath=TEMPLATE`.
    JsonPath(Template),
    /// `-o custom-columns=HEADER:EXPR,…`.
    CustomColumns(Columns),
}

/// The values `-o` accepts, for help and error messages.
pub const OUTPUT_VALUES: &str =
    "table, wide, json, yaml, name, jsonpath=TEMPLATE, custom-columns=HEADER:JSONPATH,...";

impl Output {
    /// The kind of this output.
    pub fn format(&self) -> OutputFormat {
        match self {
            Output::Table => OutputFormat::Table,
            Output::Wide => OutputFormat::Wide,
            Output::Json => OutputFormat::Json,
            Output::Yaml => OutputFormat::Yaml,
            Output::Name => OutputFormat::Name,
            Output::JsonPath(_) => OutputFormat::JsonPath,
            Output::CustomColumns(_) => OutputFormat::CustomColumns,
        }
    }

    /// Parse an `-o` value. Messages follow kubectl's (`template format specified but no
    /// template given`, `unexpected custom-columns spec`).
    pub fn parse(value: &str) -> Result<Self, String> {
        let (kind, arg) = match value.split_once('=') {
            Some((k, a)) => (k, Some(a)),
            None => (value, None),
        };
        let simple = |o: Output| match arg {
            None => Ok(o),
            Some(_) => Err(format!("-o {kind} takes no argument (got {value:?})")),
        };
        match kind {
            "table" => simple(Output::Table),
            "wide" => simple(Output::Wide),
            "json" => simple(Output::Json),
            "yaml" => simple(Output::Yaml),
            "name" => simple(Output::Name),
            "jsonpath" => match arg {
                Some(t) if !t.is_empty() => Template::parse(t).map(Output::JsonPath),
                _ => Err(
                    "jsonpath format specified but no template given (use -o jsonpath='{.items[*].name}')"
                        .into(),
                ),
            },
            "custom-columns" => match arg {
                Some(spec) if !spec.is_empty() => Columns::parse(spec).map(Output::CustomColumns),
                _ => Err(
                    "custom-columns format specified but no custom columns given (use -o custom-columns=NAME:.name)"
                        .into(),
                ),
            },
            _ => Err(format!(
                "unknown output format {value:?}; expected one of {OUTPUT_VALUES}"
            )),
        }
    }
}

impl From<OutputFormat> for Output {
    /// The output of a kind; `jsonpath` and `custom-columns` get an empty template / no
    /// columns (they print nothing): pass an [`Output`] to say what they print.
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Output::Table,
            OutputFormat::Wide => Output::Wide,
            OutputFormat::Json => Output::Json,
            OutputFormat::Yaml => Output::Yaml,
            OutputFormat::Name => Output::Name,
            OutputFormat::JsonPath => Output::JsonPath(Template::default()),
            OutputFormat::CustomColumns => Output::CustomColumns(Columns::default()),
        }
    }
}

/// The clap value parser for `-o`: [`Output::parse`], with the simple formats offered to shell
/// completion.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputParser;

impl clap::builder::TypedValueParser for OutputParser {
    type Value = Output;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Output, clap::Error> {
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                "the -o value is not valid UTF-8\n",
            )
            .with_cmd(cmd)
        })?;
        Output::parse(text).map_err(|message| {
            let flag = arg.map_or_else(|| "--output".to_string(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value {text:?} for '{flag}': {message}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::builder::PossibleValue as P;
        Some(Box::new(
            [
                P::new("table").help("kubectl-like table"),
                P::new("wide").help("table with extra columns"),
                P::new("json").help("JSON view (documented schema)"),
                P::new("yaml").help("YAML view (same schema as JSON)"),
                P::new("name").help("resource/name of each object, as kubectl -o name"),
                P::new("jsonpath=").help("kubectl JSONPath template over the JSON view"),
                P::new("custom-columns=").help("HEADER:JSONPATH,... one row per item"),
            ]
            .into_iter(),
        ))
    }
}

// ------------------------------------------------------------------ expressions --

/// One JSONPath expression in kubectl's relaxed form (`.a.b`, `{.a.b}`, `a.b`, `$.a`, `@.a`,
/// `.items[*].name`, filters `[?(@.x=="y")]`), kept as written and as the RFC 9535 query the
/// crate evaluates. Relative expressions (`.a`, `@.a`) are taken from the current value (the
/// row, inside `{range}` the element); `$…` from the whole view.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPathExpr {
    /// As the user wrote it (for messages).
    pub written: String,
    /// `$…` RFC 9535 query.
    query: String,
    /// `$…` as written: from the document root, not the current value.
    from_root: bool,
}

impl fmt::Display for JsonPathExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl JsonPathExpr {
    /// Parse an expression; `{…}` around it is allowed (kubectl's "relaxed" JSONPath, as
    /// `--sort-by` and custom columns take it).
    pub fn parse_relaxed(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let inner = match trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => inner.trim(),
            None => trimmed,
        };
        Self::parse(inner).map(|mut e| {
            e.written = text.to_string();
            e
        })
    }

    /// Parse the expression of one `{…}` action.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty JSONPath expression".into());
        }
        let (from_root, rest) = if let Some(rest) = text.strip_prefix('$') {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('@') {
            (false, rest)
        } else if text.starts_with('.') || text.starts_with('[') {
            (false, text)
        } else {
            // kubectl's relaxed form: `metadata.name` means `.metadata.name`.
            (false, text)
        };
        let rest = if rest == "." { "" } else { rest };
        let body = rfc_segments(rest)?;
        let query = format!("${body}");
        jsonpath_rust::parser::parse_json_path(&query)
            .map_err(|e| format!("invalid JSONPath {text:?}: {e}"))?;
        Ok(Self {
            written: text.to_string(),
            query,
            from_root,
        })
    }

    /// The values this expression selects from `current` (`$…` from `root`); none when a field
    /// is missing (kubectl's default `--allow-missing-template-keys=true`).
    pub fn select<'a>(&self, root: &'a Value, current: &'a Value) -> Result<Vec<&'a Value>> {
        let from = if self.from_root { root } else { current };
        from.query(&self.query)
            .map_err(|e| Error::Usage(format!("JSONPath {:?}: {e}", self.written)))
    }
}

/// kubectl's field names (`.a-b`, `.metadata.labels.app`, or a name without leading dot) as
/// RFC 9535 segments: a name outside RFC's shorthand (which has no `-` or `/`) becomes
/// `['name']`; bracketed parts and `..` pass through.
fn rfc_segments(expr: &str) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    // A name at the very start (`metadata.name`) reads as `.metadata.name`.
    let mut expect_name = !expr.starts_with('.') && !expr.starts_with('[');
    while i < chars.len() {
        let c = chars[i];
        if c == '[' {
            let start = i;
            let mut depth = 0;
            let mut quote: Option<char> = None;
            while i < chars.len() {
                let ch = chars[i];
                match quote {
                    Some(_) if ch == '\\' => i += 1,
                    Some(q) if ch == q => quote = None,
                    Some(_) => {}
                    None if ch == '\'' || ch == '"' => quote = Some(ch),
                    None if ch == '[' => depth += 1,
                    None if ch == ']' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    None => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unclosed '[' in JSONPath {expr:?}"));
            }
            out.extend(&chars[start..=i]);
            i += 1;
            expect_name = false;
            continue;
        }
        if c == '.' && !expect_name {
            if chars.get(i + 1) == Some(&'.') {
                out.push_str("..");
                i += 2;
            } else {
                i += 1;
            }
            expect_name = true;
            continue;
        }
        if !expect_name {
            return Err(format!("unexpected {c:?} in JSONPath {expr:?}"));
        }
        // A name (or `*`) up to the next `.` or `[`.
        let start = i;
        while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        let dotted = out.ends_with("..");
        if name.is_empty() {
            return Err(format!("empty field name in JSONPath {expr:?}"));
        }
        if name == "*" || is_shorthand(&name) {
            if !dotted {
                out.push('.');
            }
            out.push_str(&name);
        } else {
            out.push_str(&format!(
                "['{}']",
                name.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
        expect_name = false;
    }
    if expect_name && !expr.is_empty() {
        return Err(format!("JSONPath {expr:?} ends without a field name"));
    }
    Ok(out)
}

/// RFC 9535 `member-name-shorthand`: `name-first *name-char`.
fn is_shorthand(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
}

/// A value as kubectl's JSONPath printer writes it: strings raw, everything else as compact
/// JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// --------------------------------------------------------------------- template --

/// A kubectl JSONPath template: literal text with `{EXPR}`, `{"literal"}` and
/// `{range EXPR}…{end}` actions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub written: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Expr(JsonPathExpr),
    Range(JsonPathExpr, Vec<Node>),
}

impl Template {
    /// Parse a template; errors name what is wrong (an unclosed `{`, `{end}` without
    /// `{range}`, an invalid expression).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut stack: Vec<(Option<JsonPathExpr>, Vec<Node>)> = vec![(None, Vec::new())];
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                push_text(&mut stack, rest);
                break;
            };
            push_text(&mut stack, &rest[..open]);
            let after = &rest[open + 1..];
            let close = action_end(after).ok_or_else(|| {
                format!("unclosed action in jsonpath template {text:?}: a '{{' has no '}}'")
            })?;
            let action = after[..close].trim();
            rest = &after[close + 1..];
            let top = stack.len() - 1;
            if let Some(expr) = action.strip_prefix("range ") {
                let expr = JsonPathExpr::parse(expr)
                    .map_err(|e| format!("jsonpath template {text:?}: {e}"))?;
                stack.push((Some(expr), Vec::new()));
            } else if action == "end" {
                if top == 0 {
                    return Err(format!(
                        "jsonpath template {text:?}: {{end}} without {{range …}}"
                    ));
                }
                let (expr, body) = stack.pop().unwrap_or((None, Vec::new()));
                if let (Some(expr), Some(parent)) = (expr, stack.last_mut()) {
                    parent.1.push(Node::Range(expr, body));
                }
            } else if action.starts_with('"') {
                let literal: String = serde_json::from_str(action).map_err(|e| {
                    format!("jsonpath template {text:?}: bad string literal {action}: {e}")
                })?;
                push_text(&mut stack, &literal);
            } else {
                let expr = JsonPathExpr::parse(action)
                    .map_err(|e| format!("jsonpath template {text:?}: {e}"))?;
                if let Some(top) = stack.last_mut() {
                    top.1.push(Node::Expr(expr));
                }
            }
        }
        if stack.len() > 1 {
            return Err(format!(
                "jsonpath template {text:?}: {{range …}} without {{end}}"
            ));
        }
        let nodes = stack.pop().map(|(_, n)| n).unwrap_or_default();
        Ok(Self {
            written: text.to_string(),
            nodes,
        })
    }

    /// Write the template evaluated over `doc`. Several values of one `{EXPR}` are separated by
    /// a space, as kubectl does; a missing field writes nothing.
    pub fn render(&self, out: &mut impl Write, doc: &Value) -> Result<()> {
        let mut text = String::new();
        render_nodes(&self.nodes, doc, doc, &mut text)?;
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}

fn push_text(stack: &mut [(Option<JsonPathExpr>, Vec<Node>)], text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(top) = stack.last_mut() {
        match top.1.last_mut() {
            Some(Node::Text(t)) => t.push_str(text),
            _ => top.1.push(Node::Text(text.to_string())),
        }
    }
}

/// Index of the `}` closing an action that starts right after a `{`, skipping quoted strings
/// and brackets (a filter may hold `}` in a string).
fn action_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None if c == '{' => return None,
            None => {}
        }
    }
    None
}

fn render_nodes(nodes: &[Node], root: &Value, current: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Expr(e) => {
                let values = e.select(root, current)?;
                let texts: Vec<String> = values.into_iter().map(value_text).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(e, body) => {
                for value in e.select(root, current)? {
                    render_nodes(body, root, value, out)?;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- custom columns --

/// `-o custom-columns=HEADER:EXPR,…` (kubectl `get --help`: "a comma separated list of
/// `<header>:<json-path-expr>`"; expressions in the relaxed form).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    pub columns: Vec<(String, JsonPathExpr)>,
}

impl Columns {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut columns = Vec::new();
        // kubectl splits on every ',' too: a union `['a','b']` cannot be a column.
        for part in spec.split(',') {
            let (header, expr) = part
                .split_once(':')
                .filter(|(h, e)| !h.trim().is_empty() && !e.trim().is_empty())
                .ok_or_else(|| {
                    format!(
                        "unexpected custom-columns spec: {part:?}, expected <header>:<json-path-expr>"
                    )
                })?;
            let expr = JsonPathExpr::parse_relaxed(expr)
                .map_err(|e| format!("custom-columns column {header:?}: {e}"))?;
            columns.push((header.trim().to_string(), expr));
        }
        Ok(Self { columns })
    }

    /// The header line's cells.
    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|(h, _)| h.clone()).collect()
    }

    /// One row's cells: the values joined with `,`, `<none>` when there is none (as kubectl).
    pub fn cells(&self, root: &Value, row: &Value) -> Result<Vec<String>> {
        self.columns
            .iter()
            .map(|(_, expr)| {
                let values = expr.select(root, row)?;
                Ok(if values.iter().all(|v| v.is_null()) {
                    "<none>".to_string()
                } else {
                    values
                        .into_iter()
                        .map(value_text)
                        .collect::<Vec<_>>()
                        .join(",")
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------- sorting --

/// The order of `rows` by `expr` (`--sort-by`), stable: rows without the field first, then
/// numbers numerically, strings lexically; values of different types by type (null, bool,
/// number, string, array, object). Err when no row has the field (kubectl: "couldn't find any
/// field with path").
pub fn sort_order(root: &Value, rows: &[Value], expr: &JsonPathExpr) -> Result<Vec<usize>> {
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        keys.push(expr.select(root, row)?.first().map(|v| (*v).clone()));
    }
    if !rows.is_empty() && keys.iter().all(Option::is_none) {
        return Err(Error::Usage(format!(
            "--sort-by: couldn't find any field with path {:?} in the rows",
            expr.written
        )));
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| compare(keys[a].as_ref(), keys[b].as_ref()));
    Ok(order)
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
            (Value::String(x), Value::String(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            _ => rank(a)
                .cmp(&rank(b))
                .then_with(|| a.to_string().cmp(&b.to_string())),
        },
    }
}

// ----------------------------------------------------------------------- labels --

/// kubectl's header for a `-L` key: the part after the last `/`, upper-cased
/// (`app.kubernetes.io/name` → `NAME`).
pub fn label_header(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_uppercase()
}

/// `--show-labels`' cell: `k=v,…` sorted by key, `<none>` when there are none.
pub fn labels_cell(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "kind": "StatefulSetList",
            "items": [
                {"name": "web", "replicas": 3, "service": {"name": "web"}, "pods": [{"name": "web-0"}, {"name": "web-1"}]},
                {"name": "db", "replicas": 10, "service": {"name": null}, "a-b": "dash"},
            ]
        })
    }

    fn render(template: &str) -> String {
        let t = Template::parse(template).unwrap();
        let mut out = Vec::new();
        t.render(&mut out, &doc()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn templates_in_kubectls_dialect() {
        assert_eq!(render("{.items[*].name}"), "web db");
        assert_eq!(render("{$.kind}"), "StatefulSetList");
        assert_eq!(render("kind={.kind}!"), "kind=StatefulSetList!");
        assert_eq!(
            render(r#"{range .items[*]}{.name}{"\t"}{.replicas}{"\n"}{end}"#),
            "web\t3\ndb\t10\n"
        );
        // Nested range, `@`, and `$` from inside a range.
        assert_eq!(
            render("{range .items[*]}{range .pods[*]}{@.name}/{$.kind} {end}{end}"),
            "web-0/StatefulSetList web-1/StatefulSetList "
        );
        assert_eq!(render("{.items[0].service}"), r#"{"name":"web"}"#);
        assert_eq!(render("{.items[1].a-b}"), "dash");
        assert_eq!(render(r#"{.items[?(@.name=="db")].replicas}"#), "10");
        assert_eq!(render("{.nosuch}"), "", "missing fields print nothing");
        assert_eq!(render("{.items[1].service.name}"), "null");
        assert_eq!(render("no actions"), "no actions");
        assert_eq!(render("{.items[*]['name']}"), "web db");
    }

    #[test]
    fn bad_templates_are_usage_errors_not_panics() {
        for (bad, says) in [
            ("{.items[*].name", "unclosed action"),
            ("{range .items[*]}{.name}", "without {end}"),
            ("{.name}{end}", "{end} without {range"),
            ("{.items[}", "unclosed '['"),
            ("{.items[?(@.x ==)]}", "invalid JSONPath"),
            ("{}", "empty JSONPath"),
            (r#"{"\q"}"#, "bad string literal"),
            ("{.a..}", "ends without a field name"),
        ] {
            let err = Template::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = Output::parse("jsonpath=").unwrap_err();
        assert!(err.contains("no template given"), "{err}");
    }

    #[test]
    fn output_values() {
        assert_eq!(Output::parse("table"), Ok(Output::Table));
        assert_eq!(Output::parse("name"), Ok(Output::Name));
        assert_eq!(
            Output::parse("yaml").map(|o| o.format()),
            Ok(OutputFormat::Yaml)
        );
        assert!(matches!(
            Output::parse("jsonpath={.kind}"),
            Ok(Output::JsonPath(_))
        ));
        assert!(
            Output::parse("xml")
                .unwrap_err()
                .contains("expected one of table, wide")
        );
        assert!(Output::parse("json=x").unwrap_err().contains("no argument"));
    }

    #[test]
    fn custom_columns() {
        let c =
            Columns::parse("NAME:.name,SVC:{.service.name},PODS:.pods[*].name,X:nosuch").unwrap();
        assert_eq!(c.headers(), vec!["NAME", "SVC", "PODS", "X"]);
        let d = doc();
        let rows = d["items"].as_array().unwrap();
        assert_eq!(
            c.cells(&d, &rows[0]).unwrap(),
            vec!["web", "web", "web-0,web-1", "<none>"]
        );
        assert_eq!(
            c.cells(&d, &rows[1]).unwrap(),
            vec!["db", "<none>", "<none>", "<none>"]
        );
        for bad in ["NAME", "NAME:", ":.name", "A:.a,,B:.b", "A:.a["] {
            assert!(Columns::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Columns::parse("NAME")
                .unwrap_err()
                .contains("expected <header>:<json-path-expr>")
        );
    }

    #[test]
    fn sorting() {
        let d = doc();
        let rows = d["items"].as_array().unwrap();
        let by = |e: &str| sort_order(&d, rows, &JsonPathExpr::parse_relaxed(e).unwrap());
        assert_eq!(by(".name").unwrap(), vec![1, 0]);
        assert_eq!(
            by("{.replicas}").unwrap(),
            vec![0, 1],
            "numbers numerically"
        );
        assert_eq!(by(".a-b").unwrap(), vec![0, 1], "missing first");
        assert!(
            by(".nosuch")
                .unwrap_err()
                .to_string()
                .contains("couldn't find any field")
        );
    }

    #[test]
    fn label_helpers() {
        assert_eq!(label_header("app.kubernetes.io/name"), "NAME");
        assert_eq!(label_header("tier"), "TIER");
        let labels = [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into();
        assert_eq!(labels_cell(&labels), "a=1,b=2");
        assert_eq!(labels_cell(&Default::default()), "<none>");
    }
}
