//! Property tests (proptest) over generated namespaces of StatefulSets, pods and claims, over
//! pod templates and their diffs, and over renumbered revision histories (issue 14, item 2).
//!
//! Names come from small pools with hyphen-ambiguous members (StatefulSets `web`, `web-data`,
//! `web-a`, `a`, `data-web`; templates `data`, `data-web`, …), so that `data-web-a-0` and
//! friends split several ways and the attribution rules of [`crate::orphans`] are exercised
//! where they can go wrong. Some StatefulSets are generated as *deleted*: their pods
//! (`--cascade=orphan` leftovers) and claims exist, they do not.
//!
//! Case counts are set per property below ([`CASES`]); the whole file runs in a few seconds in a
//! debug build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;
use serde_json::Value;

use crate::diff::{normalize, template_yaml, unified, unified_text, value_yaml};
use crate::fixtures::{claim_for, controller_revision, pod, pod_for, statefulset};
use crate::naming::{claim_name, pod_name};
use crate::orphans::{AttributionRule, ClaimOrigin, attribute_claim, claim_users, find_orphans};
use crate::revision::History;

/// Cases per property for the namespace properties (each case builds a whole namespace).
const CASES: u32 = 2000;

const STS_NAMES: &[&str] = &["web", "web-data", "data", "a", "web-a", "db", "data-web"];
const TEMPLATES: &[&str] = &["data", "data-web", "logs", "web", "a"];
const NAMESPACES: &[&str] = &["ns", "ns", "ns", "other"];

// ------------------------------------------------------------------ generated namespaces

#[derive(Debug, Clone)]
struct GenSts {
    name: &'static str,
    namespace: &'static str,
    exists: bool,
    templates: Vec<&'static str>,
    replicas: i32,
    start: i32,
    /// 0: no policy; 1: Retain/Retain; 2: Delete/Retain; 3: Retain/Delete.
    retention: u8,
}

#[derive(Debug, Clone)]
struct GenPod {
    sts: usize,
    ordinal: i32,
    /// 0: as the controller makes it; 1: same name, no volumes (a stray pod); 2: terminating.
    shape: u8,
}

#[derive(Debug, Clone)]
struct GenClaim {
    sts: usize,
    /// Index into TEMPLATES: any template name, not only the StatefulSet's own.
    template: usize,
    ordinal: i32,
    /// 0: none; 1: StatefulSet owner (its uid); 2: StatefulSet owner with a stale uid;
    /// 3: Pod owner `S-N`; 4: an operator's resource.
    owner: u8,
    labelled: bool,
    terminating: bool,
}

