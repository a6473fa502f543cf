//! The HTTPS accept loop: rustls handshake, HTTP/1.1 with keep-alive, graceful shutdown, and
//! the limits that keep slow or idle clients from tying the webhook up.
//!
//! Limits (all in [`ServeOptions`]):
//! - a TLS handshake must finish within `handshake_timeout` (10 s);
//! - a request whose first byte has arrived must deliver its whole header within
//!   `header_read_timeout` (30 s), else the connection is closed (slowloris). The clock runs
//!   on raw bytes below TLS, so a client that trickles TLS records is caught too; for a new
//!   connection it starts with the handshake's first byte, so a client that connects and never
//!   sends a request is closed after 30 s as well;
//! - a keep-alive connection with no request in progress is closed after `idle_timeout`
//!   (120 s: longer than the 90 s after which Go's `net/http` client, the apiserver's, drops
//!   idle connections itself, so the apiserver closes first and never writes into a
//!   connection that we just closed);
//! - at most `max_connections` (1000) connections are open. When a new one arrives at the cap,
//!   every idle keep-alive connection is closed (a client reconnects at the cost of one
//!   handshake), and so is every connection whose pending header began over 1 s ago (a real
//!   client sends its header at once); the new one waits up to 1 s for a free slot before it
//!   is refused, which happens only when all slots are answering requests or just connected. Each
//!   open connection costs about 20 KiB (TLS buffers plus hyper's), so the cap bounds the
//!   connection layer at roughly 20 MiB; docs/reliability.md has the measured figures.
//! - a request body is bounded in time by the 10 s request timeout of the router (lib.rs).
//!
//! Nothing is logged per connection above debug level: refused connections, failed
//! handshakes and header timeouts are counted in `sts_webhook_connections_closed_total{reason}`
//! and a refusal at the cap is logged at warn at most once a minute.
//!
//! On shutdown (SIGTERM), first a lame-duck period of `shutdown_delay` (5 s): the server keeps
//! accepting and answering, `/readyz` says it is shutting down, and every response carries
//! `Connection: close`, so each client leaves the connection it used at a response boundary.
//! A pod's endpoint is removed from its Service asynchronously after SIGTERM (the endpoints
//! controller and kube-proxy take a moment), and the apiserver's Go client does not resend a
//! POST that met a connection closed under it, so closing at once would fail the admission
//! requests of that moment (failurePolicy Ignore would then admit StatefulSets unmutated).
//! Then: stop accepting, let every connection finish its in-flight request (hyper's
//! `graceful_shutdown` closes idle keep-alive connections at once and busy ones after their
//! response), and return once all connections are gone or `drain_timeout` passed. The pod's
//! `terminationGracePeriodSeconds` must cover both (deploy/base: 40 s).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::metrics::{Closed, Metrics};

/// Timeouts and limits of the connection layer (module docs: why these values).
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// From the first byte of a request until its whole header has arrived.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// Open connections at most; see the module docs for what happens at the cap.
    pub max_connections: usize,
    /// At the cap, how long a new connection waits for a slot before it is refused.
    pub admission_wait: Duration,
    /// After SIGTERM, how long the server keeps accepting and answering (with
    /// `Connection: close`) before it stops accepting; zero stops at once.
    pub shutdown_delay: Duration,
    /// After accepting stopped, how long in-flight requests may take.
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            // Longer than Go's default idle timeout (90 s) on the apiserver's side, so the
            // apiserver closes idle connections first and never writes into one we closed.
            idle_timeout: Duration::from_secs(120),
            max_connections: 1000,
            admission_wait: Duration::from_secs(1),
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(25),
        }
    }
}

