//! Command-line flags (each also an environment variable `STS_WEBHOOK_…`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use sts_model::dns::ServiceNameTemplate;

/// Mutating admission webhook: gives every StatefulSet a spec.serviceName and the matching
/// headless Service.
#[derive(Clone, Debug, Parser)]
#[command(name = "sts-webhook", version, about)]
pub struct Args {
    /// `webhook`: serve `/mutate` (and the probes and metrics) over HTTPS, and reconcile.
    /// `reconciler`: only reconcile, with the probes and metrics over plain HTTP; for clusters
    /// where a MutatingAdmissionPolicy sets serviceName (deploy/admission-policy, >= 1.36).
    #[arg(long, env = "STS_WEBHOOK_MODE", value_enum, default_value_t = Mode::Webhook)]
    pub mode: Mode,

    /// Address to serve on (HTTPS in webhook mode, HTTP in reconciler mode).
    #[arg(long, env = "STS_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain to serve (reloaded when the file changes). Required in webhook
    /// mode.
    #[arg(long, env = "STS_WEBHOOK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (reloaded when the file changes). Required in webhook
    /// mode.
    #[arg(long, env = "STS_WEBHOOK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle; when set, clients must present a certificate signed by it (mTLS).
    #[arg(long, env = "STS_WEBHOOK_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,

    /// Kubeconfig to use; default: in-cluster config, else $KUBECONFIG / ~/.kube/config.
    #[arg(long, env = "STS_WEBHOOK_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Service name for a StatefulSet without serviceName; `{name}` is the StatefulSet name,
    /// `{namespace}` its namespace.
    #[arg(
        long,
        env = "STS_WEBHOOK_SERVICE_NAME_TEMPLATE",
        default_value = "{name}"
    )]
    pub service_name_template: ServiceNameTemplate,

    /// publishNotReadyAddresses of created Services (peers can find each other while
    /// starting).
    #[arg(
        long,
        env = "STS_WEBHOOK_PUBLISH_NOT_READY_ADDRESSES",
        default_value_t = true,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub publish_not_ready_addresses: bool,

    /// Log line format.
    #[arg(long, env = "STS_WEBHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long after the reconciler first saw a managed Service without its StatefulSet it
    /// may delete it, if that StatefulSet never appeared (e.g. `30s`, `2m`, `1h`).
    #[arg(long, env = "STS_WEBHOOK_ORPHAN_SERVICE_GRACE", default_value = "5m", value_parser = parse_duration)]
    pub orphan_service_grace: Duration,

    /// After SIGTERM, how long to keep answering (with `Connection: close`, `/readyz` failing)
    /// before accepting stops, so that the pod leaves its Service's endpoints first (e.g.
    /// `5s`; `0s` stops at once). The pod's terminationGracePeriodSeconds must exceed this
    /// plus 25 s of draining.
    #[arg(long, env = "STS_WEBHOOK_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Objects per page when the caches list StatefulSets and Services (at start and after a
    /// watch expires): smaller pages lower the memory peak at start on big clusters, larger
    /// ones need fewer requests (at least 1).
    #[arg(
        long,
        env = "STS_WEBHOOK_WATCH_PAGE_SIZE",
        default_value_t = crate::cache::DEFAULT_WATCH_PAGE_SIZE,
        value_parser = clap::value_parser!(u32).range(1..),
        // So that `-1` meets the range check above rather than "unexpected argument".
        allow_negative_numbers = true
    )]
    pub watch_page_size: u32,

    /// How long the admission answer waits for the create of a missing Service (e.g. `2ms`).
    /// `0s`, the default: not at all, and the create begins once the answer has left. A
    /// create that takes longer finishes in the background, and a failure then is counted and
    /// logged instead of warned about; the reconciler creates what it could not. A create is
    /// abandoned after 3 s, so values above that act as 3 s.
    #[arg(long, env = "STS_WEBHOOK_CREATE_WAIT", default_value = "0s", value_parser = parse_duration)]
    pub create_wait: Duration,

    /// Service creates started by admission that may be in flight at once; beyond it,
    /// admission starts none (a warning says so) and the reconciler creates the Service
    /// (1–100000).
    #[arg(
        long,
        env = "STS_WEBHOOK_MAX_CREATES_IN_FLIGHT",
        default_value_t = crate::creates::DEFAULT_MAX_CREATES_IN_FLIGHT,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        allow_negative_numbers = true
    )]
    pub max_creates_in_flight: u32,
}