#[derive(Debug, Clone)]
struct World {
    sets: Vec<GenSts>,
    pods: Vec<GenPod>,
    claims: Vec<GenClaim>,
    /// Extra pods (`debug-<i>`) mounting the claim of the given index.
    mounters: Vec<(usize, &'static str)>,
}

fn gen_sts(name: &'static str) -> impl Strategy<Value = GenSts> {
    (
        prop::sample::select(NAMESPACES),
        prop::bool::weighted(0.65),
        prop::sample::subsequence(TEMPLATES, 0..=2),
        0..4i32,
        prop_oneof![4 => Just(0i32), 1 => 1..3i32],
        0..4u8,
    )
        .prop_map(
            move |(namespace, exists, templates, replicas, start, retention)| GenSts {
                name,
                namespace,
                exists,
                templates,
                replicas,
                start,
                retention,
            },
        )
}

fn world() -> impl Strategy<Value = World> {
    prop::sample::subsequence(STS_NAMES, 1..=5)
        .prop_flat_map(|names| names.into_iter().map(gen_sts).collect::<Vec<_>>())
        .prop_flat_map(|sets| {
            let n = sets.len();
            let pods = prop::collection::vec(
                (
                    0..n,
                    0..5i32,
                    prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
                )
                    .prop_map(|(sts, ordinal, shape)| GenPod {
                        sts,
                        ordinal,
                        shape,
                    }),
                0..8,
            );
            let claims = prop::collection::vec(
                (
                    0..n,
                    0..TEMPLATES.len(),
                    0..5i32,
                    prop_oneof![5 => Just(0u8), 1 => 1..5u8],
                    prop::bool::weighted(0.7),
                    prop::bool::weighted(0.1),
                )
                    .prop_map(
                        |(sts, template, ordinal, owner, labelled, terminating)| GenClaim {
                            sts,
                            template,
                            ordinal,
                            owner,
                            labelled,
                            terminating,
                        },
                    ),
                0..10,
            );
            let mounters =
                prop::collection::vec((0..10usize, prop::sample::select(NAMESPACES)), 0..3);
            (Just(sets), pods, claims, mounters).prop_map(|(sets, pods, claims, mounters)| World {
                sets,
                pods,
                claims,
                mounters,
            })
        })
}

/// The objects of a generated world: existing StatefulSets, pods, claims.
struct Objects {
    sets: Vec<StatefulSet>,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
}

fn build_sts(g: &GenSts) -> StatefulSet {
    let mut b = statefulset(g.namespace, g.name)
        .replicas(g.replicas)
        .templates(&g.templates);
    if g.start != 0 {
        b = b.ordinals_start(g.start);
    }
    b = match g.retention {
        1 => b.retention("Retain", "Retain"),
        2 => b.retention("Delete", "Retain"),
        3 => b.retention("Retain", "Delete"),
        _ => b,
    };
    b.build()
}

fn build(world: &World) -> Objects {
    // Every generated StatefulSet, deleted ones included (their pods and claims are built
    // from them); only existing ones are handed to the model.
    let all: Vec<StatefulSet> = world.sets.iter().map(build_sts).collect();
    let sets = world
        .sets
        .iter()
        .zip(&all)
        .filter(|(g, _)| g.exists)
        .map(|(_, s)| s.clone())
        .collect();
    let mut pods: Vec<Pod> = Vec::new();
    for p in &world.pods {
        let sts = &all[p.sts];
        let built = match p.shape {
            1 => {
                let mut stray = pod_for(sts, p.ordinal).build();
                if let Some(spec) = stray.spec.as_mut() {
                    spec.volumes = None;
                }
                stray
            }
            2 => pod_for(sts, p.ordinal).terminating().build(),
            _ => pod_for(sts, p.ordinal).build(),
        };
        // Pod names are unique in a namespace.
        if !pods.iter().any(|q| {
            q.metadata.name == built.metadata.name
                && q.metadata.namespace == built.metadata.namespace
        }) {
            pods.push(built);
        }
    }
    let mut claims: Vec<PersistentVolumeClaim> = Vec::new();
    for c in &world.claims {
        let sts = &all[c.sts];
        let g = &world.sets[c.sts];
        let template = TEMPLATES[c.template];
        let mut b = claim_for(sts, template, c.ordinal);
        let uid = sts.metadata.uid.clone().unwrap_or_default();
        let pod = pod_name(g.name, c.ordinal);
        b = match c.owner {
            1 => b.owner("StatefulSet", g.name, &uid),
            2 => b.owner("StatefulSet", g.name, "stale-uid"),
            3 => {
                let pod_uid = crate::fixtures::pod(g.namespace, &pod)
                    .build()
                    .metadata
                    .uid
                    .unwrap_or_default();
                b.owner("Pod", &pod, &pod_uid)
            }
            4 => b.owner("PostgresCluster", g.name, "uid-cr"),
            _ => b,
        };
        if c.terminating {
            b = b.terminating();
        }
        let mut built = b.build();
        if !c.labelled {
            built.metadata.labels = None;
        }
        if !claims.iter().any(|q| {
            q.metadata.name == built.metadata.name
                && q.metadata.namespace == built.metadata.namespace
        }) {
            claims.push(built);
        }
    }
    for (i, (claim_index, namespace)) in world.mounters.iter().enumerate() {
        if let Some(c) = claims.get(claim_index % claims.len().max(1)) {
            let name = c.metadata.name.clone().unwrap_or_default();
            pods.push(pod(namespace, &format!("debug-{i}")).mounts(&name).build());
        }
    }
    Objects { sets, pods, claims }
}

fn ns_of(claim: &PersistentVolumeClaim) -> &str {
    claim.metadata.namespace.as_deref().unwrap_or_default()
}

fn pod_in(pods: &[Pod], namespace: &str, name: &str) -> bool {
    pods.iter().any(|p| {
        p.metadata.namespace.as_deref() == Some(namespace)
            && p.metadata.name.as_deref() == Some(name)
    })
}

fn sts_in<'a>(sets: &'a [StatefulSet], namespace: &str, name: &str) -> Option<&'a StatefulSet> {
    sets.iter().find(|s| {
        s.metadata.namespace.as_deref() == Some(namespace)
            && s.metadata.name.as_deref() == Some(name)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// (a) No orphan has a pod: neither the pod its attribution names nor, when the StatefulSet
    /// is unknown, any candidate's pod. And a claim of an existing StatefulSet's own template
    /// whose pod exists is never an orphan, however else its name could split.
    #[test]
    fn a_claim_whose_pod_exists_is_never_an_orphan(w in world()) {
        let o = build(&w);
        let report = find_orphans(&o.sets, &o.pods, &o.claims);
        for orphan in &report.orphans {
            let ns = orphan.namespace();
            match (&orphan.attribution, &orphan.name_match) {
                (Some(a), _) => prop_assert!(
                    !pod_in(&o.pods, ns, &pod_name(&a.statefulset, a.ordinal)),
                    "{} is an orphan of {a:?} but its pod exists", orphan.name()
                ),
                (None, Some(m)) => {
                    for c in &m.candidates {
                        prop_assert!(!pod_in(&o.pods, ns, &pod_name(&c.statefulset, c.ordinal)));
                    }
                }
                (None, None) => prop_assert!(false, "orphan without attribution or name match"),
            }
        }
        let orphaned: BTreeSet<(&str, &str)> =
            report.orphans.iter().map(|o| (o.namespace(), o.name())).collect();
        for claim in &o.claims {
            let (ns, name) = (ns_of(claim), claim.metadata.name.as_deref().unwrap_or_default());
            for sts in o.sets.iter().filter(|s| s.metadata.namespace.as_deref() == Some(ns)) {
                let sts_name = sts.metadata.name.as_deref().unwrap_or_default();
                for t in crate::naming::claim_template_names(sts) {
                    let Some(n) = crate::naming::claim_matches(name, t, sts_name) else {
                        continue;
                    };
                    // An ownerReference to another StatefulSet (or its pod) is the
                    // controller's own record (rule 1) and wins: two StatefulSets whose
                    // names collide share the claim, and the other's may be OwnerGone.
                    let pod = pod_name(sts_name, n);
                    let owned_elsewhere = claim.metadata.owner_references.iter().flatten().any(|r| {
                        (r.kind == "StatefulSet" && r.name != sts_name) || (r.kind == "Pod" && r.name != pod)
                    });
                    if !owned_elsewhere && pod_in(&o.pods, ns, &pod) {
                        prop_assert!(
                            !orphaned.contains(&(ns, name)),
                            "{ns}/{name}: template {t} of existing {sts_name}, pod exists, yet an orphan"
                        );
                    }
                }
            }
        }
    }

    /// (b) Every attribution is backed by what its rule says: rules 2 and 4 only name templates
    /// that an existing StatefulSet of the claim's namespace has; rule 1 an ownerReference,
    /// rule 3 a pod mounting the claim under the template's name; anything else is marked
    /// name-only (rule 5), and then no candidate StatefulSet exists. Every split spells the
    /// claim's name.
    #[test]
    fn attributions_name_only_templates_that_exist_unless_name_only(w in world()) {
        let o = build(&w);
        for claim in &o.claims {
            let (ns, name) = (ns_of(claim), claim.metadata.name.as_deref().unwrap_or_default());
            let ns_templates: BTreeSet<&str> = o
                .sets
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
                .flat_map(crate::naming::claim_template_names)
                .collect();
            match attribute_claim(claim, &o.sets, &o.pods) {
                ClaimOrigin::Attributed(a) => {
                    prop_assert_eq!(claim_name(&a.template, &a.statefulset, a.ordinal), name);
                    match a.rule {
                        AttributionRule::StatefulSetTemplate => {
                            let sts = sts_in(&o.sets, ns, &a.statefulset);
                            prop_assert!(sts.is_some_and(|s| {
                                crate::naming::claim_template_names(s).contains(&a.template.as_str())
                            }), "{name}: {a:?}");
                        }
                        AttributionRule::TemplateName => {
                            prop_assert!(ns_templates.contains(a.template.as_str()), "{name}: {a:?}");
                            prop_assert!(sts_in(&o.sets, ns, &a.statefulset).is_none());
                        }
                        AttributionRule::OwnerReference => {
                            let pod = pod_name(&a.statefulset, a.ordinal);
                            prop_assert!(claim.metadata.owner_references.iter().flatten().any(|r| {
                                (r.kind == "StatefulSet" && r.name == a.statefulset)
                                    || (r.kind == "Pod" && r.name == pod)
                            }), "{name}: {a:?}");
                        }
                        AttributionRule::MountingPod => {
                            let pod = pod_name(&a.statefulset, a.ordinal);
                            prop_assert!(o.pods.iter().any(|p| {
                                p.metadata.namespace.as_deref() == Some(ns)
                                    && p.metadata.name.as_deref() == Some(pod.as_str())
                                    && p.spec.iter().flat_map(|s| s.volumes.iter().flatten()).any(|v| {
                                        v.name == a.template
                                            && v.persistent_volume_claim
                                                .as_ref()
                                                .is_some_and(|c| c.claim_name == name)
                                    })
                            }), "{name}: {a:?}");
                        }
                        AttributionRule::NameOnly => {
                            prop_assert!(false, "{name}: name-only attribution not marked as such");
                        }
                    }
                }
                ClaimOrigin::NameOnly(m) => {
                    prop_assert!(!m.candidates.is_empty());
                    for c in &m.candidates {
                        prop_assert_eq!(c.rule, AttributionRule::NameOnly);
                        prop_assert_eq!(claim_name(&c.template, &c.statefulset, c.ordinal), name);
                        prop_assert!(sts_in(&o.sets, ns, &c.statefulset).is_none(), "{name}: {c:?}");
                    }
                    if let Some(chosen) = &m.chosen {
                        prop_assert!(m.candidates.contains(chosen));
                    }
                }
                ClaimOrigin::Ambiguous(candidates) => {
                    prop_assert!(candidates.len() >= 2, "{name}: {candidates:?}");
                    for c in &candidates {
                        prop_assert_eq!(claim_name(&c.template, &c.statefulset, c.ordinal), name);
                    }
                }
                ClaimOrigin::Unrelated => {}
            }
        }
    }

    /// (c) Deleting what `find_orphans` says is deletable never removes a claim that a pod of
    /// its namespace mounts, and the fresh re-check before each DELETE agrees on the same state.
    #[test]
    fn deleting_deletable_orphans_never_removes_a_mounted_claim(w in world()) {
        let o = build(&w);
        let users = claim_users(&o.pods);
        let report = find_orphans(&o.sets, &o.pods, &o.claims);
        for orphan in report.orphans.iter().filter(|x| x.is_deletable()) {
            let key = (orphan.namespace().to_string(), orphan.name().to_string());
            prop_assert!(!users.contains_key(&key), "{key:?} is mounted by {:?}", users.get(&key));
            let uid = orphan.claim.metadata.uid.as_deref().unwrap_or_default();
            prop_assert!(
                crate::orphans::recheck_deletion(uid, orphan.reason, Some(orphan.claim), &o.sets, &o.pods)
                    .is_ok()
            );
        }
        // A mounted claim is still listed (with its users) or not listed: never deletable.
        for orphan in &report.orphans {
            let key = (orphan.namespace().to_string(), orphan.name().to_string());
            prop_assert_eq!(users.get(&key).cloned().unwrap_or_default(), orphan.used_by.clone());
        }
    }
}

// ------------------------------------------------------------------ diffs

/// Applies a unified diff (as [`unified_text`] writes it) to `from`. Hunks are read by their
/// line counts, so body lines that look like headers are taken as body.
fn apply_unified(from: &str, diff: &str) -> Result<String, String> {
    let old: Vec<&str> = from.split_inclusive('\n').collect();
    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut next_old = 0usize; // index of the next old line not yet copied
    let mut i = 2; // skip `---` and `+++`
    if !(lines.first().is_some_and(|l| l.starts_with("--- "))
        && lines.get(1).is_some_and(|l| l.starts_with("+++ ")))
    {
        return Err("no headers".into());
    }
    while i < lines.len() {
        let header = lines[i].trim_end();
        let ranges = header
            .strip_prefix("@@ -")
            .and_then(|h| h.strip_suffix(" @@"))
            .ok_or(format!("bad hunk header {header:?}"))?;
        let (old_range, new_range) = ranges.split_once(" +").ok_or("bad ranges")?;
        let parse = |r: &str| -> Result<(usize, usize), String> {
            let (start, len) = r.split_once(',').unwrap_or((r, "1"));
            Ok((
                start.parse().map_err(|_| "bad start")?,
                len.parse().map_err(|_| "bad len")?,
            ))
        };
        let (old_start, old_len) = parse(old_range)?;
        let (_, new_len) = parse(new_range)?;
        // A hunk removing from an empty side starts "at" line 0.
        let first = if old_len == 0 {
            old_start
        } else {
            old_start - 1
        };
        for l in &old[next_old..first] {
            out.push_str(l);
        }
        next_old = first;
        i += 1;
        let (mut seen_old, mut seen_new) = (0, 0);
        while seen_old < old_len || seen_new < new_len {
            let line = lines.get(i).ok_or("hunk cut short")?;
            let (tag, body) = line.split_at(1);
            match tag {
                " " => {
                    if old.get(next_old) != Some(&body) {
                        return Err(format!("context mismatch at old line {next_old}"));
                    }
                    out.push_str(body);
                    next_old += 1;
                    seen_old += 1;
                    seen_new += 1;
                }
                "-" => {
                    if old.get(next_old) != Some(&body) {
                        return Err(format!("removal mismatch at old line {next_old}"));
                    }
                    next_old += 1;
                    seen_old += 1;
                }
                "+" => {
                    out.push_str(body);
                    seen_new += 1;
                }
                other => return Err(format!("bad line tag {other:?}")),
            }
            i += 1;
        }
    }
    for l in &old[next_old..] {
        out.push_str(l);
    }
    Ok(out)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // YAML-significant strings: quoting must keep them strings.
        prop::sample::select(vec![
            "",
            "yes",
            "no",
            "null",
            "~",
            "1",
            "0x1f",
            "1e3",
            "-",
            "- a",
            ": x",
            "a: b",
            "#c",
            "---",
            "@@ -1 +1 @@",
            "+",
            " lead",
            "trail ",
            "multi\nline",
            "tab\there",
            "'q'",
            "\"dq\"",
            "ü",
            "$patch",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        "[a-z0-9 .:/-]{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A pod template varied where revisions differ in practice: images, labels, env, ports,
/// containers added and removed.
fn pod_template() -> impl Strategy<Value = PodTemplateSpec> {
    let container = (
        prop::sample::select(vec!["main", "sidecar", "init"]),
        prop::sample::select(vec!["nginx:1.19", "nginx:1.20", "busybox", "redis:7"]),
        prop::collection::vec(("[A-Z]{1,4}", "[a-z0-9]{0,4}"), 0..3),
        prop::collection::vec(1..100i32, 0..3),
    )
        .prop_map(|(name, image, env, ports)| Container {
            name: name.to_string(),
            image: Some(image.to_string()),
            env: (!env.is_empty()).then(|| {
                env.into_iter()
                    .map(|(name, value)| EnvVar {
                        name,
                        value: Some(value),
                        ..EnvVar::default()
                    })
                    .collect()
            }),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|p| ContainerPort {
                        container_port: p,
                        ..ContainerPort::default()
                    })
                    .collect()
            }),
            ..Container::default()
        });
    (
        prop::collection::btree_map("[a-z]{1,5}", "[a-z0-9-]{0,6}", 0..3),
        prop::collection::vec(container, 1..4),
    )
        .prop_map(|(labels, containers)| PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers,
                ..PodSpec::default()
            }),
        })
}

