//! Shared helpers for the e2e scenarios: environment, per-test namespaces, fixtures, the
//! `kubectl-sts` driver and bounded polling.
//!
//! Every integration-test file includes this module, and each uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Images for the StatefulSets. In local mode nothing runs them (the simulated node only marks
/// pods Ready); on a real cluster they must start fast, be pullable without credentials and
/// stop at once on SIGTERM — `pause` does all three. Two tags give a template change.
pub const IMAGE_V1: &str = "registry.k8s.io/pause:3.9";
pub const IMAGE_V2: &str = "registry.k8s.io/pause:3.10";

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "sts-webhook";
pub const STATEFULSET_ANNOTATION: &str = "headless.sts.dev/statefulset";
pub const OPT_OUT_LABEL: &str = "headless.sts.dev/inject";
pub const NAMESPACE_OPT_OUT_LABEL: &str = "headless.sts.dev/webhook";
pub const WEBHOOK_NAME: &str = "statefulsets.headless.sts.dev";

/// Where the webhook under test runs; see docs/contracts.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `sts-cluster run --webhook`: local control plane, webhook as a local process behind a
    /// URL-based MutatingWebhookConfiguration, simulated node.
    Local,
    /// Any cluster (kind in CI) with the webhook deployed from `deploy/` in namespace
    /// `sts-webhook` and a real kubelet.
    External,
}

/// The environment every test reads once.
#[derive(Debug)]
pub struct Env {
    pub kubeconfig: PathBuf,
    pub mode: Mode,
    pub kubectl_sts: PathBuf,
    /// Upper bound for each wait. Real clusters pull images and run kubelets, so they get more.
    pub timeout: Duration,
}

const HOW_TO_RUN: &str = "run the e2e suite with `make test`, or \
     `cargo build -p kubectl-sts && cargo run -p sts-e2e --bin sts-cluster -- run --webhook -- cargo nextest run -p sts-e2e`, \
     or against your own cluster (webhook deployed from deploy/): \
     `STS_E2E_MODE=external STS_E2E_KUBECONFIG=$HOME/.kube/config cargo nextest run -p sts-e2e`";

/// The e2e environment; a test that calls this without it fails (never skips).
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| match load_env() {
        Ok(env) => env,
        Err(e) => panic!("e2e environment is not usable: {e:#}"),
    })
}

fn load_env() -> Result<Env> {
    let kubeconfig = match std::env::var_os("STS_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => bail!("STS_E2E_KUBECONFIG is not set; these tests need a real cluster: {HOW_TO_RUN}"),
    };
    ensure!(
        kubeconfig.is_file(),
        "STS_E2E_KUBECONFIG={} is not a readable file; {HOW_TO_RUN}",
        kubeconfig.display()
    );
    let mode = match std::env::var("STS_E2E_MODE").as_deref() {
        Err(_) | Ok("") | Ok("local") => Mode::Local,
        Ok("external") => Mode::External,
        Ok(other) => bail!("STS_E2E_MODE={other:?} is not one of `local`, `external`"),
    };
    let kubectl_sts = kubectl_sts_path()?;
    let default_timeout = match mode {
        Mode::Local => 120,
        Mode::External => 300,
    };
    let timeout_secs = match std::env::var("STS_E2E_TIMEOUT_SECS") {
        Ok(v) if !v.is_empty() => v
            .parse::<u64>()
            .with_context(|| format!("STS_E2E_TIMEOUT_SECS={v:?} is not a number of seconds"))?,
        _ => default_timeout,
    };
    Ok(Env {
        kubeconfig,
        mode,
        kubectl_sts,
        timeout: Duration::from_secs(timeout_secs),
    })
}

