//! The headless Service a StatefulSet should have, and how to judge an existing one.
//!
//! Used by the webhook (create at admission) and by its reconciler (heal later), so both build
//! exactly the same object.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cached::{CachedPort, CachedStatefulSet};
use crate::dns::is_dns1123_label;

/// Label on StatefulSets: `"false"` opts out of the webhook entirely.
pub const OPT_OUT_LABEL: &str = "headless.sts.dev/inject";
/// Label the webhook puts on Services it creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "sts-webhook";
/// Annotation naming the StatefulSet a managed Service was made for.
pub const STATEFULSET_ANNOTATION: &str = "headless.sts.dev/statefulset";
/// Annotation the reconciler puts on a managed Service when it gives it an owner (adopt, or
/// heal, which creates it owned): the UID of that StatefulSet. It outlives the ownerReference:
/// `kubectl delete sts --cascade=orphan` makes the garbage collector remove the reference
/// and leave the Service, and a Service that once served a StatefulSet is then the user's to
/// keep, never an orphan to clean up.
pub const ADOPTED_ANNOTATION: &str = "headless.sts.dev/adopted-from";

/// Options for the Services the webhook creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadlessConfig {
    /// Publish DNS records for pods before they are ready. StatefulSet peers usually need to
    /// find each other while starting (e.g. to form a quorum), hence the default `true`.
    pub publish_not_ready_addresses: bool,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            publish_not_ready_addresses: true,
        }
    }
}

/// Why no Service is built for a StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoService {
    #[error("the StatefulSet opted out with label {OPT_OUT_LABEL}=false")]
    OptedOut,
    #[error(
        "spec.selector uses matchExpressions, which a Service selector cannot express; create the headless Service yourself"
    )]
    MatchExpressions,
    #[error("spec.selector has no matchLabels, so a Service could not select the pods")]
    NoSelector,
    #[error("the StatefulSet has no namespace")]
    NoNamespace,
    #[error("the StatefulSet has no name")]
    NoName,
}

impl NoService {
    /// Short snake_case word for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            NoService::OptedOut => "opted_out",
            NoService::MatchExpressions => "match_expressions",
            NoService::NoSelector => "no_selector",
            NoService::NoNamespace => "no_namespace",
            NoService::NoName => "no_name",
        }
    }
}

/// True when the StatefulSet carries `headless.sts.dev/inject: "false"`.
pub fn is_opted_out(sts: &StatefulSet) -> bool {
    sts.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(OPT_OUT_LABEL))
        .is_some_and(|v| v == "false")
}

/// What `spec.selector` is, as far as a Service selector is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorShape {
    /// `matchLabels` has entries and there are no `matchExpressions`: a Service can select the
    /// pods with exactly those labels.
    MatchLabels,
    /// `matchExpressions` has entries, which a Service selector cannot express.
    MatchExpressions,
    /// Neither (or no selector at all).
    Empty,
}

/// The facts about a StatefulSet that decide its headless Service: what
/// [`crate::mutation::mutate`] and [`check_buildable`] read, and nothing more.
///
/// Implemented for the full [`StatefulSet`], and by the webhook's borrowed view of an admission
/// review, which reads only these fields out of the request body without building the object.
/// Building the Service itself ([`desired_service_named`]) needs the full object.
pub trait StatefulSetFacts {
    /// `metadata.name` (may be absent at CREATE with `generateName`).
    fn name(&self) -> Option<&str>;
    /// `metadata.namespace` (may be absent at CREATE; the request carries it).
    fn namespace(&self) -> Option<&str>;
    /// Whether it carries the opt-out label [`OPT_OUT_LABEL`] with the value `"false"`.
    fn opted_out(&self) -> bool;
    /// Whether it has a `spec` at all.
    fn has_spec(&self) -> bool;
    /// `spec.serviceName`.
    fn service_name(&self) -> Option<&str>;
    /// The shape of `spec.selector`.
    fn selector_shape(&self) -> SelectorShape;
}

impl StatefulSetFacts for StatefulSet {
    fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }
    fn opted_out(&self) -> bool {
        is_opted_out(self)
    }
    fn has_spec(&self) -> bool {
        self.spec.is_some()
    }
    fn service_name(&self) -> Option<&str> {
        self.spec.as_ref().and_then(|s| s.service_name.as_deref())
    }
    fn selector_shape(&self) -> SelectorShape {
        let expressions = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_expressions.as_ref())
            .is_some_and(|e| !e.is_empty());
        if expressions {
            SelectorShape::MatchExpressions
        } else if match_labels(self).is_some() {
            SelectorShape::MatchLabels
        } else {
            SelectorShape::Empty
        }
    }
}

