//! The rollout progress of one StatefulSet, ordinal by ordinal: what `kubectl sts status`
//! reports, and waits for with `--watch`.
//!
//! When a rollout is done, by strategy (the controller's rules are in
//! pkg/controller/statefulset/stateful_set_control.go `updateStatefulSet` and
//! stateful_set_utils.go `completeUpdate`; kubectl's own reading, which this improves on, is
//! `StatefulSetStatusViewer` in staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go):
//!
//! - every strategy: the controller has observed the latest generation, every ordinal of
//!   `ordinals.start .. start + replicas` has a pod that is not terminating and is *available*
//!   (Ready for at least `minReadySeconds`, pkg/api/v1/pod `IsPodAvailable`), and no pod above
//!   the range is left (a scale-down in progress);
//! - `RollingUpdate`: every pod runs the update revision and `status.currentRevision` has become
//!   the update revision ([`Phase::Complete`]); with a partition, done already when every
//!   ordinal at or above `start + partition` runs the update revision: those below wait on
//!   purpose ([`Phase::PartitionComplete`]);
//! - `OnDelete`: the controller replaces no pod; pods left on the old revision change only when
//!   someone deletes them ([`Phase::WaitingForDeletion`] lists them);
//! - `Recreate` (alpha in 1.37, feature gate `StatefulSetRecreateStrategy`): the controller
//!   deletes every old-revision pod and waits until all have terminated before it creates the
//!   new ones; done as for `RollingUpdate` without partition.
//!
//! And when it will not get done without help ([`Phase::Stuck`]): the rollback trap
//! ([`crate::rollout::rollback_trap`]), a pod not Ready for longer than the stall threshold,
//! or the controller reporting `FailedCreate` (it cannot create a pod) or `UnknownStrategy`
//! (Recreate with the controller's feature gate off).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use serde::{Deserialize, Serialize};

use crate::age::human_duration_seconds;
use crate::naming::{ordinal_range, ordinals_start, pod_name};
use crate::objects::pod_revision;
use crate::rollout::{
    FAILED_CREATE_GRACE, event_first_seen, event_last_seen, max_unavailable, not_ready_since,
    ordinal_gets_update, partition, pod_is_ready, pods_by_ordinal, ready_since, rollback_trap,
    rollback_trap_message, update_strategy,
};

/// How long a controller warning (`FailedCreate`, `UnknownStrategy`) counts as current. The
/// controller retries a failing create with backoff and re-reports it (the event's count and
/// lastTimestamp move), so a failure that goes on stays inside this window and one that was
/// resolved drops out of it.
pub const CONTROLLER_WARNING_WINDOW: SignedDuration = SignedDuration::from_secs(120);

/// The event reasons that mean the controller cannot go on: it could not create a pod
/// (stateful_pod_control.go `FailedCreate`), or it does not know the update strategy
/// (stateful_set_control.go `UnknownStrategy`, Recreate with the feature gate off).
pub const CONTROLLER_WARNING_REASONS: [&str; 2] = ["FailedCreate", "UnknownStrategy"];

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Every pod available and on the update revision, which is now the current revision.
    Complete,
    /// Every ordinal at or above the partition is updated and available; the ones below wait
    /// for the partition to be lowered. Done, as far as this step of a staged rollout goes.
    PartitionComplete,
    /// The controller is creating, replacing or removing pods, or has not caught up yet.
    Progressing,
    /// OnDelete: pods stay on an old revision until someone deletes them.
    WaitingForDeletion,
    /// It will not finish without help (see the module docs).
    Stuck,
}

impl Phase {
    /// Whether the rollout is done ([`Phase::Complete`] or [`Phase::PartitionComplete`]).
    pub fn is_done(self) -> bool {
        matches!(self, Phase::Complete | Phase::PartitionComplete)
    }

    /// Words for text output.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Complete => "complete",
            Phase::PartitionComplete => "partition complete",
            Phase::Progressing => "progressing",
            Phase::WaitingForDeletion => "waiting for deletion",
            Phase::Stuck => "stuck",
        }
    }
}

