//! e2e: sts-webhook (the real binary, as deploy/base's ServiceAccount) when its API server
//! fails, and when it is stopped under load.
//!
//! Each test runs its own sts-webhook processes, registered for its own namespace only, so
//! these tests need a cluster WITHOUT the suite's webhook (whose reconciler would heal the
//! Services these tests expect theirs to heal), one test at a time (each webhook's
//! reconciler watches every namespace). Hence `#[ignore]`: the `api-faults` stage of
//! tests/e2e-matrix.sh runs them:
//!
//! ```text
//! cargo build --workspace --bins
//! target/debug/sts-cluster run -- cargo nextest run -p sts-e2e --test api_faults \
//!     --run-ignored only --test-threads 1
//! ```
//!
//! Faults come from the harness (tests/src/faults.rs): a TCP relay between the webhook and the
//! API server that can be cut, and a validating webhook that makes the real API server refuse
//! Service creates with 409, 429 (Retry-After) or 500.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, ensure};
use base64::Engine as _;
use common::*;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{DeleteParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;
use sts_e2e::certs::CertAuthority;
use sts_e2e::faults::{Fault, FaultWebhook, Relay, Seen};
use sts_e2e::webhook::{WebhookOptions, WebhookRunner, configuration};

/// Namespace label that selects a test's namespace for its own webhooks.
const SCOPE_LABEL: &str = "sts-e2e.dev/faults";
/// Who the webhooks are (deploy/base's ServiceAccount).
const WEBHOOK_USER: &str = "system:serviceaccount:sts-webhook:sts-webhook";

/// One test's namespace, CA, scratch dir and the API server's address.
struct Setup {
    ns: TestNs,
    scope: String,
    dir: tempfile::TempDir,
    ca: CertAuthority,
    /// The API server's URL and the PEM of the CA its serving certificate chains to, from the
    /// e2e kubeconfig.
    api_url: String,
    api_ca_pem: String,
    configs: Vec<String>,
}

impl Setup {
    async fn new(scenario: &str) -> Result<Self> {
        let scope = format!("{scenario}-{}", std::process::id());
        let ns = TestNs::for_own_webhook(
            scenario,
            BTreeMap::from([(SCOPE_LABEL.to_owned(), scope.clone())]),
        )
        .await?;
        let dir = tempfile::tempdir()?;
        let ca = CertAuthority::generate(dir.path(), "ca", "sts-e2e-faults-ca")?;
        let kubeconfig = Kubeconfig::read_from(&ns.env.kubeconfig)?;
        let cluster = kubeconfig
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| anyhow!("the e2e kubeconfig has no cluster"))?;
        let api_url = cluster
            .server
            .ok_or_else(|| anyhow!("the e2e kubeconfig's cluster has no server"))?;
        let ca_data = cluster
            .certificate_authority_data
            .ok_or_else(|| anyhow!("the e2e kubeconfig has no certificate-authority-data"))?;
        let api_ca_pem =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(ca_data)?)?;
        Ok(Self {
            ns,
            scope,
            dir,
            ca,
            api_url,
            api_ca_pem,
            configs: Vec::new(),
        })
    }

    fn api_port(&self) -> Result<u16> {
        self.api_url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| anyhow!("no port in {}", self.api_url))
    }

    /// A kubeconfig for `server` with a token of deploy/base's ServiceAccount.
    async fn webhook_kubeconfig(&self, server: &str, stem: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(format!("{stem}.kubeconfig"));
        sts_e2e::rbac::webhook_kubeconfig(&self.ns.client, &self.api_ca_pem, server, &path).await?;
        Ok(path)
    }

    /// An sts-webhook process (not started) using `kubeconfig`.
    fn webhook(&self, kubeconfig: &Path, name: &str, extra: &[&str]) -> Result<WebhookRunner> {
        let opts = WebhookOptions {
            extra_args: extra.iter().map(|s| (*s).to_owned()).collect(),
            log_name: format!("{name}.log"),
            ..WebhookOptions::default()
        };
        // Its own directory: the runner writes its serving certificate to <dir>/pki.
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(dir.join("pki"))?;
        Ok(WebhookRunner::new(opts, &dir, &self.ca, kubeconfig)?)
    }

    /// Registers a MutatingWebhookConfiguration like the suite's (deploy/'s rules, failurePolicy
    /// Ignore), for this namespace only, sending reviews to `url`; waits until a dry-run create
    /// comes back with `spec.serviceName`.
    async fn register_mutating(&mut self, url: &str) -> Result<()> {
        let minor = self
            .ns
            .client
            .apiserver_version()
            .await?
            .minor
            .trim_end_matches('+')
            .parse::<u32>()
            .unwrap_or(0);
        let mut value = serde_json::to_value(configuration(
            url,
            self.ca.issued.cert_pem.as_str(),
            minor >= 30,
        )?)?;
        let name = format!("sts-e2e-faults-{}", self.ns.name);
        value["metadata"]["name"] = json!(name);
        value["webhooks"][0]["namespaceSelector"] =
            json!({ "matchLabels": { SCOPE_LABEL: self.scope } });
        let config: MutatingWebhookConfiguration = serde_json::from_value(value)?;
        kube::Api::<MutatingWebhookConfiguration>::all(self.ns.client.clone())
            .create(&PostParams::default(), &config)
            .await
            .context("registering the test's MutatingWebhookConfiguration")?;
        self.configs.push(name);
        let probe = StsFixture::new("probe", 0).build();
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        until(
            "the test's webhook to mutate",
            self.ns.timeout(),
            || async {
                let created = self.ns.sts().create(&dry_run, &probe).await.ok()?;
                service_name(&created).is_some().then_some(())
            },
        )
        .await
    }

    /// A FaultWebhook registered for Service CREATEs in this namespace.
    async fn fault_webhook(&self) -> Result<FaultWebhook> {
        let faults = FaultWebhook::start(&self.ca, self.dir.path()).await?;
        faults
            .register(
                &self.ns.client,
                &format!("sts-e2e-faults-{}", self.ns.name),
                (SCOPE_LABEL, &self.scope),
                json!([{
                    "apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
                    "operations": ["CREATE"], "scope": "Namespaced",
                }]),
            )
            .await?;
        // Effective once a dry-run create reaches it.
        let probe: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": { "name": "fault-probe" },
            "spec": { "clusterIP": "None", "ports": [{ "port": 80 }] },
        }))?;
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        until(
            "the fault webhook to be called",
            self.ns.timeout(),
            || async {
                let _ = self.ns.services().create(&dry_run, &probe).await;
                faults.seen().iter().any(|s| s.dry_run).then_some(())
            },
        )
        .await?;
        Ok(faults)
    }

    async fn cleanup(&self) {
        for name in &self.configs {
            let _ = kube::Api::<MutatingWebhookConfiguration>::all(self.ns.client.clone())
                .delete(name, &DeleteParams::default())
                .await;
        }
    }
}