/// `spec.selector.matchLabels`, when it has entries.
fn match_labels(sts: &StatefulSet) -> Option<&BTreeMap<String, String>> {
    sts.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .filter(|m| !m.is_empty())
}

/// The facts about an existing Service that the webhook and its reconciler read: what
/// [`check_existing`], [`ownership`], [`crate::service_health::judge_service`] and
/// [`crate::reconcile::plan`] look at, and nothing more.
///
/// Implemented for the full [`Service`] (as read from the API, and by `kubectl-sts`) and for
/// the webhook cache's [`crate::cached::CachedService`], which keeps only these facts; a unit
/// test checks that both answer every method alike.
pub trait ServiceFacts {
    /// `metadata.name`.
    fn name(&self) -> Option<&str>;
    /// `metadata.namespace`.
    fn namespace(&self) -> Option<&str>;
    /// `metadata.uid`.
    fn uid(&self) -> Option<&str>;
    /// `metadata.resourceVersion`.
    fn resource_version(&self) -> Option<&str>;
    /// `metadata.creationTimestamp`.
    fn creation_timestamp(&self) -> Option<Timestamp>;
    /// Whether `metadata.deletionTimestamp` is set (the Service is being deleted).
    fn is_terminating(&self) -> bool;
    /// `metadata.ownerReferences` (empty when absent).
    fn owner_references(&self) -> &[OwnerReference];
    /// The value of label [`MANAGED_BY_LABEL`].
    fn managed_by(&self) -> Option<&str>;
    /// The value of annotation [`STATEFULSET_ANNOTATION`]: the StatefulSet it was made for.
    fn statefulset_annotation(&self) -> Option<&str>;
    /// The value of annotation [`ADOPTED_ANNOTATION`]: the UID of the StatefulSet that the
    /// reconciler once gave it as owner.
    fn adopted_from(&self) -> Option<&str>;
    /// Whether `spec.clusterIP` is `"None"`: only a headless Service gives pods DNS names.
    fn is_headless(&self) -> bool;
    /// The pairs of `spec.selector`, in key order (none when absent or empty: a Service
    /// without a selector selects no pods either way).
    fn selector(&self) -> impl Iterator<Item = (&str, &str)>;
    /// Whether `spec.selector` has any pair.
    fn has_selector(&self) -> bool {
        self.selector().next().is_some()
    }
}

impl ServiceFacts for Service {
    fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }
    fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }
    fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
    fn creation_timestamp(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp.as_ref().map(|t| t.0)
    }
    fn is_terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
    fn owner_references(&self) -> &[OwnerReference] {
        self.metadata
            .owner_references
            .as_deref()
            .unwrap_or_default()
    }
    fn managed_by(&self) -> Option<&str> {
        label(self.metadata.labels.as_ref(), MANAGED_BY_LABEL)
    }
    fn statefulset_annotation(&self) -> Option<&str> {
        label(self.metadata.annotations.as_ref(), STATEFULSET_ANNOTATION)
    }
    fn adopted_from(&self) -> Option<&str> {
        label(self.metadata.annotations.as_ref(), ADOPTED_ANNOTATION)
    }
    fn is_headless(&self) -> bool {
        self.spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .is_some_and(|ip| ip == "None")
    }
    fn selector(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The value of `key` in a label or annotation map.
fn label<'a>(map: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    map?.get(key).map(String::as_str)
}

/// The headless Service `service_name` that StatefulSet `sts` should have, in the
/// StatefulSet's namespace.
pub fn desired_service(
    sts: &StatefulSet,
    service_name: &str,
    cfg: &HeadlessConfig,
) -> Result<Service, NoService> {
    let namespace = sts
        .metadata
        .namespace
        .as_deref()
        .ok_or(NoService::NoNamespace)?;
    desired_service_in(namespace, sts, service_name, cfg)
}

/// Like [`desired_service`] with the namespace given (at admission the object's
/// `metadata.namespace` may be unset; the request carries it).
pub fn desired_service_in(
    namespace: &str,
    sts: &StatefulSet,
    service_name: &str,
    cfg: &HeadlessConfig,
) -> Result<Service, NoService> {
    let sts_name = sts
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(NoService::NoName)?;
    desired_service_named(namespace, sts_name, sts, service_name, cfg)
}

