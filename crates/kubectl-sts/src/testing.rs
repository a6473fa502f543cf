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
