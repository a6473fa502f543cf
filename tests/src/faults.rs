//! Faults between sts-webhook and a real API server, for tests/tests/api_faults.rs.
//!
//! - [`Relay`]: a loopback TCP relay between a client and one or more backends. The webhook's
//!   kubeconfig points at it instead of the API server; [`Relay::cut`] closes every relayed
//!   connection and from then on closes each new one at once (the API server is unreachable,
//!   and every attempt to reach it is counted), [`Relay::restore`] relays again. With two
//!   backends it is a connection-level load balancer, like kube-proxy in front of two webhook
//!   replicas: [`Relay::set_backends`] takes one out as an endpoint update would.
//! - [`FaultWebhook`]: a validating admission webhook over TLS that records every request the
//!   API server sends it and, while armed with a [`Fault`], refuses them with that status. The
//!   API server passes a webhook's refusal on to its client with the code, reason, message and
//!   `details.retryAfterSeconds` (also as the `Retry-After` header), so the client meets a real
//!   409, 429 or 500 from the real API server (k8s.io/apiserver
//!   pkg/admission/plugin/webhook/errors/statuserror.go, and pkg/endpoints/handlers/
//!   responsewriters/writers.go for the header).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_rustls::TlsAcceptor;

use crate::certs::CertAuthority;
use crate::error::{HarnessError, Result};

/// A loopback TCP relay on `127.0.0.1:port()` to backends on 127.0.0.1. Stops when dropped.
pub struct Relay {
    port: u16,
    shared: Arc<RelayShared>,
    task: JoinHandle<()>,
}

struct RelayShared {
    backends: Mutex<Vec<u16>>,
    next: AtomicUsize,
    cut: AtomicBool,
    relayed: AtomicU64,
    dropped: AtomicU64,
    live: Mutex<Vec<AbortHandle>>,
}

