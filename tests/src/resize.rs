//! Volume expansion as the simulated node does it: the decisions (what to do for a claim given
//! its spec, status, PV and annotation) and the PVC status each step writes, as pure functions.
//! `node.rs` does the I/O.
//!
//! The steps and their status follow the CSI external-resizer and kubelet
//! (kubernetes-csi/external-resizer `pkg/controller/resize_status.go`, kubernetes
//! `pkg/volume/util/resize_util.go`):
//!
//! 1. controller starts: condition `Resizing` (True); where the server keeps them (1.34+, or
//!    earlier with `RecoverVolumeExpansionFailure`), `status.allocatedResources.storage` = the
//!    new size and `status.allocatedResourceStatuses.storage` = `ControllerResizeInProgress`;
//! 2. the PV's `spec.capacity.storage` is grown;
//! 3. online: `status.capacity.storage` = the new size, the resize conditions removed and
//!    `allocatedResourceStatuses.storage` removed. Offline: `FileSystemResizePending` (True,
//!    kubelet's message) replaces `Resizing`, `allocatedResourceStatuses.storage` =
//!    `NodeResizePending`, until a pod mounting the claim is started on the node; then step 3.
//!
//! A failing driver leaves capacity and PV alone, keeps `Resizing`, adds `ControllerResizeError`
//! (True, "failed to expand pvc with …") where the server has `allocatedResourceStatuses` (the
//! status stays `ControllerResizeInProgress`, as the resizer does for a final, not infeasible,
//! error), and records a Warning Event `VolumeResizeFailed`.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;
use serde_json::{Value, json};
use sts_model::quantity::quantity_bytes;

/// Annotation on a PVC that picks how the simulated driver expands it: `fail`, `offline`, or
/// anything else / absent for an online expansion.
pub const RESIZE_ANNOTATION: &str = "sts.dev/sim-resize";
/// Annotation a dynamic provisioner puts on its PVs.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The resizer (and provisioner) name, as a CSI driver name would be.
pub const RESIZER: &str = "sts.dev/sim-node";

pub const RESIZING: &str = "Resizing";
pub const FS_RESIZE_PENDING: &str = "FileSystemResizePending";
pub const CONTROLLER_RESIZE_ERROR: &str = "ControllerResizeError";
pub const NODE_RESIZE_ERROR: &str = "NodeResizeError";
/// kubelet's message (`MarkForFSResize`).
pub const FS_RESIZE_PENDING_MESSAGE: &str =
    "Waiting for user to (re-)start a pod to finish file system resize of volume on node.";
/// Reason of the Warning Event for a failed expansion.
pub const RESIZE_FAILED_REASON: &str = "VolumeResizeFailed";

/// Conditions the resize steps own; every other condition is kept as it is.
const RESIZE_CONDITIONS: [&str; 4] = [
    RESIZING,
    FS_RESIZE_PENDING,
    CONTROLLER_RESIZE_ERROR,
    NODE_RESIZE_ERROR,
];

/// How the simulated driver expands a claim (annotation [`RESIZE_ANNOTATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Controller and file system expansion while in use: the claim completes at once.
    Online,
    /// The controller part succeeds; the file system waits for a pod to be (re)started.
    Offline,
    /// The driver's ControllerExpandVolume fails.
    Fail,
}

impl Mode {
    pub fn of(pvc: &PersistentVolumeClaim) -> Self {
        match pvc.annotations().get(RESIZE_ANNOTATION).map(String::as_str) {
            Some("fail") => Mode::Fail,
            Some("offline") => Mode::Offline,
            _ => Mode::Online,
        }
    }
}

/// What the resizer does for a claim now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: not ours, not bound, not asked to grow, or already reported as failed.
    Nothing,
    /// Expand to `to` (the claim's request, as the user wrote it).
    Expand { to: String, mode: Mode },
    /// The controller part is done; a pod start on the node finishes it.
    AwaitNode,
}

/// The error a failing simulated driver returns (a CSI `Internal` error: final, not infeasible).
pub fn driver_error(pv_name: &str) -> String {
    format!(
        "rpc error: code = Internal desc = simulated ControllerExpandVolume failure for volume {pv_name} ({RESIZE_ANNOTATION}: fail)"
    )
}

