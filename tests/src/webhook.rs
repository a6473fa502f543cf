//! Runs sts-webhook as a local process and registers it with a URL-based
//! MutatingWebhookConfiguration, the way the e2e suite's "local" mode needs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::certs::{CertAuthority, Issued};
use crate::error::{HarnessError, Result};
use crate::https::TlsClient;
use crate::process::{ManagedProcess, free_port};

/// Name of the MutatingWebhookConfiguration (shared with deploy/).
pub const CONFIGURATION_NAME: &str = "sts-webhook";
/// Name of the webhook inside the configuration (shared with deploy/).
pub const WEBHOOK_NAME: &str = "statefulsets.headless.sts.dev";

/// How to run the webhook.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// The sts-webhook binary; `None` = `<dir of the current executable>/sts-webhook`, built
    /// with cargo if missing.
    pub bin: Option<PathBuf>,
    /// `--orphan-service-grace` for the reconciler.
    pub orphan_service_grace: String,
    /// More flags, after the harness's own (e.g. `--shutdown-delay=2s`).
    pub extra_args: Vec<String>,
    /// The name of the log file in the cluster's directory (several webhooks can run).
    pub log_name: String,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            bin: None,
            orphan_service_grace: "20s".to_owned(),
            extra_args: Vec::new(),
            log_name: "sts-webhook.log".to_owned(),
        }
    }
}

/// The webhook process (stoppable and restartable, for the "webhook was down" scenarios).
pub struct WebhookRunner {
    bin: PathBuf,
    port: u16,
    args: Vec<String>,
    log: PathBuf,
    ca_pem: String,
    tls: TlsClient,
    process: Option<ManagedProcess>,
}

impl WebhookRunner {
    /// A webhook serving a certificate of `ca` on a free loopback port, talking to the API
    /// server through `kubeconfig`; not started yet.
    pub fn new(
        opts: WebhookOptions,
        dir: &Path,
        ca: &CertAuthority,
        kubeconfig: &Path,
    ) -> Result<Self> {
        let bin = match opts.bin {
            Some(b) => b,
            None => default_webhook_bin()?,
        };
        let serving: Issued = ca.serving(
            &dir.join("pki"),
            "webhook",
            "sts-webhook",
            &["127.0.0.1", "localhost"],
        )?;
        let port = free_port()?;
        let args = vec![
            format!("--listen=127.0.0.1:{port}"),
            format!("--tls-cert={}", serving.cert_file.display()),
            format!("--tls-key={}", serving.key_file.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--orphan-service-grace={}", opts.orphan_service_grace),
        ];
        let args = args.into_iter().chain(opts.extra_args).collect();
        Ok(Self {
            bin,
            port,
            args,
            log: dir.join(&opts.log_name),
            ca_pem: ca.issued.cert_pem.clone(),
            tls: TlsClient::new(&ca.issued.cert_der, None)?,
            process: None,
        })
    }

    /// The serving port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The PEM of the CA that signed the serving certificate (a webhook's `caBundle`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// GET `path` from the running webhook: status code and body.
    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.tls.get(self.port, path).await
    }

    /// Starts the process (if stopped) without waiting for `/readyz` (a webhook whose API
    /// server is unreachable never gets ready).
    pub async fn spawn(&mut self) -> Result<()> {
        if self.process.is_none() {
            if !self.bin.is_file() {
                build_webhook(&self.bin).await?;
            }
            self.process = Some(ManagedProcess::spawn(
                "sts-webhook",
                &self.bin,
                &self.args,
                &[(
                    "RUST_LOG".to_owned(),
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
                )],
                &self.log,
            )?);
        }
        Ok(())
    }

