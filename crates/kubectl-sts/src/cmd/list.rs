//! `kubectl sts list`: StatefulSets with readiness, revisions, rollout state, Service health,
//! PVC and orphan counts.
//!
//! Requests (each one paginated LIST over the scope): StatefulSets (twice with `-l`: the
//! selected ones to show, and all of them because claim attribution needs every StatefulSet
//! of the namespace), Pods, PVCs, Services, ControllerRevisions, FailedCreate Events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use kube::runtime::watcher;
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::index::{
    ByName, RevisionsByOwner, events_by_involved_object, pods_by_statefulset_name, pods_of,
};
use sts_model::objects::service_name;
use sts_model::orphans::{ClaimIndex, ClaimOrigin};
use sts_model::revision::History;
use sts_model::rollout::{
    DEFAULT_STALL_AFTER, FAILED_CREATE_WINDOW, RolloutState, failed_create_events,
    failed_create_persists, max_unavailable, partition, ready_count, rollout_status,
    update_strategy,
};
use sts_model::service_health::service_health;

use crate::cli::ListArgs;
use crate::collect::{list_events_lenient, list_scope};
use crate::error::Result;
use crate::printer::{Printer, TextStyle, View, reorder};
use crate::render::{ServiceView, VIEW_API_VERSION, cell, health_color, new_table, rollout_color};
use crate::watch::{Follow, Listed, Wake, snapshot};
use crate::{Context, Outcome};

