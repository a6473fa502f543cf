//! Prometheus metrics shared by the admission handler and the reconciler.
//!
//! One [`Metrics`] per process, cheap to clone (everything inside is an `Arc`), exported as
//! Prometheus text on `GET /metrics`. Names (all prefixed `sts_webhook_`):
//!
//! - `admission_requests_total{operation,outcome}` — `operation` is `CREATE|UPDATE|OTHER`,
//!   `outcome` is `patched|allowed|invalid`;
//! - `admission_duration_seconds` — histogram of the time spent answering `/mutate`;
//! - `services_created_total{source}` — `source` is `admission|reconciler`;
//! - `services_adopted_total` — ownerReferences added by the reconciler;
//! - `services_skipped_total{reason}` — a Service was wanted but not created (e.g. `not_headless`);
//! - `services_deleted_total` — managed Services removed because their StatefulSet never came;
//! - `errors_total{kind}` — failures by kind (e.g. `create_service`, `adopt_service`);
//! - `admission_service_create_duration_seconds` — histogram of the Service creates that
//!   admission started, from the call until the API server answered (or the create timed out),
//!   whether the answer waited for them or not (`crate::creates`);
//! - `admission_service_creates_total{finished}` — those creates by whether they finished
//!   `before_answer` (within `--create-wait`) or `after_answer` (in the background);
//! - `admission_creates_in_flight` — admission's Service creates in flight now (at most
//!   `--max-creates-in-flight`);
//! - `connections_open` — TLS connections being served now (at most `max_connections`);
//! - `connections_closed_total{reason}` — connections the server ended or refused, by
//!   [`Closed`] (`refused_at_limit`, `handshake_failed`, `handshake_timeout`, `header_timeout`,
//!   `idle_timeout`, `idle_shed`, `slow_shed`); connections that the client closed are not counted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why the server ended (or refused) a connection; see `crate::server` for the limits.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Closed {
    /// `max_connections` were open and none freed up in time.
    RefusedAtLimit,
    /// The TLS handshake failed (a scanner, a bad client certificate, a plain-HTTP client).
    HandshakeFailed,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// A request header did not arrive whole in time (slowloris).
    HeaderTimeout,
    /// A keep-alive connection stayed idle past the idle timeout.
    IdleTimeout,
    /// An idle keep-alive connection closed to make room at the connection cap.
    IdleShed,
    /// A connection whose header had been pending for over a second, closed to make room at
    /// the connection cap.
    SlowShed,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::RefusedAtLimit => "refused_at_limit",
            Closed::HandshakeFailed => "handshake_failed",
            Closed::HandshakeTimeout => "handshake_timeout",
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::IdleShed => "idle_shed",
            Closed::SlowShed => "slow_shed",
        }
    }
}

/// Who created a Service.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Source {
    Admission,
    Reconciler,
}

/// Admission operation, as a bounded label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    /// DELETE/CONNECT, or a review that could not be read far enough to tell.
    Other,
}

/// How an admission request ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed with a JSON Patch.
    Patched,
    /// Allowed without a patch.
    Allowed,
    /// The request could not be read (HTTP 4xx).
    Invalid,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Admission => "admission",
            Source::Reconciler => "reconciler",
        }
    }
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Other => "OTHER",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Allowed => "allowed",
            Outcome::Invalid => "invalid",
        }
    }
}

