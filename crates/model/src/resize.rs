//! Growing a StatefulSet's volumes: the plan (which claims grow from what to what, checked
//! before any write), the StatefulSet to re-create with the new size in its template, and
//! the checks after the re-create.
//!
//! Why a re-create: `spec.volumeClaimTemplates` is immutable (apps/validation
//! `ValidateStatefulSetUpdate`; KEP-4650 would change that, not merged in 1.37). The claims
//! themselves can grow when their StorageClass has `allowVolumeExpansion: true` (the
//! apiserver's `PersistentVolumeClaimResize` admission refuses otherwise, and claims without a
//! class). A StatefulSet deleted with `propagationPolicy: Orphan` leaves its pods running; a
//! new one with the same selector and template adopts them, and since ControllerRevisions hash
//! only `spec.template`, it adopts the existing revisions too: no pod restarts, no revision is
//! added (pkg/controller/statefulset `ClaimPods`, `ListRevisions`/`AdoptOrphanRevisions`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::naming::{claim_name, claim_template_names, ordinal_range};
use crate::quantity::quantity_bytes;

/// The annotation that marks a default StorageClass (used by claims without a class only at
/// creation; a claim of a StatefulSet has its class set by then).
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// What to do with one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClaimStep {
    /// Request the new size.
    Grow,
    /// Already requests the new size (a run that was interrupted, or grown by hand).
    AlreadyRequested,
}

/// One claim in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimPlan {
    pub name: String,
    pub ordinal: i32,
    /// False for a claim of a scaled-down ordinal (grown with `--include-scaled-down`).
    pub desired: bool,
    /// `spec.resources.requests.storage` now.
    pub requested: String,
    /// `status.capacity.storage` now, if reported.
    pub capacity: Option<String>,
    pub storage_class: String,
    /// `metadata.resourceVersion` read: the precondition of the patch.
    pub resource_version: Option<String>,
    pub step: ClaimStep,
}

/// Everything `resize` will do, decided before any write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizePlan {
    pub template: String,
    /// The template's request now.
    pub template_size: String,
    /// The size asked for, as written.
    pub size: String,
    pub claims: Vec<ClaimPlan>,
    /// Claims of scaled-down ordinals left at their size (without `--include-scaled-down`).
    pub scaled_down_left: Vec<String>,
    /// Whether the StatefulSet must be re-created (its template asks for less than `size`).
    pub recreate: bool,
}

/// Why a resize is refused before any write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoTemplates,
    /// Several templates and no `--template`.
    WhichTemplate(Vec<String>),
    UnknownTemplate {
        template: String,
        known: Vec<String>,
    },
    BadSize(String),
    /// The new size is below the template's or a claim's request: volumes only grow.
    Shrink {
        what: String,
        requested: String,
    },
    /// Nothing to do: template and every claim already request the size.
    NothingToDo,
    ClaimMissing(String),
    ClaimNotBound {
        claim: String,
        phase: String,
    },
    NoStorageClass(String),
    ClassMissing {
        claim: String,
        class: String,
    },
    ClassNotExpandable {
        claims: Vec<String>,
        class: String,
    },
    RolloutInProgress {
        statefulset: String,
        why: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoTemplates => write!(f, "the StatefulSet has no volumeClaimTemplates"),
            Refusal::WhichTemplate(t) => write!(
                f,
                "the StatefulSet has several volumeClaimTemplates ({}): choose one with --template",
                t.join(", ")
            ),
            Refusal::UnknownTemplate { template, known } => write!(
                f,
                "no volumeClaimTemplate {template:?}; the StatefulSet has: {}",
                known.join(", ")
            ),
            Refusal::BadSize(s) => write!(f, "{s:?} is not a storage size like 20Gi, 500Mi or 1Ti"),
            Refusal::Shrink { what, requested } => write!(
                f,
                "{what} already requests {requested}: volumes can only grow (Kubernetes refuses to shrink a claim)"
            ),
            Refusal::NothingToDo => write!(
                f,
                "the template and every claim already request this size: nothing to do"
            ),
            Refusal::ClaimMissing(c) => write!(f, "claim {c} does not exist"),
            Refusal::ClaimNotBound { claim, phase } => {
                write!(
                    f,
                    "claim {claim} is {phase}, not Bound: only bound claims grow"
                )
            }
            Refusal::NoStorageClass(c) => write!(
                f,
                "claim {c} has no StorageClass: only dynamically provisioned claims can be resized"
            ),
            Refusal::ClassMissing { claim, class } => {
                write!(f, "StorageClass {class} of claim {claim} does not exist")
            }
            Refusal::ClassNotExpandable { claims, class } => write!(
                f,
                "StorageClass {class} does not allow volume expansion (allowVolumeExpansion is not true), so {} cannot grow; an administrator can set it on the class if its driver supports expansion",
                claims.join(", ")
            ),
            Refusal::RolloutInProgress { statefulset, why } => write!(
                f,
                "a rollout is in progress ({why}): wait for it (kubectl sts status {statefulset} --watch), then resize"
            ),
        }
    }
}

