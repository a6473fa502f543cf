//! What sts-webhook keeps of each Service and StatefulSet in its watch caches: types of its own.
//!
//! The caches hold every Service and StatefulSet of the cluster, so their size is what the
//! webhook's memory grows with (issue 15: 7.6 KiB per object as the API serves them, mostly
//! `managedFields`, kubectl's last-applied annotation and pod templates; ≤ 2 KiB asked).
//! k8s-openapi's types cannot get there even when emptied: a `StatefulSet` is 2,536 B inline
//! and a `Container` 2,120 B, and every label map is a ~500 B B-tree node. So the caches keep
//! [`CachedService`] and [`CachedStatefulSet`]: only the facts that admission, the reconciler's
//! [`crate::reconcile::plan`] and the Service it heals with ([`crate::headless`]) read, in
//! boxed strings and sorted boxed slices.
//!
//! The readers that also run on full objects (API reads, `kubectl-sts`) take either through
//! [`ServiceFacts`] and [`StatefulSetFacts`]; the unit and property tests below check that a
//! cached object answers every one of them as the full object does. Readers of the cache
//! only ([`crate::reconcile::plan`], [`crate::headless::desired_service_of`]) take the cached
//! types, so a fact that is not kept here cannot be read there.
//!
//! Kept of a Service: namespace, name, uid, resourceVersion, creationTimestamp, whether
//! deletionTimestamp is set, ownerReferences, label `app.kubernetes.io/managed-by`, annotations
//! `headless.sts.dev/statefulset` and `headless.sts.dev/adopted-from`, whether `spec.clusterIP`
//! is `None`, and `spec.selector`. Of a StatefulSet: namespace, name, uid, whether
//! deletionTimestamp is set, whether label `headless.sts.dev/inject` is `"false"`,
//! `spec.serviceName`, `spec.selector.matchLabels` and whether it has `matchExpressions`, and
//! the name, number and protocol of every `containerPort` of the pod template's containers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::headless::{
    ADOPTED_ANNOTATION, MANAGED_BY_LABEL, STATEFULSET_ANNOTATION, SelectorShape, ServiceFacts,
    StatefulSetFacts, is_opted_out,
};

/// Annotation `kubectl apply` leaves on objects (a copy of the whole applied manifest); often
/// the biggest field, never read by the webhook.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A label selector's or a label map's pairs, sorted by key (keys are unique): 16 bytes inline
/// and 32 per pair, plus the strings, where a `BTreeMap` takes a ~500 B node for one pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// As the map k8s-openapi's types hold (e.g. to write a Service's `spec.selector`).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(map: &BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates in key order already.
        Labels(map.iter().map(|(k, v)| (boxed(k), boxed(v))).collect())
    }
}

fn boxed(s: &str) -> Box<str> {
    Box::from(s)
}

fn boxed_opt(s: Option<&String>) -> Option<Box<str>> {
    s.map(|s| boxed(s))
}

/// What the webhook keeps of a Service (module docs); read through [`ServiceFacts`].
#[derive(Clone, Debug, PartialEq)]
pub struct CachedService {
    namespace: Option<Box<str>>,
    name: Option<Box<str>>,
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    creation_timestamp: Option<Timestamp>,
    terminating: bool,
    headless: bool,
    owner_references: Box<[OwnerReference]>,
    managed_by: Option<Box<str>>,
    statefulset_annotation: Option<Box<str>>,
    adopted_from: Option<Box<str>>,
    selector: Labels,
}

impl From<&Service> for CachedService {
    fn from(svc: &Service) -> Self {
        let meta = &svc.metadata;
        let label = |key| meta.labels.as_ref().and_then(|l| l.get(key));
        let annotation = |key| meta.annotations.as_ref().and_then(|a| a.get(key));
        CachedService {
            namespace: boxed_opt(meta.namespace.as_ref()),
            name: boxed_opt(meta.name.as_ref()),
            uid: boxed_opt(meta.uid.as_ref()),
            resource_version: boxed_opt(meta.resource_version.as_ref()),
            creation_timestamp: svc.creation_timestamp(),
            terminating: svc.is_terminating(),
            headless: svc.is_headless(),
            owner_references: svc.owner_references().into(),
            managed_by: boxed_opt(label(MANAGED_BY_LABEL)),
            statefulset_annotation: boxed_opt(annotation(STATEFULSET_ANNOTATION)),
            adopted_from: boxed_opt(annotation(ADOPTED_ANNOTATION)),
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map(Labels::from)
                .unwrap_or_default(),
        }
    }
}

