//! Service creates started by admission: the answer waits for a create at most `--create-wait`
//! (default: not at all, and the create begins once the answer has left), and a create still
//! in flight then finishes in the background, at most `--max-creates-in-flight` at once.
//!
//! Why: the API server times the webhook's whole answer
//! (`apiserver_admission_webhook_admission_duration_seconds`), and every StatefulSet create
//! waits for it. A Service create is an API write — authentication, authorization, admission,
//! an etcd write — that took 5–29 ms (means of 100; 5–10 ms when the machine is quiet) on the
//! local control plane on 2 shared cores, while the handler's own work takes 0.1–0.2 ms and the
//! API server sees the whole answer in 1.2–3.8 ms when no create is needed (README
//! "Performance"). Nothing about the StatefulSet needs the Service to exist before it is
//! stored: its pods get DNS names whenever a headless Service that selects them appears.
//!
//! What still holds, and why:
//! - every StatefulSet gets its Service: created here (before or after the answer), or, when
//!   that fails, times out, is not started at the cap, or the process stops first, healed by
//!   the reconciler (`crate::reconciler`), which creates the Service of every stored
//!   StatefulSet that lacks one on its next pass (after the StatefulSet's watch event, at the
//!   latest after its resync);
//! - a Service whose StatefulSet never got stored (refused by a later admission stage) is
//!   deleted by the reconciler as an orphan after `--orphan-service-grace`, whether it was
//!   created before or after the answer;
//! - a dry run creates nothing: admission never calls this for one;
//! - the answer never waits longer than `--create-wait` for the API server, so a slow or
//!   unreachable API server cannot fail or delay a StatefulSet create past the webhook's
//!   `timeoutSeconds`;
//! - the Service usually exists by the time the StatefulSet create returns in a burst of
//!   creates (94–100 % in the benchmark) and for a lone one (5 of 5 e2e runs, with
//!   `TCP_NODELAY`: see `crate::api_client`), because the API server still validates and stores
//!   the StatefulSet after the answer. It is no longer guaranteed, as it was when the create was
//!   waited for;
//! - a create, once started, is not cancelled with the request (it runs in a task of its own),
//!   and at shutdown the process waits for the creates in flight (at most [`CREATE_TIMEOUT`]);
//! - a failure known before the answer is a warning in it, as before (with a `--create-wait`;
//!   with none, nothing is known yet); a failure after the answer cannot be, so it is counted (`errors_total{kind="create_service"}`, or
//!   `create_service_timeout`) and logged, at most once per [`FAILURE_LOG_EVERY`] with the
//!   number of failures in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use tokio::sync::{Semaphore, oneshot};

use crate::metrics::{Metrics, Source};
use crate::server::RateLimitedWarning;
use crate::services::{CreateError, Ensured, ServiceWriter, ensure_service};

/// How often a failed create (or a refusal at the cap) is logged at most; the ones in between
/// are counted in the next line (and each one in the metrics).
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// How admission creates a missing Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateSettings {
    /// How long the answer waits for the create (`--create-wait`); a create that takes longer
    /// finishes in the background. Zero: never wait, and begin the create only once the
    /// answer has left.
    pub wait: Duration,
    /// How long a create may take in all, waited for or not; then it is abandoned, counted as
    /// `errors_total{kind="create_service_timeout"}` and left to the reconciler.
    pub timeout: Duration,
    /// Creates in flight at once (`--max-creates-in-flight`); beyond it admission starts none
    /// and leaves the Service to the reconciler (`services_skipped_total{reason="creates_in_flight"}`).
    pub max_in_flight: u32,
}

impl Default for CreateSettings {
    /// The defaults of the flags: no wait, give up after 3 s, 64 in flight.
    fn default() -> Self {
        CreateSettings {
            wait: DEFAULT_CREATE_WAIT,
            timeout: CREATE_TIMEOUT,
            max_in_flight: DEFAULT_MAX_CREATES_IN_FLIGHT,
        }
    }
}