/// `STS_E2E_KUBECTL_STS`, else `<target dir>/debug/kubectl-sts`. The target dir is
/// `CARGO_TARGET_DIR` when set, else the directory this test binary was built into
/// (`<target>/debug/deps/<test>` → `<target>/debug`), which also covers a target dir
/// configured in `.cargo/config.toml`.
fn kubectl_sts_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("STS_E2E_KUBECTL_STS").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "STS_E2E_KUBECTL_STS={} does not exist",
            path.display()
        );
        return Ok(path);
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|p| !p.is_empty()) {
        let dir = PathBuf::from(dir);
        let dir = if dir.is_relative() {
            // Cargo resolves a relative CARGO_TARGET_DIR against the invocation directory;
            // the workspace root is the usual one.
            workspace_root().join(dir)
        } else {
            dir
        };
        candidates.push(dir.join("debug").join("kubectl-sts"));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("kubectl-sts"));
    }
    candidates.push(workspace_root().join("target/debug/kubectl-sts"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the kubectl-sts binary was not found (looked at {}); build it with \
                 `cargo build -p kubectl-sts` or set STS_E2E_KUBECTL_STS",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is `<workspace>/tests`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A client for the e2e cluster, built from the kubeconfig file only (never from the
/// ambient `KUBECONFIG`, so a developer's cluster is not touched by accident).
pub async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    Client::try_from(config).context("building a Kubernetes client")
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // pid separates parallel nextest processes; the clock separates reruns.
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:08x}", mixed & 0xffff_ffff)
}

/// One test's namespace, deleted when dropped (also when the test fails or panics).
pub struct TestNs {
    pub name: String,
    pub client: Client,
    pub env: &'static Env,
}

impl TestNs {
    /// A fresh namespace `e2e-<scenario>-<unique>`.
    pub async fn new(scenario: &str) -> Result<Self> {
        Self::with_labels(scenario, BTreeMap::new()).await
    }

    pub async fn with_labels(scenario: &str, extra: BTreeMap<String, String>) -> Result<Self> {
        Self::create(scenario, extra, true).await
    }

    /// A namespace for a test that runs sts-webhook itself (tests/tests/api_faults.rs, on a
    /// cluster without the suite's webhook): no check that the suite's webhook is registered.
    pub async fn for_own_webhook(scenario: &str, extra: BTreeMap<String, String>) -> Result<Self> {
        Self::create(scenario, extra, false).await
    }