impl From<Service> for CachedService {
    fn from(svc: Service) -> Self {
        CachedService::from(&svc)
    }
}

impl ServiceFacts for CachedService {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }
    fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }
    fn creation_timestamp(&self) -> Option<Timestamp> {
        self.creation_timestamp
    }
    fn is_terminating(&self) -> bool {
        self.terminating
    }
    fn owner_references(&self) -> &[OwnerReference] {
        &self.owner_references
    }
    fn managed_by(&self) -> Option<&str> {
        self.managed_by.as_deref()
    }
    fn statefulset_annotation(&self) -> Option<&str> {
        self.statefulset_annotation.as_deref()
    }
    fn adopted_from(&self) -> Option<&str> {
        self.adopted_from.as_deref()
    }
    fn is_headless(&self) -> bool {
        self.headless
    }
    fn selector(&self) -> impl Iterator<Item = (&str, &str)> {
        self.selector.iter()
    }
}

/// One `containerPort` of a pod template's container: what the headless Service's ports are
/// made of ([`crate::headless`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPort {
    /// `name` (an IANA_SVC_NAME when valid).
    pub name: Option<Box<str>>,
    /// `containerPort`, 1–65535 when valid.
    pub container_port: i32,
    /// `protocol`: `TCP` (the default when absent), `UDP` or `SCTP`.
    pub protocol: Option<Box<str>>,
}

/// What the webhook keeps of a StatefulSet (module docs); read through [`StatefulSetFacts`]
/// and the accessors here.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedStatefulSet {
    namespace: Option<Box<str>>,
    name: Option<Box<str>>,
    uid: Option<Box<str>>,
    terminating: bool,
    opted_out: bool,
    has_spec: bool,
    match_expressions: bool,
    service_name: Option<Box<str>>,
    match_labels: Labels,
    ports: Box<[CachedPort]>,
}

impl From<&StatefulSet> for CachedStatefulSet {
    fn from(sts: &StatefulSet) -> Self {
        let meta = &sts.metadata;
        let spec = sts.spec.as_ref();
        let selector = spec.map(|s| &s.selector);
        let containers = spec
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers.as_slice())
            .unwrap_or_default();
        CachedStatefulSet {
            namespace: boxed_opt(meta.namespace.as_ref()),
            name: boxed_opt(meta.name.as_ref()),
            uid: boxed_opt(meta.uid.as_ref()),
            terminating: meta.deletion_timestamp.is_some(),
            opted_out: is_opted_out(sts),
            has_spec: spec.is_some(),
            match_expressions: selector
                .and_then(|s| s.match_expressions.as_ref())
                .is_some_and(|e| !e.is_empty()),
            service_name: boxed_opt(spec.and_then(|s| s.service_name.as_ref())),
            match_labels: selector
                .and_then(|s| s.match_labels.as_ref())
                .map(Labels::from)
                .unwrap_or_default(),
            ports: containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .map(|p| CachedPort {
                    name: boxed_opt(p.name.as_ref()),
                    container_port: p.container_port,
                    protocol: boxed_opt(p.protocol.as_ref()),
                })
                .collect(),
        }
    }
}

impl From<StatefulSet> for CachedStatefulSet {
    fn from(sts: StatefulSet) -> Self {
        CachedStatefulSet::from(&sts)
    }
}

impl CachedStatefulSet {
    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// Whether `metadata.deletionTimestamp` is set (the StatefulSet is being deleted).
    pub fn is_terminating(&self) -> bool {
        self.terminating
    }

    /// `spec.selector.matchLabels` (empty when absent).
    pub fn match_labels(&self) -> &Labels {
        &self.match_labels
    }

    /// Every `containerPort` of `spec.template.spec.containers`, in declaration order (init
    /// containers' ports are not the pods' serving ports and are not kept).
    pub fn ports(&self) -> &[CachedPort] {
        &self.ports
    }
}

