//! The router driven in-process over AdmissionReview JSON (no TLS, no apiserver): the
//! Service API is a recording fake, the cache is filled with fixed objects.

// Test crate: helpers outside #[test] fns unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde_json::{Value, json};
use sts_model::mutation::MutationConfig;
use sts_webhook::cache::Caches;
use sts_webhook::creates::{AdmissionCreates, CreateSettings};
use sts_webhook::metrics::Metrics;
use sts_webhook::services::{CreateError, ServiceWriter};
use sts_webhook::{AppState, router};
use tower::ServiceExt;

const CREATE: &str = include_str!("fixtures/create-statefulset.json");

/// A Service API that records creates, answers after `delay`, and fails if told to.
#[derive(Default)]
struct FakeApi {
    /// Every create call, when it was made.
    created: Mutex<Vec<Service>>,
    /// Names of the Services whose create has answered (after `delay`).
    finished: Mutex<Vec<String>>,
    fail: bool,
    delay: Duration,
}

impl ServiceWriter for FakeApi {
    fn create<'a>(&'a self, svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
        Box::pin(async move {
            self.created.lock().unwrap().push(svc.clone());
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.finished
                .lock()
                .unwrap()
                .push(svc.metadata.name.clone().unwrap_or_default());
            if self.fail {
                Err(CreateError::NoNamespace)
            } else {
                Ok(true)
            }
        })
    }
}

struct Harness {
    api: Arc<FakeApi>,
    state: AppState,
}

/// The API answers at once, and the answer waits up to 1 s for it: creates finish before the
/// answer (the background path has tests of its own, with a slow API).
fn harness(existing: Vec<Service>, fail: bool) -> Harness {
    harness_with(
        existing,
        FakeApi {
            fail,
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_in_flight: 64,
        },
    )
}

fn harness_with(existing: Vec<Service>, api: FakeApi, creates: CreateSettings) -> Harness {
    let api = Arc::new(api);
    let state = AppState {
        mutation: Arc::new(MutationConfig::default()),
        caches: Caches::from_objects(existing, vec![]),
        writer: api.clone(),
        metrics: Metrics::new(),
        creates: AdmissionCreates::new(creates),
        draining: Default::default(),
    };
    Harness { api, state }
}

fn service(name: &str, cluster_ip: &str) -> Service {
    let mut s = Service::default();
    s.metadata.name = Some(name.into());
    s.metadata.namespace = Some("demo".into());
    s.spec = Some(ServiceSpec {
        cluster_ip: Some(cluster_ip.into()),
        ..Default::default()
    });
    s
}

