//! The real server over real TLS on 127.0.0.1: certificate rotation under load (including a
//! Secret-volume style `..data` symlink swap), mTLS, graceful shutdown, and slow or idle
//! clients (half-sent headers, idle keep-alive, the connection cap).

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
use sts_webhook::creates::{AdmissionCreates, CreateSettings};
use sts_webhook::metrics::Metrics;
use sts_webhook::server::{Draining, ServeOptions, serve};
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
    metrics: Metrics,
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
    // No lame-duck period unless a test asks for one: shutdown stops accepting at once.
    let opts = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        shutdown_delay: Duration::ZERO,
        ..ServeOptions::default()
    };
    start_with(cert, key, client_ca, create_delay, opts).await
}

async fn start_with(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    create_delay: Duration,
    opts: ServeOptions,
) -> Server {
    let metrics = Metrics::new();
    let reloading = ReloadingCert::load(cert, key).unwrap();
    let tls = Arc::new(server_config(reloading.clone(), client_ca).unwrap());
    let draining = Draining::new();
    let state = AppState {
        mutation: Arc::new(MutationConfig::default()),
        caches: Caches::from_objects(vec![], vec![]),
        writer: Arc::new(SlowApi {
            delay: create_delay,
        }),
        metrics: metrics.clone(),
        // The answer waits for the whole (slow) create: these tests use it to hold requests
        // in flight.
        creates: AdmissionCreates::new(CreateSettings {
            wait: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_in_flight: 1000,
        }),
        draining: draining.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(
        listener,
        tls,
        router(state),
        opts,
        metrics.clone(),
        draining,
        async {
            let _ = stopped.await;
        },
    ));
    let reload = tokio::spawn(reloading.watch(Duration::from_millis(50)));
    Server {
        addr,
        metrics,
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

/// SIGTERM starts a lame-duck period: requests on open connections and on new ones are still
/// answered, each with `Connection: close` (so the client leaves that connection at a response
/// boundary, never in the middle of sending), `/readyz` fails, and only after the delay does
/// the server stop accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_requests_are_answered_with_connection_close_until_the_delay_ends() {
    let ca = Ca::new("CA");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &ca.leaf("server"));
    let delay = Duration::from_millis(1500);
    let opts = ServeOptions {
        shutdown_delay: delay,
        drain_timeout: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    let server = start_with(&volume.cert(), &volume.key(), None, Duration::ZERO, opts).await;
    let config = client_config(&ca, None);
    let ready = request_head("GET", "/readyz", 0);

    let mut open = connect(server.addr, config.clone()).await.unwrap();
    let before = open.send(&ready, b"").await.unwrap();
    assert_eq!((before.status, before.close), (200, false));

    let addr = server.addr;
    let signalled = Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The connection that was open: answered, told to close, then closed.
    mutate(&mut open)
        .await
        .expect("a request after SIGTERM failed");
    let head = request_head("GET", "/readyz", 0);
    let answered = open.send(&head, b"").await;
    assert!(
        answered.is_err() || open.closed_by_server().await,
        "the connection stayed open after a `Connection: close` answer"
    );
    // A new connection during the delay: accepted, answered (not ready), told to close.
    let mut late = connect(addr, config.clone())
        .await
        .expect("refused during the delay");
    let answer = late.send(&ready, b"").await.unwrap();
    assert_eq!(
        (
            answer.status,
            answer.close,
            String::from_utf8_lossy(&answer.body).as_ref()
        ),
        (503, true, "not ready: shutting down")
    );
    assert!(
        signalled.elapsed() < delay,
        "the machine was too slow to check the delay"
    );
    // After the delay: no new connections.
    shutdown.await.unwrap();
    assert!(
        signalled.elapsed() >= delay,
        "stopped before the delay ended"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the delay"
    );
}

/// The server's counter `sts_webhook_<name>` (with labels as written in the exposition).
fn metric(server: &Server, series: &str) -> f64 {
    let mut text = String::new();
    server.metrics.encode(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// How long until the server closes `conn` (at most `limit`).
async fn time_to_close(conn: &mut HttpConn<TlsStream<TcpStream>>, limit: Duration) -> Duration {
    let started = Instant::now();
    let closed = tokio::time::timeout(limit, conn.closed_by_server()).await;
    assert_eq!(closed, Ok(true), "not closed within {limit:?}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_is_closed_but_an_idle_keep_alive_connection_is_not() {
    let ca = Ca::new("CA");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &ca.leaf("server"));
    let opts = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    let server = start_with(&volume.cert(), &volume.key(), None, Duration::ZERO, opts).await;
    let config = client_config(&ca, None);

    // Answered once, then idle for longer than the header timeout.
    let mut idle = connect(server.addr, config.clone()).await.unwrap();
    mutate(&mut idle).await.unwrap();

    // Half a header, then silence.
    let mut half = connect(server.addr, config.clone()).await.unwrap();
    half.write_raw(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    // A header trickled a byte every 100 ms: the clock runs from its first byte.
    let mut trickle = connect(server.addr, config.clone()).await.unwrap();
    let trickling = tokio::spawn(async move {
        let started = Instant::now();
        for b in b"POST /mutate HTTP/1.1\r\nhost: localhost\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_raw(&[*b]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the trickled header was never cut off");
    });

    let waited = time_to_close(&mut half, Duration::from_secs(4)).await;
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    let cut_after = trickling.await.unwrap();
    assert!(
        cut_after < Duration::from_secs(3),
        "trickle cut after {cut_after:?}"
    );

    // The idle connection outlived both and still answers.
    mutate(&mut idle)
        .await
        .expect("idle keep-alive connection was closed");
    assert_eq!(
        metric(
            &server,
            r#"sts_webhook_connections_closed_total{reason="header_timeout"}"#
        ),
        2.0
    );
    // ... until its own idle timeout.
    let idled = time_to_close(&mut idle, Duration::from_secs(8)).await;
    assert!(
        idled >= Duration::from_secs(4),
        "idle closed after {idled:?}"
    );
    assert_eq!(
        metric(
            &server,
            r#"sts_webhook_connections_closed_total{reason="idle_timeout"}"#
        ),
        1.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_and_slow_connections_make_room_and_busy_ones_do_not() {
    const CAP: usize = 40;
    let ca = Ca::new("CA");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &ca.leaf("server"));
    let opts = ServeOptions {
        max_connections: CAP,
        admission_wait: Duration::from_millis(300),
        drain_timeout: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    // Each CREATE review spends 1.5 s creating its Service: long enough to hold a slot.
    let server = start_with(
        &volume.cert(),
        &volume.key(),
        None,
        Duration::from_millis(1500),
        opts,
    )
    .await;
    let config = client_config(&ca, None);
    let healthz = request_head("GET", "/healthz", 0);
    let closed = |reason: &str| {
        metric(
            &server,
            &format!(r#"sts_webhook_connections_closed_total{{reason="{reason}"}}"#),
        )
    };

    // The cap filled with idle keep-alive connections (each answered once).
    let mut idle = Vec::new();
    for _ in 0..CAP {
        let mut c = connect(server.addr, config.clone()).await.unwrap();
        assert_eq!(c.send(&healthz, b"").await.unwrap().status, 200);
        idle.push(c);
    }
    assert_eq!(metric(&server, "sts_webhook_connections_open"), CAP as f64);
    // A newcomer is served: the idle connections were closed to make room.
    let mut c = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(c.send(&healthz, b"").await.unwrap().status, 200);
    drop(c);
    for c in &mut idle {
        time_to_close(c, Duration::from_secs(2)).await;
    }
    assert_eq!(closed("idle_shed"), CAP as f64);

    // The cap filled with half-sent headers older than a second: they make room too.
    let mut slow = Vec::new();
    for _ in 0..CAP {
        let mut c = connect(server.addr, config.clone()).await.unwrap();
        c.write_raw(b"POST /mutate HTTP/1.1\r\n").await.unwrap();
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut c = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(c.send(&healthz, b"").await.unwrap().status, 200);
    drop(c);
    for c in &mut slow {
        time_to_close(c, Duration::from_secs(2)).await;
    }
    assert_eq!(closed("slow_shed"), CAP as f64);

    // The cap filled with requests in flight: a newcomer is refused, none of them is cut.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut busy = Vec::new();
    for _ in 0..CAP {
        let mut c = connect(server.addr, config.clone()).await.unwrap();
        busy.push(tokio::spawn(async move { mutate(&mut c).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = match connect(server.addr, config.clone()).await {
        Err(_) => true,
        Ok(mut c) => c.send(&healthz, b"").await.is_err(),
    };
    assert!(refused, "served beyond the cap");
    assert!(closed("refused_at_limit") >= 1.0);
    for b in busy {
        b.await
            .unwrap()
            .expect("a request in flight failed at the cap");
    }
    let mut c = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(c.send(&healthz, b"").await.unwrap().status, 200);
    server.shutdown().await;
}

/// The value of attribute `name` in one XML element line (sslscan's output is one per line).
fn xml_attr(line: &str, name: &str) -> String {
    line.split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// A TLS scan of the serving port by sslscan (Debian's package; `make test` installs it and
/// runs this test in its own stage, hence `#[ignore]`): only TLS 1.2 and 1.3 are offered,
/// and every cipher suite is an AEAD of 128 bits or more with forward secrecy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sslscan on PATH; run by `make test` (test-tls-scan)"]
async fn a_tls_scan_finds_only_tls_1_2_and_1_3_with_strong_suites() {
    let ca = Ca::new("CA");
    let tmp = tempfile::tempdir().unwrap();
    let volume = SecretVolume::new(tmp.path(), &ca.leaf("server"));
    let server = start(&volume.cert(), &volume.key(), None, Duration::ZERO).await;
    let target = server.addr.to_string();
    let out = tokio::process::Command::new("sslscan")
        .args(["--no-colour", "--xml=-", "--no-fallback", &target])
        .output()
        .await
        .expect("sslscan is not on PATH (Debian package sslscan; `make test` installs it)");
    assert!(
        out.status.success(),
        "sslscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    // <protocol type="tls" version="1.2" enabled="1" />
    let mut enabled = Vec::new();
    for line in xml
        .lines()
        .filter(|l| l.trim_start().starts_with("<protocol "))
    {
        let attr = |name: &str| xml_attr(line, name);
        if attr("enabled") == "1" {
            enabled.push(format!("{} {}", attr("type"), attr("version")));
        }
    }
    assert_eq!(enabled, vec!["tls 1.2", "tls 1.3"], "{xml}");
    // <cipher status="accepted" sslversion="TLSv1.3" bits="256" cipher="TLS_AES_256_GCM_SHA384" ... />
    let mut ciphers = Vec::new();
    for line in xml
        .lines()
        .filter(|l| l.trim_start().starts_with("<cipher "))
    {
        let attr = |name: &str| xml_attr(line, name);
        let (version, cipher) = (attr("sslversion"), attr("cipher"));
        let bits: u32 = attr("bits").parse().unwrap_or(0);
        assert!(bits >= 128, "{version} {cipher}: {bits} bits");
        let aead = cipher.contains("GCM") || cipher.contains("CHACHA20");
        assert!(aead, "{version} {cipher} is not an AEAD suite");
        if version == "TLSv1.2" {
            assert!(
                cipher.starts_with("ECDHE-"),
                "{cipher} has no forward secrecy"
            );
        }
        ciphers.push(format!("{version} {cipher} {bits}"));
    }
    assert!(ciphers.len() >= 3, "{xml}");
    println!("sslscan of {target}: {enabled:?}; accepted: {ciphers:#?}");
    server.shutdown().await;
}
