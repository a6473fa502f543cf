//! The reconciler against a real kube-apiserver + kube-controller-manager.
//!
//! Needs a cluster, so it is `#[ignore]`d in plain test runs; run it with the local control
//! plane (it fails, never skips, when `STS_E2E_KUBECONFIG` is unset):
//!
//! ```text
//! cargo run -p sts-e2e --bin sts-cluster -- run -- \
//!     cargo nextest run -p sts-webhook --test reconciler_cluster --run-ignored only
//! ```
//!
//! The cluster must not run another sts-webhook (so no `--webhook`): its admission and
//! reconciler would do the work this test expects its own reconcilers to do.
//!
//! With `STS_RECONCILER_KUBECONFIG` set, the reconcilers use that kubeconfig instead (e.g. a
//! token of the `sts-webhook` ServiceAccount bound to deploy/base's ClusterRole), which proves
//! the RBAC there is sufficient.
//!
//! Two reconcilers run side by side (as two replicas would) over one fresh namespace, and the
//! test checks heal, adopt → garbage collection, orphan removal after the grace period, that
//! Services of StatefulSets deleted with `--cascade=orphan` are kept, that
//! foreign/owned/opted-out objects are left alone, and that the two replicas neither fail nor
//! double-count.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, Namespace, Pod, PodSpec, PodTemplateSpec, Service,
    ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use sts_model::headless::{ADOPTED_ANNOTATION, HeadlessConfig, desired_service_in};
use sts_model::reconcile::owner_reference;
use sts_webhook::cache::Caches;
use sts_webhook::metrics::Metrics;
use sts_webhook::reconciler::{self, ReconcilerConfig};
use tokio::time::{Instant, sleep};

const GRACE: Duration = Duration::from_secs(8);

async fn client() -> Client {
    let path = std::env::var("STS_E2E_KUBECONFIG")
        .expect("STS_E2E_KUBECONFIG must name the test cluster's kubeconfig");
    client_from(&path).await
}

/// The reconcilers' client: `STS_RECONCILER_KUBECONFIG` when set (e.g. the deploy/ service
/// account's token, to prove its RBAC is enough), else the test's own.
async fn reconciler_client(admin: &Client) -> Client {
    match std::env::var("STS_RECONCILER_KUBECONFIG") {
        Ok(path) => client_from(&path).await,
        Err(_) => admin.clone(),
    }
}

async fn client_from(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("client")
}

