//! Which PersistentVolumeClaims were made from a StatefulSet's claim templates, and which of
//! those outlived their pod (orphans), classified so the user knows what deleting them means.
//!
//! # Attributing a claim to a StatefulSet
//!
//! Claim names are `<template>-<sts>-<ordinal>`, which is ambiguous once names contain
//! hyphens. Labels are not trusted on their own (they are whatever the user's selector was);
//! rule 5 uses them only to choose between splits of the name. For a claim, the
//! first rule that gives an answer wins; every rule looks only at the claim's own namespace:
//!
//! 1. **ownerReference** — a StatefulSet owner `S` (retention `whenDeleted: Delete`) or a Pod
//!    owner `S-N` (`whenScaled: Delete` on scale-down), when the claim name splits as
//!    `<T>-S-N` with a non-empty `T`. Written by the controller, so authoritative.
//! 2. **existing StatefulSet** — every `(S, T)` among the StatefulSets that exist with
//!    `claim == T-S-N`. One match wins. Several (e.g. `data` of `web-a` and `data-web` of `a`
//!    for `data-web-a-0`) are narrowed by rule 3's evidence; if that leaves not exactly one, the
//!    claim is **ambiguous** and not classified.
//! 3. **mounting pod** — a pod `S-N` whose volume named `T` uses the claim and
//!    `claim == T-<pod>`: the shape the controller gives pods (also after
//!    `kubectl delete sts --cascade=orphan`).
//! 4. **template name** (deleted StatefulSets) — templates used by StatefulSets that exist in the
//!    namespace name the candidates: `claim == T-S-N` where `S` is *not* an existing StatefulSet.
//!    Exactly one such split wins; several are ambiguous. If `S` exists but has no template
//!    `T`, we do not guess.
//! 5. **name only** (deleted StatefulSets, the common case: the namespace's only StatefulSet was
//!    deleted, so no template name is left to go by) — the claim is `<T>-<S>-<N>` (`T`, `S`
//!    non-empty, `N` an ordinal as the controller prints it) and, for *every* way of splitting
//!    it, no StatefulSet `S` exists. Claims with an ownerReference to anything but a
//!    StatefulSet/Pod that no longer exists are left alone (something else manages them). The
//!    split is chosen when it is the only one; else when exactly one split's `S` is the value of
//!    one of the claim's labels (the controller copies the selector's `matchLabels` onto claims,
//!    and `app: <sts>` is the usual convention); else the StatefulSet is unknown and the
//!    candidates are kept ([`NameMatch`]). This rests on the name alone, so it is kept visible
//!    ([`AttributionRule::NameOnly`]) and callers must not act on it without the user naming
//!    the StatefulSet.
//!
//! Claims matching no rule are "unrelated" (no `<T>-<S>-<N>` shape, or some split's `S` is an
//! existing StatefulSet that has no template `T`) and never reported as orphans. A hand-made
//! claim shaped like `<T>-<S>-<N>` is indistinguishable from a deleted StatefulSet's by name,
//! which is why rule 5's answers are marked and not deleted without the user's say-so.
//!
//! # Classification
//!
//! An attributed claim `(S, T, N)` is an orphan when pod `S-N` does not exist, and then:
//! **OwnerGone** if it has StatefulSet/Pod ownerReferences and none of those owners exists any
//! more (the garbage collector is expected to delete it); else **StatefulSetDeleted** if no
//! StatefulSet `S` exists; else **ScaledDown** if `N` is outside `start .. start + replicas`.
//! A claim for an in-range ordinal without a pod is not an orphan: the pod is being (re)created.
//! A name-only claim whose StatefulSet is unknown is an orphan when no candidate's pod `S-N`
//! exists: **OwnerGone** under the same ownerReference test, else **StatefulSetDeleted**.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde::{Deserialize, Serialize};

use crate::quantity::quantity_bytes;

use crate::index::namespaced_name;
use crate::naming::{
    claim_template_names, ordinal_range, ordinals_start, split_claim_for_statefulset, split_ordinal,
};

// ------------------------------------------------------------------ retention policy

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retention {
    Retain,
    Delete,
}

impl Retention {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Delete") => Retention::Delete,
            // Absent (older servers, or not set) and anything unknown mean Retain.
            _ => Retention::Retain,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Retention::Retain => "Retain",
            Retention::Delete => "Delete",
        }
    }
}

/// `spec.persistentVolumeClaimRetentionPolicy`, absent fields = Retain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    pub when_deleted: Retention,
    pub when_scaled: Retention,
}

pub fn retention_policy(sts: &StatefulSet) -> RetentionPolicy {
    let policy = sts
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    RetentionPolicy {
        when_deleted: Retention::parse(policy.and_then(|p| p.when_deleted.as_deref())),
        when_scaled: Retention::parse(policy.and_then(|p| p.when_scaled.as_deref())),
    }
}

// ------------------------------------------------------------------ attribution

/// Which rule of the module docs attributed a claim; serialised by name in views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AttributionRule {
    OwnerReference,
    StatefulSetTemplate,
    MountingPod,
    TemplateName,
    /// Rule 5: the claim's name (and maybe a label) only. Not enough to delete on its own.
    NameOnly,
}

impl AttributionRule {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionRule::OwnerReference => "OwnerReference",
            AttributionRule::StatefulSetTemplate => "StatefulSetTemplate",
            AttributionRule::MountingPod => "MountingPod",
            AttributionRule::TemplateName => "TemplateName",
            AttributionRule::NameOnly => "NameOnly",
        }
    }
}

/// A claim identified as `<template>-<statefulset>-<ordinal>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attribution {
    pub statefulset: String,
    pub template: String,
    pub ordinal: i32,
    pub rule: AttributionRule,
}

/// Rule 5's finding: only the name (and maybe a label) ties the claim to a StatefulSet, and no
/// StatefulSet of any name the claim could belong to exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMatch {
    pub ordinal: i32,
    /// Every `<T>-<S>-<N>` split of the name (rule [`AttributionRule::NameOnly`]), sorted by
    /// StatefulSet name.
    pub candidates: Vec<Attribution>,
    /// The split picked, when the name has only one or exactly one matches a label.
    pub chosen: Option<Attribution>,
    /// Why `chosen` was picked, for the user (`label app=web`).
    pub evidence: Option<String>,
}

impl NameMatch {
    /// The split by which the claim is, or may be, `statefulset`'s: the chosen split, or with
    /// nothing chosen any candidate. Used when the user names the StatefulSet.
    pub fn split_for(&self, statefulset: &str) -> Option<&Attribution> {
        match &self.chosen {
            Some(chosen) => (chosen.statefulset == statefulset).then_some(chosen),
            None => self
                .candidates
                .iter()
                .find(|c| c.statefulset == statefulset),
        }
    }

