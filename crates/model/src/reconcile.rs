//! The reconciler's decisions, as pure functions over cached objects.
//!
//! At admission time a new StatefulSet has no UID, so the Service the webhook creates cannot
//! name it as owner yet. The reconciler closes that gap and a few others:
//!
//! - **adopt**: a managed Service whose StatefulSet now exists (and uses it as `serviceName`)
//!   gets an ownerReference to it, so deleting the StatefulSet garbage-collects the Service;
//! - **heal**: a StatefulSet (not opted out) whose `serviceName` Service is missing gets one —
//!   this covers StatefulSets created while the webhook was down;
//! - **orphan**: a managed Service whose StatefulSet *never appeared* (e.g. the create was
//!   rejected after the webhook ran) is deleted once the grace period has passed since the
//!   reconciler first saw it without one.
//!
//! A Service is the user's to keep, never an orphan, when any of these holds:
//! - it has ownerReferences (the garbage collector decides);
//! - it was ever adopted ([`ADOPTED_ANNOTATION`]): after `kubectl delete sts --cascade=orphan`
//!   the collector removes the ownerReference, but the pods keep running and need its DNS;
//! - the reconciler first saw it when it was already older than the grace period: whether its
//!   StatefulSet ever existed cannot be told any more (e.g. a Service adopted by an older
//!   version, or one the reconciler was not running to see);
//! - it still selects pods: checked by the caller against fresh state right before deleting
//!   ([`Action::DeleteOrphan`]), since the caches hold no pods.
//!
//! [`plan`] turns a snapshot into [`Action`]s; applying them is the caller's job. Every action
//! carries the preconditions (resourceVersion, UID) that make applying it twice, or from two
//! replicas at once, harmless.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::cached::{CachedService, CachedStatefulSet};
use crate::dns::is_dns1035_label;
use crate::headless::{
    ADOPTED_ANNOTATION, HeadlessConfig, ServiceFacts, StatefulSetFacts, desired_service_of,
    is_managed,
};
use crate::objects::service_name;

/// Tunables of [`plan`].
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// How long after the reconciler first saw a managed Service without its StatefulSet it
    /// may be deleted (if it was seen young enough to tell, see the module docs).
    pub orphan_grace: Duration,
    /// Namespaces where nothing is healed (the webhook itself is not called there either).
    pub skip_namespaces: Vec<String>,
    /// How healed Services are built (the same as at admission).
    pub headless: HeadlessConfig,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            orphan_grace: Duration::from_secs(5 * 60),
            skip_namespaces: vec!["kube-system".to_owned()],
            headless: HeadlessConfig::default(),
        }
    }
}

/// One change the reconciler should make.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Replace the Service's ownerReferences with `owner_references` (the existing ones plus
    /// the StatefulSet) and set [`ADOPTED_ANNOTATION`] to `statefulset_uid`, guarded by
    /// `resource_version`.
    Adopt {
        namespace: String,
        service: String,
        statefulset: String,
        statefulset_uid: String,
        resource_version: String,
        owner_references: Vec<OwnerReference>,
    },
    /// Create the headless Service `service` for `statefulset`: `object` is the Service as
    /// admission would have built it, already owned by the StatefulSet.
    Heal {
        namespace: String,
        service: String,
        statefulset: String,
        object: Box<Service>,
    },
    /// Delete a managed Service whose StatefulSet never appeared, guarded by UID and
    /// resourceVersion so a Service re-created or adopted meanwhile is left alone. The caller
    /// must first re-check against fresh state: the StatefulSet still absent, the Service still
    /// unowned and never adopted, and no pod selected by it.
    DeleteOrphan {
        namespace: String,
        service: String,
        statefulset: String,
        uid: String,
        resource_version: String,
        /// How long ago the reconciler first saw it without its StatefulSet.
        unclaimed_for: Duration,
    },
}

impl Action {
    /// Short verb for logs and metrics.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Adopt { .. } => "adopt",
            Action::Heal { .. } => "heal",
            Action::DeleteOrphan { .. } => "delete_orphan",
        }
    }
}

/// What to do now, and when to look again even if nothing changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Earliest moment a managed Service still within its grace period becomes deletable.
    pub recheck_at: Option<Timestamp>,
    /// The sightings to pass to the next [`plan`]: one per managed Service that is still
    /// without its StatefulSet.
    pub sightings: Sightings,
}

/// When the reconciler first saw each managed Service without its StatefulSet, keyed by
/// namespace, name and UID (a re-created Service starts afresh). Kept in memory between
/// passes: after a restart every clock starts again, which only ever delays a deletion.
pub type Sightings = BTreeMap<(String, String, String), Sighting>;