/// The storage request of a claim (or claim template).
pub fn requested_storage(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.as_str())
}

/// `status.capacity.storage`.
pub fn capacity_storage(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .status
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .map(|q| q.0.as_str())
}

/// The claim template of `sts` to grow: `template` when given, else the only one.
pub fn pick_template<'a>(
    sts: &'a StatefulSet,
    template: Option<&str>,
) -> Result<&'a PersistentVolumeClaim, Refusal> {
    let templates = sts
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default();
    let names: Vec<String> = claim_template_names(sts)
        .into_iter()
        .map(String::from)
        .collect();
    match template {
        Some(t) => templates
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(t))
            .ok_or_else(|| Refusal::UnknownTemplate {
                template: t.to_string(),
                known: names,
            }),
        None => match templates {
            [] => Err(Refusal::NoTemplates),
            [only] => Ok(only),
            _ => Err(Refusal::WhichTemplate(names)),
        },
    }
}

/// Decide the whole resize from what was read: the StatefulSet, its claims (any claims; those
/// named `<template>-<sts>-<ordinal>` are used), the StorageClasses, and whether its rollout is
/// done (`rollout_done`: `None` when done, else why not). All refusals are returned, so one
/// run names every problem.
///
/// Claims of the desired ordinals must exist and be Bound; those of scaled-down ordinals are
/// grown only with `include_scaled_down` (else listed in `scaled_down_left`).
pub fn plan_resize(
    sts: &StatefulSet,
    claims: &[PersistentVolumeClaim],
    classes: &[StorageClass],
    rollout_not_done: Option<&str>,
    size: &str,
    template: Option<&str>,
    include_scaled_down: bool,
) -> Result<ResizePlan, Vec<Refusal>> {
    let chosen = pick_template(sts, template).map_err(|r| vec![r])?;
    let template = chosen.metadata.name.clone().unwrap_or_default();
    let new_bytes = quantity_bytes(size)
        .filter(|b| *b > 0)
        .ok_or_else(|| vec![Refusal::BadSize(size.to_string())])?;
    let sts_name = sts.metadata.name.as_deref().unwrap_or_default();
    let template_size = requested_storage(chosen).unwrap_or("0").to_string();
    let mut refusals = Vec::new();
    if let Some(why) = rollout_not_done {
        refusals.push(Refusal::RolloutInProgress {
            statefulset: sts_name.to_string(),
            why: why.to_string(),
        });
    }
    let template_bytes = quantity_bytes(&template_size).unwrap_or(0);
    if template_bytes > new_bytes {
        refusals.push(Refusal::Shrink {
            what: format!("volumeClaimTemplate {template}"),
            requested: template_size.clone(),
        });
    }

    // The claims of this template by ordinal, desired ones first.
    let by_name: BTreeMap<&str, &PersistentVolumeClaim> = claims
        .iter()
        .filter_map(|c| Some((c.metadata.name.as_deref()?, c)))
        .collect();
    let range = ordinal_range(sts);
    let mut ordinals: Vec<(i32, bool)> = range.clone().map(|o| (o, true)).collect();
    let prefix = format!("{template}-{sts_name}-");
    let mut others: Vec<i32> = by_name
        .keys()
        .filter_map(|n| n.strip_prefix(&prefix)?.parse::<i32>().ok())
        .filter(|o| *o >= 0 && !range.contains(o))
        .collect();
    others.sort_unstable();
    ordinals.extend(others.into_iter().map(|o| (o, false)));

    let mut plans = Vec::new();
    let mut scaled_down_left = Vec::new();
    let mut not_expandable: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ordinal, desired) in ordinals {
        let name = claim_name(&template, sts_name, ordinal);
        let Some(claim) = by_name.get(name.as_str()) else {
            // A desired ordinal without its claim: the controller creates it with the
            // template's size, which the re-created StatefulSet will have.
            if desired {
                refusals.push(Refusal::ClaimMissing(name));
            }
            continue;
        };
        if !desired && !include_scaled_down {
            scaled_down_left.push(name);
            continue;
        }
        let requested = requested_storage(claim).unwrap_or("0").to_string();
        let requested_bytes = quantity_bytes(&requested).unwrap_or(0);
        if requested_bytes > new_bytes {
            refusals.push(Refusal::Shrink {
                what: format!("claim {name}"),
                requested: requested.clone(),
            });
            continue;
        }
        let step = if requested_bytes == new_bytes {
            ClaimStep::AlreadyRequested
        } else {
            ClaimStep::Grow
        };
        let phase = claim
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".to_string());
        if phase != "Bound" {
            refusals.push(Refusal::ClaimNotBound {
                claim: name.clone(),
                phase,
            });
            continue;
        }
        let class = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .filter(|c| !c.is_empty());
        let Some(class) = class else {
            refusals.push(Refusal::NoStorageClass(name));
            continue;
        };
        match classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(class.as_str()))
        {
            None => refusals.push(Refusal::ClassMissing {
                claim: name.clone(),
                class: class.clone(),
            }),
            Some(sc) if step == ClaimStep::Grow && sc.allow_volume_expansion != Some(true) => {
                not_expandable
                    .entry(class.clone())
                    .or_default()
                    .push(name.clone());
            }
            Some(_) => {}
        }
        plans.push(ClaimPlan {
            name,
            ordinal,
            desired,
            capacity: capacity_storage(claim).map(str::to_string),
            requested,
            storage_class: class,
            resource_version: claim.metadata.resource_version.clone(),
            step,
        });
    }
    for (class, claims) in not_expandable {
        refusals.push(Refusal::ClassNotExpandable { claims, class });
    }
    let recreate = template_bytes < new_bytes;
    if refusals.is_empty()
        && !recreate
        && plans.iter().all(|p| p.step == ClaimStep::AlreadyRequested)
    {
        refusals.push(Refusal::NothingToDo);
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(ResizePlan {
        template,
        template_size,
        size: size.to_string(),
        claims: plans,
        scaled_down_left,
        recreate,
    })
}

