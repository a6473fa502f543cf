//! Benchmark: the real `/mutate` over TLS against a minimal rustls server with a fixed answer.
//!
//!     cargo run --release -p sts-webhook --example bench [-- --seconds 10 --connections 64 --rate 5000 --runs 3 --compact]
//!     cargo run --release -p sts-webhook --example bench -- micro [N]   # the handler in-process
//!
//! Each server runs in its own child process (this binary with `serve`), so its peak RSS and
//! CPU time are its own. The load generator (one thread, like `wrk -t1`) keeps
//! `--connections` TLS keep-alive connections per server busy with a real CREATE
//! AdmissionReview for `--seconds` (closed loop: req/s, p50, p99), then sends a fixed `--rate`
//! for `--seconds` (open loop: latency counted from the scheduled send time whenever the server
//! was the reason for a late send, so a stall is not hidden; tokio's ~1 ms timer lateness is not
//! counted — the p99 from the schedule including it is printed too).
//! The closed loop is interleaved: all servers run at once and are driven in turn, half a
//! second each, round after round, so the machine's drifting load (other VMs share these cores)
//! falls on every server alike instead of on whichever ran during a busy stretch. The ratio is
//! total requests over total driven time; the spread of the per-round ratios is printed too.
//! The `/mutate` server's cache already holds the Service, which is the hot path: no API call.
//! `--runs N` repeats it all with fresh server processes, alternating the order within a round;
//! `--compact` sends the review without whitespace, as the apiserver does; `--floor` adds a
//! third server that only checks the body is JSON before the fixed answer — the floor for any
//! server that validates the review.
//! Loopback only; bounded in time and in request count.

#![allow(clippy::unwrap_used)] // a benchmark harness: any failure should stop it loudly

#[path = "../tests/support/certs.rs"]
mod certs;
#[path = "../tests/support/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse as _;
use axum::routing::post;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use kube::core::admission::AdmissionReview;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use sts_model::headless::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, STATEFULSET_ANNOTATION};
use sts_model::mutation::MutationConfig;
use sts_webhook::cache::Caches;
use sts_webhook::creates::{AdmissionCreates, CreateSettings};
use sts_webhook::metrics::Metrics;
use sts_webhook::server::{ServeOptions, serve};
use sts_webhook::services::{CreateError, ServiceWriter};
use sts_webhook::slim::SlimReview;
use sts_webhook::tls::{ReloadingCert, server_config};
use sts_webhook::{AppState, router};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

const REVIEW: &str = include_str!("../tests/fixtures/create-statefulset.json");
/// Hard cap on requests per phase, whatever the duration.
const MAX_REQUESTS: usize = 2_000_000;

struct Opts {
    seconds: u64,
    connections: usize,
    rate: u64,
    runs: u64,
    compact: bool,
    /// Also measure the validate-only server (the floor for any design that checks the JSON).
    floor: bool,
}

/// The request body: the fixture as stored, or compacted with `--compact`.
static BODY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