/// `kind: StatefulSetList` (docs/contracts.md).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetListView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<ListItem>,
    /// Orphaned claims of StatefulSets that no longer exist (they have no row). Table only.
    #[serde(skip)]
    pub deleted_set_orphans: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListItem {
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
    /// Ready pods, counted from the pods' Ready conditions (not `status.readyReplicas`).
    pub ready_replicas: i32,
    /// `status.readyReplicas` when it differs from the pods' count (a stale status); else
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_ready_replicas: Option<i32>,
    pub strategy: String,
    pub partition: i32,
    /// `rollingUpdate.maxUnavailable` as written; absent when not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<String>,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    pub rollout: RolloutState,
    pub service: ServiceView,
    pub pvc_count: usize,
    pub orphan_count: usize,
    // Table-only details.
    #[serde(skip)]
    pub current_number: Option<i64>,
    #[serde(skip)]
    pub update_number: Option<i64>,
    #[serde(skip)]
    pub created: Option<Timestamp>,
    #[serde(skip)]
    pub rollout_reason: Option<String>,
    /// The StatefulSet's labels, for `-L`/`--show-labels` (not part of the JSON schema).
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

/// Everything `list` reads from the API.
pub struct ListInput {
    /// Every StatefulSet in scope (claim attribution needs them all).
    pub all_statefulsets: Vec<StatefulSet>,
    /// The ones to show (`-l`), as (namespace, name); `None` = all.
    pub selected: Option<BTreeSet<(String, String)>>,
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub services: Vec<Service>,
    pub revisions: Vec<ControllerRevision>,
    pub events: Vec<Event>,
}

pub async fn run(ctx: &Context, args: &ListArgs) -> Result<Outcome> {
    if args.watch {
        return follow(ctx).await;
    }
    let selected = async {
        match ctx.selector.as_deref() {
            Some(sel) => {
                let sets = list_scope::<StatefulSet>(ctx, Some(sel), None).await?;
                Ok(Some(sets.iter().map(key).collect::<BTreeSet<_>>()))
            }
            None => Ok(None),
        }
    };
    let (all_statefulsets, selected, pods, claims, services, revisions, events) = tokio::try_join!(
        list_scope::<StatefulSet>(ctx, None, None),
        selected,
        list_scope::<Pod>(ctx, None, None),
        list_scope::<PersistentVolumeClaim>(ctx, None, None),
        list_scope::<Service>(ctx, None, None),
        list_scope::<ControllerRevision>(ctx, None, None),
        list_events_lenient(ctx, None, FAILED_CREATE_EVENTS),
    )?;
    let input = ListInput {
        all_statefulsets,
        selected,
        pods,
        claims,
        services,
        revisions,
        events,
    };
    let printer = Printer::for_context(ctx);
    let view = build_view(&input, printer.style().now);
    let mut out = std::io::stdout().lock();
    printer.print(&mut out, &view)?;
    if view.items.is_empty() && !ctx.output.is_structured() {
        // A hint on stderr; a closed stderr is not worth a panic.
        let _ = writeln!(std::io::stderr(), "No StatefulSets found {}.", ctx.scope());
    }
    Ok(Outcome::Success)
}

/// The field selector of the Events `list` reads.
const FAILED_CREATE_EVENTS: &str = "involvedObject.kind=StatefulSet,reason=FailedCreate";

/// How often `--watch` recomputes the rows with no change in the cluster (the rollout state
/// depends on time: a pod not Ready for 5 minutes makes it Stalled).
const REEVALUATE: std::time::Duration = std::time::Duration::from_secs(10);

/// `list --watch`: the same reads as watches over the scope, then on every change the rows
/// whose content changed, as `kubectl get -w` prints them (the header once). With `-o json`
/// etc., the whole view again on every change.
async fn follow(ctx: &Context) -> Result<Outcome> {
    if ctx.print.sort_by.is_some() {
        return Err(crate::Error::Usage(
            "--sort-by cannot be combined with --watch (rows are printed as they change)".into(),
        ));
    }
    let scope = ctx.scope();
    let mut follow = Follow::new(&ctx.server);
    let config = watcher::Config::default;
    let sets = follow.watch(ctx.api::<StatefulSet>(), config(), scope.clone(), true);
    let selected = ctx.selector.as_deref().map(|sel| {
        follow.watch(
            ctx.api::<StatefulSet>(),
            config().labels(sel),
            scope.clone(),
            true,
        )
    });
    let pods = follow.watch(ctx.api::<Pod>(), config(), scope.clone(), true);
    let claims = follow.watch(
        ctx.api::<PersistentVolumeClaim>(),
        config(),
        scope.clone(),
        true,
    );
    let services = follow.watch(ctx.api::<Service>(), config(), scope.clone(), true);
    let revisions = follow.watch(
        ctx.api::<ControllerRevision>(),
        config(),
        scope.clone(),
        true,
    );
    let events = follow.watch(
        ctx.api::<Event>(),
        config().fields(FAILED_CREATE_EVENTS),
        scope,
        false,
    );
    let mut required: Vec<&dyn Listed> = vec![&sets, &pods, &claims, &services, &revisions];
    if let Some(selected) = &selected {
        required.push(selected);
    }
    if !follow.listed(&required).await? {
        return Ok(Outcome::Success);
    }

    let mut out = std::io::stdout().lock();
    let mut shown: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut last_view: Option<String> = None;
    let mut first = true;
    loop {
        let input = ListInput {
            all_statefulsets: snapshot(&sets),
            selected: selected
                .as_ref()
                .map(|s| snapshot(s).iter().map(key).collect()),
            pods: snapshot(&pods),
            claims: snapshot(&claims),
            services: snapshot(&services),
            revisions: snapshot(&revisions),
            events: snapshot(&events),
        };
        let printer = Printer::for_context(ctx);
        let view = build_view(&input, printer.style().now);
        if ctx.output.is_text() {
            print_changed_rows(&mut out, &printer, &view, &mut shown, first)?;
            if first && view.items.is_empty() {
                let _ = writeln!(
                    std::io::stderr(),
                    "No StatefulSets found {} yet; watching.",
                    ctx.scope()
                );
            }
        } else {
            let signature = format!("{:?}", view.items);
            if last_view.as_ref() != Some(&signature) {
                printer.print(&mut out, &view)?;
                last_view = Some(signature);
            }
        }
        out.flush()?;
        first = false;
        if follow.next(REEVALUATE).await? == Wake::Interrupted {
            return Ok(Outcome::Success);
        }
    }
}

/// Print the rows of `view` whose text differs from what `shown` last printed for that
/// StatefulSet (all of them, and the header, when `first`), and remember them. A row is
/// compared as rendered with ages counted to a fixed instant and whitespace collapsed, so an
/// older age or a change that the columns do not show is not a change. The printed rows are
/// those of a render at now, so they have that render's widths.
fn print_changed_rows(
    out: &mut impl Write,
    printer: &Printer,
    view: &StatefulSetListView,
    shown: &mut BTreeMap<(String, String), String>,
    first: bool,
) -> Result<()> {
    let render = |printer: &Printer| -> Result<Vec<String>> {
        let mut table = Vec::new();
        printer.print(&mut table, view)?;
        Ok(String::from_utf8_lossy(&table)
            .lines()
            .map(str::to_string)
            .collect())
    };
    let header = usize::from(!printer.style().no_headers && !view.items.is_empty());
    let fixed = render(&printer.clone().at(Timestamp::UNIX_EPOCH))?;
    let compared = |i: usize| -> String {
        fixed
            .get(header + i)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let changed: Vec<usize> = (0..view.items.len())
        .filter(|i| {
            let item = &view.items[*i];
            shown.get(&(item.namespace.clone(), item.name.clone())) != Some(&compared(*i))
        })
        .collect();
    if changed.is_empty() && !first {
        return Ok(());
    }
    let lines = render(printer)?;
    if first {
        for line in lines.iter().take(header) {
            writeln!(out, "{line}")?;
        }
    }
    for i in changed {
        if let Some(line) = lines.get(header + i) {
            writeln!(out, "{line}")?;
        }
        let item = &view.items[i];
        shown.insert((item.namespace.clone(), item.name.clone()), compared(i));
    }
    Ok(())
}

fn key(sts: &StatefulSet) -> (String, String) {
    (
        sts.metadata.namespace.clone().unwrap_or_default(),
        sts.metadata.name.clone().unwrap_or_default(),
    )
}

/// Pure: the list view from what was read.
///
/// Each kind is indexed once (`sts_model::index`, [`ClaimIndex`]) and every StatefulSet's
/// pods, revisions, Service and events are looked up, so the view costs time linear in the
/// number of objects (issue 15), however many StatefulSets there are.
pub fn build_view(input: &ListInput, now: Timestamp) -> StatefulSetListView {
    let sets = &input.all_statefulsets;
    let claim_index = ClaimIndex::new(sets, &input.pods);
    let pods = pods_by_statefulset_name(&input.pods);
    let revisions = RevisionsByOwner::new(&input.revisions);
    let services = ByName::new(&input.services);
    let events = events_by_involved_object(&input.events);
    let mut pvc_counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for claim in &input.claims {
        if let ClaimOrigin::Attributed(a) = claim_index.attribute(claim) {
            let ns = claim.metadata.namespace.clone().unwrap_or_default();
            *pvc_counts.entry((ns, a.statefulset)).or_default() += 1;
        }
    }
    let report = claim_index.find_orphans(&input.claims);
    let mut orphan_counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for orphan in &report.orphans {
        let k = (
            orphan.namespace().to_string(),
            // Unknown (name-only, several candidates): "" is no StatefulSet, so it counts
            // among the deleted StatefulSets' orphans below.
            orphan.statefulset().unwrap_or_default().to_string(),
        );
        *orphan_counts.entry(k).or_default() += 1;
    }
    let existing: BTreeSet<(String, String)> = sets.iter().map(key).collect();
    let deleted_set_orphans = orphan_counts
        .iter()
        .filter(|(k, _)| !existing.contains(*k))
        .map(|(_, n)| n)
        .sum();

    let mut items: Vec<ListItem> = sets
        .iter()
        .filter(|s| {
            input
                .selected
                .as_ref()
                .is_none_or(|sel| sel.contains(&key(s)))
        })
        .map(|sts| {
            let k = key(sts);
            let status = sts.status.as_ref();
            let own_pods = pods_of(&pods, sts);
            let history = History::new(sts, revisions.of(sts)).ok();
            let current_revision = status.and_then(|s| s.current_revision.clone());
            let update_revision = status.and_then(|s| s.update_revision.clone());
            let number = |name: &Option<String>| {
                name.as_deref()
                    .and_then(|n| history.as_ref().and_then(|h| h.number_of(n)))
            };
            let failed = failed_create_persists(
                &failed_create_events(
                    events.get(&(k.0.as_str(), k.1.as_str())),
                    sts,
                    now,
                    FAILED_CREATE_WINDOW,
                ),
                now,
            );
            let rollout = rollout_status(sts, own_pods, failed, now, DEFAULT_STALL_AFTER);
            let ready = ready_count(sts, own_pods);
            ListItem {
                replicas: sts_model::naming::desired_replicas(sts),
                ready_replicas: ready.pods,
                status_ready_replicas: ready.status_disagrees(),
                max_unavailable: max_unavailable(sts),
                current_number: number(&current_revision),
                update_number: number(&update_revision),
                current_revision,
                update_revision,
                rollout: rollout.state,
                rollout_reason: rollout.reason,
                service: ServiceView {
                    name: service_name(sts).map(str::to_string),
                    health: service_health(
                        sts,
                        service_name(sts).map_or(&[][..], |name| services.get_slice(&k.0, name)),
                    ),
                },
                pvc_count: pvc_counts.get(&k).copied().unwrap_or(0),
                orphan_count: orphan_counts.get(&k).copied().unwrap_or(0),
                strategy: update_strategy(sts).to_string(),
                partition: partition(sts),
                created: sts.metadata.creation_timestamp.as_ref().map(|t| t.0),
                labels: sts.metadata.labels.clone().unwrap_or_default(),
                namespace: k.0,
                name: k.1,
            }
        })
        .collect();
    items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    StatefulSetListView {
        api_version: VIEW_API_VERSION,
        kind: "StatefulSetList",
        items,
        deleted_set_orphans,
    }
}

fn revision_cell(item: &ListItem) -> String {
    let show = |n: Option<i64>, name: &Option<String>| match (n, name) {
        (Some(n), _) => n.to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => "<none>".to_string(),
    };
    if item.current_revision == item.update_revision {
        show(item.update_number, &item.update_revision)
    } else {
        format!(
            "{}->{}",
            show(item.current_number, &item.current_revision),
            show(item.update_number, &item.update_revision)
        )
    }
}

/// The table (`table`/`wide`); JSON/YAML are the view itself; one row per StatefulSet.
impl View for StatefulSetListView {
    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        write_text_table(out, self, style)
    }

    fn object_names(&self) -> Option<Vec<String>> {
        Some(
            self.items
                .iter()
                .map(|i| format!("statefulset.apps/{}", i.name))
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

fn write_text_table(
    out: &mut impl Write,
    view: &StatefulSetListView,
    style: &TextStyle,
) -> Result<()> {
    let (all_namespaces, color, now) = (style.all_namespaces, style.color, style.now);
    if view.items.is_empty() {
        return Ok(());
    }
    let wide = style.wide;
    let mut header = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend([
        "NAME", "READY", "REVISION", "ROLLOUT", "SERVICE", "PVCS", "ORPHANS", "AGE",
    ]);
    if wide {
        header.extend([
            "STRATEGY",
            "PARTITION",
            "CURRENT-REVISION",
            "UPDATE-REVISION",
            "DETAIL",
        ]);
    }
    let mut header: Vec<String> = header.into_iter().map(str::to_string).collect();
    header.extend(style.label_headers());
    let mut table = new_table(header);
    for item in &view.items {
        let mut row = Vec::new();
        if all_namespaces {
            row.push(cell(&item.namespace, None, color));
        }
        let service = match &item.service.name {
            Some(name) if item.service.health != sts_model::service_health::ServiceHealth::Ok => {
                format!("{name} ({})", item.service.health.label())
            }
            Some(name) => name.clone(),
            None => format!("<{}>", item.service.health.label()),
        };
        row.extend([
            cell(&item.name, None, color),
            cell(
                format!("{}/{}", item.ready_replicas, item.replicas),
                None,
                color,
            ),
            cell(revision_cell(item), None, color),
            cell(item.rollout.label(), rollout_color(item.rollout), color),
            cell(service, health_color(item.service.health), color),
            cell(item.pvc_count.to_string(), None, color),
            cell(
                item.orphan_count.to_string(),
                (item.orphan_count > 0).then_some(comfy_table::Color::Yellow),
                color,
            ),
            cell(
                item.created
                    .map_or_else(|| "<unknown>".to_string(), |c| format_age(c, now)),
                None,
                color,
            ),
        ]);
        if wide {
            row.extend([
                cell(
                    match &item.max_unavailable {
                        Some(max) => format!("{} (maxUnavailable {max})", item.strategy),
                        None => item.strategy.clone(),
                    },
                    None,
                    color,
                ),
                cell(item.partition.to_string(), None, color),
                cell(
                    item.current_revision.as_deref().unwrap_or("<none>"),
                    None,
                    color,
                ),
                cell(
                    item.update_revision.as_deref().unwrap_or("<none>"),
                    None,
                    color,
                ),
                cell(item.rollout_reason.as_deref().unwrap_or(""), None, color),
            ]);
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
    if view.deleted_set_orphans > 0 {
        writeln!(
            out,
            "\n{} orphaned claim(s) belong to StatefulSets that no longer exist: see `kubectl sts orphans`.",
            view.deleted_set_orphans
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;
    use sts_model::fixtures::{claim_for, controller_revision, now, pod_for, service, statefulset};

    #[test]
    fn watch_prints_a_row_again_only_when_its_text_changed() {
        let mut input = input();
        let printer = Printer::new(OutputFormat::Table, false).at(now());
        let mut shown = BTreeMap::new();
        let mut out = Vec::new();
        let view = build_view(&input, now());
        print_changed_rows(&mut out, &printer, &view, &mut shown, true).unwrap();
        let first = String::from_utf8(out).unwrap();
        assert_eq!(first.lines().count(), 1 + view.items.len(), "{first}");
        assert!(first.starts_with("NAME "), "{first}");
        // Later, older ages only, and a label no column shows: nothing printed.
        let later = Printer::new(OutputFormat::Table, false)
            .at(now() + jiff::SignedDuration::from_secs(600));
        input.all_statefulsets[0]
            .metadata
            .labels
            .get_or_insert_default()
            .insert("team".into(), "a".into());
        let mut out = Vec::new();
        print_changed_rows(
            &mut out,
            &later,
            &build_view(&input, now()),
            &mut shown,
            false,
        )
        .unwrap();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        // One StatefulSet scaled: its row alone.
        let name = input.all_statefulsets[0].metadata.name.clone().unwrap();
        input.all_statefulsets[0].spec.as_mut().unwrap().replicas = Some(7);
        let mut out = Vec::new();
        print_changed_rows(
            &mut out,
            &later,
            &build_view(&input, now()),
            &mut shown,
            false,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with(&format!("{name} ")), "{text}");
    }

    fn input() -> ListInput {
        // web: 2 replicas (scaled down from 4), rolling from rev 1 to rev 2 with partition 1.
        let web = statefulset("prod", "web")
            .replicas(2)
            .templates(&["data"])
            .partition(1)
            .revisions("web-aaa", "web-bbb")
            .ready(2, 1)
            .build();
        // db: no Service.
        let db = statefulset("prod", "db")
            .replicas(1)
            .templates(&["data"])
            .build();
        let old = statefulset("prod", "old").templates(&["data"]).build();
        let pods = vec![
            pod_for(&web, 0).revision("web-aaa").build(),
            pod_for(&web, 1).revision("web-bbb").build(),
            pod_for(&db, 0).build(),
        ];
        let claims = (0..4)
            .map(|o| claim_for(&web, "data", o).build())
            .chain([
                claim_for(&db, "data", 0).build(),
                claim_for(&old, "data", 0).build(),
            ])
            .collect();
        ListInput {
            revisions: vec![
                controller_revision(&web, "web-aaa", 1),
                controller_revision(&web, "web-bbb", 2),
            ],
            all_statefulsets: vec![web, db],
            selected: None,
            pods,
            claims,
            services: vec![service("prod", "web").build()],
            events: vec![],
        }
    }

    #[test]
    fn view_counts_claims_orphans_and_states() {
        let view = build_view(&input(), now());
        let names: Vec<&str> = view.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["db", "web"]);
        let web = &view.items[1];
        assert_eq!(web.pvc_count, 4);
        assert_eq!(web.orphan_count, 2);
        assert_eq!(web.rollout, RolloutState::PausedByPartition);
        assert_eq!((web.current_number, web.update_number), (Some(1), Some(2)));
        assert_eq!(
            web.service.health,
            sts_model::service_health::ServiceHealth::Ok
        );
        let db = &view.items[0];
        assert_eq!(
            db.service.health,
            sts_model::service_health::ServiceHealth::Missing
        );
        assert_eq!((db.pvc_count, db.orphan_count), (1, 0));
        assert_eq!(db.rollout, RolloutState::Complete);
        assert_eq!(view.deleted_set_orphans, 1);
    }

    #[test]
    fn selector_restricts_rows_not_attribution() {
        let mut input = input();
        input.selected = Some([("prod".to_string(), "web".to_string())].into());
        let view = build_view(&input, now());
        assert_eq!(view.items.len(), 1);
        assert_eq!(view.items[0].orphan_count, 2);
    }

    #[test]
    fn table_rendering() {
        let view = build_view(&input(), now());
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        for col in [
            "READY", "REVISION", "ROLLOUT", "SERVICE", "PVCS", "ORPHANS", "AGE",
        ] {
            assert!(lines[0].contains(col), "missing {col}: {text}");
        }
        assert!(lines[1].starts_with("db "), "{text}");
        assert!(lines[1].contains("db (missing)"), "{text}");
        assert!(
            lines[2].contains("2/2") && lines[2].contains("1->2"),
            "{text}"
        );
        assert!(lines[2].contains("paused by partition"), "{text}");
        assert!(text.contains("1 orphaned claim(s) belong to StatefulSets that no longer exist"));
        assert!(!text.contains('\u{1b}'), "no colour when not allowed");
        assert!(!lines[0].contains("STRATEGY"));
    }

    #[test]
    fn wide_and_namespace_columns_and_colour() {
        let view = build_view(&input(), now());
        let mut out = Vec::new();
        Printer::new(OutputFormat::Wide, true)
            .all_namespaces(true)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let header = text.lines().next().unwrap();
        assert!(header.starts_with("NAMESPACE"));
        assert!(header.contains("STRATEGY") && header.contains("UPDATE-REVISION"));
        assert!(text.contains("web-bbb"));
        assert!(text.contains('\u{1b}'), "colour when allowed");
    }

    #[test]
    fn json_follows_the_contract() {
        let view = build_view(&input(), now());
        let mut out = Vec::new();
        Printer::new(OutputFormat::Json, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut out, &view)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["apiVersion"], "sts.dev/v1alpha1");
        assert_eq!(json["kind"], "StatefulSetList");
        let web = &json["items"][1];
        let keys = crate::render::sorted_keys(web);
        assert_eq!(
            keys,
            vec![
                "currentRevision",
                "name",
                "namespace",
                "orphanCount",
                "partition",
                "pvcCount",
                "readyReplicas",
                "replicas",
                "rollout",
                "service",
                "strategy",
                "updateRevision"
            ]
        );
        assert_eq!(web["rollout"], "PausedByPartition");
        assert_eq!(
            web["service"],
            serde_json::json!({"name": "web", "health": "Ok"})
        );
        assert_eq!(web["currentRevision"], "web-aaa");
        assert_eq!(json["items"][0]["service"]["health"], "Missing");
        // YAML carries the same document.
        let mut yaml = Vec::new();
        Printer::new(OutputFormat::Yaml, false)
            .all_namespaces(false)
            .at(now())
            .print(&mut yaml, &view)
            .unwrap();
        let back: serde_json::Value = serde_yaml::from_slice(&yaml).unwrap();
        assert_eq!(back, json);
    }

    fn print_with(printer: Printer, view: &StatefulSetListView) -> Result<String> {
        let mut out = Vec::new();
        printer.at(now()).print(&mut out, view)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn output(value: &str) -> Printer {
        Printer::with_output(crate::output::Output::parse(value).unwrap(), false)
    }

    fn labelled_view() -> StatefulSetListView {
        let mut input = input();
        input.all_statefulsets[0].metadata.labels = Some(
            [
                ("app".to_string(), "web".to_string()),
                ("app.kubernetes.io/part-of".to_string(), "shop".to_string()),
            ]
            .into(),
        );
        build_view(&input, now())
    }

    #[test]
    fn name_output_is_kubectls() {
        let text = print_with(Printer::new(OutputFormat::Name, false), &labelled_view()).unwrap();
        assert_eq!(text, "statefulset.apps/db\nstatefulset.apps/web\n");
    }

    #[test]
    fn jsonpath_output_reads_the_json_view() {
        let view = labelled_view();
        let text = print_with(output("jsonpath={.items[*].name}"), &view).unwrap();
        assert_eq!(text, "db web");
        let text = print_with(
            output(r#"jsonpath={range .items[*]}{.name}{"\t"}{.service.health}{"\n"}{end}"#),
            &view,
        )
        .unwrap();
        assert_eq!(text, "db\tMissing\nweb\tOk\n");
    }

    #[test]
    fn custom_columns_one_row_per_item() {
        let view = labelled_view();
        let printer = output("custom-columns=NAME:.name,SERVICE:.service.name,PVCS:{.pvcCount}");
        let text = print_with(printer.clone(), &view).unwrap();
        assert_eq!(
            text,
            "NAME   SERVICE   PVCS\ndb     db        1\nweb    web       4\n"
        );
        let text = print_with(printer.no_headers(true), &view).unwrap();
        assert_eq!(text, "db     db        1\nweb    web       4\n");
    }

    #[test]
    fn sort_by_applies_to_every_format() {
        let view = labelled_view();
        let by = |e: &str| crate::output::JsonPathExpr::parse_relaxed(e).ok();
        // Descending pvcCount is not kubectl's; ascending: db (1) before web (4); by
        // orphanCount: web (2) after db (0); by rollout: Complete < PausedByPartition.
        let text = print_with(
            Printer::new(OutputFormat::Name, false).sort_by(by("{.updateRevision}")),
            &view,
        )
        .unwrap();
        // db has no updateRevision (null): first.
        assert_eq!(text, "statefulset.apps/db\nstatefulset.apps/web\n");
        let text = print_with(
            Printer::new(OutputFormat::Table, false).sort_by(by(".orphanCount")),
            &view,
        )
        .unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with("db "), "{text}");
        // Reverse the natural order to see that sorting happens: by service health, Missing <
        // Ok, and by a name that sorts web first.
        let mut view = labelled_view();
        view.items[0].name = "zz".into();
        let text = print_with(
            Printer::new(OutputFormat::Json, false).sort_by(by(".name")),
            &view,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["items"][0]["name"], "web");
        assert_eq!(json["items"][1]["name"], "zz");
        let err = print_with(
            Printer::new(OutputFormat::Table, false).sort_by(by(".nosuch")),
            &view,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("couldn't find any field"), "{err}");
    }

    #[test]
    fn label_columns_and_show_labels() {
        let view = labelled_view();
        let text = print_with(
            Printer::new(OutputFormat::Table, false)
                .labels(vec!["app".into(), "app.kubernetes.io/part-of".into()], true),
            &view,
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("AGE   APP   PART-OF   LABELS"), "{text}");
        assert!(lines[1].ends_with("<none>"), "db has no labels: {text}");
        assert!(
            lines[2].ends_with("web   shop      app=web,app.kubernetes.io/part-of=shop"),
            "{text}"
        );
        let text = print_with(
            Printer::new(OutputFormat::Table, false).no_headers(true),
            &view,
        )
        .unwrap();
        assert!(text.starts_with("db "), "{text}");
        // JSON is unchanged by the label flags (kubectl ignores them there too).
        let json = print_with(
            Printer::new(OutputFormat::Json, false).labels(vec!["app".into()], true),
            &view,
        )
        .unwrap();
        assert!(!json.contains("labels"), "{json}");
    }

    #[test]
    fn json_view_matches_its_published_schema() {
        let view = labelled_view();
        let json = serde_json::to_value(&view).unwrap();
        crate::testing::assert_schema("StatefulSetList", &json);
        let empty = build_view(
            &ListInput {
                all_statefulsets: vec![],
                selected: None,
                pods: vec![],
                claims: vec![],
                services: vec![],
                revisions: vec![],
                events: vec![],
            },
            now(),
        );
        crate::testing::assert_schema("StatefulSetList", &serde_json::to_value(&empty).unwrap());
    }
}
