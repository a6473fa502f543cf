//! Rollout state of a StatefulSet, and the partition maths behind it.
//!
//! With `RollingUpdate`, the pod at ordinal `o` should run the update revision when its index
//! `o - spec.ordinals.start` is ≥ `partition`; the others keep the current revision.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::naming::{ordinal_range, ordinals_start, statefulset_pod_ordinal};
use crate::objects::pod_revision;

/// How long a pod may stay not-ready during a rollout before we call the rollout stalled.
pub const DEFAULT_STALL_AFTER: SignedDuration = SignedDuration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutState {
    /// Every desired pod exists, is ready and runs the update revision, which is current.
    Complete,
    /// Pods are being created, updated or removed and nothing looks stuck.
    Rolling,
    /// Pods at or above the partition are updated and ready; those below wait on purpose.
    PausedByPartition,
    /// FailedCreate events, or a pod not ready for longer than the stall threshold.
    Stalled,
}

impl RolloutState {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            RolloutState::Complete => "complete",
            RolloutState::Rolling => "rolling",
            RolloutState::PausedByPartition => "paused by partition",
            RolloutState::Stalled => "stalled",
        }
    }
}

/// The state and, when not complete, a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    pub state: RolloutState,
    pub reason: Option<String>,
}

/// `spec.updateStrategy.type`, default `RollingUpdate`.
pub fn update_strategy(sts: &StatefulSet) -> &str {
    sts.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// The RollingUpdate partition (0 when absent or for OnDelete).
pub fn partition(sts: &StatefulSet) -> i32 {
    if update_strategy(sts) != "RollingUpdate" {
        return 0;
    }
    sts.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0)
}

/// Whether the pod at `ordinal` is meant to run the update revision under RollingUpdate.
pub fn ordinal_gets_update(sts: &StatefulSet, ordinal: i32) -> bool {
    ordinal - ordinals_start(sts) >= partition(sts)
}

/// The first ordinal at or above the partition (where the "partition line" is drawn), or
/// `None` when the partition is 0 (no line: every pod gets the update).
pub fn partition_ordinal(sts: &StatefulSet) -> Option<i32> {
    let p = partition(sts);
    (p > 0).then(|| ordinals_start(sts).saturating_add(p))
}

/// `spec.updateStrategy.rollingUpdate.maxUnavailable` as written (`2` or `"50%"`), for
/// RollingUpdate only. Beta and on by default since 1.35 (KEP-961, feature gate
/// `MaxUnavailableStatefulSet`); older servers drop the field, so `None` there.
pub fn max_unavailable(sts: &StatefulSet) -> Option<String> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    if update_strategy(sts) != "RollingUpdate" {
        return None;
    }
    let value = sts
        .spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?
        .max_unavailable
        .as_ref()?;
    Some(match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    })
}

/// How many of the StatefulSet's pods ([`pods_by_ordinal`]) are Ready, counted from the pods
/// themselves: the live evidence. `status.readyReplicas` is the controller's last count and
/// lags behind (or stops, when kube-controller-manager is down); compare with
/// [`ReadyCount::status_disagrees`].
pub fn ready_count<P: Borrow<Pod>>(sts: &StatefulSet, pods: &[P]) -> ReadyCount {
    let from_pods = pods_by_ordinal(sts, pods)
        .values()
        .filter(|p| pod_is_ready(p))
        .count();
    ReadyCount {
        pods: i32::try_from(from_pods).unwrap_or(i32::MAX),
        status: sts.status.as_ref().and_then(|s| s.ready_replicas),
    }
}

/// Ready pods as counted from the pods, and as the StatefulSet's status last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCount {
    /// Pods whose Ready condition is True.
    pub pods: i32,
    /// `status.readyReplicas` (absent = never written, read as 0).
    pub status: Option<i32>,
}

impl ReadyCount {
    /// The status' count when it differs from the pods' (the status is stale).
    pub fn status_disagrees(&self) -> Option<i32> {
        let status = self.status.unwrap_or(0);
        (status != self.pods).then_some(status)
    }
}

/// Ready condition True.
pub fn pod_is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|(ready, _)| ready)
}