/// One ordinal: the pod the StatefulSet wants there (possibly missing), or a pod above the
/// desired range that is being removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdinalProgress {
    pub ordinal: i32,
    /// `<sts>-<ordinal>`.
    pub pod: String,
    /// False when the ordinal has no pod (yet).
    pub exists: bool,
    /// False for a pod above the desired ordinals (a scale-down removes it).
    pub desired: bool,
    /// The pod's `controller-revision-hash` label.
    pub revision: Option<String>,
    pub on_update_revision: bool,
    /// Whether the strategy will move this ordinal to the update revision: RollingUpdate at or
    /// above the partition, Recreate always, OnDelete once the pod is deleted.
    pub gets_update: bool,
    /// Ready condition True.
    pub ready: bool,
    /// Ready for at least `minReadySeconds`.
    pub available: bool,
    /// Ready but not yet available: the instant it becomes available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
    /// Has a deletionTimestamp.
    pub terminating: bool,
}

/// Counts over the desired ordinals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pods that the strategy moves to the update revision now (replicas − partition for
    /// RollingUpdate, else replicas).
    pub to_update: i32,
    /// Pods on the update revision.
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

/// The whole answer of [`rollout_progress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: Phase,
    /// Shorthand for `phase.is_done()`.
    pub done: bool,
    /// One sentence: what the rollout waits for, or why it is done or stuck.
    pub message: String,
    /// `spec.updateStrategy.type`.
    pub strategy: String,
    /// RollingUpdate partition (0 otherwise).
    pub partition: i32,
    /// RollingUpdate `maxUnavailable` as written, when set.
    pub max_unavailable: Option<String>,
    /// `spec.minReadySeconds` (0 when absent).
    pub min_ready_seconds: i32,
    pub ordinals_start: i32,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    /// `status.observedGeneration` ≥ `metadata.generation`.
    pub observed: bool,
    pub counts: Counts,
    /// Desired ordinals in order, then pods above them.
    pub ordinals: Vec<OrdinalProgress>,
    /// Pods left on an old revision that only a deletion moves on (OnDelete; the rollback trap).
    pub delete_to_update: Vec<String>,
    /// The earliest instant at which the answer changes with no change in the cluster (a pod
    /// becoming available, or the stall threshold passing); a watcher re-evaluates then.
    #[serde(skip)]
    pub next_change: Option<Timestamp>,
}

/// The rollout progress of `sts` given its pods (any pods; they are matched with
/// [`pods_by_ordinal`]), the events about it, and the time now. `stall_after` is how long a
/// pod may stay not Ready before the rollout counts as stuck; pods caught in the rollback trap
/// count as stuck after `min(stall_after, 30s)`, since a pod on the old revision may be briefly
/// not Ready during a normal rollout.
pub fn rollout_progress(
    sts: &StatefulSet,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
    stall_after: SignedDuration,
) -> Progress {
    let name = sts.metadata.name.as_deref().unwrap_or_default();
    let strategy = update_strategy(sts).to_string();
    let status = sts.status.as_ref();
    let current = status.and_then(|s| s.current_revision.clone());
    let update = status.and_then(|s| s.update_revision.clone());
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0)
        >= sts.metadata.generation.unwrap_or(0);
    let min_ready = sts
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
        .max(0);
    let by_ordinal = pods_by_ordinal(sts, pods);
    let range = ordinal_range(sts);

    let row = |ordinal: i32, pod: Option<&Pod>| {
        let revision = pod.and_then(pod_revision).map(str::to_string);
        let ready = pod.is_some_and(pod_is_ready);
        let ready_since = pod.and_then(ready_since);
        let available_at = ready_since.map(|t| t + SignedDuration::from_secs(i64::from(min_ready)));
        let available = ready && available_at.is_none_or(|at| at <= now);
        OrdinalProgress {
            ordinal,
            pod: pod
                .and_then(|p| p.metadata.name.clone())
                .unwrap_or_else(|| pod_name(name, ordinal)),
            exists: pod.is_some(),
            desired: range.contains(&ordinal),
            on_update_revision: revision.is_some() && revision == update,
            revision,
            gets_update: range.contains(&ordinal)
                && (strategy != "RollingUpdate" || ordinal_gets_update(sts, ordinal)),
            ready,
            available,
            available_at: (ready && !available).then_some(available_at).flatten(),
            terminating: pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
        }
    };
    let mut ordinals: Vec<OrdinalProgress> = range
        .clone()
        .map(|o| row(o, by_ordinal.get(&o).copied()))
        .collect();
    ordinals.extend(
        by_ordinal
            .iter()
            .filter(|(o, _)| !range.contains(o))
            .map(|(o, p)| row(*o, Some(p))),
    );
    let desired = || ordinals.iter().filter(|o| o.desired);
    let count = |f: fn(&OrdinalProgress) -> bool| {
        i32::try_from(desired().filter(|o| f(o)).count()).unwrap_or(i32::MAX)
    };
    let counts = Counts {
        replicas: i32::try_from(range.len()).unwrap_or(i32::MAX),
        to_update: count(|o| o.gets_update),
        updated: count(|o| o.exists && o.on_update_revision),
        ready: count(|o| o.exists && o.ready),
        available: count(|o| o.exists && o.available),
    };

    let mut progress = Progress {
        phase: Phase::Progressing,
        done: false,
        message: String::new(),
        partition: partition(sts),
        max_unavailable: max_unavailable(sts),
        min_ready_seconds: min_ready,
        ordinals_start: ordinals_start(sts),
        strategy,
        current_revision: current,
        update_revision: update,
        observed,
        counts,
        delete_to_update: Vec::new(),
        next_change: None,
        ordinals: Vec::new(),
    };
    progress.ordinals = ordinals;
    let (phase, message) = decide(&mut progress, sts, pods, events, now, stall_after);
    progress.phase = phase;
    progress.done = phase.is_done();
    progress.message = message;
    progress
}

