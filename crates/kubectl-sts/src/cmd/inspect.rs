//! `kubectl sts inspect NAME`: one StatefulSet in depth — header, a row per ordinal (missing
//! pods included) with revision and DNS name, the partition line, per-pod claims with the PV's
//! reclaim policy, and warnings.
//!
//! Requests scale with the StatefulSet, not with its namespace: the StatefulSet, its pods,
//! revisions and claims ([`Target`]), then at once: its governing Service (GET), its bound
//! PersistentVolumes ([`get_volumes`]: a GET each, or one LIST when there are many), the Events
//! about it (field selector), and the Service's EndpointSlices (label
//! `kubernetes.io/service-name`; on servers without `discovery.k8s.io/v1`, one GET of its
//! Endpoints). `-v` logs each request.
//!
//! A pod's DNS name is shown only when those endpoints publish its hostname as ready; otherwise
//! the DNS column says why there is no record.

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::Color;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::naming::{
    MAX_NAME_FOR_REVISION_LABEL, claim_name, claim_template_names, desired_replicas,
    name_breaks_revision_label, ordinal_range, ordinals_start, pod_dns_name,
};
use sts_model::objects::{pod_revision, service_name, statefulset_selector_query};
use sts_model::orphans::{RetentionPolicy, claim_capacity, retention_policy};
use sts_model::revision::History;
use sts_model::rollout::{
    DEFAULT_STALL_AFTER, FAILED_CREATE_WINDOW, RolloutState, RolloutStatus, failed_create_events,
    failed_create_persists, max_unavailable, partition, partition_ordinal, pod_is_ready,
    pods_by_ordinal, ready_count, rollback_trap, rollout_status, update_strategy,
};
use sts_model::service_health::{
    PodDns, PublishedHostnames, ServiceHealth, pod_dns, service_health,
};

use crate::cli::InspectArgs;
use crate::collect::{get_each, get_volumes, list_events_lenient, map_kube_error};
use crate::error::{Error, Result, Scope};
use crate::printer::{Printer, TextStyle, View};
use crate::render::{
    ServiceView, VIEW_API_VERSION, cell, health_color, new_table, paint, rollout_color, write_table,
};
use crate::target::{Parts, Target, claim_labels, is_template_claim};
use crate::watch::{Follow, Listed, Wake, snapshot};
use crate::{Context, Outcome};

/// `kind: StatefulSetInspection` (docs/contracts.md).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectionView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
    pub strategy: String,
    pub partition: i32,
    pub max_unavailable: Option<String>,
    /// Ready pods, counted from the pods' Ready conditions (not `status.readyReplicas`).
    pub ready_replicas: i32,
    /// `status.readyReplicas` when it differs from the pods' count (a stale status); else
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_ready_replicas: Option<i32>,
    pub pod_management_policy: String,
    pub ordinals_start: i32,
    pub retention_policy: RetentionPolicy,
    pub service: ServiceView,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    pub rollout: RolloutState,
    pub pods: Vec<PodRow>,
    pub warnings: Vec<Warning>,
    // Table-only details.
    #[serde(skip)]
    pub current_number: Option<i64>,
    #[serde(skip)]
    pub update_number: Option<i64>,
    #[serde(skip)]
    pub rollout_reason: Option<String>,
    #[serde(skip)]
    pub partition_ordinal: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    pub ordinal: i32,
    pub name: String,
    /// False for an ordinal the StatefulSet wants but whose pod does not exist (yet).
    pub exists: bool,
    pub phase: Option<String>,
    pub ready: bool,
    pub restarts: i32,
    pub node: Option<String>,
    /// Full revision name from the pod's `controller-revision-hash` label.
    pub revision: Option<String>,
    pub revision_number: Option<i64>,
    pub on_update_revision: bool,
    /// kubectl-style age ("5m", "3d4h").
    pub age: Option<String>,
    /// `<pod>.<service>.<ns>.svc.<domain>`; null when spec.serviceName is not set.
    pub dns_name: Option<String>,
    /// Whether that name has a DNS record: the Service's endpoints list the pod as ready.
    /// null when the endpoints could not be read.
    pub dns_published: Option<bool>,
    /// Why there is no record (no IP, not Ready, Service missing…); null when published or
    /// unknown.
    pub dns_missing_reason: Option<String>,
    pub pvcs: Vec<PvcRow>,
    #[serde(skip)]
    pub on_current_revision: bool,
    #[serde(skip)]
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcRow {
    pub name: String,
    pub template: String,
    /// Claim phase; null when the claim does not exist.
    pub phase: Option<String>,
    pub capacity: Option<String>,
    pub storage_class: Option<String>,
    pub volume_name: Option<String>,
    /// The bound PV's reclaim policy; null when unbound or PVs could not be listed.
    pub reclaim_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub reason: String,
    pub message: String,
}

/// Everything `inspect` reads from the API.
pub struct InspectInput {
    pub statefulset: StatefulSet,
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
    /// `None` when PersistentVolumes could not be listed (RBAC).
    pub volumes: Option<Vec<PersistentVolume>>,
    pub services: Vec<Service>,
    pub revisions: Vec<ControllerRevision>,
    pub events: Vec<Event>,
    /// What the governing Service's endpoints publish; `None` when they could not be read.
    pub published: Option<PublishedHostnames>,
}

pub async fn run(ctx: &Context, args: &InspectArgs) -> Result<Outcome> {
    let input = fetch(ctx, &args.name).await?;
    if args.watch {
        return follow(ctx, &args.name, input).await;
    }
    let printer = Printer::for_context(ctx);
    let view = build_view(&input, &ctx.cluster_domain, printer.style().now);
    printer.print(&mut std::io::stdout().lock(), &view)?;
    Ok(Outcome::Success)
}