/// Since when the pod has been Ready (the Ready condition's last transition), if it is Ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    match ready_condition(pod) {
        Some((true, since)) => since,
        _ => None,
    }
}

/// Since when the pod has been not ready (last Ready transition, else creation), if not ready.
pub fn not_ready_since(pod: &Pod) -> Option<Timestamp> {
    match ready_condition(pod) {
        Some((true, _)) => None,
        Some((false, Some(since))) => Some(since),
        _ => pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
    }
}

fn ready_condition(pod: &Pod) -> Option<(bool, Option<Timestamp>)> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        cond.status == "True",
        cond.last_transition_time.as_ref().map(|t| t.0),
    ))
}

/// Pods of `sts`, by ordinal: same namespace, named `<sts>-<ordinal>`, and not controlled by
/// some other object (a controller ownerReference, when present, must be this StatefulSet).
/// The ordinal comes from the pod-index label when present ([`statefulset_pod_ordinal`]).
///
/// `pods` may be the pods themselves or references to them (as [`crate::index`] groups them).
pub fn pods_by_ordinal<'a, P: Borrow<Pod>>(
    sts: &StatefulSet,
    pods: &'a [P],
) -> BTreeMap<i32, &'a Pod> {
    let name = sts.metadata.name.as_deref().unwrap_or_default();
    let namespace = sts.metadata.namespace.as_deref();
    let uid = sts.metadata.uid.as_deref();
    pods.iter()
        .map(Borrow::borrow)
        .filter(|p| p.metadata.namespace.as_deref() == namespace)
        .filter(|p| {
            let controller = p
                .metadata
                .owner_references
                .as_ref()
                .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)));
            controller.is_none_or(|r| r.kind == "StatefulSet" && Some(r.uid.as_str()) == uid)
        })
        .filter_map(|p| Some((statefulset_pod_ordinal(name, p)?, p)))
        .collect()
}

/// `spec.podManagementPolicy`, default `OrderedReady`.
pub fn pod_management_policy(sts: &StatefulSet) -> &str {
    sts.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        .unwrap_or("OrderedReady")
}

/// A pod that blocks the StatefulSet controller for good: the rollback trap of
/// kubernetes/kubernetes#67250 (documented under "Forced rollback" in the StatefulSet concepts
/// page). With `OrderedReady` and `RollingUpdate`, the controller replaces a pod that is not on
/// the update revision only after that pod is Running and Ready. A pod left on a broken
/// revision (typically after a rollback) never becomes Ready, so it is never replaced. It must
/// be deleted by hand; the controller then re-creates it on the update revision. `Parallel`
/// heals by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckPod {
    pub pod: String,
    /// The revision it runs (not the update revision).
    pub revision: Option<String>,
}

/// The pods caught in the rollback trap (see [`StuckPod`]), highest ordinal first (the order
/// in which the controller would replace them). Empty when the policy is `Parallel`, the
/// strategy is not `RollingUpdate`, or no pod at or above the partition is both off the update
/// revision and not Ready.
pub fn rollback_trap<P: Borrow<Pod>>(sts: &StatefulSet, pods: &[P]) -> Vec<StuckPod> {
    if pod_management_policy(sts) != "OrderedReady" || update_strategy(sts) != "RollingUpdate" {
        return Vec::new();
    }
    let Some(update) = sts
        .status
        .as_ref()
        .and_then(|s| s.update_revision.as_deref())
    else {
        return Vec::new();
    };
    let range = ordinal_range(sts);
    pods_by_ordinal(sts, pods)
        .into_iter()
        .rev()
        .filter(|(o, _)| range.contains(o) && ordinal_gets_update(sts, *o))
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_none())
        .filter(|(_, p)| pod_revision(p) != Some(update) && !pod_is_ready(p))
        .map(|(_, p)| StuckPod {
            pod: p.metadata.name.clone().unwrap_or_default(),
            revision: pod_revision(p).map(str::to_string),
        })
        .collect()
}

