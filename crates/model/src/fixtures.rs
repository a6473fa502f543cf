//! Builders for real-shaped API objects, for tests (enabled by `cfg(test)` or the `fixtures`
//! feature). Shapes follow what a v1.20 apiserver + controller-manager produce: pods carry
//! `controller-revision-hash` with the full revision name and an ownerReference to the
//! StatefulSet; claims are named `<template>-<sts>-<ordinal>` and labelled with the selector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetOrdinals,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetStatus,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Event, EventSource, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    PersistentVolumeClaimVolumeSource, PersistentVolumeSpec, Pod, PodCondition, PodSpec, PodStatus,
    PodTemplateSpec, Service, ServiceSpec, Volume, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

/// The "now" fixtures are relative to.
pub fn now() -> Timestamp {
    "2026-11-22T04:00:00Z".parse().unwrap()
}

/// `now()` minus `seconds`.
pub fn ago(seconds: i64) -> Time {
    Time(now() - jiff::SignedDuration::from_secs(seconds))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn uid_for(kind: &str, namespace: &str, name: &str) -> String {
    format!("uid-{kind}-{namespace}-{name}")
}

/// Owner reference as the controllers write it.
pub fn owner_ref(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: if kind == "StatefulSet" {
            "apps/v1"
        } else {
            "v1"
        }
        .to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

// ---------------------------------------------------------------- StatefulSet

pub struct StatefulSetBuilder(StatefulSet);

/// A StatefulSet `name` in `namespace`: 1 replica, selector/labels `app=<name>`, serviceName
/// `<name>`, RollingUpdate with partition 0, image `nginx:1.25`, status fully rolled out on
/// revision `<name>-rev1`, created an hour before [`now`].
pub fn statefulset(namespace: &str, name: &str) -> StatefulSetBuilder {
    let app = labels(&[("app", name)]);
    StatefulSetBuilder(StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid_for("sts", namespace, name)),
            generation: Some(1),
            resource_version: Some("100".to_string()),
            creation_timestamp: Some(ago(3600)),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..LabelSelector::default()
            },
            service_name: Some(name.to_string()),
            pod_management_policy: Some("OrderedReady".to_string()),
            revision_history_limit: Some(10),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: None,
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "main".to_string(),
                        image: Some("nginx:1.25".to_string()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        status: Some(StatefulSetStatus {
            observed_generation: Some(1),
            replicas: 1,
            ready_replicas: Some(1),
            current_replicas: Some(1),
            updated_replicas: Some(1),
            current_revision: Some(format!("{name}-rev1")),
            update_revision: Some(format!("{name}-rev1")),
            ..StatefulSetStatus::default()
        }),
    })
}

impl StatefulSetBuilder {
    fn spec(&mut self) -> &mut StatefulSetSpec {
        self.0.spec.get_or_insert_with(StatefulSetSpec::default)
    }
    fn status(&mut self) -> &mut StatefulSetStatus {
        self.0.status.get_or_insert_with(StatefulSetStatus::default)
    }

