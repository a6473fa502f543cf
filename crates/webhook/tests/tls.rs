//! The real server over real TLS on 127.0.0.1: certificate rotation under load (including a
//! Secret-volume style `..data` symlink swap), mTLS, graceful shutdown.

// Test crate: helpers outside #[test] fns unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Service;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use sts_model::mutation::MutationConfig;
use sts_webhook::cache::Caches;
use sts_webhook::metrics::Metrics;
use sts_webhook::server::{ServeOptions, serve};
use sts_webhook::services::{CreateError, ServiceWriter};
use sts_webhook::tls::{ReloadingCert, server_config};
use sts_webhook::{AppState, router};
use support::certs::{Ca, Leaf};
use support::http::{HttpConn, request_head};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const CREATE: &str = include_str!("fixtures/create-statefulset.json");

/// Creating a Service takes `delay` (to hold requests in flight).
struct SlowApi {
    delay: Duration,
}

impl ServiceWriter for SlowApi {
    fn create<'a>(&'a self, _svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(true)
        })
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    reload: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.done)
            .await
            .expect("server drained in time")
            .unwrap();
        self.reload.abort();
    }
}

/// Starts the real server; `create_delay` = how long a Service create takes (the cache is
/// empty, so each CREATE review creates).
async fn start(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    create_delay: Duration,
) -> Server {
    let reloading = ReloadingCert::load(cert, key).unwrap();
    let tls = Arc::new(server_config(reloading.clone(), client_ca).unwrap());
    let state = AppState {
        mutation: Arc::new(MutationConfig::default()),
        caches: Caches::from_objects(vec![], vec![]),
        writer: Arc::new(SlowApi {
            delay: create_delay,
        }),
        metrics: Metrics::new(),
        create_timeout: Duration::from_secs(5),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let opts = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    let done = tokio::spawn(serve(listener, tls, router(state), opts, async {
        let _ = stopped.await;
    }));
    let reload = tokio::spawn(reloading.watch(Duration::from_millis(50)));
    Server {
        addr,
        stop: Some(stop),
        done,
        reload,
    }
}

fn client_config(ca: &Ca, client_cert: Option<&Leaf>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<HttpConn<TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(HttpConn::new(tls))
}

fn peer_cert(conn: &HttpConn<TlsStream<TcpStream>>) -> Vec<u8> {
    conn.get_ref().get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn mutate(conn: &mut HttpConn<TlsStream<TcpStream>>) -> std::io::Result<()> {
    let head = request_head("POST", "/mutate", CREATE.len());
    let resp = conn.send(&head, CREATE.as_bytes()).await?;
    let body: serde_json::Value = serde_json::from_slice(&resp.body)?;
    if resp.status != 200 || body["response"]["patchType"] != "JSONPatch" {
        return Err(std::io::Error::other(format!(
            "unexpected answer {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )));
    }
    Ok(())
}

/// The layout the kubelet gives a Secret volume: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<timestamp>/`; an update writes a new timestamped dir and renames a new
/// `..data` symlink over the old one.
struct SecretVolume {
    dir: PathBuf,
    generation: usize,
}

impl SecretVolume {
    fn new(dir: &Path, leaf: &Leaf) -> SecretVolume {
        let mut v = SecretVolume {
            dir: dir.to_owned(),
            generation: 0,
        };
        v.update(leaf);
        std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).unwrap();
        v
    }

    fn update(&mut self, leaf: &Leaf) {
        self.generation += 1;
        let data = format!("..2026_11_22_{:02}", self.generation);
        let data_dir = self.dir.join(&data);
        std::fs::create_dir(&data_dir).unwrap();
        std::fs::write(data_dir.join("tls.crt"), &leaf.cert_pem).unwrap();
        std::fs::write(data_dir.join("tls.key"), &leaf.key_pem).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if self.generation > 1 {
            let old = self
                .dir
                .join(format!("..2026_11_22_{:02}", self.generation - 1));
            std::fs::remove_dir_all(old).unwrap();
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

/// Opens fresh connections until one presents `want` (or 5 s pass).
async fn wait_for_cert(addr: SocketAddr, config: &Arc<ClientConfig>, want: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let conn = connect(addr, config.clone()).await.unwrap();
        if peer_cert(&conn) == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_drops_nothing() {
    let ca = Ca::new("sts-webhook test CA");
    let first = ca.leaf("first");
    let second = ca.leaf("second");
    let third = ca.leaf("third");
    let tmp = tempfile::tempdir().unwrap();
    let mut volume = SecretVolume::new(tmp.path(), &first);
    let server = start(&volume.cert(), &volume.key(), None, Duration::ZERO).await;
    let config = client_config(&ca, None);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for i in 0..6 {
        let (stop, ok, config) = (stop.clone(), ok.clone(), config.clone());
        let addr = server.addr;
        workers.push(tokio::spawn(async move {
            // Even workers keep one connection alive throughout; odd ones reconnect often,
            // so handshakes happen while the certificate is being swapped.
            let mut conn = connect(addr, config.clone()).await?;
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 1 && n.is_multiple_of(5) {
                    conn = connect(addr, config.clone()).await?;
                }
                mutate(&mut conn).await?;
                ok.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok::<usize, std::io::Error>(n)
        }));
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(peer_cert(&before), first.der);

    // Secret-volume rotation: ..data symlink swap.
    volume.update(&second);
    assert!(
        wait_for_cert(server.addr, &config, &second.der).await,
        "new connections never saw the rotated certificate"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Plain in-place rewrite of the target files (e.g. a hostPath or a script): key first,
    // then certificate, so for a moment the pair does not match; the old one stays in use.
    let data = tmp.path().join("..data");
    std::fs::write(data.join("tls.key"), &third.key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    std::fs::write(data.join("tls.crt"), &third.cert_pem).unwrap();
    assert!(
        wait_for_cert(server.addr, &config, &third.der).await,
        "in-place rewrite was not picked up"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap().expect("a request failed during rotation");
    }
    assert_eq!(total, ok.load(Ordering::Relaxed));
    assert!(total > 50, "too few requests to mean anything: {total}");

    // The connection opened before the first rotation still works.
    let mut before = before;
    mutate(&mut before).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_requires_a_client_certificate() {
    let ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let serving = ca.leaf("server");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &serving);
    let ca_file = tmp.path().join("client-ca.crt");
    std::fs::write(&ca_file, client_ca.pem()).unwrap();
    let server = start(
        &volume.cert(),
        &volume.key(),
        Some(&ca_file),
        Duration::ZERO,
    )
    .await;

    // Without a client certificate the server refuses (TLS 1.3 reports it on first use).
    let refused = match connect(server.addr, client_config(&ca, None)).await {
        Err(_) => true,
        Ok(mut conn) => mutate(&mut conn).await.is_err(),
    };
    assert!(refused, "a client without certificate was served");

    // A certificate from another CA is refused too.
    let stranger = Ca::new("other").leaf("apiserver");
    let refused = match connect(server.addr, client_config(&ca, Some(&stranger))).await {
        Err(_) => true,
        Ok(mut conn) => mutate(&mut conn).await.is_err(),
    };
    assert!(refused, "a client with a foreign certificate was served");

    let client = client_ca.leaf("kube-apiserver");
    let mut conn = connect(server.addr, client_config(&ca, Some(&client)))
        .await
        .unwrap();
    mutate(&mut conn).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_and_closes_idle() {
    let ca = Ca::new("CA");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &ca.leaf("server"));
    // Each CREATE spends 700 ms creating the Service: long enough to be in flight.
    let server = start(
        &volume.cert(),
        &volume.key(),
        None,
        Duration::from_millis(700),
    )
    .await;
    let config = client_config(&ca, None);

    let mut idle = connect(server.addr, config.clone()).await.unwrap();
    let head = request_head("GET", "/healthz", 0);
    assert_eq!(idle.send(&head, b"").await.unwrap().status, 200);

    let mut busy = connect(server.addr, config.clone()).await.unwrap();
    let in_flight = tokio::spawn(async move {
        let r = mutate(&mut busy).await;
        (r, busy)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let addr = server.addr;
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The idle keep-alive connection is closed without waiting for the slow request.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), idle.closed_by_server())
            .await
            .expect("idle connection was not closed promptly"),
    );
    // New connections are refused.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    // The in-flight request completes normally.
    let (result, _busy) = in_flight.await.unwrap();
    result.expect("in-flight request failed during shutdown");
    shutdown.await.unwrap();
}
