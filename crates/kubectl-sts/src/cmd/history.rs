//! `kubectl sts history NAME [--revision REV]` — the revisions of one StatefulSet.
//!
//! Also home of what `diff` and `rollback` share: fetching a StatefulSet with its
//! ControllerRevisions (and pods) in a constant number of requests, and mapping model errors.

use std::io::Write;

use comfy_table::Color;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::diff::template_yaml;
use sts_model::revision::{History, HistoryEntry, RevisionError, Selected, label_selector_query};
use tracing::debug;

use crate::cli::OutputFormat;
use crate::collect::{close_names, list_all, list_namespace, map_kube_error};
use crate::error::{Error, Result, Scope};
use crate::render::{VIEW_API_VERSION, cell, new_table, write_structured, write_table};
use crate::{Context, Outcome};

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// StatefulSet name.
    pub name: String,
    /// Print the pod template of this revision: a number, a full name (web-6c5f8b9d4), a hash
    /// (prefix), `current`, `update`, or `live` (the StatefulSet's spec.template).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
}

pub async fn run(ctx: &Context, args: &HistoryArgs) -> Result<Outcome> {
    let objects = collect(ctx, &args.name, true).await?;
    let history = History::new(&objects.sts, &objects.revisions).map_err(revision_error)?;
    let mut out = std::io::stdout().lock();
    match &args.revision {
        Some(rev) => {
            let selected = history.resolve(rev).map_err(revision_error)?;
            render_template(&mut out, ctx.output, &history, selected)?;
        }
        None => {
            let view = history_view(&history, &history.entries(&objects.sts, &objects.pods));
            render_history(&mut out, ctx.output, &view, Timestamp::now(), ctx.color)?;
        }
    }
    Ok(Outcome::Success)
}

// ---------------------------------------------------------------- collect (shared) --

/// A StatefulSet and the objects a revision command needs.
pub(crate) struct Collected {
    pub sts: StatefulSet,
    pub revisions: Vec<ControllerRevision>,
    /// Empty unless asked for.
    pub pods: Vec<Pod>,
}

/// One GET of the StatefulSet, then one paginated LIST of ControllerRevisions (and of Pods when
/// `with_pods`) with the StatefulSet's selector: 2–3 requests whatever the cluster holds.
pub(crate) async fn collect(ctx: &Context, name: &str, with_pods: bool) -> Result<Collected> {
    if ctx.all_namespaces {
        return Err(Error::Usage(
            "-A/--all-namespaces cannot be used with a single StatefulSet; use -n NAMESPACE".into(),
        ));
    }
    let ns = ctx.namespace.as_str();
    let scope = Scope::Namespace(ns.to_string());
    let sts = get_statefulset(ctx, name).await?;
    let selector = sts
        .spec
        .as_ref()
        .and_then(|s| label_selector_query(&s.selector))
        .ok_or_else(|| {
            Error::Other(format!(
                "StatefulSet {name:?} {scope} has an empty selector"
            ))
        })?;
    let revisions = list_namespace::<ControllerRevision>(ctx, ns, Some(&selector), None).await?;
    let pods = if with_pods {
        list_namespace::<Pod>(ctx, ns, Some(&selector), None).await?
    } else {
        Vec::new()
    };
    Ok(Collected {
        sts,
        revisions,
        pods,
    })
}

/// GET one StatefulSet; when it does not exist, one LIST of names to suggest close ones.
pub(crate) async fn get_statefulset(ctx: &Context, name: &str) -> Result<StatefulSet> {
    let ns = ctx.namespace.as_str();
    let scope = Scope::Namespace(ns.to_string());
    let api = ctx.api_in::<StatefulSet>(ns);
    debug!(verb = "get", resource = "statefulsets", scope = %scope, name, "API request");
    match api.get(name).await {
        Ok(sts) => Ok(sts),
        Err(e) => match map_kube_error(
            e,
            "get",
            "statefulsets",
            scope.clone(),
            &ctx.server,
            Some(name),
        ) {
            Error::NotFound {
                kind,
                name: missing,
                ..
            } => {
                // Best effort: a failing suggestion LIST must not hide the NotFound.
                let names: Vec<String> = list_all(&api, &scope, None, &ctx.server)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|s| s.metadata.name)
                    .collect();
                Err(Error::NotFound {
                    kind,
                    suggestions: close_names(&missing, names.iter().map(String::as_str)),
                    name: missing,
                    scope,
                })
            }
            other => Err(other),
        },
    }
}

