//! `kubectl sts orphans [NAME]`: claims made from claim templates whose pod is gone,
//! classified (ScaledDown / StatefulSetDeleted / OwnerGone), with who still mounts them and
//! what deleting them does to the data; `--delete` removes the ones no pod uses.
//!
//! Claims attributed by their name only (a deleted StatefulSet's, see `sts_model::orphans`
//! rule 5) are marked (`attribution: NameOnly`, `*` in the table) and `--delete` leaves them
//! alone unless the user names the StatefulSet: `orphans NAME` then counts a name-only claim as
//! NAME's when NAME is its chosen split or, with none chosen, one of its candidates.
//!
//! Requests: one LIST each of StatefulSets, Pods and PVCs over the scope, and of
//! PersistentVolumes. With `--delete`, after the confirmation and right before each DELETE,
//! the decision is made again from fresh state (GET of the claim, LIST of its namespace's
//! StatefulSets and pods; see [`sts_model::orphans::recheck_deletion`]): a claim that a pod
//! started to use, or that its StatefulSet wants again after a scale-up, is skipped and
//! reported. The DELETE carries UID and resourceVersion preconditions from that fresh read.

use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Preconditions};
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::index::ByName;
use sts_model::orphans::{
    AttributionRule, Orphan, OrphanReason, claim_capacity, find_orphans, recheck_deletion,
};
use sts_model::quantity::{format_bytes, quantity_bytes};
use tracing::debug;

use crate::cli::{DryRun, OrphansArgs};
use crate::collect::{list_namespace, list_scope, list_volumes, map_kube_error};
use crate::error::{Error, Result, Scope};
use crate::printer::{Printer, TextStyle, View, reorder};
use crate::prompt::require_confirmation;
use crate::render::{VIEW_API_VERSION, cell, new_table, write_table};
use crate::{Context, Outcome};

/// `kind: OrphanedClaimList` (docs/contracts.md).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanListView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<OrphanItem>,
    /// Capacity of the orphans no pod uses (what `--delete` would free).
    pub total_reclaimable_bytes: u64,
    /// Present only with `--delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<DeleteResult>>,
    /// Claims whose names fit several StatefulSet/template splits: not classified, never
    /// deleted, shown in every output format.
    pub unclassified: Vec<UnclassifiedClaim>,
    /// The StatefulSet named on the command line, if any.
    #[serde(skip)]
    pub only: Option<String>,
}