/// The first time a managed Service was seen without its StatefulSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// When the reconciler first saw it so.
    pub since: Timestamp,
    /// Whether it was younger than the grace period then: only such a Service is known to have
    /// had no StatefulSet since it was created.
    pub seen_young: bool,
}

/// The StatefulSet name a Service is managed for, if it carries both our label and annotation.
pub fn managed_for<S: ServiceFacts + ?Sized>(svc: &S) -> Option<&str> {
    if !is_managed(svc) {
        return None;
    }
    svc.statefulset_annotation().filter(|s| !s.is_empty())
}

/// The ownerReference a StatefulSet gives its Service. Not a controller reference and not
/// blocking deletion: the Service only needs to be garbage-collected after the StatefulSet,
/// and claiming `controller` could clash with other tools that manage it.
pub fn owner_reference(sts: &CachedStatefulSet) -> Option<OwnerReference> {
    let uid = sts.uid().filter(|u| !u.is_empty())?;
    let name = sts.name().filter(|n| !n.is_empty())?;
    Some(OwnerReference {
        api_version: "apps/v1".to_owned(),
        kind: "StatefulSet".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    })
}

/// Whether a Service was ever given an owner by the reconciler ([`ADOPTED_ANNOTATION`]).
pub fn was_adopted<S: ServiceFacts + ?Sized>(svc: &S) -> bool {
    svc.adopted_from().is_some()
}

/// Decides what to do, given everything the caches hold and the previous pass's
/// [`Plan::sightings`] (empty on the first pass).
///
/// Takes the webhook caches' own types ([`crate::cached`]): it reads nothing else. Must only be
/// called with complete snapshots (both caches synced): an empty StatefulSet list would
/// otherwise look like "every StatefulSet is gone".
pub fn plan<'a>(
    services: impl IntoIterator<Item = &'a CachedService>,
    statefulsets: impl IntoIterator<Item = &'a CachedStatefulSet>,
    sightings: &Sightings,
    now: Timestamp,
    cfg: &PlanConfig,
) -> Plan {
    // (namespace, name) → object; BTreeMap for a deterministic action order.
    let mut svcs: BTreeMap<(&str, &str), &CachedService> = BTreeMap::new();
    for svc in services {
        if let (Some(ns), Some(name)) = (svc.namespace(), svc.name()) {
            svcs.insert((ns, name), svc);
        }
    }
    let mut stss: HashMap<(&str, &str), &CachedStatefulSet> = HashMap::new();
    let mut sts_order: Vec<(&str, &str)> = Vec::new();
    for sts in statefulsets {
        if let (Some(ns), Some(name)) = (sts.namespace(), sts.name()) {
            stss.insert((ns, name), sts);
            sts_order.push((ns, name));
        }
    }
    sts_order.sort_unstable();

    let mut out = Plan::default();
    for (&(ns, name), svc) in &svcs {
        let Some(sts_name) = managed_for(*svc) else {
            continue;
        };
        if svc.is_terminating() {
            continue;
        }
        let existing = svc.owner_references();
        let sts = stss
            .get(&(ns, sts_name))
            .filter(|sts| service_name(**sts) == Some(name));
        match sts {
            Some(sts) => {
                // A StatefulSet being deleted will not come back: leave the Service to the
                // garbage collector (if owned) or to the orphan rule once the object is gone.
                if sts.is_terminating() {
                    continue;
                }
                let Some(owner) = owner_reference(sts) else {
                    continue;
                };
                if existing.iter().any(|o| o.uid == owner.uid) {
                    continue;
                }
                let Some(rv) = svc.resource_version().map(str::to_owned) else {
                    continue;
                };
                let statefulset_uid = owner.uid.clone();
                let mut owner_references = existing.to_vec();
                owner_references.push(owner);
                out.actions.push(Action::Adopt {
                    namespace: ns.to_owned(),
                    service: name.to_owned(),
                    statefulset: sts_name.to_owned(),
                    statefulset_uid,
                    resource_version: rv,
                    owner_references,
                });
            }
            None => {
                // Owned Services are the garbage collector's business, even if the owner looks
                // gone from here (our cache may be behind; the collector asks the API). An
                // adopted one lost its owner on purpose (orphan cascade) and is the user's.
                if !existing.is_empty() || was_adopted(*svc) {
                    continue;
                }
                let (Some(uid), Some(rv), Some(created)) = (
                    svc.uid().map(str::to_owned),
                    svc.resource_version().map(str::to_owned),
                    svc.creation_timestamp(),
                ) else {
                    continue;
                };
                let grace =
                    SignedDuration::try_from(cfg.orphan_grace).unwrap_or(SignedDuration::MAX);
                let key = (ns.to_owned(), name.to_owned(), uid.clone());
                let sighting = sightings.get(&key).copied().unwrap_or(Sighting {
                    since: now,
                    seen_young: now.duration_since(created) < grace,
                });
                out.sightings.insert(key, sighting);
                if !sighting.seen_young {
                    // Found already old: its StatefulSet may have existed. Kept.
                    continue;
                }
                let unclaimed = now.duration_since(sighting.since);
                if unclaimed >= grace {
                    out.actions.push(Action::DeleteOrphan {
                        namespace: ns.to_owned(),
                        service: name.to_owned(),
                        statefulset: sts_name.to_owned(),
                        uid,
                        resource_version: rv,
                        unclaimed_for: Duration::try_from(unclaimed).unwrap_or_default(),
                    });
                } else if let Ok(at) = sighting.since.checked_add(grace) {
                    out.recheck_at = Some(out.recheck_at.map_or(at, |cur| cur.min(at)));
                }
            }
        }
    }

    for key in sts_order {
        let (ns, name) = key;
        let Some(sts) = stss.get(&key) else {
            continue;
        };
        if cfg.skip_namespaces.iter().any(|s| s == ns) || sts.is_terminating() {
            continue;
        }
        let Some(svc_name) = service_name(*sts) else {
            continue;
        };
        // Any Service of that name, ours or not, headless or not, is left alone.
        if svcs.contains_key(&(ns, svc_name)) || !is_dns1035_label(svc_name) {
            continue;
        }
        let Some(owner) = owner_reference(sts) else {
            continue;
        };
        // Opted out, or a selector a Service cannot express: admission skipped it too.
        let Ok(mut object) = desired_service_of(sts, svc_name, &cfg.headless) else {
            continue;
        };
        object
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ADOPTED_ANNOTATION.to_owned(), owner.uid.clone());
        object.metadata.owner_references = Some(vec![owner]);
        out.actions.push(Action::Heal {
            namespace: ns.to_owned(),
            service: svc_name.to_owned(),
            statefulset: name.to_owned(),
            object: Box::new(object),
        });
    }
    out
}

