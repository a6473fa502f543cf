//! `kubectl sts diff NAME [FROM [TO]]` — unified diff of the pod templates of two revisions.
//!
//! Requests: the StatefulSet and its ControllerRevisions ([`Target`]).

use std::io::Write;

use serde::Serialize;
use sts_model::diff::{TemplateDiff, unified};
use sts_model::revision::{History, Selected};

use crate::cli::DiffArgs;
use crate::error::{Error, Result};
use crate::printer::{Printer, TextStyle, View};
use crate::render::{VIEW_API_VERSION, write_unified};
use crate::target::{Parts, Target};
use crate::{Context, Outcome};

pub async fn run(ctx: &Context, args: &DiffArgs) -> Result<Outcome> {
    let target = Target::fetch(ctx, "diff", &args.name, Parts::default()).await?;
    let history = History::new(&target.statefulset, &target.revisions)?;
    let (from, to) = select(&history, args.from.as_deref(), args.to.as_deref())?;
    let view = RevisionDiffView::new(&history, &diff_between(&history, from, to)?);
    Printer::for_context(ctx).print(&mut std::io::stdout().lock(), &view)?;
    Ok(Outcome::Success)
}

/// The two sides the user asked for (see [`DiffArgs`] for the defaults).
pub fn select<'a>(
    history: &'a History,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Selected<'a>, Selected<'a>)> {
    Ok(match (from, to) {
        (None, _) => history.default_diff()?,
        (Some(f), to) => (
            history.resolve(f)?,
            history.resolve(to.unwrap_or(sts_model::revision::LIVE))?,
        ),
    })
}

/// The unified diff between two selected templates, labelled `revision N (name)` / `live (…)`.
pub fn diff_between(
    history: &History,
    from: Selected<'_>,
    to: Selected<'_>,
) -> Result<TemplateDiff> {
    unified(
        &from.label(&history.statefulset),
        from.template()?,
        &to.label(&history.statefulset),
        to.template()?,
    )
    .map_err(|e| Error::Other(e.to_string()))
}

/// `kind: RevisionDiff` (docs/contracts.md); the text form is the unified diff, coloured like
/// `git diff` when colour is allowed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDiffView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub from: String,
    pub to: String,
    /// Unified diff text; empty when the templates are equal.
    pub diff: String,
}

impl RevisionDiffView {
    pub fn new(history: &History, diff: &TemplateDiff) -> Self {
        Self {
            api_version: VIEW_API_VERSION,
            kind: "RevisionDiff",
            namespace: history.namespace.clone(),
            name: history.statefulset.clone(),
            from: diff.from.clone(),
            to: diff.to.clone(),
            diff: diff.text.clone(),
        }
    }
}

impl View for RevisionDiffView {
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        if self.diff.is_empty() {
            writeln!(out, "No differences between {} and {}.", self.from, self.to)?;
            return Ok(());
        }
        write_unified(out, &self.diff, style.color)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;
    use crate::testing::rolling;
    use serde_json::Value;

    fn history() -> History {
        let (s, crs, _) = rolling();
        History::new(&s, &crs).unwrap()
    }

    fn render(
        h: &History,
        from: Option<&str>,
        to: Option<&str>,
        format: OutputFormat,
        color: bool,
    ) -> String {
        let (f, t) = select(h, from, to).unwrap();
        let d = diff_between(h, f, t).unwrap();
        let mut out = Vec::new();
        Printer::new(format, color)
            .print(&mut out, &RevisionDiffView::new(h, &d))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_is_current_to_update() {
        let text = render(&history(), None, None, OutputFormat::Table, false);
        let expected = "\
--- revision 2 (web-7b8c9d6f5)
+++ revision 3 (web-6c5f8b9d4)
@@ -3,7 +3,7 @@
     app: web
 spec:
   containers:
-  - image: nginx:1.20
+  - image: nginx:1.21
     imagePullPolicy: IfNotPresent
     name: nginx
     ports:
";
        assert_eq!(text, expected);
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn explicit_sides_and_live() {
        let h = history();
        let text = render(&h, Some("1"), Some("live"), OutputFormat::Table, false);
        assert!(
            text.starts_with("--- revision 1 (web-5d4fd4b95c)\n+++ live (spec.template of web)\n"),
            "{text}"
        );
        assert!(
            text.contains("-  - image: nginx:1.19\n+  - image: nginx:1.21\n"),
            "{text}"
        );
        // FROM alone diffs against live.
        assert_eq!(
            render(&h, Some("1"), None, OutputFormat::Table, false),
            text
        );
    }

    #[test]
    fn equal_sides_say_no_differences() {
        let h = history();
        assert_eq!(
            render(&h, Some("3"), Some("live"), OutputFormat::Table, false),
            "No differences between revision 3 (web-6c5f8b9d4) and live (spec.template of web).\n"
        );
    }

    #[test]
    fn unknown_side_is_an_error_listing_revisions() {
        let h = history();
        let err = select(&h, Some("2"), Some("9")).unwrap_err();
        assert!(
            matches!(err, Error::UnknownRevision { ref known, .. } if known == "1, 2, 3"),
            "{err}"
        );
    }

    #[test]
    fn colour_marks_added_and_removed_lines() {
        let text = render(&history(), None, None, OutputFormat::Table, true);
        assert!(
            text.contains("\u{1b}[31m-  - image: nginx:1.20"),
            "{text:?}"
        );
        assert!(
            text.contains("\u{1b}[32m+  - image: nginx:1.21"),
            "{text:?}"
        );
        assert!(text.contains("\u{1b}[36m@@ -3,7 +3,7 @@"), "{text:?}");
    }

    #[test]
    fn json_view() {
        let h = history();
        let v: Value =
            serde_json::from_str(&render(&h, None, None, OutputFormat::Json, true)).unwrap();
        assert_eq!(v["apiVersion"], "sts.dev/v1alpha1");
        assert_eq!(v["kind"], "RevisionDiff");
        assert_eq!(v["from"], "revision 2 (web-7b8c9d6f5)");
        assert_eq!(v["to"], "revision 3 (web-6c5f8b9d4)");
        let diff = v["diff"].as_str().unwrap();
        assert!(diff.contains("+  - image: nginx:1.21\n"));
        // Structured output never carries colour codes.
        assert!(!diff.contains('\u{1b}'));
    }

    #[test]
    fn output_family_over_a_diff() {
        let h = history();
        let (f, t) = select(&h, None, None).unwrap();
        let view = RevisionDiffView::new(&h, &diff_between(&h, f, t).unwrap());
        crate::testing::assert_schema("RevisionDiff", &serde_json::to_value(&view).unwrap());
        let mut out = Vec::new();
        let err = Printer::new(OutputFormat::Name, false)
            .print(&mut out, &view)
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("-o name: the RevisionDiff view names no Kubernetes objects"),
            "{err}"
        );
        assert!(out.is_empty());
        let template = crate::output::Output::parse("jsonpath={.from} -> {.to}").unwrap();
        Printer::with_output(template, false)
            .print(&mut out, &view)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{} -> {}", view.from, view.to)
        );
    }
}
