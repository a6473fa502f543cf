//! Reconciler: adopts, heals and cleans up the headless Services the webhook manages.
//!
//! The decisions are [`sts_model::reconcile::plan`] over the watch caches; this module applies
//! them. It runs after every batch of watch changes and at least every `resync`. Every write is
//! idempotent and guarded (resourceVersion on patches, UID + resourceVersion preconditions on
//! deletes, AlreadyExists on creates), so two replicas can run it at once without leader
//! election: the loser of a race gets a Conflict/NotFound/AlreadyExists and moves on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use sts_model::headless::{ADOPTED_ANNOTATION, HeadlessConfig};
use sts_model::reconcile::{
    Action, Keep, PlanConfig, Recheck, Sightings, plan, recheck_orphan, service_pod_selector,
};
use tokio::time::Instant;

use crate::cache::Caches;
use crate::error_chain;
use crate::metrics::{Metrics, Source};
use crate::services::{CreateError, Ensured, ServiceWriter, ensure_service};

/// Settings of the reconciler.
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// How long after first seeing a managed Service without its StatefulSet the reconciler may
    /// delete it (`--orphan-service-grace`).
    pub orphan_grace: Duration,
    /// How healed Services are built; must match what admission uses.
    pub headless: HeadlessConfig,
    /// Namespaces where nothing is healed.
    pub skip_namespaces: Vec<String>,
    /// A full pass runs at least this often, even without watch events.
    pub resync: Duration,
    /// Quiet time before a pass: after a watch event, the pass waits until no further event
    /// has come for this long, so a burst of events (say a `kubectl apply` of many
    /// StatefulSets) costs one pass after it instead of several passes, and their writes,
    /// in the middle of it.
    pub debounce: Duration,
    /// The longest a pass waits for that quiet time, counted from the first event: under
    /// endless churn (StatefulSet status updates in a big cluster) a pass still runs this
    /// often.
    pub debounce_max: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        let plan = PlanConfig::default();
        ReconcilerConfig {
            orphan_grace: plan.orphan_grace,
            headless: plan.headless,
            skip_namespaces: plan.skip_namespaces,
            resync: Duration::from_secs(60),
            debounce: Duration::from_millis(500),
            debounce_max: Duration::from_secs(5),
        }
    }
}

/// Retry delays for an action that failed with an unexpected error (e.g. Forbidden), so a
/// permanent failure does not turn every watch event into an API call.
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// How applying one action ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    /// The change was made.
    Done,
    /// Nothing to do after all: someone else (another replica, the user, the garbage
    /// collector) got there first, or our cache was behind.
    Raced(&'static str),
    /// A planned delete was not done: fresh state showed the Service is not an orphan.
    Kept(Keep),
}

