//! A simulated node: stands in for kubelet, scheduler and a volume provisioner so that the real
//! StatefulSet, PV and garbage-collection controllers can do their work without containers.
//!
//! - registers a Node and heartbeats its Ready condition (the node lifecycle controller would
//!   otherwise taint it and evict the pods);
//! - binds pending pods to it once their PVCs are bound (like the scheduler), then reports them
//!   Running and Ready through the status subresource (like the kubelet);
//! - completes graceful deletion: a bound pod only gets a deletionTimestamp and waits for its
//!   kubelet, so it is deleted with grace period 0;
//! - provisions a PV for each pending PVC, pre-bound through `claimRef` as a dynamic provisioner
//!   does, so the real PV controller binds the claim; deletes its Released PVs (reclaim Delete);
//! - expands its volumes like a CSI external-resizer plus kubelet (see [`crate::resize`]): when a
//!   bound claim whose PV it provisioned requests more than its `status.capacity`, it sets the
//!   condition `Resizing`, grows the PV's `spec.capacity`, then sets the claim's capacity and
//!   clears the conditions (a few hundred ms between steps, so clients can see `Resizing`).
//!   The PVC annotation `sts.dev/sim-resize` picks how:
//!   - `fail`: the driver fails. Capacity and PV stay; `Resizing` stays, a condition
//!     `ControllerResizeError` (True, "failed to expand pvc with …") is added on servers with
//!     `status.allocatedResourceStatuses` (1.34+), and a Warning Event `VolumeResizeFailed` is
//!     recorded on the claim, once per requested size;
//!   - `offline`: the PV grows but the claim stays at `FileSystemResizePending` (True, kubelet's
//!     message "Waiting for user to (re-)start a pod to finish file system resize of volume on
//!     node.") until a pod mounting it is started on this node; that start finishes it (a pod
//!     already running does not);
//!   - anything else or absent: online, it completes at once.
//!
//!   `status.allocatedResources` / `allocatedResourceStatuses` are written too; servers that do
//!   not know them (1.20) drop them.
//!
//! The harness creates two StorageClasses for it: [`EXPANDABLE_CLASS`] (`sim-expandable`,
//! `allowVolumeExpansion: true`) and [`FIXED_CLASS`] (`sim-fixed`, which the apiserver's
//! PersistentVolumeClaimResize admission refuses to grow); both name this provisioner.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Binding, Event, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{HarnessError, Result};
use crate::resize::{self, Mode, Step};

/// Annotation a dynamic provisioner puts on its PVs; the PV controller then leaves deletion to
/// that provisioner (us) instead of looking for an in-tree plugin.
pub const PROVISIONER: &str = resize::RESIZER;
/// StorageClass whose claims can be grown (`allowVolumeExpansion: true`).
pub const EXPANDABLE_CLASS: &str = "sim-expandable";
/// StorageClass whose claims the apiserver refuses to grow (`allowVolumeExpansion: false`).
pub const FIXED_CLASS: &str = "sim-fixed";
/// Pause between the steps of an expansion, so a client can observe each.
const RESIZE_STEP: Duration = Duration::from_millis(400);
const SIMULATED_LABEL: &str = "sts.dev/simulated";
const HEARTBEAT: Duration = Duration::from_secs(10);
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The running simulated node.
pub struct SimNode {
    tasks: Vec<JoinHandle<()>>,
    worker: JoinHandle<()>,
}

