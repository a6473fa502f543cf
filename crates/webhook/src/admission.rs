//! The HTTP surface: `POST /mutate`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! `/mutate` = parse the AdmissionReview → [`sts_model::mutation::mutate`] (pure) → make sure
//! the Service exists (cache lookup; API only to create, waited for at most `--create-wait`,
//! see [`crate::creates`]) → answer. The webhook never denies: every failure after parsing
//! becomes `allowed: true` with a warning.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hyper::body::{Frame, SizeHint};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionReview, Operation as AdmissionOp};
use serde::Serialize;
use std::borrow::Cow;

use sts_model::cached::CachedService;
use sts_model::headless::{Ownership, ServiceFacts, ownership};
use sts_model::mutation::{
    Mutation, MutationConfig, SERVICE_NAME_PATH, ServiceNameSource, ServicePlan, ServiceTarget,
    Skip, mutate_request,
};
use sts_model::service_health::{ServiceHealth, alternative_service_name, judge_service};

use crate::cache::Caches;
use crate::creates::{AdmissionCreates, AfterAnswer, CreateFailure, Started};
use crate::metrics::{Metrics, Operation, Outcome};
use crate::services::{ServiceWriter, check_existing_service};
use crate::slim::{SlimRequest, SlimReview, statefulset_of};

/// Largest accepted request body. The apiserver's own limit for objects is 3 MiB (etcd's
/// 1.5 MiB doubled for the old object on UPDATE, plus the review envelope fits well below).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub mutation: Arc<MutationConfig>,
    pub caches: Caches,
    pub writer: Arc<dyn ServiceWriter>,
    pub metrics: Metrics,
    /// How admission creates a missing Service: waited for at most `--create-wait`, then in
    /// the background, a bounded number at once (see [`crate::creates`]).
    pub creates: AdmissionCreates,
    /// Set once SIGTERM arrived: `/readyz` then answers 503 so the pod leaves its Service's
    /// endpoints while the server still answers (see `crate::server`).
    pub draining: crate::server::Draining,
}

/// The webhook's routes. Public so tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    routes(Router::new().route("/mutate", post(mutate_handler)), state)
}

/// Only `/healthz`, `/readyz` and `/metrics`: `--mode=reconciler`, where admission is done by a
/// MutatingAdmissionPolicy.
pub fn probe_router(state: AppState) -> Router {
    routes(Router::new(), state)
}

fn routes(router: Router<Arc<AppState>>, state: AppState) -> Router {
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // One Arc for the whole state: axum clones the state for every request, and cloning
        // AppState field by field would bump a dozen shared reference counts per request,
        // cache lines that then bounce between the worker threads.
        .with_state(Arc::new(state))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready once the watch caches have synced, which also proves the API client worked once (the
/// listener only exists after the TLS material loaded, so that part is implied), and until
/// shutdown begins.
///
/// A webhook whose watches fail later stays ready: admission needs no API call to set
/// `spec.serviceName`, creating a missing Service fails with a warning and is retried by the
/// reconciler, and an API server outage would otherwise take every replica out of the
/// Service at once, so that the apiserver would admit StatefulSets unmutated
/// (failurePolicy Ignore). Watch failures are counted in `sts_webhook_watch_errors_total`.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.is_set() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down").into_response();
    }
    if state.caches.ready() {
        return (StatusCode::OK, "ok").into_response();
    }
    let mut body =
        "not ready: Service/StatefulSet caches have not synced with the API server yet".to_owned();
    if let Some(error) = state.caches.last_error() {
        body.push_str(&format!(" (last watch error: {error})"));
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    let mut body = String::new();
    match state.metrics.encode(&mut body) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode metrics",
        )
            .into_response(),
    }
}

/// Whether the request says its body is JSON; read in place (axum's `HeaderMap` extractor
/// would copy every header of every request).
struct JsonContentType(bool);

impl<S: Send + Sync> FromRequestParts<S> for JsonContentType {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonContentType(is_json(&parts.headers)))
    }
}

