//! Loading a generated cluster ([`sts_model::fixtures::cluster`]) into a real API server, one
//! namespace at a time, for benchmarks at scale (`sts-scale-bench`).
//!
//! Per namespace `ns-NNNN`: the Namespace and its `default` ServiceAccount (pods need it, and
//! with no kube-controller-manager nothing else makes it); then its StatefulSets (create, then
//! `status` through the status subresource; the UID the server gave each is kept); then
//! everything else, with the links the plugin joins on rewritten to those UIDs:
//! ControllerRevisions and pods (ownerReferences), Events (`involvedObject.uid`). Pods and
//! claims get their status through the status subresource too (pod phase and Ready
//! condition; claim phase Bound and capacity), and each claim gets the PersistentVolume its
//! `volumeName` names (`pv-<claim>`, 1Gi, reclaim policy Delete, `claimRef` with the claim's
//! UID; the PV's own status is left as the server sets it). Server-set fields (uid,
//! resourceVersion, creationTimestamp, generation, managedFields) are stripped before create.
//!
//! Requests are bounded: at most `concurrency` in flight over one client. Loading resumes: a
//! namespace whose objects are all in is labelled [`LOADED_LABEL`] with its StatefulSet count
//! and skipped next time, and an object that already exists (409) counts as loaded (a
//! StatefulSet's or claim's UID is then read back).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sts_model::fixtures::cluster::{
    Cluster, generate_range, namespace_count, namespace_name, namespace_range,
};
use tokio::sync::Semaphore;

use crate::error::{HarnessError, Result};

/// Label on a namespace whose objects are all loaded; the value is its StatefulSet count.
pub const LOADED_LABEL: &str = "sts-bench.dev/statefulsets";

/// Attempts per request when the server answers 429/5xx or the connection fails.
const ATTEMPTS: u32 = 6;

/// How to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Namespaces being loaded at once (their requests share `concurrency`).
    pub namespaces_in_flight: usize,
    /// How often to print progress to stderr.
    pub progress_every: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            concurrency: 48,
            namespaces_in_flight: 4,
            progress_every: Duration::from_secs(15),
        }
    }
}

/// Objects per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub statefulsets: u64,
    pub pods: u64,
    pub claims: u64,
    pub volumes: u64,
    pub services: u64,
    pub revisions: u64,
    pub events: u64,
}

impl Counts {
    /// Every kind together (namespaces and ServiceAccounts not included).
    pub fn total(&self) -> u64 {
        self.statefulsets
            + self.pods
            + self.claims
            + self.volumes
            + self.services
            + self.revisions
            + self.events
    }

    /// The kinds `kubectl sts list` reads: StatefulSets, pods, claims, Services,
    /// ControllerRevisions, Events.
    pub fn read_by_list(&self) -> u64 {
        self.total() - self.volumes
    }

    /// The kinds `kubectl sts orphans` reads: StatefulSets, pods, claims, PersistentVolumes.
    pub fn read_by_orphans(&self) -> u64 {
        self.statefulsets + self.pods + self.claims + self.volumes
    }

    fn add(&mut self, other: &Counts) {
        self.statefulsets += other.statefulsets;
        self.pods += other.pods;
        self.claims += other.claims;
        self.volumes += other.volumes;
        self.services += other.services;
        self.revisions += other.revisions;
        self.events += other.events;
    }

    fn of(cluster: &Cluster) -> Self {
        let n = |len: usize| len as u64;
        Self {
            statefulsets: n(cluster.statefulsets.len()),
            pods: n(cluster.pods.len()),
            claims: n(cluster.claims.len()),
            // One PersistentVolume per claim.
            volumes: n(cluster.claims.len()),
            services: n(cluster.services.len()),
            revisions: n(cluster.revisions.len()),
            events: n(cluster.events.len()),
        }
    }
}

/// What the plugin's views must show for the whole loaded cluster (computed from the
/// generated objects with the model), to check that the links survived loading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// Objects per kind.
    pub counts: Counts,
    /// Namespaces.
    pub namespaces: u64,
    /// Pods Ready, counted per StatefulSet (`list`'s `readyReplicas`, summed).
    pub ready_pods: u64,
    /// Orphaned claims (`orphans`' items).
    pub orphans: u64,
}

/// How loading went.
#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    /// The whole cluster at this size.
    pub expected: Expected,
    /// Namespaces loaded now, and skipped because an earlier run had loaded them.
    pub namespaces_loaded: u64,
    pub namespaces_skipped: u64,
    /// Objects created now (namespaces and ServiceAccounts included).
    pub created: u64,
    /// Objects that already existed (409 on create).
    pub existed: u64,
    /// Write requests made (creates and status patches), retries not counted.
    pub writes: u64,
    /// Requests retried after 429/5xx or a connection error.
    pub retries: u64,
    pub elapsed: Duration,
}

