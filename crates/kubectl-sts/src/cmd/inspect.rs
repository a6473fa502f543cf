//! `kubectl sts inspect NAME`: one StatefulSet in depth — header, a row per ordinal (missing
//! pods included) with revision and DNS name, the partition line, per-pod claims with the PV's
//! reclaim policy, and warnings.
//!
//! Requests: StatefulSets of the namespace (to find NAME, or suggest close names), then at
//! once: Pods and ControllerRevisions (by the StatefulSet's selector), PVCs and Services of
//! the namespace, PersistentVolumes, Events about the StatefulSet, and the governing Service's
//! EndpointSlices (label `kubernetes.io/service-name`; on servers without
//! `discovery.k8s.io/v1`, one GET of its Endpoints). Eight or nine requests, whatever the size.
//!
//! A pod's DNS name is shown only when those endpoints publish its hostname as ready; otherwise
//! the DNS column says why there is no record.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use serde::Serialize;
use sts_model::age::format_age;
use sts_model::naming::{
    MAX_NAME_FOR_REVISION_LABEL, claim_name, claim_template_names, desired_replicas,
    name_breaks_revision_label, ordinal_range, ordinals_start, pod_dns_name,
};
use sts_model::orphans::{RetentionPolicy, claim_capacity, retention_policy};
use sts_model::revision::{History, label_selector_query};
use sts_model::rollout::{
    DEFAULT_STALL_AFTER, FAILED_CREATE_WINDOW, RolloutState, failed_create_events, max_unavailable,
    partition, partition_ordinal, pod_is_ready, pod_revision, pods_by_ordinal, ready_count,
    rollback_trap, rollout_status, update_strategy,
};
use sts_model::service_health::{
    PodDns, PublishedHostnames, ServiceHealth, pod_dns, service_health, service_name,
};

use crate::cli::OutputFormat;
use crate::collect::{close_names, list_events_lenient, list_namespace, list_volumes};
use crate::error::{Error, Result, Scope};
use crate::render::{
    ServiceView, VIEW_API_VERSION, cell, health_color, new_table, rollout_color, write_structured,
    write_table,
};
use crate::{Context, Outcome};

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// StatefulSet name.
    pub name: String,
}

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
    let namespace = single_namespace(ctx, "inspect")?;
    let statefulset = find_statefulset(ctx, namespace, &args.name).await?;
    let selector = statefulset
        .spec
        .as_ref()
        .and_then(|s| label_selector_query(&s.selector));
    let events_fields = format!(
        "involvedObject.kind=StatefulSet,involvedObject.name={}",
        args.name
    );
    let governing = service_name(&statefulset).map(str::to_string);
    let (pods, claims, volumes, services, revisions, events, published) = tokio::try_join!(
        list_namespace::<Pod>(ctx, namespace, selector.as_deref(), None),
        list_namespace::<PersistentVolumeClaim>(ctx, namespace, None, None),
        list_volumes(ctx),
        list_namespace::<Service>(ctx, namespace, None, None),
        list_namespace::<ControllerRevision>(ctx, namespace, selector.as_deref(), None),
        list_events_lenient(ctx, Some(namespace), &events_fields),
        published_hostnames(ctx, namespace, governing.as_deref()),
    )?;
    let input = InspectInput {
        statefulset,
        pods,
        claims,
        volumes,
        services,
        revisions,
        events,
        published,
    };
    let now = Timestamp::now();
    let view = build_view(&input, &ctx.cluster_domain, now);
    render(&mut std::io::stdout().lock(), ctx.output, &view, ctx.color)?;
    Ok(Outcome::Success)
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
            return Err(crate::collect::map_kube_error(
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
        Err(e) => Err(crate::collect::map_kube_error(
            e,
            "get",
            "endpoints",
            scope(),
            &ctx.server,
            Some(service),
        )),
    }
}

/// Commands about one StatefulSet work in one namespace.
pub fn single_namespace<'a>(ctx: &'a Context, command: &str) -> Result<&'a str> {
    if ctx.all_namespaces {
        return Err(Error::Usage(format!(
            "`{command}` works on one StatefulSet in one namespace; use -n NAMESPACE instead of -A"
        )));
    }
    Ok(ctx.namespace.as_str())
}