/// The pods a rollback to `target` (a revision name) would leave in the rollback trap: those
/// [`rollback_trap`] finds once `target` is the update revision. Shown before the rollback is
/// applied, so the user knows which pod to delete afterwards.
pub fn trap_after_rollback(sts: &StatefulSet, pods: &[Pod], target: &str) -> Vec<StuckPod> {
    let mut after = sts.clone();
    after.status.get_or_insert_default().update_revision = Some(target.to_string());
    rollback_trap(&after, pods)
}

/// The sentence that names the trapped pods and what to do.
pub fn rollback_trap_message(stuck: &[StuckPod]) -> String {
    let names: Vec<&str> = stuck.iter().map(|s| s.pod.as_str()).collect();
    let revision = stuck
        .first()
        .and_then(|s| s.revision.as_deref())
        .unwrap_or("an old revision");
    format!(
        "pod(s) {} stay on revision {revision} and are not Ready; with OrderedReady the controller waits for them forever (kubernetes/kubernetes#67250): delete them (kubectl delete pod {}) and the controller re-creates them on the update revision",
        names.join(", "),
        names.join(" ")
    )
}

/// Rollout state of `sts` given its pods (any pods; they are filtered with
/// [`pods_by_ordinal`]), whether FailedCreate events were seen for it, and the time now.
pub fn rollout_status<P: Borrow<Pod>>(
    sts: &StatefulSet,
    pods: &[P],
    failed_create: bool,
    now: Timestamp,
    stall_after: SignedDuration,
) -> RolloutStatus {
    let status = sts.status.as_ref();
    let current = status.and_then(|s| s.current_revision.as_deref());
    let update = status.and_then(|s| s.update_revision.as_deref());
    let generation = sts.metadata.generation.unwrap_or(0);
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let by_ordinal = pods_by_ordinal(sts, pods);
    let range = ordinal_range(sts);

    let missing: Vec<i32> = range
        .clone()
        .filter(|o| !by_ordinal.contains_key(o))
        .collect();
    let not_ready: Vec<(i32, &Pod)> = range
        .clone()
        .filter_map(|o| by_ordinal.get(&o).map(|p| (o, *p)))
        .filter(|(_, p)| !pod_is_ready(p))
        .collect();
    let extra: Vec<i32> = by_ordinal
        .keys()
        .copied()
        .filter(|o| !range.contains(o))
        .collect();
    let stale: Vec<i32> = range
        .clone()
        .filter(|o| by_ordinal.get(o).is_some_and(|p| pod_revision(p) != update))
        .collect();

    let settled =
        observed >= generation && missing.is_empty() && not_ready.is_empty() && extra.is_empty();
    if settled && update.is_some() && stale.is_empty() && current == update {
        return RolloutStatus {
            state: RolloutState::Complete,
            reason: None,
        };
    }
    // Visible at once, no timer: the controller will never get past these pods.
    let stuck = rollback_trap(sts, pods);
    if !stuck.is_empty() && observed >= generation {
        return RolloutStatus {
            state: RolloutState::Stalled,
            reason: Some(rollback_trap_message(&stuck)),
        };
    }
    // Past FailedCreate events do not matter once everything is in place.
    if failed_create {
        return RolloutStatus {
            state: RolloutState::Stalled,
            reason: Some("the controller reports FailedCreate events".to_string()),
        };
    }
    if let Some((ordinal, since)) = not_ready
        .iter()
        .filter_map(|(o, p)| Some((*o, not_ready_since(p)?)))
        .find(|(_, since)| now.duration_since(*since) > stall_after)
    {
        let name = by_ordinal
            .get(&ordinal)
            .and_then(|p| p.metadata.name.clone())
            .unwrap_or_default();
        return RolloutStatus {
            state: RolloutState::Stalled,
            reason: Some(format!(
                "pod {name} has not been ready for {}",
                crate::age::human_duration_seconds(now.duration_since(since).as_secs())
            )),
        };
    }

    if settled && update_strategy(sts) == "RollingUpdate" && partition(sts) > 0 {
        // Everything the partition lets through is updated; the rest waits on purpose.
        let pending_above = stale.iter().any(|o| ordinal_gets_update(sts, *o));
        if !pending_above {
            return RolloutStatus {
                state: RolloutState::PausedByPartition,
                reason: Some(format!(
                    "partition {} holds {} pod(s) on the current revision",
                    partition(sts),
                    stale.len()
                )),
            };
        }
    }
    let reason = if observed < generation {
        "the controller has not observed the latest spec yet".to_string()
    } else if !missing.is_empty() {
        format!("{} pod(s) not created yet", missing.len())
    } else if !extra.is_empty() {
        format!(
            "{} pod(s) above the desired ordinals being removed",
            extra.len()
        )
    } else if !not_ready.is_empty() {
        match max_unavailable(sts) {
            Some(max) => format!(
                "{} pod(s) not ready; maxUnavailable {max} lets the controller take down that many at a time",
                not_ready.len()
            ),
            None => format!("{} pod(s) not ready", not_ready.len()),
        }
    } else if update_strategy(sts) == "OnDelete" && !stale.is_empty() {
        format!(
            "OnDelete: {} pod(s) keep the old revision until deleted by hand",
            stale.len()
        )
    } else if !stale.is_empty() {
        format!("{} pod(s) not yet on the update revision", stale.len())
    } else {
        "the controller has not recorded the new current revision yet".to_string()
    };
    RolloutStatus {
        state: RolloutState::Rolling,
        reason: Some(reason),
    }
}