    /// The candidate StatefulSet names, sorted.
    pub fn candidate_names(&self) -> Vec<&str> {
        self.candidates
            .iter()
            .map(|c| c.statefulset.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOrigin {
    /// Rules 1–4.
    Attributed(Attribution),
    /// Rule 5: a claim of a deleted StatefulSet by its name alone.
    NameOnly(NameMatch),
    /// Several StatefulSet/template splits fit and nothing decides between them.
    Ambiguous(Vec<Attribution>),
    /// Not (recognisably) made from a claim template.
    Unrelated,
}

// ------------------------------------------------------------------ the index claims are judged by

/// The StatefulSets and pods that claims are attributed to and classified against, indexed
/// once ([`crate::index`]): every rule of the module docs is then a lookup by name, UID or
/// mounted claim, so judging all claims of a listing costs O(claims + StatefulSets + pods)
/// rather than their product (issue 15). Build one per listing and ask it about each claim;
/// [`attribute_claim`] and [`find_orphans`] build one for a single call.
///
/// The index is two-level, namespace first: a claim is only ever judged against its own
/// namespace's objects, and LISTs return objects ordered by namespace, so consecutive claims
/// touch one namespace's small tables. One flat table of a whole cluster's pods grew past the
/// CPU caches, and attribution's time per object grew 4× from 3,000 to 300,000 StatefulSets
/// (issue 15, `benches/scale.rs`).
pub struct ClaimIndex<'a> {
    namespaces: HashMap<&'a str, NamespaceIndex<'a>>,
}

/// One namespace's part of a [`ClaimIndex`]; keys are names and UIDs within it.
#[derive(Default)]
struct NamespaceIndex<'a> {
    /// By name, with the position in the input and the claim template names: rule 2 reports
    /// several matches in input order.
    statefulsets: HashMap<&'a str, IndexedStatefulSet<'a>>,
    statefulset_uids: HashSet<&'a str>,
    /// Claim template names in use (rule 4).
    templates: BTreeSet<&'a str>,
    pods: HashMap<&'a str, &'a Pod>,
    pod_uids: HashSet<&'a str>,
    /// Claim name → (pod, volume name) of every pod volume that uses the claim.
    mounts: HashMap<&'a str, Vec<(&'a Pod, &'a str)>>,
}

struct IndexedStatefulSet<'a> {
    position: usize,
    statefulset: &'a StatefulSet,
    /// [`claim_template_names`], read once.
    templates: Vec<&'a str>,
}

impl<'a> ClaimIndex<'a> {
    /// Indexes `statefulsets` and `pods` (any namespaces; each claim is judged against its own
    /// namespace's). One pass over each.
    pub fn new(statefulsets: &'a [StatefulSet], pods: &'a [Pod]) -> Self {
        let mut namespaces: HashMap<&'a str, NamespaceIndex<'a>> = HashMap::new();
        for (position, sts) in statefulsets.iter().enumerate() {
            let (namespace, name) = namespaced_name(&sts.metadata);
            let index = namespaces.entry(namespace).or_default();
            let templates = claim_template_names(sts);
            index.templates.extend(templates.iter().copied());
            if sts.metadata.name.is_some() {
                index
                    .statefulsets
                    .entry(name)
                    .or_insert(IndexedStatefulSet {
                        position,
                        statefulset: sts,
                        templates,
                    });
            }
            if let Some(uid) = sts.metadata.uid.as_deref() {
                index.statefulset_uids.insert(uid);
            }
        }
        for pod in pods {
            let (namespace, name) = namespaced_name(&pod.metadata);
            let index = namespaces.entry(namespace).or_default();
            index.pods.entry(name).or_insert(pod);
            if let Some(uid) = pod.metadata.uid.as_deref() {
                index.pod_uids.insert(uid);
            }
            for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                if let Some(pvc) = &volume.persistent_volume_claim {
                    index
                        .mounts
                        .entry(pvc.claim_name.as_str())
                        .or_default()
                        .push((pod, volume.name.as_str()));
                }
            }
        }
        ClaimIndex { namespaces }
    }

    /// `f` of the namespace's index (an empty one when nothing is in that namespace).
    fn in_namespace<R>(&self, namespace: &str, f: impl FnOnce(&NamespaceIndex<'a>) -> R) -> R {
        match self.namespaces.get(namespace) {
            Some(index) => f(index),
            None => f(&NamespaceIndex::default()),
        }
    }

    /// Names of the pods that use the claim, sorted, each once ([`claim_users`] for one claim).
    pub fn users_of(&self, namespace: &str, claim: &str) -> Vec<String> {
        let mut users: Vec<String> = self.in_namespace(namespace, |ns| {
            ns.mounts
                .get(claim)
                .into_iter()
                .flatten()
                .map(|(pod, _)| pod.metadata.name.clone().unwrap_or_default())
                .collect()
        });
        users.sort();
        users.dedup();
        users
    }

    /// Attribute `claim` (module docs, rules 1–5).
    pub fn attribute(&self, claim: &PersistentVolumeClaim) -> ClaimOrigin {
        let Some(name) = claim.metadata.name.as_deref() else {
            return ClaimOrigin::Unrelated;
        };
        let (namespace, _) = namespaced_name(&claim.metadata);
        self.in_namespace(namespace, |ns| ns.attribute(claim, name))
    }
}

impl<'a> NamespaceIndex<'a> {
    /// [`ClaimIndex::attribute`] of a claim of this namespace named `name`.
    fn attribute(&self, claim: &PersistentVolumeClaim, name: &str) -> ClaimOrigin {
        // 1. ownerReferences written by the controller.
        for owner in claim.metadata.owner_references.iter().flatten() {
            let found = match owner.kind.as_str() {
                "StatefulSet" => split_claim_for_statefulset(name, &owner.name)
                    .map(|(t, n)| (owner.name.clone(), t, n)),
                "Pod" => split_ordinal(&owner.name).and_then(|(sts, n)| {
                    split_claim_for_statefulset(name, sts)
                        .filter(|(_, claim_n)| *claim_n == n)
                        .map(|(t, _)| (sts.to_string(), t, n))
                }),
                _ => None,
            };
            if let Some((statefulset, template, ordinal)) = found {
                return ClaimOrigin::Attributed(Attribution {
                    statefulset,
                    template: template.to_string(),
                    ordinal,
                    rule: AttributionRule::OwnerReference,
                });
            }
        }

        // 3's evidence, used by 2 to break ties and on its own below.
        let mut by_pods = self.mounting_pod_candidates(name);

        // 2. existing StatefulSets' templates: each split `T-S-N` of the name whose `S` exists
        //    with a template `T`, in the input's order of StatefulSets and templates.
        let splits = claim_name_splits(name);
        let mut by_sets: Vec<(usize, usize, Attribution)> = Vec::new();
        for &(sts_name, template, ordinal) in &splits {
            let Some(sts) = self.statefulsets.get(sts_name) else {
                continue;
            };
            for (i, _) in sts
                .templates
                .iter()
                .enumerate()
                .filter(|(_, t)| **t == template)
            {
                by_sets.push((
                    sts.position,
                    i,
                    Attribution {
                        statefulset: sts_name.to_string(),
                        template: template.to_string(),
                        ordinal,
                        rule: AttributionRule::StatefulSetTemplate,
                    },
                ));
            }
        }
        by_sets.sort_by_key(|(position, i, _)| (*position, *i));
        let mut by_sets: Vec<Attribution> = by_sets.into_iter().map(|(_, _, a)| a).collect();
        match by_sets.len() {
            0 => {}
            1 => return ClaimOrigin::Attributed(by_sets.remove(0)),
            _ => {
                let narrowed: Vec<&Attribution> = by_sets
                    .iter()
                    .filter(|a| by_pods.iter().any(|p| same_split(a, p)))
                    .collect();
                return match narrowed.as_slice() {
                    [one] => ClaimOrigin::Attributed((*one).clone()),
                    _ => ClaimOrigin::Ambiguous(by_sets),
                };
            }
        }

        // 3. a pod mounting it the way the controller does.
        if by_pods.len() > 1 {
            return ClaimOrigin::Ambiguous(by_pods.into_iter().collect());
        }
        if let Some(only) = by_pods.pop_first() {
            return ClaimOrigin::Attributed(only);
        }

        // 4. template names in use in the namespace, for StatefulSets that no longer exist;
        //    by template name.
        let exists = |sts: &str| self.statefulsets.contains_key(sts);
        let mut by_template: Vec<Attribution> = splits
            .iter()
            .filter(|(sts, template, _)| self.templates.contains(template) && !exists(sts))
            .map(|&(sts, template, ordinal)| Attribution {
                statefulset: sts.to_string(),
                template: template.to_string(),
                ordinal,
                rule: AttributionRule::TemplateName,
            })
            .collect();
        by_template.sort_by(|a, b| a.template.cmp(&b.template));
        match by_template.len() {
            0 => {}
            1 => return ClaimOrigin::Attributed(by_template.remove(0)),
            _ => return ClaimOrigin::Ambiguous(by_template),
        }

        // 5. the name alone, when no StatefulSet it could belong to exists.
        if self.managed_by_something_else(claim) {
            return ClaimOrigin::Unrelated;
        }
        name_only(name, exists, claim.metadata.labels.as_ref())
            .map_or(ClaimOrigin::Unrelated, ClaimOrigin::NameOnly)
    }