fn body() -> &'static str {
    BODY.get().copied().unwrap_or(REVIEW)
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        seconds: 10,
        connections: 64,
        rate: 5000,
        runs: 1,
        compact: false,
        floor: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--compact" {
            o.compact = true;
            continue;
        }
        if a == "--floor" {
            o.floor = true;
            continue;
        }
        let v = it.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), v) {
            ("--seconds", Some(v)) => o.seconds = v.clamp(1, 60),
            ("--connections", Some(v)) => o.connections = (v as usize).clamp(1, 256),
            ("--rate", Some(v)) => o.rate = v.clamp(1, 50_000),
            ("--runs", Some(v)) => o.runs = v.clamp(1, 10),
            _ => {
                eprintln!(
                    "usage: bench [--seconds N (≤60)] [--connections N (≤256)] [--rate N] [--runs N (≤10)] [--compact] [--floor] | bench micro [N] | bench profile [N]"
                );
                std::process::exit(2);
            }
        }
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        // child: bench serve mutate|fixed CERT KEY
        serve_child(&args[1], Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    if args.first().map(String::as_str) == Some("micro") {
        micro(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200_000));
        return;
    }
    if args.first().map(String::as_str) == Some("slow-clients") {
        let n = |i: usize, d: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(d);
        slow_clients(n(1, 2000).min(5000), n(2, 200).min(1000));
        return;
    }
    if args.first().map(String::as_str) == Some("profile") {
        profile(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(500_000));
        return;
    }
    let opts = parse_opts(&args);
    let (_dir, cert, key, ca) = bench_certs();
    let client_tls = client_config(&ca.pem());

    if opts.compact {
        let _ = BODY.set(Box::leak(compact(REVIEW).into_boxed_str()));
    }
    println!(
        "load: {} keep-alive TLS connections, {} s closed loop per server (interleaved in 0.5 s slices), then {} req/s for {} s; body {} bytes (CREATE StatefulSet review{}); {} run(s), alternating the order",
        opts.connections,
        opts.seconds,
        opts.rate,
        opts.seconds,
        body().len(),
        if opts.compact {
            ", compact JSON as the apiserver sends it"
        } else {
            ", pretty-printed"
        },
        opts.runs,
    );
    let mut ratios = Vec::new();
    for run in 0..opts.runs {
        let mut order = vec!["fixed", "mutate"];
        if opts.floor {
            order.insert(1, "validate");
        }
        if run % 2 == 1 {
            order.reverse();
        }
        let results = measure(&order, &cert, &key, &client_tls, &opts);
        let (f, m) = (&results["fixed"], &results["mutate"]);
        if let Some(v) = results.get("validate") {
            println!(
                "run {}: validate-only vs fixed: throughput ratio {:.2}, slice pairs {} (the floor for a server that checks the review's JSON)",
                run + 1,
                v.closed.rps / f.closed.rps,
                spread(&pair_ratios(v, f)),
            );
        }
        let ratio = m.closed.rps / f.closed.rps;
        ratios.push(ratio);
        println!(
            "run {}: /mutate vs fixed: throughput ratio {:.2}, slice pairs {} (target ≥ 0.80); p99 at {} req/s {:.2} ms vs fixed {:.2} ms (from schedule {:.2} vs {:.2}; target ≤ 2 ms); peak RSS {:.1} MiB (target ≤ 20 MiB); load average {}\n",
            run + 1,
            ratio,
            spread(&pair_ratios(m, f)),
            opts.rate,
            m.open.p99_ms,
            f.open.p99_ms,
            m.open.p99_sched_ms,
            f.open.p99_sched_ms,
            m.rss_kib as f64 / 1024.0,
            load_average(),
        );
    }
    if ratios.len() > 1 {
        ratios.sort_by(f64::total_cmp);
        println!(
            "throughput ratio over {} runs: min {:.2}, median {:.2}, max {:.2}",
            ratios.len(),
            ratios[0],
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1]
        );
    }
}

/// The servers in `order`, started together. The closed loop runs in half-second slices,
/// server after server in turn (`--seconds` × 2 slices each), so drifting machine load falls
/// on all of them alike; then each gets the fixed-rate phase; then its RSS and CPU are read and
/// it is stopped.
fn measure<'k>(
    order: &[&'k str],
    cert: &Path,
    key: &Path,
    client_tls: &Arc<ClientConfig>,
    opts: &Opts,
) -> BTreeMap<&'k str, Row> {
    let mut children: Vec<ServerChild> = order.iter().map(|k| spawn_server(k, cert, key)).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rows, check) = rt.block_on(async {
        let mut pools = Vec::new();
        for child in &children {
            pools.push(Some(
                warm_conns(child.addr, client_tls, opts.connections).await,
            ));
        }
        let rounds = (Duration::from_secs(opts.seconds).as_millis() / SLICE.as_millis()) as usize;
        let per_slice_cap = MAX_REQUESTS / rounds;
        let mut slices: Vec<Vec<Slice>> = order.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (i, child) in children.iter().enumerate() {
                let conns = pools[i].take().unwrap();
                let (conns, slice) = drive(conns, child.child.id(), SLICE, per_slice_cap).await;
                slices[i].push(slice);
                pools[i] = Some(conns);
            }
        }
        let mut rows = Vec::new();
        for ((child, slices), conns) in children.iter().zip(slices).zip(pools) {
            let pid = child.child.id();
            let cpu0 = cpu_seconds(pid);
            let open = open_loop(conns.unwrap(), opts).await;
            let cpu_open = cpu_seconds(pid) - cpu0;
            rows.push((slices, open, cpu_open));
        }
        let check = match order.iter().position(|k| *k == "mutate") {
            Some(i) => Some(mutate_metrics(children[i].addr, client_tls).await),
            None => None,
        };
        (rows, check)
    });
    let mut out = BTreeMap::new();
    for ((kind, child), (slices, open, cpu_open)) in order.iter().zip(&mut children).zip(rows) {
        let rss = peak_rss_kib(child.child.id());
        child.stop();
        let cpu_closed: f64 = slices.iter().map(|s| s.cpu_s).sum();
        let client_cpu: f64 = slices.iter().map(|s| s.client_cpu_s).sum();
        let closed = closed_phase(&slices);
        let r = Row {
            rss_kib: rss,
            // Per phase: at a fixed rate each request pays its own wake-ups, so the phases differ.
            cpu_us_per_req: [
                cpu_closed * 1e6 / closed.count.max(1) as f64,
                cpu_open * 1e6 / open.count.max(1) as f64,
            ],
            slice_rps: slices.iter().map(Slice::rps).collect(),
            client_cpu_us_per_req: client_cpu * 1e6 / closed.count.max(1) as f64,
            closed,
            open,
        };
        print_row(kind, &r);
        if *kind == "mutate"
            && let Some(check) = &check
        {
            println!("  /mutate metrics after the run: {check}");
        }
        out.insert(*kind, r);
    }
    out
}