/// A claim the plugin could not classify: its name fits several StatefulSets' templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnclassifiedClaim {
    pub namespace: String,
    pub name: String,
    /// Every split the name allows: `{statefulSet, template}`.
    pub candidates: Vec<ClaimSplit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSplit {
    pub stateful_set: String,
    pub template: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanItem {
    pub namespace: String,
    pub name: String,
    /// `None` (null) when attributed by name only and the name fits several StatefulSets.
    pub stateful_set: Option<String>,
    pub template: Option<String>,
    pub ordinal: i32,
    pub reason: OrphanReason,
    /// Which rule tied the claim to its StatefulSet; `NameOnly` rests on the name alone.
    pub attribution: AttributionRule,
    /// NameOnly: every StatefulSet name the claim's name allows (none exists). Else empty.
    pub candidates: Vec<String>,
    /// NameOnly: why `statefulSet` was picked; null when it is unknown or for other rules.
    pub evidence: Option<String>,
    pub used_by: Vec<String>,
    pub phase: Option<String>,
    pub capacity: Option<String>,
    pub storage_class: Option<String>,
    pub volume_name: Option<String>,
    /// Reclaim policy of the bound PV: what deleting the claim does to the data.
    pub reclaim_policy: Option<String>,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    #[serde(skip)]
    pub note: String,
    /// Already being deleted (deletionTimestamp set): a pod that still mounts it holds it back
    /// (`kubernetes.io/pvc-protection`), and it goes when that pod does.
    pub terminating: bool,
    #[serde(skip)]
    pub uid: Option<String>,
    /// The claim's labels, for `-L`/`--show-labels` (not part of the JSON schema).
    #[serde(skip)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl OrphanItem {
    fn deletable(&self) -> bool {
        self.used_by.is_empty() && !self.terminating
    }
    fn name_only(&self) -> bool {
        self.attribution == AttributionRule::NameOnly
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    Deleted,
    DryRun,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    pub namespace: String,
    pub name: String,
    pub action: Action,
    pub message: String,
}

pub async fn run(ctx: &Context, args: &OrphansArgs) -> Result<Outcome> {
    let (statefulsets, pods, claims, volumes) = tokio::try_join!(
        list_scope::<StatefulSet>(ctx, None, None),
        list_scope::<Pod>(ctx, None, None),
        list_scope::<PersistentVolumeClaim>(ctx, ctx.selector.as_deref(), None),
        list_volumes(ctx),
    )?;
    let mut view = build_view(
        &statefulsets,
        &pods,
        &claims,
        volumes.as_deref(),
        args.name.as_deref(),
    );
    let printer = Printer::for_context(ctx);
    let mut out = std::io::stdout().lock();
    // Every form but the tables (json, yaml, name, jsonpath, custom-columns) prints the view
    // once: with --delete, after the deletions, with `results` (jsonpath can read them).
    let structured = !ctx.output.is_text();

    // Show what was found; with --delete, before asking anything. Structured output with
    // --delete is printed once, with the results, below.
    if !(args.delete && structured) {
        printer.print(&mut out, &view)?;
        out.flush()?;
    }
    if !args.delete {
        let found = !view.items.is_empty();
        return Ok(if args.exit_code && found {
            Outcome::OrphansFound
        } else {
            Outcome::Success
        });
    }
    let (to_delete, mut results) = plan_deletions(&view);
    if !to_delete.is_empty() && args.dry_run == DryRun::None {
        let bytes: u64 = to_delete
            .iter()
            .filter_map(|i| i.capacity.as_deref().and_then(quantity_bytes))
            .map(|b| u64::try_from(b).unwrap_or(u64::MAX))
            .sum();
        let destroyed = to_delete
            .iter()
            .filter(|i| i.reclaim_policy.as_deref() == Some("Delete"))
            .count();
        let question = format!(
            "Delete {} PersistentVolumeClaim(s) ({})? {destroyed} of them are bound to volumes with reclaim policy Delete, whose data will be destroyed.",
            to_delete.len(),
            format_bytes(u128::from(bytes)),
        );
        require_confirmation(args.yes, ctx.interactive, &question, "yes")?;
    }
    for item in &to_delete {
        results.push(delete_claim(ctx, item, args.dry_run).await);
    }
    results.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let failed = results
        .iter()
        .filter(|r| r.action == Action::Failed)
        .count();
    let remaining = results
        .iter()
        .filter(|r| r.action != Action::Deleted)
        .count();
    if structured {
        view.results = Some(results);
        printer.print(&mut out, &view)?;
    } else {
        writeln!(out)?;
        render_results(&mut out, &results, ctx.color)?;
    }
    if failed > 0 {
        return Err(Error::Other(format!(
            "{failed} claim deletion(s) failed; see the results above"
        )));
    }
    Ok(if args.exit_code && remaining > 0 {
        Outcome::OrphansFound
    } else {
        Outcome::Success
    })
}

/// Claims to delete, and a Skipped result for each orphan that must stay. Name-only claims are
/// deleted only when the user named their StatefulSet (`view.only`).
pub fn plan_deletions(view: &OrphanListView) -> (Vec<&OrphanItem>, Vec<DeleteResult>) {
    let mut delete = Vec::new();
    let mut skipped = Vec::new();
    for item in &view.items {
        let name_only_unconfirmed = item.name_only() && view.only.is_none();
        if item.deletable() && !name_only_unconfirmed {
            delete.push(item);
        } else {
            let message = if item.terminating {
                "already being deleted".to_string()
            } else if !item.used_by.is_empty() {
                format!("in use by pod(s) {}", item.used_by.join(", "))
            } else {
                let (which, sts) = match &item.stateful_set {
                    Some(sts) => (format!("StatefulSet {sts}"), sts.clone()),
                    None => (
                        format!("StatefulSet one of {}", item.candidates.join(", ")),
                        "<statefulset>".to_string(),
                    ),
                };
                format!(
                    "attributed by name only ({which}); to delete it, name the StatefulSet: kubectl sts -n {} orphans {sts} --delete",
                    item.namespace
                )
            };
            skipped.push(DeleteResult {
                namespace: item.namespace.clone(),
                name: item.name.clone(),
                action: Action::Skipped,
                message,
            });
        }
    }
    (delete, skipped)
}

async fn delete_claim(ctx: &Context, item: &OrphanItem, dry_run: DryRun) -> DeleteResult {
    let result = |action, message: String| DeleteResult {
        namespace: item.namespace.clone(),
        name: item.name.clone(),
        action,
        message,
    };
    if dry_run == DryRun::Client {
        return result(
            Action::DryRun,
            "would be deleted (client dry run: nothing sent)".into(),
        );
    }
    // Fresh state, right before acting: the prompt may have waited for minutes.
    let resource_version = match recheck(ctx, item).await {
        Ok(Ok(rv)) => rv,
        Ok(Err(no_longer)) => return result(Action::Skipped, no_longer.to_string()),
        Err(err) => {
            return result(
                Action::Failed,
                format!("not deleted: could not re-check it right before deleting: {err}"),
            );
        }
    };
    let params = delete_params(item, resource_version, dry_run);
    debug!(
        verb = "delete",
        resource = "persistentvolumeclaims",
        namespace = %item.namespace,
        name = %item.name,
        dry_run = params.dry_run,
        "API request"
    );
    let api = ctx.api_in::<PersistentVolumeClaim>(&item.namespace);
    match api.delete(&item.name, &params).await {
        Ok(_) if params.dry_run => result(
            Action::DryRun,
            "the server accepted the deletion (dry run: nothing persisted)".into(),
        ),
        Ok(_) => result(Action::Deleted, "deleted".into()),
        Err(kube::Error::Api(status)) if status.is_conflict() => result(
            Action::Failed,
            format!(
                "not deleted: it changed between the re-check and the delete (the server refused the UID/resourceVersion precondition, HTTP 409): {}",
                status.message
            ),
        ),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            result(Action::Skipped, "already gone".into())
        }
        Err(e) => {
            let err = map_kube_error(
                e,
                "delete",
                "persistentvolumeclaims",
                Scope::Namespace(item.namespace.clone()),
                &ctx.server,
                Some(&item.name),
            );
            result(Action::Failed, err.to_string())
        }
    }
}

/// Reads the claim and its namespace's StatefulSets and pods again and re-makes the decision.
/// The outer error is a failed read; the inner one why the claim no longer qualifies.
async fn recheck(
    ctx: &Context,
    item: &OrphanItem,
) -> Result<std::result::Result<Option<String>, sts_model::orphans::NoLongerDeletable>> {
    let ns = item.namespace.as_str();
    debug!(
        verb = "get",
        resource = "persistentvolumeclaims",
        namespace = ns,
        name = %item.name,
        "API request"
    );
    let claims = ctx.api_in::<PersistentVolumeClaim>(ns);
    let claim = async {
        claims.get_opt(&item.name).await.map_err(|e| {
            map_kube_error(
                e,
                "get",
                "persistentvolumeclaims",
                Scope::Namespace(ns.to_string()),
                &ctx.server,
                Some(&item.name),
            )
        })
    };
    let (claim, statefulsets, pods) = tokio::try_join!(
        claim,
        list_namespace::<StatefulSet>(ctx, ns, None, None),
        list_namespace::<Pod>(ctx, ns, None, None),
    )?;
    let uid = item.uid.as_deref().unwrap_or_default();
    Ok(recheck_deletion(
        uid,
        item.reason,
        claim.as_ref(),
        &statefulsets,
        &pods,
    ))
}

/// DELETE options: the claim's UID and its `resource_version` as re-read right before the
/// delete, so a claim replaced or changed after that read is not deleted; dryRun=All for
/// `server`.
pub fn delete_params(
    item: &OrphanItem,
    resource_version: Option<String>,
    dry_run: DryRun,
) -> DeleteParams {
    DeleteParams {
        dry_run: dry_run == DryRun::Server,
        preconditions: Some(Preconditions {
            uid: item.uid.clone(),
            resource_version,
        }),
        ..DeleteParams::default()
    }
}

/// Pure: the orphan view from what was read. `only` restricts it to one StatefulSet name.
pub fn build_view(
    statefulsets: &[StatefulSet],
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    volumes: Option<&[PersistentVolume]>,
    only: Option<&str>,
) -> OrphanListView {
    let report = find_orphans(statefulsets, pods, claims);
    // PersistentVolumes are cluster-scoped: indexed by name under the namespace "".
    let volumes = volumes.map(ByName::new);
    let reclaim_of = |volume: &str| {
        volumes
            .as_ref()?
            .get("", volume)
            .and_then(|pv| pv.spec.as_ref()?.persistent_volume_reclaim_policy.clone())
    };
    let keep = |sts: &str| only.is_none_or(|o| o == sts);
    let items: Vec<OrphanItem> = report
        .orphans
        .iter()
        .filter_map(|o| orphan_item(o, only, &reclaim_of))
        .collect();
    let total: u128 = items
        .iter()
        .filter(|i| i.deletable())
        .filter_map(|i| i.capacity.as_deref().and_then(quantity_bytes))
        .sum();
    let unclassified = report
        .ambiguous
        .iter()
        .filter(|(_, candidates)| candidates.iter().any(|c| keep(&c.statefulset)))
        .map(|(claim, candidates)| UnclassifiedClaim {
            namespace: claim.metadata.namespace.clone().unwrap_or_default(),
            name: claim.metadata.name.clone().unwrap_or_default(),
            candidates: candidates
                .iter()
                .map(|c| ClaimSplit {
                    stateful_set: c.statefulset.clone(),
                    template: c.template.clone(),
                })
                .collect(),
        })
        .collect();
    OrphanListView {
        api_version: VIEW_API_VERSION,
        kind: "OrphanedClaimList",
        items,
        total_reclaimable_bytes: u64::try_from(total).unwrap_or(u64::MAX),
        results: None,
        unclassified,
        only: only.map(str::to_string),
    }
}

/// One orphan as a view item; `None` when `only` names another StatefulSet.
fn orphan_item(
    o: &Orphan<'_>,
    only: Option<&str>,
    reclaim_of: &impl Fn(&str) -> Option<String>,
) -> Option<OrphanItem> {
    let name_match = o.name_match.as_ref();
    let (split, evidence, note) = match only {
        Some(name) => {
            let split = o.split_for(name)?;
            // A name-only claim with no chosen split counts as NAME's because the user said so.
            match name_match {
                Some(m) if m.chosen.is_none() => (
                    Some(split),
                    Some("named on the command line".to_string()),
                    format!("StatefulSet {name} named on the command line; {}", o.note),
                ),
                _ => (
                    Some(split),
                    name_match.and_then(|m| m.evidence.clone()),
                    o.note.clone(),
                ),
            }
        }
        None => (
            o.attribution.as_ref(),
            name_match.and_then(|m| m.evidence.clone()),
            o.note.clone(),
        ),
    };
    let spec = o.claim.spec.as_ref();
    let volume_name = spec
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty());
    Some(OrphanItem {
        namespace: o.namespace().to_string(),
        name: o.name().to_string(),
        stateful_set: split.map(|a| a.statefulset.clone()),
        template: split.map(|a| a.template.clone()),
        ordinal: o.ordinal(),
        reason: o.reason,
        attribution: o.rule(),
        candidates: name_match
            .map(|m| {
                m.candidate_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        evidence,
        used_by: o.used_by.clone(),
        phase: o.claim.status.as_ref().and_then(|s| s.phase.clone()),
        capacity: claim_capacity(o.claim).map(str::to_string),
        storage_class: spec.and_then(|s| s.storage_class_name.clone()),
        reclaim_policy: volume_name.as_deref().and_then(reclaim_of),
        volume_name,
        created: o
            .claim
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        note,
        terminating: o.is_terminating(),
        uid: o.claim.metadata.uid.clone(),
        labels: o.claim.metadata.labels.clone().unwrap_or_default(),
    })
}

/// The table (`table`/`wide`); JSON/YAML are the view itself; one row per orphaned claim
/// (the unclassified claims are no rows: `-o name` and `--sort-by` leave them out).
impl View for OrphanListView {
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        write_text_table(out, self, style)
    }

    fn object_names(&self) -> Option<Vec<String>> {
        Some(
            self.items
                .iter()
                .map(|i| format!("persistentvolumeclaim/{}", i.name))
                .collect(),
        )
    }

    fn rows_field(&self) -> Option<&'static str> {
        Some("items")
    }

    fn reordered(&self, order: &[usize]) -> Option<Self> {
        Some(Self {
            items: reorder(&self.items, order),
            ..self.clone()
        })
    }

    fn shows_labels(&self) -> bool {
        true
    }
}

