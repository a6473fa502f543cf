//! sts-webhook: a mutating admission webhook that gives every StatefulSet a `spec.serviceName`
//! and the matching headless Service, plus a reconciler that adopts and heals those Services.
//!
//! The decisions live in `sts_model` (pure); this crate is the I/O around them: the HTTPS
//! server ([`server`], [`tls`]), the handlers ([`admission`]), the watch caches ([`cache`]),
//! Service creation ([`services`], and for admission [`creates`]: waited for briefly, finished
//! in the background), the [`reconciler`] and the [`metrics`].

pub mod admission;
pub mod api_client;
pub mod cache;
pub mod config;
pub mod creates;
pub mod metrics;
pub mod reconciler;
pub mod server;
pub mod services;
pub mod slim;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sts_model::headless::HeadlessConfig;
use sts_model::mutation::MutationConfig;
use tokio::net::TcpListener;

pub use admission::{AppState, probe_router, router};
pub use config::{Args, LogFormat, Mode};

/// How often the certificate files are checked for changes.
pub const CERT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The log filter when `RUST_LOG` is unset: `info`, but rustls only from `error`: rustls
/// warns once per connection about a client's quirk (e.g. "Illegal SNI extension: ignoring IP
/// address presented as hostname" whenever a client connects by IP address), which under load
/// buried everything else; failed handshakes are counted in
/// `sts_webhook_connections_closed_total{reason="handshake_failed"}` instead.
pub const DEFAULT_LOG_FILTER: &str = "info,rustls=error";

/// Sets up logging: `RUST_LOG` filter (default [`DEFAULT_LOG_FILTER`]), text or JSON lines on
/// stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal, not for log files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already
/// contains (most errors here name their cause in their own message; kube's do not, e.g.
/// "client error (Connect)" only says which step failed).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// [`error_chain`] of an `anyhow::Error`.
pub fn error_report(err: &anyhow::Error) -> String {
    error_chain(err.as_ref())
}

async fn kube_client(args: &Args) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("failed to read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("failed to load kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration found (in-cluster, $KUBECONFIG, ~/.kube/config); use --kubeconfig")?,
    };
    // TCP_NODELAY on, no retry layer: why in api_client.rs.
    api_client::build(&config).context("failed to build the Kubernetes client")
}

/// Runs the webhook until SIGTERM/Ctrl-C: caches, reconciler, and in webhook mode the
/// certificate reloader and the HTTPS server (in reconciler mode a plain HTTP server with the
/// probes and metrics only).
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Certificates first: a webhook without them cannot serve, so fail before anything starts.
    let tls = match args.mode {
        Mode::Webhook => {
            let (cert_file, key_file) = args.tls_files().map_err(anyhow::Error::msg)?;
            let cert = tls::ReloadingCert::load(cert_file, key_file)?;
            let config = Arc::new(tls::server_config(cert.clone(), args.client_ca.as_deref())?);
            Some((cert, config))
        }
        Mode::Reconciler => None,
    };
    let client = kube_client(&args).await?;
    let metrics = metrics::Metrics::new();
    let headless = HeadlessConfig {
        publish_not_ready_addresses: args.publish_not_ready_addresses,
    };

    let (caches, watch) =
        cache::Caches::start_with_page_size(client.clone(), metrics.clone(), args.watch_page_size);
    let watch_task = tokio::spawn(watch);
    let reconciler_cfg = reconciler::ReconcilerConfig {
        orphan_grace: args.orphan_service_grace,
        headless: headless.clone(),
        ..Default::default()
    };
    let reconciler_task = tokio::spawn(reconciler::run(
        client.clone(),
        caches.clone(),
        reconciler_cfg,
        Arc::new(metrics.clone()),
    ));

    let state = AppState {
        mutation: Arc::new(MutationConfig {
            template: args.service_name_template.clone(),
            headless,
        }),
        caches,
        writer: Arc::new(client),
        metrics: metrics.clone(),
        creates: creates::AdmissionCreates::new(creates::CreateSettings {
            wait: args.create_wait,
            max_in_flight: args.max_creates_in_flight,
            ..creates::CreateSettings::default()
        }),
        draining: server::Draining::new(),
    };
    let draining = state.draining.clone();
    let admission_creates = state.creates.clone();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let listen = listener.local_addr().unwrap_or(args.listen);
    let reload_task = match tls {
        Some((cert, tls_config)) => {
            let reload_task = tokio::spawn(cert.watch(CERT_POLL_INTERVAL));
            let app = router(state).layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(10),
            ));
            tracing::info!(
                %listen,
                template = %args.service_name_template,
                mtls = args.client_ca.is_some(),
                create_wait_ms = args.create_wait.as_secs_f64() * 1000.0,
                "serving /mutate over HTTPS"
            );
            server::serve(
                listener,
                tls_config,
                app,
                server::ServeOptions {
                    shutdown_delay: args.shutdown_delay,
                    ..server::ServeOptions::default()
                },
                metrics,
                draining,
                server::shutdown_signal(),
            )
            .await;
            Some(reload_task)
        }
        None => {
            tracing::info!(
                %listen,
                "reconciler mode: no /mutate; serving /healthz, /readyz and /metrics over HTTP"
            );
            axum::serve(listener, probe_router(state))
                .with_graceful_shutdown(server::shutdown_signal())
                .await
                .context("the probe server failed")?;
            None
        }
    };
    // Creates that admission left in flight: let them finish (each gives up after
    // CREATE_TIMEOUT) rather than cut them off; what does not finish, another replica's
    // reconciler (or this one's after a restart) creates.
    let left = admission_creates.drain(creates::CREATE_TIMEOUT).await;
    if left > 0 {
        tracing::warn!(
            in_flight = left,
            "stopping with Service creates still in flight; the reconciler will create what is missing"
        );
    }
    reconciler_task.abort();
    if let Some(task) = reload_task {
        task.abort();
    }
    watch_task.abort();
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_default_filter_drops_rustls_per_connection_warnings() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // What rustls logs (through the `log` crate) when a client sends an IP as SNI.
            tracing::warn!(
                target: "rustls::msgs::handshake",
                "Illegal SNI extension: ignoring IP address presented as hostname"
            );
            tracing::error!(target: "rustls::server", "kept: an error");
            tracing::info!(target: "sts_webhook::server", "kept: our own info");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("Illegal SNI"), "{text}");
        assert!(text.contains("kept: an error"), "{text}");
        assert!(text.contains("kept: our own info"), "{text}");
    }

    #[test]
    fn error_report_does_not_repeat_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(tls::TlsError::Read {
            what: "certificate",
            path: "/x.crt".into(),
            source: io,
        });
        assert_eq!(
            error_report(&err),
            "failed to read certificate /x.crt: no such file"
        );
        let err = anyhow::anyhow!("root cause").context("failed to load kubeconfig k");
        assert_eq!(
            error_report(&err),
            "failed to load kubeconfig k: root cause"
        );
    }
}