/// Set when the server is shutting down (the lame-duck period and after): responses then
/// carry `Connection: close`, and `/readyz` reports it. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether shutdown has begun.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    /// Marks shutdown as begun; [`serve`] does this when its shutdown future resolves.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then answers on for
/// `opts.shutdown_delay` with `Connection: close` (and `draining` set), then stops accepting
/// and drains. Connection events are counted in `metrics`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    opts: ServeOptions,
    metrics: Metrics,
    draining: Draining,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when all are dropped, recv() returns None.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let spawner = Spawner {
        acceptor: TlsAcceptor::from(tls),
        app,
        opts,
        metrics,
        slots: Arc::new(Semaphore::new(opts.max_connections)),
        // Wakes every idle connection's watchdog so that it closes its connection (at the cap).
        shed: Arc::new(Notify::new()),
        refusals: Arc::new(RateLimitedWarning::new(Duration::from_secs(60))),
        stop: stop_rx,
        alive: alive_tx,
        draining: draining.clone(),
    };
    spawner.accept_until(&listener, shutdown).await;
    draining.set();
    if !opts.shutdown_delay.is_zero() {
        tracing::info!(
            delay_secs = opts.shutdown_delay.as_secs_f64(),
            "shutting down: answering with Connection: close before accepting stops"
        );
        spawner
            .accept_until(&listener, tokio::time::sleep(opts.shutdown_delay))
            .await;
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    let _ = stop_tx.send(true);
    drop(spawner);
    if tokio::time::timeout(opts.drain_timeout, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
}

/// The accept side: hands each new connection a slot (or refuses it at the cap) and a task.
struct Spawner {
    acceptor: TlsAcceptor,
    app: Router,
    opts: ServeOptions,
    metrics: Metrics,
    slots: Arc<Semaphore>,
    shed: Arc<Notify>,
    refusals: Arc<RateLimitedWarning>,
    stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
    draining: Draining,
}

impl Spawner {
    /// Accepts connections until `until` resolves.
    async fn accept_until(&self, listener: &TcpListener, until: impl Future<Output = ()>) {
        tokio::pin!(until);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut until => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(err) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            self.spawn(tcp, peer);
        }
    }

    fn spawn(&self, tcp: TcpStream, peer: std::net::SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            acceptor: self.acceptor.clone(),
            app: self.app.clone(),
            opts: self.opts,
            metrics: self.metrics.clone(),
            shed: self.shed.clone(),
            draining: self.draining.clone(),
        };
        let slots = self.slots.clone();
        let refusals = self.refusals.clone();
        let stop = self.stop.clone();
        let alive = self.alive.clone();
        let opts = self.opts;
        tokio::spawn(async move {
            let _alive = alive;
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    conn.shed.notify_waiters();
                    match tokio::time::timeout(opts.admission_wait, slots.acquire_owned()).await {
                        Ok(Ok(slot)) => slot,
                        _ => {
                            conn.metrics.connection_closed(Closed::RefusedAtLimit);
                            refusals.warn(|suppressed| {
                                tracing::warn!(
                                    %peer,
                                    max_connections = opts.max_connections,
                                    refused_since_last_warning = suppressed,
                                    "connection refused: too many open connections"
                                );
                            });
                            return;
                        }
                    }
                }
            };
            let metrics = conn.metrics.clone();
            metrics.connection_opened();
            conn.serve(tcp, peer, stop).await;
            metrics.connection_ended();
            drop(slot);
        });
    }
}

/// What one connection task needs.
struct Connection {
    acceptor: TlsAcceptor,
    app: Router,
    opts: ServeOptions,
    metrics: Metrics,
    shed: Arc<Notify>,
    draining: Draining,
}

impl Connection {
    async fn serve(
        self,
        tcp: TcpStream,
        peer: std::net::SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let activity = Arc::new(Activity::new());
        let tcp = Watched {
            inner: tcp,
            activity: activity.clone(),
        };
        let tls = match tokio::time::timeout(self.opts.handshake_timeout, self.acceptor.accept(tcp))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                self.metrics.connection_closed(Closed::HandshakeFailed);
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                self.metrics.connection_closed(Closed::HandshakeTimeout);
                return;
            }
        };
        // No reset to IDLE here: the handshake's first byte started the header clock, so the
        // handshake and the first request's header together get `header_read_timeout`. (A
        // reset would also lose a header whose bytes rustls read along with the handshake.)
        let app = self.app;
        let service_activity = activity.clone();
        let draining = self.draining;
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            // hyper calls the service once the whole header has been read.
            service_activity.set(BUSY);
            let activity = service_activity.clone();
            let app = app.clone();
            let draining = draining.clone();
            async move {
                let mut response = app.oneshot(req).await;
                if draining.is_set()
                    && let Ok(response) = response.as_mut()
                {
                    // hyper closes the connection after writing a response that says so.
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                activity.set(IDLE);
                response
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .keep_alive(true)
            // hyper's timer runs from when it starts waiting for a header, idle time
            // included: it is the idle timeout; the watchdog below is the header timeout.
            .header_read_timeout(self.opts.idle_timeout)
            .serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => match res {
                Ok(()) => {}
                Err(err) if err.is_timeout() => self.metrics.connection_closed(Closed::IdleTimeout),
                Err(err) => tracing::debug!(%peer, error = %err, "connection ended with an error"),
            },
            closed = watchdog(&activity, self.opts.header_read_timeout, &self.shed) => {
                tracing::debug!(%peer, reason = closed.as_str(), "connection closed");
                self.metrics.connection_closed(closed);
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                if let Err(err) = conn.await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error while draining");
                }
            }
        }
    }
}