impl SimNode {
    /// Registers the node and starts the watchers and the reconcile loop.
    pub async fn start(client: Client, name: &str, volume_root: PathBuf) -> Result<Self> {
        let started = jiff::Timestamp::now().to_string();
        register_node(&client, name, &started).await?;

        let notify = Arc::new(Notify::new());
        let (pods, pod_writer) = reflector::store::<Pod>();
        let (pvcs, pvc_writer) = reflector::store::<PersistentVolumeClaim>();
        let (pvs, pv_writer) = reflector::store::<PersistentVolume>();
        let mut tasks = vec![
            spawn_reflector(
                Api::<Pod>::all(client.clone()),
                watcher::Config::default(),
                pod_writer,
                notify.clone(),
            ),
            spawn_reflector(
                Api::<PersistentVolumeClaim>::all(client.clone()),
                watcher::Config::default(),
                pvc_writer,
                notify.clone(),
            ),
            spawn_reflector(
                Api::<PersistentVolume>::all(client.clone()),
                watcher::Config::default().labels(&format!("{SIMULATED_LABEL}=true")),
                pv_writer,
                notify.clone(),
            ),
        ];
        let hb_client = client.clone();
        let hb_name = name.to_owned();
        tasks.push(tokio::spawn(async move {
            let nodes: Api<Node> = Api::all(hb_client);
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let patch = json!({ "status": node_status(&hb_name, &started) });
                if let Err(e) = nodes
                    .patch_status(&hb_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!("node heartbeat failed: {e}");
                }
            }
        }));

        let mut sim = Simulator {
            client,
            node: name.to_owned(),
            volume_root,
            pods,
            pvcs,
            pvs,
            attempts: HashMap::new(),
            next_ip: AtomicU32::new(2),
            resizes: JoinSet::new(),
            resize_state: Arc::new(Mutex::new(ResizeState::default())),
        };
        let worker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tick.tick() => {}
                }
                sim.reconcile().await;
            }
        });
        Ok(Self { tasks, worker })
    }

    /// Errors if the reconcile loop has stopped.
    pub fn ensure_running(&self) -> Result<()> {
        if self.worker.is_finished() {
            return Err(HarnessError::setup(
                "simulated node",
                "the reconcile loop stopped",
            ));
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        self.worker.abort();
        let _ = (&mut self.worker).await;
        for t in &mut self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.worker.abort();
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    notify: Arc<Notify>,
) -> JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!("simulated node watch error (retrying): {e}");
            }
            notify.notify_one();
        }
    })
}

async fn register_node(client: &Client, name: &str, started: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                SIMULATED_LABEL: "true",
            }
        },
    }))
    .map_err(|e| HarnessError::setup("building the Node", e.to_string()))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(HarnessError::kube(format!("creating Node {name}"), e)),
    }
    let patch = json!({ "status": node_status(name, started) });
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| HarnessError::kube(format!("setting the status of Node {name}"), e))?;
    Ok(())
}

fn node_status(name: &str, started: &str) -> serde_json::Value {
    let now = jiff::Timestamp::now().to_string();
    let cond = |ty: &str, status: &str, reason: &str| {
        json!({
            "type": ty, "status": status, "reason": reason,
            "lastHeartbeatTime": now, "lastTransitionTime": started,
        })
    };
    let resources =
        json!({ "cpu": "16", "memory": "64Gi", "pods": "250", "ephemeral-storage": "100Gi" });
    json!({
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            cond("Ready", "True", "KubeletReady"),
        ],
        "addresses": [
            { "type": "InternalIP", "address": "127.0.0.1" },
            { "type": "Hostname", "address": name },
        ],
        "capacity": resources,
        "allocatable": resources,
        "nodeInfo": {
            "machineID": "sts-sim", "systemUUID": "sts-sim", "bootID": "sts-sim",
            "kernelVersion": "simulated", "osImage": "simulated", "containerRuntimeVersion": "sim://1",
            "kubeletVersion": "v1.20.2-sim", "kubeProxyVersion": "v1.20.2-sim",
            "operatingSystem": "linux", "architecture": "amd64",
        },
    })
}

struct Simulator {
    client: Client,
    node: String,
    volume_root: PathBuf,
    pods: Store<Pod>,
    pvcs: Store<PersistentVolumeClaim>,
    pvs: Store<PersistentVolume>,
    /// Last attempt per (action, uid): the stores lag behind our own writes, so an action is
    /// repeated only after RETRY_AFTER.
    attempts: HashMap<(Action, String), Instant>,
    next_ip: AtomicU32,
    /// Running expansions; dropped (aborted) with the simulator.
    resizes: JoinSet<()>,
    resize_state: Arc<Mutex<ResizeState>>,
}