async fn call(
    h: &Harness,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = router(h.state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

async fn mutate(h: &Harness, review: &Value) -> Value {
    let (status, body) = call(
        h,
        "POST",
        "/mutate",
        Some("application/json"),
        serde_json::to_vec(review).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn create_review() -> Value {
    serde_json::from_str(CREATE).unwrap()
}

fn decoded_patch(resp: &Value) -> Value {
    let b64 = resp["response"]["patch"].as_str().expect("patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn warnings(resp: &Value) -> Vec<String> {
    resp["response"]["warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

async fn metrics_text(h: &Harness) -> String {
    let (status, body) = call(h, "GET", "/metrics", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn create_patches_and_creates_the_service() {
    let h = harness(vec![], false);
    let resp = mutate(&h, &create_review()).await;
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(resp["kind"], "AdmissionReview");
    assert_eq!(
        resp["response"]["uid"],
        "0b7a3c1e-5d1f-4c3e-9a55-2f7f1c0d7e11"
    );
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(resp["response"]["patchType"], "JSONPatch");
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
    );
    assert!(warnings(&resp).is_empty(), "{resp}");

    let created = h.api.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    let svc = &created[0];
    assert_eq!(svc.metadata.name.as_deref(), Some("web"));
    assert_eq!(svc.metadata.namespace.as_deref(), Some("demo"));
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
    let ports: Vec<_> = spec
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect();
    assert_eq!(ports, vec![("http".into(), 80), ("metrics".into(), 9113)]);

    let text = metrics_text(&h).await;
    assert!(
        text.contains(
            r#"sts_webhook_admission_requests_total{operation="CREATE",outcome="patched"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"sts_webhook_services_created_total{source="admission"} 1"#));
}

#[tokio::test]
async fn existing_headless_service_is_left_alone() {
    let h = harness(vec![service("web", "None")], false);
    let resp = mutate(&h, &create_review()).await;
    assert_eq!(decoded_patch(&resp)[0]["value"], "web");
    assert!(warnings(&resp).is_empty());
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn existing_regular_service_is_reported_not_touched() {
    let h = harness(vec![service("web", "10.0.0.7")], false);
    let resp = mutate(&h, &create_review()).await;
    assert_eq!(resp["response"]["allowed"], true);
    let w = warnings(&resp);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("demo/web") && w[0].contains("not headless"),
        "{w:?}"
    );
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn dry_run_creates_nothing_but_still_patches() {
    let h = harness(vec![], false);
    let mut review = create_review();
    review["request"]["dryRun"] = json!(true);
    let resp = mutate(&h, &review).await;
    assert_eq!(decoded_patch(&resp)[0]["value"], "web");
    assert!(h.api.created.lock().unwrap().is_empty());
    assert!(
        metrics_text(&h)
            .await
            .contains(r#"services_skipped_total{reason="dry_run"} 1"#)
    );
}

#[tokio::test]
async fn create_failure_still_admits_with_a_warning() {
    let h = harness(vec![], true);
    let resp = mutate(&h, &create_review()).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(decoded_patch(&resp)[0]["value"], "web");
    let w = warnings(&resp);
    assert!(
        w.iter()
            .any(|w| w.contains("could not create headless Service demo/web")),
        "{w:?}"
    );
    assert_eq!(h.api.created.lock().unwrap().len(), 1);
    assert!(
        metrics_text(&h)
            .await
            .contains(r#"errors_total{kind="create_service"} 1"#)
    );
}

#[tokio::test]
async fn update_ensures_the_service_and_restores_only_a_missing_service_name() {
    let h = harness(vec![], false);
    let mut review = create_review();
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["object"]["spec"]["serviceName"] = json!("web");
    review["request"]["oldObject"] = review["request"]["object"].clone();
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none(), "{resp}");
    assert!(resp["response"].get("patchType").is_none(), "{resp}");
    assert_eq!(h.api.created.lock().unwrap().len(), 1);

    // UPDATE sending "" over a stored "web" (a re-applied manifest): the stored value is put
    // back, with a warning, and the Service ensured.
    let h = harness(vec![], false);
    review["request"]["object"]["spec"]["serviceName"] = json!("");
    let resp = mutate(&h, &review).await;
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
    );
    assert!(
        warnings(&resp)
            .iter()
            .any(|w| w.contains("kept spec.serviceName \"web\"")),
        "{resp}"
    );
    assert_eq!(h.api.created.lock().unwrap().len(), 1);

    // UPDATE of a StatefulSet stored without serviceName: nothing at all (it is immutable).
    let h = harness(vec![], false);
    review["request"]["oldObject"]["spec"]["serviceName"] = json!("");
    let resp = mutate(&h, &review).await;
    assert!(resp["response"].get("patch").is_none());
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn other_kinds_are_allowed_unchanged() {
    let h = harness(vec![], false);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "pod-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p", "namespace": "demo", "operation": "CREATE",
            "userInfo": {"username": "u"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "c", "image": "x"}], "serviceName": 7}},
            "oldObject": null
        }
    });
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["uid"], "pod-1");
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none());
    assert!(warnings(&resp).is_empty());
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn api_version_is_echoed() {
    let h = harness(vec![], false);
    let mut review = create_review();
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1beta1");
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_message() {
    let h = harness(vec![], false);
    let (status, body) = call(
        &h,
        "POST",
        "/mutate",
        Some("application/json"),
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not an AdmissionReview"));

    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (status, body) = call(
        &h,
        "POST",
        "/mutate",
        Some("application/json"),
        serde_json::to_vec(&no_request).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("no request"),
        "{body:?}"
    );

    let (status, _) = call(&h, "POST", "/mutate", Some("application/json"), Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Not UTF-8, even where the webhook reads nothing (a managedFields key here).
    let mut review = serde_json::to_vec(&create_review()).unwrap();
    let at = review
        .windows(b"f:app".len())
        .position(|w| w == b"f:app")
        .expect("the fixture has managedFields");
    review[at] = 0xff;
    let (status, body) = call(&h, "POST", "/mutate", Some("application/json"), review).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    assert!(String::from_utf8_lossy(&body).contains("not an AdmissionReview"));
    assert!(metrics_text(&h).await.contains(r#"outcome="invalid"} 4"#));
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let h = harness(vec![], false);
    for ct in [Some("text/plain"), None] {
        let (status, body) = call(&h, "POST", "/mutate", ct, CREATE.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("application/json"));
    }
    // parameters are fine
    let (status, _) = call(
        &h,
        "POST",
        "/mutate",
        Some("application/json; charset=utf-8"),
        CREATE.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let h = harness(vec![], false);
    let mut big = create_review();
    big["request"]["object"]["metadata"]["annotations"]["pad"] = json!("x".repeat(9 * 1024 * 1024));
    let (status, _) = call(
        &h,
        "POST",
        "/mutate",
        Some("application/json"),
        serde_json::to_vec(&big).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unreadable_statefulset_is_admitted_with_a_warning() {
    let h = harness(vec![], false);
    // A field the decision reads, with the wrong type: allowed unchanged, and said so.
    let mut review = create_review();
    review["request"]["object"]["spec"]["selector"]["matchLabels"]["app"] = json!(7);
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none());
    assert!(warnings(&resp)[0].contains("could not read"), "{resp}");
    // A field read only to build the Service (on a cache miss): the serviceName is still
    // added, and the Service that could not be built is reported.
    let mut review = create_review();
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
        json!("eighty");
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
    );
    let w = warnings(&resp);
    assert!(
        w[0].contains("no headless Service demo/web was created: could not read the StatefulSet"),
        "{resp}"
    );
    assert!(h.api.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn health_and_readiness() {
    let h = harness(vec![], false);
    let (status, body) = call(&h, "GET", "/healthz", None, vec![]).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ok".as_slice())
    );
    let (status, _) = call(&h, "GET", "/readyz", None, vec![]).await;
    assert_eq!(status, StatusCode::OK);

    // Caches watching an apiserver that is not there never sync: not ready, saying why, and
    // the failed watches are counted.
    let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let metrics = sts_webhook::metrics::Metrics::new();
    let (caches, watch) = Caches::start(client, metrics.clone());
    let watch = tokio::spawn(watch);
    let unready = Harness {
        api: h.api.clone(),
        state: AppState {
            caches,
            metrics,
            ..h.state.clone()
        },
    };
    let begin = std::time::Instant::now();
    let body = loop {
        let (status, body) = call(&unready, "GET", "/readyz", None, vec![]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body = String::from_utf8_lossy(&body).into_owned();
        if body.contains("last watch error") || begin.elapsed() > Duration::from_secs(10) {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body.starts_with("not ready: "), "{body}");
    assert!(
        body.contains("last watch error: ") && body.contains("connect"),
        "{body}"
    );
    let (_, metrics) = call(&unready, "GET", "/metrics", None, vec![]).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sts_webhook_errors_total{kind=\"watch_") && !l.ends_with(" 0")),
        "{metrics}"
    );
    watch.abort();

    // From SIGTERM on, not ready (the pod leaves its Service's endpoints), whatever the caches.
    h.state.draining.set();
    let (status, body) = call(&h, "GET", "/readyz", None, vec![]).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down")
    );
}

/// POSTs raw bytes to /mutate; returns the status and the body as text.
async fn post_raw(h: &Harness, body: Vec<u8>) -> (StatusCode, String) {
    let (status, body) = call(h, "POST", "/mutate", Some("application/json"), body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn envelope_fields_missing_or_of_the_wrong_type_are_400() {
    let h = harness(vec![], false);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "no uid",
            Box::new(|r| drop(r["request"].as_object_mut().unwrap().remove("uid"))),
        ),
        (
            "no kind",
            Box::new(|r| drop(r["request"].as_object_mut().unwrap().remove("kind"))),
        ),
        (
            "no resource",
            Box::new(|r| drop(r["request"].as_object_mut().unwrap().remove("resource"))),
        ),
        (
            "no userInfo",
            Box::new(|r| drop(r["request"].as_object_mut().unwrap().remove("userInfo"))),
        ),
        (
            "no operation",
            Box::new(|r| drop(r["request"].as_object_mut().unwrap().remove("operation"))),
        ),
        ("numeric uid", Box::new(|r| r["request"]["uid"] = json!(5))),
        (
            "unknown operation",
            Box::new(|r| r["request"]["operation"] = json!("FROB")),
        ),
        (
            "string dryRun",
            Box::new(|r| r["request"]["dryRun"] = json!("yes")),
        ),
        (
            "kind is a string",
            Box::new(|r| r["request"]["kind"] = json!("StatefulSet")),
        ),
        (
            "request is an array",
            Box::new(|r| r["request"] = json!([])),
        ),
    ];
    for (what, edit) in cases {
        let mut review = create_review();
        edit(&mut review);
        let (status, body) = post_raw(&h, serde_json::to_vec(&review).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(body.contains("not an AdmissionReview"), "{what}: {body}");
    }
    assert!(h.api.created.lock().unwrap().is_empty());
    let (status, body) = post_raw(&h, b"{\"request\": null}".to_vec()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "AdmissionReview has no request")
    );
}

#[tokio::test]
async fn escaped_uid_is_echoed_decoded_and_missing_object_is_allowed() {
    let h = harness(vec![], false);
    let mut review = create_review();
    review["request"]["uid"] = json!("a\"b\\c\u{e9}");
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["uid"], "a\"b\\c\u{e9}");
    assert!(resp["response"]["patch"].is_string());
    assert_eq!(h.api.created.lock().unwrap().len(), 1);

    let mut review = create_review();
    review["request"]["object"] = Value::Null;
    let resp = mutate(&h, &review).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none(), "{resp}");
    assert_eq!(h.api.created.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn skipped_fields_are_not_read() {
    // userInfo, options and oldObject's unread fields are skipped unparsed: odd contents there
    // change nothing.
    let h = harness(vec![], false);
    let mut review = create_review();
    review["request"]["userInfo"] = json!({"username": 7, "extra": [[[]]]});
    review["request"]["options"] = json!("not an object");
    review["request"]["oldObject"] = json!({"spec": {"template": 5, "replicas": "x"}});
    let resp = mutate(&h, &review).await;
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
    );
    assert_eq!(h.api.created.lock().unwrap().len(), 1);
}

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn deep_json_is_a_clear_answer_never_a_crash() {
    let h = harness(vec![], false);
    let text = serde_json::to_string(&create_review()).unwrap();
    // Deep inside a field the decision reads: the view's parse fails, and the fallback (which
    // reads the object as a JSON tree) stops at serde_json's recursion limit → 400.
    let deep_read = text.replacen(
        r#""matchLabels":{"app":"web"}"#,
        &format!(r#""matchLabels":{{"app":{}}}"#, nested(100_000)),
        1,
    );
    assert_ne!(deep_read, text);
    let (status, body) = post_raw(&h, deep_read.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("recursion limit"), "{body}");
    // Deep inside a field read only to build the Service: that read fails at once (a number
    // was expected), so the answer is the patch and a warning.
    let deep_built = text.replacen(
        r#""containerPort":80"#,
        &format!(r#""containerPort":{}"#, nested(100_000)),
        1,
    );
    assert_ne!(deep_built, text);
    let (status, body) = post_raw(&h, deep_built.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("could not read the StatefulSet"), "{body}");
    // Deep inside a field that is skipped: skipping does not recurse, so it is simply skipped.
    let deep_skipped = text.replacen(
        r#""selector":{"#,
        &format!(r#""selector":{{"deep":{},"#, nested(100_000)),
        1,
    );
    assert_ne!(deep_skipped, text);
    let (status, body) = post_raw(&h, deep_skipped.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Unbalanced garbage: 400.
    let (status, body) = post_raw(&h, nested(200_000).as_bytes()[..200_000].to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Only the readable review created its Service.
    assert_eq!(h.api.created.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_large_review_under_the_limit_is_handled() {
    let h = harness(vec![], false);
    let mut review = create_review();
    review["request"]["object"]["metadata"]["annotations"]["pad"] = json!("\"x\\".repeat(700_000));
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > 3 * 1024 * 1024);
    let (status, text) = post_raw(&h, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let resp: Value = serde_json::from_str(&text).unwrap();
    assert!(resp["response"]["patch"].is_string(), "{resp}");
}

/// Issue 10: `0db` derives `s-0db`; a Service `s-0db` of another StatefulSet, selecting other
/// pods, already exists. `serviceName` can never change, so pointing at it would leave these
/// pods without DNS for good: the webhook picks `s-0db-2` and says why.
#[tokio::test]
async fn a_derived_name_taken_by_a_service_of_other_pods_is_not_used() {
    let mut taken = service("s-0db", "None");
    taken.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "other".to_owned())].into());
    let mut review = create_review();
    review["request"]["name"] = json!("0db");
    review["request"]["object"]["metadata"]["name"] = json!("0db");
    let h = harness(vec![taken.clone()], false);
    let resp = mutate(&h, &review).await;
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "s-0db-2"}])
    );
    assert!(
        warnings(&resp).iter().any(|w| w.contains(
            "Service demo/s-0db already exists and selects other pods, so it would never give these pods DNS names; spec.serviceName is \"s-0db-2\" instead"
        )),
        "{resp}"
    );
    let created = h.api.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].metadata.name.as_deref(), Some("s-0db-2"));

    // A Service of that name that does select these pods is used as it is.
    let app = review["request"]["object"]["spec"]["selector"]["matchLabels"].clone();
    let mut fits = service("s-0db", "None");
    fits.spec.as_mut().unwrap().selector = Some(serde_json::from_value(app).unwrap());
    let h = harness(vec![fits], false);
    let resp = mutate(&h, &review).await;
    assert_eq!(
        decoded_patch(&resp),
        json!([{"op": "add", "path": "/spec/serviceName", "value": "s-0db"}])
    );
    assert!(h.api.created.lock().unwrap().is_empty());

    // A user-given serviceName is never changed.
    review["request"]["object"]["spec"]["serviceName"] = json!("s-0db");
    let h = harness(vec![taken], false);
    let resp = mutate(&h, &review).await;
    assert!(resp["response"].get("patch").is_none(), "{resp}");
}

/// The value of the series `series` (name and labels as written in the exposition), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls the metrics until `series` reaches `want` (at most 5 s); returns the metrics text.
async fn metric_reaches(h: &Harness, series: &str, want: f64) -> String {
    let begin = std::time::Instant::now();
    loop {
        let text = metrics_text(h).await;
        if metric(&text, series) == want || begin.elapsed() > Duration::from_secs(5) {
            assert_eq!(metric(&text, series), want, "{series}\n{text}");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A review for StatefulSet `name` (its Service is `name` too).
fn create_review_of(name: &str) -> Value {
    let mut review = create_review();
    review["request"]["name"] = json!(name);
    review["request"]["object"]["metadata"]["name"] = json!(name);
    review
}

/// An API server that takes 400 ms per Service create: the answer leaves after the 20 ms wait,
/// with the patch and without a warning, and the Service is created afterwards, counted as
/// an admission create that finished after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_create_is_answered_within_the_wait_and_finishes_in_the_background() {
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(400),
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::from_millis(20),
            timeout: Duration::from_secs(3),
            max_in_flight: 8,
        },
    );
    let begin = std::time::Instant::now();
    let resp = mutate(&h, &create_review()).await;
    let answered = begin.elapsed();
    assert!(
        answered >= Duration::from_millis(20) && answered < Duration::from_millis(300),
        "answered after {answered:?}"
    );
    assert_eq!(decoded_patch(&resp)[0]["value"], "web");
    assert!(warnings(&resp).is_empty(), "{resp}");
    // Started, not finished, when the answer left.
    assert_eq!(h.api.created.lock().unwrap().len(), 1);
    assert!(h.api.finished.lock().unwrap().is_empty());
    let text = metrics_text(&h).await;
    assert_eq!(
        metric(
            &text,
            r#"sts_webhook_admission_service_creates_total{finished="after_answer"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "sts_webhook_admission_creates_in_flight"),
        1.0
    );
    assert_eq!(h.state.creates.in_flight(), 1);

    // Then it finishes on its own.
    let text = metric_reaches(
        &h,
        r#"sts_webhook_services_created_total{source="admission"}"#,
        1.0,
    )
    .await;
    assert_eq!(*h.api.finished.lock().unwrap(), vec!["web".to_owned()]);
    assert_eq!(
        metric(
            &text,
            "sts_webhook_admission_service_create_duration_seconds_count"
        ),
        1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "sts_webhook_admission_service_create_duration_seconds_sum"
        ) >= 0.4,
        "{text}"
    );
    let text = metric_reaches(&h, "sts_webhook_admission_creates_in_flight", 0.0).await;
    assert_eq!(
        metric(&text, "sts_webhook_errors_total{kind=\"create_service\"}"),
        0.0
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Creates that fail after the answer left: no warning (the answer had gone), each failure
/// counted in `errors_total{kind="create_service"}`, and logged at most once per 10 s with the
/// number of failures left out.
// One thread: the background tasks run where the log subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn failures_after_the_answer_are_counted_and_logged_rate_limited() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(100),
            fail: true,
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::from_millis(5),
            timeout: Duration::from_secs(3),
            max_in_flight: 8,
        },
    );
    for name in ["web", "db", "cache"] {
        let resp = mutate(&h, &create_review_of(name)).await;
        assert_eq!(decoded_patch(&resp)[0]["value"], name);
        assert!(warnings(&resp).is_empty(), "{resp}");
    }
    let text = metric_reaches(&h, "sts_webhook_errors_total{kind=\"create_service\"}", 3.0).await;
    assert_eq!(
        metric(
            &text,
            r#"sts_webhook_admission_service_creates_total{finished="after_answer"}"#
        ),
        3.0
    );
    assert!(!text.contains("services_created_total{"), "{text}");
    metric_reaches(&h, "sts_webhook_admission_creates_in_flight", 0.0).await;
    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not create headless Service at admission"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("namespace=\"demo\"") || lines[0].contains("namespace=demo"),
        "{log}"
    );
    assert!(
        lines[0].contains("the Service to create has no namespace"),
        "{log}"
    );
}

/// A create that outlasts its timeout is abandoned: counted as `create_service_timeout`, its
/// slot freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_outlasts_its_timeout_is_abandoned_and_counted() {
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_secs(30),
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::from_millis(10),
            timeout: Duration::from_millis(200),
            max_in_flight: 8,
        },
    );
    let resp = mutate(&h, &create_review()).await;
    assert!(warnings(&resp).is_empty(), "{resp}");
    let text = metric_reaches(
        &h,
        "sts_webhook_errors_total{kind=\"create_service_timeout\"}",
        1.0,
    )
    .await;
    assert!(!text.contains("services_created_total{"), "{text}");
    metric_reaches(&h, "sts_webhook_admission_creates_in_flight", 0.0).await;
    assert!(h.api.finished.lock().unwrap().is_empty());
}

/// At `max_in_flight` creates in flight, admission starts no more: the answer says so, the
/// skip is counted, and once a slot frees up creates start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_no_create_is_started_and_the_answer_says_so() {
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(300),
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::from_millis(10),
            timeout: Duration::from_secs(3),
            max_in_flight: 1,
        },
    );
    let first = mutate(&h, &create_review_of("web")).await;
    assert!(warnings(&first).is_empty(), "{first}");
    let second = mutate(&h, &create_review_of("db")).await;
    assert_eq!(decoded_patch(&second)[0]["value"], "db");
    assert_eq!(
        warnings(&second),
        vec![
            "sts-webhook did not create headless Service demo/db now: 1 Service creates are in flight (the API server answers slowly); it will be created in the background"
                .to_owned()
        ]
    );
    assert_eq!(h.api.created.lock().unwrap().len(), 1, "db was started");
    assert!(
        metrics_text(&h)
            .await
            .contains(r#"services_skipped_total{reason="creates_in_flight"} 1"#)
    );
    // The slot frees up when web's create answers.
    metric_reaches(&h, "sts_webhook_admission_creates_in_flight", 0.0).await;
    let third = mutate(&h, &create_review_of("db")).await;
    assert!(warnings(&third).is_empty(), "{third}");
    metric_reaches(
        &h,
        r#"sts_webhook_services_created_total{source="admission"}"#,
        2.0,
    )
    .await;
    assert_eq!(
        *h.api.finished.lock().unwrap(),
        vec!["web".to_owned(), "db".to_owned()]
    );
}