/// Like [`desired_service`] with namespace and StatefulSet name given explicitly.
///
/// Built from the same facts the webhook's cache keeps ([`CachedStatefulSet`]), so the
/// Service made at admission and the one the reconciler heals with
/// ([`desired_service_of`]) are the same by construction.
pub fn desired_service_named(
    namespace: &str,
    sts_name: &str,
    sts: &StatefulSet,
    service_name: &str,
    cfg: &HeadlessConfig,
) -> Result<Service, NoService> {
    build_service(
        namespace,
        sts_name,
        &CachedStatefulSet::from(sts),
        service_name,
        cfg,
    )
}

/// The headless Service `service_name` for a StatefulSet of the webhook's cache, in its
/// namespace.
pub fn desired_service_of(
    sts: &CachedStatefulSet,
    service_name: &str,
    cfg: &HeadlessConfig,
) -> Result<Service, NoService> {
    let namespace = sts.namespace().ok_or(NoService::NoNamespace)?;
    let sts_name = sts
        .name()
        .filter(|n| !n.is_empty())
        .ok_or(NoService::NoName)?;
    build_service(namespace, sts_name, sts, service_name, cfg)
}

fn build_service(
    namespace: &str,
    sts_name: &str,
    sts: &CachedStatefulSet,
    service_name: &str,
    cfg: &HeadlessConfig,
) -> Result<Service, NoService> {
    check_buildable(namespace, sts_name, sts)?;
    let labels = BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())]);
    let annotations = BTreeMap::from([(STATEFULSET_ANNOTATION.to_owned(), sts_name.to_owned())]);
    let ports = service_ports(sts.ports());
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(service_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // check_buildable saw the shape MatchLabels, so this has entries.
            selector: Some(sts.match_labels().to_map()),
            ports: (!ports.is_empty()).then_some(ports),
            publish_not_ready_addresses: Some(cfg.publish_not_ready_addresses),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// Ok when [`desired_service_named`] can build a Service for a StatefulSet with these facts
/// (it checks the same), without building it.
pub fn check_buildable<S: StatefulSetFacts + ?Sized>(
    namespace: &str,
    sts_name: &str,
    sts: &S,
) -> Result<(), NoService> {
    if sts.opted_out() {
        return Err(NoService::OptedOut);
    }
    if namespace.is_empty() {
        return Err(NoService::NoNamespace);
    }
    if sts_name.is_empty() {
        return Err(NoService::NoName);
    }
    match sts.selector_shape() {
        SelectorShape::MatchLabels => Ok(()),
        SelectorShape::MatchExpressions => Err(NoService::MatchExpressions),
        SelectorShape::Empty => Err(NoService::NoSelector),
    }
}

/// Ports from every container's `ports`, deduplicated by (port, protocol), each with a unique
/// valid name: the container port's own name when it is valid and free, else `<proto>-<port>`
/// (with `-2`, `-3`… on the rare clash).
fn service_ports(ports: &[CachedPort]) -> Vec<ServicePort> {
    let mut seen: HashSet<(i32, String)> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    // Index = declaration order, used for the output order.
    let all = ports
        .iter()
        .filter(|p| (1..=65535).contains(&p.container_port))
        .enumerate();
    // Named ports get their names first, so an unnamed port declared earlier cannot take a
    // derived name that a later port asked for explicitly.
    let (named, unnamed): (Vec<_>, Vec<_>) =
        all.partition(|(_, p)| p.name.as_deref().is_some_and(is_dns1123_label));
    let mut assigned: Vec<(usize, ServicePort)> = Vec::new();
    for (idx, p) in named.into_iter().chain(unnamed) {
        let protocol = p.protocol.as_deref().unwrap_or("TCP").to_owned();
        if !seen.insert((p.container_port, protocol.clone())) {
            continue;
        }
        let wanted = p.name.as_deref().filter(|n| is_dns1123_label(n));
        let name = match wanted {
            Some(n) if !names.contains(n) => n.to_owned(),
            _ => unique_derived_name(&names, &protocol, p.container_port),
        };
        names.insert(name.clone());
        assigned.push((
            idx,
            ServicePort {
                name: Some(name),
                port: p.container_port,
                target_port: Some(IntOrString::Int(p.container_port)),
                protocol: Some(protocol),
                ..ServicePort::default()
            },
        ));
    }
    assigned.sort_by_key(|(i, _)| *i);
    assigned.into_iter().map(|(_, p)| p).collect()
}

/// `<proto>-<port>`, then `-2`, `-3`… until it is free.
fn unique_derived_name(taken: &HashSet<String>, protocol: &str, port: i32) -> String {
    let base = format!("{}-{port}", protocol.to_ascii_lowercase());
    if !taken.contains(&base) && is_dns1123_label(&base) {
        return base;
    }
    // At most `taken.len() + 1` tries are needed to find a free suffix.
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|c| !taken.contains(c))
        .unwrap_or(base)
}