fn sts(name: &str, service_name: &str, labels: &[(&str, &str)]) -> StatefulSet {
    let app = BTreeMap::from([("app".to_owned(), name.to_owned())]);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            service_name: Some(service_name.into()),
            replicas: Some(0),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("registry.invalid/none".into()),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: 8080,
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Service as admission would have made it for StatefulSet `sts_name` (no owner yet).
fn managed_service(ns: &str, name: &str, sts_name: &str) -> Service {
    let mut for_sts = sts(sts_name, name, &[]);
    for_sts.metadata.namespace = Some(ns.into());
    desired_service_in(ns, &for_sts, name, &HeadlessConfig::default()).expect("buildable")
}

fn plain_service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(BTreeMap::from([("app".to_owned(), name.to_owned())])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls `check` every 200 ms until it returns Some, or panics after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// Value of one counter line (`name{labels} value`) in the metrics text; 0 when absent.
fn counter(metrics: &Metrics, series: &str) -> u64 {
    let mut text = String::new();
    metrics.encode(&mut text).expect("encodable");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn total(ms: &[Arc<Metrics>], series: &str) -> u64 {
    ms.iter().map(|m| counter(m, series)).sum()
}

fn errors(metrics: &Metrics) -> Vec<String> {
    let mut text = String::new();
    metrics.encode(&mut text).expect("encodable");
    text.lines()
        .filter(|l| l.starts_with("sts_webhook_errors_total{"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run via sts-cluster (see the module docs)"]
async fn reconciler_adopts_heals_and_removes_orphans() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sts_webhook=debug")
        .with_test_writer()
        .try_init();
    let client = client().await;
    let ns = format!(
        "rec-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace created");
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();

    // Objects that exist before the reconcilers start: an orphan candidate, a foreign Service,
    // a managed Service owned by something else (a ConfigMap).
    svcs.create(&pp, &managed_service(&ns, "orphan", "ghost"))
        .await
        .unwrap();
    let orphan_created = Instant::now();
    svcs.create(&pp, &plain_service("foreign")).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner_cm = cms
        .create(
            &pp,
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut owned = managed_service(&ns, "owned", "ghost2");
    owned.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner_cm.metadata.uid.clone().unwrap(),
        ..Default::default()
    }]);
    svcs.create(&pp, &owned).await.unwrap();

    // Two "replicas".
    let cfg = ReconcilerConfig {
        orphan_grace: GRACE,
        resync: Duration::from_secs(3),
        debounce: Duration::from_millis(100),
        ..ReconcilerConfig::default()
    };
    let mut metrics = Vec::new();
    let mut tasks = Vec::new();
    let rclient = reconciler_client(&client).await;
    for _ in 0..2 {
        let m = Arc::new(Metrics::new());
        let (caches, watches) = Caches::start(rclient.clone(), (*m).clone());
        tasks.push(tokio::spawn(watches));
        tasks.push(tokio::spawn(reconciler::run(
            rclient.clone(),
            caches,
            cfg.clone(),
            m.clone(),
        )));
        metrics.push(m);
    }

    // Heal: a StatefulSet whose Service is missing gets it, owned by the StatefulSet.
    let heal = stss
        .create(&pp, &sts("healme", "healme", &[]))
        .await
        .unwrap();
    let healed = eventually("healed Service", Duration::from_secs(20), || async {
        svcs.get_opt("healme").await.unwrap()
    })
    .await;
    let spec = healed.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        spec.selector,
        Some(BTreeMap::from([("app".to_owned(), "healme".to_owned())]))
    );
    assert_eq!(spec.ports.as_ref().unwrap()[0].port, 8080);
    let owners = healed.metadata.owner_references.clone().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(Some(&owners[0].uid), heal.metadata.uid.as_ref());
    assert_eq!(owners[0].kind, "StatefulSet");

    // Opt-out: no Service appears.
    stss.create(
        &pp,
        &sts("optout", "optout", &[("headless.sts.dev/inject", "false")]),
    )
    .await
    .unwrap();

    // Adopt: the Service exists first (as after admission), then the StatefulSet.
    let before = svcs
        .create(&pp, &managed_service(&ns, "adoptme", "adoptme"))
        .await
        .unwrap();
    let adopt_sts = stss
        .create(&pp, &sts("adoptme", "adoptme", &[]))
        .await
        .unwrap();
    let adopted = eventually(
        "ownerReference on adoptme",
        Duration::from_secs(20),
        || async {
            let s = svcs.get("adoptme").await.unwrap();
            s.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| !o.is_empty())
                .then_some(s)
        },
    )
    .await;
    assert_eq!(
        adopted.metadata.uid, before.metadata.uid,
        "adopted, not re-created"
    );
    let owners = adopted.metadata.owner_references.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(Some(&owners[0].uid), adopt_sts.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(false));
    assert_eq!(owners[0].block_owner_deletion, Some(false));

    // Orphan: deleted once the grace period is over, not before. creationTimestamp has
    // one-second resolution, so allow that much.
    let orphan_gone = eventually(
        "orphan deleted",
        GRACE + Duration::from_secs(20),
        || async {
            svcs.get_opt("orphan")
                .await
                .unwrap()
                .is_none()
                .then_some(Instant::now())
        },
    )
    .await;
    assert!(
        orphan_gone.duration_since(orphan_created) >= GRACE - Duration::from_secs(1),
        "orphan deleted after {:?}, before the {GRACE:?} grace",
        orphan_gone.duration_since(orphan_created)
    );

    // Regression (issue 10): `kubectl delete sts --cascade=orphan` of an adopted StatefulSet.
    // The garbage collector removes the ownerReference and leaves the pods and the Service;
    // the reconciler used to delete the Service within a second, its grace counted from the
    // Service's creation. Adopted once, it is the user's to keep.
    // The Service first, as after admission (else a reconciler heals the StatefulSet).
    svcs.create(&pp, &managed_service(&ns, "keepme", "keepme"))
        .await
        .unwrap();
    let keep_sts = stss
        .create(&pp, &sts("keepme", "keepme", &[]))
        .await
        .unwrap();
    let kept = eventually("keepme adopted", Duration::from_secs(20), || async {
        let s = svcs.get("keepme").await.unwrap();
        s.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| !o.is_empty())
            .then_some(s)
    })
    .await;
    assert_eq!(
        kept.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ADOPTED_ANNOTATION)),
        keep_sts.metadata.uid.as_ref(),
        "adoption leaves its mark"
    );
    // The same after an adoption that left no mark (an older sts-webhook): kept because it
    // still selects the orphaned pods. One replica, so the controller makes pod legacy-0;
    // opted out only so that no reconciler heals it before the test creates its Service.
    let mut legacy = sts("legacy", "legacy", &[("headless.sts.dev/inject", "false")]);
    legacy.spec.as_mut().unwrap().replicas = Some(1);
    let legacy = stss.create(&pp, &legacy).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually("pod legacy-0", Duration::from_secs(30), || async {
        pods.get_opt("legacy-0").await.unwrap()
    })
    .await;
    let mut legacy_svc = managed_service(&ns, "legacy", "legacy");
    legacy_svc.metadata.owner_references = Some(vec![owner_reference(&(&legacy).into()).unwrap()]);
    svcs.create(&pp, &legacy_svc).await.unwrap();
    for name in ["keepme", "legacy"] {
        stss.delete(
            name,
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Orphan),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    for name in ["keepme", "legacy"] {
        eventually(
            "the garbage collector removes the ownerReference",
            Duration::from_secs(60),
            || async {
                let s = svcs.get(name).await.unwrap();
                s.metadata
                    .owner_references
                    .is_none_or(|o| o.is_empty())
                    .then_some(())
            },
        )
        .await;
    }
    // Past the grace period, counted from now, and a few passes more.
    sleep(GRACE + Duration::from_secs(4)).await;
    for name in ["keepme", "legacy"] {
        assert!(
            svcs.get_opt(name).await.unwrap().is_some(),
            "Service {name} of an orphan-deleted StatefulSet was deleted"
        );
    }
    assert!(
        pods.get_opt("legacy-0").await.unwrap().is_some(),
        "the orphan cascade left the pod"
    );
    assert!(
        total(
            &metrics,
            r#"sts_webhook_services_kept_total{reason="selects_pods"}"#
        ) >= 1,
        "legacy was kept because it selects legacy-0"
    );

    // Let a few more passes run, then check what must not have been touched.
    sleep(Duration::from_secs(4)).await;
    assert!(
        svcs.get_opt("foreign").await.unwrap().is_some(),
        "foreign Service kept"
    );
    assert!(
        svcs.get_opt("owned").await.unwrap().is_some(),
        "owned Service kept"
    );
    assert!(
        svcs.get_opt("optout").await.unwrap().is_none(),
        "opted-out StatefulSet got no Service"
    );
    assert_eq!(
        total(
            &metrics,
            r#"sts_webhook_services_created_total{source="reconciler"}"#
        ),
        1,
        "exactly one create across both replicas"
    );
    assert_eq!(total(&metrics, "sts_webhook_services_adopted_total"), 2);
    assert_eq!(total(&metrics, "sts_webhook_services_deleted_total"), 1);
    for m in &metrics {
        assert!(errors(m).is_empty(), "reconcile errors: {:?}", errors(m));
    }

    // Garbage collection: deleting the StatefulSet removes the adopted Service.
    stss.delete(
        "adoptme",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually(
        "adopted Service garbage-collected",
        Duration::from_secs(60),
        || async {
            svcs.get_opt("adoptme")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;

    for t in tasks {
        t.abort();
    }
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
}