/// `POST /mutate`.
async fn mutate_handler(
    State(state): State<Arc<AppState>>,
    JsonContentType(json): JsonContentType,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let (op, outcome, response, hold) = match review(&state, json, &body).await {
        Ok(answer) => answer,
        Err(bad) => {
            tracing::warn!(error = %bad.1, "rejected malformed admission request");
            (
                Operation::Other,
                Outcome::Invalid,
                bad.into_response(),
                None,
            )
        }
    };
    state.metrics.admission(op, outcome, start.elapsed());
    match hold {
        Some(hold) => response.map(|body| Body::new(ReleasedWithBody { body, _hold: hold })),
        None => response,
    }
}

/// An answer's body that carries a held-back Service create ([`AfterAnswer`]): the connection
/// drops the body once it has taken all of it, and that releases the create.
struct ReleasedWithBody {
    body: Body,
    _hold: AfterAnswer,
}

impl HttpBody for ReleasedWithBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A 4xx answer with a message saying what was wrong.
struct BadRequest(StatusCode, String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The answer, and the Service create it holds back, if any (see [`AfterAnswer`]).
type Answer = (Operation, Outcome, Response, Option<AfterAnswer>);

async fn review(state: &AppState, json: bool, body: &[u8]) -> Result<Answer, BadRequest> {
    if !json {
        return Err(BadRequest(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json (an AdmissionReview)".to_owned(),
        ));
    }
    // A borrowed view of the body: only the fields the mutation reads (see `slim`).
    let review = match SlimReview::parse(body) {
        Ok(r) => r,
        Err(typed_err) => {
            return untyped_review(body, &typed_err).map(|(op, out, resp)| (op, out, resp, None));
        }
    };
    let Some(req) = review.request.as_ref() else {
        return Err(BadRequest(
            StatusCode::BAD_REQUEST,
            "AdmissionReview has no request".to_owned(),
        ));
    };
    let op = match req.operation {
        AdmissionOp::Create => Operation::Create,
        AdmissionOp::Update => Operation::Update,
        _ => Operation::Other,
    };
    let (patch, warnings, hold) = decide(state, body, req).await;
    let outcome = if patch.is_some() {
        Outcome::Patched
    } else {
        Outcome::Allowed
    };
    let body = ReviewOut {
        api_version: &review.api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &req.uid,
            allowed: true,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            warnings: (!warnings.is_empty()).then_some(warnings),
        },
    };
    Ok((op, outcome, json_response(&body), hold))
}

/// The body did not parse as a StatefulSet review. Tell apart: not JSON / no request (400),
/// another kind (allowed, nothing to do), a StatefulSet our types cannot read (allowed with a
/// warning: never block a StatefulSet over a parsing disagreement).
fn untyped_review(
    body: &[u8],
    typed_err: &serde_json::Error,
) -> Result<(Operation, Outcome, Response), BadRequest> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).map_err(|e| {
        BadRequest(
            StatusCode::BAD_REQUEST,
            format!("request body is not an AdmissionReview: {e}"),
        )
    })?;
    let Some(req) = review.request else {
        return Err(BadRequest(
            StatusCode::BAD_REQUEST,
            "AdmissionReview has no request".to_owned(),
        ));
    };
    let mut warnings = Vec::new();
    if sts_model::mutation::is_statefulset_request(&req) {
        tracing::warn!(error = %typed_err, uid = %req.uid, "could not read StatefulSet; allowing unchanged");
        warnings.push(format!(
            "sts-webhook could not read this StatefulSet ({typed_err}); no serviceName or Service was added"
        ));
    }
    let body = ReviewOut {
        api_version: &review.types.api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &req.uid,
            allowed: true,
            patch: None,
            patch_type: None,
            warnings: (!warnings.is_empty()).then_some(warnings),
        },
    };
    Ok((Operation::Other, Outcome::Allowed, json_response(&body)))
}