/// Why applying an action failed.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error("failed to add ownerReference to Service {namespace}/{name}: {source}")]
    Adopt {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create Service: {0}")]
    Create(#[from] CreateError),
    #[error("failed to re-check {what} before deleting Service {namespace}/{service}: {source}")]
    Recheck {
        namespace: String,
        service: String,
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete orphaned Service {namespace}/{name}: {source}")]
    Delete {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// The wait the API server asked for (`details.retryAfterSeconds` of its Status, which it
    /// also sends as the `Retry-After` header, e.g. with 429 Too Many Requests), if any.
    fn retry_after(&self) -> Option<Duration> {
        let source = match self {
            ApplyError::Adopt { source, .. }
            | ApplyError::Recheck { source, .. }
            | ApplyError::Delete { source, .. }
            | ApplyError::Create(CreateError::Api { source, .. }) => source,
            ApplyError::Create(CreateError::NoNamespace) => return None,
        };
        match source {
            kube::Error::Api(status) => status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|secs| *secs > 0)
                .map(|secs| Duration::from_secs(u64::from(secs))),
            _ => None,
        }
    }

    /// Metric `kind`; None when the error was already counted (ensure_service counts creates).
    fn metric_kind(&self) -> Option<&'static str> {
        match self {
            ApplyError::Adopt { .. } => Some("adopt_service"),
            ApplyError::Create(_) => None,
            ApplyError::Recheck { .. } | ApplyError::Delete { .. } => Some("delete_service"),
        }
    }
}

/// The wait before attempt `attempts + 1` of a failed action: 5 s doubling to 5 min, or longer
/// when the API server asked for longer (`Retry-After`).
fn retry_delay(attempts: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = RETRY_MIN
        .saturating_mul(1u32 << attempts.clamp(1, 10).saturating_sub(1))
        .min(RETRY_MAX);
    retry_after.map_or(backoff, |asked| backoff.max(asked.min(RETRY_MAX)))
}

struct Retry {
    attempts: u32,
    not_before: Instant,
}

/// Runs the reconciler until the process stops.
///
/// Waits for both caches to be synced first: planning over a half-filled StatefulSet cache
/// would make every managed Service look orphaned.
pub async fn run(client: Client, caches: Caches, cfg: ReconcilerConfig, metrics: Arc<Metrics>) {
    if !caches.wait_ready().await {
        tracing::error!("reconciler not started: the watch caches stopped before syncing");
        return;
    }
    tracing::info!(
        orphan_grace_secs = cfg.orphan_grace.as_secs(),
        resync_secs = cfg.resync.as_secs(),
        "reconciler started"
    );
    let mut reconciler = Reconciler {
        writer: HealWriter(client.clone()),
        client,
        caches,
        plan_cfg: PlanConfig {
            orphan_grace: cfg.orphan_grace,
            skip_namespaces: cfg.skip_namespaces.clone(),
            headless: cfg.headless.clone(),
        },
        metrics,
        retries: HashMap::new(),
        sightings: Sightings::new(),
        kept: HashSet::new(),
    };
    loop {
        let wake = reconciler.pass().await;
        let deadline = wake.map_or(Instant::now() + cfg.resync, |w| {
            w.min(Instant::now() + cfg.resync)
        });
        tokio::select! {
            () = reconciler.caches.changed() => {
                quiet(&reconciler.caches, cfg.debounce, cfg.debounce_max).await;
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Waits until `caches` have had no watch event for `debounce`, or until `max` has passed,
/// whichever is first ([`pass_due`]); consumes the events it saw (the coming pass covers them).
async fn quiet(caches: &Caches, debounce: Duration, max: Duration) {
    let first = Instant::now();
    let mut last = first;
    loop {
        tokio::select! {
            // The deadline first: under endless events it must still win once it has passed.
            biased;
            () = tokio::time::sleep_until(pass_due(first, last, debounce, max)) => return,
            () = caches.changed() => last = Instant::now(),
        }
    }
}

/// When a pass is due after watch events that began at `first` and were last seen at `last`:
/// `debounce` after the last one, but no later than `max` after the first.
fn pass_due(first: Instant, last: Instant, debounce: Duration, max: Duration) -> Instant {
    (last + debounce).min(first + max)
}

struct Reconciler {
    client: Client,
    writer: HealWriter,
    caches: Caches,
    plan_cfg: PlanConfig,
    metrics: Arc<Metrics>,
    /// Failed actions by key, with when to try again.
    retries: HashMap<String, Retry>,
    /// When each managed Service was first seen without its StatefulSet (see
    /// [`sts_model::reconcile::Sightings`]); carried from pass to pass.
    sightings: Sightings,
    /// Services (namespace, name, UID) that a fresh check showed to be the user's for good
    /// ([`Keep::is_final`]): never planned for deletion again by this process.
    kept: HashSet<(String, String, String)>,
}

impl Reconciler {
    /// One pass: plan over the caches and apply. Returns when the next pass is due at the
    /// latest (an orphan's grace ending, or a failed action's retry), if earlier than resync.
    async fn pass(&mut self) -> Option<Instant> {
        let services = self.caches.services.state();
        let statefulsets = self.caches.statefulsets.state();
        let now = Timestamp::now();
        let mut plan = plan(
            services.iter().map(AsRef::as_ref),
            statefulsets.iter().map(AsRef::as_ref),
            &self.sightings,
            now,
            &self.plan_cfg,
        );
        self.sightings = std::mem::take(&mut plan.sightings);
        let sightings = &self.sightings;
        self.kept.retain(|k| sightings.contains_key(k));
        let kept = &self.kept;
        plan.actions.retain(|a| match a {
            Action::DeleteOrphan {
                namespace,
                service,
                uid,
                ..
            } => !kept.contains(&(namespace.clone(), service.clone(), uid.clone())),
            _ => true,
        });
        // Forget retries of actions that are no longer planned (done by someone else).
        let keys: Vec<String> = plan.actions.iter().map(action_key).collect();
        self.retries.retain(|k, _| keys.contains(k));

        let mut wake = plan.recheck_at.map(|at| {
            // A little after the deadline, so the Service is surely past its grace.
            let wait = at.duration_since(now).unsigned_abs() + Duration::from_millis(200);
            Instant::now() + wait
        });
        for (action, key) in plan.actions.iter().zip(keys) {
            if let Some(retry) = self.retries.get(&key)
                && retry.not_before > Instant::now()
            {
                wake = Some(wake.map_or(retry.not_before, |w| w.min(retry.not_before)));
                continue;
            }
            match self.apply(action).await {
                Ok(applied) => {
                    self.retries.remove(&key);
                    if let (
                        Applied::Kept(why),
                        Action::DeleteOrphan {
                            namespace,
                            service,
                            uid,
                            ..
                        },
                    ) = (&applied, action)
                        && why.is_final()
                    {
                        self.kept
                            .insert((namespace.clone(), service.clone(), uid.clone()));
                    }
                    log_applied(action, &applied);
                }
                Err(err) => {
                    if let Some(kind) = err.metric_kind() {
                        self.metrics.error(kind);
                    }
                    let attempts = self.retries.get(&key).map_or(0, |r| r.attempts) + 1;
                    let delay = retry_delay(attempts, err.retry_after());
                    let not_before = Instant::now() + delay;
                    tracing::warn!(
                        action = action.verb(),
                        error = %error_chain(&err),
                        retry_in_secs = delay.as_secs(),
                        "reconcile action failed"
                    );
                    self.retries.insert(
                        key,
                        Retry {
                            attempts,
                            not_before,
                        },
                    );
                    wake = Some(wake.map_or(not_before, |w| w.min(not_before)));
                }
            }
        }
        wake
    }

    async fn apply(&self, action: &Action) -> Result<Applied, ApplyError> {
        match action {
            Action::Adopt {
                namespace,
                service,
                statefulset_uid,
                resource_version,
                owner_references,
                ..
            } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                // A merge patch carrying resourceVersion is a precondition: if the Service
                // changed since we looked (e.g. another replica adopted it), we get a Conflict
                // instead of overwriting its ownerReferences. The adoption mark outlives the
                // reference, which an orphan cascade removes.
                let patch = serde_json::json!({
                    "metadata": {
                        "resourceVersion": resource_version,
                        "ownerReferences": owner_references,
                        "annotations": { ADOPTED_ANNOTATION: statefulset_uid },
                    }
                });
                match api
                    .patch(service, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        self.metrics.service_adopted();
                        Ok(Applied::Done)
                    }
                    Err(kube::Error::Api(s)) if s.is_conflict() => {
                        Ok(Applied::Raced("Service changed meanwhile"))
                    }
                    Err(kube::Error::Api(s)) if s.is_not_found() => {
                        Ok(Applied::Raced("Service is gone"))
                    }
                    Err(source) => Err(ApplyError::Adopt {
                        namespace: namespace.clone(),
                        name: service.clone(),
                        source,
                    }),
                }
            }
            Action::Heal {
                namespace,
                service,
                statefulset,
                object,
            } => {
                let cached = self.caches.service(namespace, service);
                let ensured = ensure_service(
                    &self.writer,
                    cached,
                    object,
                    statefulset,
                    &self.metrics,
                    Source::Reconciler,
                )
                .await?;
                Ok(match ensured {
                    Ensured::Created => Applied::Done,
                    Ensured::AlreadyExisted
                    | Ensured::ExistsHeadless(_)
                    | Ensured::ExistsNotHeadless { .. } => {
                        Applied::Raced("Service exists (or its namespace is being deleted)")
                    }
                })
            }
            Action::DeleteOrphan {
                namespace,
                service,
                statefulset,
                uid,
                ..
            } => {
                // Deleting is the one harmful mistake a stale cache could cause, so the
                // decision is made again from the API itself, right before acting.
                let resource_version = match self
                    .recheck_orphan(namespace, service, statefulset, uid)
                    .await?
                {
                    Recheck::Delete { resource_version } => resource_version,
                    Recheck::Gone => return Ok(Applied::Raced("Service is gone or was replaced")),
                    Recheck::Keep(why) => {
                        self.metrics.service_kept(why.reason());
                        return Ok(Applied::Kept(why));
                    }
                };
                let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: Some(resource_version.clone()),
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(service, &params).await {
                    Ok(_) => {
                        self.metrics.service_deleted();
                        Ok(Applied::Done)
                    }
                    Err(kube::Error::Api(s)) if s.is_conflict() => {
                        Ok(Applied::Raced("Service changed meanwhile"))
                    }
                    Err(kube::Error::Api(s)) if s.is_not_found() => {
                        Ok(Applied::Raced("Service is gone"))
                    }
                    Err(source) => Err(ApplyError::Delete {
                        namespace: namespace.clone(),
                        name: service.clone(),
                        source,
                    }),
                }
            }
        }
    }
}

impl Reconciler {
    /// Fresh reads for [`recheck_orphan`]: the Service, the StatefulSet, and the pods the
    /// Service selects (at most a few names: one is enough to keep it).
    async fn recheck_orphan(
        &self,
        namespace: &str,
        service: &str,
        statefulset: &str,
        uid: &str,
    ) -> Result<Recheck, ApplyError> {
        let failed = |what: &'static str| {
            move |source| ApplyError::Recheck {
                namespace: namespace.to_owned(),
                service: service.to_owned(),
                what,
                source,
            }
        };
        let stss: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
        let uses_it = stss
            .get_opt(statefulset)
            .await
            .map_err(failed("its StatefulSet"))?
            .is_some_and(|sts| {
                sts.spec.as_ref().and_then(|s| s.service_name.as_deref()) == Some(service)
            });
        let svcs: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let fresh = svcs.get_opt(service).await.map_err(failed("the Service"))?;
        let mut selected = Vec::new();
        if let Some(selector) = fresh.as_ref().and_then(service_pod_selector) {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            let params = ListParams::default().labels(&selector).limit(5);
            selected = pods
                .list_metadata(&params)
                .await
                .map_err(failed("the pods it selects"))?
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
        }
        Ok(recheck_orphan(uid, fresh.as_ref(), uses_it, &selected))
    }
}

/// Creates healed Services. A namespace being deleted refuses new objects; its StatefulSets
/// are about to go too, so that refusal means "nothing to do", not an error.
struct HealWriter(Client);

impl ServiceWriter for HealWriter {
    fn create<'a>(&'a self, svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
        Box::pin(async move {
            match self.0.create(svc).await {
                Err(CreateError::Api {
                    source: kube::Error::Api(status),
                    ..
                }) if namespace_terminating(&status) => Ok(false),
                other => other,
            }
        })
    }
}

/// The apiserver's "unable to create new content in namespace X because it is being
/// terminated" (cause `NamespaceTerminating`; older servers only say it in the message).
fn namespace_terminating(status: &kube::core::Status) -> bool {
    status.code == 403
        && (status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
            || status.message.contains("because it is being terminated"))
}

/// Identifies an action across passes (for retry bookkeeping).
fn action_key(action: &Action) -> String {
    let (ns, svc) = match action {
        Action::Adopt {
            namespace, service, ..
        }
        | Action::Heal {
            namespace, service, ..
        }
        | Action::DeleteOrphan {
            namespace, service, ..
        } => (namespace, service),
    };
    format!("{} {ns}/{svc}", action.verb())
}

fn log_applied(action: &Action, applied: &Applied) {
    let (namespace, service, statefulset) = match action {
        Action::Adopt {
            namespace,
            service,
            statefulset,
            ..
        }
        | Action::Heal {
            namespace,
            service,
            statefulset,
            ..
        }
        | Action::DeleteOrphan {
            namespace,
            service,
            statefulset,
            ..
        } => (namespace, service, statefulset),
    };
    match applied {
        Applied::Done => {
            let what = match action {
                Action::Adopt { .. } => {
                    "adopted Service: ownerReference to its StatefulSet added".to_owned()
                }
                Action::Heal { .. } => "created missing headless Service".to_owned(),
                Action::DeleteOrphan { unclaimed_for, .. } => format!(
                    "deleted orphaned Service: its StatefulSet never appeared in the {}s since the reconciler first saw the Service",
                    unclaimed_for.as_secs()
                ),
            };
            tracing::info!(
                action = action.verb(),
                namespace = %namespace,
                service = %service,
                statefulset = %statefulset,
                "{what}"
            );
        }
        Applied::Kept(why) => tracing::info!(
            action = action.verb(),
            namespace = %namespace,
            service = %service,
            statefulset = %statefulset,
            "kept Service: {why}"
        ),
        Applied::Raced(why) => tracing::debug!(
            action = action.verb(),
            namespace = %namespace,
            service = %service,
            statefulset = %statefulset,
            "nothing to do: {why}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the pass after events 100 ms apart, the first at 0, is due (as an offset).
    fn due_after_events(events: u32) -> Duration {
        let (debounce, max) = (Duration::from_millis(500), Duration::from_secs(5));
        let first = Instant::now();
        let last = first + Duration::from_millis(100) * events.saturating_sub(1);
        pass_due(first, last, debounce, max) - first
    }

    #[test]
    fn a_pass_waits_for_quiet_after_a_burst_of_events() {
        // One event: the pass runs after the quiet time.
        assert_eq!(due_after_events(1), Duration::from_millis(500));
        // A burst of 21 events over 2 s: one pass, 500 ms after its last event (a fixed
        // 500 ms after the first ran it in the middle of the burst).
        assert_eq!(due_after_events(21), Duration::from_millis(2500));
    }

    #[test]
    fn under_endless_events_a_pass_still_runs_by_the_bound() {
        assert_eq!(due_after_events(1000), Duration::from_secs(5));
    }

    #[test]
    fn action_keys_distinguish_verbs_and_objects() {
        let del = Action::DeleteOrphan {
            namespace: "ns".into(),
            service: "web".into(),
            statefulset: "web".into(),
            uid: "u".into(),
            resource_version: "1".into(),
            unclaimed_for: Duration::from_secs(1),
        };
        let adopt = Action::Adopt {
            namespace: "ns".into(),
            service: "web".into(),
            statefulset: "web".into(),
            statefulset_uid: "s".into(),
            resource_version: "1".into(),
            owner_references: vec![],
        };
        assert_eq!(action_key(&del), "delete_orphan ns/web");
        assert_eq!(action_key(&adopt), "adopt ns/web");
    }

    #[test]
    fn namespace_terminating_is_recognised() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "services \"x\" is forbidden: unable to create new content in namespace t because it is being terminated",
            "reason": "Forbidden",
            "details": {"name": "x", "kind": "services",
                        "causes": [{"reason": "NamespaceTerminating", "message": "namespace t is being terminated", "field": "metadata.namespace"}]},
            "code": 403
        }))
        .unwrap();
        assert!(namespace_terminating(&status));
        let mut message_only = status.clone();
        message_only.details = None;
        assert!(namespace_terminating(&message_only));
        let other =
            kube::core::Status::failure("services is forbidden: User cannot create", "Forbidden")
                .with_code(403);
        assert!(!namespace_terminating(&other));
    }

    #[test]
    fn retries_back_off_and_wait_at_least_what_the_server_asked() {
        let secs = |a, after: Option<u64>| retry_delay(a, after.map(Duration::from_secs)).as_secs();
        assert_eq!(
            (1..=8).map(|a| secs(a, None)).collect::<Vec<_>>(),
            [5, 10, 20, 40, 80, 160, 300, 300]
        );
        assert_eq!(secs(1, Some(2)), 5, "the backoff is already longer");
        assert_eq!(secs(1, Some(30)), 30);
        assert_eq!(secs(1, Some(86_400)), 300, "capped like the backoff");
        let status = kube::core::Status {
            code: 429,
            reason: "TooManyRequests".into(),
            details: Some(
                serde_json::from_value(serde_json::json!({ "retryAfterSeconds": 7 })).unwrap(),
            ),
            ..Default::default()
        };
        let err = ApplyError::Create(CreateError::Api {
            namespace: "ns".into(),
            name: "web".into(),
            source: kube::Error::Api(status.boxed()),
        });
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            ApplyError::Create(CreateError::NoNamespace).retry_after(),
            None
        );
    }

    #[test]
    fn error_chain_includes_causes_once() {
        let err = ApplyError::Create(crate::services::CreateError::NoNamespace);
        assert_eq!(
            error_chain(&err),
            "failed to create Service: the Service to create has no namespace"
        );
    }
}