    /// True when an ownerReference says something other than a gone StatefulSet/Pod manages
    /// the claim: an owner of another kind (an operator's resource), or one that still exists.
    fn managed_by_something_else(&self, claim: &PersistentVolumeClaim) -> bool {
        claim
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| match owner.kind.as_str() {
                "StatefulSet" => self.statefulset_uids.contains(owner.uid.as_str()),
                "Pod" => self.pod_uids.contains(owner.uid.as_str()),
                _ => true,
            })
    }

    /// Rule 3: pods `S-N` whose volume named `T` uses the claim, with `claim == T-<pod>`.
    fn mounting_pod_candidates(&self, claim: &str) -> BTreeSet<Attribution> {
        let mut found = BTreeSet::new();
        for (pod, volume) in self.mounts.get(claim).into_iter().flatten() {
            let Some(pod_name) = pod.metadata.name.as_deref() else {
                continue;
            };
            let Some((sts, ordinal)) = split_ordinal(pod_name) else {
                continue;
            };
            if claim
                .strip_suffix(pod_name)
                .and_then(|p| p.strip_suffix('-'))
                == Some(*volume)
            {
                found.insert(Attribution {
                    statefulset: sts.to_string(),
                    template: volume.to_string(),
                    ordinal,
                    rule: AttributionRule::MountingPod,
                });
            }
        }
        found
    }
}

/// Attribute `claim` using the StatefulSets and pods given (any namespaces; only the claim's
/// namespace is considered). See the module docs for the rules. Indexes both lists for this one
/// claim: for many claims, build a [`ClaimIndex`] once.
pub fn attribute_claim(
    claim: &PersistentVolumeClaim,
    statefulsets: &[StatefulSet],
    pods: &[Pod],
) -> ClaimOrigin {
    ClaimIndex::new(statefulsets, pods).attribute(claim)
}

/// Every `<T>-<S>-<N>` split of a claim name with non-empty `T` and `S`, as `(S, T, N)`.
pub fn claim_name_splits(claim: &str) -> Vec<(&str, &str, i32)> {
    let Some((prefix, ordinal)) = split_ordinal(claim) else {
        return Vec::new();
    };
    prefix
        .match_indices('-')
        .filter_map(|(i, _)| {
            let (template, statefulset) = (&prefix[..i], &prefix[i + 1..]);
            (!template.is_empty() && !statefulset.is_empty()).then_some((
                statefulset,
                template,
                ordinal,
            ))
        })
        .collect()
}

/// Rule 5 (module docs). `None` when the name has no split or some split's `S` exists.
fn name_only(
    name: &str,
    exists: impl Fn(&str) -> bool,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<NameMatch> {
    let splits = claim_name_splits(name);
    let (_, _, ordinal) = *splits.first()?;
    // Any existing `S` means the name may be that StatefulSet's (rule 4 declined to guess).
    if splits.iter().any(|(sts, _, _)| exists(sts)) {
        return None;
    }
    let mut candidates: Vec<Attribution> = splits
        .iter()
        .map(|(sts, template, n)| Attribution {
            statefulset: sts.to_string(),
            template: template.to_string(),
            ordinal: *n,
            rule: AttributionRule::NameOnly,
        })
        .collect();
    candidates.sort();
    let (chosen, evidence) = if let [only] = candidates.as_slice() {
        (
            Some(only.clone()),
            Some("the only way to split the name".to_string()),
        )
    } else {
        // The controller copies the selector's matchLabels onto claims; `app: <sts>` is common.
        let labelled: Vec<(&Attribution, &String, &String)> = candidates
            .iter()
            .filter_map(|c| {
                let (key, value) = labels?.iter().find(|(_, v)| **v == c.statefulset)?;
                Some((c, key, value))
            })
            .collect();
        match labelled.as_slice() {
            [(c, key, value)] => (Some((*c).clone()), Some(format!("label {key}={value}"))),
            _ => (None, None),
        }
    };
    Some(NameMatch {
        ordinal,
        candidates,
        chosen,
        evidence,
    })
}

fn same_split(a: &Attribution, b: &Attribution) -> bool {
    a.statefulset == b.statefulset && a.template == b.template && a.ordinal == b.ordinal
}

// ------------------------------------------------------------------ claims in use

/// Pods using each claim, keyed by (namespace, claim name); pod names sorted.
pub fn claim_users(pods: &[Pod]) -> BTreeMap<(String, String), Vec<String>> {
    let mut users: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for pod in pods {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if let Some(pvc) = &volume.persistent_volume_claim {
                let entry = users
                    .entry((ns.clone(), pvc.claim_name.clone()))
                    .or_default();
                if !entry.contains(&name) {
                    entry.push(name.clone());
                }
            }
        }
    }
    for list in users.values_mut() {
        list.sort();
    }
    users
}

// ------------------------------------------------------------------ classification

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrphanReason {
    /// The StatefulSet exists but no longer wants this ordinal.
    ScaledDown,
    /// No StatefulSet of that name exists.
    StatefulSetDeleted,
    /// Its StatefulSet/Pod owners are all gone: garbage collection is due.
    OwnerGone,
}

impl OrphanReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OrphanReason::ScaledDown => "ScaledDown",
            OrphanReason::StatefulSetDeleted => "StatefulSetDeleted",
            OrphanReason::OwnerGone => "OwnerGone",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Orphan<'a> {
    pub claim: &'a PersistentVolumeClaim,
    /// What the claim was made for. `None` only for a name-only claim whose StatefulSet the name
    /// does not tell (see `name_match`).
    pub attribution: Option<Attribution>,
    /// Rule 5's finding: `Some` exactly when the attribution rests on the name (and maybe a
    /// label) alone.
    pub name_match: Option<NameMatch>,
    pub reason: OrphanReason,
    /// Pods in the namespace mounting the claim (any pod, not only the StatefulSet's).
    pub used_by: Vec<String>,
    /// What the retention policy / ownership means for this claim, one sentence.
    pub note: String,
}