fn check_diff(a_yaml: &str, b_yaml: &str) -> Result<(), TestCaseError> {
    let d = unified_text("A", a_yaml, "B", b_yaml);
    prop_assert_eq!(d.is_empty(), a_yaml == b_yaml);
    if d.is_empty() {
        prop_assert_eq!(d.text.as_str(), "");
        return Ok(());
    }
    let body = d.text.lines().skip(2).filter(|l| !l.starts_with("@@"));
    let (mut plus, mut minus) = (0, 0);
    for l in body {
        plus += usize::from(l.starts_with('+'));
        minus += usize::from(l.starts_with('-'));
    }
    // Counted over the hunks' own lines: the header lines are skipped above, and a body line
    // is exactly one tag character plus a line of the YAML.
    prop_assert_eq!((d.added, d.removed), (plus, minus));
    prop_assert_eq!(
        apply_unified(a_yaml, &d.text).map_err(TestCaseError::fail)?,
        b_yaml
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// (d) `diff A B` applied to A's YAML gives B's YAML (hunks, context and counts all
    /// honest), and B's YAML reads back as B's normalized template: the diff is a diff of the
    /// templates, not only of their texts.
    #[test]
    fn diff_of_templates_applied_to_a_gives_b(a in pod_template(), b in pod_template()) {
        let d = unified("A", &a, "B", &b).unwrap();
        let (a_yaml, b_yaml) = (template_yaml(&a).unwrap(), template_yaml(&b).unwrap());
        prop_assert_eq!(&d, &unified_text("A", &a_yaml, "B", &b_yaml));
        check_diff(&a_yaml, &b_yaml)?;
        let back: Value = serde_yaml::from_str(&b_yaml).unwrap();
        prop_assert_eq!(back, normalize(&serde_json::to_value(&b).unwrap()));
        prop_assert_eq!(d.is_empty(), a == b);
    }

    /// (d) The same over arbitrary JSON (what a ControllerRevision's data may hold), with
    /// YAML-significant strings: the diff applies, and the YAML reads back as the normalized
    /// value (sorted keys, `$patch` dropped).
    #[test]
    fn diff_of_json_values_applied_to_a_gives_b(a in json_value(), b in json_value()) {
        let (a_yaml, b_yaml) = (value_yaml(&a).unwrap(), value_yaml(&b).unwrap());
        check_diff(&a_yaml, &b_yaml)?;
        let back: Value = serde_yaml::from_str(&b_yaml).unwrap();
        prop_assert_eq!(back, normalize(&b));
    }
}

// ------------------------------------------------------------------ revision ordering

#[derive(Debug, Clone)]
struct GenHistory {
    /// Revision numbers, one per revision `web-h<i>` (duplicates possible: unhealthy but seen).
    numbers: Vec<i64>,
    current: usize,
    update: usize,
    /// Strictly positive gaps that renumber the sorted distinct numbers.
    gaps: Vec<i64>,
    shift: i64,
}

fn gen_history() -> impl Strategy<Value = GenHistory> {
    prop::collection::vec(1..40i64, 1..8).prop_flat_map(|numbers| {
        let n = numbers.len();
        (
            Just(numbers),
            0..n,
            0..n,
            prop::collection::vec(1..5i64, 40),
            0..1000i64,
        )
            .prop_map(|(numbers, current, update, gaps, shift)| GenHistory {
                numbers,
                current,
                update,
                gaps,
                shift,
            })
    })
}

/// The StatefulSet and its ControllerRevisions, with revision `i` numbered `number(i)`; the
/// templates differ by image so diffs and summaries have something to say.
fn history_with(g: &GenHistory, number: impl Fn(i64) -> i64) -> History {
    let names: Vec<String> = (0..g.numbers.len()).map(|i| format!("web-h{i}")).collect();
    let base = statefulset("ns", "web").revisions(&names[g.current], &names[g.update]);
    let sts = base.build();
    let revisions: Vec<_> = g
        .numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let with_image = statefulset("ns", "web")
                .image(&format!("nginx:1.{i}"))
                .build();
            controller_revision(&with_image, &names[i], number(*n))
        })
        .collect();
    History::new(&sts, &revisions).unwrap()
}