/// [`eventually`] for a probe that answers `Some` when done.
async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually(what, timeout, || {
        let answer = probe();
        async move {
            Ok(match answer.await {
                Some(v) => Probe::Done(v),
                None => Probe::NotYet("not yet".to_owned()),
            })
        }
    })
    .await
}

fn service_name(sts: &StatefulSet) -> Option<&str> {
    sts.spec
        .as_ref()?
        .service_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The value of series `series` (name and labels as exposed) on the webhook's /metrics; 0 when
/// absent.
async fn metric(webhook: &WebhookRunner, series: &str) -> Result<f64> {
    let (code, text) = webhook.get("/metrics").await?;
    ensure!(code == 200, "/metrics answered {code}");
    Ok(text
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0))
}

/// Waits (10 s at most) until `errors_total{kind="create_service"}` plus
/// `{kind="create_service_timeout"}` is at least `want`: the admission creates that failed
/// after the answer had left are counted.
async fn admission_create_failed(webhook: &WebhookRunner, want: f64) -> Result<()> {
    let failed = "sts_webhook_errors_total{kind=\"create_service\"}";
    let timed_out = "sts_webhook_errors_total{kind=\"create_service_timeout\"}";
    until(
        &format!("{failed} + {timed_out} to reach {want}"),
        Duration::from_secs(10),
        || async {
            let n = metric(webhook, failed).await.ok()? + metric(webhook, timed_out).await.ok()?;
            (n >= want).then_some(())
        },
    )
    .await
}