impl Orphan<'_> {
    pub fn namespace(&self) -> &str {
        self.claim.metadata.namespace.as_deref().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.claim.metadata.name.as_deref().unwrap_or_default()
    }
    pub fn is_terminating(&self) -> bool {
        self.claim.metadata.deletion_timestamp.is_some()
    }
    /// Safe to delete: no pod uses it and it is not already being deleted.
    pub fn is_deletable(&self) -> bool {
        self.used_by.is_empty() && !self.is_terminating()
    }
    /// The StatefulSet it was made for, when known.
    pub fn statefulset(&self) -> Option<&str> {
        self.attribution.as_ref().map(|a| a.statefulset.as_str())
    }
    /// The ordinal in its name (known even when the StatefulSet is not).
    pub fn ordinal(&self) -> i32 {
        match (&self.attribution, &self.name_match) {
            (Some(a), _) => a.ordinal,
            (None, Some(m)) => m.ordinal,
            (None, None) => 0,
        }
    }
    /// The rule that attributed it.
    pub fn rule(&self) -> AttributionRule {
        match (&self.attribution, &self.name_match) {
            (Some(a), _) => a.rule,
            (None, _) => AttributionRule::NameOnly,
        }
    }
    /// The split by which it is, or (name-only, StatefulSet unknown) may be, `statefulset`'s.
    pub fn split_for(&self, statefulset: &str) -> Option<&Attribution> {
        match &self.name_match {
            Some(m) => m.split_for(statefulset),
            None => self
                .attribution
                .as_ref()
                .filter(|a| a.statefulset == statefulset),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrphanReport<'a> {
    pub orphans: Vec<Orphan<'a>>,
    /// Claims that fit several StatefulSet/template splits; reported, never classified.
    pub ambiguous: Vec<(&'a PersistentVolumeClaim, Vec<Attribution>)>,
}

impl OrphanReport<'_> {
    /// Sum of the capacity of deletable orphans, in bytes.
    pub fn reclaimable_bytes(&self) -> u128 {
        self.orphans
            .iter()
            .filter(|o| o.is_deletable())
            .filter_map(|o| claim_capacity(o.claim).and_then(quantity_bytes))
            .sum()
    }
}

/// Find and classify orphaned claims among `claims`. Indexes `statefulsets` and `pods` once
/// ([`ClaimIndex::find_orphans`]).
pub fn find_orphans<'c>(
    statefulsets: &[StatefulSet],
    pods: &[Pod],
    claims: &'c [PersistentVolumeClaim],
) -> OrphanReport<'c> {
    ClaimIndex::new(statefulsets, pods).find_orphans(claims)
}

impl ClaimIndex<'_> {
    /// Find and classify orphaned claims among `claims`; sorted by namespace and name.
    pub fn find_orphans<'c>(&self, claims: &'c [PersistentVolumeClaim]) -> OrphanReport<'c> {
        let mut report = OrphanReport::default();
        for claim in claims {
            let (attribution, name_match, found) = match self.attribute(claim) {
                ClaimOrigin::Unrelated => continue,
                ClaimOrigin::Ambiguous(candidates) => {
                    report.ambiguous.push((claim, candidates));
                    continue;
                }
                ClaimOrigin::Attributed(attribution) => {
                    let found = self.classify(claim, &attribution);
                    (Some(attribution), None, found)
                }
                ClaimOrigin::NameOnly(m) => {
                    let found = match &m.chosen {
                        Some(chosen) => self.classify(claim, chosen),
                        None => self.classify_unresolved(claim, &m),
                    }
                    .map(|(reason, note)| (reason, name_only_note(&m, &note)));
                    (m.chosen.clone(), Some(m), found)
                }
            };
            let Some((reason, mut note)) = found else {
                continue;
            };
            if claim.metadata.deletion_timestamp.is_some() {
                // Deleted claims linger while mounted: pvc-protection holds them.
                note.push_str(
                    "; being deleted, held by the pvc-protection finalizer while a pod uses it",
                );
            }
            let (namespace, name) = namespaced_name(&claim.metadata);
            report.orphans.push(Orphan {
                claim,
                attribution,
                name_match,
                reason,
                used_by: self.users_of(namespace, name),
                note,
            });
        }
        report
            .orphans
            .sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        report
    }
}

/// Why a claim chosen for deletion no longer qualifies, found by [`recheck_deletion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLongerDeletable {
    /// The claim is gone.
    Gone,
    /// A claim of that name exists, but it is another object (another UID).
    Replaced,
    /// It is being deleted already.
    Terminating,
    /// Pods mount it now.
    InUse(Vec<String>),
    /// It is not an orphan any more; `why` says what claims it now.
    Claimed { why: String },
    /// Still an orphan, but classified differently than when it was confirmed.
    Reclassified {
        was: OrphanReason,
        now: OrphanReason,
    },
}

impl std::fmt::Display for NoLongerDeletable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoLongerDeletable::Gone => f.write_str("already gone"),
            NoLongerDeletable::Replaced => {
                f.write_str("replaced by a new claim of the same name (another UID); not deleted")
            }
            NoLongerDeletable::Terminating => f.write_str("already being deleted"),
            NoLongerDeletable::InUse(pods) => {
                write!(f, "now in use by pod(s) {}; not deleted", pods.join(", "))
            }
            NoLongerDeletable::Claimed { why } => {
                write!(f, "no longer an orphan: {why}; not deleted")
            }
            NoLongerDeletable::Reclassified { was, now } => write!(
                f,
                "now {} (was {} when confirmed); not deleted, run the command again to decide",
                now.as_str(),
                was.as_str()
            ),
        }
    }
}

/// Re-makes the decision to delete one orphaned claim from fresh state, right before the
/// DELETE: the claim as it is now (`None`: not found), and its namespace's StatefulSets and
/// pods as they are now. `uid` and `reason` are what the user confirmed.
///
/// Mounting a claim does not change the claim (its resourceVersion stays), so the DELETE's
/// preconditions cannot catch a pod that started to use it after the listing — a scale-up
/// while the confirmation prompt waited. Deleting it then is data loss one restart later:
/// `kubernetes.io/pvc-protection` keeps the claim until the pod stops, and the StatefulSet
/// controller then makes a new, empty one for that ordinal.
///
/// `Ok` carries the claim's current resourceVersion, for the DELETE's precondition.
pub fn recheck_deletion(
    uid: &str,
    reason: OrphanReason,
    claim_now: Option<&PersistentVolumeClaim>,
    statefulsets: &[StatefulSet],
    pods: &[Pod],
) -> Result<Option<String>, NoLongerDeletable> {
    let claim = claim_now.ok_or(NoLongerDeletable::Gone)?;
    if claim.metadata.uid.as_deref() != Some(uid) {
        return Err(NoLongerDeletable::Replaced);
    }
    if claim.metadata.deletion_timestamp.is_some() {
        return Err(NoLongerDeletable::Terminating);
    }
    let report = find_orphans(statefulsets, pods, std::slice::from_ref(claim));
    let Some(orphan) = report.orphans.first() else {
        return Err(NoLongerDeletable::Claimed {
            why: claimed_by(claim, statefulsets, pods),
        });
    };
    if !orphan.used_by.is_empty() {
        return Err(NoLongerDeletable::InUse(orphan.used_by.clone()));
    }
    if orphan.reason != reason {
        return Err(NoLongerDeletable::Reclassified {
            was: reason,
            now: orphan.reason,
        });
    }
    Ok(claim.metadata.resource_version.clone())
}

/// What makes a claim that is not an orphan somebody's, in words.
fn claimed_by(claim: &PersistentVolumeClaim, statefulsets: &[StatefulSet], pods: &[Pod]) -> String {
    let key = (
        claim.metadata.namespace.clone().unwrap_or_default(),
        claim.metadata.name.clone().unwrap_or_default(),
    );
    if let Some(users) = claim_users(pods).get(&key) {
        return format!("used by pod(s) {}", users.join(", "));
    }
    match attribute_claim(claim, statefulsets, pods) {
        ClaimOrigin::Attributed(a) => {
            match statefulsets.iter().find(|s| {
                s.metadata.name.as_deref() == Some(a.statefulset.as_str())
                    && s.metadata.namespace == claim.metadata.namespace
            }) {
                Some(sts) => {
                    let range = crate::naming::ordinal_range(sts);
                    format!(
                        "StatefulSet {} wants ordinal {} again (replicas {}, ordinals {}..{})",
                        a.statefulset,
                        a.ordinal,
                        crate::naming::desired_replicas(sts),
                        range.start,
                        range.end
                    )
                }
                None => format!("StatefulSet {} claims it", a.statefulset),
            }
        }
        ClaimOrigin::Ambiguous(_) => "its name now fits several StatefulSets".to_string(),
        ClaimOrigin::NameOnly(_) | ClaimOrigin::Unrelated => {
            "it is no longer found to be a StatefulSet's leftover".to_string()
        }
    }
}