/// How long a FailedCreate event counts as current.
pub const FAILED_CREATE_WINDOW: SignedDuration = SignedDuration::from_secs(15 * 60);

/// How long a FailedCreate must have gone on (since the event was first seen) before it
/// counts as the controller being unable to create a pod. The StatefulSet controller retries a
/// failed create with backoff (stateful_set.go requeues the set), and a refusal that its next
/// attempt overcomes is not a stalled rollout: seen in e2e on 1.20.2, a single "The POST
/// operation against Pod could not be completed at this time, please try again" (a server
/// timeout), the pod created a moment later. [`failed_create_persists`] applies it for
/// [`rollout_status`]; `status` uses the smaller of this and `--stall-after`.
pub const FAILED_CREATE_GRACE: SignedDuration = SignedDuration::from_secs(30);

/// FailedCreate events about `sts` (by namespace, kind and name; UID too when the event has
/// one, so events of a deleted namesake do not count) last seen within `window` before `now`.
pub fn failed_create_events<'a, E: Borrow<Event>>(
    events: &'a [E],
    sts: &StatefulSet,
    now: Timestamp,
    window: SignedDuration,
) -> Vec<&'a Event> {
    let name = sts.metadata.name.as_deref();
    let namespace = sts.metadata.namespace.as_deref();
    let uid = sts.metadata.uid.as_deref();
    events
        .iter()
        .map(Borrow::borrow)
        .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
        .filter(|e| {
            let obj = &e.involved_object;
            obj.kind.as_deref() == Some("StatefulSet")
                && obj.name.as_deref() == name
                && obj.namespace.as_deref().or(e.metadata.namespace.as_deref()) == namespace
                && (obj.uid.is_none() || uid.is_none() || obj.uid.as_deref() == uid)
        })
        .filter(|e| event_last_seen(e).is_some_and(|t| now.duration_since(t) <= window))
        .collect()
}

/// Whether any of `events` (FailedCreate events, [`failed_create_events`]) was first seen at
/// least [`FAILED_CREATE_GRACE`] before `now`: the controller has kept failing to create a pod,
/// and [`rollout_status`] may call the rollout stalled. Younger ones are still shown, as
/// warnings, but may be one refusal that the controller's next attempt overcomes.
pub fn failed_create_persists<E: Borrow<Event>>(events: &[E], now: Timestamp) -> bool {
    events.iter().any(|e| {
        event_first_seen(e.borrow()).is_some_and(|t| now.duration_since(t) >= FAILED_CREATE_GRACE)
    })
}

/// When an event was first seen: firstTimestamp, else eventTime, else creation.
pub fn event_first_seen(event: &Event) -> Option<Timestamp> {
    event_seen(event, event.first_timestamp.as_ref())
}

