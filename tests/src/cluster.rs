//! The local control plane: etcd + kube-apiserver + kube-controller-manager on loopback, a
//! simulated node, and optionally the sts-webhook process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::assets::{self, Binaries};
use crate::certs::ClusterPki;
use crate::error::{HarnessError, Result};
use crate::https::TlsClient;
use crate::node::SimNode;
use crate::process::{ManagedProcess, free_port, log_tail};
use crate::webhook::{WebhookOptions, WebhookRunner};

/// Service CIDR of the local cluster; the apiserver takes 10.0.0.1.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// Name of the simulated node.
pub const NODE_NAME: &str = "sts-sim-node";

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const LOG_FILES: [&str; 3] = [
    "etcd.log",
    "kube-apiserver.log",
    "kube-controller-manager.log",
];

/// How to start the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Working directory for certificates, data and logs; a fresh temp dir when `None`.
    pub dir: Option<PathBuf>,
    /// Start sts-webhook and register it.
    pub webhook: Option<WebhookOptions>,
    /// Extra kube-controller-manager flags, after the harness's own (the benchmark raises the
    /// controllers' client QPS with them so that loading 1000 pods takes less time).
    pub controller_manager_args: Vec<String>,
    /// Start only etcd and kube-apiserver: no kube-controller-manager, no simulated node, no
    /// StorageClasses. Nothing then reacts to what is written (no pods made for StatefulSets,
    /// no garbage collection, no binding) and nothing creates a namespace's `default`
    /// ServiceAccount, which pods need: the caller creates it. For read benchmarks that load
    /// objects as they are (sts-scale-bench). `webhook` is ignored then.
    pub api_only: bool,
    /// Extra kube-apiserver flags, after the harness's own (e.g. `--event-ttl=720h`).
    pub apiserver_args: Vec<String>,
    /// Extra etcd flags, after the harness's own (e.g. `--quota-backend-bytes=…`).
    pub etcd_args: Vec<String>,
    /// Keep the etcd data of a reused `dir` instead of starting from scratch, so a benchmark
    /// can go on loading where a stopped run left off. Certificates and the service-account
    /// key are new at every start: tokens stored by an earlier run no longer verify.
    pub keep_etcd_data: bool,
}

/// A running local control plane. Call [`LocalCluster::shutdown`]; dropping it kills every
/// process it started (SIGKILL) as a last resort.
pub struct LocalCluster {
    dir: PathBuf,
    dir_is_temp: bool,
    kubeconfig: PathBuf,
    binaries: Binaries,
    pki: ClusterPki,
    api_port: u16,
    client: kube::Client,
    etcd: Option<ManagedProcess>,
    apiserver: Option<ManagedProcess>,
    controller_manager: Option<ManagedProcess>,
    node: Option<SimNode>,
    webhook: Option<WebhookRunner>,
}

/// Partially started components, so a failed start still stops what it began.
#[derive(Default)]
struct Started {
    procs: Vec<ManagedProcess>,
}

impl Started {
    async fn stop_all(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            p.stop(Duration::from_secs(5)).await;
        }
    }
}

fn create_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p)
        .map_err(|e| HarnessError::io(format!("cannot create {}", p.display()), e))
}

impl LocalCluster {
    /// Starts everything and waits until it is usable: `/readyz` answers ok and the
    /// controller-manager has created the `default` ServiceAccount.
    pub async fn start(opts: ClusterOptions) -> Result<Self> {
        let (dir, dir_is_temp) = match &opts.dir {
            Some(d) => {
                create_dir(d)?;
                (
                    d.canonicalize().map_err(|e| {
                        HarnessError::io(format!("cannot resolve {}", d.display()), e)
                    })?,
                    false,
                )
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("sts-cluster-")
                    .tempdir()
                    .map_err(|e| HarnessError::io("cannot create a temp dir", e))?;
                (t.keep(), true)
            }
        };
        let binaries = assets::locate().await?;
        tracing::info!(dir = %dir.display(), bins = %binaries.dir.display(), "starting local control plane");
        let mut started = Started::default();
        match Self::start_in(&dir, binaries, &opts, &mut started).await {
            Ok(mut cluster) => {
                cluster.dir_is_temp = dir_is_temp;
                Ok(cluster)
            }
            Err(e) => {
                for p in &started.procs {
                    eprintln!(
                        "----- {} log ({}) -----\n{}",
                        p.name(),
                        p.log().display(),
                        log_tail(p.log(), 40)
                    );
                }
                started.stop_all().await;
                eprintln!(
                    "sts-cluster: startup failed; logs kept in {}",
                    dir.display()
                );
                Err(e)
            }
        }
    }