/// The note of a name-only orphan: how it was attributed, then what `note` says.
fn name_only_note(m: &NameMatch, note: &str) -> String {
    match (&m.chosen, &m.evidence) {
        (Some(_), Some(evidence)) => format!("attributed by name only ({evidence}); {note}"),
        _ => note.to_string(),
    }
}

impl ClaimIndex<'_> {
    /// Classify a name-only claim whose StatefulSet is unknown; `None` when a candidate's pod
    /// exists (the claim may still be that pod's).
    pub fn classify_unresolved(
        &self,
        claim: &PersistentVolumeClaim,
        name_match: &NameMatch,
    ) -> Option<(OrphanReason, String)> {
        let (namespace, _) = namespaced_name(&claim.metadata);
        self.in_namespace(namespace, |ns| ns.classify_unresolved(claim, name_match))
    }

    /// Classify one attributed claim; `None` when it is not an orphan.
    pub fn classify(
        &self,
        claim: &PersistentVolumeClaim,
        attribution: &Attribution,
    ) -> Option<(OrphanReason, String)> {
        let (namespace, _) = namespaced_name(&claim.metadata);
        self.in_namespace(namespace, |ns| ns.classify(claim, attribution))
    }
}

impl NamespaceIndex<'_> {
    fn pod_exists(&self, statefulset: &str, ordinal: i32) -> bool {
        let pod_name = crate::naming::pod_name(statefulset, ordinal);
        self.pods.contains_key(pod_name.as_str())
    }

    /// The OwnerGone note when the claim has StatefulSet/Pod ownerReferences and none of those
    /// owners exists any more.
    fn owner_gone_note(&self, claim: &PersistentVolumeClaim) -> Option<String> {
        let owners: Vec<_> = claim
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.kind == "StatefulSet" || r.kind == "Pod")
            .collect();
        let alive = |uid: &str, kind: &str| match kind {
            "StatefulSet" => self.statefulset_uids.contains(uid),
            _ => self.pod_uids.contains(uid),
        };
        if !owners.is_empty() && owners.iter().all(|r| !alive(&r.uid, &r.kind)) {
            let gone = owners
                .iter()
                .map(|r| format!("{} {} (uid {})", r.kind, r.name, r.uid))
                .collect::<Vec<_>>()
                .join(", ");
            return Some(format!(
                "owner {gone} no longer exists; the garbage collector should delete this claim"
            ));
        }
        None
    }

    /// [`ClaimIndex::classify_unresolved`] of a claim of this namespace.
    fn classify_unresolved(
        &self,
        claim: &PersistentVolumeClaim,
        name_match: &NameMatch,
    ) -> Option<(OrphanReason, String)> {
        if name_match
            .candidates
            .iter()
            .any(|c| self.pod_exists(&c.statefulset, c.ordinal))
        {
            return None;
        }
        if let Some(note) = self.owner_gone_note(claim) {
            return Some((OrphanReason::OwnerGone, note));
        }
        Some((
            OrphanReason::StatefulSetDeleted,
            format!(
                "made by a StatefulSet that no longer exists, attributed by name only, which one the name does not tell: {} (name it to act: kubectl sts orphans <statefulset>)",
                name_match.candidate_names().join(", ")
            ),
        ))
    }

    /// [`ClaimIndex::classify`] of a claim of this namespace.
    fn classify(
        &self,
        claim: &PersistentVolumeClaim,
        attribution: &Attribution,
    ) -> Option<(OrphanReason, String)> {
        if self.pod_exists(&attribution.statefulset, attribution.ordinal) {
            return None;
        }
        if let Some(note) = self.owner_gone_note(claim) {
            return Some((OrphanReason::OwnerGone, note));
        }

        let Some(sts) = self
            .statefulsets
            .get(attribution.statefulset.as_str())
            .map(|s| s.statefulset)
        else {
            return Some((
                OrphanReason::StatefulSetDeleted,
                format!(
                    "StatefulSet {} is gone; claims are kept unless its whenDeleted was Delete",
                    attribution.statefulset
                ),
            ));
        };

        let range = ordinal_range(sts);
        if range.contains(&attribution.ordinal) {
            return None;
        }
        let policy = retention_policy(sts);
        let note = if attribution.ordinal < ordinals_start(sts) {
            format!(
                "ordinal is below spec.ordinals.start ({}); reused only if start is lowered",
                ordinals_start(sts)
            )
        } else {
            let needed = attribution.ordinal - ordinals_start(sts) + 1;
            match policy.when_scaled {
                Retention::Retain => format!(
                    "kept by whenScaled=Retain; reattached when scaled to {needed}+ replicas"
                ),
                Retention::Delete => format!(
                    "whenScaled=Delete, yet kept (scaled down before the policy was set?); reattached when scaled to {needed}+ replicas"
                ),
            }
        };
        Some((OrphanReason::ScaledDown, note))
    }
}

// ------------------------------------------------------------------ capacity

