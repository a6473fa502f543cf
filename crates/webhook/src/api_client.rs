//! The webhook's Kubernetes client: kube's default middleware (base URI, authentication incl.
//! token refresh, extra headers; not its debug-level tracing spans) over rustls, with
//! `TCP_NODELAY` on every connection to the API server and no retry layer.
//!
//! Why not `kube::Client::try_from(config)`: its connector leaves Nagle's algorithm on
//! (hyper-util's `HttpConnector` default). On a new TLS connection the client's handshake
//! `Finished` and the request are separate small writes; with Nagle the request waits for the
//! ACK of the first, and the API server delays that ACK (Linux: at least 40 ms) while it waits
//! for the request. Measured on the local control plane (release build, 1.37.2): the first
//! Service create after start, and the first after the pooled connection had idled out
//! (hyper-util drops idle connections after 90 s), took 55–57 ms, later ones 11 ms; with
//! `TCP_NODELAY` the first took 8.6 ms. A lone StatefulSet create, whose Service create comes
//! after the answer, is exactly that case (README, "When the Service is created"). client-go
//! gets `TCP_NODELAY` from Go's `net` package, which sets it on every TCP connection.
//!
//! No retry layer: kube's default resends a request answered 429/503/504 up to 15 times,
//! waiting as long as Retry-After says, which would hold a reconciler pass (and every action
//! after the throttled one) for minutes and outlast admission's 3 s bound on a create
//! ([`crate::creates::CREATE_TIMEOUT`]). Each caller has its own policy instead: admission
//! counts and leaves it to the reconciler, the reconciler retries per action with backoff and
//! Retry-After (`reconciler.rs`), the watches back off.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use tower::{BoxError, ServiceBuilder};

/// The TCP connector under TLS: `http` and `https` URLs alike (the scheme is checked by the
/// TLS layer above it), `TCP_NODELAY` on.
pub fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http
}

/// A client for `config`'s API server. Connect, read and write timeouts are the config's, as
/// in kube's default client.
///
/// Errors: kube's, when the config's TLS material or credentials cannot be used (an unreadable
/// key or CA, a failing exec plugin set-up).
pub fn build(config: &kube::Config) -> Result<kube::Client, kube::Error> {
    let https = config.rustls_https_connector_with_connector(http_connector())?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::Service as _;

    /// Every connection the client opens has `TCP_NODELAY` (kube's own connector leaves it
    /// off: `HttpConnector::new()`, checked below as the control).
    #[tokio::test]
    async fn connections_to_the_api_server_have_nodelay_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: hyper::Uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accept = tokio::spawn(async move {
            let mut kept = Vec::new();
            for _ in 0..2 {
                kept.push(listener.accept().await.unwrap().0);
            }
            kept
        });
        let ours = http_connector().call(uri.clone()).await.unwrap();
        assert!(
            ours.inner().nodelay().unwrap(),
            "our connector: TCP_NODELAY off"
        );
        let mut default = HttpConnector::new();
        default.enforce_http(false);
        let theirs = default.call(uri).await.unwrap();
        assert!(
            !theirs.inner().nodelay().unwrap(),
            "the control (hyper-util's default, what kube uses) has TCP_NODELAY on: this test no longer tells anything"
        );
        drop(accept.await.unwrap());
    }

    /// The client is built from a kubeconfig-like config (no API server needed to build it).
    /// A runtime is needed: `kube::Client::new` spawns the worker of the tower `Buffer` it
    /// puts the stack in.
    #[tokio::test]
    async fn builds_from_a_plain_config() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        build(&config).map(drop).unwrap();
    }
}
