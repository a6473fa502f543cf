//! Retrying throttled requests, with bounded waits that honour `Retry-After`, and the
//! per-request timeout of `--request-timeout`.
//!
//! What is retried, and why it is safe (as client-go's `rest.Request` does, which retries a
//! response that carries `Retry-After` with status 429 or 5xx, up to 10 times):
//! - **429 Too Many Requests**, any verb: the API server's max-in-flight and priority-and-
//!   fairness filters answer 429 *before* the request reaches a handler, so nothing was done.
//! - **503 Service Unavailable with `Retry-After`**, any verb: the server sends it while it
//!   starts or shuts down (`--shutdown-send-retry-after`), again before handling anything.
//! - **503 without `Retry-After`, and 504**, only for GET: a proxy or a timeout in front of a
//!   handler may have let a write through, and repeating a DELETE or PATCH that already
//!   happened is not harmless. Reads are.
//!
//! Bounds ([`RETRIES`], [`MAX_WAIT`], [`TOTAL_WAIT`]): at most 5 retries (6 attempts); each
//! wait is `Retry-After` seconds (an integer; the HTTP-date form counts as absent), else a
//! jittered exponential backoff from 250 ms (tower's [`ExponentialBackoff`]), capped at 10 s;
//! all waits of one request add up to at most 30 s. When the next wait would go past that
//! budget, or the retries are used up, the request fails with [`Throttled`] (mapped to
//! [`crate::Error::Throttled`]), which names the status, the attempts and the time waited.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;
use tower::BoxError;
use tower::retry::Policy;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::util::rng::HasherRng;

/// Retries after the first attempt.
pub const RETRIES: u32 = 5;
/// The longest single wait, whatever `Retry-After` asks for.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// The most one request may spend waiting between its attempts.
pub const TOTAL_WAIT: Duration = Duration::from_secs(30);
/// The first backoff when the server gives no `Retry-After`.
const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// The request was throttled (or the server unavailable) on every attempt allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}; gave up after {attempts} attempt(s) and {waited_ms} ms of waiting{}",
    describe(*.status),
    retry_after_note(*.retry_after)
)]
pub struct Throttled {
    /// The last response's status code (429, 503 or 504).
    pub status: u16,
    /// Requests sent, the first included.
    pub attempts: u32,
    /// Time spent waiting between them, in milliseconds.
    pub waited_ms: u64,
    /// The last response's `Retry-After`, in seconds, when it had one.
    pub retry_after: Option<u64>,
}

fn describe(status: u16) -> String {
    match status {
        429 => "the API server is throttling requests (HTTP 429 Too Many Requests)".into(),
        503 => "the API server is unavailable (HTTP 503 Service Unavailable)".into(),
        code => format!("the API server did not answer in time (HTTP {code})"),
    }
}

fn retry_after_note(retry_after: Option<u64>) -> String {
    match retry_after {
        Some(s) => format!(" (its last Retry-After: {s} s)"),
        None => String::new(),
    }
}

/// `--request-timeout` passed before the server answered one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no answer within --request-timeout={}", format_timeout(*.after))]
pub struct RequestTimedOut {
    pub after: Duration,
}

/// `5s`, `1m30s`, `1.5s`: how the timeout was given back to the user.
pub fn format_timeout(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{}s", d.as_secs_f64());
    }
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The retry policy of the plugin's client (see the module docs). Cloned per request by
/// tower's `Retry`, so the attempt count and the wait budget are per request.
#[derive(Clone)]
pub struct ThrottleRetry {
    backoff: ExponentialBackoff,
    attempts: u32,
    waited: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        Self::new()
    }
}

impl ThrottleRetry {
    pub fn new() -> Self {
        let backoff = ExponentialBackoffMaker::new(MIN_BACKOFF, MAX_WAIT, 0.5, HasherRng::new())
            .expect("250 ms ≤ 10 s and a jitter of 0.5 are valid")
            .make_backoff();
        Self {
            backoff,
            attempts: 1,
            waited: Duration::ZERO,
        }
    }
}

impl ThrottleRetry {
    /// The wait before sending the request again (`None`: do not retry, the response stands),
    /// or [`Throttled`] when the bounds are used up. Counts the retry it allows.
    pub fn next_wait(
        &mut self,
        method: &Method,
        status: StatusCode,
        retry_after: Option<u64>,
    ) -> Result<Option<Duration>, Throttled> {
        if !retryable(method, status, retry_after.is_some()) {
            return Ok(None);
        }
        let backoff = self
            .backoff
            .next_backoff()
            .deadline()
            .saturating_duration_since(Instant::now());
        let wait = retry_after
            .map_or(backoff, Duration::from_secs)
            .min(MAX_WAIT);
        if self.attempts > RETRIES || self.waited + wait > TOTAL_WAIT {
            return Err(Throttled {
                status: status.as_u16(),
                attempts: self.attempts,
                waited_ms: u64::try_from(self.waited.as_millis()).unwrap_or(u64::MAX),
                retry_after,
            });
        }
        tracing::debug!(
            status = status.as_u16(),
            ?retry_after,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            attempt = self.attempts,
            "throttled; retrying"
        );
        self.attempts += 1;
        self.waited += wait;
        Ok(Some(wait))
    }
}