/// Runs the model and the Service side effect; returns the base64 patch (if any), the
/// warnings, and a Service create held back until the answer has left (if any).
async fn decide(
    state: &AppState,
    body: &[u8],
    req: &SlimRequest<'_>,
) -> (Option<String>, Vec<String>, Option<AfterAnswer>) {
    let mut m = mutate_request(&req.view(), &state.mutation);
    if m.source == Some(ServiceNameSource::Injected) {
        avoid_a_taken_name(state, body, &mut m);
    }
    let mut warnings = m.warnings;
    let mut hold = None;
    let patch = m
        .add_service_name
        .as_deref()
        .and_then(|name| match encode_patch(name) {
            Ok(patch) => Some(patch),
            Err(err) => {
                // Cannot happen for a string; fail open all the same.
                state.metrics.error("encode_patch");
                warnings.push(format!("sts-webhook could not encode its patch: {err}"));
                None
            }
        });
    match m.service {
        ServicePlan::Ensure(target) => {
            let (namespace, name) = (target.namespace, &*target.name);
            let cached = state.caches.service(namespace, name);
            if req.dry_run {
                // sideEffects: NoneOnDryRun — create nothing, but still say what is wrong.
                match cached.as_deref() {
                    None => state.metrics.service_skipped("dry_run"),
                    Some(existing) => {
                        if sts_model::headless::check_existing(existing, target.statefulset)
                            == sts_model::headless::ExistingService::NotHeadless
                        {
                            warnings
                                .push(sts_model::headless::not_headless_warning(namespace, name));
                        }
                    }
                }
            } else if let Some(existing) = cached.as_deref() {
                // The hot path: the cache has it, so nothing to build or send.
                warnings.extend(existing_warning(state, existing, &target));
            } else {
                // Boxed: the create path's future is ~2 kB, and inline it would make every
                // request's future that much bigger (axum moves each one into a Box).
                let (warning, held) =
                    Box::pin(create_service(state, body, &req.uid, &target)).await;
                warnings.extend(warning);
                hold = held;
            }
        }
        ServicePlan::Skip(skip) => match skip {
            // Nothing was wanted in the first place.
            Skip::NotAStatefulSet | Skip::Operation | Skip::NoObject => {}
            Skip::NoServiceName if req.operation == AdmissionOp::Update => {}
            other => state.metrics.service_skipped(other.reason()),
        },
    }
    (patch, warnings, hold)
}

/// At CREATE, when the webhook picked the name: if a Service of that name already exists and
/// selects other pods (e.g. `s-0db` of another StatefulSet), pick a free name instead, and say
/// so. `serviceName` is
/// immutable: pointing it at such a Service could never be corrected. A Service the webhook
/// made for this very StatefulSet is taken as it is, without reading the body again.
fn avoid_a_taken_name(state: &AppState, body: &[u8], m: &mut Mutation<'_>) {
    let ServicePlan::Ensure(target) = &mut m.service else {
        return;
    };
    let namespace = target.namespace;
    let Some(existing) = state.caches.service(namespace, &target.name) else {
        return;
    };
    if ownership(&*existing, target.statefulset) == Ownership::Ours {
        return;
    }
    let Ok(Some(sts)) = statefulset_of(body) else {
        return;
    };
    // Only a selector that picks other pods is a collision. A Service without a selector
    // (endpoints managed by hand) is the user's design, and a non-headless one is reported by
    // the usual warning.
    if !existing.has_selector()
        || judge_service(&*existing, &sts) != ServiceHealth::SelectorMismatch
    {
        return;
    }
    let taken = target.name.to_string();
    match alternative_service_name(&taken, &sts, |n| state.caches.service(namespace, n)) {
        Some(free) => {
            m.warnings.push(format!(
                "Service {namespace}/{taken} already exists and selects other pods, so it would never give these pods DNS names; spec.serviceName is {free:?} instead"
            ));
            target.name = Cow::Owned(free.clone());
            m.add_service_name = Some(free);
        }
        None => m.warnings.push(format!(
            "Service {namespace}/{taken} already exists and selects other pods, and {taken}-2 … {taken}-9 are taken too: these pods get no DNS names; set spec.serviceName yourself"
        )),
    }
}

