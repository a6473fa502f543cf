//! Facts read straight off the objects, one reader per fact: which Service governs a
//! StatefulSet, which revision a pod runs, what a StatefulSet's selector is as a LIST query,
//! and who controls an object. Every other module reads these facts through here.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube_core::Selector;

use crate::headless::StatefulSetFacts;

/// Pod label holding the *full* name of the revision (`<sts>-<hash>`) the pod was created
/// from; `status.currentRevision` and `status.updateRevision` carry the same full names
/// (pkg/controller/statefulset/stateful_set_utils.go, `apps.ControllerRevisionHashLabelKey`).
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// `spec.serviceName`, if set and non-empty. Servers before 1.33 return `""` when a
/// manifest left it out; 1.33 made it optional (kubernetes/kubernetes#130233). Of a full
/// StatefulSet or of the webhook cache's [`crate::cached::CachedStatefulSet`].
pub fn service_name<S: StatefulSetFacts + ?Sized>(sts: &S) -> Option<&str> {
    sts.service_name().filter(|n| !n.is_empty())
}

/// The full revision name a pod runs (its [`REVISION_LABEL`]).
pub fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// A label selector as a LIST `labelSelector` query (`app=web,tier in (a,b),!legacy`), built
/// with kube-core's [`Selector`]. `None` when it selects everything (an empty selector) or has
/// an operator the API does not know: asking the server with such a query would list more than
/// the selector means.
pub fn selector_query(selector: &LabelSelector) -> Option<String> {
    let selector = Selector::try_from(selector.clone()).ok()?;
    (!selector.selects_all()).then(|| selector.to_string())
}

/// A StatefulSet's `spec.selector` as a LIST query ([`selector_query`]); `None` without a spec.
pub fn statefulset_selector_query(sts: &StatefulSet) -> Option<String> {
    selector_query(&sts.spec.as_ref()?.selector)
}

/// True when `meta` has a controller ownerReference to this StatefulSet.
///
/// Matches by UID like kubectl does; a StatefulSet without a UID (only in hand-made objects)
/// falls back to kind + name.
pub fn is_controlled_by(meta: &ObjectMeta, sts: &StatefulSet) -> bool {
    let Some(refs) = meta.owner_references.as_ref() else {
        return false;
    };
    refs.iter()
        .filter(|r| r.controller == Some(true))
        .any(|r| match &sts.metadata.uid {
            Some(uid) => &r.uid == uid,
            None => r.kind == "StatefulSet" && Some(&r.name) == sts.metadata.name.as_ref(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_query_covers_every_operator() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web", "tier": "db"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["b", "a"]},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "ready", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_query(&sel).as_deref(),
            Some("app=web,tier=db,env in (a,b),zone notin (x),ready,!legacy")
        );
        assert_eq!(selector_query(&LabelSelector::default()), None);
        let unknown: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]
        }))
        .unwrap();
        assert_eq!(selector_query(&unknown), None, "never widen to everything");
    }

    #[test]
    fn service_name_treats_empty_as_unset() {
        let mut sts = StatefulSet::default();
        assert_eq!(service_name(&sts), None);
        sts.spec = Some(Default::default());
        assert_eq!(service_name(&sts), None, "\"\" as v1.20 returns it");
        sts.spec.as_mut().unwrap().service_name = Some("web".into());
        assert_eq!(service_name(&sts), Some("web"));
    }
}