/// What the process serves (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The admission webhook and the reconciler.
    Webhook,
    /// Only the reconciler (admission is done by a MutatingAdmissionPolicy).
    Reconciler,
}

impl Args {
    /// The serving certificate and key files; an error naming the flags when webhook mode
    /// lacks them.
    pub fn tls_files(&self) -> Result<(&std::path::Path, &std::path::Path), String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok((cert, key)),
            _ => Err(
                "--tls-cert and --tls-key are required in webhook mode (the apiserver only calls webhooks over HTTPS); use --mode=reconciler to run only the reconciler"
                    .to_string(),
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parses `30s`, `2m`, `1h30m`, `500ms` (and ISO 8601 like `PT5M`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .trim()
        .parse()
        .map_err(|e| format!("invalid duration {s:?} (use e.g. 30s, 2m, 1h): {e}"))?;
    Duration::try_from(d).map_err(|_| format!("duration {s:?} must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["sts-webhook", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert_eq!(a.listen.to_string(), "0.0.0.0:8443");
        assert!(a.publish_not_ready_addresses);
        assert_eq!(a.service_name_template.to_string(), "{name}");
        assert_eq!(a.orphan_service_grace, Duration::from_secs(300));
        assert_eq!(a.log_format, LogFormat::Text);
        assert_eq!(a.create_wait, crate::creates::DEFAULT_CREATE_WAIT);
        assert_eq!(
            a.max_creates_in_flight,
            crate::creates::DEFAULT_MAX_CREATES_IN_FLIGHT
        );
        let a = Args::try_parse_from([
            "sts-webhook",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--publish-not-ready-addresses",
            "false",
            "--service-name-template",
            "{name}-hl",
            "--log-format",
            "json",
            "--orphan-service-grace",
            "30s",
            "--create-wait",
            "500us",
            "--max-creates-in-flight",
            "8",
        ])
        .unwrap();
        assert_eq!(a.create_wait, Duration::from_micros(500));
        assert_eq!(a.max_creates_in_flight, 8);
        for bad in ["0", "100001"] {
            assert!(
                Args::try_parse_from(["sts-webhook", "--max-creates-in-flight", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(!a.publish_not_ready_addresses);
        assert_eq!(a.service_name_template.to_string(), "{name}-hl");
        assert_eq!(a.log_format, LogFormat::Json);
        assert_eq!(a.orphan_service_grace, Duration::from_secs(30));
        let err = Args::try_parse_from([
            "sts-webhook",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--service-name-template",
            "fixed",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("{name}"), "{err}");
    }

    #[test]
    fn negative_counts_are_refused_by_their_range_not_as_unknown_arguments() {
        for (flag, range) in [
            ("--watch-page-size", "1.."),
            ("--max-creates-in-flight", "1..=100000"),
        ] {
            let err = Args::try_parse_from(["sts-webhook", flag, "-1"]).unwrap_err();
            let text = err.to_string();
            assert!(
                err.kind() == clap::error::ErrorKind::ValueValidation
                    && text.contains(flag)
                    && text.contains(range),
                "{flag}: {text}"
            );
        }
    }

    #[test]
    fn reconciler_mode_needs_no_certificates_and_webhook_mode_does() {
        let a = Args::try_parse_from(["sts-webhook", "--mode", "reconciler"]).unwrap();
        assert_eq!(a.mode, Mode::Reconciler);
        let a = Args::try_parse_from(["sts-webhook"]).unwrap();
        assert_eq!(a.mode, Mode::Webhook);
        assert!(
            a.tls_files()
                .unwrap_err()
                .contains("--tls-cert and --tls-key")
        );
        let a = Args::try_parse_from(["sts-webhook", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert!(a.tls_files().is_ok());
    }
}