    async fn start_in(
        dir: &Path,
        binaries: Binaries,
        opts: &ClusterOptions,
        started: &mut Started,
    ) -> Result<Self> {
        // A reused --dir starts from scratch: old etcd data would hold service-account tokens
        // signed with the previous run's key, and old logs would mislead.
        for stale in ["etcd-data", "apiserver-certs", "volumes"] {
            if stale == "etcd-data" && opts.keep_etcd_data {
                continue;
            }
            let p = dir.join(stale);
            if p.exists() {
                std::fs::remove_dir_all(&p)
                    .map_err(|e| HarnessError::io(format!("cannot remove {}", p.display()), e))?;
            }
        }
        for log in LOG_FILES.iter().chain(["sts-webhook.log"].iter()) {
            let p = dir.join(log);
            if p.exists() {
                std::fs::remove_file(&p)
                    .map_err(|e| HarnessError::io(format!("cannot remove {}", p.display()), e))?;
            }
        }
        let pki_dir = dir.join("pki");
        let pki = ClusterPki::generate(&pki_dir)?;
        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let api_port = free_port()?;

        // etcd
        let etcd_data = dir.join("etcd-data");
        create_dir(&etcd_data)?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let mut etcd_args = vec![
            format!("--data-dir={}", etcd_data.display()),
            "--name=sts-e2e".to_owned(),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=sts-e2e={peer_url}"),
            "--log-level=warn".to_owned(),
        ];
        etcd_args.extend(opts.etcd_args.iter().cloned());
        started.procs.push(ManagedProcess::spawn(
            "etcd",
            &binaries.etcd(),
            &etcd_args,
            // Debian's etcd 3.4 refuses to run on some arches without this; harmless elsewhere.
            &[(
                "ETCD_UNSUPPORTED_ARCH".to_owned(),
                std::env::consts::ARCH.to_owned(),
            )],
            &dir.join("etcd.log"),
        )?);
        wait_tcp(etcd_port, "etcd", started).await?;

        // Flags that old releases need and new ones refuse (removed in 1.24).
        let minor = binaries.apiserver_minor();
        let before_1_24 = minor.is_some_and(|m| m < 24);
        // Alpha gates the e2e suite exercises, on both the apiserver (validation) and the
        // controller-manager: the Recreate update strategy, alpha in 1.37
        // (tests/tests/recreate.rs). Drop a gate here once it is locked on by default.
        let feature_gates = minor
            .is_some_and(|m| m >= 37)
            .then(|| "--feature-gates=StatefulSetRecreateStrategy=true".to_owned());
        tracing::info!(?minor, "kube-apiserver minor version");

        // kube-apiserver
        let mut api_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--advertise-address=127.0.0.1".to_owned(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", pki.apiserver.cert_file.display()),
            format!(
                "--tls-private-key-file={}",
                pki.apiserver.key_file.display()
            ),
            format!("--client-ca-file={}", pki.ca.issued.cert_file.display()),
            format!("--service-account-key-file={}", pki.sa_pub_file.display()),
            format!(
                "--service-account-signing-key-file={}",
                pki.sa_key_file.display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=RBAC".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--v=1".to_owned(),
        ];
        api_args.extend(feature_gates.clone());
        if before_1_24 {
            // v1.20 also serves an unauthenticated port 8080 unless told not to.
            api_args.push("--insecure-port=0".to_owned());
        } else {
            // Current releases refuse a loopback advertise address for the `kubernetes`
            // Service's endpoints; nothing here needs that Service to have endpoints.
            api_args.push("--endpoint-reconciler-type=none".to_owned());
        }
        api_args.extend(opts.apiserver_args.iter().cloned());
        started.procs.push(ManagedProcess::spawn(
            "kube-apiserver",
            &binaries.apiserver(),
            &api_args,
            &[],
            &dir.join("kube-apiserver.log"),
        )?);
        let tls = TlsClient::new(
            &pki.ca.issued.cert_der,
            Some((&pki.admin.cert_der, &pki.admin.key_der)),
        )?;
        wait_until(started, "kube-apiserver /readyz", || async {
            matches!(tls.get(api_port, "/readyz").await, Ok((200, _)))
        })
        .await?;