/// Who an existing Service belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Managed by sts-webhook for this StatefulSet.
    Ours,
    /// Managed by sts-webhook for another StatefulSet (named by the annotation).
    OtherStatefulSet(String),
    /// Not created by sts-webhook.
    Foreign,
}

/// What an existing Service with the wanted name means for the StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExistingService {
    /// Headless: pod DNS works (if it selects the pods); leave it as it is.
    Headless(Ownership),
    /// Has a cluster IP: no per-pod DNS, and `clusterIP` is immutable, so it cannot be fixed
    /// in place.
    NotHeadless,
}

/// Judges an existing Service named like the StatefulSet's `serviceName`.
pub fn check_existing<S: ServiceFacts + ?Sized>(svc: &S, sts_name: &str) -> ExistingService {
    if !svc.is_headless() {
        return ExistingService::NotHeadless;
    }
    ExistingService::Headless(ownership(svc, sts_name))
}

/// Whether the Service was created by sts-webhook, and for which StatefulSet.
pub fn ownership<S: ServiceFacts + ?Sized>(svc: &S, sts_name: &str) -> Ownership {
    if !is_managed(svc) {
        return Ownership::Foreign;
    }
    match svc.statefulset_annotation() {
        Some(owner) if owner == sts_name => Ownership::Ours,
        Some(owner) => Ownership::OtherStatefulSet(owner.to_owned()),
        None => Ownership::Foreign,
    }
}

/// True when the Service carries `app.kubernetes.io/managed-by: sts-webhook`.
pub fn is_managed<S: ServiceFacts + ?Sized>(svc: &S) -> bool {
    svc.managed_by() == Some(MANAGED_BY_VALUE)
}