/// When an event was last seen: lastTimestamp, else eventTime, else creation.
pub fn event_last_seen(event: &Event) -> Option<Timestamp> {
    event_seen(event, event.last_timestamp.as_ref())
}

/// `stamp` (one of the core/v1 Event's legacy timestamps), else the events.k8s.io eventTime,
/// else the creation time.
fn event_seen(event: &Event, stamp: Option<&Time>) -> Option<Timestamp> {
    stamp
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{event, now, pod, pod_for, statefulset};

    fn state(sts: &StatefulSet, pods: &[Pod]) -> RolloutState {
        rollout_status(sts, pods, false, now(), DEFAULT_STALL_AFTER).state
    }

    #[test]
    fn ready_is_counted_from_the_pods_and_a_stale_status_is_told_apart() {
        // The status still says 3 ready; the pods say web-2 is not.
        let sts = statefulset("ns", "web").replicas(3).ready(3, 3).build();
        let pods = vec![
            pod_for(&sts, 0).build(),
            pod_for(&sts, 1).build(),
            pod_for(&sts, 2).ready(false, 5).build(),
        ];
        let count = ready_count(&sts, &pods);
        assert_eq!(count.pods, 2);
        assert_eq!(count.status_disagrees(), Some(3));
        // Agreeing counts: nothing to tell.
        let fresh = statefulset("ns", "web").replicas(3).ready(2, 2).build();
        assert_eq!(ready_count(&fresh, &pods).status_disagrees(), None);
        // Pods of another StatefulSet do not count.
        let other = statefulset("ns", "webx").replicas(1).build();
        let mut more = pods.clone();
        more.push(pod_for(&other, 0).build());
        assert_eq!(ready_count(&sts, &more).pods, 2);
    }

    #[test]
    fn max_unavailable_only_for_rolling_update() {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let mut sts = statefulset("ns", "web").replicas(4).build();
        assert_eq!(max_unavailable(&sts), None);
        let strategy = sts
            .spec
            .as_mut()
            .and_then(|s| s.update_strategy.as_mut())
            .expect("fixture has an update strategy");
        strategy
            .rolling_update
            .get_or_insert_default()
            .max_unavailable = Some(IntOrString::String("50%".into()));
        assert_eq!(max_unavailable(&sts).as_deref(), Some("50%"));
        let strategy = sts.spec.as_mut().and_then(|s| s.update_strategy.as_mut());
        let strategy = strategy.expect("fixture has an update strategy");
        strategy
            .rolling_update
            .get_or_insert_default()
            .max_unavailable = Some(IntOrString::Int(2));
        assert_eq!(max_unavailable(&sts).as_deref(), Some("2"));
        let strategy = sts.spec.as_mut().and_then(|s| s.update_strategy.as_mut());
        strategy.expect("fixture has an update strategy").type_ = Some("OnDelete".into());
        assert_eq!(max_unavailable(&sts), None);
    }

    #[test]
    fn partition_maths_with_ordinals_start() {
        let sts = statefulset("ns", "db")
            .replicas(4)
            .ordinals_start(10)
            .partition(2)
            .build();
        assert_eq!(partition(&sts), 2);
        assert!(!ordinal_gets_update(&sts, 10));
        assert!(!ordinal_gets_update(&sts, 11));
        assert!(ordinal_gets_update(&sts, 12));
        assert!(ordinal_gets_update(&sts, 13));
        assert_eq!(partition_ordinal(&sts), Some(12));
        let none = statefulset("ns", "db").replicas(4).build();
        assert_eq!(partition_ordinal(&none), None);
        assert!(ordinal_gets_update(&none, 0));
    }

    /// Issue 10, kind 2: kubernetes/kubernetes#67250. 3 replicas, OrderedReady; an update
    /// whose pod cannot start (web-2 on web-b, never Ready), then a rollback: current = update
    /// = web-a again, web-2 still on web-b. Stalled at once, naming the pod and the remedy.
    #[test]
    fn the_rollback_trap_is_named_at_once() {
        let sts = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-a")
            .ready(2, 2)
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).revision("web-a").build(),
            pod_for(&sts, 2).revision("web-b").ready(false, 5).build(),
        ];
        let stuck = rollback_trap(&sts, &pods);
        assert_eq!(
            stuck,
            vec![StuckPod {
                pod: "web-2".into(),
                revision: Some("web-b".into())
            }]
        );
        let status = rollout_status(&sts, &pods, false, now(), DEFAULT_STALL_AFTER);
        assert_eq!(status.state, RolloutState::Stalled);
        let reason = status.reason.unwrap();
        assert!(reason.contains("kubectl delete pod web-2"), "{reason}");
        assert!(reason.contains("kubernetes/kubernetes#67250"), "{reason}");

        // Parallel heals by itself; a Ready pod on an old revision is an ordinary rollout; a
        // pod below the partition waits on purpose.
        let parallel = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-a")
            .parallel()
            .build();
        assert!(rollback_trap(&parallel, &pods).is_empty());
        let ready_old = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).revision("web-a").build(),
            pod_for(&sts, 2).revision("web-b").build(),
        ];
        assert!(rollback_trap(&sts, &ready_old).is_empty());
        let partitioned = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-a")
            .partition(3)
            .build();
        assert!(rollback_trap(&partitioned, &pods).is_empty());
        // A pod on the update revision that is not Ready yet is a rollout in progress.
        let starting = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).revision("web-a").build(),
            pod_for(&sts, 2).revision("web-a").ready(false, 5).build(),
        ];
        assert!(rollback_trap(&sts, &starting).is_empty());

        // Before the rollback: web-2 runs the broken update web-b and is not Ready; rolling
        // back to web-a would trap it.
        let updating = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-b")
            .build();
        assert!(rollback_trap(&updating, &pods).is_empty());
        assert_eq!(trap_after_rollback(&updating, &pods, "web-a"), stuck);
        assert!(trap_after_rollback(&updating, &pods, "web-b").is_empty());
    }

    #[test]
    fn on_delete_has_no_partition() {
        let sts = statefulset("ns", "db").partition(3).on_delete().build();
        assert_eq!(update_strategy(&sts), "OnDelete");
        assert_eq!(partition(&sts), 0);
    }

    #[test]
    fn complete_when_all_ready_on_update() {
        let sts = statefulset("ns", "web").replicas(3).build();
        let pods: Vec<Pod> = (0..3).map(|o| pod_for(&sts, o).build()).collect();
        assert_eq!(state(&sts, &pods), RolloutState::Complete);
    }

    #[test]
    fn rolling_when_a_pod_is_missing_or_old() {
        let sts = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-b")
            .ready(3, 1)
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).revision("web-a").build(),
            pod_for(&sts, 2).build(),
        ];
        let status = rollout_status(&sts, &pods, false, now(), DEFAULT_STALL_AFTER);
        assert_eq!(status.state, RolloutState::Rolling);
        assert!(
            status
                .reason
                .unwrap()
                .contains("2 pod(s) not yet on the update revision")
        );
        let two = &pods[..2];
        assert_eq!(state(&sts, two), RolloutState::Rolling);
    }

    #[test]
    fn paused_by_partition() {
        let sts = statefulset("ns", "web")
            .replicas(4)
            .partition(2)
            .revisions("web-a", "web-b")
            .ready(4, 2)
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).revision("web-a").build(),
            pod_for(&sts, 2).build(),
            pod_for(&sts, 3).build(),
        ];
        assert_eq!(state(&sts, &pods), RolloutState::PausedByPartition);
        // An old pod above the partition means the rollout is still moving.
        let mut moving = pods.clone();
        moving[3] = pod_for(&sts, 3).revision("web-a").build();
        assert_eq!(state(&sts, &moving), RolloutState::Rolling);
    }

    #[test]
    fn stalled_by_long_unready_pod_or_failed_create() {
        let sts = statefulset("ns", "web").replicas(2).build();
        let fresh = vec![
            pod_for(&sts, 0).build(),
            pod_for(&sts, 1).ready(false, 60).build(),
        ];
        assert_eq!(state(&sts, &fresh), RolloutState::Rolling);
        let old = vec![
            pod_for(&sts, 0).build(),
            pod_for(&sts, 1).ready(false, 900).build(),
        ];
        let status = rollout_status(&sts, &old, false, now(), DEFAULT_STALL_AFTER);
        assert_eq!(status.state, RolloutState::Stalled);
        assert!(status.reason.unwrap().contains("web-1"));
        let complete = [pod_for(&sts, 0).build(), pod_for(&sts, 1).build()];
        assert_eq!(
            rollout_status(&sts, &complete[..1], true, now(), DEFAULT_STALL_AFTER).state,
            RolloutState::Stalled
        );
    }

    #[test]
    fn old_failed_create_does_not_stall_a_complete_rollout() {
        let sts = statefulset("ns", "web").replicas(1).build();
        let pods = [pod_for(&sts, 0).build()];
        assert_eq!(
            rollout_status(&sts, &pods, true, now(), DEFAULT_STALL_AFTER).state,
            RolloutState::Complete
        );
    }

    #[test]
    fn failed_create_events_are_matched_and_windowed() {
        let sts = statefulset("ns", "web").build();
        let events = vec![
            event("ns", "web", "FailedCreate", "create Pod web-0 failed", 60),
            event("ns", "web", "FailedCreate", "old", 3600),
            event("ns", "web", "SuccessfulCreate", "ok", 60),
            event("ns", "web-a", "FailedCreate", "other sts", 60),
            event("other", "web", "FailedCreate", "other namespace", 60),
        ];
        let found = failed_create_events(&events, &sts, now(), FAILED_CREATE_WINDOW);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message.as_deref(), Some("create Pod web-0 failed"));
        // An event about a deleted namesake (different UID) does not count.
        let recreated = statefulset("ns", "web").uid("new").build();
        assert!(failed_create_events(&events, &recreated, now(), FAILED_CREATE_WINDOW).is_empty());
    }

    #[test]
    fn a_failed_create_first_seen_moments_ago_is_shown_but_does_not_stall_yet() {
        let sts = statefulset("ns", "web").replicas(1).build();
        let mut once = event("ns", "web", "FailedCreate", "create Pod web-0 failed", 5);
        once.first_timestamp = once.last_timestamp.clone();
        let events = vec![once];
        let found = failed_create_events(&events, &sts, now(), FAILED_CREATE_WINDOW);
        assert_eq!(found.len(), 1);
        assert!(!failed_create_persists(&found, now()));
        let status = rollout_status::<Pod>(&sts, &[], false, now(), DEFAULT_STALL_AFTER);
        assert_eq!(status.state, RolloutState::Rolling);
        let later = now() + FAILED_CREATE_GRACE;
        assert!(failed_create_persists(&found, later));
        // The fixture's events span a minute: a failure that has gone on.
        let repeated = event("ns", "web", "FailedCreate", "create Pod web-0 failed", 5);
        assert!(failed_create_persists(&[repeated], now()));
    }

    #[test]
    fn unobserved_generation_is_rolling() {
        let mut sts = statefulset("ns", "web").replicas(1).build();
        sts.metadata.generation = Some(2);
        let pods = vec![pod_for(&sts, 0).build()];
        assert_eq!(state(&sts, &pods), RolloutState::Rolling);
    }

    #[test]
    fn pods_by_ordinal_ignores_lookalikes() {
        let sts = statefulset("ns", "web").replicas(2).build();
        let other = statefulset("ns", "web-a").replicas(1).build();
        let pods = vec![
            pod_for(&sts, 0).build(),
            pod_for(&other, 0).build(),       // web-a-0
            pod("other-ns", "web-1").build(), // other namespace
            pod("ns", "web-1").build(),       // no owner: counts (orphan-cascade leftovers)
        ];
        let map = pods_by_ordinal(&sts, &pods);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(map[&1].metadata.namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn zero_replicas_complete_when_no_pods() {
        let sts = statefulset("ns", "web").replicas(0).build();
        assert_eq!(state(&sts, &[]), RolloutState::Complete);
        let leftover = vec![pod_for(&sts, 0).build()];
        assert_eq!(state(&sts, &leftover), RolloutState::Rolling);
    }
}
