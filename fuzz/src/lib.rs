//! The checks the fuzz targets run, one function per target (`fuzz_targets/<name>.rs` only
//! calls it). Each panics on a broken property, which libFuzzer reports as a crash; the
//! inputs are bytes, split as each function says, so the seed corpora under `corpus/<target>/`
//! are readable files.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionReview};
use sts_model::diff::{unified, unified_text, value_yaml};
use sts_model::dns::ServiceNameTemplate;
use sts_model::fixtures::{claim, pod, statefulset};
use sts_model::mutation::{MutationConfig, is_statefulset_request, mutate, mutate_request};
use sts_model::naming::{
    claim_matches, claim_name, parse_ordinal, pod_name, pod_ordinal, split_claim_for_statefulset,
    split_claim_for_template, split_ordinal,
};
use sts_model::orphans::{attribute_claim, claim_name_splits, find_orphans};
use sts_model::review::{SlimReview, statefulset_of};
use sts_model::revision::template_from_data;

/// `/mutate`'s body. The webhook reads it with [`SlimReview::parse`] (the fast, borrowed
/// reader) and falls back to kube-core's `AdmissionReview<DynamicObject>` when that fails
/// (`untyped_review`); the reference is kube-core's typed `AdmissionReview<StatefulSet>`, and
/// [`statefulset_of`] reads the full object again on a cache miss. None may panic; where the
/// fast reader and the typed parse both accept a body, they must agree on everything the
/// answer uses: apiVersion, uid, dryRun, operation, and the mutation decided (patch, warnings,
/// Service plan) under two configurations; and `statefulset_of` must give the typed object.
pub fn mutate_body(data: &[u8]) {
    let slim = SlimReview::parse(data);
    let typed = serde_json::from_slice::<AdmissionReview<StatefulSet>>(data);
    // The fallback path: only that it does not panic, and what it decides on.
    if let Ok(untyped) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(data)
        && let Some(req) = untyped.request.as_ref()
    {
        let _ = is_statefulset_request(req);
    }
    let again = statefulset_of(data);
    let (Ok(slim), Ok(typed)) = (slim, typed) else {
        return;
    };
    assert_eq!(
        slim.request.is_some(),
        typed.request.is_some(),
        "request present"
    );
    assert_eq!(&*slim.api_version, typed.types.api_version, "apiVersion");
    let api_version = typed.types.api_version.clone();
    let Ok(full): Result<AdmissionRequest<StatefulSet>, _> = typed.try_into() else {
        return;
    };
    let Some(req) = slim.request.as_ref() else {
        return;
    };
    assert_eq!(&*req.uid, full.uid, "uid");
    assert_eq!(req.dry_run, full.dry_run, "dryRun");
    assert_eq!(req.operation, full.operation, "operation");
    for cfg in configs() {
        assert_eq!(
            mutate(&full, &cfg),
            mutate_request(&req.view(), &cfg),
            "the fast reader and the typed parse decide differently (apiVersion {api_version})"
        );
    }
    match again {
        Ok(object) => assert_eq!(object, full.object, "statefulset_of"),
        Err(e) => panic!("statefulset_of rejects a body the typed parse reads: {e}"),
    }
}

fn configs() -> [MutationConfig; 2] {
    [
        MutationConfig::default(),
        MutationConfig {
            template: ServiceNameTemplate::parse("{name}-{namespace}").expect("a valid template"),
            ..MutationConfig::default()
        },
    ]
}