    async fn create(
        scenario: &str,
        extra: BTreeMap<String, String>,
        suite_webhook: bool,
    ) -> Result<Self> {
        let env = env();
        let client = client_for(&env.kubeconfig).await?;
        if suite_webhook {
            preflight(&client).await?;
        }
        let mut scenario: String = scenario
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        scenario.truncate(40);
        let name = format!("e2e-{}-{}", scenario.trim_matches('-'), unique_suffix());
        let mut labels = BTreeMap::from([("sts-e2e.dev/suite".to_string(), "e2e".to_string())]);
        labels.extend(extra);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating test namespace {name}"))?;
        // Construct the guard only after the namespace exists so Drop deletes only ours.
        Ok(Self { name, client, env })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn sts(&self) -> Api<StatefulSet> {
        self.api()
    }
    pub fn pods(&self) -> Api<Pod> {
        self.api()
    }
    pub fn pvcs(&self) -> Api<PersistentVolumeClaim> {
        self.api()
    }
    pub fn services(&self) -> Api<Service> {
        self.api()
    }

    pub fn timeout(&self) -> Duration {
        self.env.timeout
    }

    /// Run `kubectl-sts ARGS --kubeconfig … -n <ns>`.
    pub fn plugin(&self, args: &[&str]) -> Result<PluginRun> {
        let mut cmd = Command::new(&self.env.kubectl_sts);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.env.kubeconfig)
            .args(["-n", &self.name])
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG");
        let shown = format!("kubectl-sts {} -n {}", args.join(" "), self.name);
        let out = cmd
            .output()
            .with_context(|| format!("running {}", self.env.kubectl_sts.display()))?;
        Ok(PluginRun {
            command: shown,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Run the real `kubectl ARGS --kubeconfig … -n <ns>` (the one on PATH: `sts-cluster run`
    /// puts the control plane's own first), with `stdin` as its standard input.
    pub fn kubectl(&self, args: &[&str], stdin: &str) -> Result<PluginRun> {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut child = Command::new("kubectl")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.env.kubeconfig)
            .args(["-n", &self.name])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl (is it on PATH?)")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        Ok(PluginRun {
            command: format!("kubectl {} -n {}", args.join(" "), self.name),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Run the plugin with `-o json`, require exit 0 and the given view `kind`.
    pub fn plugin_json(&self, args: &[&str], kind: &str) -> Result<Value> {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        let run = self.plugin(&full)?;
        run.expect_code(0)?;
        run.json(kind)
    }

    /// Create through a raw request so the admission `Warning:` response headers are visible
    /// (kube's typed API drops them). Returns the stored object and the warning texts.
    pub async fn create_with_warnings<K>(&self, obj: &K) -> Result<(K, Vec<String>)>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned,
    {
        self.create_with_warnings_params(obj, &PostParams::default())
            .await
    }

    /// [`Self::create_with_warnings`] with the given parameters (e.g. a dry run).
    pub async fn create_with_warnings_params<K>(
        &self,
        obj: &K,
        params: &PostParams,
    ) -> Result<(K, Vec<String>)>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned,
    {
        let url = K::url_path(&(), Some(&self.name));
        let req = kube::core::Request::new(url)
            .create(params, serde_json::to_vec(obj)?)
            .context("building create request")?;
        let resp = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .context("sending create request")?;
        let status = resp.status();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let body = resp
            .into_body()
            .collect_bytes()
            .await
            .context("reading create response")?;
        ensure!(
            status.is_success(),
            "create was refused: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok((serde_json::from_slice(&body)?, warnings))
    }

    pub async fn create_sts(&self, sts: &StatefulSet) -> Result<StatefulSet> {
        let name = sts.metadata.name.clone().unwrap_or_default();
        self.sts()
            .create(&PostParams::default(), sts)
            .await
            .with_context(|| format!("creating StatefulSet {name} in {}", self.name))
    }

    pub async fn merge_patch_sts(&self, name: &str, patch: Value) -> Result<StatefulSet> {
        self.sts()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("patching StatefulSet {name} with {patch}"))
    }

    pub async fn scale(&self, name: &str, replicas: i32) -> Result<StatefulSet> {
        self.merge_patch_sts(name, json!({ "spec": { "replicas": replicas } }))
            .await
    }

    /// What `kubectl set image sts/NAME <container>=IMAGE` does: a strategic merge of the
    /// container image by container name.
    pub async fn set_image(&self, name: &str, container: &str, image: &str) -> Result<StatefulSet> {
        let patch = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": container, "image": image }
        ] } } } });
        self.sts()
            .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .with_context(|| format!("setting image of {name}/{container} to {image}"))
    }

    /// Wait until the StatefulSet has exactly `replicas` pods, all Ready and on the update
    /// revision, and the controller has observed the latest spec.
    pub async fn wait_rollout_complete(&self, name: &str, replicas: i32) -> Result<StatefulSet> {
        let sts_api = self.sts();
        let pods_api = self.pods();
        let what = format!(
            "StatefulSet {}/{name} to have {replicas} ready, updated pods",
            self.name
        );
        eventually(&what, self.timeout(), || {
            let sts_api = sts_api.clone();
            let pods_api = pods_api.clone();
            async move {
                let sts = sts_api.get(name).await?;
                let generation = sts.metadata.generation.unwrap_or_default();
                let Some(st) = sts.status.clone() else {
                    return Ok(Probe::NotYet("no status yet".into()));
                };
                let pods = pods_of(&pods_api, name).await?;
                let seen = format!(
                    "observedGeneration={:?}/{generation} replicas={} ready={:?} updated={:?} current={:?} update={:?} pods={:?}",
                    st.observed_generation,
                    st.replicas,
                    st.ready_replicas,
                    st.updated_replicas,
                    st.current_revision,
                    st.update_revision,
                    pods.iter().map(pod_summary).collect::<Vec<_>>()
                );
                let pods_ok = pods.len() == usize::try_from(replicas).unwrap_or(0)
                    && pods.iter().all(|p| {
                        p.metadata.deletion_timestamp.is_none()
                            && is_ready(p)
                            && revision_of(p) == st.update_revision.as_deref()
                    });
                let done = st.observed_generation.unwrap_or_default() >= generation
                    && st.replicas == replicas
                    && st.ready_replicas.unwrap_or_default() == replicas
                    && st.updated_replicas.unwrap_or_default() == replicas
                    && st.current_revision.is_some()
                    && st.current_revision == st.update_revision
                    && pods_ok;
                Ok(if done { Probe::Done(sts) } else { Probe::NotYet(seen) })
            }
        })
        .await
    }

    /// Wait until the Service exists and return it.
    pub async fn wait_service(&self, name: &str) -> Result<Service> {
        let api = self.services();
        eventually(
            &format!("Service {}/{name} to exist", self.name),
            self.timeout(),
            || {
                let api = api.clone();
                async move {
                    Ok(match api.get_opt(name).await? {
                        Some(svc) => Probe::Done(svc),
                        None => Probe::NotYet("not found".into()),
                    })
                }
            },
        )
        .await
    }

    /// Wait until the Service carries an ownerReference to the StatefulSet with this uid.
    pub async fn wait_service_owned_by(&self, svc: &str, sts: &str, uid: &str) -> Result<Service> {
        let api = self.services();
        eventually(
            &format!(
                "Service {}/{svc} to be owned by StatefulSet {sts} (uid {uid})",
                self.name
            ),
            self.timeout(),
            || {
                let api = api.clone();
                async move {
                    let Some(s) = api.get_opt(svc).await? else {
                        return Ok(Probe::NotYet("Service not found".into()));
                    };
                    let refs = s.metadata.owner_references.clone().unwrap_or_default();
                    let owned = refs.iter().any(|r| {
                        r.kind == "StatefulSet"
                            && r.api_version == "apps/v1"
                            && r.name == sts
                            && r.uid == uid
                    });
                    Ok(if owned {
                        Probe::Done(s)
                    } else {
                        Probe::NotYet(format!(
                            "ownerReferences={:?}",
                            refs.iter()
                                .map(|r| format!("{}/{} uid={}", r.kind, r.name, r.uid))
                                .collect::<Vec<_>>()
                        ))
                    })
                }
            },
        )
        .await
    }

    /// Wait until a namespaced object no longer exists.
    pub async fn wait_gone<K>(&self, name: &str) -> Result<()>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = self.api();
        let kind = K::kind(&());
        eventually(
            &format!("{kind} {}/{name} to be deleted", self.name),
            self.timeout(),
            || {
                let api = api.clone();
                async move {
                    Ok(match api.get_opt(name).await? {
                        None => Probe::Done(()),
                        Some(obj) => Probe::NotYet(format!(
                            "still exists (deletionTimestamp={:?}, finalizers={:?})",
                            obj.meta().deletion_timestamp,
                            obj.meta().finalizers
                        )),
                    })
                }
            },
        )
        .await
    }

    /// The names of the pods of StatefulSet `name` (label `app=<name>`), sorted.
    pub async fn pod_names(&self, name: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = pods_of(&self.pods(), name)
            .await?
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let name = self.name.clone();
        let kubeconfig = self.env.kubeconfig.clone();
        // The test's runtime may be gone or blocked (we are inside its thread), and the
        // client's background task lives on it: use a fresh client on a fresh runtime.
        let joined =
            std::thread::spawn(move || delete_cluster_object::<Namespace>(&kubeconfig, &name))
                .join();
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cleaning up test namespace {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: cleanup of test namespace {} panicked", self.name),
        }
    }
}