/// The phase and its sentence; also fills `delete_to_update` and `next_change`.
fn decide(
    p: &mut Progress,
    sts: &StatefulSet,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
    stall_after: SignedDuration,
) -> (Phase, String) {
    let Some(update) = p.update_revision.clone() else {
        return (
            Phase::Progressing,
            "waiting for the controller to record an update revision".to_string(),
        );
    };
    if !p.observed {
        return (
            Phase::Progressing,
            format!(
                "waiting for the controller to observe generation {}",
                sts.metadata.generation.unwrap_or(0)
            ),
        );
    }
    if let Some(stuck) = stuck(p, sts, pods, events, now, stall_after) {
        return (Phase::Stuck, stuck);
    }

    let desired: Vec<&OrdinalProgress> = p.ordinals.iter().filter(|o| o.desired).collect();
    let names = |f: &dyn Fn(&OrdinalProgress) -> bool| -> Vec<String> {
        desired
            .iter()
            .filter(|o| f(o))
            .map(|o| o.pod.clone())
            .collect()
    };
    let extra: Vec<String> = p
        .ordinals
        .iter()
        .filter(|o| !o.desired)
        .map(|o| o.pod.clone())
        .collect();
    let missing = names(&|o| !o.exists);
    let terminating = names(&|o| o.exists && o.terminating);
    let not_ready = names(&|o| o.exists && !o.terminating && !o.ready);
    let not_available: Vec<&OrdinalProgress> = desired
        .iter()
        .copied()
        .filter(|o| o.exists && o.ready && !o.available)
        .collect();
    let stale = names(&|o| o.exists && !o.on_update_revision);
    let pending = names(&|o| o.exists && o.gets_update && !o.on_update_revision);
    let settled = extra.is_empty()
        && missing.is_empty()
        && terminating.is_empty()
        && not_ready.is_empty()
        && not_available.is_empty();
    p.next_change = not_available
        .iter()
        .filter_map(|o| o.available_at)
        .chain(p.next_change)
        .min();
    let c = p.counts;

    if settled && stale.is_empty() {
        // With OnDelete, older controllers never advance currentRevision (1.20's
        // `completeRollingUpdate` acts for RollingUpdate only; 1.37's `completeUpdate` for
        // every strategy): every pod updated and available is all there is to wait for.
        if p.current_revision.as_deref() == Some(update.as_str()) || p.strategy == "OnDelete" {
            return (
                Phase::Complete,
                format!(
                    "rollout complete: {} pod(s) on revision {update}",
                    c.replicas
                ),
            );
        }
        return (
            Phase::Progressing,
            "every pod is updated; waiting for the controller to make the update revision current"
                .to_string(),
        );
    }
    if settled && p.strategy == "RollingUpdate" && p.partition > 0 && pending.is_empty() {
        return (
            Phase::PartitionComplete,
            format!(
                "partitioned rollout complete: {} pod(s) at or above ordinal {} on revision {update}; {} below stay on {} until the partition is lowered",
                c.updated,
                p.ordinals_start.saturating_add(p.partition),
                stale.len(),
                p.current_revision
                    .as_deref()
                    .unwrap_or("the current revision"),
            ),
        );
    }
    if p.strategy == "OnDelete" && !stale.is_empty() {
        p.delete_to_update.clone_from(&stale);
        if settled {
            return (
                Phase::WaitingForDeletion,
                format!(
                    "OnDelete: pod(s) {} stay on their revision until deleted (kubectl delete pod {}); the controller re-creates them on {update}",
                    stale.join(", "),
                    stale.join(" ")
                ),
            );
        }
    }

    let message = if !extra.is_empty() {
        format!(
            "scaling down: waiting for pod(s) {} above the desired ordinals to be removed",
            extra.join(", ")
        )
    } else if p.strategy == "Recreate" && !stale.is_empty() {
        format!(
            "Recreate: deleting every old-revision pod first ({} left); the new ones are created once all have terminated",
            stale.join(", ")
        )
    } else if let Some(pod) = terminating.first() {
        format!("waiting for pod {pod} to terminate")
    } else if let Some(pod) = missing.first() {
        format!("waiting for pod {pod} to be created")
    } else if !not_ready.is_empty() {
        let also = match &p.max_unavailable {
            Some(max) => format!(" (maxUnavailable {max})"),
            None => String::new(),
        };
        format!(
            "waiting for pod(s) {} to be ready{also}",
            not_ready.join(", ")
        )
    } else if let Some(o) = not_available.first() {
        // When: `availableAt` and the table's NOTE; the sentence stays the same while the pod
        // waits, so `--watch` prints it once.
        format!(
            "waiting for pod {} to be available (Ready for minReadySeconds {})",
            o.pod, p.min_ready_seconds
        )
    } else if !pending.is_empty() {
        format!(
            "waiting for the controller to update pod(s) {} ({} of {} updated)",
            pending.join(", "),
            c.updated,
            c.to_update
        )
    } else {
        "waiting for the controller".to_string()
    };
    (Phase::Progressing, message)
}