/// A dry run creates nothing even when the API is slow (nothing is started, nothing is left in
/// flight), and a failure that answers within the wait is still a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_start_nothing_and_quick_failures_are_still_warnings() {
    let settings = CreateSettings {
        wait: Duration::from_millis(500),
        timeout: Duration::from_secs(3),
        max_in_flight: 8,
    };
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(200),
            ..FakeApi::default()
        },
        settings,
    );
    let mut review = create_review();
    review["request"]["dryRun"] = json!(true);
    let resp = mutate(&h, &review).await;
    assert_eq!(decoded_patch(&resp)[0]["value"], "web");
    assert!(warnings(&resp).is_empty(), "{resp}");
    assert_eq!(h.state.creates.in_flight(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.api.created.lock().unwrap().is_empty());

    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(20),
            fail: true,
            ..FakeApi::default()
        },
        settings,
    );
    let resp = mutate(&h, &create_review()).await;
    assert_eq!(
        warnings(&resp),
        vec![
            "sts-webhook could not create headless Service demo/web: the Service has no namespace; it will be retried in the background"
                .to_owned()
        ]
    );
    let text = metrics_text(&h).await;
    assert_eq!(
        metric(
            &text,
            r#"sts_webhook_admission_service_creates_total{finished="before_answer"}"#
        ),
        1.0,
        "{text}"
    );
}