    /// Desired replicas; status follows (all ready, all on the current revision).
    pub fn replicas(mut self, n: i32) -> Self {
        self.spec().replicas = Some(n);
        let st = self.status();
        st.replicas = n;
        st.ready_replicas = Some(n);
        st.current_replicas = Some(n);
        st.updated_replicas = Some(n);
        self
    }
    pub fn ordinals_start(mut self, start: i32) -> Self {
        self.spec().ordinals = Some(StatefulSetOrdinals { start: Some(start) });
        self
    }
    /// volumeClaimTemplates with these names (1Gi each, storage class `standard`).
    pub fn templates(mut self, names: &[&str]) -> Self {
        let templates = names
            .iter()
            .map(|n| PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(n.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                    storage_class_name: Some("standard".to_string()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(
                            [("storage".to_string(), Quantity("1Gi".to_string()))].into(),
                        ),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            })
            .collect();
        self.spec().volume_claim_templates = Some(templates);
        self
    }
    pub fn partition(mut self, partition: i32) -> Self {
        let strategy = self
            .spec()
            .update_strategy
            .get_or_insert_with(Default::default);
        strategy.type_ = Some("RollingUpdate".to_string());
        strategy
            .rolling_update
            .get_or_insert_with(Default::default)
            .partition = Some(partition);
        self
    }
    pub fn on_delete(mut self) -> Self {
        self.spec().update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("OnDelete".to_string()),
            rolling_update: None,
        });
        self
    }
    pub fn parallel(mut self) -> Self {
        self.spec().pod_management_policy = Some("Parallel".to_string());
        self
    }
    pub fn service_name(mut self, name: Option<&str>) -> Self {
        self.spec().service_name = name.map(str::to_string);
        self
    }
    pub fn template_labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.spec()
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels = Some(labels(pairs));
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        if let Some(c) = self
            .spec()
            .template
            .spec
            .as_mut()
            .and_then(|s| s.containers.first_mut())
        {
            c.image = Some(image.to_string());
        }
        self
    }
    /// `persistentVolumeClaimRetentionPolicy` (`Retain`/`Delete`).
    pub fn retention(mut self, when_deleted: &str, when_scaled: &str) -> Self {
        self.spec().persistent_volume_claim_retention_policy =
            Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(when_deleted.to_string()),
                when_scaled: Some(when_scaled.to_string()),
            });
        self
    }
    /// status.currentRevision / updateRevision.
    pub fn revisions(mut self, current: &str, update: &str) -> Self {
        let st = self.status();
        st.current_revision = Some(current.to_string());
        st.update_revision = Some(update.to_string());
        self
    }
    /// status ready / updated replica counts.
    pub fn ready(mut self, ready: i32, updated: i32) -> Self {
        let st = self.status();
        st.ready_replicas = Some(ready);
        st.updated_replicas = Some(updated);
        self
    }
    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.to_string());
        self
    }
    pub fn build(self) -> StatefulSet {
        self.0
    }
}

// ---------------------------------------------------------------- Pod

pub struct PodBuilder(Pod);

