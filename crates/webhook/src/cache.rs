//! In-memory caches of Services and StatefulSets, fed by cluster-wide watches.
//!
//! The admission path answers "does this Service exist?" from here, so it never waits on the
//! API server just to look; the reconciler reads both stores for its decisions. The watches
//! retry with client-go's backoff forever (0.8 s doubling to 30 s, with jitter): a broken watch
//! makes the cache stale, never the process dead. Each failure is counted in
//! `sts_webhook_errors_total{kind="watch_services"|"watch_statefulsets"}`, and the last one is
//! kept for `/readyz` to quote while the caches have not synced.
//!
//! The caches hold every Service and StatefulSet of the cluster, so they keep the webhook's own
//! compact types ([`sts_model::cached`]), not k8s-openapi's: each watch event's object is
//! reduced to a [`CachedService`] or [`CachedStatefulSet`] and dropped before the next one is
//! read. The stores follow kube's reflector: a (re-)list fills a buffer that replaces the
//! contents at its end, so readers never see a half-listed cache.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use sts_model::cached::{CachedService, CachedStatefulSet};
use sts_model::headless::{ServiceFacts, StatefulSetFacts};
use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;

/// An object a [`Store`] can hold: it says where it lives.
pub trait Keyed {
    /// `(namespace, name)`; `None` for an object without a name, which is not stored. A
    /// cluster-scoped object has the namespace `""`.
    fn key(&self) -> Option<(&str, &str)>;
}

impl Keyed for CachedService {
    fn key(&self) -> Option<(&str, &str)> {
        Some((
            ServiceFacts::namespace(self).unwrap_or_default(),
            ServiceFacts::name(self)?,
        ))
    }
}

impl Keyed for CachedStatefulSet {
    fn key(&self) -> Option<(&str, &str)> {
        Some((
            StatefulSetFacts::namespace(self).unwrap_or_default(),
            StatefulSetFacts::name(self)?,
        ))
    }
}

/// Objects by namespace, then name: looked up with two `&str`s, without building a key.
type Objects<T> = HashMap<Box<str>, HashMap<Box<str>, Arc<T>>>;

fn insert<T: Keyed>(objects: &mut Objects<T>, obj: T) {
    let Some((namespace, name)) = obj.key() else {
        return;
    };
    let name = Box::from(name);
    let in_namespace = match objects.get_mut(namespace) {
        Some(m) => m,
        None => objects.entry(Box::from(namespace)).or_default(),
    };
    in_namespace.insert(name, Arc::new(obj));
}

/// The objects for writing; a panic of another writer cannot leave them half-changed (each
/// change is one map operation), so a poisoned lock is taken as it is.
fn write<T>(objects: &RwLock<Objects<T>>) -> RwLockWriteGuard<'_, Objects<T>> {
    objects.write().unwrap_or_else(PoisonError::into_inner)
}

/// Read handle on one cache. Cheap to clone.
pub struct Store<T> {
    objects: Arc<RwLock<Objects<T>>>,
    ready: watch::Receiver<bool>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            objects: self.objects.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T> Store<T> {
    /// The cached object `namespace/name`, if the cache has seen it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.get(namespace)?.get(name).cloned()
    }

    /// Every cached object, in no particular order.
    pub fn state(&self) -> Vec<Arc<T>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.values().flat_map(|m| m.values().cloned()).collect()
    }

    /// How many objects the cache holds.
    pub fn len(&self) -> usize {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the first complete list has been stored.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first complete list has been stored; `false` if the [`Writer`] was
    /// dropped before.
    pub async fn wait_ready(&self) -> bool {
        self.ready.clone().wait_for(|ready| *ready).await.is_ok()
    }
}

/// The one writer of a [`Store`], fed with watch events.
pub struct Writer<T> {
    objects: Arc<RwLock<Objects<T>>>,
    /// What the current (re-)list has delivered so far; `None` outside a list.
    buffer: Option<Objects<T>>,
    ready: watch::Sender<bool>,
}

/// A new, empty cache: the read handle and its writer.
pub fn store<T>() -> (Store<T>, Writer<T>) {
    let objects = Arc::new(RwLock::new(HashMap::new()));
    let (ready_tx, ready_rx) = watch::channel(false);
    (
        Store {
            objects: objects.clone(),
            ready: ready_rx,
        },
        Writer {
            objects,
            buffer: None,
            ready: ready_tx,
        },
    )
}