        let kubeconfig = dir.join("admin.kubeconfig");
        write_kubeconfig(&kubeconfig, api_port, &pki)?;
        let client = client_from_kubeconfig(&kubeconfig).await?;

        if opts.api_only {
            let apiserver = started.procs.pop();
            let etcd = started.procs.pop();
            return Ok(LocalCluster {
                dir: dir.to_owned(),
                dir_is_temp: false,
                kubeconfig,
                binaries,
                pki,
                api_port,
                client,
                etcd,
                apiserver,
                controller_manager: None,
                node: None,
                webhook: None,
            });
        }

        // kube-controller-manager
        let mut kcm_args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            format!(
                "--service-account-private-key-file={}",
                pki.sa_key_file.display()
            ),
            format!("--root-ca-file={}", pki.ca.issued.cert_file.display()),
            format!(
                "--cluster-signing-cert-file={}",
                pki.ca.issued.cert_file.display()
            ),
            format!(
                "--cluster-signing-key-file={}",
                pki.ca.issued.key_file.display()
            ),
            "--use-service-account-credentials=true".to_owned(),
            "--controllers=*".to_owned(),
            "--leader-elect=false".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            // No serving port: parallel clusters must not collide on 10257 (10252 before 1.24).
            "--secure-port=0".to_owned(),
            // PVCs are retried sooner than the 15s default when their PV appears late.
            "--pvclaimbinder-sync-period=5s".to_owned(),
            "--v=1".to_owned(),
        ];
        kcm_args.extend(feature_gates);
        if before_1_24 {
            kcm_args.push("--port=0".to_owned());
        }
        kcm_args.extend(opts.controller_manager_args.iter().cloned());
        started.procs.push(ManagedProcess::spawn(
            "kube-controller-manager",
            &binaries.controller_manager(),
            &kcm_args,
            &[],
            &dir.join("kube-controller-manager.log"),
        )?);
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        wait_until(
            started,
            "the controller-manager to create ServiceAccount default/default",
            || async { matches!(sa.get_opt("default").await, Ok(Some(_))) },
        )
        .await?;

        let volume_root = dir.join("volumes");
        create_dir(&volume_root)?;
        let node = SimNode::start(client.clone(), NODE_NAME, volume_root).await?;
        crate::node::create_storage_classes(&client).await?;

        // Ownership of the processes moves into the cluster; from here on Drop/shutdown stop them.
        let controller_manager = started.procs.pop();
        let apiserver = started.procs.pop();
        let etcd = started.procs.pop();
        let mut cluster = LocalCluster {
            dir: dir.to_owned(),
            dir_is_temp: false,
            kubeconfig,
            binaries,
            pki,
            api_port,
            client,
            etcd,
            apiserver,
            controller_manager,
            node: Some(node),
            webhook: None,
        };
        if let Some(wopts) = &opts.webhook
            && let Err(e) = cluster.start_webhook(wopts.clone()).await
        {
            cluster.print_logs();
            cluster.stop_processes().await;
            return Err(e);
        }
        Ok(cluster)
    }

    /// Starts sts-webhook as deploy/base's ServiceAccount, with only the ClusterRole that
    /// deploy/base grants it (crate::rbac), and registers it.
    async fn start_webhook(&mut self, opts: WebhookOptions) -> Result<()> {
        let kubeconfig = self.dir.join("sts-webhook.kubeconfig");
        crate::rbac::webhook_kubeconfig(
            &self.client,
            &self.pki.ca.issued.cert_pem,
            &self.api_url(),
            &kubeconfig,
        )
        .await?;
        let mut runner = WebhookRunner::new(opts, &self.dir, &self.pki.ca, &kubeconfig)?;
        runner.start().await?;
        runner.register(&self.client).await?;
        self.webhook = Some(runner);
        Ok(())
    }

    /// A sts-webhook process of its own (not started, not registered) serving a certificate of
    /// the cluster's CA and talking to the API server as the cluster's admin: for benchmarks
    /// of the webhook's caches, which need no admission and no least-privilege account.
    pub fn admin_webhook_runner(&self, opts: WebhookOptions) -> Result<WebhookRunner> {
        WebhookRunner::new(opts, &self.dir, &self.pki.ca, &self.kubeconfig)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }
    /// The CA kube-apiserver trusts for client certificates (`--client-ca-file`): its
    /// certificate and private key (PEM files), for tests that issue their own client
    /// certificates.
    pub fn client_ca(&self) -> (&Path, &Path) {
        (&self.pki.ca.issued.cert_file, &self.pki.ca.issued.key_file)
    }
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }
    pub fn webhook(&mut self) -> Option<&mut WebhookRunner> {
        self.webhook.as_mut()
    }
    /// True if the working dir was created by the harness (and may be removed on success).
    pub fn dir_is_temp(&self) -> bool {
        self.dir_is_temp
    }

    /// Errors if a control-plane process or the simulated node has stopped.
    pub fn health_check(&mut self) -> Result<()> {
        for p in [
            &mut self.etcd,
            &mut self.apiserver,
            &mut self.controller_manager,
        ]
        .into_iter()
        .flatten()
        {
            p.ensure_running()?;
        }
        if let Some(node) = &self.node {
            node.ensure_running()?;
        }
        Ok(())
    }

    /// PIDs of the processes the harness runs now (control plane and webhook).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = [&self.etcd, &self.apiserver, &self.controller_manager]
            .into_iter()
            .flatten()
            .filter_map(ManagedProcess::pid)
            .collect();
        if let Some(pid) = self.webhook.as_ref().and_then(WebhookRunner::pid) {
            pids.push(pid);
        }
        pids
    }

    /// Paths of every log the harness writes.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = LOG_FILES.iter().map(|f| self.dir.join(f)).collect();
        if let Some(w) = &self.webhook {
            logs.push(w.log().to_owned());
        }
        logs
    }

    /// Prints the tail of every log to stderr (used when something failed).
    pub fn print_logs(&self) {
        for log in self.logs() {
            eprintln!("----- {} -----\n{}", log.display(), log_tail(&log, 40));
        }
    }

    async fn stop_processes(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
        if let Some(mut w) = self.webhook.take() {
            w.stop().await;
        }
        // Reverse start order: clients of the apiserver first, etcd last.
        for p in [
            self.controller_manager.take(),
            self.apiserver.take(),
            self.etcd.take(),
        ]
        .into_iter()
        .flatten()
        {
            // Nothing here holds state worth a long graceful shutdown (etcd data is throwaway);
            // kube-apiserver in particular can linger on open watches.
            let mut p = p;
            p.stop(Duration::from_secs(5)).await;
        }
    }

    /// Stops everything; removes the working dir if the harness created it and `keep_dir` is
    /// false. Returns the dir if it was kept.
    pub async fn shutdown(mut self, keep_dir: bool) -> Option<PathBuf> {
        self.stop_processes().await;
        if self.dir_is_temp && !keep_dir {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!("cannot remove {}: {e}", self.dir.display());
                return Some(self.dir.clone());
            }
            None
        } else {
            Some(self.dir.clone())
        }
    }
}