/// Length of one closed-loop slice.
const SLICE: Duration = Duration::from_millis(500);

/// One server's share of one round of the closed loop.
struct Slice {
    lat_us: Vec<u32>,
    errors: usize,
    elapsed: Duration,
    /// Server CPU time spent in the slice.
    cpu_s: f64,
    /// The load generator's CPU time in the slice.
    client_cpu_s: f64,
}

impl Slice {
    fn rps(&self) -> f64 {
        self.lat_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// All slices of one server as one phase: requests over the time the server was driven.
fn closed_phase(slices: &[Slice]) -> Phase {
    let lat: Vec<u32> = slices
        .iter()
        .flat_map(|s| s.lat_us.iter().copied())
        .collect();
    phase(
        lat,
        slices.iter().map(|s| s.errors).sum(),
        slices.iter().map(|s| s.elapsed).sum(),
    )
}

/// `a`'s req/s over `b`'s, slice by slice (the slices of one round ran back to back).
fn pair_ratios(a: &Row, b: &Row) -> Vec<f64> {
    a.slice_rps
        .iter()
        .zip(&b.slice_rps)
        .map(|(x, y)| x / y)
        .collect()
}

/// "min–max, median m" of a set of ratios.
fn spread(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.last()) {
        (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2}, median {:.2}", v[v.len() / 2]),
        _ => "none".to_owned(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Row {
    closed: Phase,
    open: Phase,
    rss_kib: u64,
    /// Server CPU time per request in the closed loop and at the fixed rate.
    cpu_us_per_req: [f64; 2],
    /// Closed-loop req/s in each slice, in round order.
    slice_rps: Vec<f64>,
    /// The load generator's CPU time per request in the closed loop.
    client_cpu_us_per_req: f64,
}

struct Phase {
    count: usize,
    errors: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Open loop only: p99 counted from the scheduled send time even when the load
    /// generator's own timer was late.
    p99_sched_ms: f64,
}

fn print_row(kind: &str, r: &Row) {
    println!(
        "{kind:>8}: closed loop {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests, {} errors) | at fixed rate {:>6.0} req/s  p50 {:>5.2} ms  p99 {:>5.2} ms (from schedule {:>5.2})  max {:>6.2} ms ({} errors) | peak RSS {:>5.1} MiB | server CPU {:>5.1} / {:>5.1} µs/req (load generator {:.1})",
        r.closed.rps,
        r.closed.p50_ms,
        r.closed.p99_ms,
        r.closed.count,
        r.closed.errors,
        r.open.rps,
        r.open.p50_ms,
        r.open.p99_ms,
        r.open.p99_sched_ms,
        r.open.max_ms,
        r.open.errors,
        r.rss_kib as f64 / 1024.0,
        r.cpu_us_per_req[0],
        r.cpu_us_per_req[1],
        r.client_cpu_us_per_req,
    );
}

fn phase(mut lat_us: Vec<u32>, errors: usize, elapsed: Duration) -> Phase {
    lat_us.sort_unstable();
    let pct = |p: f64| {
        if lat_us.is_empty() {
            return 0.0;
        }
        let i = ((lat_us.len() as f64 * p).ceil() as usize).clamp(1, lat_us.len()) - 1;
        f64::from(lat_us[i]) / 1000.0
    };
    Phase {
        count: lat_us.len(),
        errors,
        rps: lat_us.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat_us.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        p99_sched_ms: 0.0,
    }
}

type Conn = http::HttpConn<tokio_rustls::client::TlsStream<TcpStream>>;

async fn connect(addr: SocketAddr, tls: &Arc<ClientConfig>) -> Conn {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    http::HttpConn::new(
        TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .unwrap(),
    )
}

async fn one(conn: &mut Conn, head: &[u8]) -> bool {
    match conn.send(head, body().as_bytes()).await {
        Ok(r) => r.status == 200 && !r.body.is_empty(),
        Err(_) => false,
    }
}

/// `n` connections, each warmed up with one request.
async fn warm_conns(addr: SocketAddr, tls: &Arc<ClientConfig>, n: usize) -> Vec<Conn> {
    let head = http::request_head("POST", "/mutate", body().len());
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut c = connect(addr, tls).await;
        assert!(one(&mut c, &head).await, "warm-up request failed");
        conns.push(c);
    }
    conns
}

/// Closed loop for `length` against the server with PID `server`: every connection sends its
/// next request as soon as the previous answer arrived. Hands the connections back for the next
/// slice (a connection that failed is dropped, and counted as an error).
async fn drive(conns: Vec<Conn>, server: u32, length: Duration, cap: usize) -> (Vec<Conn>, Slice) {
    let head = Arc::new(http::request_head("POST", "/mutate", body().len()));
    let (server_cpu0, own_cpu0) = (cpu_seconds(server), cpu_seconds(std::process::id()));
    let start = Instant::now();
    let deadline = start + length;
    let per_conn_cap = cap / conns.len().max(1);
    let mut tasks = Vec::new();
    let local = tokio::task::LocalSet::new();
    for mut c in conns {
        let head = head.clone();
        tasks.push(local.spawn_local(async move {
            let mut lat = Vec::with_capacity(4 * 1024);
            while Instant::now() < deadline && lat.len() < per_conn_cap {
                let t = Instant::now();
                if one(&mut c, &head).await {
                    lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    return (None, lat);
                }
            }
            (Some(c), lat)
        }));
    }
    local
        .run_until(async move {
            let mut conns = Vec::new();
            let mut lat_us = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (c, l) = t.await.unwrap();
                match c {
                    Some(c) => conns.push(c),
                    None => errors += 1,
                }
                lat_us.extend(l);
            }
            let slice = Slice {
                lat_us,
                errors,
                elapsed: start.elapsed(),
                cpu_s: cpu_seconds(server) - server_cpu0,
                client_cpu_s: cpu_seconds(std::process::id()) - own_cpu0,
            };
            (conns, slice)
        })
        .await
}

/// Requests at a fixed total rate spread over the connections (the closed loop's, still
/// open); latency from the scheduled send time (a late send counts as latency).
async fn open_loop(conns: Vec<Conn>, o: &Opts) -> Phase {
    let head = Arc::new(http::request_head("POST", "/mutate", body().len()));
    let n = conns.len().max(1);
    let interval = Duration::from_secs_f64(n as f64 / o.rate as f64);
    let per_conn = ((o.rate * o.seconds) as usize / n).min(MAX_REQUESTS / n);
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let head = head.clone();
        // stagger the connections evenly over one interval
        let offset = interval.mul_f64(i as f64 / n as f64);
        tasks.push(local.spawn_local(async move {
            let mut lat = Vec::with_capacity(per_conn);
            let mut errors = 0;
            let mut lat_sched = Vec::with_capacity(per_conn);
            let mut prev_done = start;
            for n in 0..per_conn {
                let scheduled = start + offset + interval.mul_f64(n as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let sent = Instant::now();
                // tokio's timer fires up to ~1 ms late; that delay is the load generator's,
                // not the server's. Count from the actual send when the connection was free at
                // the scheduled time, from the schedule when the previous answer was late (so
                // a server stall still counts in full).
                let origin = if prev_done <= scheduled {
                    sent
                } else {
                    scheduled
                };
                if one(&mut c, &head).await {
                    prev_done = Instant::now();
                    let us = |from: Instant| {
                        prev_done
                            .duration_since(from)
                            .as_micros()
                            .min(u128::from(u32::MAX)) as u32
                    };
                    lat.push(us(origin));
                    lat_sched.push(us(scheduled));
                } else {
                    errors += 1;
                    break;
                }
            }
            (lat, lat_sched, errors)
        }));
    }
    let (lat, mut lat_sched, errors) = local
        .run_until(async {
            let mut all = Vec::new();
            let mut all_sched = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (l, ls, e) = t.await.unwrap();
                all.extend(l);
                all_sched.extend(ls);
                errors += e;
            }
            (all, all_sched, errors)
        })
        .await;
    let mut p = phase(lat, errors, start.elapsed());
    lat_sched.sort_unstable();
    p.p99_sched_ms = lat_sched
        .get((lat_sched.len() * 99).div_ceil(100).saturating_sub(1))
        .map_or(0.0, |v| f64::from(*v) / 1000.0);
    p
}

/// The counters that prove the hot path was taken: patched CREATEs, no Service created.
async fn mutate_metrics(addr: SocketAddr, tls: &Arc<ClientConfig>) -> String {
    let mut c = connect(addr, tls).await;
    let head = b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n";
    let r = c.send(head, b"").await.unwrap();
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let pick = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .map_or_else(|| format!("{needle} (absent)"), str::to_owned)
    };
    format!(
        "{}; {}",
        pick(r#"sts_webhook_admission_requests_total{operation="CREATE",outcome="patched"}"#),
        pick("sts_webhook_services_created_total"),
    )
}

fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM to the child we spawned, by its PID; it shuts down gracefully.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A failed assertion mid-run unwinds through here: no server is left behind.
impl Drop for ServerChild {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_server(kind: &str, cert: &Path, key: &Path) -> ServerChild {
    let exe: PathBuf = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["serve", kind])
        .arg(cert)
        .arg(key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().parse().unwrap();
    ServerChild { child, addr }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

/// utime + stime of the process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks: USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Never called on the hot path (the cache has the Service); panics if it is.
struct NoApi;

impl ServiceWriter for NoApi {
    fn create<'a>(&'a self, _svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
        Box::pin(async { Err(CreateError::NoNamespace) })
    }
}

fn existing_service() -> Service {
    let mut s = Service::default();
    s.metadata.name = Some("web".into());
    s.metadata.namespace = Some("demo".into());
    s.metadata.labels = Some([(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into())].into());
    s.metadata.annotations = Some([(STATEFULSET_ANNOTATION.into(), "web".into())].into());
    s.spec = Some(ServiceSpec {
        cluster_ip: Some("None".into()),
        ..Default::default()
    });
    s
}

/// The real webhook router, with the Service in its cache (the hot path).
fn mutate_router(metrics: Metrics) -> Router {
    router(AppState {
        mutation: Arc::new(MutationConfig::default()),
        caches: Caches::from_objects(vec![existing_service()], vec![]),
        writer: Arc::new(NoApi),
        metrics,
        creates: AdmissionCreates::new(CreateSettings::default()),
        draining: Default::default(),
    })
}

/// The answer of the fixed and validate-only servers: a patched review of the same size as
/// /mutate's answer.
static FIXED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"0b7a3c1e-5d1f-4c3e-9a55-2f7f1c0d7e11","allowed":true,"patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvc2VydmljZU5hbWUiLCJ2YWx1ZSI6IndlYiJ9XQ==","patchType":"JSONPatch"}}"#;