impl LoadReport {
    /// Write requests per second over the whole load.
    pub fn writes_per_second(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Default)]
struct Tally {
    created: AtomicU64,
    existed: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
}

impl Tally {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Loads the cluster of `statefulsets` StatefulSets ([`generate_range`] per namespace; the
/// first `n` of a larger size are the same objects, so a cluster grows by loading a larger
/// size), skipping namespaces an earlier run labelled loaded. Prints progress to stderr.
pub async fn load_cluster(
    client: &Client,
    statefulsets: usize,
    opts: LoadOptions,
) -> Result<LoadReport> {
    let started = Instant::now();
    let namespaces = namespace_count(statefulsets);
    let done = loaded_namespaces(client).await?;
    let mut expected = Expected::default();
    let mut todo = Vec::new();
    let mut skipped = 0u64;
    for index in 0..namespaces {
        let range = namespace_range(index, statefulsets);
        let want = range.len();
        let cluster = generate_range(range);
        add_expected(&mut expected, &cluster);
        if done.get(&namespace_name(index)) == Some(&want) {
            skipped += 1;
        } else {
            todo.push(index);
        }
    }
    if skipped > 0 {
        eprintln!(
            "load: {skipped} of {namespaces} namespaces already loaded by an earlier run; loading {}",
            todo.len()
        );
    }
    let tally = Tally::default();
    let limit = Semaphore::new(opts.concurrency.max(1));
    let mut loading = futures::stream::iter(todo.iter().copied())
        .map(|index| load_namespace(client, &limit, &tally, index, statefulsets))
        .buffer_unordered(opts.namespaces_in_flight.max(1));
    let mut finished = 0usize;
    let mut last_note = Instant::now();
    while let Some(result) = loading.next().await {
        result?;
        finished += 1;
        if last_note.elapsed() >= opts.progress_every || finished == todo.len() {
            let writes = Tally::get(&tally.writes);
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "load: {finished}/{} namespaces, {} objects created, {writes} writes in {secs:.0} s ({:.0}/s), {} retried",
                todo.len(),
                Tally::get(&tally.created),
                writes as f64 / secs.max(1e-9),
                Tally::get(&tally.retries),
            );
            last_note = Instant::now();
        }
    }
    Ok(LoadReport {
        expected,
        namespaces_loaded: todo.len() as u64,
        namespaces_skipped: skipped,
        created: Tally::get(&tally.created),
        existed: Tally::get(&tally.existed),
        writes: Tally::get(&tally.writes),
        retries: Tally::get(&tally.retries),
        elapsed: started.elapsed(),
    })
}

fn add_expected(expected: &mut Expected, cluster: &Cluster) {
    expected.counts.add(&Counts::of(cluster));
    expected.namespaces += 1;
    expected.ready_pods += cluster
        .statefulsets
        .iter()
        .map(|sts| {
            u64::try_from(sts_model::rollout::ready_count(sts, &cluster.pods).pods).unwrap_or(0)
        })
        .sum::<u64>();
    expected.orphans +=
        sts_model::orphans::find_orphans(&cluster.statefulsets, &cluster.pods, &cluster.claims)
            .orphans
            .len() as u64;
}

/// Namespaces labelled loaded, with their StatefulSet counts.
async fn loaded_namespaces(client: &Client) -> Result<HashMap<String, usize>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(LOADED_LABEL))
        .await
        .map_err(|e| HarnessError::kube("listing namespaces", e))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|ns| {
            let count = ns
                .metadata
                .labels
                .as_ref()?
                .get(LOADED_LABEL)?
                .parse()
                .ok()?;
            Some((ns.metadata.name?, count))
        })
        .collect())
}