/// The StatefulSet to create in place of `live`: the same object with only the request of
/// claim template `template` set to `size`. Server-set metadata (uid, resourceVersion,
/// generation, creationTimestamp, managedFields, deletion fields, ownerReferences the
/// garbage collector manages) and the status are dropped; the user's labels, annotations and
/// finalizers are kept.
pub fn resized_statefulset(live: &StatefulSet, template: &str, size: &str) -> StatefulSet {
    let meta = &live.metadata;
    let mut copy = StatefulSet {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            owner_references: meta.owner_references.clone(),
            finalizers: meta
                .finalizers
                .clone()
                .map(|f| {
                    f.into_iter()
                        .filter(|f| f != "orphan" && f != "foregroundDeletion")
                        .collect::<Vec<_>>()
                })
                .filter(|f| !f.is_empty()),
            ..ObjectMeta::default()
        },
        spec: live.spec.clone(),
        status: None,
    };
    if let Some(t) = copy
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .and_then(|ts| {
            ts.iter_mut()
                .find(|t| t.metadata.name.as_deref() == Some(template))
        })
    {
        t.spec
            .get_or_insert_default()
            .resources
            .get_or_insert_default()
            .requests
            .get_or_insert_default()
            .insert("storage".to_string(), Quantity(size.to_string()));
    }
    copy
}

/// Whether `sts` is the re-created one of a plan: its template `template` requests `size`.
pub fn template_requests(sts: &StatefulSet, template: &str, size: &str) -> bool {
    let want = quantity_bytes(size);
    sts.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .and_then(|ts| {
            ts.iter()
                .find(|t| t.metadata.name.as_deref() == Some(template))
        })
        .and_then(requested_storage)
        .and_then(quantity_bytes)
        .is_some_and(|b| Some(b) == want)
}