/// Find a StatefulSet by name with one LIST of the namespace (which also yields close names
/// for the not-found message).
pub async fn find_statefulset(ctx: &Context, namespace: &str, name: &str) -> Result<StatefulSet> {
    let sets = list_namespace::<StatefulSet>(ctx, namespace, None, None).await?;
    pick_statefulset(sets, namespace, name)
}

/// The StatefulSet called `name`, or NotFound suggesting close names.
pub fn pick_statefulset(
    sets: Vec<StatefulSet>,
    namespace: &str,
    name: &str,
) -> Result<StatefulSet> {
    let names: Vec<String> = sets
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    sets.into_iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .ok_or_else(|| Error::NotFound {
            kind: "StatefulSet",
            name: name.to_string(),
            scope: Scope::Namespace(namespace.to_string()),
            suggestions: close_names(name, names.iter().map(String::as_str)),
        })
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
    let spec = sts.spec.as_ref();
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
    let publish_not_ready = service
        .name
        .as_deref()
        .and_then(|svc| {
            input
                .services
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(svc))
        })
        .and_then(|s| s.spec.as_ref()?.publish_not_ready_addresses)
        .unwrap_or(false);
    let failed_events = failed_create_events(&input.events, sts, now, FAILED_CREATE_WINDOW);
    let rollout = rollout_status(
        sts,
        &input.pods,
        !failed_events.is_empty(),
        now,
        DEFAULT_STALL_AFTER,
    );

    let reclaim: BTreeMap<&str, &str> = input
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
    let claims: BTreeMap<&str, &PersistentVolumeClaim> = input
        .claims
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter_map(|c| Some((c.metadata.name.as_deref()?, c)))
        .collect();
    let templates = claim_template_names(sts);

    let by_ordinal = pods_by_ordinal(sts, &input.pods);
    let mut ordinals: Vec<i32> = ordinal_range(sts).collect();
    ordinals.extend(
        by_ordinal
            .keys()
            .copied()
            .filter(|o| !ordinal_range(sts).contains(o)),
    );
    ordinals.sort_unstable();

    let pods = ordinals
        .into_iter()
        .map(|ordinal| {
            let pod_name = sts_model::naming::pod_name(&name, ordinal);
            let pod = by_ordinal.get(&ordinal).copied();
            let revision = pod.and_then(pod_revision).map(str::to_string);
            let dns = pod_dns(
                &pod_name,
                pod,
                service.health,
                publish_not_ready,
                input.published.as_ref(),
            );
            let pvcs = templates
                .iter()
                .map(|t| {
                    let cname = claim_name(t, &name, ordinal);
                    let claim = claims.get(cname.as_str());
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
                            .and_then(|v| reclaim.get(v))
                            .map(|p| p.to_string()),
                        volume_name,
                        name: cname,
                    }
                })
                .collect();
            PodRow {
                ordinal,
                exists: pod.is_some(),
                phase: pod.and_then(|p| p.status.as_ref()?.phase.clone()),
                ready: pod.is_some_and(pod_is_ready),
                restarts: pod
                    .and_then(|p| p.status.as_ref()?.container_statuses.as_ref())
                    .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum()),
                node: pod.and_then(|p| p.spec.as_ref()?.node_name.clone()),
                revision_number: number_of(revision.as_deref()),
                on_update_revision: revision.is_some() && revision == update_revision,
                on_current_revision: revision.is_some() && revision == current_revision,
                revision,
                age: pod
                    .and_then(|p| p.metadata.creation_timestamp.as_ref())
                    .map(|t| format_age(t.0, now)),
                dns_name: service
                    .name
                    .as_deref()
                    .map(|svc| pod_dns_name(&pod_name, svc, &namespace, cluster_domain)),
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
                pvcs,
                name: pod_name,
            }
        })
        .collect::<Vec<_>>();

    let mut warnings = Vec::new();
    if name_breaks_revision_label(&name) {
        warnings.push(Warning {
            reason: "NameTooLong".into(),
            message: format!(
                "name is {} characters; above {MAX_NAME_FOR_REVISION_LABEL} the controller-revision-hash label exceeds 63 characters and pods cannot be created",
                name.len()
            ),
        });
    }
    for event in &failed_events {
        warnings.push(Warning {
            reason: "FailedCreate".into(),
            message: format!(
                "{} (x{})",
                event.message.as_deref().unwrap_or("(no message)"),
                event.count.unwrap_or(1)
            ),
        });
    }
    if rollout.state == RolloutState::Stalled {
        let trapped = !rollback_trap(sts, &input.pods).is_empty();
        warnings.push(Warning {
            reason: if trapped {
                "RollbackTrap".into()
            } else {
                "RolloutStalled".into()
            },
            message: rollout.reason.clone().unwrap_or_default(),
        });
    }
    let svc = service.name.as_deref().unwrap_or_default();
    match service.health {
        ServiceHealth::Ok => {}
        ServiceHealth::NotSet => warnings.push(Warning {
            reason: "ServiceNotSet".into(),
            message: "spec.serviceName is not set: pods get no stable DNS names".into(),
        }),
        ServiceHealth::Missing => warnings.push(Warning {
            reason: "ServiceMissing".into(),
            message: format!("Service {svc:?} does not exist: the pods' DNS names do not resolve"),
        }),
        ServiceHealth::NotHeadless => warnings.push(Warning {
            reason: "ServiceNotHeadless".into(),
            message: format!(
                "Service {svc:?} has a cluster IP: per-pod DNS records need clusterIP: None (immutable, so recreate it)"
            ),
        }),
        ServiceHealth::SelectorMismatch => warnings.push(Warning {
            reason: "ServiceSelectorMismatch".into(),
            message: format!("Service {svc:?} does not select the pod template's labels: no per-pod DNS records"),
        }),
    }
    for pod in pods.iter().filter(|p| p.exists) {
        if let Some(rev) = &pod.revision
            && pod.revision_number.is_none()
        {
            warnings.push(Warning {
                reason: "UnknownRevision".into(),
                message: format!(
                    "pod {} runs revision {rev}, which has no ControllerRevision",
                    pod.name
                ),
            });
        }
    }

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
        pod_management_policy: spec
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