/// Delete a cluster-scoped object with a fresh client and runtime (for Drop guards).
pub fn delete_cluster_object<K>(kubeconfig: &Path, name: &str) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building cleanup runtime")?;
    rt.block_on(async {
        let client = client_for(kubeconfig).await?;
        let api: Api<K> = Api::all(client);
        let del = tokio::time::timeout(
            Duration::from_secs(30),
            api.delete(name, &DeleteParams::background()),
        )
        .await
        .with_context(|| format!("timed out deleting {} {name}", K::kind(&())))?;
        match del {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {} {name}", K::kind(&()))),
        }
    })
}

/// Fail early, with a clear message, when the cluster has no sts-webhook registered.
async fn preflight(client: &Client) -> Result<()> {
    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("cannot reach the e2e cluster (listing MutatingWebhookConfigurations)")?;
    let registered = configs
        .items
        .iter()
        .flat_map(|c| c.webhooks.iter().flatten())
        .any(|w| w.name == WEBHOOK_NAME);
    ensure!(
        registered,
        "no MutatingWebhookConfiguration with webhook {WEBHOOK_NAME} on the e2e cluster; \
         start the local cluster with `--webhook`, or deploy the webhook from deploy/ \
         (STS_E2E_MODE=external); {HOW_TO_RUN}"
    );
    Ok(())
}