/// At shutdown the creates left in flight are waited for (bounded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_the_creates_in_flight() {
    let h = harness_with(
        vec![],
        FakeApi {
            delay: Duration::from_millis(300),
            ..FakeApi::default()
        },
        CreateSettings {
            wait: Duration::ZERO,
            timeout: Duration::from_secs(3),
            max_in_flight: 8,
        },
    );
    mutate(&h, &create_review_of("web")).await;
    mutate(&h, &create_review_of("db")).await;
    assert_eq!(h.state.creates.drain(Duration::from_millis(50)).await, 2);
    assert_eq!(h.state.creates.drain(Duration::from_secs(3)).await, 0);
    let mut finished = h.api.finished.lock().unwrap().clone();
    finished.sort();
    assert_eq!(finished, vec!["db".to_owned(), "web".to_owned()]);
}

/// With no wait (the default), the answer leaves at once and the create begins only once the
/// connection has taken the whole answer (it drops the body), so it never competes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_wait_the_create_begins_after_the_answer_has_left() {
    let h = harness_with(vec![], FakeApi::default(), CreateSettings::default());
    assert_eq!(CreateSettings::default().wait, Duration::ZERO);
    let req = Request::builder()
        .method("POST")
        .uri("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(CREATE))
        .unwrap();
    let resp = router(h.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.state.creates.in_flight(), 1, "a slot is taken at once");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        h.api.created.lock().unwrap().is_empty(),
        "the create began before the answer was taken"
    );
    // The connection takes the answer (and drops its body): the create begins.
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(decoded_patch(&answer)[0]["value"], "web");
    assert!(warnings(&answer).is_empty(), "{answer}");
    metric_reaches(
        &h,
        r#"sts_webhook_services_created_total{source="admission"}"#,
        1.0,
    )
    .await;
    assert_eq!(h.api.created.lock().unwrap().len(), 1);

    // An answer that is never taken (the connection went away) releases it too.
    let req = Request::builder()
        .method("POST")
        .uri("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::to_vec(&create_review_of("db")).unwrap(),
        ))
        .unwrap();
    drop(router(h.state.clone()).oneshot(req).await.unwrap());
    metric_reaches(
        &h,
        r#"sts_webhook_services_created_total{source="admission"}"#,
        2.0,
    )
    .await;
}
