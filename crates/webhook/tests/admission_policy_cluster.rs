//! Webhook-free mode against a real kube-apiserver (>= 1.36): the MutatingAdmissionPolicy and
//! binding of `deploy/admission-policy`, exactly as shipped, set `spec.serviceName`, and
//! `sts-webhook --mode=reconciler` (the built binary, as that variant's Deployment runs it)
//! creates the headless Services. No webhook is registered in the cluster.
//!
//! Needs a cluster of its own (the shipped binding covers every namespace), so it is
//! `#[ignore]`d and run by `tests/e2e-matrix.sh` as the `admission-policy` stage on servers of
//! 1.36 or newer (reported as not applicable on older ones):
//!
//! ```text
//! cargo build -p sts-webhook && cargo run -p sts-e2e --bin sts-cluster -- run -- \
//!     cargo nextest run -p sts-webhook --test admission_policy_cluster --run-ignored only
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde::Deserialize as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep};

/// The oldest minor version with MutatingAdmissionPolicy GA (admissionregistration.k8s.io/v1).
const MIN_MINOR: u32 = 36;
const TIMEOUT: Duration = Duration::from_secs(60);

async fn admin_client(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("client")
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > TIMEOUT => {
                panic!("timed out after {TIMEOUT:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The documents of a deploy/ manifest, as JSON.
fn manifests(relative: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let yaml = serde_yaml::Value::deserialize(doc).expect("YAML");
            serde_json::to_value(yaml).expect("JSON")
        })
        .collect()
}

/// `sts-webhook --mode=reconciler`, ended when dropped.
struct Reconciler {
    child: Child,
    port: u16,
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Reconciler {
    fn start(kubeconfig: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_sts-webhook"))
            .args(["--mode", "reconciler", "--kubeconfig", kubeconfig])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sts-webhook starts");
        Self { child, port }
    }

    /// `GET path` over plain HTTP: (status, body).
    async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        Ok((status, body))
    }
}

fn statefulset(name: &str, labels: &[(&str, &str)]) -> StatefulSet {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{
                    "name": "main", "image": "registry.k8s.io/pause:3.10",
                    "ports": [{ "name": "web", "containerPort": 80 }]
                }]}
            }
        }
    }))
    .expect("valid StatefulSet")
}