/// The field selector of the Events about StatefulSet `name`.
fn events_fields(name: &str) -> String {
    format!("involvedObject.kind=StatefulSet,involvedObject.name={name}")
}

/// Everything `inspect NAME` reads, in the requests the module docs list.
async fn fetch(ctx: &Context, name: &str) -> Result<InspectInput> {
    let parts = Parts {
        pods: true,
        claims: true,
    };
    let target = Target::fetch(ctx, "inspect", name, parts).await?;
    let namespace = target.namespace.as_str();
    let governing = service_name(&target.statefulset).map(str::to_string);
    let bound = shown_volumes(&target.statefulset, &target.pods, &target.claims);
    let events = events_fields(name);
    let (service, volumes, events, published) = tokio::try_join!(
        get_service(ctx, namespace, governing.as_deref()),
        get_volumes(ctx, &bound),
        list_events_lenient(ctx, Some(namespace), &events),
        published_hostnames(ctx, namespace, governing.as_deref()),
    )?;
    Ok(InspectInput {
        statefulset: target.statefulset,
        pods: target.pods,
        claims: target.claims,
        volumes,
        services: service.into_iter().collect(),
        revisions: target.revisions,
        events,
        published,
    })
}

/// `inspect --watch`: after the first view, watches on the StatefulSet, its pods, claims,
/// revisions, Service, Events and the Service's EndpointSlices; the whole view again when it
/// changed (on a terminal in place, else after a blank line). Bound PersistentVolumes are read
/// again (GET) when the set of bound volumes changes; on servers without EndpointSlices
/// (before 1.21) the Endpoints are read again (GET) at each render. Claims made by hand
/// without the controller's labels are kept from the first read.
async fn follow(ctx: &Context, name: &str, first: InspectInput) -> Result<Outcome> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::io::IsTerminal;
    let namespace = first
        .statefulset
        .metadata
        .namespace
        .clone()
        .unwrap_or_default();
    let ns = namespace.as_str();
    let scope = Scope::Namespace(namespace.clone());
    let sts = &first.statefulset;
    let selector = statefulset_selector_query(sts).unwrap_or_default();
    let governing = service_name(sts).map(str::to_string);
    let templates: Vec<String> = claim_template_names(sts)
        .into_iter()
        .map(String::from)
        .collect();
    let config = watcher::Config::default;
    let mut follow = Follow::new(&ctx.server);
    let statefulsets = follow.watch(
        ctx.api_in::<StatefulSet>(ns),
        config().fields(&format!("metadata.name={name}")),
        scope.clone(),
        true,
    );
    let pods = follow.watch(
        ctx.api_in::<Pod>(ns),
        config().labels(&selector),
        scope.clone(),
        true,
    );
    let claim_config = match claim_labels(sts) {
        Some(labels) => config().labels(&labels),
        None => config(),
    };
    let claims = follow.watch(
        ctx.api_in::<PersistentVolumeClaim>(ns),
        claim_config,
        scope.clone(),
        true,
    );
    let revisions = follow.watch(
        ctx.api_in::<ControllerRevision>(ns),
        config().labels(&selector),
        scope.clone(),
        true,
    );
    let events = follow.watch(
        ctx.api_in::<Event>(ns),
        config().fields(&events_fields(name)),
        scope.clone(),
        false,
    );
    // A field selector that matches nothing when there is no governing Service.
    let service_field = format!("metadata.name={}", governing.as_deref().unwrap_or("-"));
    let services = follow.watch(
        ctx.api_in::<Service>(ns),
        config().fields(&service_field),
        scope.clone(),
        true,
    );
    let slice_label = format!(
        "kubernetes.io/service-name={}",
        governing.as_deref().unwrap_or("-")
    );
    let slices_served = endpoint_slices_served(ctx, ns).await;
    let slices = slices_served.then(|| {
        follow.watch(
            ctx.api_in::<EndpointSlice>(ns),
            config().labels(&slice_label),
            scope.clone(),
            false,
        )
    });
    let mut required: Vec<&dyn Listed> = vec![&statefulsets, &pods, &claims, &revisions, &services];
    if let Some(slices) = &slices {
        required.push(slices);
    }

    // The claims the label watch does not see: read by name at the first fetch.
    use kube::core::SelectorExt as _;
    let claim_selector: Option<kube::core::Selector> = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .filter(|l| !l.is_empty())
        .map(|l| l.into_iter().collect());
    let by_hand: Vec<PersistentVolumeClaim> = match &claim_selector {
        Some(selector) => first
            .claims
            .iter()
            .filter(|c| !selector.matches(&c.metadata.labels.clone().unwrap_or_default()))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let key = ObjectRef::<StatefulSet>::new(name).within(ns);
    let mut volumes_for: Vec<String> = shown_volumes(sts, &first.pods, &first.claims);
    let mut volumes = first.volumes.clone();
    let redraw = std::io::stdout().is_terminal() && ctx.output.is_text();
    let mut out = std::io::stdout().lock();
    let mut input = first;
    let mut last: Option<String> = None;
    let mut listed = false;
    loop {
        let printer = Printer::for_context(ctx);
        // Compared at a fixed instant, so ages alone do not count as a change.
        let signature = format!(
            "{:?}",
            build_view(&input, &ctx.cluster_domain, Timestamp::UNIX_EPOCH)
        );
        if last.as_ref() != Some(&signature) {
            if redraw {
                write!(out, "\x1b[H\x1b[2J")?;
            } else if last.is_some() && ctx.output.is_text() {
                writeln!(out)?;
            }
            let view = build_view(&input, &ctx.cluster_domain, printer.style().now);
            printer.print(&mut out, &view)?;
            out.flush()?;
            last = Some(signature);
        }
        if !listed {
            if !follow.listed(&required).await? {
                return Ok(Outcome::Success);
            }
            listed = true;
        } else if follow.next(REEVALUATE).await? == Wake::Interrupted {
            return Ok(Outcome::Success);
        }
        let Some(statefulset) = statefulsets.get(&key) else {
            return Err(Error::Other(format!(
                "StatefulSet {name:?} {scope} was deleted while watching it"
            )));
        };
        let statefulset = StatefulSet::clone(&statefulset);
        let pods = snapshot(&pods);
        let mut claims: Vec<PersistentVolumeClaim> = snapshot(&claims)
            .into_iter()
            .filter(|c| {
                let t: Vec<&str> = templates.iter().map(String::as_str).collect();
                is_template_claim(c, &t, name)
            })
            .collect();
        for claim in &by_hand {
            if !claims
                .iter()
                .any(|c| c.metadata.name == claim.metadata.name)
            {
                claims.push(claim.clone());
            }
        }
        let bound = shown_volumes(&statefulset, &pods, &claims);
        if bound != volumes_for {
            volumes = get_volumes(ctx, &bound).await?;
            volumes_for = bound;
        }
        let published = match &slices {
            Some(slices) => Some(PublishedHostnames::from_endpoint_slices(&snapshot(slices))),
            None => published_hostnames(ctx, ns, governing.as_deref()).await?,
        };
        input = InspectInput {
            statefulset,
            pods,
            claims,
            volumes: volumes.clone(),
            services: snapshot(&services),
            revisions: snapshot(&revisions),
            events: snapshot(&events),
            published,
        };
    }
}

