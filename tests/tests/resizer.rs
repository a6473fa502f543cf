//! e2e: growing a claim on the real control plane, with the simulated node acting as CSI
//! external-resizer and kubelet (tests/src/node.rs, tests/src/resize.rs): online, failing and
//! offline expansion on class `sim-expandable`, and the apiserver's refusal on `sim-fixed`.
//! Needs the local harness (the StorageClasses and the simulated resizer), so it is meant for
//! `sts-cluster run`.

mod common;

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail, ensure};
use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

const MI: u128 = 1 << 20;

fn claim(name: &str, class: &str, mode: Option<&str>) -> Result<PersistentVolumeClaim> {
    let annotations = match mode {
        Some(m) => json!({ "sts.dev/sim-resize": m }),
        None => json!({}),
    };
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class,
            "resources": { "requests": { "storage": "16Mi" } }
        }
    }))?)
}

fn bytes(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<u128> {
    q.and_then(|q| sts_model::quantity::quantity_bytes(&q.0))
}

fn capacity(pvc: &PersistentVolumeClaim) -> Option<u128> {
    bytes(pvc.status.as_ref()?.capacity.as_ref()?.get("storage"))
}

fn condition<'a>(
    pvc: &'a PersistentVolumeClaim,
    ty: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PersistentVolumeClaimCondition> {
    pvc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty && c.status == "True")
}

fn condition_types(pvc: &PersistentVolumeClaim) -> Vec<String> {
    pvc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| format!("{}={}", c.type_, c.status))
                .collect()
        })
        .unwrap_or_default()
}

/// The conditions resizing owns (servers add others: 1.37 reports `Unused`).
const RESIZE_CONDITIONS: [&str; 4] = [
    "Resizing",
    "FileSystemResizePending",
    "ControllerResizeError",
    "NodeResizeError",
];

/// The resize conditions the claim has, whatever their status.
fn resize_conditions(pvc: &PersistentVolumeClaim) -> Vec<String> {
    pvc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter(|c| RESIZE_CONDITIONS.contains(&c.type_.as_str()))
                .map(|c| c.type_.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn summary(pvc: &PersistentVolumeClaim) -> String {
    let st = pvc.status.as_ref();
    format!(
        "phase={:?} capacity={:?} conditions={:?} allocated={:?} statuses={:?}",
        st.and_then(|s| s.phase.clone()),
        capacity(pvc),
        condition_types(pvc),
        st.and_then(|s| s.allocated_resources.clone()),
        st.and_then(|s| s.allocated_resource_statuses.clone()),
    )
}

async fn pv_capacity(ns: &TestNs, pvc: &PersistentVolumeClaim) -> Result<Option<u128>> {
    let name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .context("claim has no volume")?;
    let pv = kube::Api::<PersistentVolume>::all(ns.client.clone())
        .get(&name)
        .await?;
    Ok(bytes(
        pv.spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage")),
    ))
}

/// Creates the claim and waits until the simulated node has provisioned it and the PV
/// controller bound it, at 16Mi.
async fn bound_claim(ns: &TestNs, pvc: &PersistentVolumeClaim) -> Result<PersistentVolumeClaim> {
    let name = pvc.metadata.name.clone().unwrap_or_default();
    ns.pvcs().create(&PostParams::default(), pvc).await?;
    let bound = eventually(&format!("{name} Bound"), ns.timeout(), || async {
        let pvc = ns.pvcs().get(&name).await?;
        if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            && capacity(&pvc) == Some(16 * MI)
        {
            Ok(Probe::Done(pvc))
        } else {
            Ok(Probe::NotYet(summary(&pvc)))
        }
    })
    .await?;
    // The provisioner copies the claim's class to the PV (the PV controller binds only then).
    let pv_name = bound
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .context("bound claim has no volume")?;
    let pv = kube::Api::<PersistentVolume>::all(ns.client.clone())
        .get(&pv_name)
        .await?;
    let class = pvc.spec.as_ref().and_then(|s| s.storage_class_name.clone());
    ensure!(
        pv.spec.as_ref().and_then(|s| s.storage_class_name.clone()) == class,
        "PV {pv_name} should have the claim's class {class:?}"
    );
    Ok(bound)
}

async fn grow(ns: &TestNs, name: &str, to: &str) -> kube::Result<PersistentVolumeClaim> {
    let patch = json!({ "spec": { "resources": { "requests": { "storage": to } } } });
    ns.pvcs()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Every version of the claim the watch delivers, from now on.
fn record_versions(
    ns: &TestNs,
    name: &str,
) -> (
    Arc<Mutex<Vec<PersistentVolumeClaim>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let api = ns.pvcs();
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        let stream = watcher::watch_object(api, &name);
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Ok(Some(pvc)) = ev
                && let Ok(mut s) = sink.lock()
            {
                s.push(pvc);
            }
        }
    });
    (seen, task)
}