/// One run of the plugin.
#[derive(Debug)]
pub struct PluginRun {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl PluginRun {
    pub fn expect_code(&self, code: i32) -> Result<()> {
        ensure!(
            self.code == Some(code),
            "`{}` exited with {:?}, expected {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        Ok(())
    }

    pub fn json(&self, kind: &str) -> Result<Value> {
        let v: Value = serde_json::from_str(&self.stdout)
            .with_context(|| format!("`{}` did not print JSON:\n{}", self.command, self.stdout))?;
        ensure!(
            v["apiVersion"] == "sts.dev/v1alpha1" && v["kind"] == kind,
            "`{}` printed apiVersion={} kind={}, expected sts.dev/v1alpha1 {kind}",
            self.command,
            v["apiVersion"],
            v["kind"]
        );
        Ok(v)
    }
}

/// The published JSON Schema of a view kind (`docs/schemas/<kind>.json`).
pub fn schema(kind: &str) -> Result<Value> {
    let path = workspace_root()
        .join("docs/schemas")
        .join(format!("{kind}.json"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the schema {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is no JSON", path.display()))
}

/// Fail, naming every violation, when `view` (real `-o json` output) does not match the
/// published schema of its kind.
pub fn ensure_schema(kind: &str, view: &Value) -> Result<()> {
    let schema = schema(kind)?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| anyhow!("docs/schemas/{kind}.json is not a valid JSON Schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(view)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    ensure!(
        errors.is_empty(),
        "the real {kind} output does not match docs/schemas/{kind}.json:\n{}\n{view:#}",
        errors.join("\n")
    );
    Ok(())
}

/// `kubectl-sts rollback NAME --yes` until it applies. The rollback carries the
/// resourceVersion it read; when the controller wrote the status in between, the plugin
/// refuses saying it was modified and to run it again: do so, within the namespace's timeout.
/// Any other failure ends the wait with that error.
pub async fn rollback_until_applied(ns: &TestNs, name: &str) -> Result<()> {
    eventually("rollback --yes to apply", ns.timeout(), || async {
        let run = ns.plugin(&["rollback", name, "--yes"])?;
        if run.code == Some(0) {
            return Ok(Probe::Done(()));
        }
        ensure!(
            run.stderr.contains("was modified after it was read"),
            "rollback failed for another reason: {}",
            run.stderr
        );
        Ok(Probe::NotYet(run.stderr))
    })
    .await
}

/// The result of one probe in [`eventually`].
pub enum Probe<T> {
    Done(T),
    /// Not there yet; the text says what was seen, for the timeout message.
    NotYet(String),
}

/// Poll `probe` every 250 ms until it is done or `timeout` passes. API errors are treated as
/// "not yet" (the control plane may be briefly busy) but are reported on timeout.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    let start = Instant::now();
    loop {
        let last = match probe().await {
            Ok(Probe::Done(v)) => return Ok(v),
            Ok(Probe::NotYet(seen)) => seen,
            Err(e) => format!("error: {e:#}"),
        };
        if start.elapsed() >= timeout {
            bail!(
                "timed out after {}s waiting for {what}; last seen: {last}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn pods_of(api: &Api<Pod>, sts: &str) -> Result<Vec<Pod>> {
    Ok(api
        .list(&ListParams::default().labels(&format!("app={sts}")))
        .await
        .with_context(|| format!("listing pods of {sts}"))?
        .items)
}

pub fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get("controller-revision-hash")
        .map(String::as_str)
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_summary(pod: &Pod) -> String {
    format!(
        "{}(rev={}, ready={}, deleting={})",
        pod.metadata.name.as_deref().unwrap_or("?"),
        revision_of(pod).unwrap_or("-"),
        is_ready(pod),
        pod.metadata.deletion_timestamp.is_some()
    )
}

/// Ordinal from a pod name `<sts>-<ordinal>`.
pub fn ordinal_of(pod_name: &str) -> Option<i32> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

/// A StatefulSet fixture: `app=<name>` selector, one container `main` with port 80 `web`,
/// OrderedReady, RollingUpdate, a 1 s grace period so real clusters scale down quickly.
#[derive(Debug, Clone)]
pub struct StsFixture {
    pub name: String,
    pub replicas: i32,
    pub image: String,
    pub service_name: Option<String>,
    pub claim_template: Option<String>,
    pub partition: Option<i32>,
    pub labels: BTreeMap<String, String>,
    /// `persistentVolumeClaimRetentionPolicy` (whenDeleted, whenScaled).
    pub retention: Option<(String, String)>,
}

impl StsFixture {
    pub fn new(name: &str, replicas: i32) -> Self {
        Self {
            name: name.to_string(),
            replicas,
            image: IMAGE_V1.to_string(),
            service_name: None,
            claim_template: None,
            partition: None,
            labels: BTreeMap::new(),
            retention: None,
        }
    }
    pub fn retention(mut self, when_deleted: &str, when_scaled: &str) -> Self {
        self.retention = Some((when_deleted.to_string(), when_scaled.to_string()));
        self
    }
    pub fn service_name(mut self, s: &str) -> Self {
        self.service_name = Some(s.to_string());
        self
    }
    pub fn claim_template(mut self, t: &str) -> Self {
        self.claim_template = Some(t.to_string());
        self
    }
    pub fn partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.to_string(), v.to_string());
        self
    }

    pub fn build(&self) -> StatefulSet {
        let mut spec = json!({
            "replicas": self.replicas,
            "selector": { "matchLabels": { "app": self.name } },
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": { "type": "RollingUpdate" },
            "template": {
                "metadata": { "labels": { "app": self.name } },
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "main",
                        "image": self.image,
                        "ports": [{ "name": "web", "containerPort": 80, "protocol": "TCP" }]
                    }]
                }
            }
        });
        if let Some(s) = &self.service_name {
            spec["serviceName"] = json!(s);
        }
        if let Some((deleted, scaled)) = &self.retention {
            spec["persistentVolumeClaimRetentionPolicy"] =
                json!({ "whenDeleted": deleted, "whenScaled": scaled });
        }
        if let Some(p) = self.partition {
            spec["updateStrategy"]["rollingUpdate"] = json!({ "partition": p });
        }
        if let Some(t) = &self.claim_template {
            spec["volumeClaimTemplates"] = json!([{
                "metadata": { "name": t },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": { "requests": { "storage": "16Mi" } }
                }
            }]);
            spec["template"]["spec"]["containers"][0]["volumeMounts"] =
                json!([{ "name": t, "mountPath": "/data" }]);
        }
        let value = json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": { "name": self.name, "labels": self.labels },
            "spec": spec,
        });
        // The JSON above is a literal of a valid StatefulSet; failing here is a bug in the fixture.
        serde_json::from_value(value).expect("StatefulSet fixture is valid")
    }
}