/// How often `--watch` recomputes the view with no change in the cluster (stalled rollouts
/// and ages depend on time).
const REEVALUATE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the server serves `discovery.k8s.io/v1` EndpointSlices here (1.21 and newer): one
/// LIST of at most one object.
async fn endpoint_slices_served(ctx: &Context, namespace: &str) -> bool {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    tracing::debug!(
        verb = "list",
        resource = "endpointslices",
        namespace,
        limit = 1,
        "API request"
    );
    let params = kube::api::ListParams::default().limit(1);
    !matches!(
        ctx.api_in::<EndpointSlice>(namespace).list_metadata(&params).await,
        Err(kube::Error::Api(s)) if s.code == 404
    )
}

/// The volumes bound to the claims that the view shows (those of the ordinals it has a row
/// for), so no PV of a scaled-down ordinal's claim is read.
fn shown_volumes(sts: &StatefulSet, pods: &[Pod], claims: &[PersistentVolumeClaim]) -> Vec<String> {
    let name = sts.metadata.name.as_deref().unwrap_or_default();
    let templates = claim_template_names(sts);
    let shown: std::collections::BTreeSet<String> = ordinal_range(sts)
        .chain(pods_by_ordinal(sts, pods).into_keys())
        .flat_map(|o| templates.iter().map(move |t| claim_name(t, name, o)))
        .collect();
    claims
        .iter()
        .filter(|c| c.metadata.name.as_ref().is_some_and(|n| shown.contains(n)))
        .filter_map(|c| c.spec.as_ref()?.volume_name.clone())
        .filter(|v| !v.is_empty())
        .collect()
}

/// GET the governing Service; `None` when it does not exist (or no name is set).
async fn get_service(
    ctx: &Context,
    namespace: &str,
    name: Option<&str>,
) -> Result<Option<Service>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let api = ctx.api_in::<Service>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    Ok(get_each(&api, &[name.to_string()], &scope, &ctx.server)
        .await?
        .pop())
}

/// What the Service's endpoints publish: its EndpointSlices, or its Endpoints where the
/// server has no `discovery.k8s.io/v1` (before 1.21). `Ok(None)` when they cannot be read
/// (RBAC): the DNS column then says so instead of the command failing.
async fn published_hostnames(
    ctx: &Context,
    namespace: &str,
    service: Option<&str>,
) -> Result<Option<PublishedHostnames>> {
    use k8s_openapi::api::core::v1::Endpoints;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let Some(service) = service else {
        return Ok(Some(PublishedHostnames::default()));
    };
    let scope = || Scope::Namespace(namespace.to_string());
    // A Service has a handful of slices (one per 100 endpoints): one page.
    let label = format!("kubernetes.io/service-name={service}");
    tracing::debug!(verb = "list", resource = "endpointslices", namespace, labels = %label, "API request");
    let params = kube::api::ListParams::default().labels(&label);
    match ctx.api_in::<EndpointSlice>(namespace).list(&params).await {
        Ok(slices) => {
            return Ok(Some(PublishedHostnames::from_endpoint_slices(
                &slices.items,
            )));
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            tracing::warn!(
                "cannot list endpointslices ({}); DNS names are shown unverified",
                status.message
            );
            return Ok(None);
        }
        // No discovery.k8s.io/v1 on this server (before 1.21): read the Endpoints instead.
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => {
            return Err(map_kube_error(
                e,
                "list",
                "endpointslices",
                scope(),
                &ctx.server,
                None,
            ));
        }
    }
    tracing::debug!(
        verb = "get",
        resource = "endpoints",
        namespace,
        name = service,
        "API request"
    );
    match ctx.api_in::<Endpoints>(namespace).get_opt(service).await {
        Ok(endpoints) => Ok(Some(
            endpoints
                .map(|e| PublishedHostnames::from_endpoints(&e))
                .unwrap_or_default(),
        )),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(e) => Err(map_kube_error(
            e,
            "get",
            "endpoints",
            scope(),
            &ctx.server,
            Some(service),
        )),
    }
}

/// The DNS column: the name when it has a record, else why not.
fn dns_cell(pod: &PodRow) -> String {
    match (&pod.dns_name, pod.dns_published, &pod.dns_missing_reason) {
        (Some(name), Some(true), _) => name.clone(),
        (_, Some(false), Some(why)) => format!("<none: {why}>"),
        (Some(name), None, _) => format!("{name} (unverified: endpoints not readable)"),
        _ => "<none: no spec.serviceName>".to_string(),
    }
}

