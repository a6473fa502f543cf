//! Least privilege, proven: every (apiGroup, resource, verb) of deploy/base's `sts-webhook`
//! ClusterRole is needed, on a real kube-apiserver + kube-controller-manager.
//!
//! For each permission of the ClusterRole, a fresh ServiceAccount is bound (ClusterRoleBinding)
//! to a copy of the ClusterRole without exactly that verb, and the webhook's own caches and
//! reconciler ([`Caches::start`], [`reconciler::run`], in-process, with a TokenRequest token of
//! that ServiceAccount) run over a fresh namespace holding one object per behaviour. The test
//! asserts that the behaviour the verb enables does not happen, and that the API server
//! refused that very verb to that ServiceAccount (its message, read from the webhook's log).
//! As control, the same run with the whole ClusterRole does every behaviour and is refused
//! nothing. [`PERMISSIONS`] must cover the ClusterRole exactly: a rule added to deploy/base
//! without a behaviour here fails the test.
//!
//! Needs a cluster without another sts-webhook, and without other tests whose reconcilers
//! watch all namespaces (their reconcilers would act on this test's objects and this test's
//! on theirs), so `tests/e2e-matrix.sh` runs it as a stage of its own (`rbac-webhook`):
//!
//! ```text
//! cargo run -p sts-e2e --bin sts-cluster -- run -- \
//!     cargo nextest run -p sts-webhook --test rbac_cluster --run-ignored only
//! ```
//!
//! `STS_RBAC_ONLY="delete services"` (verb, resource) runs the control and that one case. The
//! webhook's whole log is written to `$TMPDIR/rbac_cluster-<run>.log` when a case fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, PodSpec, PodTemplateSpec, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use sts_model::headless::{HeadlessConfig, desired_service_in};
use sts_webhook::cache::Caches;
use sts_webhook::metrics::Metrics;
use sts_webhook::reconciler::{self, ReconcilerConfig};
use tokio::time::{Instant, sleep};

const RBAC_YAML: &str = include_str!("../../../deploy/base/rbac.yaml");

/// How long a run may take to do what it must (the control) or to be refused (the others).
const DEADLINE: Duration = Duration::from_secs(40);
/// The shortest time a behaviour is given to (not) happen in a run without its verb.
const MIN_WINDOW: Duration = Duration::from_secs(3);
/// The orphan grace. A Service first seen already older than the grace is kept for good
/// (sts_model::reconcile::plan), and creationTimestamp has one-second resolution: the orphan,
/// created right before the reconciler starts, must be seen within the grace minus a second.
const GRACE: Duration = Duration::from_secs(3);

/// What the webhook does that one permission enables, each observed on the real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Behaviour {
    /// Both watch caches hold their initial lists (the reconciler starts only then).
    CachesSynced,
    /// A StatefulSet that exists at start, with no Service, gets its headless Service.
    Heals,
    /// A managed Service that exists at start gets its StatefulSet's ownerReference.
    Adopts,
    /// A managed Service whose StatefulSet does not exist is deleted after the grace period
    /// (after a fresh GET of the StatefulSet and the Service and a LIST of the pods it selects).
    DeletesOrphan,
    /// A StatefulSet created after the caches synced (seen only through the watch) is healed.
    HealsLateStatefulSet,
    /// A Service created after the caches synced (seen only through the watch), then its
    /// StatefulSet, is adopted.
    AdoptsLateService,
}

const BEHAVIOURS: [Behaviour; 6] = [
    Behaviour::CachesSynced,
    Behaviour::Heals,
    Behaviour::Adopts,
    Behaviour::DeletesOrphan,
    Behaviour::HealsLateStatefulSet,
    Behaviour::AdoptsLateService,
];

/// Where the server's refusal is aimed: the caches LIST/WATCH all namespaces, the actions
/// work in the namespace of their object.
#[derive(Clone, Copy, Debug)]
enum RefusedAt {
    ClusterScope,
    Namespace,
}

/// One permission of the ClusterRole, spelled as RBAC spells it, and what breaks without it.
struct Permission {
    api_group: &'static str,
    resource: &'static str,
    verb: &'static str,
    breaks: Behaviour,
    refused_at: RefusedAt,
}