/// Shared between the reconcile loop and the expansion tasks, by claim uid.
#[derive(Default)]
struct ResizeState {
    in_flight: HashSet<String>,
    /// The request a failing expansion was reported for.
    failed: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    Bind,
    Run,
    Finalize,
    Provision,
    Reclaim,
    Resize,
}

impl Simulator {
    fn due(&mut self, action: Action, uid: &str) -> bool {
        let now = Instant::now();
        // Forget old entries so the map does not grow without bound.
        if self.attempts.len() > 10_000 {
            self.attempts
                .retain(|_, t| now.duration_since(*t) < RETRY_AFTER);
        }
        match self.attempts.get(&(action, uid.to_owned())) {
            Some(t) if now.duration_since(*t) < RETRY_AFTER => false,
            _ => {
                self.attempts.insert((action, uid.to_owned()), now);
                true
            }
        }
    }

    async fn reconcile(&mut self) {
        while self.resizes.try_join_next().is_some() {}
        for pvc in self.pvcs.state() {
            self.provision(&pvc).await;
            self.resize(&pvc);
        }
        for pv in self.pvs.state() {
            self.reclaim(&pv).await;
        }
        for pod in self.pods.state() {
            self.pod(&pod).await;
        }
    }

    async fn pod(&mut self, pod: &Pod) {
        let (Some(ns), Some(uid)) = (pod.namespace(), pod.uid()) else {
            return;
        };
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            if spec.node_name.as_deref() == Some(self.node.as_str())
                && self.due(Action::Finalize, &uid)
            {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &dp).await {
                    Ok(_) => tracing::debug!("finalised pod {ns}/{name}"),
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => tracing::warn!("cannot finalise pod {ns}/{name}: {e}"),
                }
            }
            return;
        }
        match spec.node_name.as_deref() {
            None => {
                if self.claims_bound(&ns, pod) && self.due(Action::Bind, &uid) {
                    let binding = Binding {
                        metadata: kube::api::ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(ns.clone()),
                            uid: Some(uid.clone()),
                            ..Default::default()
                        },
                        target: ObjectReference {
                            api_version: Some("v1".into()),
                            kind: Some("Node".into()),
                            name: Some(self.node.clone()),
                            ..Default::default()
                        },
                    };
                    let res: kube::Result<serde_json::Value> = api
                        .create_subresource("binding", &name, &PostParams::default(), &binding)
                        .await;
                    match res {
                        Ok(_) => tracing::debug!("bound pod {ns}/{name}"),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                        Err(e) => tracing::warn!("cannot bind pod {ns}/{name}: {e}"),
                    }
                }
            }
            Some(n) if n == self.node => {
                if !is_running_ready(pod) && self.due(Action::Run, &uid) {
                    // kubelet finishes pending file system expansions when it mounts the
                    // volumes, before the containers start.
                    if !self.expand_on_mount(&ns, pod).await {
                        return;
                    }
                    let ip = self.pod_ip(pod);
                    let status = running_status(pod, &spec, &ip);
                    match api
                        .patch_status(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(&json!({ "status": status })),
                        )
                        .await
                    {
                        Ok(_) => tracing::debug!("pod {ns}/{name} is Running and Ready"),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                        Err(e) => tracing::warn!("cannot update status of pod {ns}/{name}: {e}"),
                    }
                }
            }
            Some(_) => {}
        }
    }

    fn pod_ip(&self, pod: &Pod) -> String {
        if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) {
            return ip;
        }
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2)
    }

    /// Like the scheduler with volume binding: a pod waits until its claims are Bound.
    fn claims_bound(&self, ns: &str, pod: &Pod) -> bool {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        volumes
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .all(|c| {
                let key =
                    reflector::ObjectRef::<PersistentVolumeClaim>::new(&c.claim_name).within(ns);
                self.pvcs
                    .get(&key)
                    .and_then(|pvc| pvc.status.as_ref().and_then(|s| s.phase.clone()))
                    .is_some_and(|p| p == "Bound")
            })
    }

    async fn provision(&mut self, pvc: &PersistentVolumeClaim) {
        let (Some(ns), Some(uid)) = (pvc.namespace(), pvc.uid()) else {
            return;
        };
        let spec = pvc.spec.clone().unwrap_or_default();
        let phase = pvc.status.as_ref().and_then(|s| s.phase.clone());
        if pvc.metadata.deletion_timestamp.is_some()
            || spec.volume_name.is_some()
            || phase.as_deref().is_some_and(|p| p != "Pending")
        {
            return;
        }
        let pv_name = format!("pvc-{uid}");
        if self.pvs.get(&reflector::ObjectRef::new(&pv_name)).is_some()
            || !self.due(Action::Provision, &uid)
        {
            return;
        }
        let storage = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned())
            .map(|q| q.0)
            .unwrap_or_else(|| "1Gi".to_owned());
        let access_modes = spec
            .access_modes
            .clone()
            .unwrap_or_else(|| vec!["ReadWriteOnce".to_owned()]);
        let mut pv = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name,
                "labels": { SIMULATED_LABEL: "true" },
                "annotations": { "pv.kubernetes.io/provisioned-by": PROVISIONER },
            },
            "spec": {
                "capacity": { "storage": storage },
                "accessModes": access_modes,
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.storage_class_name.clone().unwrap_or_default(),
                "hostPath": { "path": self.volume_root.join(&pv_name).display().to_string(), "type": "DirectoryOrCreate" },
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": ns, "name": pvc.name_any(), "uid": uid,
                },
            },
        });
        if let Some(mode) = &spec.volume_mode {
            pv["spec"]["volumeMode"] = json!(mode);
        }
        let pv: PersistentVolume = match serde_json::from_value(pv) {
            Ok(pv) => pv,
            Err(e) => {
                tracing::warn!("cannot build a PV for {ns}/{}: {e}", pvc.name_any());
                return;
            }
        };
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => tracing::debug!("provisioned {pv_name} for {ns}/{}", pvc.name_any()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => tracing::warn!("cannot create PV {pv_name}: {e}"),
        }
    }

    /// The claim's PV from the store.
    fn pv_of(&self, pvc: &PersistentVolumeClaim) -> Option<Arc<PersistentVolume>> {
        let name = pvc.spec.as_ref()?.volume_name.as_ref()?;
        self.pvs.get(&reflector::ObjectRef::new(name))
    }

    /// The external-resizer's part: starts an expansion task when the claim asks for one.
    fn resize(&mut self, pvc: &PersistentVolumeClaim) {
        let Some(uid) = pvc.uid() else { return };
        let pv = self.pv_of(pvc);
        let failed_at = match self.resize_state.lock() {
            Ok(s) if s.in_flight.contains(&uid) => return,
            Ok(s) => s.failed.get(&uid).cloned(),
            Err(_) => return,
        };
        let Step::Expand { to, mode } = resize::decide(pvc, pv.as_deref(), failed_at.as_deref())
        else {
            return;
        };
        let Some(pv) = pv else { return };
        if !self.due(Action::Resize, &uid) {
            return;
        }
        if let Ok(mut s) = self.resize_state.lock() {
            s.in_flight.insert(uid.clone());
        }
        let client = self.client.clone();
        let state = self.resize_state.clone();
        let pvc = pvc.clone();
        self.resizes.spawn(async move {
            let key = format!("{}/{}", pvc.namespace().unwrap_or_default(), pvc.name_any());
            match expand(client, &pvc, &pv, &to, mode, &state).await {
                Ok(()) => tracing::debug!("expansion of {key} to {to} ({mode:?}) done"),
                Err(e) => tracing::warn!("expansion of {key} to {to} stopped: {e}"),
            }
            if let Ok(mut s) = state.lock() {
                s.in_flight.remove(&uid);
            }
        });
    }

    /// kubelet's part of an offline expansion: finishes the claims of `pod` that wait at
    /// FileSystemResizePending. False when a write failed (the pod then does not start yet).
    async fn expand_on_mount(&self, ns: &str, pod: &Pod) -> bool {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut ok = true;
        for claim in volumes
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
        {
            let key =
                reflector::ObjectRef::<PersistentVolumeClaim>::new(&claim.claim_name).within(ns);
            let Some(pvc) = self.pvcs.get(&key) else {
                continue;
            };
            let Some(pv) = self.pv_of(&pvc) else { continue };
            let Some(size) = resize::node_expansion(&pvc, &pv) else {
                continue;
            };
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
            let patch = json!({ "status": resize::finished_status(&pvc, &size) });
            match api
                .patch_status(
                    &claim.claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => tracing::debug!(
                    "file system of {ns}/{} expanded to {size} on mount",
                    claim.claim_name
                ),
                Err(e) => {
                    tracing::warn!("cannot finish expansion of {ns}/{}: {e}", claim.claim_name);
                    ok = false;
                }
            }
        }
        ok
    }

    async fn reclaim(&mut self, pv: &PersistentVolume) {
        let ours = pv
            .annotations()
            .get("pv.kubernetes.io/provisioned-by")
            .map(String::as_str)
            == Some(PROVISIONER);
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        let delete = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            == Some("Delete");
        let Some(uid) = pv.uid() else { return };
        if !(ours && released && delete)
            || pv.metadata.deletion_timestamp.is_some()
            || !self.due(Action::Reclaim, &uid)
        {
            return;
        }
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.delete(&pv.name_any(), &DeleteParams::default()).await {
            Ok(_) => tracing::debug!("reclaimed {}", pv.name_any()),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!("cannot delete PV {}: {e}", pv.name_any()),
        }
    }
}