/// Pure: the inspection view from what was read.
pub fn build_view(input: &InspectInput, cluster_domain: &str, now: Timestamp) -> InspectionView {
    let sts = &input.statefulset;
    let name = sts.metadata.name.clone().unwrap_or_default();
    let namespace = sts.metadata.namespace.clone().unwrap_or_default();
    let status = sts.status.as_ref();
    let history = History::new(sts, &input.revisions).ok();
    let number_of =
        |rev: Option<&str>| rev.and_then(|r| history.as_ref().and_then(|h| h.number_of(r)));
    let current_revision = status.and_then(|s| s.current_revision.clone());
    let update_revision = status.and_then(|s| s.update_revision.clone());
    let service = ServiceView {
        name: service_name(sts).map(str::to_string),
        health: service_health(sts, &input.services),
    };
    let failed_events = failed_create_events(&input.events, sts, now, FAILED_CREATE_WINDOW);
    let rollout = rollout_status(
        sts,
        &input.pods,
        failed_create_persists(&failed_events, now),
        now,
        DEFAULT_STALL_AFTER,
    );
    let rows = RowContext {
        input,
        name: &name,
        namespace: &namespace,
        cluster_domain,
        service: &service,
        current_revision: current_revision.as_deref(),
        update_revision: update_revision.as_deref(),
        history: history.as_ref(),
        now,
    };
    let pods = rows.pod_rows();
    let warnings = warnings(input, &name, &service, &rollout, &failed_events, &pods);
    let ready = ready_count(sts, &input.pods);
    InspectionView {
        api_version: VIEW_API_VERSION,
        kind: "StatefulSetInspection",
        replicas: desired_replicas(sts),
        ready_replicas: ready.pods,
        status_ready_replicas: ready.status_disagrees(),
        strategy: update_strategy(sts).to_string(),
        partition: partition(sts),
        max_unavailable: max_unavailable(sts),
        pod_management_policy: sts
            .spec
            .as_ref()
            .and_then(|s| s.pod_management_policy.clone())
            .unwrap_or_else(|| "OrderedReady".to_string()),
        ordinals_start: ordinals_start(sts),
        retention_policy: retention_policy(sts),
        service,
        current_number: number_of(current_revision.as_deref()),
        update_number: number_of(update_revision.as_deref()),
        current_revision,
        update_revision,
        rollout: rollout.state,
        rollout_reason: rollout.reason,
        partition_ordinal: if update_strategy(sts) == "RollingUpdate" {
            partition_ordinal(sts)
        } else {
            None
        },
        pods,
        warnings,
        namespace,
        name,
    }
}

/// What every pod row is built from.
struct RowContext<'a> {
    input: &'a InspectInput,
    name: &'a str,
    namespace: &'a str,
    cluster_domain: &'a str,
    service: &'a ServiceView,
    current_revision: Option<&'a str>,
    update_revision: Option<&'a str>,
    history: Option<&'a History>,
    now: Timestamp,
}

impl RowContext<'_> {
    /// A row per ordinal the StatefulSet wants, plus one per pod outside that range.
    fn pod_rows(&self) -> Vec<PodRow> {
        let sts = &self.input.statefulset;
        let by_ordinal = pods_by_ordinal(sts, &self.input.pods);
        let mut ordinals: Vec<i32> = ordinal_range(sts).collect();
        ordinals.extend(
            by_ordinal
                .keys()
                .copied()
                .filter(|o| !ordinal_range(sts).contains(o)),
        );
        ordinals.sort_unstable();
        let claims = ClaimLookup::new(self.input, self.namespace);
        let publish_not_ready = self.publish_not_ready();
        ordinals
            .into_iter()
            .map(|ordinal| {
                let pod = by_ordinal.get(&ordinal).copied();
                self.pod_row(ordinal, pod, &claims, publish_not_ready)
            })
            .collect()
    }

    /// Whether the governing Service publishes pods that are not Ready.
    fn publish_not_ready(&self) -> bool {
        let Some(svc) = self.service.name.as_deref() else {
            return false;
        };
        self.input
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(svc))
            .and_then(|s| s.spec.as_ref()?.publish_not_ready_addresses)
            .unwrap_or(false)
    }

    fn pod_row(
        &self,
        ordinal: i32,
        pod: Option<&Pod>,
        claims: &ClaimLookup<'_>,
        publish_not_ready: bool,
    ) -> PodRow {
        let pod_name = sts_model::naming::pod_name(self.name, ordinal);
        let revision = pod.and_then(pod_revision).map(str::to_string);
        let dns = pod_dns(
            &pod_name,
            pod,
            self.service.health,
            publish_not_ready,
            self.input.published.as_ref(),
        );
        PodRow {
            ordinal,
            exists: pod.is_some(),
            phase: pod.and_then(|p| p.status.as_ref()?.phase.clone()),
            ready: pod.is_some_and(pod_is_ready),
            restarts: pod
                .and_then(|p| p.status.as_ref()?.container_statuses.as_ref())
                .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum()),
            node: pod.and_then(|p| p.spec.as_ref()?.node_name.clone()),
            revision_number: revision
                .as_deref()
                .and_then(|r| self.history.and_then(|h| h.number_of(r))),
            on_update_revision: revision.is_some() && revision.as_deref() == self.update_revision,
            on_current_revision: revision.is_some() && revision.as_deref() == self.current_revision,
            revision,
            age: pod
                .and_then(|p| p.metadata.creation_timestamp.as_ref())
                .map(|t| format_age(t.0, self.now)),
            dns_name: self
                .service
                .name
                .as_deref()
                .map(|svc| pod_dns_name(&pod_name, svc, self.namespace, self.cluster_domain)),
            dns_published: match &dns {
                PodDns::Published => Some(true),
                PodDns::Missing(_) => Some(false),
                PodDns::Unknown => None,
            },
            dns_missing_reason: match dns {
                PodDns::Missing(why) => Some(why),
                _ => None,
            },
            ip: pod.and_then(|p| p.status.as_ref()?.pod_ip.clone()),
            pvcs: claims.rows(self.name, ordinal),
            name: pod_name,
        }
    }
}

