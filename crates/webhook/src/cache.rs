//! In-memory caches of Services and StatefulSets, fed by cluster-wide watches.
//!
//! The admission path answers "does this Service exist?" from here, so it never waits on the
//! API server just to look; the reconciler reads both stores for its decisions. The watches
//! retry with client-go's backoff forever (0.8 s doubling to 30 s, with jitter): a broken watch
//! makes the cache stale, never the process dead. Each failure is counted in
//! `sts_webhook_errors_total{kind="watch_services"|"watch_statefulsets"}`, and the last one is
//! kept for `/readyz` to quote while the caches have not synced.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use sts_model::cached::{trim_service, trim_statefulset};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Read handles on the Service and StatefulSet caches. Cheap to clone.
#[derive(Clone)]
pub struct Caches {
    pub services: Store<Service>,
    pub statefulsets: Store<StatefulSet>,
    services_ready: Arc<AtomicBool>,
    statefulsets_ready: Arc<AtomicBool>,
    changed: Arc<Notify>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Caches {
    /// Creates the caches and the future that drives both watches.
    ///
    /// The future never finishes on its own (watch errors are retried with backoff and
    /// counted in `metrics`); spawn it and drop it to stop watching.
    pub fn start(
        client: Client,
        metrics: Metrics,
    ) -> (Caches, impl Future<Output = ()> + Send + 'static) {
        let (services, services_writer) = reflector::store::<Service>();
        let (statefulsets, statefulsets_writer) = reflector::store::<StatefulSet>();
        let caches = Caches {
            services,
            statefulsets,
            services_ready: Arc::new(AtomicBool::new(false)),
            statefulsets_ready: Arc::new(AtomicBool::new(false)),
            changed: Arc::new(Notify::new()),
            last_error: Arc::new(Mutex::new(None)),
        };
        let services_fut = drive(
            Api::<Service>::all(client.clone()),
            services_writer,
            caches.services_ready.clone(),
            caches.clone(),
            (metrics.clone(), "watch_services"),
            trim_service,
        );
        let statefulsets_fut = drive(
            Api::<StatefulSet>::all(client),
            statefulsets_writer,
            caches.statefulsets_ready.clone(),
            caches.clone(),
            (metrics, "watch_statefulsets"),
            trim_statefulset,
        );
        let fut = async move {
            future::join(services_fut, statefulsets_fut).await;
        };
        (caches, fut)
    }

    /// True once both initial lists have been received.
    pub fn ready(&self) -> bool {
        self.services_ready.load(Ordering::Acquire)
            && self.statefulsets_ready.load(Ordering::Acquire)
    }

    /// The most recent watch error (kind and message), if a watch has failed since the start.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Waits until both stores hold their initial lists; `false` if the watch future was
    /// dropped first.
    ///
    /// This asks the stores themselves, not [`Caches::ready`]: the reflector marks a store
    /// ready before our stream consumer sees `InitDone` and sets the flags, so checking the
    /// flags right after this returns could still read `false`.
    pub async fn wait_ready(&self) -> bool {
        let services = self.services.wait_until_ready();
        let statefulsets = self.statefulsets.wait_until_ready();
        let (services, statefulsets) = future::join(services, statefulsets).await;
        services.is_ok() && statefulsets.is_ok()
    }

    /// Cached Service `namespace/name`, if the cache has seen it.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    /// Cached StatefulSet `namespace/name`, if the cache has seen it.
    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        self.statefulsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// Resolves after some watch event since the previous call (a permit is stored when nobody
    /// waits, so no change is missed). Used by the reconciler to react to changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Caches built from fixed contents, for tests of code that reads them; the objects are
    /// trimmed as the watches trim them ([`sts_model::cached`]).
    pub fn from_objects(services: Vec<Service>, statefulsets: Vec<StatefulSet>) -> Caches {
        let (services_store, mut sw) = reflector::store::<Service>();
        let (statefulsets_store, mut tw) = reflector::store::<StatefulSet>();
        sw.apply_watcher_event(&watcher::Event::Init);
        for mut s in services {
            trim_service(&mut s);
            sw.apply_watcher_event(&watcher::Event::InitApply(s));
        }
        sw.apply_watcher_event(&watcher::Event::InitDone);
        tw.apply_watcher_event(&watcher::Event::Init);
        for mut s in statefulsets {
            trim_statefulset(&mut s);
            tw.apply_watcher_event(&watcher::Event::InitApply(s));
        }
        tw.apply_watcher_event(&watcher::Event::InitDone);
        Caches {
            services: services_store,
            statefulsets: statefulsets_store,
            services_ready: Arc::new(AtomicBool::new(true)),
            statefulsets_ready: Arc::new(AtomicBool::new(true)),
            changed: Arc::new(Notify::new()),
            last_error: Arc::new(Mutex::new(None)),
        }
    }
}

/// Runs one reflector until the process stops: list+watch, backoff on errors, keep only the
/// fields the webhook reads (`trim`), mark ready after the first complete list, and wake the reconciler.
async fn drive<K, F>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    ready: Arc<AtomicBool>,
    caches: Caches,
    (metrics, error_kind): (Metrics, &'static str),
    mut trim: F,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    F: FnMut(&mut K) + Send + 'static,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(move |obj: &mut K| trim(obj));
    let stream = reflector::reflector(writer, stream);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                if !ready.swap(true, Ordering::AcqRel) {
                    tracing::info!(kind = %kind, "cache synced");
                }
                caches.changed.notify_one();
            }
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => caches.changed.notify_one(),
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
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

    #[test]
    fn lookups_are_by_namespace_and_name() {
        let caches = Caches::from_objects(vec![svc("a", "web"), svc("b", "db")], vec![]);
        assert!(caches.ready());
        assert!(caches.service("a", "web").is_some());
        assert!(caches.service("b", "web").is_none());
        assert!(caches.service("b", "db").is_some());
        assert!(caches.statefulset("a", "web").is_none());
    }

    fn caches_with_flags_unset(
        services: Store<Service>,
        statefulsets: Store<StatefulSet>,
    ) -> Caches {
        Caches {
            services,
            statefulsets,
            services_ready: Arc::new(AtomicBool::new(false)),
            statefulsets_ready: Arc::new(AtomicBool::new(false)),
            changed: Arc::new(Notify::new()),
            last_error: Arc::new(Mutex::new(None)),
        }
    }

    /// The reflector marks its store ready before our consumer sets the flags; the
    /// reconciler must trust the stores (it once gave up for good in that gap).
    #[tokio::test]
    async fn wait_ready_trusts_the_stores_not_the_flags() {
        let (services, mut sw) = reflector::store::<Service>();
        let (statefulsets, mut tw) = reflector::store::<StatefulSet>();
        sw.apply_watcher_event(&watcher::Event::Init);
        sw.apply_watcher_event(&watcher::Event::InitDone);
        tw.apply_watcher_event(&watcher::Event::Init);
        tw.apply_watcher_event(&watcher::Event::InitDone);
        let caches = caches_with_flags_unset(services, statefulsets);
        assert!(!caches.ready(), "flags are not set yet in this gap");
        assert!(caches.wait_ready().await);
    }

    #[tokio::test]
    async fn wait_ready_is_false_when_the_watches_are_gone() {
        let (services, sw) = reflector::store::<Service>();
        let (statefulsets, tw) = reflector::store::<StatefulSet>();
        drop((sw, tw));
        let caches = caches_with_flags_unset(services, statefulsets);
        assert!(!caches.wait_ready().await);
    }
}