/// Why the rollout will not finish without help, if it will not; sets `next_change` to when
/// a not-ready pod crosses the stall threshold.
fn stuck(
    p: &mut Progress,
    sts: &StatefulSet,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
    stall_after: SignedDuration,
) -> Option<String> {
    let by_ordinal = pods_by_ordinal(sts, pods);
    let not_ready_for = |pod: &str| -> Option<(Timestamp, SignedDuration)> {
        let o = p.ordinals.iter().find(|o| o.pod == pod)?;
        let since = not_ready_since(by_ordinal.get(&o.ordinal)?)?;
        Some((since, now.duration_since(since)))
    };
    let mut next: Vec<Timestamp> = Vec::new();

    let trap_grace = stall_after.min(SignedDuration::from_secs(30));
    let trapped = rollback_trap(sts, pods);
    let held: Vec<_> = trapped
        .iter()
        .filter(|s| match not_ready_for(&s.pod) {
            Some((_, for_)) if for_ >= trap_grace => true,
            Some((since, _)) => {
                next.push(since + trap_grace);
                false
            }
            None => false,
        })
        .cloned()
        .collect();
    if !held.is_empty() {
        p.delete_to_update = held.iter().map(|s| s.pod.clone()).collect();
        return Some(rollback_trap_message(&held));
    }

    // Newest first. A FailedCreate counts only while a pod is missing, and only once it has
    // gone on for the grace: the controller retries, and one refusal that its next attempt
    // overcomes (the API server's "please try again" timeout) is no stuck rollout.
    let missing = p.ordinals.iter().any(|o| o.desired && !o.exists);
    let grace = stall_after.min(FAILED_CREATE_GRACE);
    for event in controller_warnings(events, sts, now).iter().rev() {
        if event.reason.as_deref() == Some("FailedCreate") {
            if !missing {
                continue;
            }
            if let Some(first) = event_first_seen(event)
                && now.duration_since(first) < grace
            {
                next.push(first + grace);
                continue;
            }
        }
        return Some(format!(
            "the controller reports {}: {}",
            event.reason.as_deref().unwrap_or_default(),
            event.message.as_deref().unwrap_or_default()
        ));
    }

    let mut stalled = None;
    for o in p
        .ordinals
        .iter()
        .filter(|o| o.desired && o.exists && !o.ready)
    {
        let Some((since, for_)) = not_ready_for(&o.pod) else {
            continue;
        };
        if for_ > stall_after {
            let pod = by_ordinal.get(&o.ordinal).copied();
            let why = pod
                .and_then(waiting_reason)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let which = if o.on_update_revision {
                "the update revision"
            } else {
                "an old revision"
            };
            stalled = Some(format!(
                "pod {} on {which} has not been ready for {}{why}",
                o.pod,
                human_duration_seconds(for_.as_secs())
            ));
            break;
        }
        next.push(since + stall_after);
    }
    p.next_change = next.into_iter().min();
    stalled
}