/// A standalone pod `name` (outside any StatefulSet) that mounts `claim` at /data.
pub fn pod_mounting(name: &str, claim: &str, labels: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": IMAGE_V1,
                "volumeMounts": [{ "name": "d", "mountPath": "/data" }]
            }],
            "volumes": [{ "name": "d", "persistentVolumeClaim": { "claimName": claim } }]
        }
    }))?)
}

/// Find the item whose `field` equals `value` in a JSON array.
pub fn find_by<'a>(items: &'a Value, field: &str, value: &str) -> Option<&'a Value> {
    items.as_array()?.iter().find(|i| i[field] == value)
}

/// The sorted `name`s of a JSON array of objects.
pub fn names_of(items: &Value) -> Vec<String> {
    let mut names: Vec<String> = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A pseudo-terminal: the plugin asks for confirmation only when its stdin is a terminal.
/// The child gets [`Pty::child_stdin`]; the test types into [`Pty::keyboard`].
pub struct Pty {
    pub keyboard: std::fs::File,
    slave: std::fs::File,
}

impl Pty {
    pub fn open() -> Result<Self> {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).context("openpt")?;
        grantpt(&master).context("grantpt")?;
        unlockpt(&master).context("unlockpt")?;
        let path = ptsname(&master, Vec::new()).context("ptsname")?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.to_string_lossy().as_ref())
            .context("opening the pty's terminal side")?;
        Ok(Pty {
            keyboard: std::fs::File::from(master),
            slave,
        })
    }

    /// A stdin for a child process: the terminal side.
    pub fn child_stdin(&self) -> Result<std::process::Stdio> {
        Ok(std::process::Stdio::from(self.slave.try_clone()?))
    }
}