/// `Retry-After` in seconds, when it is the integer form.
pub fn retry_after(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a response with `status` to a `method` request may be sent again (module docs).
pub fn retryable(method: &Method, status: StatusCode, has_retry_after: bool) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::SERVICE_UNAVAILABLE if has_retry_after => true,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => method == Method::GET,
        _ => false,
    }
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for ThrottleRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let Ok(response) = result else { return None };
        let after = retry_after(response.headers());
        match self.next_wait(req.method(), response.status(), after) {
            Ok(None) => None,
            Ok(Some(wait)) => Some(tokio::time::sleep(wait)),
            Err(gave_up) => {
                *result = Err(Box::new(gave_up));
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Only buffered bodies can be sent again (kube's requests all are).
        let body = req.body().try_clone()?;
        let mut copy = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(
        policy: &mut ThrottleRetry,
        method: Method,
        status: u16,
        after: Option<&str>,
    ) -> Result<Option<Duration>, Throttled> {
        let mut headers = http::HeaderMap::new();
        if let Some(a) = after {
            headers.insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_str(a).expect("header"),
            );
        }
        let status = StatusCode::from_u16(status).expect("status");
        policy.next_wait(&method, status, retry_after(&headers))
    }

    #[tokio::test]
    async fn retry_after_is_honoured_capped_and_bounded() {
        let mut p = ThrottleRetry::new();
        assert_eq!(
            answer(&mut p, Method::DELETE, 429, Some("1")),
            Ok(Some(Duration::from_secs(1)))
        );
        // Capped at MAX_WAIT.
        assert_eq!(
            answer(&mut p, Method::DELETE, 429, Some("3600")),
            Ok(Some(MAX_WAIT))
        );
        assert_eq!(
            answer(&mut p, Method::DELETE, 429, Some("10")),
            Ok(Some(MAX_WAIT))
        );
        // 21 s waited; another 10 would pass the 30 s budget.
        let gave_up = answer(&mut p, Method::DELETE, 429, Some("10")).unwrap_err();
        assert_eq!(
            gave_up,
            Throttled {
                status: 429,
                attempts: 4,
                waited_ms: 21_000,
                retry_after: Some(10)
            }
        );
        assert_eq!(
            gave_up.to_string(),
            "the API server is throttling requests (HTTP 429 Too Many Requests); gave up after 4 attempt(s) and 21000 ms of waiting (its last Retry-After: 10 s)"
        );
    }

    #[tokio::test]
    async fn at_most_five_retries() {
        let mut p = ThrottleRetry::new();
        for _ in 0..RETRIES {
            assert_eq!(
                answer(&mut p, Method::GET, 429, Some("0")),
                Ok(Some(Duration::ZERO))
            );
        }
        let gave_up = answer(&mut p, Method::GET, 429, Some("0")).unwrap_err();
        assert_eq!(gave_up.attempts, RETRIES + 1);
    }

    #[tokio::test]
    async fn only_safe_requests_are_retried() {
        let mut p = ThrottleRetry::new();
        // No Retry-After: backoff from 250 ms (jitter adds up to half of it).
        let wait = answer(&mut p, Method::GET, 503, None)
            .unwrap()
            .expect("GET retried");
        assert!(
            wait >= MIN_BACKOFF - Duration::from_millis(50) && wait <= MIN_BACKOFF * 2,
            "{wait:?}"
        );
        assert!(answer(&mut p, Method::GET, 504, None).unwrap().is_some());
        // A write may have happened behind a 504 or a bare 503: not repeated.
        assert_eq!(answer(&mut p, Method::PATCH, 504, None), Ok(None));
        assert_eq!(answer(&mut p, Method::DELETE, 503, None), Ok(None));
        // 503 with Retry-After: the server did not handle it.
        assert!(
            answer(&mut p, Method::DELETE, 503, Some("1"))
                .unwrap()
                .is_some()
        );
        for other in [200, 409, 500, 404] {
            assert_eq!(answer(&mut p, Method::GET, other, Some("1")), Ok(None));
        }
        // The HTTP-date form counts as absent.
        assert!(
            retry_after(&http::HeaderMap::from_iter([(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")
            )]))
            .is_none()
        );
    }

    #[test]
    fn timeouts_are_said_as_they_were_given() {
        assert_eq!(format_timeout(Duration::from_secs(5)), "5s");
        assert_eq!(format_timeout(Duration::from_secs(60)), "1m");
        assert_eq!(format_timeout(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_timeout(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_timeout(Duration::from_secs(3600)), "1h");
    }
}
