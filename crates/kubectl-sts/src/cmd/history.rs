//! `kubectl sts history NAME [--revision REV]` — the revisions of one StatefulSet.
//!
//! Requests: the StatefulSet, its ControllerRevisions and pods ([`Target`]).

use std::io::Write;

use comfy_table::Color;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::diff::template_yaml;
use sts_model::revision::{History, HistoryEntry, Selected};

use crate::cli::{HistoryArgs, OutputFormat};
use crate::error::{Error, Result};
use crate::printer::{Printer, TextStyle, View, reorder};
use crate::render::{VIEW_API_VERSION, cell, new_table};
use crate::target::{Parts, Target};
use crate::{Context, Outcome};

pub async fn run(ctx: &Context, args: &HistoryArgs) -> Result<Outcome> {
    let parts = Parts {
        pods: args.revision.is_none(),
        claims: false,
    };
    let target = Target::fetch(ctx, "history", &args.name, parts).await?;
    let history = History::new(&target.statefulset, &target.revisions)?;
    let printer = Printer::for_context(ctx);
    let mut out = std::io::stdout().lock();
    match &args.revision {
        Some(rev) => {
            let view = TemplateView::new(&history, history.resolve(rev)?)?;
            printer.print(&mut out, &view)?;
        }
        None => {
            let entries = history.entries(&target.statefulset, &target.pods);
            printer.print(&mut out, &history_view(&history, &entries))?;
        }
    }
    Ok(Outcome::Success)
}

// ---------------------------------------------------------------------- view --

/// `kind: RevisionHistory` (docs/contracts.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistoryView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// Ascending by revision number.
    pub revisions: Vec<RevisionView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    pub revision: i64,
    pub name: String,
    /// RFC 3339.
    pub created: Option<String>,
    pub pods: usize,
    pub current: bool,
    pub update: bool,
    pub change_cause: Option<String>,
    pub summary: String,
    /// Only for `-o wide`; not part of the JSON schema.
    #[serde(skip)]
    pub images: Vec<String>,
    #[serde(skip)]
    pub created_at: Option<Timestamp>,
}

pub fn history_view(history: &History, entries: &[HistoryEntry]) -> RevisionHistoryView {
    RevisionHistoryView {
        api_version: VIEW_API_VERSION,
        kind: "RevisionHistory",
        namespace: history.namespace.clone(),
        name: history.statefulset.clone(),
        revisions: entries
            .iter()
            .map(|e| RevisionView {
                revision: e.number,
                name: e.name.clone(),
                created: e.created.map(|t| t.to_string()),
                pods: e.pods,
                current: e.current,
                update: e.update,
                change_cause: e.change_cause.clone(),
                summary: e.summary.clone(),
                images: history
                    .by_name(&e.name)
                    .and_then(|r| r.template.as_ref().ok())
                    .map(images)
                    .unwrap_or_default(),
                created_at: e.created,
            })
            .collect(),
    }
}

fn images(t: &PodTemplateSpec) -> Vec<String> {
    t.spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
        .filter_map(|c| c.image.clone())
        .collect()
}

// -------------------------------------------------------------------- render --

/// Table (`wide` adds CREATED and IMAGES); JSON/YAML are the view itself; one row per
/// ControllerRevision.
impl View for RevisionHistoryView {
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        write_history_table(out, self, style)
    }

    fn object_names(&self) -> Option<Vec<String>> {
        Some(
            self.revisions
                .iter()
                .map(|r| format!("controllerrevision.apps/{}", r.name))
                .collect(),
        )
    }

    fn rows_field(&self) -> Option<&'static str> {
        Some("revisions")
    }

    fn reordered(&self, order: &[usize]) -> Option<Self> {
        Some(Self {
            revisions: reorder(&self.revisions, order),
            ..self.clone()
        })
    }
}

