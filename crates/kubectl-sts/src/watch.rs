//! Following objects live, for `--watch`: one watch per kind (LIST, then WATCH from its
//! resourceVersion, re-listing when the server says the version is too old — kube's
//! [`watcher`]), each feeding a local store; the command re-reads the stores after every
//! change. Nothing is polled.
//!
//! A watch that the server refuses for good (401, 403, or a kind it does not serve) ends the
//! command with that error; one that breaks on the way (a timeout, a restart of the apiserver) is
//! resumed with backoff, as kubectl's watches are.

use std::fmt::Debug;
use std::hash::Hash;

use futures::StreamExt;
use kube::Resource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::collect::map_kube_error;
use crate::error::{Error, Scope};

/// The watches of one command; dropping it stops them.
pub struct Follow {
    changes: mpsc::Receiver<Result<(), Error>>,
    sender: mpsc::Sender<Result<(), Error>>,
    tasks: Vec<JoinHandle<()>>,
    server: String,
    /// Ctrl-C, kept until asked for: a SIGINT that arrives while the command renders or reads
    /// (not awaiting) is not lost, as it would be with a new `ctrl_c()` future per wait.
    interrupt: std::sync::Arc<tokio::sync::Notify>,
}

impl Follow {
    /// No watches yet; `server` names the API server in errors.
    pub fn new(server: &str) -> Self {
        // One pending wake-up is enough: the stores hold every change already.
        let (sender, changes) = mpsc::channel(1);
        let interrupt = std::sync::Arc::new(tokio::sync::Notify::new());
        let notify = interrupt.clone();
        let ctrl_c = tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                // Stores a permit when nobody waits.
                notify.notify_one();
            }
        });
        Self {
            changes,
            sender,
            tasks: vec![ctrl_c],
            server: server.to_string(),
            interrupt,
        }
    }

    /// Watch `api` with `config` (label/field selectors) into a store that the caller reads.
    /// The resource's plural and `scope` name the watch in logs and errors (`-v` logs each one). With
    /// `required = false`, a refused watch (e.g. events forbidden by RBAC) only leaves its store
    /// empty.
    pub fn watch<K>(
        &mut self,
        api: kube::Api<K>,
        config: watcher::Config,
        scope: Scope,
        required: bool,
    ) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let resource = K::plural(&K::DynamicType::default()).to_string();
        debug!(
            verb = "watch",
            resource = %resource,
            scope = %scope,
            labels = config.label_selector.as_deref().unwrap_or(""),
            fields = config.field_selector.as_deref().unwrap_or(""),
            "API request"
        );
        let (store, writer) = reflector::store::<K>();
        let sender = self.sender.clone();
        let server = self.server.clone();
        let stream = watcher(api, config).default_backoff().reflect(writer);
        self.tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(_) => {
                        // Full means a wake-up is pending already; closed means the command ended.
                        let _ = sender.try_send(Ok(()));
                    }
                    Err(e) => match refusal(e, &resource, &scope, &server) {
                        Ok(transient) => {
                            debug!(resource, "watch interrupted, resuming: {transient}")
                        }
                        Err(refused) if required => {
                            let _ = sender.send(Err(refused)).await;
                            return;
                        }
                        Err(refused) => {
                            debug!(%resource, "watch refused, going on without it: {refused}");
                            return;
                        }
                    },
                }
            }
        }));
        store
    }

    /// Ctrl-C, for a caller's own `select!`: `notified()` on it returns once SIGINT has
    /// arrived (also when it arrived before).
    pub fn interrupt(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.interrupt.clone()
    }

    /// Wait for the next change in any store, or the error of a refused watch.
    pub async fn changed(&mut self) -> Result<(), Error> {
        match self.changes.recv().await {
            Some(result) => result,
            None => Err(Error::Other("every watch ended".to_string())),
        }
    }

    /// Wait until every store in `stores` has had its first complete LIST (answers are only
    /// given from complete lists). `Ok(false)` on Ctrl-C.
    pub async fn listed(&mut self, stores: &[&dyn Listed]) -> Result<bool, Error> {
        let all = async {
            for store in stores {
                store.wait().await;
            }
        };
        let mut all = std::pin::pin!(all);
        let interrupt = self.interrupt.clone();
        loop {
            tokio::select! {
                // A refused watch queues its error, then ends, which drops its store's writer
                // and so also ends that store's wait: the error must be seen first, or the
                // command goes on with an empty store (and says the StatefulSet was deleted).
                biased;
                changed = self.changed() => changed?,
                () = &mut all => return Ok(true),
                () = interrupt.notified() => return Ok(false),
            }
        }
    }

    /// The next time to re-render: a change (coalesced with the changes of the next
    /// [`COALESCE`], so a burst of events gives one render), or `every` passing with none
    /// (time-dependent columns such as a stalled rollout), or Ctrl-C ([`Wake::Interrupted`]).
    pub async fn next(&mut self, every: std::time::Duration) -> Result<Wake, Error> {
        let interrupt = self.interrupt.clone();
        tokio::select! {
            changed = self.changed() => changed?,
            () = tokio::time::sleep(every) => return Ok(Wake::Changed),
            () = interrupt.notified() => return Ok(Wake::Interrupted),
        }
        let quiet = tokio::time::sleep(COALESCE);
        let mut quiet = std::pin::pin!(quiet);
        loop {
            tokio::select! {
                () = &mut quiet => return Ok(Wake::Changed),
                changed = self.changed() => changed?,
                () = interrupt.notified() => return Ok(Wake::Interrupted),
            }
        }
    }
}

/// How long [`Follow::next`] waits for more changes after one, so a burst renders once.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(150);

/// Why [`Follow::next`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Changed,
    Interrupted,
}

/// A store whose first LIST can be awaited, whatever its kind.
pub trait Listed {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
}

impl<K> Listed for Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async move {
            let _ = self.wait_until_ready().await;
        })
    }
}

/// The objects of a store, cloned (the model's functions take slices of objects).
pub fn snapshot<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|o| K::clone(o)).collect()
}

impl Drop for Follow {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `Err` with the mapped error when the server refuses the watch for good; `Ok` with the
/// message when it only broke and is resumed.
fn refusal(
    err: watcher::Error,
    resource: &str,
    scope: &Scope,
    server: &str,
) -> Result<String, Error> {
    let (verb, inner) = match err {
        watcher::Error::InitialListFailed(e) => ("list", e),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => ("watch", e),
        other => return Ok(other.to_string()),
    };
    match &inner {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 || s.code == 404 => Err(
            map_kube_error(inner, verb, resource, scope.clone(), server, None),
        ),
        _ => Ok(inner.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    /// The race behind a flaky e2e failure (permissions `watching_needs_the_watch_rules`):
    /// `inspect -w` without `list statefulsets` said "was deleted while watching it" instead of
    /// the Forbidden error, whenever the ended store won the `select!` over the queued error.
    /// Before `biased`, about half of these rounds returned `Ok(true)`.
    #[tokio::test]
    async fn a_refused_watch_wins_over_its_ended_store() {
        for round in 0..200 {
            let mut follow = Follow::new("https://127.0.0.1:1");
            let (store, writer) = reflector::store::<Pod>();
            follow
                .sender
                .try_send(Err(Error::Other("refused".to_string())))
                .unwrap_or_else(|_| panic!("round {round}: channel full"));
            drop(writer);
            match follow.listed(&[&store]).await {
                Err(Error::Other(m)) => assert_eq!(m, "refused"),
                other => panic!("round {round}: {:?}", other.map_err(|e| e.to_string())),
            }
        }
    }
}