/// Non-dry-run Service CREATEs the webhook sent for `name`, oldest first.
fn creates_of<'a>(seen: &'a [Seen], name: &str) -> Vec<&'a Seen> {
    seen.iter()
        .filter(|s| s.name == name && !s.dry_run && s.user == WEBHOOK_USER)
        .collect()
}

/// Unreachable at start, then back; unreachable mid-run, then back. Admission answers
/// throughout (serviceName set; no warning about the Service, whose create begins after the
/// answer: its failure is counted in `errors_total{kind="create_service"}`), `/readyz` fails
/// until the first sync and stays ready after it, the reconciler creates each missing Service
/// once the server is back, and the API server sees exactly one create of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster without the suite's webhook: the api-faults stage of tests/e2e-matrix.sh"]
async fn the_webhook_admits_while_the_api_server_is_unreachable_and_heals_once_it_is_back()
-> Result<()> {
    let mut setup = Setup::new("unreachable").await?;
    let faults = setup.fault_webhook().await?;
    let relay = Relay::start(vec![setup.api_port()?]).await?;
    relay.cut();
    let kubeconfig = setup.webhook_kubeconfig(&relay.url(), "via-relay").await?;
    let mut webhook = setup.webhook(&kubeconfig, "sts-webhook-unreachable", &[])?;
    webhook.spawn().await?;
    let result = unreachable_scenario(&mut setup, &faults, &relay, &mut webhook).await;
    if result.is_err() {
        eprintln!(
            "--- sts-webhook log ---\n{}",
            sts_e2e::process::log_tail(webhook.log(), 60)
        );
    }
    webhook.stop().await;
    let _ = faults.unregister(&setup.ns.client).await;
    setup.cleanup().await;
    result
}