impl<T: Keyed> Writer<T> {
    /// Applies one watch event, already reduced to the cached type. `Init` starts a list into
    /// a buffer, which `InitDone` swaps in whole (objects not listed again are gone), as kube's
    /// reflector does; the first `InitDone` makes the store ready.
    pub fn apply(&mut self, event: watcher::Event<T>) {
        match event {
            watcher::Event::Apply(obj) => insert(&mut write(&self.objects), obj),
            watcher::Event::Delete(obj) => {
                if let Some((namespace, name)) = obj.key() {
                    let mut objects = write(&self.objects);
                    if let Some(in_namespace) = objects.get_mut(namespace) {
                        in_namespace.remove(name);
                        if in_namespace.is_empty() {
                            objects.remove(namespace);
                        }
                    }
                }
            }
            watcher::Event::Init => self.buffer = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                insert(self.buffer.get_or_insert_default(), obj);
            }
            watcher::Event::InitDone => {
                let listed = self.buffer.take().unwrap_or_default();
                // The old contents are dropped after the lock is released.
                let old = std::mem::replace(&mut *write(&self.objects), listed);
                drop(old);
                self.ready.send_replace(true);
            }
        }
    }
}

/// Read handles on the Service and StatefulSet caches. Cheap to clone.
#[derive(Clone)]
pub struct Caches {
    pub services: Store<CachedService>,
    pub statefulsets: Store<CachedStatefulSet>,
    changed: Arc<Notify>,
    last_error: Arc<Mutex<Option<String>>>,
}

/// Objects per page of the caches' LISTs (`--watch-page-size`). A page is held whole, as
/// full objects, until each is reduced to its cached form, and the allocator keeps the peak:
/// at 10,120 StatefulSets and 11,122 Services, pages of client-go's 500 left the webhook at
/// 52.9 MiB once synced, pages of 100 at 30.4 MiB, synced in 1.06 s and 1.20 s (`make
/// bench-webhook-cache`, README "Performance").
pub const DEFAULT_WATCH_PAGE_SIZE: u32 = 100;

impl Caches {
    fn new(services: Store<CachedService>, statefulsets: Store<CachedStatefulSet>) -> Caches {
        Caches {
            services,
            statefulsets,
            changed: Arc::new(Notify::new()),
            last_error: Arc::new(Mutex::new(None)),
        }
    }

    /// Creates the caches and the future that drives both watches, listing in pages of
    /// [`DEFAULT_WATCH_PAGE_SIZE`] objects.
    ///
    /// The future never finishes on its own (watch errors are retried with backoff and
    /// counted in `metrics`); spawn it and drop it to stop watching.
    pub fn start(
        client: Client,
        metrics: Metrics,
    ) -> (Caches, impl Future<Output = ()> + Send + 'static) {
        Self::start_with_page_size(client, metrics, DEFAULT_WATCH_PAGE_SIZE)
    }

    /// [`Caches::start`] whose initial (and re-)lists ask for `page_size` objects per page
    /// (the LIST's `limit`; `--watch-page-size`).
    pub fn start_with_page_size(
        client: Client,
        metrics: Metrics,
        page_size: u32,
    ) -> (Caches, impl Future<Output = ()> + Send + 'static) {
        let config = watcher::Config::default().page_size(page_size);
        let (services, services_writer) = store();
        let (statefulsets, statefulsets_writer) = store();
        let caches = Caches::new(services, statefulsets);
        let services_fut = drive(
            Api::<Service>::all(client.clone()),
            services_writer,
            caches.clone(),
            (metrics.clone(), "watch_services"),
            (config.clone(), CachedService::from),
        );
        let statefulsets_fut = drive(
            Api::<StatefulSet>::all(client),
            statefulsets_writer,
            caches.clone(),
            (metrics, "watch_statefulsets"),
            (config, CachedStatefulSet::from),
        );
        let fut = async move {
            future::join(services_fut, statefulsets_fut).await;
        };
        (caches, fut)
    }

    /// True once both initial lists have been stored.
    pub fn ready(&self) -> bool {
        self.services.is_ready() && self.statefulsets.is_ready()
    }

    /// The most recent watch error (kind and message), if a watch has failed since the start.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Waits until both stores hold their initial lists; `false` if the watch future was
    /// dropped first.
    pub async fn wait_ready(&self) -> bool {
        let (services, statefulsets) =
            future::join(self.services.wait_ready(), self.statefulsets.wait_ready()).await;
        services && statefulsets
    }

    /// Cached Service `namespace/name`, if the cache has seen it.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<CachedService>> {
        self.services.get(namespace, name)
    }

    /// Cached StatefulSet `namespace/name`, if the cache has seen it.
    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<CachedStatefulSet>> {
        self.statefulsets.get(namespace, name)
    }

    /// Resolves after some watch event since the previous call (a permit is stored when nobody
    /// waits, so no change is missed). Used by the reconciler to react to changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Caches built from fixed contents, for tests of code that reads them; the objects are
    /// reduced as the watches reduce them ([`sts_model::cached`]).
    pub fn from_objects(services: Vec<Service>, statefulsets: Vec<StatefulSet>) -> Caches {
        fn listed<K, T: Keyed>(objects: Vec<K>, convert: fn(K) -> T) -> Store<T> {
            let (store, mut writer) = store();
            writer.apply(watcher::Event::Init);
            for obj in objects {
                writer.apply(watcher::Event::InitApply(convert(obj)));
            }
            writer.apply(watcher::Event::InitDone);
            store
        }
        Caches::new(
            listed(services, CachedService::from),
            listed(statefulsets, CachedStatefulSet::from),
        )
    }
}