/// Resolves when the connection must be closed: a request header pending for longer than
/// `header_timeout`, or a shed request while no request is in progress.
async fn watchdog(activity: &Activity, header_timeout: Duration, shed: &Notify) -> Closed {
    loop {
        // Re-evaluated on every wake-up: a header that started, a deadline, a shed request.
        let deadline = activity.head_since().map(|since| since + header_timeout);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Closed::HeaderTimeout;
        }
        let at_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = activity.head_started.notified() => {}
            () = at_deadline => {}
            () = shed.notified() => {
                if activity.phase.load(Ordering::Acquire) == IDLE {
                    return Closed::IdleShed;
                }
                if activity.head_since().is_some_and(|since| since.elapsed() >= SLOW_AT_THE_CAP) {
                    return Closed::SlowShed;
                }
            }
        }
    }
}

/// At the cap, a connection whose pending header (or handshake) began this long ago is closed
/// to make room: real clients (the apiserver) send a request's header at once.
const SLOW_AT_THE_CAP: Duration = Duration::from_secs(1);

/// No request in progress (keep-alive idle after a response).
const IDLE: u8 = 0;
/// Bytes of a request (or of the TLS handshake before the first one) arrived; the header is
/// not complete yet.
const HEAD: u8 = 1;
/// The header is complete; the request is being answered.
const BUSY: u8 = 2;

/// Where one connection is in its request cycle: raw bytes arriving while idle start a
/// header ([`Watched`]); the service marks the request busy and, once answered, idle.
struct Activity {
    phase: AtomicU8,
    /// Milliseconds since `epoch` at which the pending header's first byte arrived.
    head_since_ms: AtomicU64,
    epoch: Instant,
    head_started: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            phase: AtomicU8::new(IDLE),
            head_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            head_started: Notify::new(),
        }
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Release);
    }

    fn bytes_arrived(&self) {
        if self.phase.load(Ordering::Acquire) != IDLE {
            return;
        }
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.head_since_ms.store(ms, Ordering::Release);
        if self
            .phase
            .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.head_started.notify_one();
        }
    }

    /// When the pending header's first byte arrived; `None` when no header is pending.
    fn head_since(&self) -> Option<Instant> {
        (self.phase.load(Ordering::Acquire) == HEAD)
            .then(|| self.epoch + Duration::from_millis(self.head_since_ms.load(Ordering::Acquire)))
    }
}

/// The TCP stream, reporting every read that brought bytes to its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A warning logged at most once per `every`; the calls in between are counted and handed to
/// the next one.
pub(crate) struct RateLimitedWarning {
    every: Duration,
    start: Instant,
    /// Milliseconds since `start` of the last warning, `u64::MAX` before the first.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimitedWarning {
    pub(crate) fn new(every: Duration) -> Self {
        RateLimitedWarning {
            every,
            start: Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Calls `log(suppressed_since_last)` if the last warning is older than `every`.
    pub(crate) fn warn(&self, log: impl FnOnce(u64)) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Acquire);
        let every = u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX);
        let due = last == u64::MAX || now.saturating_sub(last) >= every;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            log(self.suppressed.swap(0, Ordering::AcqRel));
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = term => tracing::info!("received SIGTERM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_logged_once_per_period_and_counts_the_rest() {
        let w = RateLimitedWarning::new(Duration::from_secs(3600));
        let mut logged = Vec::new();
        for _ in 0..5 {
            w.warn(|n| logged.push(n));
        }
        assert_eq!(logged, vec![0]);
        let w = RateLimitedWarning::new(Duration::ZERO);
        let mut logged = Vec::new();
        w.warn(|n| logged.push(n));
        w.warn(|n| logged.push(n));
        assert_eq!(logged, vec![0, 0]);
    }

    #[test]
    fn bytes_start_a_header_only_while_idle() {
        let a = Activity::new();
        assert_eq!(a.head_since(), None);
        a.bytes_arrived();
        let since = a.head_since().expect("a header is pending");
        a.bytes_arrived();
        assert_eq!(a.head_since(), Some(since), "more bytes of the same header");
        a.set(BUSY);
        a.bytes_arrived();
        assert_eq!(a.head_since(), None, "a request body is not a header");
        a.set(IDLE);
        assert_eq!(a.head_since(), None);
    }

    #[test]
    fn defaults_close_half_sent_headers_before_idle_connections() {
        let o = ServeOptions::default();
        assert_eq!(o.header_read_timeout, Duration::from_secs(30));
        assert!(o.idle_timeout > Duration::from_secs(90));
        assert_eq!(o.max_connections, 1000);
    }
}