async fn unreachable_scenario(
    setup: &mut Setup,
    faults: &FaultWebhook,
    relay: &Relay,
    webhook: &mut WebhookRunner,
) -> Result<()> {
    let ns = &setup.ns;
    // Unreachable at start: alive, not ready, and /readyz says why.
    let unready = until("/readyz to name the watch error", ns.timeout(), || async {
        let (code, body) = webhook.get("/readyz").await.ok()?;
        (code == 503 && body.contains("last watch error")).then_some(body)
    })
    .await?;
    ensure!(
        unready.starts_with("not ready: ") && unready.to_lowercase().contains("connect"),
        "{unready}"
    );
    ensure!(webhook.get("/healthz").await?.0 == 200, "/healthz failed");
    setup.register_mutating(&webhook.url()).await?;
    let ns = &setup.ns;

    let (web, warnings) = ns
        .create_with_warnings(&StsFixture::new("web", 0).build())
        .await?;
    ensure!(
        service_name(&web) == Some("web"),
        "serviceName was not injected while the API server was unreachable: {:?}",
        web.spec.as_ref().and_then(|s| s.service_name.as_ref())
    );
    // The answer left before the create began (--create-wait 0s): nothing to warn about yet.
    ensure!(
        !warnings.iter().any(|w| w.contains("headless Service")),
        "a warning about the Service although its create begins after the answer: {warnings:?}"
    );
    admission_create_failed(webhook, 1.0).await?;
    ensure!(ns.services().get_opt("web").await?.is_none());
    let attempts_at_start = relay.dropped();

    let back = Instant::now();
    relay.restore();
    until("/readyz once the server is back", ns.timeout(), || async {
        matches!(webhook.get("/readyz").await, Ok((200, _))).then_some(())
    })
    .await?;
    let ready_after = back.elapsed();
    let svc = ns.wait_service("web").await?;
    let healed_after = back.elapsed();
    eprintln!(
        "unreachable at start: {attempts_at_start} connection attempts while cut; ready {:.1}s and Service web created {:.1}s after the server came back",
        ready_after.as_secs_f64(),
        healed_after.as_secs_f64()
    );

    // Unreachable mid-run.
    let errors_before =
        metric(webhook, "sts_webhook_errors_total{kind=\"watch_services\"}").await?;
    relay.cut();
    let cut_at = Instant::now();
    let (db, warnings) = ns
        .create_with_warnings(&StsFixture::new("db", 0).build())
        .await?;
    ensure!(
        service_name(&db) == Some("db"),
        "serviceName not injected mid-outage"
    );
    ensure!(
        !warnings.iter().any(|w| w.contains("headless Service")),
        "a warning about the Service mid-outage: {warnings:?}"
    );
    admission_create_failed(webhook, 2.0).await?;
    // Ready all along the outage (the caches are stale, admission still works).
    while cut_at.elapsed() < Duration::from_secs(12) {
        let (code, body) = webhook.get("/readyz").await?;
        ensure!(
            code == 200,
            "/readyz failed during the outage: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let attempts_mid_run = relay.dropped() - attempts_at_start;
    let errors_after = metric(webhook, "sts_webhook_errors_total{kind=\"watch_services\"}").await?;
    ensure!(
        errors_after > errors_before,
        "the cut watch was not counted: errors_total{{kind=watch_services}} {errors_before} -> {errors_after}"
    );
    // No tight loop: client-go's backoff (0.8 s doubling to 30 s) for two watches, plus the
    // one admission create, in 12 s.
    ensure!(
        attempts_mid_run <= 30,
        "{attempts_mid_run} connection attempts in 12 s of outage"
    );
    let back = Instant::now();
    relay.restore();
    ns.wait_service("db").await?;
    let healed_after = back.elapsed();
    eprintln!(
        "unreachable mid-run: /readyz 200 throughout 12 s, {attempts_mid_run} connection attempts, watch errors {errors_before} -> {errors_after}; Service db created {:.1}s after the server came back",
        healed_after.as_secs_f64()
    );

    // Nothing created twice: one create of each reached the API server, the reconciler
    // made both, and web is the same object as before.
    let seen = faults.seen();
    for name in ["web", "db"] {
        let creates = creates_of(&seen, name);
        ensure!(
            creates.len() == 1,
            "the API server saw {} creates of Service {name}: {creates:?}",
            creates.len()
        );
    }
    ensure!(
        metric(
            webhook,
            "sts_webhook_services_created_total{source=\"reconciler\"}"
        )
        .await?
            == 2.0,
        "the reconciler should have created web and db"
    );
    let web_now = ns.services().get("web").await?;
    ensure!(
        web_now.metadata.uid == svc.metadata.uid,
        "Service web was re-created"
    );
    Ok(())
}

/// The API server refuses the webhook's Service creates with 429 (Retry-After 8 s), 500 and
/// 409 (Conflict): admission answers without a warning (its create begins after the answer)
/// and logs the server's message, the reconciler retries each with its backoff (5 s doubling)
/// and never sooner than Retry-After, every refused attempt (admission's in the background
/// included) is counted in `errors_total{kind="create_service"}`, and once the server
/// accepts, each Service is created exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster without the suite's webhook: the api-faults stage of tests/e2e-matrix.sh"]
async fn refused_service_creates_are_counted_logged_and_retried_with_backoff() -> Result<()> {
    let mut setup = Setup::new("refused").await?;
    let faults = setup.fault_webhook().await?;
    let kubeconfig = setup
        .webhook_kubeconfig(&setup.api_url.clone(), "direct")
        .await?;
    let mut webhook = setup.webhook(&kubeconfig, "sts-webhook-refused", &[])?;
    webhook.start().await?;
    setup.register_mutating(&webhook.url()).await?;
    let result = refused_scenario(&setup, &faults, &webhook).await;
    if result.is_err() {
        eprintln!(
            "--- sts-webhook log ---\n{}",
            sts_e2e::process::log_tail(webhook.log(), 60)
        );
    }
    webhook.stop().await;
    let _ = faults.unregister(&setup.ns.client).await;
    setup.cleanup().await;
    result
}

/// A StatefulSet's name, how its Service creates are refused, and the least wait between two
/// reconciler attempts after attempt n = 1, 2, … (s).
type RefusalCase = (&'static str, Fault, fn(usize) -> f64);

async fn refused_scenario(
    setup: &Setup,
    faults: &FaultWebhook,
    webhook: &WebhookRunner,
) -> Result<()> {
    let ns = &setup.ns;
    let cases: [RefusalCase; 3] = [
        (
            "throttled",
            Fault {
                code: 429,
                reason: "TooManyRequests".into(),
                message: "too many requests, retry later".into(),
                retry_after_seconds: 8,
            },
            |n| (5.0 * f64::from(1u32 << (n - 1))).max(8.0),
        ),
        (
            "failing",
            Fault {
                code: 500,
                reason: "InternalError".into(),
                message: "etcd is having a bad day".into(),
                retry_after_seconds: 0,
            },
            |n| 5.0 * f64::from(1u32 << (n - 1)),
        ),
        (
            "conflicting",
            Fault {
                code: 409,
                reason: "Conflict".into(),
                message: "the object has been modified".into(),
                retry_after_seconds: 0,
            },
            |n| 5.0 * f64::from(1u32 << (n - 1)),
        ),
    ];
    for (name, fault, _) in &cases {
        faults.arm(name, fault.clone());
    }
    let start = Instant::now();
    for (name, _, _) in &cases {
        let (sts, warnings) = ns
            .create_with_warnings(&StsFixture::new(name, 0).build())
            .await?;
        ensure!(
            service_name(&sts) == Some(*name),
            "serviceName not injected for {name}"
        );
        // --create-wait 0s: the refusal comes after the answer, so it is no warning.
        ensure!(
            !warnings.iter().any(|w| w.contains("headless Service")),
            "{name}: a warning about the Service although its create begins after the answer: {warnings:?}"
        );
    }
    let window = Duration::from_secs(20);
    tokio::time::sleep(window.saturating_sub(start.elapsed())).await;
    let seen = faults.seen();
    let mut refused_total = 0;
    for (name, fault, least_gap) in &cases {
        let creates = creates_of(&seen, name);
        refused_total += creates.len();
        // The first is admission's; the reconciler's follow.
        ensure!(
            creates.len() >= 3,
            "{name} ({}): only {} attempts in {window:?}; the reconciler did not retry",
            fault.code,
            creates.len()
        );
        ensure!(
            creates.len() <= 5,
            "{name} ({}): {} attempts in {window:?}: a tight loop",
            fault.code,
            creates.len()
        );
        let gaps: Vec<f64> = creates
            .windows(2)
            .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64())
            .collect();
        // gaps[0] is admission -> first reconciler pass; the retries follow.
        for (n, gap) in gaps.iter().enumerate().skip(1) {
            ensure!(
                *gap >= least_gap(n) - 0.5,
                "{name} ({}): retry {n} came {gap:.1}s after the previous attempt, expected at least {:.0}s; gaps {gaps:.1?}",
                fault.code,
                least_gap(n)
            );
        }
        eprintln!(
            "{name}: HTTP {} -> {} attempts in {window:?}, gaps {gaps:.1?} s",
            fault.code,
            creates.len()
        );
    }
    let counted = metric(webhook, "sts_webhook_errors_total{kind=\"create_service\"}").await?;
    ensure!(
        counted as usize == refused_total,
        "errors_total{{kind=create_service}} is {counted}, the API server refused {refused_total}"
    );
    // Admission's refusals are logged, at most one line per 10 s: the first one, with the
    // server's message.
    let log = std::fs::read_to_string(webhook.log())?;
    let line = log
        .lines()
        .find(|l| l.contains("could not create headless Service at admission"))
        .with_context(|| format!("admission's refused create was not logged:\n{log}"))?;
    ensure!(
        line.contains(&cases[0].1.message),
        "the log line does not carry the server's message {:?}: {line}",
        cases[0].1.message
    );

    faults.disarm();
    let accepted = Instant::now();
    for (name, _, _) in &cases {
        ns.wait_service(name).await?;
    }
    eprintln!(
        "all three Services created {:.1}s after the server accepted again",
        accepted.elapsed().as_secs_f64()
    );
    let seen = faults.seen();
    for (name, _, _) in &cases {
        let accepted: Vec<_> = creates_of(&seen, name)
            .into_iter()
            .filter(|s| !s.refused)
            .collect();
        ensure!(
            accepted.len() == 1,
            "{name}: {} accepted creates",
            accepted.len()
        );
    }
    ensure!(
        metric(
            webhook,
            "sts_webhook_services_created_total{source=\"reconciler\"}"
        )
        .await?
            == 3.0,
        "the reconciler should have created the three Services"
    );
    Ok(())
}

/// Two webhook replicas behind a connection-level load balancer (like kube-proxy), admission
/// load from the real API server, SIGTERM to one replica and, a second later, its endpoint
/// removed: not one admission request fails (a failed call would come back from the API
/// server without spec.serviceName, failurePolicy Ignore).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster without the suite's webhook: the api-faults stage of tests/e2e-matrix.sh"]
async fn sigterm_under_load_fails_no_admission_request() -> Result<()> {
    let mut setup = Setup::new("sigterm").await?;
    let kubeconfig = setup
        .webhook_kubeconfig(&setup.api_url.clone(), "direct")
        .await?;
    let mut a = setup.webhook(&kubeconfig, "sts-webhook-a", &["--shutdown-delay=5s"])?;
    let mut b = setup.webhook(&kubeconfig, "sts-webhook-b", &["--shutdown-delay=5s"])?;
    a.start().await?;
    b.start().await?;
    let lb = Relay::start(vec![a.port(), b.port()]).await?;
    setup
        .register_mutating(&format!("https://127.0.0.1:{}/mutate", lb.port()))
        .await?;
    let result = sigterm_scenario(&setup, &lb, &mut a, &b).await;
    if result.is_err() {
        eprintln!(
            "--- replica a ---\n{}",
            sts_e2e::process::log_tail(a.log(), 40)
        );
        eprintln!(
            "--- replica b ---\n{}",
            sts_e2e::process::log_tail(b.log(), 40)
        );
    }
    a.stop().await;
    b.stop().await;
    setup.cleanup().await;
    result
}

async fn sigterm_scenario(
    setup: &Setup,
    lb: &Relay,
    a: &mut WebhookRunner,
    b: &WebhookRunner,
) -> Result<()> {
    let ns = &setup.ns;
    const WORKERS: usize = 16;
    let load_for = Duration::from_secs(14);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let api = ns.sts();
        workers.push(tokio::spawn(async move {
            let dry_run = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            let (mut ok, mut unmutated, mut errors) = (0u32, Vec::new(), Vec::new());
            let mut i = 0u32;
            while started.elapsed() < load_for {
                i += 1;
                let sts = StsFixture::new(&format!("load-{w}-{i}"), 0).build();
                match api.create(&dry_run, &sts).await {
                    Ok(created) if service_name(&created).is_some() => ok += 1,
                    Ok(_) => unmutated.push(started.elapsed()),
                    Err(e) => errors.push(format!("{:.1}s: {e}", started.elapsed().as_secs_f64())),
                }
            }
            (ok, unmutated, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a_served_before = metric(
        a,
        "sts_webhook_admission_requests_total{operation=\"CREATE\",outcome=\"patched\"}",
    )
    .await?;
    let signalled = Instant::now();
    let pid = a.pid().ok_or_else(|| anyhow!("replica a is not running"))?;
    sts_e2e::process::signal_terminate(pid)?;
    // The endpoint update reaches the load balancer a moment later, as in a cluster.
    tokio::time::sleep(Duration::from_secs(1)).await;
    lb.set_backends(vec![b.port()]);
    a.stop_within(Duration::from_secs(40)).await;
    let stopped_after = signalled.elapsed();

    let (mut ok, mut unmutated, mut errors) = (0, Vec::new(), Vec::new());
    for w in workers {
        let (o, u, e) = w.await?;
        ok += o;
        unmutated.extend(u);
        errors.extend(e);
    }
    let b_served = metric(
        b,
        "sts_webhook_admission_requests_total{operation=\"CREATE\",outcome=\"patched\"}",
    )
    .await?;
    let log = std::fs::read_to_string(a.log())?;
    eprintln!(
        "SIGTERM under load: {ok} dry-run creates mutated, {} unmutated, {} errors; replica a answered {a_served_before} before SIGTERM and exited {:.1}s after it; replica b answered {b_served}",
        unmutated.len(),
        errors.len(),
        stopped_after.as_secs_f64()
    );
    ensure!(
        unmutated.is_empty() && errors.is_empty(),
        "admission requests failed around the SIGTERM at {:.1}s: unmutated at {unmutated:.1?}, errors {errors:?}",
        (signalled - started).as_secs_f64()
    );
    ensure!(ok >= 100, "only {ok} requests: the load did not load");
    ensure!(
        a_served_before > 0.0 && b_served > 0.0,
        "both replicas must have served (a {a_served_before}, b {b_served})"
    );
    ensure!(
        log.contains("answering with Connection: close"),
        "replica a did not go through its lame-duck period"
    );
    ensure!(
        stopped_after >= Duration::from_secs(5),
        "replica a stopped {stopped_after:?} after SIGTERM, before its 5 s delay"
    );
    Ok(())
}

/// `kubectl sts orphans --delete` meets a real 429 with `Retry-After: 1` from the real API
/// server (a validating webhook refuses the claims' DELETEs): a claim refused twice is deleted
/// on the next attempt, each attempt at least the asked second after the one before; a claim
/// refused every time is given up after 6 attempts (5 retries), reported as throttled (HTTP
/// 429, the waits) and kept; exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster without the suite's webhook: the api-faults stage of tests/e2e-matrix.sh"]
async fn orphans_delete_retries_a_real_429_and_gives_up_after_its_limit() -> Result<()> {
    let setup = Setup::new("throttled-plugin").await?;
    let faults = FaultWebhook::start(&setup.ca, setup.dir.path()).await?;
    let result = throttled_plugin_scenario(&setup, &faults).await;
    let _ = faults.unregister(&setup.ns.client).await;
    result
}

async fn throttled_plugin_scenario(setup: &Setup, faults: &FaultWebhook) -> Result<()> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let ns = &setup.ns;
    faults
        .register(
            &ns.client,
            &format!("sts-e2e-faults-{}", ns.name),
            (SCOPE_LABEL, &setup.scope),
            json!([{
                "apiGroups": [""], "apiVersions": ["v1"], "resources": ["persistentvolumeclaims"],
                "operations": ["DELETE"], "scope": "Namespaced",
            }]),
        )
        .await?;
    let name = "tp";
    ns.create_sts(
        &StsFixture::new(name, 3)
            .service_name(name)
            .claim_template("data")
            .build(),
    )
    .await?;
    ns.wait_rollout_complete(name, 3).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let (retried, refused) = (format!("data-{name}-1"), format!("data-{name}-2"));
    // Effective once a dry-run DELETE reaches the fault webhook.
    let dry_run = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    until("the fault webhook to be called", ns.timeout(), || async {
        let _ = ns.pvcs().delete(&retried, &dry_run).await;
        faults.seen().iter().any(|s| s.dry_run).then_some(())
    })
    .await?;
    let throttle = Fault {
        code: 429,
        reason: "TooManyRequests".into(),
        message: "too many requests from sts-e2e".into(),
        retry_after_seconds: 1,
    };
    faults.arm_times(&retried, throttle.clone(), 2);
    faults.arm(&refused, throttle);
    let refused_uid = ns.pvcs().get(&refused).await?.metadata.uid;

    let run = tokio::task::block_in_place(|| ns.plugin(&["orphans", name, "--delete", "--yes"]))?;
    run.expect_code(1)?;
    // One DELETE request can reach the webhook twice: 1.20's storage re-runs a graceful
    // deletion's admission with fresh state when its cached copy was stale. The plugin's
    // attempts are ≥ 1 s apart, so calls within 0.5 s of the previous one are the same attempt.
    let deletes = |claim: &str| -> Vec<Seen> {
        let mut attempts: Vec<Seen> = Vec::new();
        for s in faults.seen() {
            if s.name != claim || s.operation != "DELETE" || s.dry_run {
                continue;
            }
            match attempts.last_mut() {
                Some(last) if s.at.duration_since(last.at) < Duration::from_millis(500) => {
                    last.refused &= s.refused;
                }
                _ => attempts.push(s),
            }
        }
        attempts
    };
    let gaps = |seen: &[Seen]| -> Vec<f64> {
        seen.windows(2)
            .map(|w| w[1].at.duration_since(w[0].at).as_secs_f64())
            .collect()
    };
    let (r, f) = (deletes(&retried), deletes(&refused));
    let (r_gaps, f_gaps) = (gaps(&r), gaps(&f));
    eprintln!(
        "real 429: {retried} {} attempts (gaps {r_gaps:.2?} s), {refused} {} attempts (gaps {f_gaps:.2?} s)\n{}{}",
        r.len(),
        f.len(),
        run.stdout,
        run.stderr
    );
    // Armed for 2 webhook calls: 2 refused attempts, or 1 where 1.20 called twice for it.
    ensure!(
        (2..=3).contains(&r.len())
            && r.iter().rev().skip(1).all(|s| s.refused)
            && r.last().is_some_and(|s| !s.refused),
        "{retried}: expected refused attempts, then 1 accepted, saw {r:?}"
    );
    ensure!(
        f.len() == 6 && f.iter().all(|s| s.refused),
        "{refused}: expected 6 refused attempts (1 + 5 retries), saw {}",
        f.len()
    );
    ensure!(
        r_gaps.iter().chain(&f_gaps).all(|g| *g >= 0.95),
        "a retry came sooner than Retry-After: 1: {r_gaps:?} {f_gaps:?}"
    );
    ensure!(
        run.stdout
            .lines()
            .any(|l| l.contains(&retried) && l.contains("Deleted")),
        "{retried} should be Deleted:\n{}",
        run.stdout
    );
    let failed = run
        .stdout
        .lines()
        .find(|l| l.contains(&refused) && l.contains("Failed"))
        .with_context(|| format!("{refused} should be Failed:\n{}", run.stdout))?;
    ensure!(
        failed.contains("gave up after 6 attempt(s)") && failed.contains("429"),
        "the row should say the server throttled and when the plugin gave up: {failed}"
    );
    ns.wait_gone::<PersistentVolumeClaim>(&retried).await?;
    let kept = ns.pvcs().get(&refused).await?;
    ensure!(
        kept.metadata.uid == refused_uid && kept.metadata.deletion_timestamp.is_none(),
        "{refused} should be kept"
    );
    Ok(())
}