const fn permission(
    api_group: &'static str,
    resource: &'static str,
    verb: &'static str,
    breaks: Behaviour,
    refused_at: RefusedAt,
) -> Permission {
    Permission {
        api_group,
        resource,
        verb,
        breaks,
        refused_at,
    }
}

/// Every permission of deploy/base's ClusterRole: where the webhook uses it (see
/// `crates/webhook/src/cache.rs` and `reconciler.rs`) and the behaviour that needs it.
const PERMISSIONS: &[Permission] = &[
    // cache.rs: the StatefulSet reflector's LIST and WATCH of all namespaces.
    permission(
        "apps",
        "statefulsets",
        "list",
        Behaviour::CachesSynced,
        RefusedAt::ClusterScope,
    ),
    permission(
        "apps",
        "statefulsets",
        "watch",
        Behaviour::HealsLateStatefulSet,
        RefusedAt::ClusterScope,
    ),
    // reconciler.rs recheck_orphan: the StatefulSet read once more before a delete.
    permission(
        "apps",
        "statefulsets",
        "get",
        Behaviour::DeletesOrphan,
        RefusedAt::Namespace,
    ),
    // cache.rs: the Service reflector.
    permission(
        "",
        "services",
        "list",
        Behaviour::CachesSynced,
        RefusedAt::ClusterScope,
    ),
    permission(
        "",
        "services",
        "watch",
        Behaviour::AdoptsLateService,
        RefusedAt::ClusterScope,
    ),
    // reconciler.rs recheck_orphan: the Service read once more before a delete.
    permission(
        "",
        "services",
        "get",
        Behaviour::DeletesOrphan,
        RefusedAt::Namespace,
    ),
    // services.rs ensure_service (admission and heal).
    permission(
        "",
        "services",
        "create",
        Behaviour::Heals,
        RefusedAt::Namespace,
    ),
    // reconciler.rs Adopt: a merge patch of ownerReferences.
    permission(
        "",
        "services",
        "patch",
        Behaviour::Adopts,
        RefusedAt::Namespace,
    ),
    // reconciler.rs DeleteOrphan.
    permission(
        "",
        "services",
        "delete",
        Behaviour::DeletesOrphan,
        RefusedAt::Namespace,
    ),
    // reconciler.rs recheck_orphan: the pods the Service selects (a Service in use is kept).
    permission(
        "",
        "pods",
        "list",
        Behaviour::DeletesOrphan,
        RefusedAt::Namespace,
    ),
];

/// The ClusterRole of deploy/base, as shipped.
fn shipped_role() -> ClusterRole {
    for doc in serde_yaml::Deserializer::from_str(RBAC_YAML) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("YAML");
        if value.get("kind").and_then(|k| k.as_str()) == Some("ClusterRole") {
            return serde_yaml::from_value(value).expect("a ClusterRole");
        }
    }
    panic!("deploy/base/rbac.yaml has no ClusterRole");
}

/// (apiGroup, resource, verb) of every rule, expanded.
fn triples(role: &ClusterRole) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "rule {rule:?}: resourceNames and nonResourceURLs are not covered by this test"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