/// The claims of the namespace by name, and the reclaim policy of each bound volume.
struct ClaimLookup<'a> {
    claims: BTreeMap<&'a str, &'a PersistentVolumeClaim>,
    reclaim: BTreeMap<&'a str, &'a str>,
    templates: Vec<&'a str>,
}

impl<'a> ClaimLookup<'a> {
    fn new(input: &'a InspectInput, namespace: &str) -> Self {
        let reclaim = input
            .volumes
            .iter()
            .flatten()
            .filter_map(|pv| {
                Some((
                    pv.metadata.name.as_deref()?,
                    pv.spec
                        .as_ref()?
                        .persistent_volume_reclaim_policy
                        .as_deref()?,
                ))
            })
            .collect();
        let claims = input
            .claims
            .iter()
            .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|c| Some((c.metadata.name.as_deref()?, c)))
            .collect();
        Self {
            claims,
            reclaim,
            templates: claim_template_names(&input.statefulset),
        }
    }

    /// A row per claim template for the pod at `ordinal`, whether the claim exists or not.
    fn rows(&self, sts: &str, ordinal: i32) -> Vec<PvcRow> {
        self.templates
            .iter()
            .map(|t| {
                let cname = claim_name(t, sts, ordinal);
                let claim = self.claims.get(cname.as_str());
                let claim_spec = claim.and_then(|c| c.spec.as_ref());
                let volume_name = claim_spec
                    .and_then(|s| s.volume_name.clone())
                    .filter(|v| !v.is_empty());
                PvcRow {
                    template: t.to_string(),
                    phase: claim.and_then(|c| c.status.as_ref()?.phase.clone()),
                    capacity: claim.and_then(|c| claim_capacity(c)).map(str::to_string),
                    storage_class: claim_spec.and_then(|s| s.storage_class_name.clone()),
                    reclaim_policy: volume_name
                        .as_deref()
                        .and_then(|v| self.reclaim.get(v))
                        .map(|p| p.to_string()),
                    volume_name,
                    name: cname,
                }
            })
            .collect()
    }
}

/// Everything worth a warning, in a fixed order: name length, FailedCreate events, a stalled
/// rollout (naming the rollback trap), the Service, pods on revisions that have no
/// ControllerRevision.
fn warnings(
    input: &InspectInput,
    name: &str,
    service: &ServiceView,
    rollout: &RolloutStatus,
    failed_events: &[&Event],
    pods: &[PodRow],
) -> Vec<Warning> {
    let warn = |reason: &str, message: String| Warning {
        reason: reason.to_string(),
        message,
    };
    let mut warnings = Vec::new();
    if name_breaks_revision_label(name) {
        warnings.push(warn(
            "NameTooLong",
            format!(
                "name is {} characters; above {MAX_NAME_FOR_REVISION_LABEL} the controller-revision-hash label exceeds 63 characters and pods cannot be created",
                name.len()
            ),
        ));
    }
    for event in failed_events {
        warnings.push(warn(
            "FailedCreate",
            format!(
                "{} (x{})",
                event.message.as_deref().unwrap_or("(no message)"),
                event.count.unwrap_or(1)
            ),
        ));
    }
    if rollout.state == RolloutState::Stalled {
        let trapped = !rollback_trap(&input.statefulset, &input.pods).is_empty();
        warnings.push(warn(
            if trapped {
                "RollbackTrap"
            } else {
                "RolloutStalled"
            },
            rollout.reason.clone().unwrap_or_default(),
        ));
    }
    warnings.extend(service_warning(service).map(|(reason, message)| warn(reason, message)));
    for pod in pods.iter().filter(|p| p.exists) {
        if let Some(rev) = &pod.revision
            && pod.revision_number.is_none()
        {
            warnings.push(warn(
                "UnknownRevision",
                format!(
                    "pod {} runs revision {rev}, which has no ControllerRevision",
                    pod.name
                ),
            ));
        }
    }
    warnings
}

/// The warning a Service health deserves, as (reason, message).
fn service_warning(service: &ServiceView) -> Option<(&'static str, String)> {
    let svc = service.name.as_deref().unwrap_or_default();
    Some(match service.health {
        ServiceHealth::Ok => return None,
        ServiceHealth::NotSet => (
            "ServiceNotSet",
            "spec.serviceName is not set: pods get no stable DNS names".into(),
        ),
        ServiceHealth::Missing => (
            "ServiceMissing",
            format!("Service {svc:?} does not exist: the pods' DNS names do not resolve"),
        ),
        ServiceHealth::NotHeadless => (
            "ServiceNotHeadless",
            format!(
                "Service {svc:?} has a cluster IP: per-pod DNS records need clusterIP: None (immutable, so recreate it)"
            ),
        ),
        ServiceHealth::SelectorMismatch => (
            "ServiceSelectorMismatch",
            format!(
                "Service {svc:?} does not select the pod template's labels: no per-pod DNS records"
            ),
        ),
    })
}

fn rev_text(name: Option<&str>, number: Option<i64>) -> String {
    match (name, number) {
        (Some(n), Some(num)) => format!("{n} ({num})"),
        (Some(n), None) => n.to_string(),
        (None, _) => "<none>".to_string(),
    }
}

