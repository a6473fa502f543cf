//! Unified diffs between pod templates, rendered as YAML with a stable key order.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change, as `diff -u` and `kubectl diff` use.
pub const CONTEXT_LINES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot render pod template as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("cannot serialise pod template: {0}")]
    Json(#[from] serde_json::Error),
}

/// Recursively rebuilds `v` with object keys in sorted order and the strategic-merge-patch
/// directive `$patch` removed, so output does not depend on serde_json's map flavour or on where
/// the template came from (a ControllerRevision or the live StatefulSet).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| k.as_str() != "$patch").collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(val) = map.get(k) {
                    out.insert(k.clone(), normalize(val));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// YAML of any JSON value with sorted keys and no `$patch`.
pub fn value_yaml(v: &Value) -> Result<String, DiffError> {
    Ok(serde_yaml::to_string(&normalize(v))?)
}

/// YAML of a pod template with sorted keys (what `history --revision N` prints and `diff` compares).
pub fn template_yaml(t: &PodTemplateSpec) -> Result<String, DiffError> {
    value_yaml(&serde_json::to_value(t)?)
}

/// A unified diff between two pod templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDiff {
    /// Label of the old side, e.g. `revision 1 (web-6c5f8b9d4)`.
    pub from: String,
    /// Label of the new side.
    pub to: String,
    /// Unified diff text with `---`/`+++` headers; empty when the templates are equal.
    pub text: String,
    pub added: usize,
    pub removed: usize,
}

impl TemplateDiff {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }
}

/// Diffs two YAML texts line by line.
pub fn unified_text(from_label: &str, from: &str, to_label: &str, to: &str) -> TemplateDiff {
    let diff = TextDiff::from_lines(from, to);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let text = if added + removed == 0 {
        String::new()
    } else {
        unified_hunks(&diff, from_label, to_label)
    };
    TemplateDiff {
        from: from_label.to_string(),
        to: to_label.to_string(),
        text,
        added,
        removed,
    }
}

/// The unified diff text (`---`/`+++` headers, then hunks with CONTEXT_LINES of context), with
/// hunk ranges as GNU diff writes them (`start,len`, `,1` omitted, an empty side starting at the
/// line before). Written here rather than by similar's `unified_diff()`, whose 2.7 headers are
/// wrong for some hunks (`@@ -1 +2 @@` over a hunk of 2 old and 2 new lines, found by the
/// property `diff_of_json_values_applied_to_a_gives_b`).
fn unified_hunks(diff: &TextDiff<'_, '_, '_, str>, from_label: &str, to_label: &str) -> String {
    use std::fmt::Write as _;
    let range = |start: usize, len: usize| match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    };
    let mut out = format!("--- {from_label}\n+++ {to_label}\n");
    for group in diff.grouped_ops(CONTEXT_LINES) {
        // Over all ops, not first..last: similar can place an insert's (empty) old range
        // before the end of the equal run that precedes it.
        let span = |r: fn(&similar::DiffOp) -> std::ops::Range<usize>| {
            let start = group.iter().map(|op| r(op).start).min().unwrap_or(0);
            let end = group.iter().map(|op| r(op).end).max().unwrap_or(start);
            start..end
        };
        let old = span(similar::DiffOp::old_range);
        let new = span(similar::DiffOp::new_range);
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(old.start, old.len()),
            range(new.start, new.len())
        );
        for op in &group {
            for change in diff.iter_changes(op) {
                let tag = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push(tag);
                out.push_str(change.value());
                if change.missing_newline() {
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// Unified diff between two pod templates rendered as sorted YAML.
pub fn unified(
    from_label: &str,
    from: &PodTemplateSpec,
    to_label: &str,
    to: &PodTemplateSpec,
) -> Result<TemplateDiff, DiffError> {
    Ok(unified_text(
        from_label,
        &template_yaml(from)?,
        to_label,
        &template_yaml(to)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revision::template_from_data;
    use serde_json::json;

    fn stored(image: &str) -> Value {
        // Shaped like a v1.20 ControllerRevision's data, keys deliberately out of order.
        json!({"spec": {"template": {
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": "nginx",
                    "image": image,
                    "ports": [{"protocol": "TCP", "name": "http", "containerPort": 80}],
                    "resources": {}
                }],
                "dnsPolicy": "ClusterFirst"
            },
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
            "$patch": "replace"
        }}})
    }

    fn template(image: &str) -> PodTemplateSpec {
        template_from_data(&stored(image)).unwrap()
    }

    #[test]
    fn hunk_ranges_count_the_lines_of_the_hunk() {
        // Found by the property test: similar 2.7 wrote `@@ -1 +2 @@` here.
        let d = unified_text("a", "- 0\n- false\n", "b", "- false\n- false\n");
        assert_eq!(
            d.text,
            "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-- 0\n - false\n+- false\n"
        );
    }

    #[test]
    fn yaml_has_sorted_keys_and_no_patch_directive() {
        let yaml = template_yaml(&template("nginx:1.19")).unwrap();
        assert!(!yaml.contains("$patch"));
        assert!(!yaml.contains("creationTimestamp"));
        let expected = "\
metadata:
  labels:
    app: web
spec:
  containers:
  - image: nginx:1.19
    name: nginx
    ports:
    - containerPort: 80
      name: http
      protocol: TCP
    resources: {}
  dnsPolicy: ClusterFirst
  terminationGracePeriodSeconds: 30
";
        assert_eq!(yaml, expected);
    }

    #[test]
    fn normalize_sorts_and_strips_at_every_level() {
        let v = normalize(
            &json!({"b": 1, "$patch": "replace", "a": [{"z": 1, "y": {"$patch": "x", "k": 2}}]}),
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":[{"y":{"k":2},"z":1}],"b":1}"#
        );
    }

    #[test]
    fn diff_of_image_change() {
        let d = unified(
            "revision 1 (web-5d4fd4b95c)",
            &template("nginx:1.19"),
            "revision 2 (web-7b8c9d6f5)",
            &template("nginx:1.20"),
        )
        .unwrap();
        assert_eq!((d.added, d.removed), (1, 1));
        assert!(!d.is_empty());
        let expected = "\
--- revision 1 (web-5d4fd4b95c)
+++ revision 2 (web-7b8c9d6f5)
@@ -3,7 +3,7 @@
     app: web
 spec:
   containers:
-  - image: nginx:1.19
+  - image: nginx:1.20
     name: nginx
     ports:
     - containerPort: 80
";
        assert_eq!(d.text, expected);
    }

    #[test]
    fn equal_templates_give_an_empty_diff() {
        let d = unified("a", &template("nginx:1.19"), "b", &template("nginx:1.19")).unwrap();
        assert!(d.is_empty());
        assert_eq!(d.text, "");
        assert_eq!((d.from.as_str(), d.to.as_str()), ("a", "b"));
    }
}