/// One expansion, step by step (see [`crate::resize`]).
async fn expand(
    client: Client,
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    to: &str,
    mode: Mode,
    state: &Mutex<ResizeState>,
) -> kube::Result<()> {
    let ns = pvc.namespace().unwrap_or_default();
    let name = pvc.name_any();
    let pv_name = pv.name_any();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pp = PatchParams::default();
    let now = || jiff::Timestamp::now().to_string();
    // Against the version we decided on, as PatchPVCStatus does: a stale store gets a 409.
    let patch = json!({
        "metadata": { "resourceVersion": pvc.resource_version() },
        "status": resize::resizing_status(pvc, to, &now()),
    });
    let pvc = api.patch_status(&name, &pp, &Patch::Merge(&patch)).await?;
    tokio::time::sleep(RESIZE_STEP).await;

    if mode == Mode::Fail {
        if let Ok(mut s) = state.lock() {
            s.failed
                .insert(pvc.uid().unwrap_or_default(), to.to_owned());
        }
        if let Some(status) = resize::failed_status(&pvc, &pv_name, &now()) {
            api.patch_status(&name, &pp, &Patch::Merge(&json!({ "status": status })))
                .await?;
        }
        record_resize_failed(&client, &pvc, &pv_name).await?;
        return Ok(());
    }

    let grow = match (
        resize::pv_capacity(pv)
            .as_deref()
            .and_then(sts_model::quantity::quantity_bytes),
        sts_model::quantity::quantity_bytes(to),
    ) {
        (Some(have), Some(want)) => have < want,
        _ => true,
    };
    if grow {
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        let patch = json!({ "spec": { "capacity": { "storage": to } } });
        pvs.patch(&pv_name, &pp, &Patch::Merge(&patch)).await?;
        tokio::time::sleep(RESIZE_STEP).await;
    }
    let status = match mode {
        Mode::Offline => resize::pending_status(&pvc, &now()),
        Mode::Online | Mode::Fail => resize::finished_status(&pvc, to),
    };
    api.patch_status(&name, &pp, &Patch::Merge(&json!({ "status": status })))
        .await?;
    Ok(())
}