/// The pod the controller makes for `ordinal` of `sts`: labels from the template plus
/// `controller-revision-hash` = status.updateRevision and `statefulset.kubernetes.io/pod-name`,
/// an ownerReference, one volume per claim template; Running and Ready on node `node-1`.
pub fn pod_for(sts: &StatefulSet, ordinal: i32) -> PodBuilder {
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    let namespace = sts.metadata.namespace.clone().unwrap_or_default();
    let name = format!("{sts_name}-{ordinal}");
    let mut pod_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let revision = sts
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
        .unwrap_or_default();
    pod_labels.insert("controller-revision-hash".to_string(), revision);
    pod_labels.insert(
        "statefulset.kubernetes.io/pod-name".to_string(),
        name.clone(),
    );
    let volumes = crate::naming::claim_template_names(sts)
        .into_iter()
        .map(|t| Volume {
            name: t.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{t}-{name}"),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    let mut builder = pod(&namespace, &name);
    builder.0.metadata.labels = Some(pod_labels);
    builder.0.metadata.owner_references = Some(vec![owner_ref(
        "StatefulSet",
        &sts_name,
        sts.metadata.uid.as_deref().unwrap_or_default(),
    )]);
    if let Some(spec) = builder.0.spec.as_mut() {
        spec.volumes = Some(volumes);
        spec.hostname = Some(name.clone());
        spec.subdomain = sts.spec.as_ref().and_then(|s| s.service_name.clone());
    }
    builder
}

/// A bare Running+Ready pod, created 30 minutes before [`now`].
pub fn pod(namespace: &str, name: &str) -> PodBuilder {
    PodBuilder(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid_for("pod", namespace, name)),
            creation_timestamp: Some(ago(1800)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".to_string()),
            containers: vec![Container {
                name: "main".to_string(),
                image: Some("nginx:1.25".to_string()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".to_string(),
                status: "True".to_string(),
                last_transition_time: Some(ago(1700)),
                ..PodCondition::default()
            }]),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".to_string(),
                image: "nginx:1.25".to_string(),
                image_id: String::new(),
                ready: true,
                restart_count: 0,
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    })
}

impl PodBuilder {
    pub fn revision(mut self, revision: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("controller-revision-hash".to_string(), revision.to_string());
        self
    }
    /// Ready condition; `since_seconds` = how long ago it last changed.
    pub fn ready(mut self, ready: bool, since_seconds: i64) -> Self {
        if let Some(status) = self.0.status.as_mut() {
            status.conditions = Some(vec![PodCondition {
                type_: "Ready".to_string(),
                status: if ready { "True" } else { "False" }.to_string(),
                last_transition_time: Some(ago(since_seconds)),
                ..PodCondition::default()
            }]);
            if let Some(cs) = status.container_statuses.as_mut() {
                for c in cs {
                    c.ready = ready;
                }
            }
        }
        self
    }
    pub fn phase(mut self, phase: &str) -> Self {
        if let Some(status) = self.0.status.as_mut() {
            status.phase = Some(phase.to_string());
        }
        self
    }
    pub fn restarts(mut self, n: i32) -> Self {
        if let Some(cs) = self
            .0
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
        {
            for c in cs {
                c.restart_count = n;
            }
        }
        self
    }
    pub fn node(mut self, node: Option<&str>) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.node_name = node.map(str::to_string);
        }
        self
    }
    pub fn created(mut self, seconds_ago: i64) -> Self {
        self.0.metadata.creation_timestamp = Some(ago(seconds_ago));
        self
    }
    /// Mount an extra claim (volume name `extra-<claim>`).
    pub fn mounts(mut self, claim: &str) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: format!("extra-{claim}"),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.to_string(),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
        self
    }
    /// Being deleted: a deletionTimestamp 10 s before [`now`].
    pub fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(ago(10));
        self
    }
    pub fn without_owner(mut self) -> Self {
        self.0.metadata.owner_references = None;
        self
    }
    pub fn build(self) -> Pod {
        self.0
    }
}

// ---------------------------------------------------------------- PVC and PV

pub struct ClaimBuilder(PersistentVolumeClaim);

/// The claim the controller makes for `template` at `ordinal` of `sts`: labelled with the
/// selector, Bound to `pv-<claim>` with 1Gi of class `standard`, created an hour ago.
pub fn claim_for(sts: &StatefulSet, template: &str, ordinal: i32) -> ClaimBuilder {
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    let namespace = sts.metadata.namespace.clone().unwrap_or_default();
    let mut builder = claim(&namespace, &format!("{template}-{sts_name}-{ordinal}"));
    builder.0.metadata.labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone());
    builder
}

/// A Bound 1Gi claim of class `standard` on volume `pv-<name>`, created an hour ago.
pub fn claim(namespace: &str, name: &str) -> ClaimBuilder {
    ClaimBuilder(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid_for("pvc", namespace, name)),
            resource_version: Some("200".to_string()),
            creation_timestamp: Some(ago(3600)),
            finalizers: Some(vec!["kubernetes.io/pvc-protection".to_string()]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: Some("standard".to_string()),
            volume_name: Some(format!("pv-{name}")),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity("1Gi".to_string()))].into()),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".to_string()),
            capacity: Some([("storage".to_string(), Quantity("1Gi".to_string()))].into()),
            ..PersistentVolumeClaimStatus::default()
        }),
    })
}