fn write_history_table(
    out: &mut impl Write,
    view: &RevisionHistoryView,
    style: &TextStyle,
) -> Result<()> {
    let (now, wide, color) = (style.now, style.wide, style.color);
    if view.revisions.is_empty() {
        writeln!(
            out,
            "No revisions found for StatefulSet {}/{}.",
            view.namespace, view.name
        )?;
        return Ok(());
    }
    let mut header = vec![
        "REVISION",
        "NAME",
        "PODS",
        "STATUS",
        "AGE",
        "CHANGE-CAUSE",
        "SUMMARY",
    ];
    if wide {
        header.extend(["CREATED", "IMAGES"]);
    }
    let mut table = new_table(header);
    if color {
        // comfy-table drops styling when it guesses stdout is no TTY; the caller decided already.
        table.enforce_styling();
    }
    for r in &view.revisions {
        let status = match (r.current, r.update) {
            (true, true) => "current,update",
            (true, false) => "current",
            (false, true) => "update",
            (false, false) => "",
        };
        let status_color = match (r.current, r.update) {
            (true, true) => Some(Color::Green),
            (false, true) => Some(Color::Yellow),
            (true, false) => Some(Color::Cyan),
            _ => None,
        };
        let mut row = vec![
            cell(r.revision.to_string(), None, color),
            cell(&r.name, None, color),
            cell(r.pods.to_string(), None, color),
            cell(status, status_color, color),
            cell(
                r.created_at
                    .map_or_else(|| "<unknown>".to_string(), |t| format_age(t, now)),
                None,
                color,
            ),
            cell(r.change_cause.as_deref().unwrap_or("<none>"), None, color),
            cell(&r.summary, None, color),
        ];
        if wide {
            row.push(cell(
                r.created.as_deref().unwrap_or("<unknown>"),
                None,
                color,
            ));
            row.push(cell(
                if r.images.is_empty() {
                    "<none>".to_string()
                } else {
                    r.images.join(",")
                },
                None,
                color,
            ));
        }
        table.add_row(row);
    }
    style.write_table(out, &table)
}

/// `history --revision REV`: one revision's pod template, as YAML with a comment naming the
/// revision (`table`, `wide`, `yaml`) or as JSON; both without the `$patch` directive.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct TemplateView {
    /// The template, normalised as `diff` shows it.
    template: serde_json::Value,
    #[serde(skip)]
    heading: String,
    #[serde(skip)]
    yaml: String,
}

impl TemplateView {
    pub fn new(history: &History, selected: Selected<'_>) -> Result<Self> {
        let template = selected.template()?;
        Ok(Self {
            template: sts_model::diff::normalize(&serde_json::to_value(template)?),
            heading: format!(
                "# StatefulSet {}/{}: pod template of {}",
                history.namespace,
                history.statefulset,
                selected.label(&history.statefulset)
            ),
            yaml: template_yaml(template).map_err(|e| Error::Other(e.to_string()))?,
        })
    }
}

impl View for TemplateView {
    fn write_text(&self, out: &mut impl Write, _style: &TextStyle) -> Result<()> {
        self.write_yaml(out)
    }

    fn write_structured(&self, out: &mut impl Write, format: OutputFormat) -> Result<()> {
        match format {
            OutputFormat::Json => crate::render::write_structured(out, format, self),
            // YAML is what the text form prints, with its comment.
            _ => self.write_yaml(out),
        }
    }
}