/// The text form: header, the pod table with the partition line, the claims, the warnings.
impl View for InspectionView {
    fn object_names(&self) -> Option<Vec<String>> {
        Some(vec![format!("statefulset.apps/{}", self.name)])
    }

    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        write_header(out, self, style.color)?;
        writeln!(out)?;
        write_pods(out, self, style.wide, style.color)?;
        if self.pods.iter().any(|p| !p.pvcs.is_empty()) {
            writeln!(out)?;
            write_claims(out, self, style.wide, style.color)?;
        }
        if !self.warnings.is_empty() {
            writeln!(out, "\nWarnings:")?;
            for w in &self.warnings {
                writeln!(
                    out,
                    "  {}: {}",
                    paint(&w.reason, Some(Color::Red), style.color),
                    w.message
                )?;
            }
        }
        Ok(())
    }
}

/// `Key:  value` lines about the StatefulSet.
fn write_header(out: &mut impl Write, view: &InspectionView, color: bool) -> Result<()> {
    let strategy = match (view.strategy.as_str(), &view.max_unavailable) {
        ("RollingUpdate", Some(max)) => format!(
            "RollingUpdate, partition {}, maxUnavailable {max}",
            view.partition
        ),
        ("RollingUpdate", None) => format!("RollingUpdate, partition {}", view.partition),
        (other, _) => other.to_string(),
    };
    let health = paint(
        view.service.health.label(),
        health_color(view.service.health),
        color,
    );
    let service = match &view.service.name {
        Some(n) => format!("{n} ({health})"),
        None => paint("<not set>", health_color(view.service.health), color),
    };
    let revisions = if view.current_revision == view.update_revision {
        format!(
            "current = update = {}",
            rev_text(view.update_revision.as_deref(), view.update_number)
        )
    } else {
        format!(
            "current {}, update {}",
            rev_text(view.current_revision.as_deref(), view.current_number),
            rev_text(view.update_revision.as_deref(), view.update_number)
        )
    };
    let state = paint(view.rollout.label(), rollout_color(view.rollout), color);
    let rollout = match &view.rollout_reason {
        Some(reason) => format!("{state}: {reason}"),
        None => state,
    };
    let replicas = match view.status_ready_replicas {
        None => format!("{} desired, {} ready", view.replicas, view.ready_replicas),
        Some(status) => format!(
            "{} desired, {} ready (from the pods; the StatefulSet's status still says {status}: the controller has not caught up)",
            view.replicas, view.ready_replicas
        ),
    };
    let header = [
        ("Name", view.name.clone()),
        ("Namespace", view.namespace.clone()),
        ("Replicas", replicas),
        ("Update strategy", strategy),
        ("Pod management", view.pod_management_policy.clone()),
        ("Ordinals start", view.ordinals_start.to_string()),
        (
            "PVC retention",
            format!(
                "whenDeleted={}, whenScaled={}",
                view.retention_policy.when_deleted.as_str(),
                view.retention_policy.when_scaled.as_str()
            ),
        ),
        ("Service", service),
        ("Revisions", revisions),
        ("Rollout", rollout),
    ];
    for (key, value) in header {
        writeln!(out, "{:<17}{value}", format!("{key}:"))?;
    }
    Ok(())
}