impl ClaimBuilder {
    pub fn owner(mut self, kind: &str, name: &str, uid: &str) -> Self {
        self.0
            .metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(owner_ref(kind, name, uid));
        self
    }
    /// Pending, unbound, no capacity in status (request stays in spec).
    pub fn pending(mut self) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.volume_name = None;
        }
        self.0.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Pending".to_string()),
            ..PersistentVolumeClaimStatus::default()
        });
        self
    }
    pub fn capacity(mut self, quantity: &str) -> Self {
        let q = [("storage".to_string(), Quantity(quantity.to_string()))];
        if let Some(spec) = self.0.spec.as_mut() {
            spec.resources.get_or_insert_with(Default::default).requests = Some(q.clone().into());
        }
        if let Some(status) = self.0.status.as_mut()
            && status.capacity.is_some()
        {
            status.capacity = Some(q.into());
        }
        self
    }
    pub fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(ago(10));
        self
    }
    pub fn build(self) -> PersistentVolumeClaim {
        self.0
    }
}

/// A PV with the given reclaim policy.
pub fn volume(name: &str, reclaim_policy: &str) -> PersistentVolume {
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            uid: Some(uid_for("pv", "", name)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            persistent_volume_reclaim_policy: Some(reclaim_policy.to_string()),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

// ---------------------------------------------------------------- Service

pub struct ServiceBuilder(Service);

/// A headless Service `name` selecting `app=<name>`.
pub fn service(namespace: &str, name: &str) -> ServiceBuilder {
    ServiceBuilder(Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid_for("svc", namespace, name)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            cluster_ips: Some(vec!["None".to_string()]),
            selector: Some(labels(&[("app", name)])),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

impl ServiceBuilder {
    pub fn cluster_ip(mut self, ip: &str) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.cluster_ip = Some(ip.to_string());
            spec.cluster_ips = Some(vec![ip.to_string()]);
        }
        self
    }
    pub fn selector(mut self, pairs: &[(&str, &str)]) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.selector = if pairs.is_empty() {
                None
            } else {
                Some(labels(pairs))
            };
        }
        self
    }
    pub fn build(self) -> Service {
        self.0
    }
}

// ---------------------------------------------------------------- Event

/// An Event about StatefulSet `sts_name` as the controller records it, last seen
/// `seconds_ago` before [`now`].
pub fn event(
    namespace: &str,
    sts_name: &str,
    reason: &str,
    message: &str,
    seconds_ago: i64,
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{sts_name}.{seconds_ago}")),
            namespace: Some(namespace.to_string()),
            creation_timestamp: Some(ago(seconds_ago)),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".to_string()),
            kind: Some("StatefulSet".to_string()),
            name: Some(sts_name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid_for("sts", namespace, sts_name)),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some("Warning".to_string()),
        count: Some(3),
        first_timestamp: Some(ago(seconds_ago + 60)),
        last_timestamp: Some(ago(seconds_ago)),
        source: Some(EventSource {
            component: Some("statefulset-controller".to_string()),
            host: None,
        }),
        ..Event::default()
    }
}

// ---------------------------------------------------------------- ControllerRevision

/// A ControllerRevision of `sts` as the controller stores it: data is
/// `{"spec":{"template":{…,"$patch":"replace"}}}` with the StatefulSet's current template.
pub fn controller_revision(sts: &StatefulSet, name: &str, revision: i64) -> ControllerRevision {
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    let namespace = sts.metadata.namespace.clone().unwrap_or_default();
    let mut template = serde_json::to_value(sts.spec.as_ref().map(|s| &s.template))
        .unwrap_or(serde_json::Value::Null);
    if let Some(obj) = template.as_object_mut() {
        obj.insert(
            "$patch".to_string(),
            serde_json::Value::String("replace".to_string()),
        );
    }
    let mut rev_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    rev_labels.insert(
        "controller.kubernetes.io/hash".to_string(),
        name.rsplit('-').next().unwrap_or_default().to_string(),
    );
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace),
            uid: Some(format!("uid-rev-{name}")),
            labels: Some(rev_labels),
            creation_timestamp: Some(ago(3600 - revision * 60)),
            owner_references: Some(vec![owner_ref(
                "StatefulSet",
                &sts_name,
                sts.metadata.uid.as_deref().unwrap_or_default(),
            )]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(
            serde_json::json!({ "spec": { "template": template } }),
        )),
        revision,
    }
}