    /// Stops the process with SIGTERM, SIGKILL after `grace`; returns how long it took.
    pub async fn stop_within(&mut self, grace: Duration) -> Duration {
        let begin = Instant::now();
        if let Some(mut p) = self.process.take() {
            p.stop(grace).await;
        }
        begin.elapsed()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/mutate", self.port)
    }
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ManagedProcess::pid)
    }
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Starts the process (if stopped) and waits for `/readyz`.
    pub async fn start(&mut self) -> Result<()> {
        self.spawn().await?;
        let timeout = Duration::from_secs(30);
        let begin = Instant::now();
        loop {
            if let Some(p) = self.process.as_mut()
                && let Err(e) = p.ensure_running()
            {
                self.process = None;
                return Err(e);
            }
            if matches!(self.tls.get(self.port, "/readyz").await, Ok((200, _))) {
                tracing::info!("sts-webhook ready on 127.0.0.1:{}", self.port);
                return Ok(());
            }
            if begin.elapsed() > timeout {
                return Err(HarnessError::Timeout {
                    what: format!("sts-webhook /readyz on 127.0.0.1:{}", self.port),
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the process; the configuration stays, so the apiserver sees a webhook that is
    /// down (failurePolicy Ignore lets writes through).
    pub async fn stop(&mut self) {
        self.stop_within(Duration::from_secs(10)).await;
    }

    /// Errors if the process has exited on its own.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.process.as_mut() {
            Some(p) => p.ensure_running(),
            None => Ok(()),
        }
    }

    /// Creates or updates the MutatingWebhookConfiguration pointing at this process.
    pub async fn register(&self, client: &kube::Client) -> Result<()> {
        let minor = client
            .apiserver_version()
            .await
            .ok()
            .and_then(|v| v.minor.trim_end_matches('+').parse::<u32>().ok());
        // matchConditions are GA in 1.30; older servers would drop the field anyway.
        let with_conditions = minor.is_some_and(|m| m >= 30);
        let mwc = configuration(&self.url(), &self.ca_pem, with_conditions)?;
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        api.patch(
            CONFIGURATION_NAME,
            &PatchParams::apply("sts-e2e").force(),
            &Patch::Apply(&mwc),
        )
        .await
        .map_err(|e| HarnessError::kube("registering the MutatingWebhookConfiguration", e))?;
        self.wait_effective(client).await
    }

    /// The apiserver loads webhook configurations asynchronously; until a server-side dry-run
    /// create comes back with `spec.serviceName` injected, tests would race it.
    async fn wait_effective(&self, client: &kube::Client) -> Result<()> {
        let api: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
        let probe: StatefulSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": { "name": "sts-e2e-webhook-probe" },
            "spec": {
                "replicas": 0,
                "selector": { "matchLabels": { "app": "sts-e2e-webhook-probe" } },
                "template": {
                    "metadata": { "labels": { "app": "sts-e2e-webhook-probe" } },
                    "spec": { "containers": [{ "name": "probe", "image": "probe" }] },
                },
            },
        }))
        .map_err(|e| HarnessError::setup("building the webhook probe", e.to_string()))?;
        let pp = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let timeout = Duration::from_secs(30);
        let begin = Instant::now();
        loop {
            let last = match api.create(&pp, &probe).await {
                Ok(s)
                    if s.spec
                        .as_ref()
                        .and_then(|s| s.service_name.as_deref())
                        .is_some_and(|n| !n.is_empty()) =>
                {
                    tracing::info!(
                        "webhook admission effective after {:.1}s",
                        begin.elapsed().as_secs_f32()
                    );
                    return Ok(());
                }
                Ok(_) => "the dry-run create came back without spec.serviceName".to_owned(),
                Err(e) => e.to_string(),
            };
            if begin.elapsed() > timeout {
                return Err(HarnessError::setup(
                    "waiting for the webhook to mutate StatefulSets",
                    format!(
                        "not effective after {}s: {last}; see the sts-webhook and kube-apiserver logs",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The `matchConditions` of deploy/base/mutatingwebhookconfiguration.yaml (name, CEL
/// expression); a unit test keeps the two equal.
pub const MATCH_CONDITIONS: &[(&str, &str)] = &[(
    "create-or-update-without-service-name",
    "request.operation == 'CREATE' || !has(object.spec.serviceName) || object.spec.serviceName == ''",
)];

/// The `matchConditions` JSON of [`MATCH_CONDITIONS`].
pub fn match_conditions_json() -> Value {
    Value::Array(
        MATCH_CONDITIONS
            .iter()
            .map(|(name, expression)| json!({ "name": name, "expression": expression }))
            .collect(),
    )
}

/// The configuration the local harness registers (mirrors deploy/, but URL-based), with
/// deploy/'s `matchConditions` when `with_match_conditions` (servers >= 1.30).
pub fn configuration(
    url: &str,
    ca_pem: &str,
    with_match_conditions: bool,
) -> Result<MutatingWebhookConfiguration> {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let mut value = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": CONFIGURATION_NAME, "labels": { "app.kubernetes.io/name": "sts-webhook" } },
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": { "url": url, "caBundle": ca_bundle },
            "admissionReviewVersions": ["v1"],
            "sideEffects": "NoneOnDryRun",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "Never",
            "matchPolicy": "Equivalent",
            "rules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["statefulsets"],
                "operations": ["CREATE", "UPDATE"], "scope": "Namespaced",
            }],
            // v1.20 has no kubernetes.io/metadata.name label, so kube-system is not excluded
            // by name here; the opt-out label covers the e2e needs.
            "namespaceSelector": { "matchExpressions": [{
                "key": "headless.sts.dev/webhook", "operator": "NotIn", "values": ["disabled"],
            }]},
            "objectSelector": { "matchExpressions": [{
                "key": "headless.sts.dev/inject", "operator": "NotIn", "values": ["false"],
            }]},
        }],
    });
    if with_match_conditions {
        value["webhooks"][0]["matchConditions"] = match_conditions_json();
    }
    serde_json::from_value(value).map_err(|e| {
        HarnessError::setup("building the MutatingWebhookConfiguration", e.to_string())
    })
}

/// `<dir of the running executable>/sts-webhook`: binaries of one cargo build sit together.
pub fn default_webhook_bin() -> Result<PathBuf> {
    sibling_binary("sts-webhook")
}

/// A binary next to the current executable (`target/<profile>/NAME`).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| HarnessError::io("cannot find the current executable", e))?;
    // Test binaries live in target/<profile>/deps; the others one level up.
    let mut dir = exe
        .parent()
        .ok_or_else(|| {
            HarnessError::setup("locating binaries", "the executable has no parent dir")
        })?
        .to_owned();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir.join(name))
}