/// The claim's size: `status.capacity.storage` once bound, else the requested storage.
pub fn claim_capacity(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .or_else(|| {
            claim
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
        })
        .map(|q| q.0.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{claim, claim_for, pod, pod_for, statefulset};

    fn reasons(report: &OrphanReport<'_>) -> Vec<(String, OrphanReason)> {
        report
            .orphans
            .iter()
            .map(|o| (o.name().to_string(), o.reason))
            .collect()
    }

    #[test]
    fn retention_defaults_to_retain() {
        let sts = statefulset("ns", "web").build();
        let policy = retention_policy(&sts);
        assert_eq!(policy.when_deleted, Retention::Retain);
        assert_eq!(policy.when_scaled, Retention::Retain);
        let set = statefulset("ns", "web")
            .retention("Delete", "Retain")
            .build();
        assert_eq!(retention_policy(&set).when_deleted, Retention::Delete);
    }

    #[test]
    fn scaled_down_claims_are_orphans_with_reuse_note() {
        // 4 -> 2 keeps data-web-2 and data-web-3.
        let sts = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        let pods: Vec<Pod> = (0..2).map(|o| pod_for(&sts, o).build()).collect();
        let claims: Vec<_> = (0..4).map(|o| claim_for(&sts, "data", o).build()).collect();
        let report = find_orphans(std::slice::from_ref(&sts), &pods, &claims);
        assert_eq!(
            reasons(&report),
            vec![
                ("data-web-2".to_string(), OrphanReason::ScaledDown),
                ("data-web-3".to_string(), OrphanReason::ScaledDown)
            ]
        );
        assert!(
            report.orphans[1].note.contains("scaled to 4+ replicas"),
            "{}",
            report.orphans[1].note
        );
        assert_eq!(report.reclaimable_bytes(), 2 << 30);
    }

    #[test]
    fn ordinals_start_shifts_what_is_scaled_down() {
        let sts = statefulset("ns", "db")
            .replicas(2)
            .ordinals_start(3)
            .templates(&["data"])
            .build();
        let pods: Vec<Pod> = (3..5).map(|o| pod_for(&sts, o).build()).collect();
        let claims: Vec<_> = [0, 3, 4, 5]
            .iter()
            .map(|o| claim_for(&sts, "data", *o).build())
            .collect();
        let report = find_orphans(std::slice::from_ref(&sts), &pods, &claims);
        assert_eq!(
            reasons(&report),
            vec![
                ("data-db-0".to_string(), OrphanReason::ScaledDown),
                ("data-db-5".to_string(), OrphanReason::ScaledDown)
            ]
        );
        assert!(report.orphans[0].note.contains("below spec.ordinals.start"));
        assert!(report.orphans[1].note.contains("scaled to 3+ replicas"));
    }

    /// Regression (issue 10): `orphans --delete` deleted a claim that a pod had started to
    /// use while the confirmation prompt waited (scale 2 → 4 → 3 while asking).
    #[test]
    fn the_deletion_is_decided_again_from_fresh_state() {
        let scaled = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        let claim = claim_for(&scaled, "data", 2).build();
        let uid = claim.metadata.uid.clone().unwrap();
        let rv = claim.metadata.resource_version.clone();
        let pods: Vec<Pod> = (0..2).map(|o| pod_for(&scaled, o).build()).collect();
        let sets = std::slice::from_ref(&scaled);
        let decide = |claim: Option<&PersistentVolumeClaim>, sets: &[StatefulSet], pods: &[Pod]| {
            recheck_deletion(&uid, OrphanReason::ScaledDown, claim, sets, pods)
        };
        // Nothing changed: delete, with the claim's resourceVersion.
        assert_eq!(decide(Some(&claim), sets, &pods), Ok(rv));
        // Scaled back up to 3: the controller wants ordinal 2 again (its pod may not exist yet).
        let up = statefulset("ns", "web")
            .replicas(3)
            .templates(&["data"])
            .build();
        let err = decide(Some(&claim), std::slice::from_ref(&up), &pods).unwrap_err();
        assert!(
            err.to_string()
                .contains("StatefulSet web wants ordinal 2 again (replicas 3, ordinals 0..3)"),
            "{err}"
        );
        // The pod for ordinal 2 exists and mounts the claim.
        let mut with_pod = pods.clone();
        with_pod.push(pod_for(&up, 2).build());
        let err = decide(Some(&claim), std::slice::from_ref(&up), &with_pod).unwrap_err();
        assert!(err.to_string().contains("web-2"), "{err}");
        // Another pod (a debug pod) mounts it while web stays at 2 replicas.
        let mut debug = pod("ns", "debug").build();
        debug.spec.as_mut().unwrap().volumes = Some(vec![k8s_openapi::api::core::v1::Volume {
            name: "v".into(),
            persistent_volume_claim: Some(
                k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                    claim_name: "data-web-2".into(),
                    read_only: None,
                },
            ),
            ..Default::default()
        }]);
        let mut used = pods.clone();
        used.push(debug);
        assert_eq!(
            decide(Some(&claim), sets, &used),
            Err(NoLongerDeletable::InUse(vec!["debug".into()]))
        );
        // Gone, replaced, terminating, reclassified (the StatefulSet was deleted meanwhile).
        assert_eq!(decide(None, sets, &pods), Err(NoLongerDeletable::Gone));
        let mut other = claim.clone();
        other.metadata.uid = Some("another".into());
        assert_eq!(
            decide(Some(&other), sets, &pods),
            Err(NoLongerDeletable::Replaced)
        );
        let mut deleting = claim.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert_eq!(
            decide(Some(&deleting), sets, &pods),
            Err(NoLongerDeletable::Terminating)
        );
        assert_eq!(
            decide(Some(&claim), &[], &[]),
            Err(NoLongerDeletable::Reclassified {
                was: OrphanReason::ScaledDown,
                now: OrphanReason::StatefulSetDeleted
            })
        );
    }

    #[test]
    fn in_range_claim_without_pod_is_not_an_orphan() {
        let sts = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        let claims = vec![claim_for(&sts, "data", 1).build()];
        assert!(
            find_orphans(std::slice::from_ref(&sts), &[], &claims)
                .orphans
                .is_empty()
        );
    }

    #[test]
    fn hyphen_ambiguity_resolved_by_existing_templates() {
        // Both `web` (template `data`) and `web-a` (template `data`) exist; claim data-web-a-0
        // can only be web-a's (web's claims would be data-web-<n>).
        let web = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .build();
        let web_a = statefulset("ns", "web-a")
            .replicas(0)
            .templates(&["data"])
            .build();
        let c = claim("ns", "data-web-a-0").build();
        match attribute_claim(&c, &[web.clone(), web_a.clone()], &[]) {
            ClaimOrigin::Attributed(a) => {
                assert_eq!(
                    (a.statefulset.as_str(), a.template.as_str(), a.ordinal),
                    ("web-a", "data", 0)
                );
                assert_eq!(a.rule, AttributionRule::StatefulSetTemplate);
            }
            other => panic!("expected attribution, got {other:?}"),
        }
        let claims = vec![c];
        let report = find_orphans(&[web, web_a], &[], &claims);
        assert_eq!(
            reasons(&report),
            vec![("data-web-a-0".to_string(), OrphanReason::ScaledDown)]
        );
    }

    #[test]
    fn truly_ambiguous_claims_are_not_guessed() {
        // `data` of `web-a` and `data-web` of `a` both produce data-web-a-0.
        let web_a = statefulset("ns", "web-a")
            .replicas(0)
            .templates(&["data"])
            .build();
        let a = statefulset("ns", "a")
            .replicas(0)
            .templates(&["data-web"])
            .build();
        let claims = vec![claim("ns", "data-web-a-0").build()];
        let report = find_orphans(&[web_a.clone(), a.clone()], &[], &claims);
        assert!(report.orphans.is_empty());
        assert_eq!(report.ambiguous.len(), 1);
        assert_eq!(report.ambiguous[0].1.len(), 2);
        // A pod that mounts it as volume `data` settles it for web-a.
        let p = pod("ns", "web-a-0").mounts("x").build();
        let mut p = p;
        if let Some(spec) = p.spec.as_mut() {
            spec.volumes = Some(vec![k8s_openapi::api::core::v1::Volume {
                name: "data".to_string(),
                persistent_volume_claim: Some(
                    k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                        claim_name: "data-web-a-0".to_string(),
                        read_only: None,
                    },
                ),
                ..Default::default()
            }]);
        }
        match attribute_claim(&claims[0], &[web_a, a], &[p]) {
            ClaimOrigin::Attributed(attr) => assert_eq!(attr.statefulset, "web-a"),
            other => panic!("expected attribution, got {other:?}"),
        }
    }

    #[test]
    fn deleted_statefulset_found_by_template_name_of_others() {
        // `old` was deleted; `web` still uses template `data`.
        let web = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .build();
        let old = statefulset("ns", "old").templates(&["data"]).build();
        let pods = vec![pod_for(&web, 0).build()];
        let claims = vec![
            claim_for(&web, "data", 0).build(),
            claim_for(&old, "data", 0).build(),
            claim_for(&old, "data", 1).build(),
            claim("ns", "manual-volume").build(),
            claim("ns", "scratch-7").build(),
        ];
        let report = find_orphans(std::slice::from_ref(&web), &pods, &claims);
        assert_eq!(
            reasons(&report),
            vec![
                ("data-old-0".to_string(), OrphanReason::StatefulSetDeleted),
                ("data-old-1".to_string(), OrphanReason::StatefulSetDeleted)
            ]
        );
        assert_eq!(report.orphans[0].rule(), AttributionRule::TemplateName);
        assert_eq!(report.orphans[0].statefulset(), Some("old"));
    }

    #[test]
    fn unknown_template_of_existing_name_is_not_guessed() {
        // web exists with template `www`; `data-web-0` fits template `data` (of db) with
        // statefulset `web`, but web has no such template: not attributed.
        let web = statefulset("ns", "web").templates(&["www"]).build();
        let db = statefulset("ns", "db").templates(&["data"]).build();
        let c = claim("ns", "data-web-0").build();
        assert_eq!(attribute_claim(&c, &[web, db], &[]), ClaimOrigin::Unrelated);
    }

    #[test]
    fn owner_reference_to_deleted_statefulset_is_owner_gone() {
        // whenDeleted=Delete: the claim was owned by the StatefulSet, which was deleted (and
        // maybe recreated under the same name with a new UID).
        let recreated = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .uid("new-uid")
            .build();
        let claims = vec![
            claim("ns", "data-web-3")
                .owner("StatefulSet", "web", "old-uid")
                .build(),
            claim("ns", "data-gone-0")
                .owner("StatefulSet", "gone", "gone-uid")
                .build(),
        ];
        let pods = vec![pod_for(&recreated, 0).build()];
        let report = find_orphans(std::slice::from_ref(&recreated), &pods, &claims);
        assert_eq!(
            reasons(&report),
            vec![
                ("data-gone-0".to_string(), OrphanReason::OwnerGone),
                ("data-web-3".to_string(), OrphanReason::OwnerGone)
            ]
        );
        assert_eq!(report.orphans[0].rule(), AttributionRule::OwnerReference);
        assert!(report.orphans[0].note.contains("gone-uid"));
    }

    #[test]
    fn live_owner_reference_keeps_normal_classification() {
        // whenDeleted=Delete gives every claim an ownerReference to the live StatefulSet; a
        // scaled-down claim is still ScaledDown, not OwnerGone.
        let sts = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .retention("Delete", "Retain")
            .build();
        let uid = sts.metadata.uid.clone().unwrap();
        let claims = vec![
            claim_for(&sts, "data", 0)
                .owner("StatefulSet", "web", &uid)
                .build(),
            claim_for(&sts, "data", 1)
                .owner("StatefulSet", "web", &uid)
                .build(),
        ];
        let pods = vec![pod_for(&sts, 0).build()];
        let report = find_orphans(std::slice::from_ref(&sts), &pods, &claims);
        assert_eq!(
            reasons(&report),
            vec![("data-web-1".to_string(), OrphanReason::ScaledDown)]
        );
    }

    #[test]
    fn pod_owner_gone_after_when_scaled_delete() {
        // whenScaled=Delete: the condemned pod web-2 owned the claim; the pod is gone.
        let sts = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .retention("Retain", "Delete")
            .build();
        let claims = vec![
            claim_for(&sts, "data", 2)
                .owner("Pod", "web-2", "pod-uid-2")
                .build(),
        ];
        let report = find_orphans(std::slice::from_ref(&sts), &[], &claims);
        assert_eq!(
            reasons(&report),
            vec![("data-web-2".to_string(), OrphanReason::OwnerGone)]
        );
        assert_eq!(report.orphans[0].ordinal(), 2);
    }

    #[test]
    fn when_scaled_delete_without_owner_is_flagged_in_the_note() {
        let sts = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .retention("Retain", "Delete")
            .build();
        let claims = vec![claim_for(&sts, "data", 1).build()];
        let report = find_orphans(std::slice::from_ref(&sts), &[], &claims);
        assert_eq!(report.orphans.len(), 1);
        assert!(
            report.orphans[0]
                .note
                .contains("whenScaled=Delete, yet kept")
        );
    }

    #[test]
    fn in_use_orphans_are_not_reclaimable() {
        let sts = statefulset("ns", "web")
            .replicas(1)
            .templates(&["data"])
            .build();
        let pods = vec![
            pod_for(&sts, 0).build(),
            pod("ns", "debug").mounts("data-web-1").build(),
        ];
        let claims = vec![
            claim_for(&sts, "data", 1).capacity("5Gi").build(),
            claim_for(&sts, "data", 2).capacity("3Gi").build(),
            claim_for(&sts, "data", 3).terminating().build(),
        ];
        let report = find_orphans(std::slice::from_ref(&sts), &pods, &claims);
        assert_eq!(report.orphans.len(), 3);
        assert_eq!(report.orphans[0].used_by, vec!["debug".to_string()]);
        assert!(!report.orphans[0].is_deletable());
        assert!(!report.orphans[2].is_deletable(), "terminating");
        assert!(
            report.orphans[2].note.contains("being deleted"),
            "{}",
            report.orphans[2].note
        );
        assert!(!report.orphans[1].note.contains("being deleted"));
        assert_eq!(report.reclaimable_bytes(), 3 << 30);
    }

    #[test]
    fn namespaces_do_not_mix() {
        let sts = statefulset("a", "web")
            .replicas(1)
            .templates(&["data"])
            .build();
        let claims = [
            claim("b", "data-web-0").build(),
            claim("a", "data-web-0").build(),
        ];
        // In `b` no StatefulSet `web` exists: only the name speaks for it (rule 5), not a's web.
        match attribute_claim(&claims[0], std::slice::from_ref(&sts), &[]) {
            ClaimOrigin::NameOnly(m) => assert_eq!(m.candidate_names(), vec!["web"]),
            other => panic!("expected a name-only match, got {other:?}"),
        }
        match attribute_claim(&claims[1], std::slice::from_ref(&sts), &[]) {
            ClaimOrigin::Attributed(a) => assert_eq!(a.rule, AttributionRule::StatefulSetTemplate),
            other => panic!("expected attribution, got {other:?}"),
        }
    }

    /// The claims of `visit-cnt-stfs` (template `data`, selector `app=visit-cnt-stfs`, 2
    /// replicas), and the StatefulSet, which the tests treat as deleted.
    fn deleted_visit_claims() -> (Vec<PersistentVolumeClaim>, StatefulSet) {
        let gone = statefulset("ns", "visit-cnt-stfs")
            .replicas(2)
            .templates(&["data"])
            .build();
        let claims = (0..2)
            .map(|o| claim_for(&gone, "data", o).build())
            .collect();
        (claims, gone)
    }

    fn name_match(origin: ClaimOrigin) -> NameMatch {
        match origin {
            ClaimOrigin::NameOnly(m) => m,
            other => panic!("expected a name-only match, got {other:?}"),
        }
    }

    #[test]
    fn claim_name_splits_every_hyphen() {
        assert_eq!(
            claim_name_splits("data-visit-cnt-stfs-1"),
            vec![
                ("visit-cnt-stfs", "data", 1),
                ("cnt-stfs", "data-visit", 1),
                ("stfs", "data-visit-cnt", 1)
            ]
        );
        assert_eq!(claim_name_splits("data-web-0"), vec![("web", "data", 0)]);
        // No room for both a template and a StatefulSet, or no controller-style ordinal.
        assert!(claim_name_splits("data-0").is_empty());
        assert!(claim_name_splits("data--0").is_empty());
        assert!(claim_name_splits("-web-0").is_empty());
        assert!(claim_name_splits("data-web-01").is_empty());
        assert!(claim_name_splits("data-web").is_empty());
    }

    #[test]
    fn only_statefulset_deleted_found_by_name_alone() {
        // The namespace's only StatefulSet `web` (template `data`) was deleted: no template
        // name is left for rule 4, yet data-web-0/1 must show up.
        let gone = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        let claims: Vec<_> = (0..2)
            .map(|o| claim_for(&gone, "data", o).build())
            .collect();
        let m = name_match(attribute_claim(&claims[0], &[], &[]));
        assert_eq!(m.ordinal, 0);
        assert_eq!(m.candidate_names(), vec!["web"]);
        assert_eq!(
            m.evidence.as_deref(),
            Some("the only way to split the name")
        );
        let report = find_orphans(&[], &[], &claims);
        assert_eq!(
            reasons(&report),
            vec![
                ("data-web-0".to_string(), OrphanReason::StatefulSetDeleted),
                ("data-web-1".to_string(), OrphanReason::StatefulSetDeleted)
            ]
        );
        let o = &report.orphans[1];
        assert_eq!(o.rule(), AttributionRule::NameOnly);
        assert_eq!(o.statefulset(), Some("web"));
        assert_eq!(o.ordinal(), 1);
        assert_eq!(
            o.attribution.as_ref().map(|a| a.template.as_str()),
            Some("data")
        );
        assert!(
            o.note.starts_with(
                "attributed by name only (the only way to split the name); StatefulSet web is gone"
            ),
            "{}",
            o.note
        );
        assert_eq!(
            report.reclaimable_bytes(),
            2 << 30,
            "name-only orphans count"
        );
    }

    #[test]
    fn label_picks_among_hyphenated_splits() {
        // data-visit-cnt-stfs-0 splits three ways; the selector label app=visit-cnt-stfs,
        // copied onto the claim by the controller, names one of them.
        let (claims, _) = deleted_visit_claims();
        let m = name_match(attribute_claim(&claims[0], &[], &[]));
        assert_eq!(
            m.candidate_names(),
            vec!["cnt-stfs", "stfs", "visit-cnt-stfs"]
        );
        let chosen = m.chosen.clone().expect("a label names one split");
        assert_eq!(
            (
                chosen.statefulset.as_str(),
                chosen.template.as_str(),
                chosen.ordinal
            ),
            ("visit-cnt-stfs", "data", 0)
        );
        assert_eq!(m.evidence.as_deref(), Some("label app=visit-cnt-stfs"));
        // Naming a StatefulSet selects the chosen split only.
        assert!(m.split_for("visit-cnt-stfs").is_some());
        assert!(m.split_for("stfs").is_none());

        let report = find_orphans(&[], &[], &claims);
        assert_eq!(report.orphans.len(), 2);
        assert_eq!(report.orphans[0].statefulset(), Some("visit-cnt-stfs"));
        assert!(
            report.orphans[0]
                .note
                .contains("(label app=visit-cnt-stfs)"),
            "{}",
            report.orphans[0].note
        );
    }

    #[test]
    fn without_evidence_the_statefulset_is_unknown() {
        // No labels: three splits and nothing to choose between them.
        let bare = claim("ns", "data-visit-cnt-stfs-1").build();
        // Labels naming two candidates do not decide either.
        let mut two = claim("ns", "data-visit-cnt-stfs-0").build();
        two.metadata.labels = Some(
            [
                ("app".to_string(), "cnt-stfs".to_string()),
                ("tier".to_string(), "stfs".to_string()),
            ]
            .into(),
        );
        for c in [&bare, &two] {
            let m = name_match(attribute_claim(c, &[], &[]));
            assert_eq!(m.chosen, None);
            assert_eq!(m.evidence, None);
            assert_eq!(m.candidates.len(), 3);
            // Any candidate can be named.
            assert_eq!(
                m.split_for("cnt-stfs").map(|a| a.template.as_str()),
                Some("data-visit")
            );
            assert_eq!(m.split_for("web"), None);
        }
        let claims = vec![bare, two];
        let report = find_orphans(&[], &[], &claims);
        assert_eq!(report.orphans.len(), 2);
        let o = &report.orphans[1];
        assert_eq!(o.name(), "data-visit-cnt-stfs-1");
        assert_eq!(o.reason, OrphanReason::StatefulSetDeleted);
        assert_eq!(o.attribution, None);
        assert_eq!(o.statefulset(), None);
        assert_eq!(o.rule(), AttributionRule::NameOnly);
        assert_eq!(o.ordinal(), 1);
        assert!(
            o.note.contains("cnt-stfs, stfs, visit-cnt-stfs"),
            "{}",
            o.note
        );
        assert_eq!(
            o.split_for("stfs").map(|a| a.template.as_str()),
            Some("data-visit-cnt")
        );
    }

    #[test]
    fn a_split_naming_an_existing_statefulset_blocks_rule_5() {
        // `stfs` exists (template `www`): data-visit-cnt-stfs-0 might be a hand-made claim
        // for it; rule 4 declines (no template data-visit-cnt) and rule 5 must not guess.
        let stfs = statefulset("ns", "stfs").templates(&["www"]).build();
        let (claims, _) = deleted_visit_claims();
        assert_eq!(
            attribute_claim(&claims[0], std::slice::from_ref(&stfs), &[]),
            ClaimOrigin::Unrelated
        );
        assert!(
            find_orphans(std::slice::from_ref(&stfs), &[], &claims)
                .orphans
                .is_empty()
        );
        // An unrelated StatefulSet does not block it; one using template `data` makes rule 4
        // answer first.
        let other = statefulset("ns", "other").templates(&["logs"]).build();
        let m = name_match(attribute_claim(
            &claims[0],
            std::slice::from_ref(&other),
            &[],
        ));
        assert_eq!(
            m.chosen.map(|a| a.statefulset),
            Some("visit-cnt-stfs".to_string())
        );
        let db = statefulset("ns", "db").templates(&["data"]).build();
        match attribute_claim(&claims[0], &[db], &[]) {
            ClaimOrigin::Attributed(a) => assert_eq!(a.rule, AttributionRule::TemplateName),
            other => panic!("expected rule 4, got {other:?}"),
        }
    }

    #[test]
    fn name_only_claims_whose_pod_exists_are_not_orphans() {
        let (claims, gone) = deleted_visit_claims();
        // `--cascade=orphan` left pod visit-cnt-stfs-0, which no longer mounts the claim.
        let left = pod("ns", "visit-cnt-stfs-0").build();
        let report = find_orphans(&[], std::slice::from_ref(&left), &claims);
        assert_eq!(
            reasons(&report),
            vec![(
                "data-visit-cnt-stfs-1".to_string(),
                OrphanReason::StatefulSetDeleted
            )]
        );
        // Unknown StatefulSet: any candidate's pod keeps it from being an orphan.
        let bare = [claim("ns", "data-visit-cnt-stfs-1").build()];
        let stfs_1 = pod("ns", "stfs-1").build();
        assert!(find_orphans(&[], &[stfs_1], &bare).orphans.is_empty());
        assert_eq!(find_orphans(&[], &[], &bare).orphans.len(), 1);
        // A pod mounting it the controller's way settles it by rule 3 instead.
        let mounting = pod_for(&gone, 1).build();
        match attribute_claim(&claims[1], &[], std::slice::from_ref(&mounting)) {
            ClaimOrigin::Attributed(a) => assert_eq!(a.rule, AttributionRule::MountingPod),
            other => panic!("expected rule 3, got {other:?}"),
        }
    }

    #[test]
    fn claims_managed_by_something_else_are_left_alone() {
        // An operator's resource, or a pod that still exists, owns it: not a StatefulSet's.
        let by_operator = claim("ns", "data-my-db-0")
            .owner("PostgresCluster", "my-db", "uid-cr")
            .build();
        assert_eq!(
            attribute_claim(&by_operator, &[], &[]),
            ClaimOrigin::Unrelated
        );
        let owner_pod = pod("ns", "runner-x").build();
        let uid = owner_pod.metadata.uid.clone().unwrap();
        let by_pod = claim("ns", "data-my-db-0")
            .owner("Pod", "runner-x", &uid)
            .build();
        assert_eq!(
            attribute_claim(&by_pod, &[], std::slice::from_ref(&owner_pod)),
            ClaimOrigin::Unrelated
        );
        // The same pod gone: the claim is a name-only orphan, OwnerGone as for other rules.
        let claims = [by_pod];
        let report = find_orphans(&[], &[], &claims);
        assert_eq!(
            reasons(&report),
            vec![("data-my-db-0".to_string(), OrphanReason::OwnerGone)]
        );
        assert_eq!(report.orphans[0].rule(), AttributionRule::NameOnly);
    }
}