/// Writes an admin kubeconfig with everything embedded (no paths), usable by kubectl and kube-rs.
pub fn write_kubeconfig(path: &Path, api_port: u16, pki: &ClusterPki) -> Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let credentials = format!(
        "client-certificate-data: {}\n    client-key-data: {}",
        b64(&pki.admin.cert_pem),
        b64(&pki.admin.key_pem)
    );
    write_kubeconfig_as(
        path,
        &format!("https://127.0.0.1:{api_port}"),
        &pki.ca.issued.cert_pem,
        "sts-e2e-admin",
        &credentials,
        "default",
    )
}

/// Writes a kubeconfig for the API server at `server` (an `https://` URL) whose serving
/// certificate `ca_pem` signed, user `user` authenticating with `credentials` (the YAML fields
/// under `user:`, e.g. `token: …`), default namespace `namespace`.
pub fn write_kubeconfig_as(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: &str,
    namespace: &str,
) -> Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sts-e2e
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    {credentials}
contexts:
- name: sts-e2e
  context:
    cluster: sts-e2e
    user: {user}
    namespace: {namespace}
current-context: sts-e2e
"
    );
    std::fs::write(path, text)
        .map_err(|e| HarnessError::io(format!("cannot write {}", path.display()), e))
}

/// A kube client for a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(path)
        .map_err(|e| HarnessError::setup(format!("reading {}", path.display()), e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| HarnessError::setup(format!("loading {}", path.display()), e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| HarnessError::kube("building a kube client", e))
}

async fn wait_tcp(port: u16, what: &str, started: &mut Started) -> Result<()> {
    wait_until(started, &format!("{what} on 127.0.0.1:{port}"), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await
}

/// Polls `probe` until true; fails early if a started process exits, or after READY_TIMEOUT.
async fn wait_until<F, Fut>(started: &mut Started, what: &str, mut probe: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let begin = Instant::now();
    loop {
        for p in &mut started.procs {
            p.ensure_running()?;
        }
        if probe().await {
            tracing::info!("{what}: ready after {:.1}s", begin.elapsed().as_secs_f32());
            return Ok(());
        }
        if begin.elapsed() > READY_TIMEOUT {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Last resort (panic, early return): ManagedProcess drops SIGKILL their children.
        if self.etcd.is_some() || self.apiserver.is_some() {
            tracing::warn!("LocalCluster dropped without shutdown(); killing its processes");
        }
    }
}

/// The harness against itself: a real cluster, a real StatefulSet. Needs the control-plane
/// binaries (installed by tests/control-plane/install.sh when missing), so it runs with the e2e
/// suite (`make test-e2e`), not in the unit phase.
#[cfg(test)]
mod live_tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
    use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
    use serde_json::json;

    async fn eventually<F, Fut>(what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let begin = Instant::now();
        while !f().await {
            assert!(
                begin.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn alive(pid: u32) -> bool {
        crate::sys::send_signal(pid, 0).is_ok()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn statefulset_scales_with_real_controllers_and_nothing_is_left_behind() {
        let cluster = LocalCluster::start(ClusterOptions::default())
            .await
            .unwrap();
        let pids = cluster.pids();
        assert_eq!(
            pids.len(),
            3,
            "etcd, kube-apiserver, kube-controller-manager"
        );
        assert!(pids.iter().all(|p| alive(*p)));
        let dir = cluster.dir().to_owned();
        let client = cluster.client();

        let ns = "harness-live";
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        // The namespace's default ServiceAccount must exist before pods can be admitted.
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        eventually("ServiceAccount default", || async {
            matches!(sa.get_opt("default").await, Ok(Some(_)))
        })
        .await;

        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "serviceName": "web", "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.19"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .unwrap();
        let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        sts_api.create(&PostParams::default(), &sts).await.unwrap();

        // OrderedReady: web-1 is only created once web-0 is Running and Ready, so 3 ready
        // replicas prove binding, status reporting and PV provisioning work.
        eventually("3 ready replicas", || async {
            let s = sts_api.get("web").await.unwrap();
            s.status.and_then(|s| s.ready_replicas) == Some(3)
        })
        .await;
        let list = pods.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 3);
        for p in &list.items {
            assert_eq!(
                p.spec.as_ref().unwrap().node_name.as_deref(),
                Some(NODE_NAME)
            );
            assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
        }
        let claims = pvcs.list(&ListParams::default()).await.unwrap();
        assert_eq!(claims.items.len(), 3);
        assert!(
            claims
                .items
                .iter()
                .all(|c| c.status.as_ref().unwrap().phase.as_deref() == Some("Bound"))
        );

        // Scale down: the controller deletes web-2 then web-1 gracefully; the node finishes it.
        sts_api
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 1}})),
            )
            .await
            .unwrap();
        eventually("scale down to 1 pod", || async {
            pods.list(&ListParams::default()).await.unwrap().items.len() == 1
        })
        .await;
        assert_eq!(
            pvcs.list(&ListParams::default()).await.unwrap().items.len(),
            3,
            "claims outlive pods"
        );

        // Deleting an unused claim releases its PV, which the simulated provisioner deletes.
        let claim = pvcs.get("data-web-2").await.unwrap();
        let pv_name = claim.spec.unwrap().volume_name.unwrap();
        pvcs.delete("data-web-2", &DeleteParams::default())
            .await
            .unwrap();
        eventually("PV of data-web-2 to be reclaimed", || async {
            matches!(pvs.get_opt(&pv_name).await, Ok(None))
        })
        .await;

        assert_eq!(
            cluster.shutdown(false).await,
            None,
            "temp dir should be removed"
        );
        assert!(!dir.exists());
        for pid in pids {
            assert!(!alive(pid), "process {pid} survived shutdown");
        }
    }
}
