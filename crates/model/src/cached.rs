//! What sts-webhook keeps of each Service and StatefulSet in its watch caches.
//!
//! The caches hold every Service and StatefulSet of the cluster, so their size is what the
//! webhook's memory grows with (issue: 7.6 KiB per object as the API serves them, mostly
//! `managedFields`, kubectl's last-applied annotation and pod templates). Admission, the
//! reconciler's [`crate::reconcile::plan`], [`crate::headless`] and
//! [`crate::service_health::judge_service`] read only the fields kept here; the unit tests
//! check that each gives the same answer on a trimmed object as on the full one, so a field
//! that one of them starts to read must be kept here too.
//!
//! Kept of `metadata`: name, namespace, uid, resourceVersion, generation, labels, annotations
//! (without `kubectl.kubernetes.io/last-applied-configuration`), ownerReferences,
//! creationTimestamp, deletionTimestamp. Of a StatefulSet's spec: serviceName, selector, the
//! pod template's labels and its containers' names and ports (the headless Service's ports come
//! from them). Of a Service's spec: clusterIP, selector, type. Status: nothing.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Annotation `kubectl apply` leaves on objects (a copy of the whole applied manifest); often
/// the biggest field, never read here.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Reduces `sts` to what the webhook reads (module docs).
pub fn trim_statefulset(sts: &mut StatefulSet) {
    trim_metadata(&mut sts.metadata);
    sts.status = None;
    if let Some(spec) = sts.spec.take() {
        let template_labels = spec.template.metadata.and_then(|m| m.labels);
        let containers = spec
            .template
            .spec
            .map(|p| p.containers)
            .unwrap_or_default()
            .into_iter()
            .map(|c| Container {
                name: c.name,
                ports: c.ports,
                ..Container::default()
            })
            .collect();
        sts.spec = Some(StatefulSetSpec {
            service_name: spec.service_name,
            selector: spec.selector,
            template: PodTemplateSpec {
                metadata: template_labels.map(|labels| ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers,
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        });
    }
}

/// Reduces `svc` to what the webhook reads (module docs).
pub fn trim_service(svc: &mut Service) {
    trim_metadata(&mut svc.metadata);
    svc.status = None;
    if let Some(spec) = svc.spec.take() {
        svc.spec = Some(ServiceSpec {
            cluster_ip: spec.cluster_ip,
            selector: spec.selector,
            type_: spec.type_,
            ..ServiceSpec::default()
        });
    }
}

fn trim_metadata(meta: &mut ObjectMeta) {
    let full = std::mem::take(meta);
    let annotations = full.annotations.and_then(|mut a| {
        a.remove(LAST_APPLIED);
        (!a.is_empty()).then_some(a)
    });
    *meta = ObjectMeta {
        name: full.name,
        namespace: full.namespace,
        uid: full.uid,
        resource_version: full.resource_version,
        generation: full.generation,
        labels: full.labels,
        annotations,
        owner_references: full.owner_references,
        creation_timestamp: full.creation_timestamp,
        deletion_timestamp: full.deletion_timestamp,
        ..ObjectMeta::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headless::{
        HeadlessConfig, check_existing, desired_service_in, is_managed, ownership,
    };
    use crate::reconcile::{PlanConfig, Sightings, plan};
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

    fn trimmed<T: Clone>(full: &T, trim: fn(&mut T)) -> T {
        let mut t = full.clone();
        trim(&mut t);
        t
    }

    fn namespace() -> (Vec<Service>, Vec<StatefulSet>) {
        let statefulsets = vec![
            full_statefulset("pg", Some("pg"), false),
            full_statefulset("missing", Some("missing"), false),
            full_statefulset("opted", Some("opted"), true),
            full_statefulset("taken", Some("plain"), false),
            full_statefulset("mismatch", Some("other-sel"), false),
        ];
        let services = vec![
            full_service("pg", "None", json!({ "app": "pg" }), Some("pg")),
            full_service("plain", "10.0.0.7", json!({ "app": "taken" }), None),
            full_service("other-sel", "None", json!({ "app": "else" }), None),
            full_service("orphaned", "None", json!({ "app": "gone" }), Some("gone")),
        ];
        (services, statefulsets)
    }

    #[test]
    fn every_reader_answers_the_same_on_trimmed_objects() {
        let (services, statefulsets) = namespace();
        let slim_services: Vec<Service> =
            services.iter().map(|s| trimmed(s, trim_service)).collect();
        let slim_sets: Vec<StatefulSet> = statefulsets
            .iter()
            .map(|s| trimmed(s, trim_statefulset))
            .collect();
        let cfg = HeadlessConfig::default();
        for (full, slim) in statefulsets.iter().zip(&slim_sets) {
            let name = full.spec.as_ref().unwrap().service_name.clone().unwrap();
            assert_eq!(
                desired_service_in("ns", full, &name, &cfg),
                desired_service_in("ns", slim, &name, &cfg),
                "desired Service of {name}"
            );
            for (svc_full, svc_slim) in services.iter().zip(&slim_services) {
                let sts_name = full.metadata.name.as_deref().unwrap();
                assert_eq!(judge_service(svc_full, full), judge_service(svc_slim, slim));
                assert_eq!(
                    check_existing(svc_full, sts_name),
                    check_existing(svc_slim, sts_name)
                );
                assert_eq!(ownership(svc_full, sts_name), ownership(svc_slim, sts_name));
                assert_eq!(is_managed(svc_full), is_managed(svc_slim));
            }
        }
        let now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let sightings = Sightings::new();
        let cfg = PlanConfig::default();
        let full_plan = plan(services.iter(), statefulsets.iter(), &sightings, now, &cfg);
        let slim_plan = plan(
            slim_services.iter(),
            slim_sets.iter(),
            &sightings,
            now,
            &cfg,
        );
        assert!(
            !full_plan.actions.is_empty(),
            "the namespace should need work"
        );
        assert_eq!(full_plan.actions, slim_plan.actions);
        assert_eq!(full_plan.recheck_at, slim_plan.recheck_at);
    }

    #[test]
    fn trimming_keeps_the_fields_it_names_and_drops_the_rest() {
        let sts = trimmed(&full_statefulset("pg", Some("pg"), false), trim_statefulset);
        assert!(sts.metadata.managed_fields.is_none() && sts.metadata.finalizers.is_none());
        assert_eq!(
            sts.metadata
                .annotations
                .as_ref()
                .map(|a| a.keys().collect::<Vec<_>>()),
            Some(vec![&"team".to_owned()])
        );
        assert_eq!(sts.metadata.generation, Some(3));
        let spec = sts.spec.as_ref().unwrap();
        assert!(spec.volume_claim_templates.is_none() && spec.replicas.is_none());
        let pod = spec.template.spec.as_ref().unwrap();
        assert!(pod.init_containers.is_none() && pod.volumes.is_none());
        assert_eq!(pod.containers.len(), 2);
        assert!(pod.containers[0].image.is_none() && pod.containers[0].env.is_none());
        assert_eq!(pod.containers[0].ports.as_ref().unwrap().len(), 2);
        assert!(sts.status.is_none());
        let svc = trimmed(
            &full_service("pg", "None", json!({"app": "pg"}), Some("pg")),
            trim_service,
        );
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert!(spec.ports.is_none() && spec.cluster_ips.is_none() && svc.status.is_none());
    }
}