/// The controller warnings about `sts` ([`CONTROLLER_WARNING_REASONS`]) last seen within
/// [`CONTROLLER_WARNING_WINDOW`] before `now`, oldest first. Matched by namespace, kind and
/// name, and by UID when the event has one (events of a deleted namesake do not count).
pub fn controller_warnings<'a>(
    events: &'a [Event],
    sts: &StatefulSet,
    now: Timestamp,
) -> Vec<&'a Event> {
    let uid = sts.metadata.uid.as_deref();
    let mut found: Vec<(&Event, Timestamp)> = events
        .iter()
        .filter(|e| {
            e.reason
                .as_deref()
                .is_some_and(|r| CONTROLLER_WARNING_REASONS.contains(&r))
        })
        .filter(|e| {
            let obj = &e.involved_object;
            obj.kind.as_deref() == Some("StatefulSet")
                && obj.name.as_deref() == sts.metadata.name.as_deref()
                && obj.namespace.as_deref().or(e.metadata.namespace.as_deref())
                    == sts.metadata.namespace.as_deref()
                && (obj.uid.is_none() || uid.is_none() || obj.uid.as_deref() == uid)
        })
        .filter_map(|e| Some((e, event_last_seen(e)?)))
        .filter(|(_, seen)| now.duration_since(*seen) <= CONTROLLER_WARNING_WINDOW)
        .collect();
    found.sort_by_key(|(_, seen)| *seen);
    found.into_iter().map(|(e, _)| e).collect()
}

/// Why a container of the pod is waiting (`CrashLoopBackOff`, `ImagePullBackOff`, …), or
/// why the pod is not scheduled, when the pod says.
fn waiting_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    waiting.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .and_then(|c| c.reason.clone())
    })
}