impl Relay {
    /// Relays each new connection to the next of `backends` in turn.
    pub async fn start(backends: Vec<u16>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("cannot bind the relay", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("cannot read the relay's address", e))?
            .port();
        let shared = Arc::new(RelayShared {
            backends: Mutex::new(backends),
            next: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            relayed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            live: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accept_shared.take(client);
            }
        });
        Ok(Self { port, shared, task })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`, for a kubeconfig.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Closes every relayed connection; new ones are closed at once until [`Relay::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for task in lock(&self.shared.live).drain(..) {
            task.abort();
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Where new connections go from now on; open ones stay where they are.
    pub fn set_backends(&self, backends: Vec<u16>) {
        *lock(&self.shared.backends) = backends;
    }

    /// Connections relayed to a backend so far.
    pub fn relayed(&self) -> u64 {
        self.shared.relayed.load(Ordering::SeqCst)
    }

    /// Connections closed at once while cut (attempts to reach an unreachable server).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl RelayShared {
    fn take(self: &Arc<Self>, mut client: TcpStream) {
        if self.cut.load(Ordering::SeqCst) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let backend = {
            let backends = lock(&self.backends);
            if backends.is_empty() {
                self.dropped.fetch_add(1, Ordering::SeqCst);
                return;
            }
            backends[self.next.fetch_add(1, Ordering::SeqCst) % backends.len()]
        };
        self.relayed.fetch_add(1, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", backend)).await {
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        let mut live = lock(&self.live);
        live.retain(|t| !t.is_finished());
        live.push(task.abort_handle());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the [`FaultWebhook`] refuses a request: the `status` of its AdmissionReview answer.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP code the API server answers with (409, 429, 500…).
    pub code: u16,
    /// `reason` of the Status (`Conflict`, `TooManyRequests`, `InternalError`…).
    pub reason: String,
    pub message: String,
    /// `details.retryAfterSeconds`; 0 for none.
    pub retry_after_seconds: u32,
}

/// One admission request the API server sent to the [`FaultWebhook`].
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub operation: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `userInfo.username` of the request's author.
    pub user: String,
    pub dry_run: bool,
    /// Whether it was refused (a [`Fault`] was armed).
    pub refused: bool,
}

/// A validating admission webhook on a free loopback port (see the module docs). Stops when
/// dropped; its configuration is removed by [`FaultWebhook::unregister`].
pub struct FaultWebhook {
    port: u16,
    ca_pem: String,
    state: Arc<FaultState>,
    task: JoinHandle<()>,
    registered: Mutex<Option<String>>,
}

#[derive(Default)]
struct FaultState {
    /// By object name ([`ANY`] for every object): the fault, and how many more requests it
    /// refuses (`None`: all).
    faults: Mutex<HashMap<String, (Fault, Option<u32>)>>,
    seen: Mutex<Vec<Seen>>,
}

/// The name under which a fault applies to every object.
pub const ANY: &str = "*";

impl FaultWebhook {
    /// Serves with a certificate for 127.0.0.1 signed by `ca` (files in `dir`).
    pub async fn start(ca: &CertAuthority, dir: &Path) -> Result<Self> {
        let serving = ca.serving(dir, "fault-webhook", "fault-webhook", &["127.0.0.1"])?;
        let tls = |context: &str| {
            let context = context.to_owned();
            move |source| HarnessError::Tls { context, source }
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls("protocol versions"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(serving.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(serving.key_der.clone())),
        )
        .map_err(tls("the fault webhook's certificate"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("cannot bind the fault webhook", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("cannot read the fault webhook's address", e))?
            .port();
        let state = Arc::new(FaultState::default());
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = serve_state.clone();
                tokio::spawn(serve_connection(acceptor, tcp, peer, state));
            }
        });
        Ok(Self {
            port,
            ca_pem: ca.issued.cert_pem.clone(),
            state,
            task,
            registered: Mutex::new(None),
        })
    }

    /// Refuse every request for objects named `name` ([`ANY`]: every object) with `fault`
    /// from now on.
    pub fn arm(&self, name: &str, fault: Fault) {
        lock(&self.state.faults).insert(name.to_owned(), (fault, None));
    }

    /// Like [`FaultWebhook::arm`], for the next `times` requests only.
    pub fn arm_times(&self, name: &str, fault: Fault, times: u32) {
        lock(&self.state.faults).insert(name.to_owned(), (fault, Some(times)));
    }

    /// Allow every request from now on.
    pub fn disarm(&self) {
        lock(&self.state.faults).clear();
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// Registers ValidatingWebhookConfiguration `name` for `rules` (admissionregistration's
    /// RuleWithOperations list) in namespaces labelled `label` (failurePolicy Fail, 5 s).
    pub async fn register(
        &self,
        client: &kube::Client,
        name: &str,
        (key, value): (&str, &str),
        rules: Value,
    ) -> Result<()> {
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "sts-e2e.dev/suite": "e2e" } },
            "webhooks": [{
                "name": "faults.sts-e2e.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": {
                    "url": format!("https://127.0.0.1:{}/validate", self.port),
                    "caBundle": ca_bundle,
                },
                "namespaceSelector": { "matchLabels": { key: value } },
                "rules": rules,
            }],
        }))
        .map_err(|e| {
            HarnessError::setup("building the fault webhook's configuration", e.to_string())
        })?;
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &config)
            .await
            .map_err(|e| HarnessError::kube(format!("registering {name}"), e))?;
        *lock(&self.registered) = Some(name.to_owned());
        Ok(())
    }

    /// Deletes the configuration [`FaultWebhook::register`] made.
    pub async fn unregister(&self, client: &kube::Client) -> Result<()> {
        let name = lock(&self.registered).take();
        if let Some(name) = name {
            Api::<ValidatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| HarnessError::kube(format!("deleting {name}"), e))?;
        }
        Ok(())
    }
}

impl Drop for FaultWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    state: Arc<FaultState>,
) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        tracing::debug!(%peer, "fault webhook: TLS handshake failed");
        return;
    };
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let state = state.clone();
        async move {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Err(e),
            };
            let answer = answer(&state, &body);
            let response = hyper::Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(answer.to_string())))
                .unwrap_or_default();
            Ok::<_, hyper::Error>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
}

