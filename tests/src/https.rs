//! A minimal HTTPS GET for readiness probes (`/readyz` of the apiserver and the webhook), so the
//! harness needs no HTTP client crate and verifies the very certificates the cluster uses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{HarnessError, Result};

/// Client TLS settings: the CA to trust and optionally a client certificate.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
}

impl TlsClient {
    pub fn new(ca_der: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Self> {
        let tls = |context: &str| {
            let context = context.to_owned();
            move |source| HarnessError::Tls { context, source }
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der.to_vec()))
            .map_err(tls("adding the CA"))?;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls("protocol versions"))?
        .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(cert.to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
                )
                .map_err(tls("client certificate"))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// GET `path` from `https://127.0.0.1:port`; returns the status code and body.
    pub async fn get(&self, port: u16, path: &str) -> std::io::Result<(u16, String)> {
        let fut = async {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let tcp = TcpStream::connect(addr).await?;
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
            let mut tls = self.connector.connect(name, tcp).await?;
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            tls.write_all(req.as_bytes()).await?;
            let mut buf = Vec::new();
            // A server may close without TLS close_notify; keep what arrived.
            if let Err(e) = tls.read_to_end(&mut buf).await
                && buf.is_empty()
            {
                return Err(e);
            }
            parse_response(&buf)
        };
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .map_err(|_| std::io::Error::other(format!("GET {path} timed out")))?
    }
}

/// Splits a raw HTTP/1.1 response into status code and body.
pub fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let (code, body) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(code, 200);
        assert_eq!(body, "ok");
        assert!(parse_response(b"garbage").is_err());
    }
}