/// The warning given when a Service of the wanted name exists but is not headless.
pub fn not_headless_warning(namespace: &str, service_name: &str) -> String {
    format!(
        "Service {namespace}/{service_name} exists but is not headless (clusterIP is set and cannot be changed): pods get no stable DNS names; delete it and recreate it with clusterIP: None"
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    pub(crate) fn port(name: Option<&str>, number: i32, protocol: Option<&str>) -> ContainerPort {
        ContainerPort {
            name: name.map(str::to_owned),
            container_port: number,
            protocol: protocol.map(str::to_owned),
            ..ContainerPort::default()
        }
    }

    pub(crate) fn sts(name: &str, containers: Vec<Vec<ContainerPort>>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), name.into())])),
                    match_expressions: None,
                },
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: containers
                            .into_iter()
                            .enumerate()
                            .map(|(i, ports)| Container {
                                name: format!("c{i}"),
                                ports: (!ports.is_empty()).then_some(ports),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn names_ports(svc: &Service) -> Vec<(String, i32, String)> {
        svc.spec
            .as_ref()
            .unwrap()
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap(), p.port, p.protocol.clone().unwrap()))
            .collect()
    }

    #[test]
    fn builds_headless_service() {
        let s = sts("web", vec![vec![port(Some("http"), 80, Some("TCP"))]]);
        let svc = desired_service(&s, "web", &HeadlessConfig::default()).unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("web"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            svc.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
            "sts-webhook"
        );
        assert_eq!(
            svc.metadata.annotations.as_ref().unwrap()[STATEFULSET_ANNOTATION],
            "web"
        );
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(names_ports(&svc), vec![("http".into(), 80, "TCP".into())]);
        assert_eq!(
            spec.ports.as_ref().unwrap()[0].target_port,
            Some(IntOrString::Int(80))
        );
        assert_eq!(
            check_existing(&svc, "web"),
            ExistingService::Headless(Ownership::Ours)
        );
    }

    #[test]
    fn publish_not_ready_follows_config() {
        let s = sts("web", vec![]);
        let cfg = HeadlessConfig {
            publish_not_ready_addresses: false,
        };
        let svc = desired_service(&s, "web", &cfg).unwrap();
        assert_eq!(svc.spec.unwrap().publish_not_ready_addresses, Some(false));
    }

    #[test]
    fn no_ports_is_fine() {
        let s = sts("web", vec![vec![]]);
        let svc = desired_service(&s, "web", &HeadlessConfig::default()).unwrap();
        assert_eq!(svc.spec.unwrap().ports, None);
    }

    #[test]
    fn ports_are_deduplicated_and_uniquely_named() {
        let s = sts(
            "db",
            vec![
                vec![
                    port(Some("client"), 2379, None),
                    port(None, 9090, None),
                    port(Some("dns"), 53, Some("UDP")),
                    port(Some("dns-tcp"), 53, Some("TCP")),
                ],
                vec![
                    // same port+protocol as above: dropped
                    port(Some("other"), 2379, Some("TCP")),
                    // same name, different port: renamed
                    port(Some("client"), 2380, None),
                    // invalid name: derived
                    port(Some("Bad_Name"), 7000, None),
                    // port 0 is not a port
                    port(Some("zero"), 0, None),
                ],
            ],
        );
        let svc = desired_service(&s, "db", &HeadlessConfig::default()).unwrap();
        assert_eq!(
            names_ports(&svc),
            vec![
                ("client".into(), 2379, "TCP".into()),
                ("tcp-9090".into(), 9090, "TCP".into()),
                ("dns".into(), 53, "UDP".into()),
                ("dns-tcp".into(), 53, "TCP".into()),
                ("tcp-2380".into(), 2380, "TCP".into()),
                ("tcp-7000".into(), 7000, "TCP".into()),
            ]
        );
    }

    #[test]
    fn derived_name_clash_gets_suffix() {
        // a container names its 8080 port "tcp-80"; the unnamed 80 port must not reuse it
        let s = sts(
            "x",
            vec![vec![port(None, 80, None), port(Some("tcp-80"), 8080, None)]],
        );
        let svc = desired_service(&s, "x", &HeadlessConfig::default()).unwrap();
        assert_eq!(
            names_ports(&svc),
            vec![
                ("tcp-80-2".into(), 80, "TCP".into()),
                ("tcp-80".into(), 8080, "TCP".into()),
            ]
        );
    }

    #[test]
    fn opt_out_label() {
        let mut s = sts("web", vec![]);
        s.metadata.labels = Some(BTreeMap::from([(OPT_OUT_LABEL.into(), "false".into())]));
        assert!(is_opted_out(&s));
        assert_eq!(
            desired_service(&s, "web", &HeadlessConfig::default()),
            Err(NoService::OptedOut)
        );
        // any other value is not an opt-out
        s.metadata.labels = Some(BTreeMap::from([(OPT_OUT_LABEL.into(), "true".into())]));
        assert!(!is_opted_out(&s));
    }

    #[test]
    fn match_expressions_cannot_be_a_service_selector() {
        let mut s = sts("web", vec![]);
        s.spec.as_mut().unwrap().selector.match_expressions =
            Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: Some(vec!["web".into()]),
            }]);
        let err = desired_service(&s, "web", &HeadlessConfig::default()).unwrap_err();
        assert_eq!(err, NoService::MatchExpressions);
        assert_eq!(err.reason(), "match_expressions");
        assert!(err.to_string().contains("matchExpressions"));
    }

    #[test]
    fn empty_selector_and_missing_metadata() {
        let mut s = sts("web", vec![]);
        s.spec.as_mut().unwrap().selector.match_labels = Some(BTreeMap::new());
        assert_eq!(
            desired_service(&s, "web", &HeadlessConfig::default()),
            Err(NoService::NoSelector)
        );
        let mut s = sts("web", vec![]);
        s.metadata.namespace = None;
        assert_eq!(
            desired_service(&s, "web", &HeadlessConfig::default()),
            Err(NoService::NoNamespace)
        );
        assert!(desired_service_in("ns", &s, "web", &HeadlessConfig::default()).is_ok());
        s.spec = None;
        assert_eq!(
            desired_service_in("ns", &s, "web", &HeadlessConfig::default()),
            Err(NoService::NoSelector)
        );
    }

    #[test]
    fn existing_service_classification() {
        let s = sts("web", vec![]);
        let ours = desired_service(&s, "web", &HeadlessConfig::default()).unwrap();
        assert_eq!(
            check_existing(&ours, "web"),
            ExistingService::Headless(Ownership::Ours)
        );
        assert_eq!(
            check_existing(&ours, "other"),
            ExistingService::Headless(Ownership::OtherStatefulSet("web".into()))
        );
        let mut foreign = ours.clone();
        foreign.metadata.labels = None;
        assert_eq!(
            check_existing(&foreign, "web"),
            ExistingService::Headless(Ownership::Foreign)
        );
        let mut regular = foreign.clone();
        regular.spec.as_mut().unwrap().cluster_ip = Some("10.0.0.12".into());
        assert_eq!(
            check_existing(&regular, "web"),
            ExistingService::NotHeadless
        );
        let mut unset = foreign;
        unset.spec = None;
        assert_eq!(check_existing(&unset, "web"), ExistingService::NotHeadless);
        let w = not_headless_warning("default", "web");
        assert!(
            w.contains("default/web") && w.contains("not headless"),
            "{w}"
        );
    }
}