/// Reads the body and answers [`FIXED`].
fn fixed_router() -> Router {
    Router::new().route(
        "/mutate",
        post(|_body: Bytes| async { ([("content-type", "application/json")], FIXED) }),
    )
}

/// `--floor`: checks that the body is JSON (scans all of it, builds nothing), then answers
/// [`FIXED`]. No server that validates the review can be cheaper.
fn validate_router() -> Router {
    Router::new().route(
        "/mutate",
        post(|body: Bytes| async move {
            match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => ([("content-type", "application/json")], FIXED).into_response(),
                Err(_) => axum::http::StatusCode::BAD_REQUEST.into_response(),
            }
        }),
    )
}

fn serve_child(kind: &str, cert: &Path, key: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reloading = ReloadingCert::load(cert, key).unwrap();
        let tls = Arc::new(server_config(reloading, None).unwrap());
        let metrics = Metrics::new();
        let app = match kind {
            "mutate" => mutate_router(metrics.clone()),
            "validate" => validate_router(),
            _ => fixed_router(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        serve(
            listener,
            tls,
            app,
            ServeOptions::default(),
            metrics,
            Default::default(),
            sts_webhook::server::shutdown_signal(),
        )
        .await;
    });
}

/// `bench slow-clients [IDLE] [HALF]`: the real server (default [`ServeOptions`]) in a child
/// process, flooded with IDLE TLS connections that never send a request (default 2000) and
/// HALF connections that send half a request header and stop (default 200), while a real
/// client sends 200 admission requests, each on a new connection. Prints the server's peak RSS
/// before and after, the real client's latencies and failures, the server's connection
/// metrics, and how long the half-sent connections stayed open. Loopback only; bounded.
fn slow_clients(idle: usize, half: usize) {
    let (_dir, cert, key, ca) = bench_certs();
    let tls = client_config(&ca.pem());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut server = spawn_server("mutate", &cert, &key);
    let pid = server.child.id();
    let addr = server.addr;
    rt.block_on(async {
        let head = http::request_head("POST", "/mutate", body().len());
        let mut warm = connect(addr, &tls).await;
        assert!(one(&mut warm, &head).await);
        drop(warm);
        let before = peak_rss_kib(pid);
        let started = Instant::now();
        // Idle: TLS handshake, then nothing. Refused ones (at the cap) are counted.
        let mut idle_conns = Vec::new();
        let mut idle_refused = 0;
        for _ in 0..idle {
            match try_connect(addr, &tls).await {
                Some(c) => idle_conns.push(c),
                None => idle_refused += 1,
            }
        }
        // Half-sent: the start of a request header, then nothing.
        let mut half_conns = Vec::new();
        for _ in 0..half {
            if let Some(mut c) = try_connect(addr, &tls).await
                && c
                    .write_raw(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
                    .await
                    .is_ok()
            {
                half_conns.push(c);
            }
        }
        let flooded = started.elapsed();
        // The real client: each request on a new connection, as after an idle close.
        let mut lat = Vec::new();
        let mut failed = 0;
        for _ in 0..200 {
            let t = Instant::now();
            let ok = matches!(
                tokio::time::timeout(Duration::from_secs(10), async {
                    let mut c = try_connect(addr, &tls).await?;
                    one(&mut c, &head).await.then_some(())
                })
                .await,
                Ok(Some(()))
            );
            if ok {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                failed += 1;
            }
        }
        lat.sort_by(f64::total_cmp);
        let q = |p: usize| lat.get((lat.len() * p).div_ceil(100).saturating_sub(1)).copied().unwrap_or(f64::NAN);
        let peak = peak_rss_kib(pid);
        println!(
            "flood: {idle} idle + {half} half-sent TLS connections opened in {:.1} s ({idle_refused} idle refused at the cap)",
            flooded.as_secs_f64()
        );
        println!(
            "real client: 200 admission requests on new connections during the flood: {} answered, {failed} failed; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            q(50),
            q(99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "server peak RSS: {:.1} MiB before the flood, {:.1} MiB after",
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        // How long the half-sent ones stay open (the header timeout is 30 s).
        let mut longest = Duration::ZERO;
        let mut still_open = 0;
        for c in &mut half_conns {
            match tokio::time::timeout(Duration::from_secs(45), c.closed_by_server()).await {
                Ok(_) => longest = longest.max(started.elapsed()),
                Err(_) => still_open += 1,
            }
        }
        println!(
            "half-sent connections: {} kept by the server at first, the last closed {:.1} s after the flood began; {still_open} still open after 45 s",
            half_conns.len(),
            longest.as_secs_f64()
        );
        let mut c = connect(addr, &tls).await;
        let r = c
            .send(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n", b"")
            .await
            .unwrap();
        for line in String::from_utf8_lossy(&r.body).lines() {
            if line.starts_with("sts_webhook_connections") {
                println!("  {line}");
            }
        }
        drop(idle_conns);
    });
    server.stop();
}

/// A fresh CA and serving pair written to a temporary directory (kept while it lives).
fn bench_certs() -> (tempfile::TempDir, PathBuf, PathBuf, certs::Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new("bench CA");
    let leaf = ca.leaf("bench");
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (dir, cert, key, ca)
}

/// A TLS connection, or `None` when the server refused or closed it during the handshake.
async fn try_connect(addr: SocketAddr, tls: &Arc<ClientConfig>) -> Option<Conn> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let name = ServerName::try_from("127.0.0.1").ok()?;
    let tls = TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .ok()?;
    Some(http::HttpConn::new(tls))
}

/// `bench micro [N]`: the handler alone, in-process (no TLS, no sockets): N requests through
/// `router().oneshot()` for `/mutate` and for the fixed-answer route, and the cost of merely
/// scanning the review's JSON. Shows what the handler adds per request; run it under
/// `perf record` to see where.
fn micro(n: usize) {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let compact_review: &'static str = Box::leak(compact(REVIEW).into_boxed_str());
    let request = |body: &'static str| {
        axum::http::Request::post("/mutate")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let time = |label: &str, app: Router, body: &'static str| {
        rt.block_on(async {
            // warm-up, and check the answer is a real one
            let r = app.clone().oneshot(request(body)).await.unwrap();
            assert_eq!(r.status(), 200);
            let start = Instant::now();
            for _ in 0..n {
                let r = app.clone().oneshot(request(body)).await.unwrap();
                let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
                std::hint::black_box(body);
            }
            let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{label:>28}: {per:>6.2} µs/request");
            per
        })
    };
    let fixed = time("fixed route (axum only)", fixed_router(), REVIEW);
    let mutate = time("/mutate handler", mutate_router(Metrics::new()), REVIEW);
    println!("{:>28}: {:>6.2} µs/request", "/mutate adds", mutate - fixed);
    let mutate = time(
        "/mutate, compact review",
        mutate_router(Metrics::new()),
        compact_review,
    );
    println!("{:>28}: {:>6.2} µs/request", "/mutate adds", mutate - fixed);
    // The parse alone, each way, interleaved in rounds so drifting machine load hits all alike.
    type Parse = fn(&[u8]) -> bool;
    let parsers: [(&str, Parse); 3] = [
        ("scan only (IgnoredAny)", |b| {
            serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
        }),
        ("full k8s-openapi parse", |b| {
            serde_json::from_slice::<AdmissionReview<StatefulSet>>(b).is_ok()
        }),
        ("SlimReview (used)", |b| {
            SlimReview::parse(b).is_ok_and(|r| r.request.is_some())
        }),
    ];
    for (label, body) in [("pretty", REVIEW), ("compact", compact_review)] {
        let mut total = [Duration::ZERO; 3];
        for _ in 0..5 {
            for (i, (_, parse)) in parsers.iter().enumerate() {
                let start = Instant::now();
                for _ in 0..n / 5 {
                    assert!(parse(std::hint::black_box(body.as_bytes())));
                }
                total[i] += start.elapsed();
            }
        }
        for (i, (name, _)) in parsers.iter().enumerate() {
            let per = total[i].as_secs_f64() * 1e6 / (n / 5 * 5) as f64;
            println!(
                "{:>28}: {per:>6.2} µs ({label}, {} bytes)",
                name,
                body.len()
            );
        }
    }
}

/// `bench profile [N]`: only the compact review through `/mutate`, N times, in-process — a
/// loop with nothing else in it, to run under `perf record`.
fn profile(n: usize) {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: &'static str = Box::leak(compact(REVIEW).into_boxed_str());
    let app = mutate_router(Metrics::new());
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let req = axum::http::Request::post("/mutate")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let r = app.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), 200);
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            std::hint::black_box(body);
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("/mutate, compact review: {per:.2} µs/request ({n} requests)");
    });
}

/// `json` without the whitespace between tokens, as the apiserver sends it (Go's
/// `json.Marshal`); key order and string contents are kept.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}