macro_rules! label_value_via_as_str {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
                fmt::Write::write_str(encoder, self.as_str())
            }
        }
    )*};
}
label_value_via_as_str!(Source, Operation, Outcome, Closed);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    operation: Operation,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: Source,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClosedLabels {
    reason: Closed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    finished: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The process's metrics. Clone freely; clones share the same counters.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    admission_requests: Family<AdmissionLabels, Counter>,
    admission_duration: Histogram,
    services_created: Family<SourceLabels, Counter>,
    services_adopted: Counter,
    services_skipped: Family<ReasonLabels, Counter>,
    services_deleted: Counter,
    services_kept: Family<ReasonLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    service_create_duration: Histogram,
    service_creates: Family<FinishedLabels, Counter>,
    creates_in_flight: Gauge,
    connections_open: Gauge,
    connections_closed: Family<ClosedLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sts_webhook");
        let admission_requests = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests answered, by operation and outcome",
            admission_requests.clone(),
        );
        // 50 µs … ~1.6 s: the hot path is sub-millisecond, an API create can take seconds.
        let admission_duration = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        registry.register(
            "admission_duration_seconds",
            "Time spent answering /mutate",
            admission_duration.clone(),
        );
        let services_created = Family::<SourceLabels, Counter>::default();
        registry.register(
            "services_created",
            "Headless Services created, by source (admission or reconciler)",
            services_created.clone(),
        );
        let services_adopted = Counter::default();
        registry.register(
            "services_adopted",
            "Managed Services given an ownerReference to their StatefulSet",
            services_adopted.clone(),
        );
        let services_skipped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "services_skipped",
            "Services wanted but not created, by reason",
            services_skipped.clone(),
        );
        let services_deleted = Counter::default();
        registry.register(
            "services_deleted",
            "Managed Services deleted because their StatefulSet never appeared",
            services_deleted.clone(),
        );
        let services_kept = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "services_kept",
            "Planned orphan deletions not done because fresh state showed the Service is not an orphan, by reason",
            services_kept.clone(),
        );
        let errors = Family::<KindLabels, Counter>::default();
        registry.register("errors", "Errors, by kind", errors.clone());
        // 0.5 ms … ~8 s: a create on an idle local API server takes a few ms, and admission
        // gives up on one after 3 s.
        let service_create_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
        registry.register(
            "admission_service_create_duration_seconds",
            "Time of the Service creates admission started, until the API server answered or the create timed out",
            service_create_duration.clone(),
        );
        let service_creates = Family::<FinishedLabels, Counter>::default();
        registry.register(
            "admission_service_creates",
            "Service creates admission started, by whether they finished before the answer (within --create-wait) or after it",
            service_creates.clone(),
        );
        let creates_in_flight = Gauge::default();
        registry.register(
            "admission_creates_in_flight",
            "Service creates started by admission and not finished yet",
            creates_in_flight.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "TLS connections being served",
            connections_open.clone(),
        );
        let connections_closed = Family::<ClosedLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server ended or refused, by reason",
            connections_closed.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                admission_requests,
                admission_duration,
                services_created,
                services_adopted,
                services_skipped,
                services_deleted,
                services_kept,
                errors,
                service_create_duration,
                service_creates,
                creates_in_flight,
                connections_open,
                connections_closed,
            }),
        }
    }

    /// One answered admission request and how long it took.
    pub fn admission(&self, operation: Operation, outcome: Outcome, elapsed: Duration) {
        self.inner
            .admission_requests
            .get_or_create(&AdmissionLabels { operation, outcome })
            .inc();
        self.inner.admission_duration.observe(elapsed.as_secs_f64());
    }

    pub fn service_created(&self, source: Source) {
        self.inner
            .services_created
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    pub fn service_adopted(&self) {
        self.inner.services_adopted.inc();
    }

    /// `reason` is a short snake_case word such as `not_headless`, `match_expressions`,
    /// `opted_out`, `dry_run`.
    pub fn service_skipped(&self, reason: &'static str) {
        self.inner
            .services_skipped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn service_deleted(&self) {
        self.inner.services_deleted.inc();
    }

    /// `reason` is [`sts_model::reconcile::Keep::reason`]: `statefulset_exists`, `owned`,
    /// `selects_pods`.
    pub fn service_kept(&self, reason: &'static str) {
        self.inner
            .services_kept
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// `kind` is a short snake_case word such as `create_service`, `adopt_service`,
    /// `delete_service`, `watch`.
    pub fn error(&self, kind: &'static str) {
        self.inner.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// A Service create that admission started has finished (answered, failed or timed out)
    /// after `elapsed`.
    pub fn admission_service_create(&self, elapsed: Duration) {
        self.inner
            .service_create_duration
            .observe(elapsed.as_secs_f64());
    }

    /// Whether a Service create that admission started finished before the answer left.
    pub fn admission_service_create_finished(&self, before_answer: bool) {
        let finished = if before_answer {
            "before_answer"
        } else {
            "after_answer"
        };
        self.inner
            .service_creates
            .get_or_create(&FinishedLabels { finished })
            .inc();
    }

    /// One more (`+1`) or one fewer (`-1`) admission create in flight.
    pub fn admission_creates_in_flight(&self, delta: i64) {
        self.inner.creates_in_flight.inc_by(delta);
    }

    /// A connection got a slot (before its TLS handshake).
    pub fn connection_opened(&self) {
        self.inner.connections_open.inc();
    }

    /// A connection that [`Metrics::connection_opened`] counted has ended.
    pub fn connection_ended(&self) {
        self.inner.connections_open.dec();
    }

    pub fn connection_closed(&self, reason: Closed) {
        self.inner
            .connections_closed
            .get_or_create(&ClosedLabels { reason })
            .inc();
    }

    /// Prometheus text exposition (OpenMetrics flavour, as prometheus-client writes it).
    pub fn encode(&self, out: &mut String) -> fmt::Result {
        encode(out, &self.inner.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_with_labels() {
        let m = Metrics::new();
        m.admission(
            Operation::Create,
            Outcome::Patched,
            Duration::from_micros(300),
        );
        m.service_created(Source::Admission);
        m.service_created(Source::Reconciler);
        m.service_created(Source::Reconciler);
        m.service_adopted();
        m.service_skipped("not_headless");
        m.service_deleted();
        m.error("create_service");
        m.connection_opened();
        m.connection_closed(Closed::HeaderTimeout);
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(
            text.contains(
                r#"sts_webhook_admission_requests_total{operation="CREATE",outcome="patched"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"sts_webhook_services_created_total{source="reconciler"} 2"#));
        assert!(text.contains(r#"sts_webhook_services_created_total{source="admission"} 1"#));
        assert!(text.contains("sts_webhook_services_adopted_total 1"));
        assert!(text.contains(r#"sts_webhook_services_skipped_total{reason="not_headless"} 1"#));
        assert!(text.contains("sts_webhook_services_deleted_total 1"));
        assert!(text.contains(r#"sts_webhook_errors_total{kind="create_service"} 1"#));
        assert!(text.contains("sts_webhook_admission_duration_seconds_count 1"));
        assert!(text.contains("sts_webhook_connections_open 1"), "{text}");
        assert!(
            text.contains(r#"sts_webhook_connections_closed_total{reason="header_timeout"} 1"#),
            "{text}"
        );
    }
}
