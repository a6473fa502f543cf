//! A tiny loopback HTTP control endpoint of `sts-cluster run`, so e2e tests in local mode can
//! stop and restart the webhook process ("webhook was down" scenarios).
//!
//! `POST /webhook/stop` and `POST /webhook/start` answer 200 once done (start waits for
//! `/readyz`), 500 with a message otherwise. The URL is in `STS_E2E_CONTROL_URL`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::error::{HarnessError, Result};

/// Environment variable holding the control endpoint (`http://127.0.0.1:PORT`).
pub const CONTROL_URL_ENV: &str = "STS_E2E_CONTROL_URL";

/// What a test can ask the harness to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    StopWebhook,
    StartWebhook,
}

/// A request from the control endpoint, answered through `reply`.
pub struct Request {
    pub command: Command,
    pub reply: oneshot::Sender<std::result::Result<(), String>>,
}

/// Binds 127.0.0.1:0 and forwards requests to the returned channel. Returns the URL.
pub async fn serve() -> Result<(String, mpsc::Receiver<Request>, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| HarnessError::io("cannot bind the control endpoint", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HarnessError::io("cannot read the control endpoint address", e))?;
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, tx).await {
                    tracing::debug!("control connection: {e}");
                }
            });
        }
    });
    Ok((format!("http://{addr}"), rx, task))
}

async fn handle(mut stream: TcpStream, tx: mpsc::Sender<Request>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // Requests are tiny; read the head only, bounded.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("read timeout"))??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let (code, body) = match parse_command(&head) {
        Some(command) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(Request { command, reply }).await.is_err() {
                (503, "harness is shutting down".to_owned())
            } else {
                match rx.await {
                    Ok(Ok(())) => (200, "ok".to_owned()),
                    Ok(Err(e)) => (500, e),
                    Err(_) => (503, "harness is shutting down".to_owned()),
                }
            }
        }
        None => (
            404,
            "use POST /webhook/stop or POST /webhook/start".to_owned(),
        ),
    };
    let reason = if code == 200 { "OK" } else { "Error" };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

fn parse_command(head: &str) -> Option<Command> {
    let mut parts = head.lines().next()?.split_whitespace();
    match (parts.next()?, parts.next()?) {
        ("POST", "/webhook/stop") => Some(Command::StopWebhook),
        ("POST", "/webhook/start") => Some(Command::StartWebhook),
        _ => None,
    }
}

/// Client side, for tests: sends `command` to the harness named by `STS_E2E_CONTROL_URL`.
pub async fn send(command: Command) -> Result<()> {
    let url = std::env::var(CONTROL_URL_ENV).map_err(|_| {
        HarnessError::setup(
            "contacting the harness",
            format!("{CONTROL_URL_ENV} is not set (only `sts-cluster run` provides it)"),
        )
    })?;
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let path = match command {
        Command::StopWebhook => "/webhook/stop",
        Command::StartWebhook => "/webhook/start",
    };
    let fut = async {
        let mut s = TcpStream::connect(&addr).await?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        crate::https::parse_response(&out)
    };
    let (code, body) = tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .map_err(|_| HarnessError::Timeout {
            what: format!("POST {url}{path}"),
            secs: 60,
        })?
        .map_err(|e| HarnessError::io(format!("POST {url}{path}"), e))?;
    if code == 200 {
        Ok(())
    } else {
        Err(HarnessError::setup(
            format!("POST {url}{path}"),
            format!("HTTP {code}: {body}"),
        ))
    }
}

/// Stops the local webhook process (its configuration stays registered).
pub async fn stop_webhook() -> Result<()> {
    send(Command::StopWebhook).await
}

/// Starts the local webhook process again and waits until it is ready.
pub async fn start_webhook() -> Result<()> {
    send(Command::StartWebhook).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse_command("POST /webhook/stop HTTP/1.1\r\n"),
            Some(Command::StopWebhook)
        );
        assert_eq!(
            parse_command("POST /webhook/start HTTP/1.1\r\n"),
            Some(Command::StartWebhook)
        );
        assert_eq!(parse_command("GET /webhook/stop HTTP/1.1\r\n"), None);
        assert_eq!(parse_command(""), None);
    }

    #[tokio::test]
    async fn round_trip_over_loopback() {
        let (url, mut rx, task) = serve().await.unwrap();
        let server = tokio::spawn(async move {
            let req = rx.recv().await.unwrap();
            assert_eq!(req.command, Command::StopWebhook);
            req.reply.send(Err("no webhook".to_owned())).unwrap();
        });
        let addr = url.trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /webhook/stop HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let (code, body) = crate::https::parse_response(&out).unwrap();
        assert_eq!(code, 500);
        assert_eq!(body, "no webhook");
        server.await.unwrap();
        task.abort();
    }
}
