//! Names the StatefulSet controller derives: pods `<sts>-<ordinal>`, claims
//! `<template>-<sts>-<ordinal>`, stable DNS `<pod>.<service>.<ns>.svc.<domain>`.
//!
//! Claim names are ambiguous when names contain hyphens (`data-web-a-0` is template `data` of
//! `web-a`, or template `data-web` of `a`). The functions here only *split* names against a given
//! template or StatefulSet name; deciding which split is true needs the objects that exist and is
//! done in [`crate::orphans`].

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;

/// Longest StatefulSet name whose revision label still fits: pods carry `<sts>-<hash>` (hash up
/// to 10 characters) in label `controller-revision-hash`, and label values are limited to 63.
pub const MAX_NAME_FOR_REVISION_LABEL: usize = 52;

/// True when a StatefulSet name is too long for its pods' `controller-revision-hash` label.
pub fn name_breaks_revision_label(name: &str) -> bool {
    name.len() > MAX_NAME_FOR_REVISION_LABEL
}

/// `spec.ordinals.start`, 0 when absent (older servers, or not set).
pub fn ordinals_start(sts: &StatefulSet) -> i32 {
    sts.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// `spec.replicas`, defaulting to 1 as the apiserver does.
pub fn desired_replicas(sts: &StatefulSet) -> i32 {
    sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The ordinals the StatefulSet wants to exist: `start .. start + replicas`.
pub fn ordinal_range(sts: &StatefulSet) -> std::ops::Range<i32> {
    let start = ordinals_start(sts);
    let replicas = desired_replicas(sts).max(0);
    start..start.saturating_add(replicas)
}

/// Names of the StatefulSet's `volumeClaimTemplates`, in order.
pub fn claim_template_names(sts: &StatefulSet) -> Vec<&str> {
    sts.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .map(|templates| {
            templates
                .iter()
                .filter_map(|t| t.metadata.name.as_deref())
                .collect()
        })
        .unwrap_or_default()
}

/// Pod name for an ordinal.
pub fn pod_name(statefulset: &str, ordinal: i32) -> String {
    format!("{statefulset}-{ordinal}")
}

/// Claim name for a template and ordinal.
pub fn claim_name(template: &str, statefulset: &str, ordinal: i32) -> String {
    format!("{template}-{statefulset}-{ordinal}")
}

/// Stable DNS name of a pod behind its headless Service.
pub fn pod_dns_name(pod: &str, service: &str, namespace: &str, cluster_domain: &str) -> String {
    format!("{pod}.{service}.{namespace}.svc.{cluster_domain}")
}

/// Parse an ordinal as the controller prints it (`strconv.Itoa`): decimal digits, no sign, no
/// leading zero except `0` itself.
pub fn parse_ordinal(text: &str) -> Option<i32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// Split `<prefix>-<ordinal>` at the last hyphen. The prefix must be non-empty.
pub fn split_ordinal(name: &str) -> Option<(&str, i32)> {
    let (prefix, ordinal) = name.rsplit_once('-')?;
    if prefix.is_empty() {
        return None;
    }
    Some((prefix, parse_ordinal(ordinal)?))
}

/// The ordinal of `pod` if it is named like a pod of `statefulset`.
pub fn pod_ordinal(statefulset: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(statefulset)?.strip_prefix('-')?;
    parse_ordinal(rest)
}

/// The pod label the StatefulSet controller sets to the pod's ordinal (KEP-4017, GA in 1.32;
/// `k8s.io/api/apps/v1` `PodIndexLabel`). Older servers do not set it.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of `pod` as a pod of `statefulset`: from [`POD_INDEX_LABEL`] when the pod has it
/// (the controller's own record, servers ≥ 1.32), else from the name. Either way the pod must
/// be named `<statefulset>-<digits>`; a label that is not an ordinal is ignored.
pub fn statefulset_pod_ordinal(statefulset: &str, pod: &Pod) -> Option<i32> {
    let from_name = pod_ordinal(statefulset, pod.metadata.name.as_deref()?)?;
    let from_label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_INDEX_LABEL))
        .and_then(|v| parse_ordinal(v));
    Some(from_label.unwrap_or(from_name))
}

/// If `claim` is `<template>-<statefulset>-<ordinal>` for this StatefulSet, return the
/// template name and ordinal. The template must be non-empty.
pub fn split_claim_for_statefulset<'a>(
    claim: &'a str,
    statefulset: &str,
) -> Option<(&'a str, i32)> {
    let (prefix, ordinal) = split_ordinal(claim)?;
    let template = prefix.strip_suffix(statefulset)?.strip_suffix('-')?;
    if template.is_empty() {
        return None;
    }
    Some((template, ordinal))
}

/// If `claim` is `<template>-<statefulset>-<ordinal>` for this template, return the
/// StatefulSet name and ordinal. The StatefulSet name must be non-empty.
pub fn split_claim_for_template<'a>(claim: &'a str, template: &str) -> Option<(&'a str, i32)> {
    let rest = claim.strip_prefix(template)?.strip_prefix('-')?;
    split_ordinal(rest)
}