impl TemplateView {
    fn write_yaml(&self, out: &mut impl Write) -> Result<()> {
        writeln!(out, "{}", self.heading)?;
        out.write_all(self.yaml.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rolling;
    use serde_json::{Value, json};

    fn view() -> (History, RevisionHistoryView) {
        let (s, crs, pods) = rolling();
        let h = History::new(&s, &crs).unwrap();
        let v = history_view(&h, &h.entries(&s, &pods));
        (h, v)
    }

    fn now() -> Timestamp {
        "2026-11-22T04:00:00Z".parse().unwrap()
    }

    fn render(format: OutputFormat, color: bool) -> String {
        let (_, v) = view();
        let mut out = Vec::new();
        Printer::new(format, color)
            .at(now())
            .print(&mut out, &v)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table() {
        let expected = "\
REVISION   NAME             PODS   STATUS    AGE   CHANGE-CAUSE   SUMMARY
1          web-5d4fd4b95c   0                60m   <none>         initial: nginx:1.19
2          web-7b8c9d6f5    2      current   50m   <none>         image nginx:1.19 → nginx:1.20
3          web-6c5f8b9d4    1      update    40m   bump to 1.21   image nginx:1.20 → nginx:1.21
";
        assert_eq!(render(OutputFormat::Table, false), expected);
    }

    #[test]
    fn wide_table_adds_created_and_images() {
        let text = render(OutputFormat::Wide, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with("SUMMARY                         CREATED                IMAGES"),
            "{text}"
        );
        assert!(
            lines[3].ends_with("2026-11-22T03:20:00Z   nginx:1.21"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_allowed() {
        assert!(!render(OutputFormat::Table, false).contains('\u{1b}'));
        assert!(render(OutputFormat::Table, true).contains('\u{1b}'));
    }

    #[test]
    fn json_view_matches_contract() {
        let v: Value = serde_json::from_str(&render(OutputFormat::Json, false)).unwrap();
        assert_eq!(v["apiVersion"], "sts.dev/v1alpha1");
        assert_eq!(v["kind"], "RevisionHistory");
        assert_eq!(v["namespace"], "default");
        assert_eq!(v["name"], "web");
        let revs = v["revisions"].as_array().unwrap();
        assert_eq!(revs.len(), 3);
        assert_eq!(
            revs[2],
            json!({
                "revision": 3, "name": "web-6c5f8b9d4", "created": "2026-11-22T03:20:00Z",
                "pods": 1, "current": false, "update": true,
                "changeCause": "bump to 1.21", "summary": "image nginx:1.20 → nginx:1.21"
            })
        );
        assert_eq!(revs[0]["changeCause"], Value::Null);
        assert_eq!(
            revs.iter()
                .map(|r| r["revision"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn yaml_view_has_same_fields() {
        let v: Value = serde_yaml::from_str(&render(OutputFormat::Yaml, false)).unwrap();
        let j: Value = serde_json::from_str(&render(OutputFormat::Json, false)).unwrap();
        assert_eq!(v, j);
    }

    #[test]
    fn empty_history_says_so() {
        let (s, _, _) = rolling();
        let h = History::new::<k8s_openapi::api::apps::v1::ControllerRevision>(&s, &[]).unwrap();
        let v = history_view(&h, &[]);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .at(now())
            .print(&mut out, &v)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "No revisions found for StatefulSet default/web.\n"
        );
    }

    #[test]
    fn template_of_one_revision() {
        let (h, _) = view();
        let mut out = Vec::new();
        let view = TemplateView::new(&h, h.resolve("2").unwrap()).unwrap();
        Printer::new(OutputFormat::Table, false)
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "# StatefulSet default/web: pod template of revision 2 (web-7b8c9d6f5)\nmetadata:\n"
            ),
            "{text}"
        );
        assert!(text.contains("  - image: nginx:1.20\n"), "{text}");
        assert!(!text.contains("$patch"));

        let mut out = Vec::new();
        let view = TemplateView::new(&h, h.resolve("live").unwrap()).unwrap();
        Printer::new(OutputFormat::Json, false)
            .print(&mut out, &view)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1.21");
    }

    #[test]
    fn unknown_revision_error_lists_numbers() {
        let (h, _) = view();
        let err = Error::from(h.resolve("7").unwrap_err());
        assert_eq!(
            err.to_string(),
            "unknown revision \"7\" of StatefulSet \"web\"; known revisions: 1, 2, 3"
        );
    }

    #[test]
    fn output_family_one_row_per_revision() {
        let (_, v) = view();
        crate::testing::assert_schema("RevisionHistory", &serde_json::to_value(&v).unwrap());
        let print = |printer: Printer| {
            let mut out = Vec::new();
            printer.at(now()).print(&mut out, &v).unwrap();
            String::from_utf8(out).unwrap()
        };
        let names: Vec<String> = v
            .revisions
            .iter()
            .map(|r| format!("controllerrevision.apps/{}\n", r.name))
            .collect();
        assert_eq!(
            print(Printer::new(OutputFormat::Name, false)),
            names.concat()
        );
        // Sorted by revision number, descending is not kubectl's; by name it is another order.
        let by_number_desc: Vec<usize> = (0..v.revisions.len()).rev().collect();
        let reversed = v.reordered(&by_number_desc).unwrap();
        let sort = Printer::new(OutputFormat::Name, false)
            .sort_by(crate::output::JsonPathExpr::parse_relaxed("{.revision}").ok());
        let mut out = Vec::new();
        sort.print(&mut out, &reversed).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            names.concat(),
            "sorted back"
        );
        let cols = Printer::with_output(
            crate::output::Output::parse("custom-columns=REV:.revision,NAME:.name").unwrap(),
            false,
        )
        .no_headers(true);
        let text = print(cols);
        assert_eq!(text.lines().count(), v.revisions.len(), "{text}");
        assert!(
            text.starts_with(&format!(
                "{}     {}",
                v.revisions[0].revision, v.revisions[0].name
            )),
            "{text}"
        );
        let text = print(Printer::new(OutputFormat::Table, false).no_headers(true));
        assert!(!text.contains("REVISION"), "{text}");
        assert_eq!(text.lines().count(), v.revisions.len(), "{text}");
    }
}
