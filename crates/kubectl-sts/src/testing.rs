//! Objects for the unit tests of several commands: a StatefulSet `web` in `default` with
//! ControllerRevisions shaped like the ones a real v1.20 controller wrote.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

pub const UID: &str = "a981f84a-de83-4550-9f4c-67192fbba2fd";

pub fn template(image: &str) -> Value {
    json!({
        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "image": image, "imagePullPolicy": "IfNotPresent", "name": "nginx",
                "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {},
            "terminationGracePeriodSeconds": 30
        }
    })
}

pub fn cr(
    name: &str,
    number: i64,
    image: &str,
    created: &str,
    cause: Option<&str>,
) -> ControllerRevision {
    let mut t = template(image);
    t["$patch"] = json!("replace");
    let mut annotations = json!({});
    if let Some(c) = cause {
        annotations["kubernetes.io/change-cause"] = json!(c);
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default", "creationTimestamp": created,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                 "uid": UID, "controller": true, "blockOwnerDeletion": true}]
        },
        "data": {"spec": {"template": t}},
        "revision": number
    }))
    .unwrap()
}

pub fn sts(image: &str, current: &str, update: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": UID, "resourceVersion": "900"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "web", "template": template(image)},
        "status": {"currentRevision": current, "updateRevision": update, "replicas": 3}
    }))
    .unwrap()
}

pub fn pod(i: u32, rev: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {
        "name": format!("web-{i}"), "namespace": "default",
        "labels": {"app": "web", "controller-revision-hash": rev},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                             "uid": UID, "controller": true}]
    }}))
    .unwrap()
}

/// Mid-rollout: revision 2 is current on two pods, revision 3 is the update revision on one.
pub fn rolling() -> (StatefulSet, Vec<ControllerRevision>, Vec<Pod>) {
    let s = sts("nginx:1.21", "web-7b8c9d6f5", "web-6c5f8b9d4");
    let crs = vec![
        cr(
            "web-6c5f8b9d4",
            3,
            "nginx:1.21",
            "2026-11-22T03:20:00Z",
            Some("bump to 1.21"),
        ),
        cr(
            "web-5d4fd4b95c",
            1,
            "nginx:1.19",
            "2026-11-22T03:00:00Z",
            None,
        ),
        cr(
            "web-7b8c9d6f5",
            2,
            "nginx:1.20",
            "2026-11-22T03:10:00Z",
            None,
        ),
    ];
    let pods = vec![
        pod(0, "web-7b8c9d6f5"),
        pod(1, "web-7b8c9d6f5"),
        pod(2, "web-6c5f8b9d4"),
    ];
    (s, crs, pods)
}

/// The published JSON Schema of a view kind (`docs/schemas/<kind>.json`).
pub fn schema(kind: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schemas")
        .join(format!("{kind}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is no JSON: {e}", path.display()))
}

/// Panic with every violation when `view` does not match the published schema of `kind`.
pub fn assert_schema(kind: &str, view: &Value) {
    let validator = jsonschema::validator_for(&schema(kind))
        .unwrap_or_else(|e| panic!("schema {kind} is not a valid JSON Schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(view)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{kind} view does not match docs/schemas/{kind}.json:\n{}\n{view:#}",
        errors.join("\n")
    );
    assert_eq!(view["kind"], kind, "kind");
}