/// The Warning Event external-resizer records when ControllerExpandVolume fails.
async fn record_resize_failed(
    client: &Client,
    pvc: &PersistentVolumeClaim,
    pv_name: &str,
) -> kube::Result<()> {
    let ns = pvc.namespace().unwrap_or_default();
    let name = pvc.name_any();
    let now = jiff::Timestamp::now();
    let event = json!({
        "metadata": { "name": format!("{name}.{:x}", now.as_nanosecond()), "namespace": ns },
        "involvedObject": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
            "uid": pvc.uid(), "resourceVersion": pvc.resource_version(),
        },
        "reason": resize::RESIZE_FAILED_REASON,
        "message": resize::failed_event_message(pv_name),
        "type": "Warning",
        "source": { "component": format!("external-resizer {}", resize::RESIZER) },
        "firstTimestamp": now.to_string(),
        "lastTimestamp": now.to_string(),
        "count": 1,
    });
    let event: Event = serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
    Api::<Event>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}

/// Creates [`EXPANDABLE_CLASS`] and [`FIXED_CLASS`] (kept if they exist), both naming this
/// provisioner, reclaim Delete, binding Immediate. Neither is the default class.
pub async fn create_storage_classes(client: &Client) -> Result<()> {
    let api: Api<StorageClass> = Api::all(client.clone());
    for (name, expandable) in [(EXPANDABLE_CLASS, true), (FIXED_CLASS, false)] {
        let class: StorageClass = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": { "name": name, "labels": { SIMULATED_LABEL: "true" } },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": expandable,
        }))
        .map_err(|e| HarnessError::setup("building a StorageClass", e.to_string()))?;
        match api.create(&PostParams::default(), &class).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(HarnessError::kube(
                    format!("creating StorageClass {name}"),
                    e,
                ));
            }
        }
    }
    Ok(())
}