/// `--create-wait`'s default: none. Measured with the release build on the local control plane
/// (2 shared cores, README "Performance"): a create took 5–29 ms, so a 1–3 ms wait ran out
/// nearly every time while it held every answer for the wait plus up to a millisecond of timer
/// resolution (tokio's timers tick in whole milliseconds; a 1 ms wait made the handler take
/// 2.4 ms), and a create begun before the answer slowed the answer by competing with it. With no wait the answer leaves first, and the
/// create begins once it has (see [`AfterAnswer`]). A wait lets a refusal that comes back
/// within it be a warning in the answer.
pub const DEFAULT_CREATE_WAIT: Duration = Duration::ZERO;

/// How long one create may take in all. The apiserver waits `timeoutSeconds` (5 s in deploy/)
/// for the answer; this bound matters for the background and for shutdown.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(3);

/// `--max-creates-in-flight`'s default. At the 5–29 ms a create takes, 64 in flight means
/// several thousand StatefulSet creates per second; it is reached only when the API server
/// stops answering, and then the reconciler (which retries with backoff) takes over.
pub const DEFAULT_MAX_CREATES_IN_FLIGHT: u32 = 64;

/// How a create that admission asked for went, as far as the answer can tell.
#[derive(Debug)]
pub enum Started {
    /// It finished before the wait ended.
    Finished(Result<Ensured, CreateFailure>),
    /// Still in flight when the wait ended: it finishes in the background. With no wait, it
    /// has not begun yet: it begins when the [`AfterAnswer`] is dropped, which admission
    /// attaches to the answer.
    InFlight(Option<AfterAnswer>),
    /// Not started: `max_in_flight` creates were already in flight.
    AtCap { in_flight: usize },
}

/// Holds a create back until dropped. Admission ties it to the answer's body, which the
/// connection drops once it has taken the whole answer: with no wait, the create then does not
/// compete with the answer for the CPU. Measured on 2 shared cores: a create begun before the
/// answer added 2–3.5 ms to the API server's view of the answer, one begun once the answer had
/// left 1–2 ms (README "Performance").
#[derive(Debug)]
pub struct AfterAnswer {
    _release: oneshot::Sender<()>,
}

/// Why a create did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CreateFailure {
    #[error(transparent)]
    Api(#[from] CreateError),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// Admission's Service creates: the settings, the slots for creates in flight, the rate
/// limits of their log lines. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AdmissionCreates {
    inner: Arc<Inner>,
}

struct Inner {
    settings: CreateSettings,
    slots: Arc<Semaphore>,
    failures: RateLimitedWarning,
    refusals: RateLimitedWarning,
}

impl AdmissionCreates {
    pub fn new(settings: CreateSettings) -> Self {
        AdmissionCreates {
            inner: Arc::new(Inner {
                settings,
                slots: Arc::new(Semaphore::new(settings.max_in_flight as usize)),
                failures: RateLimitedWarning::new(FAILURE_LOG_EVERY),
                refusals: RateLimitedWarning::new(FAILURE_LOG_EVERY),
            }),
        }
    }

    pub fn settings(&self) -> CreateSettings {
        self.inner.settings
    }

    /// Creates now in flight (waited for or in the background).
    pub fn in_flight(&self) -> usize {
        (self.inner.settings.max_in_flight as usize)
            .saturating_sub(self.inner.slots.available_permits())
    }

