//! What the benchmarks share (`sts-bench`, `sts-scale-bench`): a byte-counting loopback proxy in
//! front of the API server and a kubeconfig that goes through it, running a command with its
//! wall time and peak memory, API requests counted from `-v` logs, and medians.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{HarnessError, Result};
use crate::sys::{self, ChildUsage};

/// A loopback TCP proxy in front of the apiserver that counts the bytes each way (TLS records
/// included: what a client receives on the wire). Stops when dropped.
pub struct CountingProxy {
    port: u16,
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to the port of
    /// `api_url` (`https://127.0.0.1:PORT`) on 127.0.0.1.
    pub async fn start(api_url: &str) -> Result<Self> {
        let upstream = api_url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| HarnessError::setup("starting the counting proxy", api_url))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the counting proxy", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the proxy's port", e))?
            .port();
        let received = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (rx, tx) = (received.clone(), sent.clone());
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let (rx, tx) = (rx.clone(), tx.clone());
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (down_r, down_w) = down.into_split();
                    let (up_r, up_w) = up.into_split();
                    tokio::join!(pump(down_r, up_w, tx), pump(up_r, down_w, rx));
                });
            }
        });
        Ok(Self {
            port,
            received,
            sent,
            task,
        })
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Bytes so far: (server → client, client → server).
    pub fn totals(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::SeqCst),
            self.sent.load(Ordering::SeqCst),
        )
    }

    /// Writes to `path` a copy of `kubeconfig` (whose server is `api_url`) that goes through
    /// the proxy.
    pub fn write_kubeconfig(&self, kubeconfig: &Path, api_url: &str, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(kubeconfig)
            .map_err(|e| HarnessError::io(format!("reading {}", kubeconfig.display()), e))?;
        let api_url = api_url.trim_end_matches('/');
        if !text.contains(api_url) {
            return Err(HarnessError::setup(
                "writing the proxied kubeconfig",
                format!("{} does not name {api_url}", kubeconfig.display()),
            ));
        }
        std::fs::write(
            path,
            text.replace(api_url, &format!("https://127.0.0.1:{}", self.port)),
        )
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies one direction, counting each chunk before forwarding it (so the count is complete
/// when the client has read everything).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counter.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Median, min and max of `times`, in milliseconds; zeros when empty.
pub fn stats(times: &[Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    (median, ms[0], ms[n - 1])
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median_u64(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// One finished run of a command.
#[derive(Debug)]
pub struct Run {
    /// From just before the spawn to the moment wait4 returned.
    pub wall: Duration,
    /// Exit status, peak RSS (KiB) and CPU time.
    pub usage: ChildUsage,
    /// Everything it wrote to stderr (the `-v` log).
    pub stderr: String,
}

/// Runs `bin args…` with `KUBECONFIG=kubeconfig` (and no `RUST_LOG`), stdin closed, stdout
/// written to `stdout` (or discarded), stderr kept; fails when it does not succeed or takes
/// longer than `timeout` (then it is killed). Its peak memory comes from wait4(2), so the
/// child is waited for on a blocking thread rather than by tokio.
pub async fn run_measured(
    bin: &Path,
    args: &[String],
    kubeconfig: &Path,
    stdout: Option<&Path>,
    timeout: Duration,
) -> Result<Run> {
    let shown = format!("`{} {}`", bin.display(), args.join(" "));
    let stderr_file = tempfile::NamedTempFile::new()
        .map_err(|e| HarnessError::io("creating a file for stderr", e))?;
    let err_handle = stderr_file
        .reopen()
        .map_err(|e| HarnessError::io("opening the stderr file", e))?;
    let out: Stdio = match stdout {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| HarnessError::io(format!("creating {}", path.display()), e))?
            .into(),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let child = std::process::Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err_handle)
        .spawn()
        .map_err(|e| HarnessError::io(format!("starting {shown}"), e))?;
    let pid = child.id();
    // Not std's wait: that would reap the child before wait4 could read its usage.
    drop(child);
    let mut waiter = tokio::task::spawn_blocking(move || {
        let usage = sys::wait_with_usage(pid);
        (usage, Instant::now())
    });
    let joined = match tokio::time::timeout(timeout, &mut waiter).await {
        Ok(joined) => joined,
        Err(_) => {
            // Still unreaped, so the pid is still this child's.
            let _ = sys::send_signal(pid, sys::SIGKILL);
            let _ = waiter.await;
            return Err(HarnessError::Timeout {
                what: shown,
                secs: timeout.as_secs(),
            });
        }
    };
    let (usage, ended) =
        joined.map_err(|e| HarnessError::setup(format!("waiting for {shown}"), e.to_string()))?;
    let usage = usage.map_err(|e| HarnessError::io(format!("waiting for {shown}"), e))?;
    let stderr = std::fs::read(stderr_file.path())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| HarnessError::io("reading the stderr file", e))?;
    if !usage.status.success() {
        return Err(HarnessError::setup(
            format!("{shown} failed ({})", usage.status),
            stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n"),
        ));
    }
    Ok(Run {
        wall: ended - started,
        usage,
        stderr,
    })
}

/// Requests per resource in a `kubectl sts -v` log: one `API request` line each, naming its
/// `resource=`.
pub fn plugin_requests(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("API request")) {
        let resource = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("resource="))
            .unwrap_or("?")
            .trim_matches('"')
            .to_owned();
        *counts.entry(resource).or_insert(0) += 1;
    }
    counts
}

/// Requests per resource in a `kubectl -v=6` log: one line per response with its URL and
/// duration; the resource is the URL path's last segment (`/api/v1/pods?limit=500` → `pods`).
pub fn kubectl_requests(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log
        .lines()
        .filter(|l| l.contains("https://") && l.contains("milliseconds"))
    {
        let Some(url) = line.split_whitespace().find_map(|w| {
            w.trim_start_matches("url=")
                .trim_matches('"')
                .strip_prefix("https://")
        }) else {
            continue;
        };
        let path = url.split('?').next().unwrap_or("");
        let resource = path.rsplit('/').next().unwrap_or("?").to_owned();
        *counts.entry(resource).or_insert(0) += 1;
    }
    counts
}

/// `a×2 b×3` for a count map, in key order.
pub fn format_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line `program args…` prints to stdout, or `?`.
pub async fn first_line(program: &Path, args: &[&str]) -> String {
    tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// A working directory for command outputs, removed when dropped.
pub fn scratch_dir(parent: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("bench-out-")
        .tempdir_in(parent)
        .map_err(|e| HarnessError::io(format!("creating a dir in {}", parent.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(stats(&ms(&[30, 10, 20])), (20.0, 10.0, 30.0));
        assert_eq!(stats(&ms(&[40, 10, 20, 30])), (25.0, 10.0, 40.0));
        assert_eq!(stats(&[]), (0.0, 0.0, 0.0));
        assert_eq!(median_u64(&[5, 1, 3]), 3);
        assert_eq!(median_u64(&[]), 0);
    }

    #[test]
    fn requests_are_counted_per_resource() {
        let plugin = "2026-12-03T07:00:00Z DEBUG API request verb=\"list\" resource=pods scope=all namespaces page=1\n\
                      2026-12-03T07:00:00Z DEBUG API response resource=pods page=1 items=500\n\
                      2026-12-03T07:00:00Z DEBUG API request verb=\"list\" resource=pods scope=all namespaces page=2\n\
                      2026-12-03T07:00:00Z DEBUG API request verb=\"list\" resource=statefulsets scope=all namespaces page=1\n";
        let counts = plugin_requests(plugin);
        assert_eq!(format_counts(&counts), "pods×2 statefulsets×1");
        let kubectl = "I1203 07:00:00.1 1 round_trippers.go:632] \"Response\" verb=\"GET\" url=\"https://127.0.0.1:4443/api/v1/pods?limit=500\" status=\"200 OK\" milliseconds=12\n\
                       I1203 07:00:00.2 1 round_trippers.go:632] \"Response\" verb=\"GET\" url=\"https://127.0.0.1:4443/apis/apps/v1/statefulsets?continue=x&limit=500\" status=\"200 OK\" milliseconds=3\n\
                       I1203 07:00:00.3 1 round_trippers.go:632] GET https://127.0.0.1:4443/api/v1/pods?limit=500 200 OK in 12 milliseconds\n";
        assert_eq!(
            format_counts(&kubectl_requests(kubectl)),
            "pods×2 statefulsets×1"
        );
    }
}