/// The decision of an [`Action::DeleteOrphan`], made again from fresh reads right before the
/// DELETE (the plan came from caches that may be behind, and hold no pods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Still an orphan: delete with UID and this resourceVersion as preconditions.
    Delete { resource_version: String },
    /// The Service is gone or was replaced by another object of the same name.
    Gone,
    /// Not an orphan after all.
    Keep(Keep),
}

/// Why a Service planned for deletion is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Its StatefulSet exists (the cache was behind).
    StatefulSetExists,
    /// It has an owner now, or was adopted meanwhile.
    Owned,
    /// It selects these pods: they rely on it for their DNS names, so it is the user's to keep
    /// (e.g. after `kubectl delete sts --cascade=orphan` of a StatefulSet adopted before the
    /// adoption mark existed).
    SelectsPods(Vec<String>),
}

impl Keep {
    /// Whether this decision stands for good: a Service that once selected pods is never
    /// deleted by the reconciler, even when the pods go.
    pub fn is_final(&self) -> bool {
        matches!(self, Keep::SelectsPods(_))
    }

    /// Short snake_case word for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Keep::StatefulSetExists => "statefulset_exists",
            Keep::Owned => "owned",
            Keep::SelectsPods(_) => "selects_pods",
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::StatefulSetExists => f.write_str("its StatefulSet exists (the cache was behind)"),
            Keep::Owned => f.write_str("it has an owner or was adopted meanwhile"),
            Keep::SelectsPods(pods) => write!(
                f,
                "it selects pod(s) {}, which need it for their DNS names; it is the user's to keep",
                pods.join(", ")
            ),
        }
    }
}