fn write_text_table(out: &mut impl Write, view: &OrphanListView, style: &TextStyle) -> Result<()> {
    let (all_namespaces, color, now) = (style.all_namespaces, style.color, style.now);
    if view.items.is_empty() {
        match &view.only {
            Some(name) => writeln!(out, "No orphaned claims of StatefulSet {name} found.")?,
            None => writeln!(out, "No orphaned claims found.")?,
        }
    } else {
        let wide = style.wide;
        let mut header = Vec::new();
        if all_namespaces {
            header.push("NAMESPACE");
        }
        header.extend([
            "NAME",
            "STATEFULSET",
            "TEMPLATE",
            "ORDINAL",
            "REASON",
            "USED-BY",
            "STATUS",
            "CAPACITY",
            "STORAGECLASS",
            "RECLAIM",
            "AGE",
        ]);
        if wide {
            header.extend(["VOLUME", "NOTE"]);
        }
        let mut header: Vec<String> = header.into_iter().map(str::to_string).collect();
        header.extend(style.label_headers());
        let mut table = new_table(header);
        for item in &view.items {
            let mut row = Vec::new();
            if all_namespaces {
                row.push(cell(&item.namespace, None, color));
            }
            let reason_color = match item.reason {
                OrphanReason::ScaledDown => comfy_table::Color::Yellow,
                _ => comfy_table::Color::Red,
            };
            let age = item
                .created
                .as_deref()
                .and_then(|c| c.parse::<Timestamp>().ok())
                .map_or_else(|| "<unknown>".to_string(), |c| format_age(c, now));
            let status = match (&item.phase, item.terminating) {
                (Some(p), true) => format!("{p} (Terminating)"),
                (Some(p), false) => p.clone(),
                (None, _) => "<unknown>".to_string(),
            };
            // `*`: attributed by name only (legend below the table).
            let marker = if item.name_only() { "*" } else { "" };
            row.extend([
                cell(&item.name, None, color),
                cell(
                    format!(
                        "{}{marker}",
                        item.stateful_set.as_deref().unwrap_or("<unknown>")
                    ),
                    item.name_only().then_some(comfy_table::Color::Yellow),
                    color,
                ),
                cell(item.template.as_deref().unwrap_or("<unknown>"), None, color),
                cell(item.ordinal.to_string(), None, color),
                cell(item.reason.as_str(), Some(reason_color), color),
                cell(
                    if item.used_by.is_empty() {
                        "<none>".to_string()
                    } else {
                        item.used_by.join(",")
                    },
                    (!item.used_by.is_empty()).then_some(comfy_table::Color::Cyan),
                    color,
                ),
                cell(status, None, color),
                cell(item.capacity.as_deref().unwrap_or("-"), None, color),
                cell(
                    item.storage_class.as_deref().unwrap_or("<default>"),
                    None,
                    color,
                ),
                cell(
                    item.reclaim_policy.as_deref().unwrap_or("-"),
                    (item.reclaim_policy.as_deref() == Some("Delete"))
                        .then_some(comfy_table::Color::Red),
                    color,
                ),
                cell(age, None, color),
            ]);
            if wide {
                row.push(cell(
                    item.volume_name.as_deref().unwrap_or("<unbound>"),
                    None,
                    color,
                ));
                row.push(cell(&item.note, None, color));
            }
            row.extend(
                style
                    .label_cells(&item.labels)
                    .into_iter()
                    .map(|c| cell(c, None, color)),
            );
            table.add_row(row);
        }
        style.write_table(out, &table)?;
        if style.no_headers {
            // --no-headers: only the rows, for `| wc -l` and the like.
            return Ok(());
        }
        let deletable = view.items.iter().filter(|i| i.deletable()).count();
        let scaled_down = view
            .items
            .iter()
            .filter(|i| i.deletable() && i.reason == OrphanReason::ScaledDown)
            .count();
        write!(
            out,
            "\nReclaimable: {} in {deletable} claim(s) that no pod uses.",
            format_bytes(u128::from(view.total_reclaimable_bytes))
        )?;
        if scaled_down > 0 {
            write!(
                out,
                " {scaled_down} of them are ScaledDown and would be reattached on scale-up."
            )?;
        }
        writeln!(out)?;
        render_name_only_legend(out, view)?;
        if view
            .items
            .iter()
            .any(|i| i.reclaim_policy.as_deref() == Some("Delete"))
        {
            writeln!(
                out,
                "Deleting a claim bound to a volume with reclaim policy Delete destroys the data; Retain keeps the volume (Released)."
            )?;
        }
    }
    if !view.unclassified.is_empty() {
        let claims: Vec<String> = view
            .unclassified
            .iter()
            .map(|u| {
                let fits = u
                    .candidates
                    .iter()
                    .map(|c| format!("template {} of {}", c.template, c.stateful_set))
                    .collect::<Vec<_>>()
                    .join(" or ");
                format!("{}/{} ({fits})", u.namespace, u.name)
            })
            .collect();
        writeln!(
            out,
            "\nNot classified, the name fits several StatefulSets: {}",
            claims.join("; ")
        )?;
    }
    Ok(())
}