fn is_running_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    status.phase.as_deref() == Some("Running") && ready
}

fn running_status(
    pod: &Pod,
    spec: &k8s_openapi::api::core::v1::PodSpec,
    ip: &str,
) -> serde_json::Value {
    let now = jiff::Timestamp::now().to_string();
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| now.clone());
    let cond = |ty: &str| json!({ "type": ty, "status": "True", "lastProbeTime": null, "lastTransitionTime": now });
    let container_statuses: Vec<serde_json::Value> = spec
        .containers
        .iter()
        .map(|c| {
            let image = c.image.clone().unwrap_or_default();
            json!({
                "name": c.name,
                "ready": true,
                "started": true,
                "restartCount": 0,
                "image": image,
                "imageID": format!("sim://{image}"),
                "containerID": format!("sim://{}-{}", pod.uid().unwrap_or_default(), c.name),
                "state": { "running": { "startedAt": start } },
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": ip,
        "podIPs": [{ "ip": ip }],
        "startTime": start,
        "qosClass": pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".to_owned()),
        "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "containerStatuses": container_statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_status_reports_every_container_ready() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "web-0", "namespace": "ns", "uid": "u1" },
            "spec": { "containers": [
                { "name": "nginx", "image": "nginx:1.19" },
                { "name": "side", "image": "busybox" }
            ] }
        }))
        .unwrap();
        let status = running_status(&pod, pod.spec.as_ref().unwrap(), "10.244.0.9");
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.244.0.9");
        let cs = status["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "nginx:1.19");
        assert!(
            cs.iter()
                .all(|c| c["ready"] == true && c["restartCount"] == 0)
        );
        let mut with_status = pod.clone();
        with_status.status = Some(serde_json::from_value(status).unwrap());
        assert!(is_running_ready(&with_status));
        assert!(!is_running_ready(&pod));
    }
}