/// Records the review and answers it: allowed, or refused with the armed fault.
fn answer(state: &FaultState, body: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let request = &review["request"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let name = text(&request["name"]);
    let fault = {
        let mut faults = lock(&state.faults);
        let key = [name.as_str(), ANY]
            .into_iter()
            .find(|k| faults.contains_key(*k));
        match key.and_then(|k| faults.get_mut(k).map(|entry| (k.to_owned(), entry))) {
            Some((key, (fault, left))) => {
                let fault = fault.clone();
                let used_up = match left {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n == 0
                    }
                    None => false,
                };
                if used_up {
                    faults.remove(&key);
                }
                Some(fault)
            }
            None => None,
        }
    };
    lock(&state.seen).push(Seen {
        at: Instant::now(),
        operation: text(&request["operation"]),
        kind: text(&request["kind"]["kind"]),
        namespace: text(&request["namespace"]),
        name,
        user: text(&request["userInfo"]["username"]),
        dry_run: request["dryRun"].as_bool().unwrap_or(false),
        refused: fault.is_some(),
    });
    let mut response = json!({ "uid": request["uid"], "allowed": fault.is_none() });
    if let Some(f) = fault {
        let mut status = json!({
            "status": "Failure", "code": f.code, "reason": f.reason, "message": f.message,
        });
        if f.retry_after_seconds > 0 {
            status["details"] = json!({ "retryAfterSeconds": f.retry_after_seconds });
        }
        response["status"] = status;
    }
    json!({
        "apiVersion": review["apiVersion"].as_str().unwrap_or("admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_fault_refuses_with_its_status_and_everything_is_recorded() {
        let state = FaultState::default();
        let review = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"CREATE","kind":{"kind":"Service"},"namespace":"ns","name":"web","userInfo":{"username":"system:serviceaccount:sts-webhook:sts-webhook"},"dryRun":false}}"#;
        assert_eq!(
            answer(&state, review)["response"],
            json!({"uid": "u1", "allowed": true})
        );
        lock(&state.faults).insert(
            "web".to_owned(),
            (
                Fault {
                    code: 429,
                    reason: "TooManyRequests".into(),
                    message: "slow down".into(),
                    retry_after_seconds: 3,
                },
                Some(1),
            ),
        );
        let refused = answer(&state, review);
        assert_eq!(refused["response"]["allowed"], false);
        assert_eq!(refused["response"]["status"]["code"], 429);
        assert_eq!(
            refused["response"]["status"]["details"]["retryAfterSeconds"],
            3
        );
        assert_eq!(
            answer(&state, review)["response"]["allowed"],
            true,
            "armed for one request only"
        );
        let seen = lock(&state.seen).clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            (
                seen[1].operation.as_str(),
                seen[1].kind.as_str(),
                seen[1].name.as_str(),
                seen[1].refused
            ),
            ("CREATE", "Service", "web", true)
        );
        assert!(seen[1].user.ends_with(":sts-webhook"));
    }

    #[tokio::test]
    async fn a_cut_relay_closes_connections_and_counts_attempts() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_port = backend.local_addr().unwrap().port();
        let echo = tokio::spawn(async move {
            loop {
                let (mut s, _) = backend.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let relay = Relay::start(vec![backend_port]).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut open = TcpStream::connect(("127.0.0.1", relay.port()))
            .await
            .unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        relay.cut();
        assert_eq!(
            open.read(&mut buf).await.unwrap_or(0),
            0,
            "the open connection is closed"
        );
        let mut refused = TcpStream::connect(("127.0.0.1", relay.port()))
            .await
            .unwrap();
        assert_eq!(refused.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!((relay.relayed(), relay.dropped()), (1, 1));
        relay.restore();
        let mut again = TcpStream::connect(("127.0.0.1", relay.port()))
            .await
            .unwrap();
        again.write_all(b"pong").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        echo.abort();
    }
}