/// The watch event `event` with its object reduced by `convert`.
fn reduced<K, T>(event: watcher::Event<K>, convert: fn(K) -> T) -> watcher::Event<T> {
    match event {
        watcher::Event::Apply(obj) => watcher::Event::Apply(convert(obj)),
        watcher::Event::Delete(obj) => watcher::Event::Delete(convert(obj)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(obj) => watcher::Event::InitApply(convert(obj)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// Runs one watch until the process stops: list+watch, backoff on errors, reduce each object
/// to what the webhook reads (`convert`), store it, log the first complete list, and wake the
/// reconciler.
async fn drive<K, T>(
    api: Api<K>,
    mut writer: Writer<T>,
    caches: Caches,
    (metrics, error_kind): (Metrics, &'static str),
    (config, convert): (watcher::Config, fn(K) -> T),
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
    T: Keyed,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                let (init_done, changed) = match &event {
                    watcher::Event::InitDone => (true, true),
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) => (false, true),
                    watcher::Event::Init | watcher::Event::InitApply(_) => (false, false),
                };
                let was_ready = *writer.ready.borrow();
                writer.apply(reduced(event, convert));
                if init_done && !was_ready {
                    tracing::info!(kind = %kind, "cache synced");
                }
                if changed {
                    caches.changed.notify_one();
                }
            }
            // The backoff above already delays the retry; say why the cache is stale.
            Err(err) => {
                metrics.error(error_kind);
                let error = crate::error_chain(&err);
                tracing::warn!(kind = %kind, %error, "watch failed; retrying");
                if let Ok(mut last) = caches.last_error.lock() {
                    *last = Some(format!("{kind}: {error}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(ns: &str, name: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cached(ns: &str, name: &str) -> CachedService {
        CachedService::from(svc(ns, name))
    }

    fn names(store: &Store<CachedService>) -> Vec<String> {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter_map(|s| s.key().map(|(ns, n)| format!("{ns}/{n}")))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn lookups_are_by_namespace_and_name() {
        let caches = Caches::from_objects(vec![svc("a", "web"), svc("b", "db")], vec![]);
        assert!(caches.ready());
        assert!(caches.service("a", "web").is_some());
        assert!(caches.service("b", "web").is_none());
        assert!(caches.service("b", "db").is_some());
        assert!(caches.statefulset("a", "web").is_none());
        assert_eq!(caches.services.len(), 2);
    }

    /// Events change the store as kube's reflector changes its own: a re-list replaces the
    /// contents only when it is complete, and what it did not list is gone.
    #[test]
    fn a_relist_replaces_the_contents_when_it_is_complete() {
        let (store, mut writer) = store::<CachedService>();
        assert!(!store.is_ready());
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(cached("a", "web")));
        assert!(store.is_empty() && !store.is_ready(), "not before InitDone");
        writer.apply(watcher::Event::InitApply(cached("a", "db")));
        writer.apply(watcher::Event::InitDone);
        assert!(store.is_ready());
        assert_eq!(names(&store), ["a/db", "a/web"]);

        writer.apply(watcher::Event::Apply(cached("b", "web")));
        writer.apply(watcher::Event::Delete(cached("a", "db")));
        writer.apply(watcher::Event::Delete(cached("c", "none")));
        assert_eq!(names(&store), ["a/web", "b/web"]);

        // The watch broke and lists again: the old contents stay readable until it is done.
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(cached("b", "web")));
        assert_eq!(names(&store), ["a/web", "b/web"]);
        writer.apply(watcher::Event::InitApply(cached("c", "new")));
        writer.apply(watcher::Event::InitDone);
        assert_eq!(names(&store), ["b/web", "c/new"]);
        assert!(store.get("a", "web").is_none() && store.get("c", "new").is_some());

        // A nameless object is not stored.
        writer.apply(watcher::Event::Apply(CachedService::from(
            Service::default(),
        )));
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn wait_ready_returns_once_listed() {
        let (store, mut writer) = store::<CachedService>();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.wait_ready().await }
        });
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitDone);
        assert!(waiting.await.unwrap());
        // Also after the writer is gone, once it was ready.
        drop(writer);
        assert!(store.wait_ready().await);
    }

    #[tokio::test]
    async fn wait_ready_is_false_when_the_watches_are_gone() {
        let (services, sw) = store::<CachedService>();
        let (statefulsets, tw) = store::<CachedStatefulSet>();
        drop((sw, tw));
        let caches = Caches::new(services, statefulsets);
        assert!(!caches.ready());
        assert!(!caches.wait_ready().await);
    }
}