/// The rules of `role` without `verb` on `group`/`resource`; a rule left without verbs goes.
fn without(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    for rule in role.rules.iter().flatten() {
        for g in rule.api_groups.iter().flatten() {
            for r in rule.resources.iter().flatten() {
                let verbs: Vec<String> = rule
                    .verbs
                    .iter()
                    .filter(|v| !(g == group && r == resource && *v == verb))
                    .cloned()
                    .collect();
                if !verbs.is_empty() {
                    rules.push(PolicyRule {
                        api_groups: Some(vec![g.clone()]),
                        resources: Some(vec![r.clone()]),
                        verbs,
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    rules
}

#[test]
fn every_permission_of_the_cluster_role_has_a_behaviour() {
    let shipped = triples(&shipped_role());
    let mapped: BTreeSet<(String, String, String)> = PERMISSIONS
        .iter()
        .map(|p| (p.api_group.into(), p.resource.into(), p.verb.into()))
        .collect();
    assert_eq!(
        mapped.len(),
        PERMISSIONS.len(),
        "a permission is listed twice"
    );
    let untested: Vec<_> = shipped.difference(&mapped).collect();
    let unshipped: Vec<_> = mapped.difference(&shipped).collect();
    assert!(
        untested.is_empty(),
        "deploy/base/rbac.yaml grants {untested:?} but no behaviour in PERMISSIONS needs it: \
         add one (and its test) or remove the rule"
    );
    assert!(
        unshipped.is_empty(),
        "PERMISSIONS lists {unshipped:?}, which deploy/base/rbac.yaml does not grant"
    );
}

#[test]
fn removing_a_verb_removes_exactly_that_verb() {
    let role = shipped_role();
    let all = triples(&role);
    for p in PERMISSIONS {
        let reduced = ClusterRole {
            rules: Some(without(&role, p.api_group, p.resource, p.verb)),
            ..ClusterRole::default()
        };
        let mut expected = all.clone();
        expected.remove(&(p.api_group.into(), p.resource.into(), p.verb.into()));
        assert_eq!(triples(&reduced), expected);
    }
}

/// The log of this process (the webhook's warnings name what the server refused).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

async fn admin() -> (Client, Config) {
    let path = std::env::var("STS_E2E_KUBECONFIG")
        .expect("STS_E2E_KUBECONFIG must name the test cluster's kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    (Client::try_from(config.clone()).expect("client"), config)
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn sts(ns: &str, name: &str) -> StatefulSet {
    let app = BTreeMap::from([("app".to_owned(), name.to_owned())]);
    StatefulSet {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            ..meta(name)
        },
        spec: Some(StatefulSetSpec {
            service_name: Some(name.into()),
            replicas: Some(0),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("registry.invalid/none".into()),
                        ports: Some(vec![ContainerPort {
                            container_port: 8080,
                            ..ContainerPort::default()
                        }]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The Service admission would have made for StatefulSet `sts_name` (managed, no owner yet).
fn managed_service(ns: &str, name: &str) -> Service {
    desired_service_in(ns, &sts(ns, name), name, &HeadlessConfig::default()).expect("buildable")
}

/// A client that authenticates with a fresh token of ServiceAccount `ns/name`.
async fn service_account_client(admin: &Client, config: &Config, ns: &str, name: &str) -> Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(name),
                ..ServiceAccount::default()
            },
        )
        .await
        .expect("ServiceAccount created");
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("a token")
        .token;
    let mut config = config.clone();
    config.auth_info =
        serde_json::from_value::<AuthInfo>(serde_json::json!({ "token": token })).expect("token");
    Client::try_from(config).expect("client")
}

/// Whether `user` may `verb` `group`/`resource` in `ns`, as the server's authorizer says.
async fn allowed(
    admin: &Client,
    user: &str,
    ns: &str,
    group: &str,
    resource: &str,
    verb: &str,
) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                namespace: Some(ns.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

/// What one run observed: when each behaviour happened, after the reconciler started.
type Observed = BTreeMap<Behaviour, Duration>;

async fn service(api: &Api<Service>, name: &str) -> Option<Service> {
    api.get_opt(name).await.expect("admin reads Services")
}

fn owned(svc: Option<&Service>) -> bool {
    svc.and_then(|s| s.metadata.owner_references.as_ref())
        .is_some_and(|o| !o.is_empty())
}

/// One run of the caches and the reconciler as `user` (authenticated by `client`) over a fresh
/// namespace `ns`. Returns what happened by the time `done` says so (or the deadline passed).
async fn run_webhook(
    admin: &Client,
    client: Client,
    ns: &str,
    done: impl Fn(&Observed, Duration) -> bool,
) -> Observed {
    let pp = PostParams::default();
    let svcs: Api<Service> = Api::namespaced(admin.clone(), ns);
    let stss: Api<StatefulSet> = Api::namespaced(admin.clone(), ns);
    // At start: a StatefulSet to heal, a Service and its StatefulSet to adopt, and last (its
    // grace counts from its creation, see GRACE) an orphan.
    stss.create(&pp, &sts(ns, "heal")).await.expect("heal");
    svcs.create(&pp, &managed_service(ns, "adopt"))
        .await
        .expect("adopt Service");
    stss.create(&pp, &sts(ns, "adopt")).await.expect("adopt");
    svcs.create(&pp, &managed_service(ns, "orphan"))
        .await
        .expect("orphan");

    let cfg = ReconcilerConfig {
        orphan_grace: GRACE,
        resync: Duration::from_secs(2),
        debounce: Duration::from_millis(100),
        skip_namespaces: vec!["kube-system".into()],
        ..ReconcilerConfig::default()
    };
    let metrics = Arc::new(Metrics::new());
    let (caches, watches) = Caches::start(client.clone(), (*metrics).clone());
    let tasks = [
        tokio::spawn(watches),
        tokio::spawn(reconciler::run(client, caches.clone(), cfg, metrics)),
    ];
    let start = Instant::now();
    let mut observed = Observed::new();
    let mut late_created = false;
    loop {
        let elapsed = start.elapsed();
        if caches.ready() {
            observed.entry(Behaviour::CachesSynced).or_insert(elapsed);
            if !late_created {
                // Seen only through the watches: they did not exist at the initial lists.
                stss.create(&pp, &sts(ns, "late-sts"))
                    .await
                    .expect("late-sts");
                svcs.create(&pp, &managed_service(ns, "late-svc"))
                    .await
                    .expect("late-svc Service");
                stss.create(&pp, &sts(ns, "late-svc"))
                    .await
                    .expect("late-svc");
                late_created = true;
            }
        }
        let checks = [
            (Behaviour::Heals, service(&svcs, "heal").await.is_some()),
            (
                Behaviour::Adopts,
                owned(service(&svcs, "adopt").await.as_ref()),
            ),
            (
                Behaviour::DeletesOrphan,
                service(&svcs, "orphan").await.is_none(),
            ),
            (
                Behaviour::HealsLateStatefulSet,
                late_created && service(&svcs, "late-sts").await.is_some(),
            ),
            (
                Behaviour::AdoptsLateService,
                late_created && owned(service(&svcs, "late-svc").await.as_ref()),
            ),
        ];
        for (behaviour, happened) in checks {
            if happened {
                observed.entry(behaviour).or_insert(elapsed);
            }
        }
        if done(&observed, elapsed) || elapsed > DEADLINE {
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        t.abort();
    }
    observed
}

/// The server's refusal of `verb` on `resource` to `user`, as the webhook logged it.
fn refusal(log: &str, user: &str, ns: &str, p: &Permission) -> Option<String> {
    let needle = format!(
        "User \"{user}\" cannot {} resource \"{}\" in API group \"{}\"",
        p.verb, p.resource, p.api_group
    );
    let scope = match p.refused_at {
        RefusedAt::ClusterScope => "at the cluster scope".to_owned(),
        RefusedAt::Namespace => format!("in the namespace \"{ns}\""),
    };
    log.lines()
        .find(|l| l.contains(&needle) && l.contains(&scope))
        .map(str::to_owned)
}

/// Binds ServiceAccount `ns/name` (made later) to a new ClusterRole `name` with `rules`
/// (a ClusterRoleBinding); returns the ServiceAccount's username.
async fn bind(admin: &Client, ns: &str, name: &str, rules: Vec<PolicyRule>) -> String {
    let pp = PostParams::default();
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &pp,
            &ClusterRole {
                metadata: meta(name),
                rules: Some(rules),
                ..ClusterRole::default()
            },
        )
        .await
        .expect("ClusterRole created");
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &pp,
            &ClusterRoleBinding {
                metadata: meta(name),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: name.into(),
                    namespace: Some(ns.into()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .expect("ClusterRoleBinding created");
    format!("system:serviceaccount:{ns}:{name}")
}

async fn unbind(admin: &Client, name: &str) {
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(name, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(admin.clone())
        .delete(name, &dp)
        .await;
}

/// Waits until the authorizer answers `want` for each of `checks` (RBAC is read from a cache).
async fn await_authorizer(admin: &Client, user: &str, ns: &str, checks: &[(&Permission, bool)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        for (p, want) in checks {
            all &= allowed(admin, user, ns, p.api_group, p.resource, p.verb).await == *want;
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the authorizer never agreed for {user}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

async fn namespace(admin: &Client, name: &str) {
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta(name),
                ..Namespace::default()
            },
        )
        .await
        .expect("namespace created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster of its own: run via sts-cluster (see the module docs)"]
async fn each_verb_of_the_cluster_role_is_needed() {
    let log = LogBuffer::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("sts_webhook=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (admin, config) = admin().await;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        % 1_000_000_000;
    let role = shipped_role();
    let mut namespaces = Vec::new();
    let mut names = Vec::new();
    let mut failures = Vec::new();

    // The control: the whole ClusterRole does everything and is refused nothing.
    let ns = format!("rbac-full-{run_id}");
    let name = format!("sts-rbac-full-{run_id}");
    namespace(&admin, &ns).await;
    namespaces.push(ns.clone());
    let user = bind(&admin, &ns, &name, role.rules.clone().unwrap_or_default()).await;
    names.push(name.clone());
    let probes: Vec<(&Permission, bool)> = PERMISSIONS.iter().map(|p| (p, true)).collect();
    await_authorizer(&admin, &user, &ns, &probes).await;
    let client = service_account_client(&admin, &config, &ns, &name).await;
    let full = run_webhook(&admin, client, &ns, |seen, _| {
        seen.len() == BEHAVIOURS.len()
    })
    .await;
    eprintln!("whole ClusterRole: {full:?}");
    let missing: Vec<_> = BEHAVIOURS
        .iter()
        .filter(|b| !full.contains_key(b))
        .collect();
    assert!(
        missing.is_empty(),
        "with the whole ClusterRole, these did not happen within {DEADLINE:?}: {missing:?}\n{}",
        log.text()
    );
    let text = log.text();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("User \"{user}\" cannot")))
        .collect();
    assert!(
        refused.is_empty(),
        "the whole ClusterRole was refused: {refused:?}"
    );

    // Each verb removed in turn.
    let only = std::env::var("STS_RBAC_ONLY").ok();
    for (i, p) in PERMISSIONS.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| *o != format!("{} {}", p.verb, p.resource))
        {
            continue;
        }
        let ns = format!("rbac-{i}-{run_id}");
        let name = format!("sts-rbac-{i}-{run_id}");
        namespace(&admin, &ns).await;
        namespaces.push(ns.clone());
        let user = bind(
            &admin,
            &ns,
            &name,
            without(&role, p.api_group, p.resource, p.verb),
        )
        .await;
        names.push(name.clone());
        let probes: Vec<(&Permission, bool)> = PERMISSIONS
            .iter()
            .map(|q| (q, !std::ptr::eq(p, q)))
            .collect();
        await_authorizer(&admin, &user, &ns, &probes).await;
        let client = service_account_client(&admin, &config, &ns, &name).await;
        // Half as long again as the behaviour took with the verb granted.
        let window = full[&p.breaks].mul_f32(1.5).max(MIN_WINDOW);
        let started = Instant::now();
        let seen = run_webhook(&admin, client, &ns, |seen, elapsed| {
            elapsed >= window
                && (seen.contains_key(&p.breaks) || refusal(&log.text(), &user, &ns, p).is_some())
        })
        .await;
        let took = started.elapsed();
        let label = format!(
            "without {} {} ({:?})",
            p.verb,
            if p.api_group.is_empty() {
                p.resource.to_owned()
            } else {
                format!("{}.{}", p.resource, p.api_group)
            },
            p.breaks
        );
        eprintln!("{label}: observed {seen:?} in {took:?}");
        if let Some(at) = seen.get(&p.breaks) {
            failures.push(format!("{label}: it happened anyway, after {at:?}"));
        }
        match refusal(&log.text(), &user, &ns, p) {
            Some(line) => eprintln!("  refused: {line}"),
            None => failures.push(format!(
                "{label}: the server never refused {} {} to {user}",
                p.verb, p.resource
            )),
        }
    }
    for name in &names {
        unbind(&admin, name).await;
    }
    for ns in &namespaces {
        let _ = Api::<Namespace>::all(admin.clone())
            .delete(ns, &DeleteParams::default())
            .await;
    }
    if !failures.is_empty() {
        let log_path = std::env::temp_dir().join(format!("rbac_cluster-{run_id}.log"));
        std::fs::write(&log_path, log.text()).expect("log written");
        panic!(
            "{}\n(the webhook's log: {})",
            failures.join("\n"),
            log_path.display()
        );
    }
}
