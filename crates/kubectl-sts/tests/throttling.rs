//! The plugin's client under throttling and a server that never answers, against a loopback
//! HTTP server in the test (no cluster): `kubectl-sts list` is run as a user runs it, with a
//! kubeconfig pointing at `http://127.0.0.1:PORT`.
//!
//! - 429 with `Retry-After: 1`, then 200: the plugin waits at least 1 s and succeeds;
//! - 429 every time: it gives up after its bound (6 attempts, 5 s of waiting for
//!   `Retry-After: 1`) with a message that names the throttling;
//! - no answer at all: `--request-timeout` ends it within the timeout, naming the flag and the
//!   server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the loopback server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// The first `n` requests get 429 with `Retry-After: 1`, the rest an empty list.
    ThrottleFirst(u32),
    /// Read the request, never answer.
    Silent,
}

struct Server {
    url: String,
    /// Requests answered with 429.
    throttled: Arc<AtomicU32>,
    /// Requests seen.
    seen: Arc<AtomicU32>,
}

async fn serve(mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let throttled = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(AtomicU32::new(0));
    let (t, s) = (throttled.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(connection(conn, mode, t.clone(), s.clone()));
        }
    });
    Server {
        url,
        throttled,
        seen,
    }
}

/// HTTP/1.1 with keep-alive: read a request head (and its Content-Length body), answer, repeat.
async fn connection(
    mut conn: TcpStream,
    mode: Mode,
    throttled: Arc<AtomicU32>,
    seen: Arc<AtomicU32>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let body_len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        seen.fetch_add(1, Ordering::SeqCst);
        let response = match mode {
            Mode::Silent => {
                // Hold the connection open and say nothing.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Mode::ThrottleFirst(n) if throttled.fetch_add(1, Ordering::SeqCst) < n => {
                let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#;
                format!(
                    "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            Mode::ThrottleFirst(_) => {
                throttled.fetch_sub(1, Ordering::SeqCst);
                let body = r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        if conn.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `kubectl-sts ARGS` against `server`, with a kubeconfig of its own.
async fn plugin(server: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: loop\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n    token: not-checked\ncontexts:\n- name: loop\n  context:\n    cluster: loop\n    user: u\n    namespace: demo\ncurrent-context: loop\n"
        ),
    )
    .expect("kubeconfig");
    let start = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-sts"))
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the plugin ended within 60 s")
        .expect("the plugin ran");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_request_waits_for_retry_after_and_succeeds() {
    let server = serve(Mode::ThrottleFirst(1)).await;
    let run = plugin(&server.url, &["list", "-o", "json"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(server.throttled.load(Ordering::SeqCst), 1);
    assert!(
        run.took >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: done in {:?}",
        run.took
    );
    assert!(run.stdout.contains("\"items\""), "{}", run.stdout);
    eprintln!(
        "429 once, then 200: exit 0 after {:?} ({} requests)",
        run.took,
        server.seen.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_to_the_end_gives_up_after_the_bound_naming_the_throttling() {
    let server = serve(Mode::ThrottleFirst(u32::MAX)).await;
    let run = plugin(&server.url, &["list"]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "the API server is throttling requests (HTTP 429 Too Many Requests); gave up after 6 attempt(s) and 5000 ms of waiting (its last Retry-After: 1 s)"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&server.url), "{}", run.stderr);
    // Five waits of Retry-After: 1 s; nothing like an unbounded loop.
    assert!(
        run.took >= Duration::from_secs(5) && run.took < Duration::from_secs(20),
        "{:?}",
        run.took
    );
    eprintln!(
        "429 always: exit 1 after {:?}: {}",
        run.took,
        run.stderr.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_ends_a_request_the_server_never_answers() {
    let server = serve(Mode::Silent).await;
    for (flag, shown) in [("1s", "1s"), ("1", "1s"), ("1500ms", "1.5s")] {
        let run = plugin(&server.url, &["list", "--request-timeout", flag]).await;
        assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains(&format!("no answer within --request-timeout={shown}")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("the API server at {}/ did not answer", server.url)),
            "{}",
            run.stderr
        );
        assert!(
            run.took >= Duration::from_secs(1) && run.took < Duration::from_secs(5),
            "--request-timeout {flag}: {:?}",
            run.took
        );
        eprintln!(
            "--request-timeout {flag}: exit 1 after {:?}: {}",
            run.took,
            run.stderr.trim()
        );
    }
    assert!(server.seen.load(Ordering::SeqCst) >= 3);
}