/// The server's minor version; an error saying "not applicable" when it is older than `min`
/// (`what` names the feature). Tests that need a newer server call it first, and
/// `tests/e2e-matrix.sh` leaves their binary out on older servers, so they never pass there
/// without having tested anything.
pub async fn require_server_minor(ns: &TestNs, min: u32, what: &str) -> Result<u32> {
    let info = ns.client.apiserver_version().await?;
    let minor: u32 = info
        .minor
        .trim_end_matches('+')
        .parse()
        .with_context(|| format!("server minor version {:?}", info.minor))?;
    if minor < min {
        bail!(
            "{what} needs Kubernetes >= 1.{min}, the server is {}: it is not applicable here (tests/e2e-matrix.sh leaves it out on such servers)",
            info.git_version
        );
    }
    Ok(minor)
}

/// `kubectl-sts ARGS -n <ns>` on a pseudo-terminal, stopped at its confirmation prompt, so a
/// test can change the cluster while the user "reads" and then answer.
pub struct AtPrompt {
    child: tokio::process::Child,
    stderr: tokio::process::ChildStderr,
    pty: Pty,
    /// What the plugin printed on stderr up to and including the prompt.
    pub asked: String,
}

impl AtPrompt {
    /// Starts the plugin and waits until stderr contains `prompt`.
    pub async fn start(ns: &TestNs, args: &[&str], prompt: &str) -> Result<Self> {
        use tokio::io::AsyncReadExt as _;
        let pty = Pty::open()?;
        let mut child = tokio::process::Command::new(&ns.env.kubectl_sts)
            .args(args)
            .arg("--kubeconfig")
            .arg(&ns.env.kubeconfig)
            .args(["-n", &ns.name])
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(pty.child_stdin()?)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting kubectl-sts {args:?}"))?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let mut asked = Vec::new();
        tokio::time::timeout(ns.timeout(), async {
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&asked).contains(prompt) {
                let n = stderr.read(&mut buf).await?;
                ensure!(
                    n > 0,
                    "the plugin exited before asking: {}",
                    String::from_utf8_lossy(&asked)
                );
                asked.extend_from_slice(&buf[..n]);
            }
            anyhow::Ok(())
        })
        .await
        .context("the plugin did not ask for confirmation")??;
        Ok(Self {
            child,
            stderr,
            pty,
            asked: String::from_utf8_lossy(&asked).into_owned(),
        })
    }

    /// Types `answer` and a newline; returns the exit code, stdout and the rest of stderr.
    pub async fn answer(self, answer: &str, timeout: Duration) -> Result<PluginRun> {
        use std::io::Write as _;
        use tokio::io::AsyncReadExt as _;
        let Self {
            child,
            mut stderr,
            pty,
            ..
        } = self;
        let mut keyboard = pty.keyboard.try_clone()?;
        keyboard.write_all(format!("{answer}\n").as_bytes())?;
        let mut rest = Vec::new();
        let (out, read) = tokio::time::timeout(timeout, async {
            tokio::join!(child.wait_with_output(), stderr.read_to_end(&mut rest))
        })
        .await
        .context("the plugin did not finish after the answer")?;
        let out = out?;
        read?;
        Ok(PluginRun {
            command: "kubectl-sts (at a prompt)".into(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&rest).into_owned(),
        })
    }
}

/// `kubectl-sts ARGS -n <ns>` running in the background (a `--watch`), its stdout read line
/// by line as it prints, so a test can change the cluster and see each line arrive. Killed
/// when dropped.
pub struct Following {
    child: tokio::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    command: String,
}