async fn load_namespace(
    client: &Client,
    limit: &Semaphore,
    tally: &Tally,
    index: usize,
    statefulsets: usize,
) -> Result<()> {
    let range = namespace_range(index, statefulsets);
    let count = range.len();
    let cluster = generate_range(range);
    let ns = namespace_name(index);
    let w = Writer {
        client,
        limit,
        tally,
        ns: &ns,
    };
    let namespace: Namespace = from_json(json!({ "metadata": { "name": ns } }))?;
    w.create(&Api::all(client.clone()), namespace, "Namespace")
        .await?;
    let account: ServiceAccount = from_json(json!({ "metadata": { "name": "default" } }))?;
    w.create(&w.api(), account, "ServiceAccount").await?;

    // StatefulSets first: the others link to the UIDs the server gives them.
    let sets: Vec<LocalBoxFuture<'_, Result<(String, String)>>> = cluster
        .statefulsets
        .iter()
        .map(|sts| w.statefulset(sts.clone()).boxed_local())
        .collect();
    let uids: HashMap<String, String> = futures::future::try_join_all(sets)
        .await?
        .into_iter()
        .collect();

    let mut rest: Vec<LocalBoxFuture<'_, Result<()>>> = Vec::new();
    for mut rev in cluster.revisions {
        relink_owners(&mut rev.metadata, &uids);
        rest.push(w.plain(rev, "ControllerRevision").boxed_local());
    }
    for mut pod in cluster.pods {
        relink_owners(&mut pod.metadata, &uids);
        rest.push(w.pod(pod).boxed_local());
    }
    for claim in cluster.claims {
        rest.push(w.claim(claim).boxed_local());
    }
    for svc in cluster.services {
        rest.push(w.plain(svc, "Service").boxed_local());
    }
    for mut event in cluster.events {
        if let Some(uid) = event
            .involved_object
            .name
            .as_ref()
            .and_then(|n| uids.get(n))
        {
            event.involved_object.uid = Some(uid.clone());
        }
        rest.push(w.plain(event, "Event").boxed_local());
    }
    futures::future::try_join_all(rest).await?;

    let api: Api<Namespace> = Api::all(client.clone());
    let patch =
        Patch::Merge(json!({ "metadata": { "labels": { LOADED_LABEL: count.to_string() } } }));
    let pp = PatchParams::default();
    w.request(&format!("labelling namespace {ns}"), || {
        api.patch(&ns, &pp, &patch)
    })
    .await?;
    Ok(())
}

/// Points ownerReferences to StatefulSets at the UIDs the server gave them.
fn relink_owners(meta: &mut ObjectMeta, uids: &HashMap<String, String>) {
    for owner in meta.owner_references.iter_mut().flatten() {
        if owner.kind == "StatefulSet"
            && let Some(uid) = uids.get(&owner.name)
        {
            owner.uid = uid.clone();
        }
    }
}

/// Fields the server sets; a create must not carry them.
fn strip(meta: &mut ObjectMeta) {
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.generation = None;
    meta.managed_fields = None;
}

fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| HarnessError::setup("building an object", e.to_string()))
}

/// Writes of one namespace, each holding a permit of the shared limit while it runs.
struct Writer<'a> {
    client: &'a Client,
    limit: &'a Semaphore,
    tally: &'a Tally,
    ns: &'a str,
}