async fn build_webhook(bin: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    tracing::info!(
        "{} is missing; building it with `cargo build -p sts-webhook`",
        bin.display()
    );
    let status = tokio::process::Command::new(&cargo)
        .args(["build", "-p", "sts-webhook", "--bin", "sts-webhook"])
        .status()
        .await
        .map_err(|e| HarnessError::io(format!("cannot run {cargo}"), e))?;
    if !status.success() || !bin.is_file() {
        return Err(HarnessError::setup(
            "building sts-webhook",
            format!(
                "`cargo build -p sts-webhook` ended with {status} and {} does not exist",
                bin.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_matches_the_contract() {
        let mwc = configuration("https://127.0.0.1:1234/mutate", "PEM", true).unwrap();
        let v = serde_json::to_value(&mwc).unwrap();
        let w = &v["webhooks"][0];
        assert_eq!(w["name"], WEBHOOK_NAME);
        assert_eq!(w["clientConfig"]["url"], "https://127.0.0.1:1234/mutate");
        assert_eq!(w["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(w["sideEffects"], "NoneOnDryRun");
        assert_eq!(w["failurePolicy"], "Ignore");
        assert_eq!(w["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
        assert_eq!(
            w["namespaceSelector"]["matchExpressions"][0]["key"],
            "headless.sts.dev/webhook"
        );
        assert_eq!(
            w["objectSelector"]["matchExpressions"][0]["values"],
            json!(["false"])
        );
        assert_eq!(w["matchConditions"], match_conditions_json());
        let old = configuration("https://127.0.0.1:1234/mutate", "PEM", false).unwrap();
        let old = serde_json::to_value(&old).unwrap();
        assert!(old["webhooks"][0].get("matchConditions").is_none());
    }

    #[test]
    fn match_conditions_are_the_ones_deploy_ships() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/base/mutatingwebhookconfiguration.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let deployed: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            deployed["webhooks"][0]["matchConditions"],
            match_conditions_json(),
            "{} and tests/src/webhook.rs MATCH_CONDITIONS differ",
            path.display()
        );
    }
}