/// What must not depend on the numbers themselves, only on their order.
fn order_facts(h: &History) -> Vec<String> {
    let name =
        |r: Option<&crate::revision::Revision>| r.map_or("-".to_string(), |r| r.name.clone());
    let mut facts: Vec<String> = h.revisions.iter().map(|r| r.name.clone()).collect();
    facts.push(format!("current={}", name(h.current_revision())));
    facts.push(format!("update={}", name(h.update_revision())));
    facts.push(format!("latest={}", name(h.latest())));
    for r in &h.revisions {
        facts.push(format!(
            "prev({})={}",
            r.name,
            name(h.previous_of(r.number))
        ));
    }
    match h.default_diff() {
        Ok((a, b)) => facts.push(format!(
            "diff={}..{}",
            name(a.revision()),
            name(b.revision())
        )),
        Err(e) => facts.push(format!("diff error {e:?}")),
    }
    match h.plan_rollback(None) {
        Ok(plan) => facts.push(format!(
            "rollback={} renumbers={} already_live={}",
            plan.target.name,
            plan.renumbers(),
            plan.already_live
        )),
        // The error's kind only: its text names the numbers.
        Err(e) => facts.push(format!("rollback error {:?}", std::mem::discriminant(&e))),
    }
    facts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// (e) Shifting or monotonically renumbering the revision numbers changes nothing but the
    /// numbers: same order, same current/update/latest, same previous of each, same default
    /// diff, same rollback target.
    #[test]
    fn revision_order_survives_monotonic_renumbering(g in gen_history()) {
        let original = history_with(&g, |n| n);
        let facts = order_facts(&original);
        prop_assert_eq!(&order_facts(&history_with(&g, |n| n + g.shift)), &facts);
        // Any strictly increasing map: the distinct numbers, sorted, get cumulative gaps.
        let distinct: Vec<i64> = g.numbers.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let renumbered = |n: i64| {
            let rank = distinct.iter().position(|d| *d == n).unwrap();
            g.gaps[..=rank].iter().sum::<i64>()
        };
        prop_assert_eq!(&order_facts(&history_with(&g, renumbered)), &facts);
    }

    /// (e) The renumbering the controller itself does on rollback (the target becomes max+1):
    /// the plan's `new_number` makes the target the latest, and the others keep their order.
    #[test]
    fn rollback_renumbering_moves_only_the_target(g in gen_history(), pick in any::<prop::sample::Index>()) {
        // Ties in numbers do not happen in a healthy cluster, and the controller never makes them.
        prop_assume!(g.numbers.iter().collect::<BTreeSet<_>>().len() == g.numbers.len());
        let h = history_with(&g, |n| n);
        let target = pick.get(&h.revisions).name.clone();
        let plan = h.plan_rollback(Some(&target)).unwrap();
        let new_number = plan.new_number;
        let target_index: usize = target.trim_start_matches("web-h").parse().unwrap();
        let mut after = g.clone();
        after.numbers[target_index] = new_number;
        let h2 = history_with(&after, |n| n);
        prop_assert_eq!(&h2.latest().unwrap().name, &target);
        let others = |h: &History| -> Vec<String> {
            h.revisions.iter().filter(|r| r.name != target).map(|r| r.name.clone()).collect()
        };
        prop_assert_eq!(others(&h2), others(&h));
        prop_assert_eq!(plan.renumbers(), h.latest().unwrap().number != h.by_name(&target).unwrap().number);
    }
}