/// After the re-create: the problems, if any, comparing the pods before (`before`) and now.
/// Every pod must still exist with its UID, be controlled by `sts` (ownerReference with its
/// UID), and not have restarted (same container restart counts).
pub fn adoption_problems(sts: &StatefulSet, before: &[Pod], now: &[Pod]) -> Vec<String> {
    let uid = sts.metadata.uid.as_deref().unwrap_or_default();
    let restarts = |p: &Pod| -> i32 {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0)
    };
    let mut problems = Vec::new();
    for old in before {
        let name = old.metadata.name.as_deref().unwrap_or_default();
        let Some(pod) = now
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
        else {
            problems.push(format!("pod {name} is gone"));
            continue;
        };
        if pod.metadata.uid != old.metadata.uid {
            problems.push(format!("pod {name} was re-created (new UID)"));
            continue;
        }
        let owned = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        if !owned {
            problems.push(format!(
                "pod {name} is not adopted by the new StatefulSet yet"
            ));
        }
        if restarts(pod) != restarts(old) {
            problems.push(format!("a container of pod {name} restarted"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{claim_for, pod_for, statefulset};

    fn class(name: &str, expandable: bool) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            provisioner: "example.com/csi".to_string(),
            allow_volume_expansion: Some(expandable),
            ..StorageClass::default()
        }
    }

    fn claims(sts: &StatefulSet, ordinals: std::ops::Range<i32>) -> Vec<PersistentVolumeClaim> {
        ordinals
            .map(|o| claim_for(sts, "data", o).build())
            .collect()
    }

    #[test]
    fn grows_every_claim_and_the_template() {
        let sts = statefulset("ns", "db")
            .replicas(3)
            .templates(&["data"])
            .build();
        let plan = plan_resize(
            &sts,
            &claims(&sts, 0..3),
            &[class("standard", true)],
            None,
            "2Gi",
            None,
            false,
        )
        .expect("a plan");
        assert_eq!(plan.template, "data");
        assert_eq!(plan.template_size, "1Gi");
        assert!(plan.recreate);
        let names: Vec<&str> = plan.claims.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["data-db-0", "data-db-1", "data-db-2"]);
        assert!(
            plan.claims
                .iter()
                .all(|c| c.step == ClaimStep::Grow && c.requested == "1Gi")
        );
    }

    #[test]
    fn every_refusal_is_named_before_any_write() {
        let sts = statefulset("ns", "db")
            .replicas(3)
            .templates(&["data"])
            .build();
        let mut cs = claims(&sts, 0..2);
        cs[1].status.get_or_insert_default().phase = Some("Pending".into());
        let err = plan_resize(
            &sts,
            &cs,
            &[class("standard", false)],
            Some("1 pod(s) not ready"),
            "2Gi",
            None,
            false,
        )
        .expect_err("refused");
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("a rollout is in progress")
                    && t.contains("kubectl sts status db --watch")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t == "claim data-db-1 is Pending, not Bound: only bound claims grow"),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t == "claim data-db-2 does not exist"),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t
                .starts_with("StorageClass standard does not allow volume expansion")
                && t.contains("data-db-0")),
            "{text:?}"
        );
    }

    #[test]
    fn shrinking_and_bad_sizes_are_refused() {
        let sts = statefulset("ns", "db")
            .replicas(1)
            .templates(&["data"])
            .build();
        let cs = claims(&sts, 0..1);
        let classes = [class("standard", true)];
        let err = plan_resize(&sts, &cs, &classes, None, "512Mi", None, false).unwrap_err();
        assert!(
            err[0].to_string().contains("volumes can only grow"),
            "{:?}",
            err
        );
        let err = plan_resize(&sts, &cs, &classes, None, "lots", None, false).unwrap_err();
        assert_eq!(err, [Refusal::BadSize("lots".into())]);
        let err = plan_resize(&sts, &cs, &classes, None, "1Gi", None, false).unwrap_err();
        assert_eq!(err, [Refusal::NothingToDo]);
        let err = plan_resize(&sts, &cs, &classes, None, "2Gi", Some("logs"), false).unwrap_err();
        assert!(
            err[0]
                .to_string()
                .contains("no volumeClaimTemplate \"logs\""),
            "{:?}",
            err
        );
    }

    #[test]
    fn scaled_down_claims_grow_only_when_asked() {
        let sts = statefulset("ns", "db")
            .replicas(2)
            .templates(&["data"])
            .build();
        let cs = claims(&sts, 0..4);
        let classes = [class("standard", true)];
        let plan = plan_resize(&sts, &cs, &classes, None, "2Gi", None, false).unwrap();
        assert_eq!(plan.claims.len(), 2);
        assert_eq!(plan.scaled_down_left, ["data-db-2", "data-db-3"]);
        let plan = plan_resize(&sts, &cs, &classes, None, "2Gi", None, true).unwrap();
        assert_eq!(plan.claims.len(), 4);
        assert!(!plan.claims[3].desired);
    }

    #[test]
    fn an_interrupted_run_is_planned_again_from_where_it_stopped() {
        let sts = statefulset("ns", "db")
            .replicas(2)
            .templates(&["data"])
            .build();
        let mut cs = claims(&sts, 0..2);
        cs[0]
            .spec
            .as_mut()
            .unwrap()
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("storage".into(), Quantity("2Gi".into()));
        let plan = plan_resize(
            &sts,
            &cs,
            &[class("standard", true)],
            None,
            "2Gi",
            None,
            false,
        )
        .unwrap();
        assert_eq!(plan.claims[0].step, ClaimStep::AlreadyRequested);
        assert_eq!(plan.claims[1].step, ClaimStep::Grow);
        // The re-created StatefulSet already has the size: only the claims remain.
        let grown = resized_statefulset(&sts, "data", "2Gi");
        let plan = plan_resize(
            &grown,
            &cs,
            &[class("standard", true)],
            None,
            "2Gi",
            None,
            false,
        )
        .unwrap();
        assert!(!plan.recreate);
    }

    #[test]
    fn the_copy_changes_only_the_template_size() {
        let mut sts = statefulset("ns", "db")
            .replicas(2)
            .templates(&["data", "logs"])
            .build();
        sts.metadata.finalizers = Some(vec!["orphan".into(), "example.com/keep".into()]);
        let copy = resized_statefulset(&sts, "data", "2Gi");
        assert!(copy.metadata.uid.is_none() && copy.metadata.resource_version.is_none());
        assert!(copy.status.is_none());
        assert_eq!(
            copy.metadata.finalizers,
            Some(vec!["example.com/keep".to_string()])
        );
        assert!(template_requests(&copy, "data", "2Gi"));
        assert!(template_requests(&copy, "logs", "1Gi"));
        let mut back = copy.spec.clone().unwrap();
        back.volume_claim_templates.as_mut().unwrap()[0] = sts
            .spec
            .as_ref()
            .unwrap()
            .volume_claim_templates
            .as_ref()
            .unwrap()[0]
            .clone();
        assert_eq!(Some(back), sts.spec, "nothing else changed");
    }

    #[test]
    fn adoption_is_checked_pod_by_pod() {
        let old = statefulset("ns", "db").replicas(2).uid("old").build();
        let new = statefulset("ns", "db").replicas(2).uid("new").build();
        let before: Vec<Pod> = (0..2).map(|o| pod_for(&old, o).build()).collect();
        assert_eq!(
            adoption_problems(&new, &before, &before),
            [
                "pod db-0 is not adopted by the new StatefulSet yet",
                "pod db-1 is not adopted by the new StatefulSet yet"
            ]
        );
        let mut adopted: Vec<Pod> = (0..2).map(|o| pod_for(&new, o).build()).collect();
        for (a, b) in adopted.iter_mut().zip(&before) {
            a.metadata.uid.clone_from(&b.metadata.uid);
        }
        assert!(adoption_problems(&new, &before, &adopted).is_empty());
        adopted[1] = pod_for(&new, 1).restarts(1).build();
        adopted[1].metadata.uid.clone_from(&before[1].metadata.uid);
        assert_eq!(
            adoption_problems(&new, &before, &adopted),
            ["a container of pod db-1 restarted"]
        );
    }
}