    /// Starts creating `service` (for StatefulSet `statefulset`) unless the cap is reached, and
    /// waits for it at most `settings.wait`; with no wait, the create begins only when the
    /// returned [`AfterAnswer`] is dropped. The create runs in a task of its own, so it goes on
    /// when this returns; it records its metrics (`services_created_total`,
    /// `errors_total`, `admission_service_create_duration_seconds`) and logs its failures
    /// either way.
    pub async fn start(
        &self,
        writer: Arc<dyn ServiceWriter>,
        service: Service,
        statefulset: String,
        metrics: &Metrics,
    ) -> Started {
        let settings = self.inner.settings;
        let Ok(permit) = self.inner.slots.clone().try_acquire_owned() else {
            let in_flight = self.in_flight();
            metrics.service_skipped("creates_in_flight");
            let (namespace, name) = names(&service);
            self.inner.refusals.warn(|suppressed| {
                tracing::warn!(
                    namespace,
                    service = name,
                    statefulset,
                    in_flight,
                    suppressed,
                    "not creating headless Service at admission: too many creates in flight (the API server is slow); the reconciler will create it"
                );
            });
            return Started::AtCap { in_flight };
        };
        metrics.admission_creates_in_flight(1);
        let (tx, rx) = oneshot::channel();
        // No wait: begin once the answer has left (see `AfterAnswer`).
        let (hold, held) = if settings.wait.is_zero() {
            let (release, released) = oneshot::channel::<()>();
            (Some(AfterAnswer { _release: release }), Some(released))
        } else {
            (None, None)
        };
        let task = {
            let creates = self.clone();
            let metrics = metrics.clone();
            async move {
                if let Some(released) = held {
                    // Dropped, never sent: either way the answer is out (or never will be).
                    let _ = released.await;
                }
                let begin = Instant::now();
                let result = match tokio::time::timeout(
                    settings.timeout,
                    ensure_service(
                        writer.as_ref(),
                        None,
                        &service,
                        &statefulset,
                        &metrics,
                        Source::Admission,
                    ),
                )
                .await
                {
                    Ok(done) => done.map_err(CreateFailure::Api),
                    Err(_) => {
                        metrics.error("create_service_timeout");
                        Err(CreateFailure::TimedOut(settings.timeout))
                    }
                };
                metrics.admission_service_create(begin.elapsed());
                creates.log(&service, &statefulset, &result, begin.elapsed());
                // The answer may have stopped waiting; then this outcome is only in the
                // metrics and the log.
                let _ = tx.send(result);
                drop(permit);
                metrics.admission_creates_in_flight(-1);
            }
        };
        tokio::spawn(task);
        if hold.is_some() {
            // Not even a zero-length timer: tokio's timers tick in whole milliseconds, and one
            // cost 1.4 ms here.
            metrics.admission_service_create_finished(false);
            return Started::InFlight(hold);
        }
        match tokio::time::timeout(settings.wait, rx).await {
            Ok(Ok(result)) => {
                metrics.admission_service_create_finished(true);
                Started::Finished(result)
            }
            // The task ended without an answer: it panicked; the reconciler heals.
            Ok(Err(_)) | Err(_) => {
                metrics.admission_service_create_finished(false);
                Started::InFlight(None)
            }
        }
    }

    /// A failed create's log line (rate limited); a non-headless Service found by a create
    /// that raced with its author is logged too (the answer may have left already).
    fn log(
        &self,
        service: &Service,
        statefulset: &str,
        result: &Result<Ensured, CreateFailure>,
        took: Duration,
    ) {
        let (namespace, name) = names(service);
        match result {
            Ok(Ensured::ExistsNotHeadless { warning }) => {
                tracing::info!(namespace, service = name, statefulset, "{warning}");
            }
            Ok(done) => tracing::debug!(
                namespace,
                service = name,
                statefulset,
                result = ?done,
                took_ms = took.as_secs_f64() * 1000.0,
                "ensured Service"
            ),
            Err(err) => self.inner.failures.warn(|suppressed| {
                tracing::warn!(
                    namespace,
                    service = name,
                    statefulset,
                    error = %crate::error_chain(err),
                    took_ms = took.as_secs_f64() * 1000.0,
                    suppressed,
                    "could not create headless Service at admission; the reconciler will retry"
                );
            }),
        }
    }

    /// Waits until no create is in flight, at most `within`; returns how many still are.
    /// Called at shutdown, after the server stopped answering.
    pub async fn drain(&self, within: Duration) -> usize {
        let all = self.inner.settings.max_in_flight;
        match tokio::time::timeout(within, self.inner.slots.acquire_many(all)).await {
            Ok(_) => 0,
            Err(_) => self.in_flight(),
        }
    }
}

fn names(service: &Service) -> (&str, &str) {
    (
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default(),
    )
}