impl Following {
    pub fn start(ns: &TestNs, args: &[&str]) -> Result<Self> {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(&ns.env.kubectl_sts)
            .args(args)
            .arg("--kubeconfig")
            .arg(&ns.env.kubeconfig)
            .args(["-n", &ns.name])
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting kubectl-sts {args:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = tokio::spawn(async move {
            let mut stdout = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        });
        Ok(Self {
            child,
            lines,
            reader,
            command: format!("kubectl-sts {} -n {}", args.join(" "), ns.name),
        })
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until a printed line satisfies `wanted`; returns it.
    pub async fn wait_line(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String> {
        eventually(what, timeout, || async {
            let lines = self.lines();
            Ok(match lines.iter().find(|l| wanted(l)) {
                Some(line) => Probe::Done(line.clone()),
                None => Probe::NotYet(format!("`{}` printed {lines:#?}", self.command)),
            })
        })
        .await
    }

    /// Send SIGINT (Ctrl-C) to the process.
    pub fn interrupt(&self) -> Result<()> {
        let pid = self.child.id().context("the process has exited")?;
        sts_e2e::sys::send_signal(pid, sts_e2e::sys::SIGINT).context("kill(SIGINT)")?;
        Ok(())
    }

    /// Wait for the process to exit; its code, every stdout line and stderr.
    pub async fn finish(mut self, timeout: Duration) -> Result<PluginRun> {
        use tokio::io::AsyncReadExt as _;
        let mut stderr = self.child.stderr.take().context("no stderr")?;
        let mut err = Vec::new();
        let (status, read) = tokio::time::timeout(timeout, async {
            tokio::join!(self.child.wait(), stderr.read_to_end(&mut err))
        })
        .await
        .with_context(|| {
            format!(
                "`{}` did not exit within {}s; printed {:#?}",
                self.command,
                timeout.as_secs(),
                self.lines()
            )
        })?;
        read?;
        let status = status?;
        let reader = std::mem::replace(&mut self.reader, tokio::spawn(async {}));
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        Ok(PluginRun {
            command: self.command.clone(),
            code: status.code(),
            stdout: self.lines().join("\n"),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

/// Registers MutatingWebhookConfiguration `sts-e2e-<ns>` with one webhook `hook` that nothing
/// answers (`failurePolicy: Fail`, 2 s timeout), for namespaces labelled `label: marker`: a
/// write it is called for is refused naming `hook`, so a test sees which writes the apiserver
/// sends to it. `extra` adds fields to the webhook (`rules` is required, `matchConditions`…).
/// The configuration is deleted when the guard is dropped.
pub async fn register_unanswered_webhook(
    ns: &TestNs,
    hook: &str,
    (label, marker): (&str, &str),
    extra: Value,
) -> Result<WebhookConfigGuard> {
    let name = format!("sts-e2e-{}", ns.name);
    let client_config = match ns.env.mode {
        // Local: the apiserver runs on this machine; nothing listens on port 1.
        Mode::Local => json!({ "url": "https://127.0.0.1:1/mutate" }),
        // External: the apiserver runs inside the cluster, so a loopback URL would depend on
        // its network; a Service that does not exist fails the same way on every cluster.
        Mode::External => json!({
            "service": { "namespace": ns.name, "name": "no-such-webhook", "path": "/mutate", "port": 443 }
        }),
    };
    let mut webhook = json!({
        "name": hook,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 2,
        "clientConfig": client_config,
        "namespaceSelector": { "matchLabels": { label: marker } },
    });
    if let (Some(map), Value::Object(extra)) = (webhook.as_object_mut(), extra) {
        map.extend(extra);
    }
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "sts-e2e.dev/suite": "e2e" } },
        "webhooks": [webhook],
    }))?;
    Api::<MutatingWebhookConfiguration>::all(ns.client.clone())
        .create(&PostParams::default(), &config)
        .await
        .with_context(|| format!("registering the webhook {hook}"))?;
    Ok(WebhookConfigGuard { name })
}

/// Deletes a MutatingWebhookConfiguration a test registered, when dropped (also on failure).
pub struct WebhookConfigGuard {
    pub name: String,
}

impl Drop for WebhookConfigGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        let kubeconfig = env().kubeconfig.clone();
        let res = std::thread::spawn(move || {
            delete_cluster_object::<MutatingWebhookConfiguration>(&kubeconfig, &name)
        })
        .join();
        if !matches!(res, Ok(Ok(()))) {
            eprintln!(
                "warning: could not delete MutatingWebhookConfiguration {}",
                self.name
            );
        }
    }
}