/// Whether the server keeps `status.allocatedResources` (RecoverVolumeExpansionFailure, GA in
/// 1.34); `None` for releases in between, where it depends on the feature gate.
async fn keeps_allocated(ns: &TestNs) -> Result<Option<bool>> {
    let minor: u32 = ns
        .client
        .apiserver_version()
        .await?
        .minor
        .trim_end_matches('+')
        .parse()?;
    Ok(match minor {
        ..23 => Some(false),
        34.. => Some(true),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expandable_claim_grows_online_with_its_volume() -> Result<()> {
    let ns = TestNs::new("resize-online").await?;
    let pvc = bound_claim(&ns, &claim("data", "sim-expandable", None)?).await?;
    let (seen, watch) = record_versions(&ns, "data");
    // Let the watch start before the change it should see.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    grow(&ns, "data", "32Mi").await?;
    let done = eventually("data at 32Mi with its PV grown", ns.timeout(), || async {
        let pvc = ns.pvcs().get("data").await?;
        let pv = pv_capacity(&ns, &pvc).await?;
        if capacity(&pvc) == Some(32 * MI) && pv == Some(32 * MI) {
            Ok(Probe::Done(pvc))
        } else {
            Ok(Probe::NotYet(format!("{} pv={pv:?}", summary(&pvc))))
        }
    })
    .await?;
    watch.abort();
    ensure!(
        resize_conditions(&done).is_empty(),
        "the resize conditions should be cleared: {}",
        summary(&done)
    );
    let versions = seen.lock().map(|s| s.clone()).unwrap_or_default();
    ensure!(
        versions
            .iter()
            .any(|v| condition(v, "Resizing").is_some() && capacity(v) == Some(16 * MI)),
        "a client should see Resizing while the claim is still at 16Mi; saw: {:?}",
        versions.iter().map(summary).collect::<Vec<_>>()
    );
    let st = done.status.clone().unwrap_or_default();
    match keeps_allocated(&ns).await? {
        Some(true) => {
            ensure!(
                bytes(
                    st.allocated_resources
                        .as_ref()
                        .and_then(|a| a.get("storage"))
                ) == Some(32 * MI),
                "allocatedResources.storage should be 32Mi: {}",
                summary(&done)
            );
            ensure!(
                st.allocated_resource_statuses
                    .as_ref()
                    .is_none_or(|s| !s.contains_key("storage")),
                "allocatedResourceStatuses.storage should be gone: {}",
                summary(&done)
            );
        }
        Some(false) => ensure!(
            st.allocated_resources.is_none() && st.allocated_resource_statuses.is_none(),
            "this server does not keep the allocated fields: {}",
            summary(&done)
        ),
        None => {}
    }
    // Once more, from the new size: the PV follows again.
    let _ = pvc;
    grow(&ns, "data", "48Mi").await?;
    eventually("data at 48Mi", ns.timeout(), || async {
        let pvc = ns.pvcs().get("data").await?;
        let pv = pv_capacity(&ns, &pvc).await?;
        if capacity(&pvc) == Some(48 * MI)
            && pv == Some(48 * MI)
            && resize_conditions(&pvc).is_empty()
        {
            Ok(Probe::Done(()))
        } else {
            Ok(Probe::NotYet(format!("{} pv={pv:?}", summary(&pvc))))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_driver_leaves_the_capacity_and_reports_the_error() -> Result<()> {
    let ns = TestNs::new("resize-fail").await?;
    let pvc = bound_claim(&ns, &claim("data", "sim-expandable", Some("fail"))?).await?;
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    grow(&ns, "data", "32Mi").await?;
    let events: kube::Api<Event> = ns.api();
    let event = eventually(
        "a VolumeResizeFailed Event on data",
        ns.timeout(),
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=data"))
                .await?;
            let found = list.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("VolumeResizeFailed")
                    && e.involved_object.uid.as_deref() == Some(uid.as_str())
            });
            Ok(match found {
                Some(e) => Probe::Done(e),
                None => Probe::NotYet("no such Event".into()),
            })
        },
    )
    .await?;
    ensure!(
        event.type_.as_deref() == Some("Warning")
            && event.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
            && event.message.as_deref().is_some_and(|m| m
                .contains("by resizer \"sts.dev/sim-node\" failed: rpc error: code = Internal")),
        "unexpected Event: {event:?}"
    );
    let keeps = keeps_allocated(&ns).await?;
    let failed = eventually("data showing the failure", ns.timeout(), || async {
        let pvc = ns.pvcs().get("data").await?;
        let shown = match keeps {
            Some(true) => condition(&pvc, "ControllerResizeError").is_some(),
            _ => condition(&pvc, "Resizing").is_some(),
        };
        Ok(if shown {
            Probe::Done(pvc)
        } else {
            Probe::NotYet(summary(&pvc))
        })
    })
    .await?;
    if keeps == Some(true) {
        let message = condition(&failed, "ControllerResizeError")
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        ensure!(
            message.starts_with("failed to expand pvc with resize volume"),
            "ControllerResizeError message: {message:?}"
        );
        let st = failed.status.clone().unwrap_or_default();
        ensure!(
            st.allocated_resource_statuses
                .as_ref()
                .and_then(|s| s.get("storage"))
                .map(String::as_str)
                == Some("ControllerResizeInProgress"),
            "allocatedResourceStatuses after a final error: {}",
            summary(&failed)
        );
    }
    // It stays failed: capacity and PV unchanged a while later.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let later = ns.pvcs().get("data").await?;
    ensure!(
        capacity(&later) == Some(16 * MI) && pv_capacity(&ns, &later).await? == Some(16 * MI),
        "a failed expansion must leave claim and volume at 16Mi: {}",
        summary(&later)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_expansion_waits_for_a_pod_to_be_restarted() -> Result<()> {
    let ns = TestNs::new("resize-offline").await?;
    bound_claim(&ns, &claim("data", "sim-expandable", Some("offline"))?).await?;
    let pods = ns.pods();
    pods.create(
        &PostParams::default(),
        &pod_mounting("before", "data", json!({}))?,
    )
    .await?;
    eventually("pod before Ready", ns.timeout(), || async {
        let pod = pods.get("before").await?;
        Ok(if is_ready(&pod) {
            Probe::Done(())
        } else {
            Probe::NotYet(pod_summary(&pod))
        })
    })
    .await?;

    grow(&ns, "data", "32Mi").await?;
    let pending = eventually("data at FileSystemResizePending", ns.timeout(), || async {
        let pvc = ns.pvcs().get("data").await?;
        Ok(match condition(&pvc, "FileSystemResizePending") {
            Some(_) => Probe::Done(pvc),
            None => Probe::NotYet(summary(&pvc)),
        })
    })
    .await?;
    let message = condition(&pending, "FileSystemResizePending")
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    ensure!(
        message
            == "Waiting for user to (re-)start a pod to finish file system resize of volume on node.",
        "FileSystemResizePending message: {message:?}"
    );
    ensure!(
        pv_capacity(&ns, &pending).await? == Some(32 * MI) && capacity(&pending) == Some(16 * MI),
        "the controller part grows the PV, the claim stays at 16Mi: {}",
        summary(&pending)
    );
    // The pod that was running all along does not finish it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let still = ns.pvcs().get("data").await?;
    ensure!(
        condition(&still, "FileSystemResizePending").is_some() && capacity(&still) == Some(16 * MI),
        "still pending while only an old pod mounts it: {}",
        summary(&still)
    );
    if keeps_allocated(&ns).await? == Some(true) {
        let st = still.status.clone().unwrap_or_default();
        ensure!(
            st.allocated_resource_statuses
                .as_ref()
                .and_then(|s| s.get("storage"))
                .map(String::as_str)
                == Some("NodeResizePending"),
            "allocatedResourceStatuses while pending: {}",
            summary(&still)
        );
    }

    // Restart: delete the pod, start a new one mounting the claim.
    pods.delete("before", &Default::default()).await?;
    ns.wait_gone::<k8s_openapi::api::core::v1::Pod>("before")
        .await?;
    pods.create(
        &PostParams::default(),
        &pod_mounting("after", "data", json!({}))?,
    )
    .await?;
    let done = eventually("data at 32Mi after the pod start", ns.timeout(), || async {
        let pvc = ns.pvcs().get("data").await?;
        Ok(if capacity(&pvc) == Some(32 * MI) {
            Probe::Done(pvc)
        } else {
            Probe::NotYet(summary(&pvc))
        })
    })
    .await?;
    ensure!(
        resize_conditions(&done).is_empty(),
        "conditions cleared once the file system is grown: {}",
        summary(&done)
    );
    let st = done.status.clone().unwrap_or_default();
    ensure!(
        st.allocated_resource_statuses
            .as_ref()
            .is_none_or(|s| !s.contains_key("storage")),
        "no resize status left: {}",
        summary(&done)
    );
    eventually("pod after Ready", ns.timeout(), || async {
        let pod = pods.get("after").await?;
        Ok(if is_ready(&pod) {
            Probe::Done(())
        } else {
            Probe::NotYet(pod_summary(&pod))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_a_fixed_class_is_refused_by_the_apiserver() -> Result<()> {
    let ns = TestNs::new("resize-fixed").await?;
    bound_claim(&ns, &claim("data", "sim-fixed", None)?).await?;
    match grow(&ns, "data", "32Mi").await {
        Ok(pvc) => bail!(
            "the apiserver accepted a resize on sim-fixed: {}",
            summary(&pvc)
        ),
        Err(kube::Error::Api(s)) => {
            ensure!(
                s.code == 403
                    && s.message.contains(
                        "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
                    ),
                "unexpected refusal: {s:?}"
            );
        }
        Err(e) => return Err(e.into()),
    }
    let pvc = ns.pvcs().get("data").await?;
    ensure!(
        capacity(&pvc) == Some(16 * MI) && resize_conditions(&pvc).is_empty(),
        "nothing changes: {}",
        summary(&pvc)
    );
    Ok(())
}
