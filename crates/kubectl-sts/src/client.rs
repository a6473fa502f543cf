//! The plugin's Kubernetes client, on OpenSSL rather than rustls.
//!
//! Why: the plugin must work wherever kubectl works, and kubectl verifies with Go's
//! `crypto/tls`/`crypto/x509`, which accept kubeconfigs that rustls refuses:
//! - X.509 **v1** client certificates (microk8s issues them); rustls ≥ 0.23.23 rejects them
//!   with `UnsupportedCertVersion` (rustls/rustls#2364, closed as not planned);
//! - a `certificate-authority-data` that holds the server's own (leaf) certificate rather than
//!   a CA: Go trusts any certificate in the pool as an anchor (kube-rs/kube#1767). OpenSSL does
//!   the same with `X509_V_FLAG_PARTIAL_CHAIN`, set here.
//!
//! Like client-go (`k8s.io/client-go/transport`), a kubeconfig CA replaces the system roots
//! instead of adding to them, `insecure-skip-tls-verify` turns verification off, and
//! `tls-server-name` is both the SNI and the name the server certificate is checked against.
//!
//! The webhook keeps rustls (it builds its client with `kube::Client::try_from`); the plugin
//! assembles the same middleware stack as kube's default client (base URI, auth incl. exec
//! plugins and token refresh, extra headers, timeouts) around an OpenSSL connector, so the
//! choice does not depend on Cargo feature unification in the workspace. Two layers are the
//! plugin's own: the retry of throttled requests ([`crate::retry::ThrottleRetry`], bounded,
//! honouring `Retry-After`) and `--request-timeout` on each attempt.

use std::net::IpAddr;
use std::time::Duration;

use hyper_openssl::client::legacy::HttpsConnector;
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::{Client, Config};
use openssl::ssl::{ConnectConfiguration, SslConnectorBuilder, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags};
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};

use crate::error::{Error, Result};
use crate::retry::{RequestTimedOut, ThrottleRetry};

/// A client for `config`'s API server over OpenSSL. `request_timeout` (`--request-timeout`;
/// `None` = no limit) bounds each attempt of each request until the response's headers
/// arrive; when it passes, the request fails with [`RequestTimedOut`] (as a
/// `kube::Error::Service`), which [`crate::collect::map_kube_error`] turns into
/// [`Error::RequestTimeout`].
///
/// Errors: [`Error::Client`] when the kubeconfig's credentials cannot be used (unreadable key,
/// failing exec plugin set-up), [`Error::Tls`] when its certificates cannot be loaded,
/// [`Error::UnsupportedProxy`] when it sets `proxy-url` (not supported yet; nothing is sent).
pub fn build(config: &Config, request_timeout: Option<Duration>) -> Result<Client> {
    let server = config.cluster_url.to_string();
    if let Some(proxy) = &config.proxy_url {
        return Err(Error::UnsupportedProxy {
            server,
            proxy: proxy.to_string(),
        });
    }
    let client_err = |source| Error::Client {
        server: server.clone(),
        source,
    };
    let tls = ssl_connector(config).map_err(|detail| Error::Tls {
        server: server.clone(),
        detail,
    })?;
    let mut https =
        HttpsConnector::with_connector(http_connector(), tls).map_err(|e| Error::Tls {
            server: server.clone(),
            detail: e.to_string(),
        })?;
    let verify = PerConnection {
        skip_verify: config.accept_invalid_certs,
        server_name: config.tls_server_name.clone(),
    };
    https.set_callback(move |ssl, _uri| verify.apply(ssl));

    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(ThrottleRetry::new())),
        )
        .map_err(move |e: BoxError| match request_timeout {
            Some(after) if e.is::<tower::timeout::error::Elapsed>() => {
                BoxError::from(RequestTimedOut { after })
            }
            _ => e,
        })
        .option_layer(request_timeout.map(TimeoutLayer::new))
        .option_layer(config.auth_layer().map_err(client_err)?)
        .layer(config.extra_headers_layer().map_err(client_err)?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(Client::new(service, config.default_namespace.clone()))
}

/// The TCP connector under TLS: `TCP_NODELAY` on, as Go's `net` package sets it for kubectl
/// (hyper-util's default leaves Nagle's algorithm on, so a small write that follows another,
/// like a request after the TLS handshake's last flight, can wait for the server's delayed
/// ACK: 40 ms or more on Linux; the webhook measured it, `sts_webhook::api_client`).
fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http
}