/// Model errors as plugin errors; unknown revisions keep their dedicated variant.
pub(crate) fn revision_error(e: RevisionError) -> Error {
    match e {
        RevisionError::Unknown {
            statefulset,
            requested,
            known,
        } => Error::UnknownRevision {
            statefulset,
            requested,
            known: if known.is_empty() {
                "none".to_string()
            } else {
                known
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        },
        other => Error::Other(other.to_string()),
    }
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

/// Table (`wide` adds CREATED and IMAGES), or the JSON/YAML view.
pub fn render_history(
    out: &mut impl Write,
    format: OutputFormat,
    view: &RevisionHistoryView,
    now: Timestamp,
    color: bool,
) -> Result<()> {
    if format.is_structured() {
        return write_structured(out, format, view);
    }
    if view.revisions.is_empty() {
        writeln!(
            out,
            "No revisions found for StatefulSet {}/{}.",
            view.namespace, view.name
        )?;
        return Ok(());
    }
    let wide = format == OutputFormat::Wide;
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
    write_table(out, &table)
}

/// `history --revision REV`: the pod template as YAML (table/wide/yaml, with a comment naming
/// the revision) or as JSON.
pub fn render_template(
    out: &mut impl Write,
    format: OutputFormat,
    history: &History,
    selected: Selected<'_>,
) -> Result<()> {
    let template = selected.template().map_err(revision_error)?;
    if format == OutputFormat::Json {
        let value = sts_model::diff::normalize(&serde_json::to_value(template)?);
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    let yaml = template_yaml(template).map_err(|e| Error::Other(e.to_string()))?;
    writeln!(
        out,
        "# StatefulSet {}/{}: pod template of {}",
        history.namespace,
        history.statefulset,
        selected.label(&history.statefulset)
    )?;
    out.write_all(yaml.as_bytes())?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) const UID: &str = "a981f84a-de83-4550-9f4c-67192fbba2fd";

    pub(crate) fn template(image: &str) -> Value {
        json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "image": image, "imagePullPolicy": "IfNotPresent", "name": "nginx",
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    pub(crate) fn cr(
        name: &str,
        number: i64,
        image: &str,
        created: &str,
        cause: Option<&str>,
    ) -> ControllerRevision {
        let mut t = template(image);
        t["$patch"] = json!("replace");
        let mut annotations = json!({});
        if let Some(c) = cause {
            annotations["kubernetes.io/change-cause"] = json!(c);
        }
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "default", "creationTimestamp": created,
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                     "uid": UID, "controller": true, "blockOwnerDeletion": true}]
            },
            "data": {"spec": {"template": t}},
            "revision": number
        }))
        .unwrap()
    }

    pub(crate) fn sts(image: &str, current: &str, update: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": UID, "resourceVersion": "900"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "web", "template": template(image)},
            "status": {"currentRevision": current, "updateRevision": update, "replicas": 3}
        }))
        .unwrap()
    }

    fn pod(i: u32, rev: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {
            "name": format!("web-{i}"), "namespace": "default",
            "labels": {"app": "web", "controller-revision-hash": rev},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                 "uid": UID, "controller": true}]
        }}))
        .unwrap()
    }

    /// Mid-rollout: revision 2 is current on two pods, revision 3 is the update revision on one.
    pub(crate) fn rolling() -> (StatefulSet, Vec<ControllerRevision>, Vec<Pod>) {
        let s = sts("nginx:1.21", "web-7b8c9d6f5", "web-6c5f8b9d4");
        let crs = vec![
            cr(
                "web-6c5f8b9d4",
                3,
                "nginx:1.21",
                "2026-11-22T03:20:00Z",
                Some("bump to 1.21"),
            ),
            cr(
                "web-5d4fd4b95c",
                1,
                "nginx:1.19",
                "2026-11-22T03:00:00Z",
                None,
            ),
            cr(
                "web-7b8c9d6f5",
                2,
                "nginx:1.20",
                "2026-11-22T03:10:00Z",
                None,
            ),
        ];
        let pods = vec![
            pod(0, "web-7b8c9d6f5"),
            pod(1, "web-7b8c9d6f5"),
            pod(2, "web-6c5f8b9d4"),
        ];
        (s, crs, pods)
    }

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
        render_history(&mut out, format, &v, now(), color).unwrap();
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
        let h = History::new(&s, &[]).unwrap();
        let v = history_view(&h, &[]);
        let mut out = Vec::new();
        render_history(&mut out, OutputFormat::Table, &v, now(), false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "No revisions found for StatefulSet default/web.\n"
        );
    }

    #[test]
    fn template_of_one_revision() {
        let (h, _) = view();
        let mut out = Vec::new();
        render_template(&mut out, OutputFormat::Table, &h, h.resolve("2").unwrap()).unwrap();
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
        render_template(&mut out, OutputFormat::Json, &h, h.resolve("live").unwrap()).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1.21");
    }

    #[test]
    fn unknown_revision_error_lists_numbers() {
        let (h, _) = view();
        let err = revision_error(h.resolve("7").unwrap_err());
        assert_eq!(
            err.to_string(),
            "unknown revision \"7\" of StatefulSet \"web\"; known revisions: 1, 2, 3"
        );
    }
}