/// A row per ordinal, with the partition line above the first pod that gets the update
/// revision.
fn write_pods(out: &mut impl Write, view: &InspectionView, wide: bool, color: bool) -> Result<()> {
    if view.pods.is_empty() {
        // No ordinal is wanted and none is left: a table of headers alone says nothing.
        writeln!(out, "No pods (spec.replicas is {}).", view.replicas)?;
        return Ok(());
    }
    let mut columns = vec![
        "ORDINAL", "POD", "PHASE", "READY", "RESTARTS", "NODE", "REVISION", "AGE", "DNS",
    ];
    if wide {
        columns.push("IP");
    }
    let mut table = new_table(columns);
    for pod in &view.pods {
        table.add_row(pod_cells(pod, wide, color));
    }
    // The table has no borders and no wrapping: line 0 is the header, line i+1 is pod i.
    let partition_at = view
        .partition_ordinal
        .and_then(|p| view.pods.iter().position(|pod| pod.ordinal >= p));
    for (i, line) in table.lines().enumerate() {
        if i >= 1 && partition_at == Some(i - 1) {
            let text = format!(
                "---- partition {}: ordinals >= {} get the update revision, below keep the current one ----",
                view.partition,
                view.partition_ordinal.unwrap_or_default()
            );
            writeln!(out, "{}", paint(&text, Some(Color::Cyan), color))?;
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    if view.partition_ordinal.is_some() && partition_at.is_none() {
        let text = format!(
            "---- partition {}: no pod reaches it; all keep the current revision ----",
            view.partition
        );
        writeln!(out, "{}", paint(&text, Some(Color::Cyan), color))?;
    }
    Ok(())
}

fn pod_cells(pod: &PodRow, wide: bool, color: bool) -> Vec<comfy_table::Cell> {
    let marker = match (pod.on_current_revision, pod.on_update_revision) {
        (true, _) => " current",
        (false, true) => " update",
        (false, false) if pod.revision.is_some() => " other",
        _ => "",
    };
    let revision = if pod.exists {
        format!(
            "{}{marker}",
            rev_text(pod.revision.as_deref(), pod.revision_number)
        )
    } else {
        "-".to_string()
    };
    let revision_color = (pod.exists && !pod.on_update_revision).then_some(Color::Yellow);
    let if_exists = |text: String| if pod.exists { text } else { "-".to_string() };
    let mut row = vec![
        cell(pod.ordinal.to_string(), None, color),
        cell(&pod.name, None, color),
        if pod.exists {
            cell(pod.phase.as_deref().unwrap_or("<unknown>"), None, color)
        } else {
            cell("<missing>", Some(Color::Red), color)
        },
        cell(
            if_exists(pod.ready.to_string()),
            (pod.exists && !pod.ready).then_some(Color::Red),
            color,
        ),
        cell(if_exists(pod.restarts.to_string()), None, color),
        cell(pod.node.as_deref().unwrap_or("<none>"), None, color),
        cell(revision, revision_color, color),
        cell(pod.age.as_deref().unwrap_or("-"), None, color),
        cell(dns_cell(pod), None, color),
    ];
    if wide {
        row.push(cell(pod.ip.as_deref().unwrap_or("<none>"), None, color));
    }
    row
}

/// Each pod's claims with status, capacity, storage class and reclaim policy.
fn write_claims(
    out: &mut impl Write,
    view: &InspectionView,
    wide: bool,
    color: bool,
) -> Result<()> {
    let mut columns = vec![
        "POD",
        "CLAIM",
        "TEMPLATE",
        "STATUS",
        "CAPACITY",
        "STORAGECLASS",
        "RECLAIM",
    ];
    if wide {
        columns.push("VOLUME");
    }
    let mut table = new_table(columns);
    for pod in &view.pods {
        for pvc in &pod.pvcs {
            let mut row = vec![
                cell(&pod.name, None, color),
                cell(&pvc.name, None, color),
                cell(&pvc.template, None, color),
                match &pvc.phase {
                    Some(p) => cell(p, (p != "Bound").then_some(Color::Yellow), color),
                    None => cell("<not created>", Some(Color::Yellow), color),
                },
                cell(pvc.capacity.as_deref().unwrap_or("-"), None, color),
                cell(
                    pvc.storage_class.as_deref().unwrap_or("<default>"),
                    None,
                    color,
                ),
                cell(pvc.reclaim_policy.as_deref().unwrap_or("-"), None, color),
            ];
            if wide {
                row.push(cell(
                    pvc.volume_name.as_deref().unwrap_or("<unbound>"),
                    None,
                    color,
                ));
            }
            table.add_row(row);
        }
    }
    write_table(out, &table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;
    use sts_model::fixtures::{
        claim_for, controller_revision, event, now, pod_for, service, statefulset, volume,
    };

    /// db: 4 replicas, partition 2, rolling from rev 1 to 2; ordinal 3 not created yet;
    /// headless Service ok; claims for 0..2 bound (PV reclaim Retain), 3's claim missing.
    fn input() -> InspectInput {
        let sts = statefulset("prod", "db")
            .replicas(4)
            .templates(&["data"])
            .partition(2)
            .revisions("db-aaa", "db-bbb")
            .ready(3, 1)
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("db-aaa").build(),
            pod_for(&sts, 1).revision("db-aaa").restarts(2).build(),
            pod_for(&sts, 2).revision("db-bbb").created(100).build(),
        ];
        let claims: Vec<_> = (0..3).map(|o| claim_for(&sts, "data", o).build()).collect();
        let volumes = (0..3)
            .map(|o| volume(&format!("pv-data-db-{o}"), "Retain"))
            .collect();
        InspectInput {
            revisions: vec![
                controller_revision(&sts, "db-aaa", 1),
                controller_revision(&sts, "db-bbb", 2),
            ],
            statefulset: sts,
            pods,
            claims,
            volumes: Some(volumes),
            services: vec![service("prod", "db").build()],
            events: vec![],
            // db-2 is listed as not ready by the endpoints: no DNS record.
            published: Some(PublishedHostnames {
                ready: ["db-0".to_owned(), "db-1".to_owned()].into(),
                not_ready: ["db-2".to_owned()].into(),
                source: "EndpointSlice",
            }),
        }
    }

    #[test]
    fn only_the_volumes_of_shown_claims_are_read() {
        let input = input();
        let sts = &input.statefulset;
        let mut claims = input.claims.clone();
        let mut scaled_down = claim_for(sts, "data", 9).build();
        scaled_down.spec.as_mut().unwrap().volume_name = Some("pv-of-9".into());
        claims.push(scaled_down);
        let bound = shown_volumes(sts, &input.pods, &claims);
        assert!(!bound.is_empty(), "the shown claims' volumes are read");
        assert!(!bound.contains(&"pv-of-9".to_string()), "{bound:?}");
    }

    #[test]
    fn view_has_a_row_per_ordinal_with_revisions() {
        let view = build_view(&input(), "cluster.local", now());
        assert_eq!(view.pods.len(), 4);
        let p0 = &view.pods[0];
        assert_eq!(p0.revision.as_deref(), Some("db-aaa"));
        assert_eq!(p0.revision_number, Some(1));
        assert!(!p0.on_update_revision && p0.on_current_revision);
        assert_eq!(
            p0.dns_name.as_deref(),
            Some("db-0.db.prod.svc.cluster.local")
        );
        assert_eq!(p0.pvcs[0].reclaim_policy.as_deref(), Some("Retain"));
        assert_eq!(view.pods[1].restarts, 2);
        let p2 = &view.pods[2];
        assert_eq!((p2.revision_number, p2.on_update_revision), (Some(2), true));
        assert_eq!(p2.age.as_deref(), Some("100s"));
        let p3 = &view.pods[3];
        assert!(!p3.exists);
        assert_eq!(p3.pvcs[0].phase, None, "claim not created");
        assert_eq!(view.partition_ordinal, Some(2));
        assert_eq!(view.rollout, RolloutState::Rolling);
        assert!(view.warnings.is_empty(), "{:?}", view.warnings);
    }

    #[test]
    fn warnings_for_service_long_name_and_failed_create() {
        let long = "a".repeat(53);
        let mut input = input();
        input.statefulset = statefulset("prod", &long).replicas(1).build();
        input.pods.clear();
        input.services = vec![service("prod", &long).cluster_ip("10.0.0.1").build()];
        input.events = vec![event("prod", &long, "FailedCreate", "label too long", 30)];
        let view = build_view(&input, "cluster.local", now());
        let reasons: Vec<&str> = view.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "NameTooLong",
                "FailedCreate",
                "RolloutStalled",
                "ServiceNotHeadless"
            ]
        );
        assert!(view.warnings[1].message.contains("label too long (x3)"));
    }

    #[test]
    fn cluster_domain_flag_is_used() {
        let view = build_view(&input(), "corp.example", now());
        assert_eq!(
            view.pods[0].dns_name.as_deref(),
            Some("db-0.db.prod.svc.corp.example")
        );
    }

    #[test]
    fn table_shows_header_partition_line_missing_pod_and_claims() {
        let view = build_view(&input(), "cluster.local", now());
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Update strategy: RollingUpdate, partition 2"),
            "{text}"
        );
        assert!(
            text.contains("Revisions:       current db-aaa (1), update db-bbb (2)"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        let line_of = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
        let partition = line_of("---- partition 2");
        assert!(
            line_of("db-1   ") < partition && partition < line_of("db-2   "),
            "{text}"
        );
        assert!(lines[line_of("db-3 ")].contains("<missing>"), "{text}");
        assert!(lines[line_of("data-db-0")].contains("Retain"), "{text}");
        assert!(
            lines[line_of("data-db-3")].contains("<not created>"),
            "{text}"
        );
        assert!(!text.contains("Warnings:"));
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn table_of_a_statefulset_scaled_to_zero_says_there_are_no_pods() {
        let sts = statefulset("prod", "db").replicas(0).build();
        let view = build_view(
            &InspectInput {
                revisions: vec![],
                statefulset: sts,
                pods: vec![],
                claims: vec![],
                volumes: Some(vec![]),
                services: vec![service("prod", "db").build()],
                events: vec![],
                published: None,
            },
            "cluster.local",
            now(),
        );
        let mut out = Vec::new();
        Printer::new(OutputFormat::Table, false)
            .print(&mut out, &view)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\nNo pods (spec.replicas is 0).\n"), "{text}");
        assert!(!text.contains("ORDINAL"), "{text}");
    }

    #[test]
    fn json_follows_the_contract() {
        let view = build_view(&input(), "cluster.local", now());
        let mut out = Vec::new();
        Printer::new(OutputFormat::Json, false)
            .print(&mut out, &view)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["apiVersion"], "sts.dev/v1alpha1");
        assert_eq!(json["kind"], "StatefulSetInspection");
        let keys = crate::render::sorted_keys(&json);
        assert_eq!(
            keys,
            vec![
                "apiVersion",
                "currentRevision",
                "kind",
                "maxUnavailable",
                "name",
                "namespace",
                "ordinalsStart",
                "partition",
                "podManagementPolicy",
                "pods",
                "readyReplicas",
                "replicas",
                "retentionPolicy",
                "rollout",
                "service",
                "strategy",
                "updateRevision",
                "warnings"
            ]
        );
        assert_eq!(
            json["retentionPolicy"],
            serde_json::json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let pod = &json["pods"][2];
        // Issue 10, kind 2: db-2 is not ready in the endpoints, so its name has no record.
        assert_eq!(pod["dnsPublished"], false);
        assert_eq!(
            pod["dnsMissingReason"],
            "the pod is not Ready and the Service does not publish not-ready addresses"
        );
        assert_eq!(json["pods"][0]["dnsPublished"], true);
        let mut pod_keys: Vec<&str> = pod
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        pod_keys.sort();
        assert_eq!(
            pod_keys,
            vec![
                "age",
                "dnsMissingReason",
                "dnsName",
                "dnsPublished",
                "exists",
                "name",
                "node",
                "onUpdateRevision",
                "ordinal",
                "phase",
                "pvcs",
                "ready",
                "restarts",
                "revision",
                "revisionNumber"
            ]
        );
        assert_eq!(pod["revisionNumber"], 2);
        assert_eq!(pod["onUpdateRevision"], true);
        assert_eq!(
            pod["pvcs"][0],
            serde_json::json!({
                "name": "data-db-2", "template": "data", "phase": "Bound", "capacity": "1Gi",
                "storageClass": "standard", "volumeName": "pv-data-db-2", "reclaimPolicy": "Retain"
            })
        );
        assert_eq!(json["pods"][3]["exists"], false);
        assert_eq!(json["rollout"], "Rolling");
    }

    #[test]
    fn output_family_over_one_statefulset() {
        let view = build_view(&input(), "cluster.local", now());
        crate::testing::assert_schema(
            "StatefulSetInspection",
            &serde_json::to_value(&view).unwrap(),
        );
        let print = |printer: Printer| {
            let mut out = Vec::new();
            printer
                .at(now())
                .print(&mut out, &view)
                .map(|()| String::from_utf8(out).unwrap())
        };
        let output =
            |v: &str| Printer::with_output(crate::output::Output::parse(v).unwrap(), false);
        assert_eq!(
            print(Printer::new(OutputFormat::Name, false)).unwrap(),
            format!("statefulset.apps/{}\n", view.name)
        );
        assert_eq!(
            print(output(
                "jsonpath={range .pods[*]}{.name} {.ready}{\"\\n\"}{end}"
            ))
            .unwrap(),
            view.pods
                .iter()
                .map(|p| format!("{} {}\n", p.name, p.ready))
                .collect::<String>()
        );
        // custom-columns: the single object is one row.
        let text = print(output("custom-columns=NAME:.name,PODS:.pods[*].name")).unwrap();
        let pods: Vec<&str> = view.pods.iter().map(|p| p.name.as_str()).collect();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, vec![view.name.clone(), pods.join(",")], "{text}");
        // Not a list, no labelled rows: usage errors (exit 2), nothing written.
        let sort = Printer::new(OutputFormat::Table, false)
            .sort_by(crate::output::JsonPathExpr::parse_relaxed(".name").ok());
        let err = print(sort).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("--sort-by: the StatefulSetInspection view is not a list"),
            "{err}"
        );
        let err = print(Printer::new(OutputFormat::Table, false).labels(vec![], true)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--show-labels"), "{err}");
    }
}