/// The Event message, as external-resizer words it.
pub fn failed_event_message(pv_name: &str) -> String {
    format!(
        "resize volume \"{pv_name}\" by resizer \"{RESIZER}\" failed: {}",
        driver_error(pv_name)
    )
}

/// The `ControllerResizeError` condition's message.
pub fn failed_condition_message(pv_name: &str) -> String {
    format!(
        "failed to expand pvc with {}",
        failed_event_message(pv_name)
    )
}

fn requested(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

fn status_capacity(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.status
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// The PV's `spec.capacity.storage`.
pub fn pv_capacity(pv: &PersistentVolume) -> Option<String> {
    pv.spec
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

fn bytes(q: Option<&str>) -> Option<u128> {
    q.and_then(quantity_bytes)
}

/// Whether the claim has condition `ty` with status True.
pub fn has_condition(pvc: &PersistentVolumeClaim, ty: &str) -> bool {
    pvc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

/// Whether the server keeps `allocatedResourceStatuses` (it drops fields it does not know).
pub fn server_keeps_allocated(pvc: &PersistentVolumeClaim) -> bool {
    pvc.status
        .as_ref()
        .is_some_and(|s| s.allocated_resources.is_some() || s.allocated_resource_statuses.is_some())
}

/// The claim's PV if it was provisioned by us and is bound to this very claim.
fn is_ours(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let provisioned = pv.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(RESIZER);
    let bound_to_it = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| {
            r.uid.is_some()
                && r.uid == pvc.uid()
                && r.namespace == pvc.namespace()
                && r.name.as_deref() == Some(pvc.name_any().as_str())
        });
    provisioned && bound_to_it
}

/// What to do for `pvc` with its PV `pv`. `failed_at` is the request a failing expansion was
/// last reported for (the simulated driver fails once per requested size, not in a loop).
pub fn decide(
    pvc: &PersistentVolumeClaim,
    pv: Option<&PersistentVolume>,
    failed_at: Option<&str>,
) -> Step {
    let Some(pv) = pv else { return Step::Nothing };
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if !bound || pvc.metadata.deletion_timestamp.is_some() || !is_ours(pvc, pv) {
        return Step::Nothing;
    }
    let Some(to) = requested(pvc) else {
        return Step::Nothing;
    };
    let (Some(want), Some(have)) = (bytes(Some(&to)), bytes(status_capacity(pvc).as_deref()))
    else {
        return Step::Nothing;
    };
    if want <= have {
        return Step::Nothing;
    }
    let pv_bytes = bytes(pv_capacity(pv).as_deref()).unwrap_or(0);
    if has_condition(pvc, FS_RESIZE_PENDING) && pv_bytes >= want {
        return Step::AwaitNode;
    }
    let mode = Mode::of(pvc);
    if mode == Mode::Fail && failed_at.and_then(quantity_bytes) == Some(want) {
        return Step::Nothing;
    }
    Step::Expand { to, mode }
}

/// The size a pod start finishes the file system expansion at (kubelet's part): the PV's
/// capacity, when the claim waits at `FileSystemResizePending` and the PV is larger than the
/// claim's capacity.
pub fn node_expansion(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Option<String> {
    if !has_condition(pvc, FS_RESIZE_PENDING) || !is_ours(pvc, pv) {
        return None;
    }
    let size = pv_capacity(pv)?;
    let have = bytes(status_capacity(pvc).as_deref()).unwrap_or(0);
    (bytes(Some(&size))? > have).then_some(size)
}

fn condition(ty: &str, message: Option<&str>, now: &str) -> Value {
    let mut c = json!({ "type": ty, "status": "True", "lastTransitionTime": now });
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The claim's conditions with the resize ones replaced by `new` (kept when `keep_old` and not
/// replaced), like `MergeResizeConditionsOfPVC`. A condition of the same type and status keeps
/// its transition time.
fn merge_conditions(pvc: &PersistentVolumeClaim, new: Vec<Value>, keep_old: bool) -> Value {
    let old = pvc
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut new = new;
    for c in old {
        let value = serde_json::to_value(&c).unwrap_or(Value::Null);
        if !RESIZE_CONDITIONS.contains(&c.type_.as_str()) {
            out.push(value);
        } else if let Some(i) = new.iter().position(|n| n["type"] == c.type_.as_str()) {
            let n = new.remove(i);
            if n["status"] == c.status.as_str() && n.get("message") == value.get("message") {
                out.push(value);
            } else {
                out.push(n);
            }
        } else if keep_old {
            out.push(value);
        }
    }
    out.extend(new);
    Value::Array(out)
}

/// Status patch for step 1 (`markControllerResizeInProgress`). The allocated fields are sent
/// always: a server that does not know them drops them.
pub fn resizing_status(pvc: &PersistentVolumeClaim, to: &str, now: &str) -> Value {
    json!({
        "conditions": merge_conditions(pvc, vec![condition(RESIZING, None, now)], false),
        "allocatedResources": { "storage": to },
        "allocatedResourceStatuses": { "storage": "ControllerResizeInProgress" },
    })
}

/// Status patch for a failed controller expansion (`markControllerExpansionFailedCondition`),
/// `None` on servers without `allocatedResourceStatuses` (the resizer then only records the
/// Event and `Resizing` stays).
pub fn failed_status(pvc: &PersistentVolumeClaim, pv_name: &str, now: &str) -> Option<Value> {
    if !server_keeps_allocated(pvc) {
        return None;
    }
    let message = failed_condition_message(pv_name);
    Some(json!({
        "conditions": merge_conditions(
            pvc,
            vec![condition(CONTROLLER_RESIZE_ERROR, Some(&message), now)],
            true,
        ),
    }))
}

/// Status patch for "controller done, file system pending" (`MarkForFSResize` /
/// `markForPendingNodeExpansion`).
pub fn pending_status(pvc: &PersistentVolumeClaim, now: &str) -> Value {
    let mut status = json!({
        "conditions": merge_conditions(
            pvc,
            vec![condition(FS_RESIZE_PENDING, Some(FS_RESIZE_PENDING_MESSAGE), now)],
            false,
        ),
    });
    if server_keeps_allocated(pvc) {
        status["allocatedResourceStatuses"] = json!({ "storage": "NodeResizePending" });
    }
    status
}

/// Status patch for a finished expansion (`MarkFSResizeFinished` /
/// `markOverallExpansionAsFinished`): the new capacity, no resize conditions, no storage entry
/// in `allocatedResourceStatuses` (JSON merge patch: `null` removes).
pub fn finished_status(pvc: &PersistentVolumeClaim, size: &str) -> Value {
    let mut status = json!({
        "capacity": { "storage": size },
        "conditions": merge_conditions(pvc, Vec::new(), false),
    });
    if let Some(statuses) = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resource_statuses.as_ref())
    {
        status["allocatedResourceStatuses"] = if statuses.keys().all(|k| k == "storage") {
            Value::Null
        } else {
            json!({ "storage": null })
        };
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(
        request: &str,
        capacity: &str,
        annotations: Value,
        status: Value,
    ) -> PersistentVolumeClaim {
        let mut st = json!({ "phase": "Bound", "capacity": { "storage": capacity } });
        if let (Some(st), Some(extra)) = (st.as_object_mut(), status.as_object()) {
            st.extend(extra.clone());
        }
        serde_json::from_value(json!({
            "metadata": { "name": "data", "namespace": "ns", "uid": "u1", "annotations": annotations },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "sim-expandable",
                "resources": { "requests": { "storage": request } },
                "volumeName": "pvc-u1",
            },
            "status": st,
        }))
        .unwrap()
    }

    fn pv(capacity: &str, provisioner: &str, uid: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": { "name": "pvc-u1", "annotations": { PROVISIONED_BY: provisioner } },
            "spec": {
                "capacity": { "storage": capacity },
                "claimRef": { "namespace": "ns", "name": "data", "uid": uid },
            },
        }))
        .unwrap()
    }

    fn ours(capacity: &str) -> PersistentVolume {
        pv(capacity, RESIZER, "u1")
    }

    fn expand(to: &str, mode: Mode) -> Step {
        Step::Expand {
            to: to.into(),
            mode,
        }
    }

    #[test]
    fn a_larger_request_is_expanded_in_the_annotated_mode() {
        let none = json!({});
        let claim = pvc("32Mi", "16Mi", none.clone(), json!({}));
        assert_eq!(
            decide(&claim, Some(&ours("16Mi")), None),
            expand("32Mi", Mode::Online)
        );
        for (value, mode) in [
            ("fail", Mode::Fail),
            ("offline", Mode::Offline),
            ("online", Mode::Online),
            ("whatever", Mode::Online),
        ] {
            let claim = pvc(
                "32Mi",
                "16Mi",
                json!({ RESIZE_ANNOTATION: value }),
                json!({}),
            );
            assert_eq!(
                decide(&claim, Some(&ours("16Mi")), None),
                expand("32Mi", mode),
                "{value}"
            );
        }
        // Units differ, sizes compare as bytes.
        let claim = pvc("1Gi", "1024Mi", none.clone(), json!({}));
        assert_eq!(decide(&claim, Some(&ours("1Gi")), None), Step::Nothing);
        let claim = pvc("1025Mi", "1Gi", none, json!({}));
        assert_eq!(
            decide(&claim, Some(&ours("1Gi")), None),
            expand("1025Mi", Mode::Online)
        );
    }

    #[test]
    fn claims_not_ours_not_bound_or_not_growing_are_left_alone() {
        let none = json!({});
        let grow = pvc("32Mi", "16Mi", none.clone(), json!({}));
        assert_eq!(decide(&grow, None, None), Step::Nothing);
        assert_eq!(
            decide(&grow, Some(&pv("16Mi", "ebs.csi.aws.com", "u1")), None),
            Step::Nothing
        );
        assert_eq!(
            decide(&grow, Some(&pv("16Mi", RESIZER, "other")), None),
            Step::Nothing
        );
        let pending = pvc("32Mi", "16Mi", none.clone(), json!({ "phase": "Pending" }));
        assert_eq!(decide(&pending, Some(&ours("16Mi")), None), Step::Nothing);
        let mut deleting = grow.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-01T00:00:00Z".parse().unwrap(),
            ));
        assert_eq!(decide(&deleting, Some(&ours("16Mi")), None), Step::Nothing);
        let same = pvc("16Mi", "16Mi", none.clone(), json!({}));
        assert_eq!(decide(&same, Some(&ours("16Mi")), None), Step::Nothing);
        // Shrinking is refused by the apiserver; nothing to do here either.
        let smaller = pvc("8Mi", "16Mi", none, json!({}));
        assert_eq!(decide(&smaller, Some(&ours("16Mi")), None), Step::Nothing);
    }

    #[test]
    fn a_failure_is_reported_once_per_requested_size() {
        let fail = json!({ RESIZE_ANNOTATION: "fail" });
        let claim = pvc("32Mi", "16Mi", fail.clone(), json!({}));
        assert_eq!(
            decide(&claim, Some(&ours("16Mi")), Some("32Mi")),
            Step::Nothing
        );
        let bigger = pvc("64Mi", "16Mi", fail, json!({}));
        assert_eq!(
            decide(&bigger, Some(&ours("16Mi")), Some("32Mi")),
            expand("64Mi", Mode::Fail)
        );
        // The driver "fixed" (annotation removed): the expansion goes ahead.
        let fixed = pvc("32Mi", "16Mi", json!({}), json!({}));
        assert_eq!(
            decide(&fixed, Some(&ours("16Mi")), Some("32Mi")),
            expand("32Mi", Mode::Online)
        );
    }

    #[test]
    fn an_offline_claim_waits_for_a_pod_start_and_finishes_at_the_pv_size() {
        let pending = json!({ "conditions": [{ "type": FS_RESIZE_PENDING, "status": "True" }] });
        let claim = pvc(
            "32Mi",
            "16Mi",
            json!({ RESIZE_ANNOTATION: "offline" }),
            pending,
        );
        assert_eq!(decide(&claim, Some(&ours("32Mi")), None), Step::AwaitNode);
        assert_eq!(
            node_expansion(&claim, &ours("32Mi")).as_deref(),
            Some("32Mi")
        );
        // Grown again while pending: the controller expands further first.
        let mut again = claim.clone();
        again
            .spec
            .as_mut()
            .unwrap()
            .resources
            .as_mut()
            .unwrap()
            .requests = Some(
            [(
                "storage".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("64Mi".into()),
            )]
            .into(),
        );
        assert_eq!(
            decide(&again, Some(&ours("32Mi")), None),
            expand("64Mi", Mode::Offline)
        );
        // Without the condition a pod start changes nothing.
        let plain = pvc("32Mi", "16Mi", json!({}), json!({}));
        assert_eq!(node_expansion(&plain, &ours("32Mi")), None);
        let done = pvc(
            "32Mi",
            "32Mi",
            json!({}),
            json!({ "conditions": [{ "type": FS_RESIZE_PENDING, "status": "True" }] }),
        );
        assert_eq!(node_expansion(&done, &ours("32Mi")), None);
    }

    #[test]
    fn status_patches_follow_the_resizer_and_kubelet() {
        let now = "2026-01-01T00:00:00Z";
        let other = json!({ "type": "ModifyingVolume", "status": "True" });
        let claim = pvc(
            "32Mi",
            "16Mi",
            json!({}),
            json!({ "conditions": [other.clone()] }),
        );
        let s = resizing_status(&claim, "32Mi", now);
        assert_eq!(s["conditions"][0]["type"], "ModifyingVolume");
        assert_eq!(s["conditions"][1]["type"], RESIZING);
        assert_eq!(s["conditions"][1]["status"], "True");
        assert_eq!(s["allocatedResources"]["storage"], "32Mi");
        assert_eq!(
            s["allocatedResourceStatuses"]["storage"],
            "ControllerResizeInProgress"
        );

        // An old server (no allocated fields): the failure is an Event only.
        let resizing = json!({ "conditions": [{ "type": RESIZING, "status": "True" }] });
        let old = pvc("32Mi", "16Mi", json!({}), resizing.clone());
        assert_eq!(failed_status(&old, "pvc-u1", now), None);
        let mut modern_status = resizing.clone();
        modern_status["allocatedResources"] = json!({ "storage": "32Mi" });
        modern_status["allocatedResourceStatuses"] =
            json!({ "storage": "ControllerResizeInProgress" });
        let modern = pvc("32Mi", "16Mi", json!({}), modern_status);
        let f = failed_status(&modern, "pvc-u1", now).unwrap();
        let types: Vec<&str> = f["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, [RESIZING, CONTROLLER_RESIZE_ERROR]);
        let msg = f["conditions"][1]["message"].as_str().unwrap();
        assert!(msg.starts_with("failed to expand pvc with resize volume \"pvc-u1\" by resizer \"sts.dev/sim-node\" failed: rpc error: code = Internal"), "{msg}");

        let p = pending_status(&modern, now);
        assert_eq!(
            p["conditions"],
            json!([condition(
                FS_RESIZE_PENDING,
                Some(FS_RESIZE_PENDING_MESSAGE),
                now
            )])
        );
        assert_eq!(
            p["allocatedResourceStatuses"]["storage"],
            "NodeResizePending"
        );
        assert!(
            pending_status(&old, now)
                .get("allocatedResourceStatuses")
                .is_none()
        );

        let done = finished_status(&modern, "32Mi");
        assert_eq!(done["capacity"]["storage"], "32Mi");
        assert_eq!(done["conditions"], json!([]));
        assert_eq!(done["allocatedResourceStatuses"], Value::Null);
        assert!(
            finished_status(&old, "32Mi")
                .get("allocatedResourceStatuses")
                .is_none()
        );
        let with_other = pvc(
            "32Mi",
            "16Mi",
            json!({}),
            json!({ "conditions": [other.clone(), { "type": CONTROLLER_RESIZE_ERROR, "status": "True" }] }),
        );
        assert_eq!(
            finished_status(&with_other, "32Mi")["conditions"],
            json!([other])
        );
    }
}