/// `spec.serviceName`; `""` (how the apiserver returns an unset one) reads as `None`.
fn service_name(sts: &StatefulSet) -> Option<&str> {
    sts.spec
        .as_ref()?
        .service_name
        .as_deref()
        .filter(|s| !s.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster of its own, >= 1.36: run via tests/e2e-matrix.sh (see the module docs)"]
async fn admission_policy_sets_service_name_and_the_reconciler_makes_the_service() {
    let kubeconfig = std::env::var("STS_E2E_KUBECONFIG")
        .expect("STS_E2E_KUBECONFIG must name the test cluster's kubeconfig");
    let client = admin_client(&kubeconfig).await;
    let version = client.apiserver_version().await.expect("server version");
    let minor: u32 = version.minor.trim_end_matches('+').parse().expect("minor");
    assert!(
        minor >= MIN_MINOR,
        "MutatingAdmissionPolicy needs Kubernetes >= 1.{MIN_MINOR}, the server is {}: not applicable (tests/e2e-matrix.sh leaves this stage out there)",
        version.git_version
    );

    // The shipped policy and binding, created as they are.
    let gvk = |kind: &str| GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    let policies: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &gvk("MutatingAdmissionPolicy"),
            "mutatingadmissionpolicies",
        ),
    );
    let bindings: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &gvk("MutatingAdmissionPolicyBinding"),
            "mutatingadmissionpolicybindings",
        ),
    );
    for doc in manifests("deploy/admission-policy/mutatingadmissionpolicy.yaml") {
        let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
        let api = match doc["kind"].as_str() {
            Some("MutatingAdmissionPolicy") => &policies,
            Some("MutatingAdmissionPolicyBinding") => &bindings,
            other => panic!("unexpected kind {other:?} in the admission-policy manifest"),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {}: {e}", doc["kind"]));
    }

    let ns_name = format!("map-{}", std::process::id());
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": ns_name } })).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns_name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns_name);

    // The apiserver picks up a new policy within a second or two: dry-run until it mutates.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually("the policy to take effect", || async {
        let created = sts_api
            .create(&dry, &statefulset("probe", &[]))
            .await
            .map_err(|e| e.to_string())?;
        match service_name(&created) {
            Some("probe") => Ok(()),
            other => Err(format!("dry run answered serviceName {other:?}")),
        }
    })
    .await;

    let reconciler = Reconciler::start(&kubeconfig);
    eventually("GET /readyz of the reconciler to answer 200", || async {
        match reconciler.get("/readyz").await? {
            (200, _) => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await;
    let (status, _) = reconciler.get("/mutate").await.expect("an answer");
    assert_eq!(status, 404, "reconciler mode serves no /mutate");

    // Injected by the policy: the plain name, `s-` before a leading digit; none when opted out.
    let web = sts_api
        .create(&PostParams::default(), &statefulset("web", &[]))
        .await
        .expect("web created");
    assert_eq!(service_name(&web), Some("web"));
    let zero = sts_api
        .create(&PostParams::default(), &statefulset("0db", &[]))
        .await
        .expect("0db created");
    assert_eq!(service_name(&zero), Some("s-0db"));
    let opted_out = sts_api
        .create(
            &PostParams::default(),
            &statefulset("manual", &[("headless.sts.dev/inject", "false")]),
        )
        .await
        .expect("manual created");
    assert_eq!(
        service_name(&opted_out),
        None,
        "opted out: nothing injected"
    );

    // The reconciler process makes the headless Services, owned by their StatefulSets.
    for (svc, owner) in [("web", &web), ("s-0db", &zero)] {
        let uid = owner.metadata.uid.clone().expect("uid");
        eventually(
            &format!("headless Service {svc} owned by its StatefulSet"),
            || {
                let services = services.clone();
                let uid = uid.clone();
                async move {
                    let s = services
                        .get_opt(svc)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("no Service yet")?;
                    let headless =
                        s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
                    let owned = s
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.uid == uid);
                    if headless && owned {
                        Ok(())
                    } else {
                        Err(format!("headless {headless}, owned {owned}"))
                    }
                }
            },
        )
        .await;
    }

    // An UPDATE without serviceName (an operator's desired object, `kubectl replace` of the
    // manifest): the policy puts the stored value back instead of the apiserver refusing it.
    let mut desired = statefulset("web", &[]);
    desired.metadata.resource_version = sts_api
        .get("web")
        .await
        .expect("web")
        .metadata
        .resource_version;
    if let Some(spec) = desired.spec.as_mut() {
        spec.replicas = Some(0);
        spec.template.metadata.get_or_insert_default().annotations =
            Some([("changed".to_owned(), "yes".to_owned())].into());
    }
    let replaced = sts_api
        .replace("web", &PostParams::default(), &desired)
        .await
        .expect("an UPDATE without serviceName is admitted");
    assert_eq!(service_name(&replaced), Some("web"));

    // The variant as users apply it: `kubectl kustomize deploy/admission-policy`, accepted by
    // the apiserver (server-side dry run), with no webhook and the reconciler-only Deployment.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rendered = Command::new("kubectl")
        .args(["kustomize", "deploy/admission-policy"])
        .current_dir(&root)
        .output()
        .expect("kubectl on PATH (sts-cluster puts the control plane's first)");
    assert!(rendered.status.success(), "{rendered:?}");
    let rendered = String::from_utf8_lossy(&rendered.stdout).into_owned();
    assert!(
        !rendered.contains("kind: MutatingWebhookConfiguration"),
        "{rendered}"
    );
    assert!(rendered.contains("- --mode=reconciler"), "{rendered}");
    // A server-side dry run cannot create the namespace its other objects go into.
    let webhook_ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "sts-webhook" } })).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &webhook_ns)
        .await
        .expect("namespace sts-webhook created");
    let mut apply = Command::new("kubectl")
        .args([
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            "--kubeconfig",
            &kubeconfig,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    {
        use std::io::Write as _;
        let mut stdin = apply.stdin.take().expect("stdin");
        stdin.write_all(rendered.as_bytes()).expect("written");
    }
    let applied = apply.wait_with_output().expect("kubectl apply ran");
    assert!(
        applied.status.success(),
        "kubectl apply --dry-run=server of deploy/admission-policy: {}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let (status, metrics) = reconciler.get("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    let created = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"sts_webhook_services_created_total{source="reconciler"}"#)?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0);
    assert!(
        created >= 2.0,
        "the reconciler process created the Services: {created}\n{metrics}"
    );

    Api::<Namespace>::all(client.clone())
        .delete(&ns_name, &Default::default())
        .await
        .expect("namespace deleted");
    for name in ["sts-service-name"] {
        let _ = bindings.delete(name, &Default::default()).await;
        let _ = policies.delete(name, &Default::default()).await;
    }
}