/// A one-line summary for `--watch`: `<name> <phase>: 2/3 updated, 3/3 ready, 2/3 available: <message>`.
pub fn progress_line(name: &str, p: &Progress) -> String {
    let c = p.counts;
    format!(
        "{name} {}: {}/{} updated, {}/{} ready, {}/{} available: {}",
        p.phase.label(),
        c.updated,
        c.to_update,
        c.ready,
        c.replicas,
        c.available,
        c.replicas,
        p.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{event, now, pod_for, statefulset};

    const STALL: SignedDuration = SignedDuration::from_secs(300);

    fn progress(sts: &StatefulSet, pods: &[Pod]) -> Progress {
        rollout_progress(sts, pods, &[], now(), STALL)
    }

    #[test]
    fn a_finished_rollout_is_complete() {
        let sts = statefulset("ns", "web").replicas(3).build();
        let pods: Vec<Pod> = (0..3).map(|o| pod_for(&sts, o).build()).collect();
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Complete, "{}", p.message);
        assert!(p.done);
        assert_eq!(p.counts.updated, 3);
        assert_eq!(p.counts.available, 3);
        assert_eq!(p.message, "rollout complete: 3 pod(s) on revision web-rev1");
    }

    #[test]
    fn a_partitioned_rollout_is_done_when_every_ordinal_at_or_above_the_partition_is_updated() {
        let sts = statefulset("ns", "web")
            .replicas(4)
            .ordinals_start(10)
            .partition(2)
            .revisions("web-a", "web-b")
            .build();
        let mut pods = vec![
            pod_for(&sts, 10).revision("web-a").build(),
            pod_for(&sts, 11).revision("web-a").build(),
            pod_for(&sts, 12).build(),
            pod_for(&sts, 13).build(),
        ];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::PartitionComplete, "{}", p.message);
        assert_eq!(p.counts.to_update, 2);
        assert!(
            p.message.contains("at or above ordinal 12"),
            "{}",
            p.message
        );
        assert!(!p.ordinals[0].gets_update && p.ordinals[2].gets_update);
        // db-12 still on the old revision: not done, the controller is on it.
        pods[2] = pod_for(&sts, 12).revision("web-a").build();
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert!(p.message.contains("update pod(s) web-12"), "{}", p.message);
        // An updated pod not Ready: not done either.
        pods[2] = pod_for(&sts, 12).ready(false, 5).build();
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert!(p.message.contains("web-12 to be ready"), "{}", p.message);
    }

    #[test]
    fn on_delete_lists_the_pods_left_on_the_old_revision() {
        let sts = statefulset("ns", "db")
            .replicas(3)
            .on_delete()
            .revisions("db-a", "db-b")
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("db-a").build(),
            pod_for(&sts, 1).revision("db-a").build(),
            pod_for(&sts, 2).build(),
        ];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::WaitingForDeletion, "{}", p.message);
        assert!(!p.done);
        assert_eq!(p.delete_to_update, ["db-0", "db-1"]);
        assert!(
            p.message.contains("kubectl delete pod db-0 db-1"),
            "{}",
            p.message
        );
        // Every pod replaced: done, even where the controller (1.20) never moves
        // currentRevision on for OnDelete.
        let pods: Vec<Pod> = (0..3).map(|o| pod_for(&sts, o).build()).collect();
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Complete, "{}", p.message);
        assert_eq!(p.message, "rollout complete: 3 pod(s) on revision db-b");
    }

    #[test]
    fn min_ready_seconds_holds_availability_and_says_when_it_changes() {
        let mut sts = statefulset("ns", "web").replicas(2).build();
        sts.spec.as_mut().unwrap().min_ready_seconds = Some(60);
        let pods = vec![
            pod_for(&sts, 0).build(),
            // Ready 20 s ago: available in 40 s.
            pod_for(&sts, 1).ready(true, 20).build(),
        ];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert_eq!(p.counts.ready, 2);
        assert_eq!(p.counts.available, 1);
        assert!(p.message.contains("web-1 to be available"), "{}", p.message);
        assert!(
            p.message.ends_with("(Ready for minReadySeconds 60)"),
            "{}",
            p.message
        );
        assert_eq!(
            p.ordinals[1].available_at,
            Some(now() + SignedDuration::from_secs(40))
        );
        assert_eq!(p.next_change, Some(now() + SignedDuration::from_secs(40)));
        let later = rollout_progress(
            &sts,
            &pods,
            &[],
            now() + SignedDuration::from_secs(41),
            STALL,
        );
        assert_eq!(later.phase, Phase::Complete);
    }

    #[test]
    fn a_pod_not_ready_on_the_update_revision_is_stuck_after_the_threshold() {
        let sts = statefulset("ns", "web")
            .replicas(2)
            .revisions("web-a", "web-b")
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).ready(false, 100).build(),
        ];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert_eq!(p.next_change, Some(now() + SignedDuration::from_secs(200)));
        let p = rollout_progress(&sts, &pods, &[], now(), SignedDuration::from_secs(60));
        assert_eq!(p.phase, Phase::Stuck);
        assert_eq!(
            p.message,
            "pod web-1 on the update revision has not been ready for 100s"
        );
    }

    #[test]
    fn the_rollback_trap_is_stuck_after_a_short_grace() {
        let sts = statefulset("ns", "web")
            .replicas(3)
            .revisions("web-a", "web-a")
            .build();
        let mut pods = vec![
            pod_for(&sts, 0).build(),
            pod_for(&sts, 1).build(),
            pod_for(&sts, 2).revision("web-b").ready(false, 5).build(),
        ];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing, "5 s is within the grace");
        pods[2] = pod_for(&sts, 2).revision("web-b").ready(false, 31).build();
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Stuck);
        assert_eq!(p.delete_to_update, ["web-2"]);
        assert!(
            p.message.contains("kubectl delete pod web-2"),
            "{}",
            p.message
        );
    }

    #[test]
    fn recreate_waits_for_every_old_pod_to_go() {
        let mut sts = statefulset("ns", "web")
            .replicas(2)
            .revisions("web-a", "web-b")
            .build();
        sts.spec
            .as_mut()
            .unwrap()
            .update_strategy
            .as_mut()
            .unwrap()
            .type_ = Some("Recreate".into());
        let pods = vec![pod_for(&sts, 0).revision("web-a").terminating().build()];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert!(p.message.starts_with("Recreate: deleting"), "{}", p.message);
        assert_eq!(p.counts.to_update, 2);
        // The controller's warning when its feature gate is off: stuck.
        let warning = event(
            "ns",
            "web",
            "UnknownStrategy",
            "statefulset ns/web uses Recreate strategy but feature gate StatefulSetRecreateStrategy is disabled",
            10,
        );
        let p = rollout_progress(&sts, &pods, &[warning], now(), STALL);
        assert_eq!(p.phase, Phase::Stuck);
        assert!(p.message.contains("UnknownStrategy"), "{}", p.message);
    }

    #[test]
    fn failed_create_counts_only_while_a_pod_is_missing_and_recently() {
        let sts = statefulset("ns", "web").replicas(2).build();
        let pods = vec![pod_for(&sts, 0).build()];
        let recent = event("ns", "web", "FailedCreate", "create Pod web-1 failed", 30);
        let p = rollout_progress(&sts, &pods, std::slice::from_ref(&recent), now(), STALL);
        assert_eq!(p.phase, Phase::Stuck);
        let old = event("ns", "web", "FailedCreate", "create Pod web-1 failed", 600);
        let p = rollout_progress(&sts, &pods, &[old], now(), STALL);
        assert_eq!(p.phase, Phase::Progressing);
        // Every pod there: the failure was resolved.
        let all = vec![pod_for(&sts, 0).build(), pod_for(&sts, 1).build()];
        let p = rollout_progress(&sts, &all, &[recent], now(), STALL);
        assert_eq!(p.phase, Phase::Complete);
    }

    /// Seen in e2e on 1.20.2: `status -w` ended Stuck on one FailedCreate (the API server's
    /// server timeout), which the controller's next attempt overcame.
    #[test]
    fn a_single_failed_create_counts_only_once_it_has_gone_on_for_the_grace() {
        let sts = statefulset("ns", "stuck").replicas(3).build();
        let pods = vec![pod_for(&sts, 0).build(), pod_for(&sts, 1).build()];
        let mut once = event(
            "ns",
            "stuck",
            "FailedCreate",
            "create Pod stuck-2 in StatefulSet stuck failed error: The POST operation against Pod could not be completed at this time, please try again.",
            2,
        );
        once.count = Some(1);
        once.first_timestamp = once.last_timestamp.clone();
        let first = once.first_timestamp.clone().map(|t| t.0);
        let p = rollout_progress(&sts, &pods, std::slice::from_ref(&once), now(), STALL);
        assert_eq!(p.phase, Phase::Progressing, "{}", p.message);
        assert!(p.message.contains("stuck-2 to be created"), "{}", p.message);
        // -w looks again when the grace ends.
        let grace = STALL.min(FAILED_CREATE_GRACE);
        assert_eq!(p.next_change, first.map(|t| t + grace));
        // Still no pod when the grace has passed: the controller cannot create it.
        let later = now() + grace;
        let p = rollout_progress(&sts, &pods, &[once], later, STALL);
        assert_eq!(p.phase, Phase::Stuck);
        assert!(p.message.contains("please try again"), "{}", p.message);
    }

    #[test]
    fn scale_down_and_lagging_controller_are_progressing() {
        let sts = statefulset("ns", "web").replicas(1).build();
        let pods = vec![pod_for(&sts, 0).build(), pod_for(&sts, 1).build()];
        let p = progress(&sts, &pods);
        assert_eq!(p.phase, Phase::Progressing);
        assert!(p.message.contains("web-1 above"), "{}", p.message);
        assert!(!p.ordinals[1].desired);
        let mut sts = statefulset("ns", "web").replicas(1).build();
        sts.metadata.generation = Some(2);
        let p = progress(&sts, &[pod_for(&sts, 0).build()]);
        assert_eq!(
            p.message,
            "waiting for the controller to observe generation 2"
        );
    }

    #[test]
    fn the_progress_line_is_compact() {
        let sts = statefulset("ns", "web")
            .replicas(2)
            .revisions("web-a", "web-b")
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).build(),
        ];
        assert_eq!(
            progress_line("web", &progress(&sts, &pods)),
            "web progressing: 1/2 updated, 2/2 ready, 2/2 available: waiting for the controller to update pod(s) web-0 (1 of 2 updated)"
        );
    }
}