impl StatefulSetFacts for CachedStatefulSet {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    fn opted_out(&self) -> bool {
        self.opted_out
    }
    fn has_spec(&self) -> bool {
        self.has_spec
    }
    fn service_name(&self) -> Option<&str> {
        self.service_name.as_deref()
    }
    fn selector_shape(&self) -> SelectorShape {
        if self.match_expressions {
            SelectorShape::MatchExpressions
        } else if !self.match_labels.is_empty() {
            SelectorShape::MatchLabels
        } else {
            SelectorShape::Empty
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::headless::{
        HeadlessConfig, check_buildable, check_existing, desired_service, desired_service_of,
        is_managed, ownership,
    };
    use crate::reconcile::{
        Action, PlanConfig, Sightings, managed_for, owner_reference, plan, was_adopted,
    };
    use crate::service_health::judge_service;
    use serde_json::json;

    /// A StatefulSet as `kubectl apply` leaves it: managedFields, last-applied, a full pod
    /// template, claim templates, status.
    fn full_statefulset(name: &str, service_name: Option<&str>, opt_out: bool) -> StatefulSet {
        let mut labels = json!({ "app": name, "tier": "db" });
        if opt_out {
            labels["headless.sts.dev/inject"] = json!("false");
        }
        let mut sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "resourceVersion": "42", "generation": 3, "labels": labels,
                "creationTimestamp": "2026-12-01T10:00:00Z",
                "annotations": { LAST_APPLIED: "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\"}", "team": "storage" },
                "managedFields": [{ "manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": { "f:replicas": {} } } }],
                "finalizers": ["example.com/keep"],
            },
            "spec": {
                "replicas": 3, "podManagementPolicy": "Parallel",
                "selector": { "matchLabels": { "app": name } },
                "template": {
                    "metadata": { "labels": { "app": name, "tier": "db" }, "annotations": { "prometheus.io/scrape": "true" } },
                    "spec": {
                        "initContainers": [{ "name": "init", "image": "busybox", "ports": [{ "containerPort": 9999 }] }],
                        "containers": [
                            { "name": "db", "image": "postgres:16", "env": [{ "name": "PGDATA", "value": "/data" }],
                              "ports": [{ "name": "pg", "containerPort": 5432 }, { "containerPort": 9187, "protocol": "TCP" }],
                              "resources": { "requests": { "cpu": "1", "memory": "2Gi" } },
                              "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
                              "readinessProbe": { "tcpSocket": { "port": 5432 } } },
                            { "name": "sidecar", "image": "exporter", "ports": [{ "name": "metrics", "containerPort": 9100, "protocol": "UDP" }] },
                        ],
                        "volumes": [{ "name": "config", "configMap": { "name": "cfg" } }],
                    },
                },
                "volumeClaimTemplates": [{ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "10Gi" } } } }],
            },
            "status": { "replicas": 3, "readyReplicas": 2, "currentRevision": "r1", "updateRevision": "r2" },
        }))
        .unwrap();
        if let (Some(spec), Some(s)) = (sts.spec.as_mut(), service_name) {
            spec.service_name = Some(s.to_owned());
        }
        sts
    }

    fn full_service(
        name: &str,
        cluster_ip: &str,
        selector: serde_json::Value,
        ours: Option<&str>,
    ) -> Service {
        let mut annotations = json!({ LAST_APPLIED: "{}" });
        let mut labels = json!({ "app": name });
        if let Some(sts) = ours {
            annotations["headless.sts.dev/statefulset"] = json!(sts);
            labels["app.kubernetes.io/managed-by"] = json!("sts-webhook");
        }
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("svc-{name}"), "resourceVersion": "7",
                "creationTimestamp": "2026-11-01T10:00:00Z", "labels": labels, "annotations": annotations,
                "managedFields": [{ "manager": "sts-webhook", "operation": "Update" }],
            },
            "spec": {
                "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": selector, "type": "ClusterIP",
                "ports": [{ "name": "pg", "port": 5432, "targetPort": 5432 }], "sessionAffinity": "None",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            },
            "status": { "loadBalancer": {} },
        }))
        .unwrap()
    }

    pub(crate) fn namespace() -> (Vec<Service>, Vec<StatefulSet>) {
        let statefulsets = vec![
            full_statefulset("pg", Some("pg"), false),
            full_statefulset("missing", Some("missing"), false),
            full_statefulset("opted", Some("opted"), true),
            full_statefulset("taken", Some("plain"), false),
            full_statefulset("mismatch", Some("other-sel"), false),
        ];
        let mut adopted = full_service("adopted", "None", json!({ "app": "x" }), Some("x"));
        adopted
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ADOPTED_ANNOTATION.into(), "uid-x".into());
        adopted.metadata.owner_references = Some(vec![
            owner_reference(&CachedStatefulSet::from(&statefulsets[0])).unwrap(),
        ]);
        adopted.metadata.deletion_timestamp = adopted.metadata.creation_timestamp.clone();
        let services = vec![
            full_service("pg", "None", json!({ "app": "pg" }), Some("pg")),
            full_service("plain", "10.0.0.7", json!({ "app": "taken" }), None),
            full_service("other-sel", "None", json!({ "app": "else" }), None),
            full_service("orphaned", "None", json!({ "app": "gone" }), Some("gone")),
            full_service("no-selector", "None", json!({}), Some("pg")),
            adopted,
            Service::default(),
        ];
        (services, statefulsets)
    }

    /// Every fact [`ServiceFacts`] offers, as one comparable value.
    fn service_facts<S: ServiceFacts>(s: &S) -> String {
        format!(
            "{:?}",
            (
                (s.name(), s.namespace(), s.uid(), s.resource_version()),
                (
                    s.creation_timestamp(),
                    s.is_terminating(),
                    s.owner_references()
                ),
                (s.managed_by(), s.statefulset_annotation(), s.adopted_from()),
                (
                    s.is_headless(),
                    s.selector().collect::<Vec<_>>(),
                    s.has_selector()
                ),
            )
        )
    }

    /// Every fact [`StatefulSetFacts`] offers, as one comparable value.
    fn statefulset_facts<S: StatefulSetFacts>(s: &S) -> String {
        format!(
            "{:?}",
            (
                s.name(),
                s.namespace(),
                s.opted_out(),
                s.has_spec(),
                s.service_name(),
                s.selector_shape(),
            )
        )
    }

    /// The full and the cached object answer every reader alike: the facts themselves, and
    /// each reader that takes either ([`check_existing`], [`ownership`], [`is_managed`],
    /// [`judge_service`], [`managed_for`], [`was_adopted`], [`check_buildable`]); the Service
    /// built for a full StatefulSet at admission is the one built for its cached copy.
    pub(crate) fn assert_readers_agree(services: &[Service], statefulsets: &[StatefulSet]) {
        let cfg = HeadlessConfig::default();
        for svc in services {
            let cached = CachedService::from(svc);
            assert_eq!(service_facts(svc), service_facts(&cached));
            assert_eq!(is_managed(svc), is_managed(&cached));
            assert_eq!(managed_for(svc), managed_for(&cached));
            assert_eq!(was_adopted(svc), was_adopted(&cached));
        }
        for sts in statefulsets {
            let cached = CachedStatefulSet::from(sts);
            assert_eq!(statefulset_facts(sts), statefulset_facts(&cached));
            let sts_name = sts.metadata.name.as_deref().unwrap_or_default();
            let ns = sts.metadata.namespace.as_deref().unwrap_or_default();
            assert_eq!(
                check_buildable(ns, sts_name, sts),
                check_buildable(ns, sts_name, &cached)
            );
            let uid_and_name =
                sts.metadata.uid.as_deref().is_some_and(|u| !u.is_empty()) && !sts_name.is_empty();
            assert_eq!(owner_reference(&cached).is_some(), uid_and_name);
            let service_name = sts.service_name().unwrap_or("svc");
            assert_eq!(
                desired_service(sts, service_name, &cfg),
                desired_service_of(&cached, service_name, &cfg),
                "desired Service of {sts_name}"
            );
            for svc in services {
                let slim = CachedService::from(svc);
                assert_eq!(judge_service(svc, sts), judge_service(&slim, sts));
                assert_eq!(
                    check_existing(svc, sts_name),
                    check_existing(&slim, sts_name)
                );
                assert_eq!(ownership(svc, sts_name), ownership(&slim, sts_name));
            }
        }
    }

    #[test]
    fn every_reader_answers_the_same_on_cached_objects() {
        let (services, statefulsets) = namespace();
        assert_readers_agree(&services, &statefulsets);
        // And on what the fixtures are made of: no spec, no metadata.
        assert_readers_agree(&[Service::default()], &[StatefulSet::default()]);

        // The reconciler plans over the cached copies alone.
        let services: Vec<CachedService> = services.iter().map(CachedService::from).collect();
        let sets: Vec<CachedStatefulSet> =
            statefulsets.iter().map(CachedStatefulSet::from).collect();
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let plan = plan(
            &services,
            &sets,
            &Sightings::new(),
            now,
            &PlanConfig::default(),
        );
        let actions: Vec<_> = plan
            .actions
            .iter()
            .map(|a| match a {
                Action::Adopt { service, .. }
                | Action::Heal { service, .. }
                | Action::DeleteOrphan { service, .. } => (a.verb(), service.as_str()),
            })
            .collect();
        assert_eq!(actions, [("adopt", "pg"), ("heal", "missing")]);
        let [_, Action::Heal { object, .. }] = plan.actions.as_slice() else {
            unreachable!()
        };
        let ports = object.spec.as_ref().and_then(|s| s.ports.as_ref()).unwrap();
        assert_eq!(ports.len(), 3, "{ports:?}");
    }

    use proptest::prelude::*;

    /// A value, or the field left out (`Null` is dropped by [`object`]).
    fn maybe<T: Into<serde_json::Value> + Clone + std::fmt::Debug + 'static>(
        values: &'static [T],
    ) -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            1 => Just(serde_json::Value::Null),
            3 => prop::sample::select(values).prop_map(Into::into),
        ]
    }

    /// A JSON object of the given fields, without the `Null` ones.
    fn object(fields: Vec<(&str, serde_json::Value)>) -> serde_json::Value {
        serde_json::Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    /// A map of up to `max` keys from `keys`, each with a value from `values`.
    fn map(
        keys: &'static [&'static str],
        values: &'static [&'static str],
        max: usize,
    ) -> impl Strategy<Value = serde_json::Value> {
        prop::collection::btree_map(
            prop::sample::select(keys),
            prop::sample::select(values),
            0..=max,
        )
        .prop_map(|m| json!(m))
    }

    const NAMES: &[&str] = &["web", "db", "", "web-2"];
    const KEYS: &[&str] = &[
        "app",
        "tier",
        MANAGED_BY_LABEL,
        "headless.sts.dev/inject",
        STATEFULSET_ANNOTATION,
        ADOPTED_ANNOTATION,
    ];
    const VALUES: &[&str] = &["web", "db", "sts-webhook", "false", "true", "", "uid-web"];

    fn gen_service() -> impl Strategy<Value = Service> {
        let meta = (
            (
                maybe(NAMES),
                maybe(&["ns", "other"]),
                maybe(&["u1", ""]),
                maybe(&["7", "8"]),
            ),
            (
                maybe(&["2026-12-01T10:00:00Z"]),
                maybe(&["2026-12-02T10:00:00Z"]),
                map(KEYS, VALUES, 3),
                map(KEYS, VALUES, 3),
            ),
            prop::collection::vec(
                (prop::sample::select(NAMES), maybe(&[true, false])).prop_map(|(name, c)| {
                    object(vec![
                        ("apiVersion", json!("apps/v1")),
                        ("kind", json!("StatefulSet")),
                        ("name", json!(name)),
                        ("uid", json!(format!("uid-{name}"))),
                        ("controller", c),
                    ])
                }),
                0..=2,
            ),
        );
        let spec = prop_oneof![
            1 => Just(serde_json::Value::Null),
            4 => (maybe(&["None", "10.0.0.7", ""]), prop_oneof![1 => Just(serde_json::Value::Null), 3 => map(KEYS, VALUES, 3)])
                .prop_map(|(ip, sel)| object(vec![("clusterIP", ip), ("selector", sel)])),
        ];
        (meta, spec).prop_map(
            |(((name, ns, uid, rv), (created, deleted, labels, annotations), owners), spec)| {
                let metadata = object(vec![
                    ("name", name),
                    ("namespace", ns),
                    ("uid", uid),
                    ("resourceVersion", rv),
                    ("creationTimestamp", created),
                    ("deletionTimestamp", deleted),
                    ("labels", labels),
                    ("annotations", annotations),
                    (
                        "ownerReferences",
                        if owners.is_empty() {
                            serde_json::Value::Null
                        } else {
                            json!(owners)
                        },
                    ),
                ]);
                serde_json::from_value(object(vec![("metadata", metadata), ("spec", spec)]))
                    .unwrap()
            },
        )
    }

    fn gen_statefulset() -> impl Strategy<Value = StatefulSet> {
        let port = (
            maybe(&["http", "Bad_Name", "tcp-80", "metrics"]),
            prop::sample::select(&[0i32, 53, 80, 80, 9100, 70000][..]),
            maybe(&["TCP", "UDP", "SCTP"]),
        )
            .prop_map(|(name, number, protocol)| {
                object(vec![
                    ("name", name),
                    ("containerPort", json!(number)),
                    ("protocol", protocol),
                ])
            });
        let container = (
            prop::sample::select(NAMES),
            prop::collection::vec(port, 0..=3),
        )
            .prop_map(|(name, ports)| json!({ "name": name, "image": "x", "ports": ports }));
        let spec = (
            maybe(NAMES),
            prop_oneof![1 => Just(serde_json::Value::Null), 3 => map(KEYS, VALUES, 2)],
            prop::bool::weighted(0.2),
            map(KEYS, VALUES, 3),
            prop::collection::vec(container, 0..=3),
        )
            .prop_map(|(service_name, match_labels, expressions, template_labels, containers)| {
                let expressions = if expressions {
                    json!([{ "key": "app", "operator": "Exists" }])
                } else {
                    serde_json::Value::Null
                };
                object(vec![
                    ("serviceName", service_name),
                    ("selector", object(vec![("matchLabels", match_labels), ("matchExpressions", expressions)])),
                    ("template", json!({ "metadata": { "labels": template_labels }, "spec": { "containers": containers } })),
                ])
            });
        (
            (
                maybe(NAMES),
                maybe(&["ns", "other"]),
                maybe(&["uid-web", ""]),
            ),
            (maybe(&["2026-12-02T10:00:00Z"]), map(KEYS, VALUES, 3)),
            prop_oneof![1 => Just(serde_json::Value::Null), 5 => spec],
        )
            .prop_map(|((name, ns, uid), (deleted, labels), spec)| {
                let metadata = object(vec![
                    ("name", name),
                    ("namespace", ns),
                    ("uid", uid),
                    ("deletionTimestamp", deleted),
                    ("labels", labels),
                ]);
                serde_json::from_value(object(vec![("metadata", metadata), ("spec", spec)]))
                    .unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Generated variations of every fact that is kept (present, absent, empty, ours or
        /// someone else's): the cached objects answer every reader as the full ones do.
        #[test]
        fn every_reader_answers_the_same_on_generated_objects(
            services in prop::collection::vec(gen_service(), 0..=4),
            statefulsets in prop::collection::vec(gen_statefulset(), 0..=3),
        ) {
            assert_readers_agree(&services, &statefulsets);
        }
    }

    #[test]
    fn caching_keeps_the_facts_it_names_and_drops_the_rest() {
        let sts = CachedStatefulSet::from(full_statefulset("pg", Some("pg"), false));
        assert_eq!(sts.name(), Some("pg"));
        assert_eq!(sts.uid(), Some("uid-pg"));
        assert_eq!(sts.service_name(), Some("pg"));
        assert_eq!(
            sts.match_labels().iter().collect::<Vec<_>>(),
            [("app", "pg")]
        );
        let ports: Vec<_> = sts
            .ports()
            .iter()
            .map(|p| (p.name.as_deref(), p.container_port, p.protocol.as_deref()))
            .collect();
        assert_eq!(
            ports,
            [
                (Some("pg"), 5432, None),
                (None, 9187, Some("TCP")),
                (Some("metrics"), 9100, Some("UDP"))
            ],
            "the containers' ports, not the init container's"
        );
        assert!(!sts.opted_out() && !sts.is_terminating());
        let svc = CachedService::from(full_service("pg", "None", json!({"app": "pg"}), Some("pg")));
        assert!(svc.is_headless());
        assert_eq!(svc.statefulset_annotation(), Some("pg"));
        assert_eq!(svc.managed_by(), Some("sts-webhook"));
    }

    #[test]
    fn labels_are_looked_up_by_key() {
        let map: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let labels = Labels::from(&map);
        assert_eq!(labels.len(), 3);
        assert_eq!(
            (labels.get("a"), labels.get("c"), labels.get("d")),
            (Some("1"), Some("3"), None)
        );
        assert_eq!(labels.to_map(), map);
        assert!(Labels::default().is_empty());
    }
}