fn rev_text(name: Option<&str>, number: Option<i64>) -> String {
    match (name, number) {
        (Some(n), Some(num)) => format!("{n} ({num})"),
        (Some(n), None) => n.to_string(),
        (None, _) => "<none>".to_string(),
    }
}

/// Render the inspection as text (`table`/`wide`) or JSON/YAML.
pub fn render(
    out: &mut impl Write,
    format: OutputFormat,
    view: &InspectionView,
    color: bool,
) -> Result<()> {
    if format.is_structured() {
        return write_structured(out, format, view);
    }
    let wide = format == OutputFormat::Wide;
    let paint = |text: &str, c: Option<comfy_table::Color>| -> String {
        match (color, c) {
            (true, Some(c)) => {
                let style = anstyle::Style::new().fg_color(Some(ansi(c)));
                format!("{style}{text}{style:#}")
            }
            _ => text.to_string(),
        }
    };
    let strategy = match (view.strategy.as_str(), &view.max_unavailable) {
        ("RollingUpdate", Some(max)) => format!(
            "RollingUpdate, partition {}, maxUnavailable {max}",
            view.partition
        ),
        ("RollingUpdate", None) => format!("RollingUpdate, partition {}", view.partition),
        (other, _) => other.to_string(),
    };
    let service = match &view.service.name {
        Some(n) => format!(
            "{n} ({})",
            paint(
                view.service.health.label(),
                health_color(view.service.health)
            )
        ),
        None => paint("<not set>", health_color(view.service.health)),
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
    let rollout = match &view.rollout_reason {
        Some(reason) => format!(
            "{}: {reason}",
            paint(view.rollout.label(), rollout_color(view.rollout))
        ),
        None => paint(view.rollout.label(), rollout_color(view.rollout)),
    };
    let header = [
        ("Name", view.name.clone()),
        ("Namespace", view.namespace.clone()),
        (
            "Replicas",
            match view.status_ready_replicas {
                None => format!("{} desired, {} ready", view.replicas, view.ready_replicas),
                Some(status) => format!(
                    "{} desired, {} ready (from the pods; the StatefulSet's status still says {status}: the controller has not caught up)",
                    view.replicas, view.ready_replicas
                ),
            },
        ),
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

    writeln!(out)?;
    let mut columns = vec![
        "ORDINAL", "POD", "PHASE", "READY", "RESTARTS", "NODE", "REVISION", "AGE", "DNS",
    ];
    if wide {
        columns.push("IP");
    }
    let mut table = new_table(columns);
    for pod in &view.pods {
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
        let revision_color = if pod.on_update_revision {
            None
        } else {
            Some(comfy_table::Color::Yellow)
        };
        let mut row = vec![
            cell(pod.ordinal.to_string(), None, color),
            cell(&pod.name, None, color),
            if pod.exists {
                cell(pod.phase.as_deref().unwrap_or("<unknown>"), None, color)
            } else {
                cell("<missing>", Some(comfy_table::Color::Red), color)
            },
            cell(
                if pod.exists {
                    pod.ready.to_string()
                } else {
                    "-".to_string()
                },
                (pod.exists && !pod.ready).then_some(comfy_table::Color::Red),
                color,
            ),
            cell(
                if pod.exists {
                    pod.restarts.to_string()
                } else {
                    "-".to_string()
                },
                None,
                color,
            ),
            cell(pod.node.as_deref().unwrap_or("<none>"), None, color),
            cell(
                revision,
                pod.exists.then_some(revision_color).flatten(),
                color,
            ),
            cell(pod.age.as_deref().unwrap_or("-"), None, color),
            cell(dns_cell(pod), None, color),
        ];
        if wide {
            row.push(cell(pod.ip.as_deref().unwrap_or("<none>"), None, color));
        }
        table.add_row(row);
    }
    // The table has no borders and no wrapping: line 0 is the header, line i+1 is pod i. The
    // partition line goes above the first pod that gets the update revision.
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
            writeln!(out, "{}", paint(&text, Some(comfy_table::Color::Cyan)))?;
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    if view.partition_ordinal.is_some() && partition_at.is_none() {
        writeln!(
            out,
            "{}",
            paint(
                &format!(
                    "---- partition {}: no pod reaches it; all keep the current revision ----",
                    view.partition
                ),
                Some(comfy_table::Color::Cyan)
            )
        )?;
    }

    if view.pods.iter().any(|p| !p.pvcs.is_empty()) {
        writeln!(out)?;
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
                        Some(p) => cell(
                            p,
                            (p != "Bound").then_some(comfy_table::Color::Yellow),
                            color,
                        ),
                        None => cell("<not created>", Some(comfy_table::Color::Yellow), color),
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
        write_table(out, &table)?;
    }

    if !view.warnings.is_empty() {
        writeln!(out, "\nWarnings:")?;
        for w in &view.warnings {
            writeln!(
                out,
                "  {}: {}",
                paint(&w.reason, Some(comfy_table::Color::Red)),
                w.message
            )?;
        }
    }
    Ok(())
}

fn ansi(c: comfy_table::Color) -> anstyle::Color {
    use anstyle::AnsiColor as A;
    anstyle::Color::Ansi(match c {
        comfy_table::Color::Red => A::Red,
        comfy_table::Color::Green => A::Green,
        comfy_table::Color::Yellow => A::Yellow,
        comfy_table::Color::Cyan => A::Cyan,
        _ => A::White,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        render(&mut out, OutputFormat::Table, &view, false).unwrap();
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
    fn json_follows_the_contract() {
        let view = build_view(&input(), "cluster.local", now());
        let mut out = Vec::new();
        render(&mut out, OutputFormat::Json, &view, false).unwrap();
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
    fn not_found_suggests_close_names() {
        let sets = vec![
            statefulset("prod", "web").build(),
            statefulset("prod", "db").build(),
        ];
        let err = pick_statefulset(sets, "prod", "wbe").unwrap_err();
        assert_eq!(
            err.to_string(),
            "StatefulSet \"wbe\" not found in namespace \"prod\"; did you mean: web?"
        );
    }
}