/// The `*` legend, and which StatefulSets a name-only claim of unknown StatefulSet may be from.
fn render_name_only_legend(out: &mut impl Write, view: &OrphanListView) -> Result<()> {
    let name_only: Vec<&OrphanItem> = view.items.iter().filter(|i| i.name_only()).collect();
    if name_only.is_empty() {
        return Ok(());
    }
    match &view.only {
        Some(name) => writeln!(
            out,
            "* attributed by claim name only (no StatefulSet, pod or ownerReference is left to confirm it); counted as {name}'s because you named it."
        )?,
        None => writeln!(
            out,
            "* attributed by claim name only (no StatefulSet, pod or ownerReference is left to confirm it); --delete leaves these alone unless you name the StatefulSet: kubectl sts orphans <statefulset> --delete"
        )?,
    }
    let unknown: Vec<String> = name_only
        .iter()
        .filter(|i| i.stateful_set.is_none())
        .map(|i| format!("{} (one of {})", i.name, i.candidates.join(", ")))
        .collect();
    if !unknown.is_empty() {
        writeln!(
            out,
            "  StatefulSet unknown, the name fits several: {}",
            unknown.join("; ")
        )?;
    }
    Ok(())
}

/// Per-claim results of `--delete`, as a table.
pub fn render_results(out: &mut impl Write, results: &[DeleteResult], color: bool) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut table = new_table(["NAMESPACE", "CLAIM", "RESULT", "MESSAGE"]);
    for r in results {
        let (text, c) = match r.action {
            Action::Deleted => ("Deleted", comfy_table::Color::Green),
            Action::DryRun => ("DryRun", comfy_table::Color::Cyan),
            Action::Skipped => ("Skipped", comfy_table::Color::Yellow),
            Action::Failed => ("Failed", comfy_table::Color::Red),
        };
        table.add_row([
            cell(&r.namespace, None, color),
            cell(&r.name, None, color),
            cell(text, Some(c), color),
            cell(&r.message, None, color),
        ]);
    }
    write_table(out, &table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;
    use sts_model::fixtures::{claim, claim_for, now, pod, pod_for, statefulset, volume};

    /// web scaled 4 -> 2 (data-web-3 still mounted by a debug pod); cache deleted.
    fn objects() -> (
        Vec<StatefulSet>,
        Vec<Pod>,
        Vec<PersistentVolumeClaim>,
        Vec<PersistentVolume>,
    ) {
        let web = statefulset("demo", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        let cache = statefulset("demo", "cache").templates(&["data"]).build();
        let pods = vec![
            pod_for(&web, 0).build(),
            pod_for(&web, 1).build(),
            pod("demo", "debug").mounts("data-web-3").build(),
        ];
        let mut claims: Vec<_> = (0..4).map(|o| claim_for(&web, "data", o).build()).collect();
        claims.push(claim_for(&cache, "data", 0).capacity("5Gi").build());
        let volumes = vec![
            volume("pv-data-web-2", "Delete"),
            volume("pv-data-cache-0", "Retain"),
        ];
        (vec![web], pods, claims, volumes)
    }

    #[test]
    fn view_classifies_and_totals() {
        let (sets, pods, claims, volumes) = objects();
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let rows: Vec<(&str, OrphanReason, Option<&str>)> = view
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.reason, i.stateful_set.as_deref()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "data-cache-0",
                    OrphanReason::StatefulSetDeleted,
                    Some("cache")
                ),
                ("data-web-2", OrphanReason::ScaledDown, Some("web")),
                ("data-web-3", OrphanReason::ScaledDown, Some("web")),
            ]
        );
        assert_eq!(view.items[2].used_by, vec!["debug".to_string()]);
        assert_eq!(view.items[1].reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(view.items[0].reclaim_policy.as_deref(), Some("Retain"));
        // 5Gi + 1Gi; data-web-3 is in use.
        assert_eq!(view.total_reclaimable_bytes, 6 << 30);
        let only = build_view(&sets, &pods, &claims, Some(&volumes), Some("cache"));
        assert_eq!(only.items.len(), 1);
        let unknown = build_view(&sets, &pods, &claims, None, None);
        assert_eq!(unknown.items[1].reclaim_policy, None);
    }

    #[test]
    fn plan_skips_claims_in_use() {
        let (sets, pods, claims, volumes) = objects();
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let (delete, skipped) = plan_deletions(&view);
        let names: Vec<&str> = delete.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["data-cache-0", "data-web-2"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "data-web-3");
        assert_eq!(skipped[0].action, Action::Skipped);
        assert!(skipped[0].message.contains("debug"));
        // Preconditions carry the listed UID and resourceVersion.
        assert_eq!(delete[0].uid.as_deref(), Some("uid-pvc-demo-data-cache-0"));
    }

    #[test]
    fn delete_request_carries_preconditions_and_dry_run() {
        let (sets, pods, claims, volumes) = objects();
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let item = &view.items[0];
        // The resourceVersion is the one re-read right before the delete.
        let params = delete_params(item, Some("201".into()), DryRun::Server);
        let req = kube::core::Request::new("/api/v1/namespaces/demo/persistentvolumeclaims")
            .delete(&item.name, &params)
            .unwrap();
        assert!(
            req.uri()
                .path()
                .ends_with("/persistentvolumeclaims/data-cache-0")
        );
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["dryRun"], serde_json::json!(["All"]));
        assert_eq!(
            body["preconditions"],
            serde_json::json!({"uid": "uid-pvc-demo-data-cache-0", "resourceVersion": "201"})
        );
        let real = delete_params(item, Some("201".into()), DryRun::None);
        let req = kube::core::Request::new("/api/v1/namespaces/demo/persistentvolumeclaims")
            .delete(&item.name, &real)
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert!(body.get("dryRun").is_none(), "{body}");
        assert_eq!(body["preconditions"]["uid"], "uid-pvc-demo-data-cache-0");
    }

    #[test]
    fn table_rendering() {
        let (sets, pods, claims, volumes) = objects();
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Wide, false)
            .all_namespaces(true)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   NAME"), "{text}");
        assert!(
            lines[0].contains("RECLAIM") && lines[0].contains("NOTE"),
            "{text}"
        );
        assert!(
            lines[1].contains("data-cache-0") && lines[1].contains("StatefulSetDeleted"),
            "{text}"
        );
        assert!(lines[3].contains("debug"), "{text}");
        assert!(
            text.contains(
                "Reclaimable: 6Gi in 2 claim(s) that no pod uses. 1 of them are ScaledDown"
            ),
            "{text}"
        );
        assert!(text.contains("reclaim policy Delete destroys the data"));
        let mut empty = Vec::new();
        let none = build_view(&[], &[], &[], None, None);
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut empty, &none)
            .unwrap();
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            "No orphaned claims found.\n"
        );
    }

    #[test]
    fn no_headers_prints_the_rows_only() {
        let (sets, pods, claims, volumes) = objects();
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .no_headers(true)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), view.items.len(), "{text}");
        assert!(!text.contains("Reclaimable"), "{text}");
    }

    /// Issue 10, kind 3: what cannot be classified shows in every format, not only the table.
    /// `web-a` (template `data`) and `a` (template `data-web`) both name a claim `data-web-a-0`.
    #[test]
    fn unclassified_claims_are_in_every_format() {
        let web_a = statefulset("amb", "web-a")
            .replicas(0)
            .templates(&["data"])
            .build();
        let a = statefulset("amb", "a")
            .replicas(0)
            .templates(&["data-web"])
            .build();
        let claims = vec![claim("amb", "data-web-a-0").build()];
        let view = build_view(&[web_a, a], &[], &claims, None, None);
        assert!(view.items.is_empty());
        let want = serde_json::json!([{
            "namespace": "amb",
            "name": "data-web-a-0",
            "candidates": [
                {"statefulSet": "a", "template": "data-web"},
                {"statefulSet": "web-a", "template": "data"}
            ]
        }]);
        for format in [OutputFormat::Json, OutputFormat::Yaml] {
            let mut out = Vec::new();
            Printer::new(format, false)
                .all_namespaces(false)
                .at(now())
                .print(&mut out, &view)
                .unwrap();
            let value: serde_json::Value = match format {
                OutputFormat::Json => serde_json::from_slice(&out).unwrap(),
                _ => serde_yaml::from_slice(&out).unwrap(),
            };
            let mut got = value["unclassified"].clone();
            if let Some(c) = got[0]["candidates"].as_array_mut() {
                c.sort_by_key(|v| v["statefulSet"].as_str().unwrap_or_default().to_owned());
            }
            assert_eq!(got, want, "{format:?}");
        }
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Not classified, the name fits several StatefulSets: amb/data-web-a-0"),
            "{text}"
        );
    }

    #[test]
    fn json_follows_the_contract() {
        let (sets, pods, claims, volumes) = objects();
        let mut view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Json, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["kind"], "OrphanedClaimList");
        assert_eq!(json["apiVersion"], "sts.dev/v1alpha1");
        assert_eq!(json["totalReclaimableBytes"], 6u64 << 30);
        assert!(json.get("results").is_none());
        let item = &json["items"][0];
        let keys = crate::render::sorted_keys(item);
        assert_eq!(
            keys,
            vec![
                "attribution",
                "candidates",
                "capacity",
                "created",
                "evidence",
                "name",
                "namespace",
                "ordinal",
                "phase",
                "reason",
                "reclaimPolicy",
                "statefulSet",
                "storageClass",
                "template",
                "terminating",
                "usedBy",
                "volumeName"
            ]
        );
        assert_eq!(item["created"], "2026-11-22T03:00:00Z");
        // cache is gone; web's template `data` names it (rule 4), not the name alone.
        assert_eq!(item["attribution"], "TemplateName");
        assert_eq!(item["candidates"], serde_json::json!([]));
        assert_eq!(item["evidence"], serde_json::Value::Null);
        assert_eq!(json["items"][1]["attribution"], "StatefulSetTemplate");
        view.results = Some(vec![DeleteResult {
            namespace: "demo".into(),
            name: "data-cache-0".into(),
            action: Action::Deleted,
            message: "deleted".into(),
        }]);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Json, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            json["results"][0],
            serde_json::json!({"namespace": "demo", "name": "data-cache-0", "action": "Deleted", "message": "deleted"})
        );
    }

    /// Namespace `demo` after its only StatefulSet `visit-cnt-stfs` (template `data`, selector
    /// `app=visit-cnt-stfs`, 2 replicas) was deleted, plus an unlabelled `logs-a-b-0` (name
    /// fits `a-b` or `b`) and the unrelated `scratch`.
    fn deleted_only_statefulset() -> (Vec<Pod>, Vec<PersistentVolumeClaim>) {
        let gone = statefulset("demo", "visit-cnt-stfs")
            .replicas(2)
            .templates(&["data"])
            .build();
        let mut claims: Vec<_> = (0..2)
            .map(|o| claim_for(&gone, "data", o).capacity("2Gi").build())
            .collect();
        claims.push(claim("demo", "logs-a-b-0").build());
        claims.push(claim("demo", "scratch").build());
        (Vec::new(), claims)
    }

    #[test]
    fn name_only_orphans_are_listed_and_marked() {
        let (pods, claims) = deleted_only_statefulset();
        let view = build_view(&[], &pods, &claims, None, None);
        let rows: Vec<(&str, Option<&str>, Option<&str>, AttributionRule)> = view
            .items
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.stateful_set.as_deref(),
                    i.template.as_deref(),
                    i.attribution,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "data-visit-cnt-stfs-0",
                    Some("visit-cnt-stfs"),
                    Some("data"),
                    AttributionRule::NameOnly
                ),
                (
                    "data-visit-cnt-stfs-1",
                    Some("visit-cnt-stfs"),
                    Some("data"),
                    AttributionRule::NameOnly
                ),
                ("logs-a-b-0", None, None, AttributionRule::NameOnly),
            ]
        );
        assert!(
            view.items
                .iter()
                .all(|i| i.reason == OrphanReason::StatefulSetDeleted)
        );
        assert_eq!(
            view.items[0].evidence.as_deref(),
            Some("label app=visit-cnt-stfs")
        );
        assert_eq!(view.items[2].evidence, None);
        assert_eq!(view.items[2].candidates, vec!["a-b", "b"]);
        // Totals include them: 2Gi + 2Gi + 1Gi.
        assert_eq!(view.total_reclaimable_bytes, 5 << 30);

        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("data-visit-cnt-stfs-0   visit-cnt-stfs*   data "),
            "{text}"
        );
        assert!(
            lines[3].starts_with("logs-a-b-0              <unknown>*        <unknown> "),
            "{text}"
        );
        assert!(
            text.contains("Reclaimable: 5Gi in 3 claim(s) that no pod uses."),
            "{text}"
        );
        assert!(
            text.contains("* attributed by claim name only (no StatefulSet, pod or ownerReference is left to confirm it); --delete leaves these alone unless you name the StatefulSet: kubectl sts orphans <statefulset> --delete"),
            "{text}"
        );
        assert!(
            text.contains("StatefulSet unknown, the name fits several: logs-a-b-0 (one of a-b, b)"),
            "{text}"
        );

        let mut out = Vec::new();
        Printer::new(OutputFormat::Json, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["items"][0]["attribution"], "NameOnly");
        assert_eq!(json["items"][0]["statefulSet"], "visit-cnt-stfs");
        assert_eq!(
            json["items"][0]["candidates"],
            serde_json::json!(["cnt-stfs", "stfs", "visit-cnt-stfs"])
        );
        assert_eq!(json["items"][0]["evidence"], "label app=visit-cnt-stfs");
        assert_eq!(json["items"][2]["statefulSet"], serde_json::Value::Null);
        assert_eq!(json["items"][2]["template"], serde_json::Value::Null);
        assert_eq!(json["items"][2]["ordinal"], 0);
    }

    #[test]
    fn delete_without_name_skips_name_only_claims() {
        let (pods, claims) = deleted_only_statefulset();
        let view = build_view(&[], &pods, &claims, None, None);
        let (delete, skipped) = plan_deletions(&view);
        assert!(delete.is_empty(), "{delete:?}");
        let messages: Vec<(&str, Action, &str)> = skipped
            .iter()
            .map(|r| (r.name.as_str(), r.action, r.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (
                    "data-visit-cnt-stfs-0",
                    Action::Skipped,
                    "attributed by name only (StatefulSet visit-cnt-stfs); to delete it, name the StatefulSet: kubectl sts -n demo orphans visit-cnt-stfs --delete"
                ),
                (
                    "data-visit-cnt-stfs-1",
                    Action::Skipped,
                    "attributed by name only (StatefulSet visit-cnt-stfs); to delete it, name the StatefulSet: kubectl sts -n demo orphans visit-cnt-stfs --delete"
                ),
                (
                    "logs-a-b-0",
                    Action::Skipped,
                    "attributed by name only (StatefulSet one of a-b, b); to delete it, name the StatefulSet: kubectl sts -n demo orphans <statefulset> --delete"
                ),
            ]
        );
        // Confirmed attributions in the same namespace are still deleted.
        let (sets, pods, mut claims, volumes) = objects();
        claims.extend(deleted_only_statefulset().1);
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        let (delete, skipped) = plan_deletions(&view);
        let names: Vec<&str> = delete.iter().map(|i| i.name.as_str()).collect();
        // visit-cnt-stfs's claims: rule 4 now (web uses template `data`), not name-only.
        assert_eq!(
            names,
            vec![
                "data-cache-0",
                "data-visit-cnt-stfs-0",
                "data-visit-cnt-stfs-1",
                "data-web-2"
            ]
        );
        assert_eq!(
            skipped.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["data-web-3", "logs-a-b-0"]
        );
    }

    #[test]
    fn naming_the_deleted_statefulset_selects_and_deletes_its_claims() {
        let (pods, claims) = deleted_only_statefulset();
        let view = build_view(&[], &pods, &claims, None, Some("visit-cnt-stfs"));
        let (delete, skipped) = plan_deletions(&view);
        let names: Vec<&str> = delete.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["data-visit-cnt-stfs-0", "data-visit-cnt-stfs-1"]
        );
        assert!(skipped.is_empty());
        assert_eq!(view.total_reclaimable_bytes, 4 << 30);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("counted as visit-cnt-stfs's because you named it."),
            "{text}"
        );

        // The label chose visit-cnt-stfs: another split's StatefulSet does not get them.
        let other = build_view(&[], &pods, &claims, None, Some("stfs"));
        assert!(other.items.is_empty(), "{:?}", other.items);
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &other)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "No orphaned claims of StatefulSet stfs found.\n"
        );

        // Unknown StatefulSet: naming a candidate attributes it to that one, and deletes it.
        let b = build_view(&[], &pods, &claims, None, Some("b"));
        assert_eq!(b.items.len(), 1);
        let item = &b.items[0];
        assert_eq!(
            (item.stateful_set.as_deref(), item.template.as_deref()),
            (Some("b"), Some("logs-a"))
        );
        assert_eq!(item.evidence.as_deref(), Some("named on the command line"));
        assert!(
            item.note
                .starts_with("StatefulSet b named on the command line; ")
        );
        let (delete, _) = plan_deletions(&b);
        assert_eq!(delete.len(), 1);
        assert_eq!(
            build_view(&[], &pods, &claims, None, Some("a-b"))
                .items
                .len(),
            1
        );
        assert!(
            build_view(&[], &pods, &claims, None, Some("a"))
                .items
                .is_empty()
        );
    }

    #[test]
    fn named_name_only_claims_in_use_are_still_skipped() {
        let (_, claims) = deleted_only_statefulset();
        let pods = vec![pod("demo", "debug").mounts("data-visit-cnt-stfs-1").build()];
        let view = build_view(&[], &pods, &claims, None, Some("visit-cnt-stfs"));
        let (delete, skipped) = plan_deletions(&view);
        assert_eq!(delete.len(), 1);
        assert_eq!(delete[0].name, "data-visit-cnt-stfs-0");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].message, "in use by pod(s) debug");
    }

    #[test]
    fn output_family_one_row_per_orphaned_claim() {
        let (sets, pods, mut claims, volumes) = objects();
        for claim in &mut claims {
            claim.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        }
        let view = build_view(&sets, &pods, &claims, Some(&volumes), None);
        crate::testing::assert_schema("OrphanedClaimList", &serde_json::to_value(&view).unwrap());
        let mut with_results = view.clone();
        with_results.results = Some(vec![DeleteResult {
            namespace: "demo".into(),
            name: "data-web-2".into(),
            action: Action::DryRun,
            message: String::new(),
        }]);
        crate::testing::assert_schema(
            "OrphanedClaimList",
            &serde_json::to_value(&with_results).unwrap(),
        );
        let print = |printer: Printer| {
            let mut out = Vec::new();
            printer.at(now()).print(&mut out, &view).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            print(Printer::new(OutputFormat::Name, false)),
            "persistentvolumeclaim/data-cache-0\npersistentvolumeclaim/data-web-2\npersistentvolumeclaim/data-web-3\n"
        );
        let by_capacity = Printer::with_output(
            crate::output::Output::parse("custom-columns=CLAIM:.name,SIZE:.capacity").unwrap(),
            false,
        )
        .sort_by(crate::output::JsonPathExpr::parse_relaxed(".ordinal").ok());
        let text = print(by_capacity);
        let order: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            order,
            vec!["data-cache-0", "data-web-2", "data-web-3"],
            "{text}"
        );
        let text =
            print(Printer::new(OutputFormat::Table, false).labels(vec!["app".into()], false));
        let header = text.lines().next().unwrap();
        assert!(header.ends_with("AGE   APP"), "{text}");
        assert!(text.lines().nth(1).unwrap().ends_with("web"), "{text}");
    }
}
