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
}

impl Follow {
    /// No watches yet; `server` names the API server in errors.
    pub fn new(server: &str) -> Self {
        // One pending wake-up is enough: the stores hold every change already.
        let (sender, changes) = mpsc::channel(1);
        Self {
            changes,
            sender,
            tasks: Vec::new(),
            server: server.to_string(),
        }
    }

    /// Watch `api` with `config` (label/field selectors) into a store that the caller reads.
    /// `resource` and `scope` name the watch in logs and errors (`-v` logs each one). With
    /// `required = false`, a refused watch (e.g. events forbidden by RBAC) only leaves its store
    /// empty.
    pub fn watch<K>(
        &mut self,
        api: kube::Api<K>,
        config: watcher::Config,
        resource: &'static str,
        scope: Scope,
        required: bool,
    ) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        debug!(
            verb = "watch",
            resource,
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
                    Err(e) => match refusal(e, resource, &scope, &server) {
                        Ok(transient) => {
                            debug!(resource, "watch interrupted, resuming: {transient}")
                        }
                        Err(refused) if required => {
                            let _ = sender.send(Err(refused)).await;
                            return;
                        }
                        Err(refused) => {
                            debug!(resource, "watch refused, going on without it: {refused}");
                            return;
                        }
                    },
                }
            }
        }));
        store
    }

    /// Wait for the next change in any store, or the error of a refused watch.
    pub async fn changed(&mut self) -> Result<(), Error> {
        match self.changes.recv().await {
            Some(result) => result,
            None => Err(Error::Other("every watch ended".to_string())),
        }
    }
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
    resource: &'static str,
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