/// The TLS context: the client identity (kubeconfig or exec plugin) from kube, and the trust
/// store as client-go builds it.
fn ssl_connector(config: &Config) -> std::result::Result<SslConnectorBuilder, String> {
    let mut builder = config
        .openssl_ssl_connector_builder()
        .map_err(|e| e.to_string())?;
    if let Some(roots) = &config.root_cert {
        // kube keeps only the PEM blocks it finds; none means the data was not PEM at all.
        // kubectl refuses it ("unable to load root certificates"); an empty trust store would
        // only fail later and blame the server.
        if roots.is_empty() {
            return Err(
                "the cluster's certificate-authority(-data) holds no PEM certificate".to_string(),
            );
        }
        builder.set_cert_store(trust_store(roots)?);
    }
    Ok(builder)
}

/// Only the kubeconfig's CA certificates (DER), each a trust anchor even when it is not
/// self-signed, as in Go's `x509.CertPool`.
fn trust_store(roots: &[Vec<u8>]) -> std::result::Result<openssl::x509::store::X509Store, String> {
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for (i, der) in roots.iter().enumerate() {
        let cert = X509::from_der(der)
            .map_err(|e| format!("certificate {} of certificate-authority: {e}", i + 1))?;
        store
            .add_cert(cert)
            .map_err(|e| format!("certificate {} of certificate-authority: {e}", i + 1))?;
    }
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(|e| e.to_string())?;
    Ok(store.build())
}

/// What is set on each connection before its handshake.
#[derive(Clone)]
struct PerConnection {
    /// `insecure-skip-tls-verify: true`.
    skip_verify: bool,
    /// `tls-server-name`: replaces the URL's host for SNI and certificate verification.
    server_name: Option<String>,
}

impl PerConnection {
    fn apply(
        &self,
        ssl: &mut ConnectConfiguration,
    ) -> std::result::Result<(), openssl::error::ErrorStack> {
        if self.skip_verify {
            ssl.set_verify(SslVerifyMode::NONE);
        }
        let Some(name) = &self.server_name else {
            return Ok(());
        };
        // hyper-openssl would set SNI and the expected host from the URL after this callback.
        ssl.set_use_server_name_indication(false);
        ssl.set_verify_hostname(false);
        let param = ssl.param_mut();
        param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
        match name.parse::<IpAddr>() {
            // No SNI for an IP address (RFC 6066 §3), as Go's crypto/tls.
            Ok(ip) => param.set_ip(ip),
            Err(_) => {
                param.set_host(name)?;
                ssl.set_hostname(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_roots(roots: Option<Vec<Vec<u8>>>) -> Config {
        let mut config = Config::new("https://127.0.0.1:6443".parse().expect("URL"));
        config.root_cert = roots;
        config
    }

    /// Every connection the client opens has `TCP_NODELAY`; hyper-util's default connector
    /// (the control) does not.
    #[tokio::test]
    async fn connections_have_nodelay_on() {
        use tower::Service as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri: http::Uri = format!("http://{}", listener.local_addr().expect("addr"))
            .parse()
            .expect("URI");
        let accept = tokio::spawn(async move {
            let mut kept = Vec::new();
            for _ in 0..2 {
                kept.push(listener.accept().await.expect("accept").0);
            }
            kept
        });
        let ours = http_connector().call(uri.clone()).await.expect("connect");
        assert!(
            ours.inner().nodelay().expect("getsockopt"),
            "TCP_NODELAY off"
        );
        let mut default = HttpConnector::new();
        default.enforce_http(false);
        let theirs = default.call(uri).await.expect("connect");
        assert!(
            !theirs.inner().nodelay().expect("getsockopt"),
            "the control has TCP_NODELAY on: this test no longer tells anything"
        );
        drop(accept.await.expect("accept task"));
    }

    #[test]
    fn certificate_authority_data_without_a_certificate_is_named() {
        let err = build(&config_with_roots(Some(Vec::new())), None)
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            "cannot set up TLS for https://127.0.0.1:6443/: the cluster's certificate-authority(-data) holds no PEM certificate"
        );
        let err = build(&config_with_roots(Some(vec![b"not DER".to_vec()])), None)
            .err()
            .expect("refused");
        // A block that is not a certificate: kube's connector builder already refuses it.
        assert!(matches!(err, Error::Tls { .. }), "{err}");
        assert!(err.to_string().contains("root certificate"), "{err}");
    }

    #[test]
    fn a_proxy_url_is_refused_before_anything_is_sent() {
        let mut config = config_with_roots(None);
        config.proxy_url = Some("http://proxy:3128".parse().expect("URL"));
        let err = build(&config, None).err().expect("refused");
        assert!(matches!(err, Error::UnsupportedProxy { .. }), "{err}");
    }
}