/// Claim-name parsing and attribution. The input is lines: `template`, `statefulset`,
/// `ordinal text`, `claim name` (missing lines are empty). Ordinals: a parsed ordinal prints
/// back as its text. Splits: `<prefix>-<ordinal>` and every `(S, T, N)` of
/// [`claim_name_splits`] spell the input back. Round trip: for non-empty `T`, `S` and an
/// ordinal `N`, `claim_name(T, S, N)` splits back to `(T, N)` for `S`, `(S, N)` for `T`, is
/// among its own splits, and `pod_name(S, N)` back to `N`. Attribution and `find_orphans` over
/// a namespace with StatefulSet `S` (template `T`), pod `S-N`, and the two claims: no panic,
/// and the claim of `T` for `S-N` is never an orphan (its pod exists).
pub fn claim_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let template = lines.next().unwrap_or_default();
    let sts = lines.next().unwrap_or_default();
    let ordinal_text = lines.next().unwrap_or_default();
    let arbitrary = lines.next().unwrap_or_default();

    for s in [template, sts, ordinal_text, arbitrary] {
        if let Some(n) = parse_ordinal(s) {
            assert!(n >= 0, "{s:?}");
            assert_eq!(n.to_string(), s);
        }
        if let Some((prefix, n)) = split_ordinal(s) {
            assert!(!prefix.is_empty());
            assert_eq!(format!("{prefix}-{n}"), s);
        }
        for (s_name, t_name, n) in claim_name_splits(s) {
            assert!(!s_name.is_empty() && !t_name.is_empty());
            assert_eq!(claim_name(t_name, s_name, n), s);
        }
        if let Some((t, n)) = split_claim_for_statefulset(s, sts) {
            assert_eq!(claim_name(t, sts, n), s);
        }
        if let Some((st, n)) = split_claim_for_template(s, template) {
            assert_eq!(claim_name(template, st, n), s);
        }
        if let Some(n) = claim_matches(s, template, sts) {
            assert_eq!(claim_name(template, sts, n), s);
        }
    }

    let ordinal = parse_ordinal(ordinal_text).unwrap_or(0);
    if !template.is_empty() && !sts.is_empty() {
        let c = claim_name(template, sts, ordinal);
        assert_eq!(
            split_claim_for_statefulset(&c, sts),
            Some((template, ordinal))
        );
        assert_eq!(split_claim_for_template(&c, template), Some((sts, ordinal)));
        assert_eq!(claim_matches(&c, template, sts), Some(ordinal));
        assert!(claim_name_splits(&c).contains(&(sts, template, ordinal)));
        assert_eq!(pod_ordinal(sts, &pod_name(sts, ordinal)), Some(ordinal));

        let sets = [statefulset("ns", sts)
            .replicas(0)
            .templates(&[template])
            .build()];
        let pods = [pod("ns", &pod_name(sts, ordinal)).build()];
        let claims = [claim("ns", &c).build(), claim("ns", arbitrary).build()];
        for cl in &claims {
            let _ = attribute_claim(cl, &sets, &pods);
            let _ = attribute_claim(cl, &[], &[]);
        }
        let report = find_orphans(&sets, &pods, &claims);
        assert!(
            !report.orphans.iter().any(|o| o.name() == c),
            "{c} is an orphan though pod {} exists",
            pod_name(sts, ordinal)
        );
        let _ = find_orphans(&[], &[], &claims);
    }
}

/// The revision diff on arbitrary JSON: the input is two JSON texts separated by a NUL byte
/// (the second may be absent: then both sides are the first). Each side as a value
/// ([`value_yaml`], [`unified_text`]), and as a ControllerRevision's `data` read into a pod
/// template ([`template_from_data`], [`unified`]): no panic, and a side diffed with itself is
/// empty.
pub fn diff_json(data: &[u8]) {
    let (a, b) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let (Ok(a), Ok(b)) = (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) else {
        return;
    };
    if let (Ok(ya), Ok(yb)) = (value_yaml(&a), value_yaml(&b)) {
        let d = unified_text("a", &ya, "b", &yb);
        assert_eq!(d.is_empty(), ya == yb);
        assert!(unified_text("a", &ya, "a", &ya).is_empty());
    }
    if let (Ok(ta), Ok(tb)) = (template_from_data(&a), template_from_data(&b))
        && let (Ok(d), Ok(same)) = (unified("a", &ta, "b", &tb), unified("a", &ta, "a", &ta))
    {
        assert!(same.is_empty());
        if ta == tb {
            assert!(d.is_empty());
        }
    }
}