/// Re-decides a planned [`Action::DeleteOrphan`] (`uid`, for `statefulset`) from fresh reads:
/// the Service now (`None`: not found), whether the StatefulSet now exists with this Service as
/// its `serviceName`, and the names of the pods the Service's selector matches now.
pub fn recheck_orphan(
    uid: &str,
    fresh: Option<&Service>,
    statefulset_uses_it: bool,
    selected_pods: &[String],
) -> Recheck {
    let Some(svc) = fresh.filter(|s| s.metadata.uid.as_deref() == Some(uid)) else {
        return Recheck::Gone;
    };
    if svc.metadata.deletion_timestamp.is_some() {
        return Recheck::Gone;
    }
    if statefulset_uses_it {
        return Recheck::Keep(Keep::StatefulSetExists);
    }
    let owned = svc
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty());
    if owned || was_adopted(svc) || managed_for(svc).is_none() {
        return Recheck::Keep(Keep::Owned);
    }
    if !selected_pods.is_empty() {
        return Recheck::Keep(Keep::SelectsPods(selected_pods.to_vec()));
    }
    match svc.metadata.resource_version.clone() {
        Some(resource_version) => Recheck::Delete { resource_version },
        None => Recheck::Gone,
    }
}

/// The label selector (`k=v,…`) of a Service's `spec.selector`, for listing the pods it
/// selects; `None` when it has none (a Service without a selector selects no pods).
pub fn service_pod_selector(svc: &Service) -> Option<String> {
    let selector = svc
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())?;
    let selector: kube_core::Selector = selector.clone().into_iter().collect();
    Some(selector.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headless::{
        MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPT_OUT_LABEL, STATEFULSET_ANNOTATION,
    };
    use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta, Time,
    };

    const NOW: &str = "2026-11-22T05:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn ago(secs: i64) -> Time {
        Time(now().checked_sub(SignedDuration::from_secs(secs)).unwrap())
    }

    fn cfg() -> PlanConfig {
        PlanConfig {
            orphan_grace: Duration::from_secs(300),
            ..PlanConfig::default()
        }
    }

    fn sts(ns: &str, name: &str, service_name: Option<&str>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{ns}-{name}")),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                service_name: service_name.map(Into::into),
                selector: LabelSelector {
                    match_labels: Some([("app".to_owned(), name.to_owned())].into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A Service the webhook created for StatefulSet `for_sts`, `age_secs` old.
    fn managed(ns: &str, name: &str, for_sts: &str, age_secs: i64) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(format!("svc-uid-{ns}-{name}")),
                resource_version: Some("42".into()),
                creation_timestamp: Some(ago(age_secs)),
                labels: Some([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())].into()),
                annotations: Some([(STATEFULSET_ANNOTATION.to_owned(), for_sts.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn unmanaged(ns: &str, name: &str, age_secs: i64) -> Service {
        let mut s = managed(ns, name, "x", age_secs);
        s.metadata.labels = None;
        s.metadata.annotations = None;
        s
    }

    fn owned_by(mut svc: Service, sts: &StatefulSet) -> Service {
        svc.metadata.owner_references = Some(vec![owner_ref(sts)]);
        svc
    }

    fn owner_ref(sts: &StatefulSet) -> OwnerReference {
        owner_reference(&sts.into()).unwrap()
    }

    /// What the caches would hold of these objects.
    fn cached(
        services: &[Service],
        statefulsets: &[StatefulSet],
    ) -> (Vec<CachedService>, Vec<CachedStatefulSet>) {
        (
            services.iter().map(CachedService::from).collect(),
            statefulsets.iter().map(CachedStatefulSet::from).collect(),
        )
    }

    /// A first pass (no earlier sightings) at [`now`].
    fn run(services: &[Service], statefulsets: &[StatefulSet]) -> Plan {
        plan_at(services, statefulsets, &Sightings::new(), now(), &cfg())
    }

    /// [`plan`] over the cached copies of these objects.
    fn plan_at(
        services: &[Service],
        statefulsets: &[StatefulSet],
        sightings: &Sightings,
        at: Timestamp,
        cfg: &PlanConfig,
    ) -> Plan {
        let (services, statefulsets) = cached(services, statefulsets);
        plan(&services, &statefulsets, sightings, at, cfg)
    }

    /// A pass `secs` after [`now`], continuing from `earlier`'s sightings.
    fn run_later(
        services: &[Service],
        statefulsets: &[StatefulSet],
        earlier: &Plan,
        secs: i64,
    ) -> Plan {
        let at = now().checked_add(SignedDuration::from_secs(secs)).unwrap();
        plan_at(services, statefulsets, &earlier.sightings, at, &cfg())
    }

    fn at(secs: i64) -> Timestamp {
        now().checked_add(SignedDuration::from_secs(secs)).unwrap()
    }

    #[test]
    fn adopts_a_managed_service_once_its_statefulset_exists() {
        let web = sts("ns", "web", Some("web"));
        let p = run(&[managed("ns", "web", "web", 10)], &[web]);
        assert_eq!(
            p.actions,
            vec![Action::Adopt {
                namespace: "ns".into(),
                service: "web".into(),
                statefulset: "web".into(),
                statefulset_uid: "uid-ns-web".into(),
                resource_version: "42".into(),
                owner_references: vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "StatefulSet".into(),
                    name: "web".into(),
                    uid: "uid-ns-web".into(),
                    controller: Some(false),
                    block_owner_deletion: Some(false),
                }],
            }]
        );
        assert_eq!(p.recheck_at, None);
    }

    #[test]
    fn adoption_keeps_existing_owner_references() {
        let web = sts("ns", "web", Some("web"));
        let other = sts("ns", "other", Some("other"));
        let svc = owned_by(managed("ns", "web", "web", 10), &other);
        let p = run(&[svc], &[web]);
        let [
            Action::Adopt {
                owner_references, ..
            },
        ] = p.actions.as_slice()
        else {
            panic!("expected one adopt, got {:?}", p.actions);
        };
        let uids: Vec<_> = owner_references.iter().map(|o| o.uid.as_str()).collect();
        assert_eq!(uids, ["uid-ns-other", "uid-ns-web"]);
    }

    #[test]
    fn already_owned_service_is_left_alone() {
        let web = sts("ns", "web", Some("web"));
        let svc = owned_by(managed("ns", "web", "web", 10), &web);
        assert_eq!(run(&[svc], &[web]), Plan::default());
    }

    #[test]
    fn adoption_matches_namespace_and_service_name_and_template_names() {
        // Template `{name}-hl`: Service name differs from the StatefulSet name.
        let web = sts("ns", "web", Some("web-hl"));
        let p = run(
            &[managed("ns", "web-hl", "web", 10)],
            std::slice::from_ref(&web),
        );
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].verb(), "adopt");
        // Same names in another namespace do not count.
        let p = run(&[managed("other", "web-hl", "web", 10)], &[web]);
        assert!(p.actions.iter().all(|a| a.verb() != "adopt"), "{p:?}");
    }

    #[test]
    fn statefulset_without_uid_or_resource_version_is_not_adopted() {
        let mut web = sts("ns", "web", Some("web"));
        web.metadata.uid = None;
        let p = run(
            &[managed("ns", "web", "web", 10)],
            std::slice::from_ref(&web),
        );
        assert_eq!(p, Plan::default());
        let web = sts("ns", "web", Some("web"));
        let mut svc = managed("ns", "web", "web", 10);
        svc.metadata.resource_version = None;
        assert_eq!(run(&[svc], &[web]), Plan::default());
    }

    #[test]
    fn terminating_statefulset_is_not_adopted() {
        let mut web = sts("ns", "web", Some("web"));
        web.metadata.deletion_timestamp = Some(ago(1));
        assert_eq!(
            run(&[managed("ns", "web", "web", 999)], &[web]),
            Plan::default()
        );
    }

    #[test]
    fn young_orphan_waits_a_grace_from_when_it_was_first_seen() {
        let services = [
            managed("ns", "web", "web", 100),
            managed("ns", "db", "db", 250),
        ];
        let first = run(&services, &[]);
        assert!(first.actions.is_empty(), "{first:?}");
        // The grace counts from this first sighting, not from creation: due in 300 s for both.
        assert_eq!(first.recheck_at, Some(at(300)));
        assert_eq!(first.sightings.len(), 2);
        assert!(
            first
                .sightings
                .values()
                .all(|s| s.seen_young && s.since == now())
        );
        // 299 s later: still waiting, the sightings carried over unchanged.
        let waiting = run_later(&services, &[], &first, 299);
        assert!(waiting.actions.is_empty());
        assert_eq!(waiting.sightings, first.sightings);
        assert_eq!(waiting.recheck_at, Some(at(300)));
    }

    #[test]
    fn orphan_past_grace_is_deleted_with_preconditions() {
        let svc = [managed("ns", "web", "web", 10)];
        let first = run(&svc, &[]);
        let p = run_later(&svc, &[], &first, 300);
        assert_eq!(
            p.actions,
            vec![Action::DeleteOrphan {
                namespace: "ns".into(),
                service: "web".into(),
                statefulset: "web".into(),
                uid: "svc-uid-ns-web".into(),
                resource_version: "42".into(),
                unclaimed_for: Duration::from_secs(300),
            }]
        );
        assert_eq!(p.recheck_at, None);
    }

    /// Regression (issue 10): `kubectl delete sts web --cascade=orphan` made the reconciler
    /// delete the Service within a second, because its grace counted from the Service's
    /// creation. The garbage collector removes the ownerReference; the adoption mark stays.
    #[test]
    fn a_service_that_was_ever_adopted_is_never_an_orphan() {
        let web = sts("ns", "web", Some("web"));
        let adopted = run(
            &[managed("ns", "web", "web", 3600)],
            std::slice::from_ref(&web),
        );
        let [
            Action::Adopt {
                statefulset_uid, ..
            },
        ] = adopted.actions.as_slice()
        else {
            panic!("expected one adopt, got {:?}", adopted.actions);
        };
        // After the orphan cascade: no owner, no StatefulSet, the mark left by the adoption.
        let mut svc = managed("ns", "web", "web", 5);
        svc.metadata
            .annotations
            .get_or_insert_default()
            .insert(ADOPTED_ANNOTATION.into(), statefulset_uid.clone());
        let first = run(std::slice::from_ref(&svc), &[]);
        let much_later = run_later(&[svc], &[], &first, 86_400);
        assert_eq!(much_later, Plan::default());
    }

    #[test]
    fn a_service_first_seen_old_is_kept() {
        // Already past the grace when the reconciler first saw it: whether its StatefulSet
        // ever existed cannot be told (adopted by an older version, or made while the
        // reconciler was not running), so it is the user's.
        let svc = [managed("ns", "web", "web", 300)];
        let first = run(&svc, &[]);
        assert!(first.actions.is_empty());
        assert_eq!(first.recheck_at, None);
        assert!(!first.sightings.values().next().unwrap().seen_young);
        let later = run_later(&svc, &[], &first, 86_400);
        assert!(later.actions.is_empty(), "{later:?}");
    }

    #[test]
    fn sightings_follow_the_object_not_the_name() {
        let svc = managed("ns", "web", "web", 1);
        let first = run(std::slice::from_ref(&svc), &[]);
        // Re-created under the same name: a new UID starts a new clock.
        let mut again = managed("ns", "web", "web", -299);
        again.metadata.uid = Some("another-uid".into());
        let p = run_later(&[again], &[], &first, 300);
        assert!(p.actions.is_empty(), "{p:?}");
        assert_eq!(p.recheck_at, Some(at(600)));
        // Once its StatefulSet appears, the sighting is dropped.
        let web = sts("ns", "web", Some("web"));
        let p = run_later(&[svc], &[web], &first, 10);
        assert!(p.sightings.is_empty());
    }

    #[test]
    fn the_delete_is_decided_again_from_fresh_state() {
        let svc = managed("ns", "web", "web", 10);
        let uid = "svc-uid-ns-web";
        let none: &[String] = &[];
        assert_eq!(
            recheck_orphan(uid, Some(&svc), false, none),
            Recheck::Delete {
                resource_version: "42".into()
            }
        );
        assert_eq!(recheck_orphan(uid, None, false, none), Recheck::Gone);
        assert_eq!(
            recheck_orphan("other", Some(&svc), false, none),
            Recheck::Gone
        );
        assert_eq!(
            recheck_orphan(uid, Some(&svc), true, none),
            Recheck::Keep(Keep::StatefulSetExists)
        );
        let web = sts("ns", "web", Some("web"));
        let owned = owned_by(svc.clone(), &web);
        assert_eq!(
            recheck_orphan(uid, Some(&owned), false, none),
            Recheck::Keep(Keep::Owned)
        );
        let mut adopted = svc.clone();
        adopted
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ADOPTED_ANNOTATION.into(), "x".into());
        assert_eq!(
            recheck_orphan(uid, Some(&adopted), false, none),
            Recheck::Keep(Keep::Owned)
        );
        let pods = ["web-0".to_owned(), "web-1".to_owned()];
        let keep = recheck_orphan(uid, Some(&svc), false, &pods);
        assert_eq!(keep, Recheck::Keep(Keep::SelectsPods(pods.to_vec())));
        let Recheck::Keep(why) = keep else {
            unreachable!()
        };
        assert!(why.is_final());
        assert!(why.to_string().contains("web-0, web-1"), "{why}");
    }

    #[test]
    fn pod_selector_of_a_service() {
        let mut svc = managed("ns", "web", "web", 1);
        assert_eq!(service_pod_selector(&svc), None);
        svc.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            selector: Some([("app".into(), "web".into()), ("tier".into(), "db".into())].into()),
            ..Default::default()
        });
        assert_eq!(
            service_pod_selector(&svc).as_deref(),
            Some("app=web,tier=db")
        );
    }

    #[test]
    fn grace_is_configurable() {
        let svc = managed("ns", "web", "web", 1);
        let short = PlanConfig {
            orphan_grace: Duration::from_secs(30),
            ..cfg()
        };
        let svcs = std::slice::from_ref(&svc);
        let first = plan_at(svcs, &[], &Sightings::new(), now(), &short);
        let p = plan_at(svcs, &[], &first.sightings, at(31), &short);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].verb(), "delete_orphan");
        assert!(run_later(&[svc], &[], &first, 31).actions.is_empty());
    }

    #[test]
    fn service_from_the_future_is_not_an_orphan_yet() {
        // Clock skew between us and the apiserver must not make a new Service look old.
        let svc = managed("ns", "web", "web", -60);
        let p = run(&[svc], &[]);
        assert!(p.actions.is_empty());
        assert!(p.recheck_at.is_some());
    }

    #[test]
    fn statefulset_using_another_service_name_does_not_save_the_orphan() {
        // The create that made "web" was rejected; "web" was re-created with serviceName "db".
        let web = sts("ns", "web", Some("db"));
        let services = [
            managed("ns", "web", "web", 1),
            managed("ns", "db", "web", 1),
        ];
        let first = run(&services, std::slice::from_ref(&web));
        let p = run_later(&services, &[web], &first, 600);
        let verbs: Vec<_> = p.actions.iter().map(|a| (a.verb(), a_service(a))).collect();
        assert_eq!(verbs, [("adopt", "db"), ("delete_orphan", "web")]);
    }

    fn a_service(a: &Action) -> &str {
        match a {
            Action::Adopt { service, .. }
            | Action::Heal { service, .. }
            | Action::DeleteOrphan { service, .. } => service,
        }
    }

    #[test]
    fn never_deletes_services_that_are_not_ours() {
        let mut no_annotation = managed("ns", "a", "a", 9999);
        no_annotation.metadata.annotations = None;
        let mut other_manager = managed("ns", "b", "b", 9999);
        other_manager
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(MANAGED_BY_LABEL.into(), "helm".into());
        let mut empty_annotation = managed("ns", "c", "", 9999);
        empty_annotation.metadata.annotations =
            Some([(STATEFULSET_ANNOTATION.to_owned(), String::new())].into());
        let p = run(
            &[
                unmanaged("ns", "d", 9999),
                no_annotation,
                other_manager,
                empty_annotation,
            ],
            &[],
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn never_deletes_owned_services() {
        let gone = sts("ns", "web", Some("web"));
        let svc = owned_by(managed("ns", "web", "web", 9999), &gone);
        assert_eq!(run(&[svc], &[]), Plan::default());
    }

    #[test]
    fn terminating_or_incomplete_services_are_skipped() {
        let mut terminating = managed("ns", "a", "a", 9999);
        terminating.metadata.deletion_timestamp = Some(ago(1));
        let mut no_created = managed("ns", "b", "b", 9999);
        no_created.metadata.creation_timestamp = None;
        let mut no_uid = managed("ns", "c", "c", 9999);
        no_uid.metadata.uid = None;
        assert_eq!(
            run(&[terminating, no_created, no_uid], &[]),
            Plan::default()
        );
    }

    #[test]
    fn heals_a_statefulset_whose_service_is_missing() {
        let web = sts("ns", "web", Some("web"));
        let p = run(&[], std::slice::from_ref(&web));
        let [
            Action::Heal {
                namespace,
                service,
                statefulset,
                object,
            },
        ] = p.actions.as_slice()
        else {
            panic!("expected one heal, got {:?}", p.actions);
        };
        assert_eq!((namespace.as_str(), service.as_str()), ("ns", "web"));
        assert_eq!(statefulset, "web");
        let meta = &object.metadata;
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(managed_for(&**object), Some("web"));
        assert_eq!(meta.owner_references, Some(vec![owner_ref(&web)]));
        let spec = object.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(
            spec.selector,
            Some([("app".to_owned(), "web".to_owned())].into())
        );
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
    }

    #[test]
    fn healed_service_follows_the_headless_config() {
        let web = sts("ns", "web", Some("web"));
        let cfg = PlanConfig {
            headless: HeadlessConfig {
                publish_not_ready_addresses: false,
            },
            ..cfg()
        };
        let p = plan_at(&[], &[web], &Sightings::new(), now(), &cfg);
        let [Action::Heal { object, .. }] = p.actions.as_slice() else {
            panic!("expected one heal, got {:?}", p.actions);
        };
        let spec = object.spec.as_ref().unwrap();
        assert_eq!(spec.publish_not_ready_addresses, Some(false));
    }

    #[test]
    fn heal_looks_for_the_service_in_the_statefulsets_namespace() {
        let web = sts("a", "web", Some("web"));
        let p = run(&[unmanaged("b", "web", 1)], &[web]);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].verb(), "heal");
    }

    #[test]
    fn existing_service_of_any_kind_prevents_heal() {
        let web = sts("ns", "web", Some("web"));
        // A user's Service (maybe not even headless) is never replaced.
        assert_eq!(
            run(&[unmanaged("ns", "web", 1)], std::slice::from_ref(&web))
                .actions
                .len(),
            0
        );
        let owned = owned_by(managed("ns", "web", "web", 1), &web);
        assert_eq!(run(&[owned], &[web]), Plan::default());
    }

    #[test]
    fn heal_skips_what_the_webhook_would_skip() {
        let mut opted = sts("ns", "a", Some("a"));
        opted.metadata.labels = Some([(OPT_OUT_LABEL.to_owned(), "false".to_owned())].into());
        let no_name = sts("ns", "b", None);
        let empty_name = sts("ns", "c", Some(""));
        let mut exprs = sts("ns", "d", Some("d"));
        exprs.spec.as_mut().unwrap().selector.match_expressions =
            Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: Some(vec!["d".into()]),
            }]);
        let mut no_labels = sts("ns", "e", Some("e"));
        no_labels.spec.as_mut().unwrap().selector.match_labels = None;
        let mut terminating = sts("ns", "f", Some("f"));
        terminating.metadata.deletion_timestamp = Some(ago(1));
        let system = sts("kube-system", "g", Some("g"));
        let bad_name = sts("ns", "h", Some("1h"));
        let mut no_uid = sts("ns", "i", Some("i"));
        no_uid.metadata.uid = None;
        let p = run(
            &[],
            &[
                opted,
                no_name,
                empty_name,
                exprs,
                no_labels,
                terminating,
                system,
                bad_name,
                no_uid,
            ],
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn opt_in_label_values_other_than_false_still_heal() {
        let mut web = sts("ns", "web", Some("web"));
        web.metadata.labels = Some([(OPT_OUT_LABEL.to_owned(), "true".to_owned())].into());
        assert_eq!(run(&[], &[web]).actions.len(), 1);
    }

    #[test]
    fn skip_namespaces_is_configurable() {
        let web = sts("kube-system", "web", Some("web"));
        let none = PlanConfig {
            skip_namespaces: vec![],
            ..cfg()
        };
        assert_eq!(
            plan_at(
                &[],
                std::slice::from_ref(&web),
                &Sightings::new(),
                now(),
                &none
            )
            .actions
            .len(),
            1
        );
        assert!(run(&[], &[web]).actions.is_empty());
    }

    #[test]
    fn actions_are_ordered_and_stable() {
        let stss = [sts("b", "web", Some("web")), sts("a", "web", Some("web"))];
        let svcs = [managed("z", "old", "old", 1), managed("c", "old", "old", 1)];
        let first = run(&svcs, &stss);
        let p = run_later(&svcs, &stss, &first, 9999);
        let keys: Vec<_> = p
            .actions
            .iter()
            .map(|a| match a {
                Action::Adopt { namespace, .. }
                | Action::Heal { namespace, .. }
                | Action::DeleteOrphan { namespace, .. } => (a.verb(), namespace.as_str()),
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("delete_orphan", "c"),
                ("delete_orphan", "z"),
                ("heal", "a"),
                ("heal", "b")
            ]
        );
    }

    #[test]
    fn works_on_real_statefulset_json() {
        // Shape as returned by a v1.20 apiserver (trimmed): serviceName set, matchLabels.
        let web: StatefulSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default",
                         "uid": "5d7a0e62-0b7a-4a43-9a7e-3f0f1e2e0a11",
                         "creationTimestamp": "2026-11-22T04:00:00Z"},
            "spec": {"serviceName": "web", "replicas": 2,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "x",
                                     "ports": [{"name": "http", "containerPort": 80}]}]}}}
        }))
        .unwrap();
        let p = run(&[], std::slice::from_ref(&web));
        let [Action::Heal { object, .. }] = p.actions.as_slice() else {
            panic!("expected one heal, got {:?}", p.actions);
        };
        let owners = object.metadata.owner_references.as_ref().unwrap();
        assert_eq!(owners[0].uid, "5d7a0e62-0b7a-4a43-9a7e-3f0f1e2e0a11");
        let ports = object.spec.as_ref().unwrap().ports.as_ref().unwrap();
        assert_eq!(ports[0].port, 80);
    }
}