/// True when `claim` is exactly the claim of `template` for `statefulset` at some ordinal.
pub fn claim_matches(claim: &str, template: &str, statefulset: &str) -> Option<i32> {
    match split_claim_for_statefulset(claim, statefulset) {
        Some((t, ordinal)) if t == template => Some(ordinal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::statefulset;

    #[test]
    fn pod_and_claim_names() {
        assert_eq!(pod_name("web", 2), "web-2");
        assert_eq!(claim_name("data", "web", 2), "data-web-2");
        assert_eq!(
            pod_dns_name("web-0", "web", "prod", "cluster.local"),
            "web-0.web.prod.svc.cluster.local"
        );
    }

    #[test]
    fn ordinals_are_strict_decimal() {
        assert_eq!(parse_ordinal("0"), Some(0));
        assert_eq!(parse_ordinal("12"), Some(12));
        assert_eq!(parse_ordinal("01"), None);
        assert_eq!(parse_ordinal("-1"), None);
        assert_eq!(parse_ordinal("1a"), None);
        assert_eq!(parse_ordinal(""), None);
        assert_eq!(
            parse_ordinal("99999999999"),
            None,
            "overflow is not an ordinal"
        );
    }

    #[test]
    fn split_ordinal_takes_the_last_segment() {
        assert_eq!(split_ordinal("web-a-3"), Some(("web-a", 3)));
        assert_eq!(split_ordinal("web"), None);
        assert_eq!(split_ordinal("-3"), None);
        assert_eq!(split_ordinal("web-x"), None);
    }

    #[test]
    fn pod_index_label_gives_the_ordinal_when_present() {
        let pod = |name: &str, label: Option<&str>| {
            let mut p = Pod::default();
            p.metadata.name = Some(name.to_string());
            if let Some(v) = label {
                p.metadata.labels = Some([(POD_INDEX_LABEL.to_string(), v.to_string())].into());
            }
            p
        };
        assert_eq!(statefulset_pod_ordinal("web", &pod("web-3", None)), Some(3));
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("web-3", Some("3"))),
            Some(3)
        );
        // The label is the controller's record of the ordinal: it wins.
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("web-3", Some("7"))),
            Some(7)
        );
        // Not an ordinal: the name decides.
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("web-3", Some("x"))),
            Some(3)
        );
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("web-3", Some("-1"))),
            Some(3)
        );
        // Not named like a pod of this StatefulSet: not its pod, whatever the label says.
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("webx-3", Some("3"))),
            None
        );
        assert_eq!(
            statefulset_pod_ordinal("web", &pod("web-a", Some("3"))),
            None
        );
    }

    #[test]
    fn pod_ordinal_requires_exact_statefulset_prefix() {
        assert_eq!(pod_ordinal("web", "web-0"), Some(0));
        assert_eq!(
            pod_ordinal("web", "web-a-0"),
            None,
            "pod of StatefulSet web-a"
        );
        assert_eq!(pod_ordinal("web-a", "web-a-7"), Some(7));
        assert_eq!(pod_ordinal("web", "webx-0"), None);
    }

    #[test]
    fn hyphenated_claims_split_both_ways() {
        // `data-web-a-0` is template `data` of `web-a`, or template `data-web` of `a`.
        let claim = "data-web-a-0";
        assert_eq!(
            split_claim_for_statefulset(claim, "web-a"),
            Some(("data", 0))
        );
        assert_eq!(
            split_claim_for_statefulset(claim, "a"),
            Some(("data-web", 0))
        );
        assert_eq!(split_claim_for_statefulset(claim, "web"), None);
        assert_eq!(split_claim_for_template(claim, "data"), Some(("web-a", 0)));
        assert_eq!(split_claim_for_template(claim, "data-web"), Some(("a", 0)));
        assert_eq!(split_claim_for_template(claim, "dat"), None);
        assert_eq!(claim_matches(claim, "data", "web-a"), Some(0));
        assert_eq!(claim_matches(claim, "data", "a"), None);
        // The template must be non-empty: `web-0` is not a claim of `web`.
        assert_eq!(split_claim_for_statefulset("web-0", "web"), None);
    }

    #[test]
    fn ordinals_start_shifts_the_range() {
        let sts = statefulset("prod", "db")
            .replicas(3)
            .ordinals_start(5)
            .build();
        assert_eq!(ordinals_start(&sts), 5);
        assert_eq!(ordinal_range(&sts), 5..8);
        let plain = statefulset("prod", "db").replicas(2).build();
        assert_eq!(ordinal_range(&plain), 0..2);
        let mut no_replicas = statefulset("prod", "db").build();
        if let Some(spec) = no_replicas.spec.as_mut() {
            spec.replicas = None;
        }
        assert_eq!(ordinal_range(&no_replicas), 0..1, "replicas defaults to 1");
    }

    #[test]
    fn long_names_break_the_revision_label() {
        assert!(!name_breaks_revision_label(&"a".repeat(52)));
        assert!(name_breaks_revision_label(&"a".repeat(53)));
    }

    #[test]
    fn template_names_in_order() {
        let sts = statefulset("prod", "db")
            .templates(&["data", "logs"])
            .build();
        assert_eq!(claim_template_names(&sts), vec!["data", "logs"]);
    }
}