impl Writer<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns)
    }

    /// One request, retried on 429/5xx and connection errors with backoff.
    async fn request<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, kube::Error>>,
    {
        Tally::bump(&self.tally.writes);
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    Tally::bump(&self.tally.retries);
                    tracing::debug!("{what}: {e}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other.map_err(|e| HarnessError::kube(what.to_owned(), e)),
            }
        }
    }

    /// Creates `obj` (server-set fields stripped); `None` when it already existed.
    async fn create_raw<K>(&self, api: &Api<K>, mut obj: K, kind: &str) -> Result<Option<K>>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    {
        strip(obj.meta_mut());
        let name = obj.meta().name.clone().unwrap_or_default();
        let what = format!("creating {kind} {}/{name}", self.ns);
        let pp = PostParams::default();
        match self.request(&what, || api.create(&pp, &obj)).await {
            Ok(created) => {
                Tally::bump(&self.tally.created);
                Ok(Some(created))
            }
            Err(HarnessError::Kube {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 409 => {
                Tally::bump(&self.tally.existed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn create<K>(&self, api: &Api<K>, obj: K, kind: &str) -> Result<()>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    {
        let _permit = self.permit().await?;
        self.create_raw(api, obj, kind).await.map(|_| ())
    }

    /// The created object's UID, or the existing one's.
    async fn create_uid<K>(&self, api: &Api<K>, obj: K, kind: &str) -> Result<String>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    {
        let name = obj.meta().name.clone().unwrap_or_default();
        let object = match self.create_raw(api, obj, kind).await? {
            Some(created) => created,
            None => {
                self.request(&format!("reading {kind} {}/{name}", self.ns), || {
                    api.get(&name)
                })
                .await?
            }
        };
        object.meta().uid.clone().ok_or_else(|| {
            HarnessError::setup(
                format!("{kind} {}/{name}", self.ns),
                "the server gave no uid",
            )
        })
    }

    async fn patch_status<K>(
        &self,
        api: &Api<K>,
        name: &str,
        kind: &str,
        status: &impl Serialize,
    ) -> Result<()>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
    {
        let patch = Patch::Merge(json!({ "status": status }));
        let pp = PatchParams::default();
        let what = format!("writing the status of {kind} {}/{name}", self.ns);
        self.request(&what, || api.patch_status(name, &pp, &patch))
            .await
            .map(|_| ())
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.limit
            .acquire()
            .await
            .map_err(|e| HarnessError::setup("waiting for a request slot", e.to_string()))
    }

    async fn plain<K>(&self, obj: K, kind: &str) -> Result<()>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Serialize
            + DeserializeOwned
            + Debug,
    {
        self.create(&self.api::<K>(), obj, kind).await
    }

    /// (name, UID) of the StatefulSet, created with its status.
    async fn statefulset(&self, mut sts: StatefulSet) -> Result<(String, String)> {
        let _permit = self.permit().await?;
        let api = self.api::<StatefulSet>();
        let name = sts.metadata.name.clone().unwrap_or_default();
        let status = sts.status.take();
        let uid = self.create_uid(&api, sts, "StatefulSet").await?;
        if let Some(status) = status {
            self.patch_status(&api, &name, "StatefulSet", &status)
                .await?;
        }
        Ok((name, uid))
    }

    async fn pod(&self, mut pod: Pod) -> Result<()> {
        let _permit = self.permit().await?;
        let api = self.api::<Pod>();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.take();
        self.create_raw(&api, pod, "Pod").await?;
        if let Some(status) = status {
            self.patch_status(&api, &name, "Pod", &status).await?;
        }
        Ok(())
    }

    /// The claim with its status, and the PersistentVolume it is bound to.
    async fn claim(&self, mut claim: PersistentVolumeClaim) -> Result<()> {
        let _permit = self.permit().await?;
        let api = self.api::<PersistentVolumeClaim>();
        let name = claim.metadata.name.clone().unwrap_or_default();
        let status = claim.status.take();
        let spec = claim.spec.clone().unwrap_or_default();
        let uid = self
            .create_uid(&api, claim, "PersistentVolumeClaim")
            .await?;
        if let Some(status) = status {
            self.patch_status(&api, &name, "PersistentVolumeClaim", &status)
                .await?;
        }
        let Some(volume) = spec.volume_name else {
            return Ok(());
        };
        let capacity = spec
            .resources
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").cloned())
            .map_or_else(|| "1Gi".to_owned(), |q| q.0);
        let pv: PersistentVolume = from_json(json!({
            "metadata": { "name": volume },
            "spec": {
                "capacity": { "storage": capacity },
                "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".to_owned()]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.storage_class_name,
                "hostPath": { "path": format!("/var/lib/sts-bench/{volume}") },
                "claimRef": {
                    "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                    "namespace": self.ns, "name": name, "uid": uid,
                },
            },
        }))?;
        self.create_raw(&Api::all(self.client.clone()), pv, "PersistentVolume")
            .await?;
        Ok(())
    }
}

/// 429, 5xx and transport failures are worth another try; other answers are final.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::SerdeError(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn owners_point_at_the_servers_uids() {
        let mut meta = ObjectMeta {
            owner_references: Some(vec![
                OwnerReference {
                    kind: "StatefulSet".to_owned(),
                    name: "app-1".to_owned(),
                    uid: "uid-sts-ns-0000-app-1".to_owned(),
                    ..OwnerReference::default()
                },
                OwnerReference {
                    kind: "Pod".to_owned(),
                    name: "app-1".to_owned(),
                    uid: "keep".to_owned(),
                    ..OwnerReference::default()
                },
            ]),
            uid: Some("x".to_owned()),
            resource_version: Some("1".to_owned()),
            ..ObjectMeta::default()
        };
        relink_owners(&mut meta, &[("app-1".to_owned(), "real".to_owned())].into());
        strip(&mut meta);
        let owners = meta.owner_references.unwrap();
        assert_eq!(
            (owners[0].uid.as_str(), owners[1].uid.as_str()),
            ("real", "keep")
        );
        assert_eq!((meta.uid, meta.resource_version), (None, None));
    }

    #[test]
    fn expected_views_of_a_small_cluster() {
        let mut expected = Expected::default();
        for ns in 0..namespace_count(200) {
            add_expected(&mut expected, &generate_range(namespace_range(ns, 200)));
        }
        let whole = sts_model::fixtures::cluster::generate(200);
        assert_eq!(expected.counts.statefulsets, 202);
        assert_eq!(
            expected.counts.total(),
            (whole.objects() + whole.claims.len()) as u64
        );
        // Scale-downs and deleted StatefulSets' claims (the fixture's own test: 54 + 20).
        assert_eq!(expected.orphans, 74);
        assert!(expected.ready_pods < expected.counts.pods);
    }
}