/// The JSON Patch that sets `spec.serviceName` (an `add`, which also replaces an empty value:
/// RFC 6902 §4.1), base64-encoded for the response: what
/// `Mutation::patch` holds, written from the borrowed name without building json-patch's types.
fn encode_patch(service_name: &str) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Add<'a> {
        op: &'static str,
        path: &'static str,
        value: &'a str,
    }
    let json = serde_json::to_vec(&[Add {
        op: "add",
        path: SERVICE_NAME_PATH,
        value: service_name,
    }])?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

/// An existing Service is never changed; a non-headless one gets a warning (and a metric).
fn existing_warning(
    state: &AppState,
    existing: &CachedService,
    target: &ServiceTarget<'_>,
) -> Option<String> {
    check_existing_service(
        existing,
        target.namespace,
        &target.name,
        target.statefulset,
        &state.metrics,
    )
    .warning()
    .map(str::to_owned)
}

/// The cache has no such Service: build it from the full StatefulSet (read from the body again)
/// and start creating it, waiting at most `--create-wait` for the API server (with none, the
/// create begins once the answer has left: the returned [`AfterAnswer`]). Returns the warning
/// for the user, if any: what went wrong when that is known before the answer leaves.
/// A create still in flight then finishes in the background and says nothing here (a warning
/// on nearly every create would be noise); its failures are counted and logged, and the
/// reconciler creates what it could not.
async fn create_service(
    state: &AppState,
    body: &[u8],
    uid: &str,
    target: &ServiceTarget<'_>,
) -> (Option<String>, Option<AfterAnswer>) {
    let (namespace, name) = (target.namespace, &*target.name);
    let built = match statefulset_of(body) {
        Ok(Some(sts)) => target
            .desired_service(&sts, &state.mutation.headless)
            .map_err(|reason| {
                // mutate() checked this can be built; say so rather than panic if that ever
                // changes.
                state.metrics.service_skipped(reason.reason());
                reason.to_string()
            }),
        Ok(None) => Err("the review has no object".to_owned()),
        Err(err) => {
            state.metrics.error("read_statefulset");
            tracing::warn!(error = %err, uid, "could not read the StatefulSet to build its Service");
            Err(format!("could not read the StatefulSet ({err})"))
        }
    };
    let service = match built {
        Ok(service) => service,
        Err(why) => {
            let warning = format!("no headless Service {namespace}/{name} was created: {why}");
            return (Some(warning), None);
        }
    };
    let started = state
        .creates
        .start(
            state.writer.clone(),
            service,
            target.statefulset.to_owned(),
            &state.metrics,
        )
        .await;
    let warning = match started {
        Started::Finished(Ok(done)) => done.warning().map(str::to_owned),
        Started::Finished(Err(CreateFailure::Api(err))) => Some(format!(
            "sts-webhook could not create headless Service {namespace}/{name}: {}; it will be retried in the background",
            err.reason()
        )),
        Started::Finished(Err(CreateFailure::TimedOut(_))) => Some(format!(
            "sts-webhook timed out creating headless Service {namespace}/{name}; it will be retried in the background"
        )),
        Started::InFlight(hold) => return (None, hold),
        Started::AtCap { in_flight } => Some(format!(
            "sts-webhook did not create headless Service {namespace}/{name} now: {in_flight} Service creates are in flight (the API server answers slowly); it will be created in the background"
        )),
    };
    (warning, None)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

fn json_response<T: Serialize>(body: &T) -> Response {
    // Room for a typical answer (uid, patch, a warning) without regrowing.
    let mut bytes = Vec::with_capacity(512);
    match serde_json::to_writer(&mut bytes, body) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to encode response: {err}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_patch_is_the_models_patch() {
        for name in ["web", "s-0db", "a\"b\\c", "ünïcode"] {
            let m = Mutation {
                add_service_name: Some(name.to_owned()),
                source: Some(sts_model::mutation::ServiceNameSource::Injected),
                warnings: Vec::new(),
                service: ServicePlan::Skip(Skip::NoObject),
            };
            let written = base64::engine::general_purpose::STANDARD
                .decode(encode_patch(name).unwrap())
                .unwrap();
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&written).unwrap(),
                serde_json::to_value(m.patch()).unwrap()
            );
        }
    }
}
