//! A cheap way to read the StatefulSet in an AdmissionReview.
//!
//! Deserializing the full k8s-openapi `StatefulSet` builds every field, including
//! `managedFields` (a `serde_json::Value` tree) and the whole pod template, which is most of the
//! cost of answering `/mutate`. [`SlimStatefulSet`] reads only what
//! [`sts_model::mutation::mutate`] looks at and skips the rest unparsed:
//!
//! - `metadata.name`, `namespace`, `generateName`, `labels` (opt-out label);
//! - `spec.serviceName`, `spec.selector`;
//! - `spec.template.spec.containers[].name` and `.ports`.
//!
//! [`SlimReview`] does the same for the AdmissionReview envelope around it.
//!
//! If `mutate` ever reads another field, add it here; the equivalence test below compares
//! the decisions made from both parses.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::core::admission::{AdmissionRequest, Operation as AdmissionOp};
use kube::core::{GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use sts_model::mutation::AsStatefulSet;

/// A StatefulSet holding only the fields the mutation reads (see the module docs). Boxed: the
/// struct is several kB, and the request moves through a few futures.
#[derive(Clone, Debug, Default)]
pub struct SlimStatefulSet(pub Box<StatefulSet>);

impl AsStatefulSet for SlimStatefulSet {
    fn as_statefulset(&self) -> &StatefulSet {
        &self.0
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    metadata: Option<WireMeta>,
    #[serde(default)]
    spec: Option<WireSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    selector: Option<LabelSelector>,
    #[serde(default)]
    template: Option<WireTemplate>,
}

#[derive(Deserialize)]
struct WireTemplate {
    #[serde(default)]
    spec: Option<WirePodSpec>,
}

#[derive(Deserialize)]
struct WirePodSpec {
    #[serde(default)]
    containers: Option<Vec<WireContainer>>,
}

#[derive(Deserialize)]
struct WireContainer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<ContainerPort>>,
}

impl<'de> Deserialize<'de> for SlimStatefulSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        // Filled in place: a StatefulSet is ~2.5 kB and a Container ~2 kB, so building them on
        // the stack and moving them into place would copy several kB per request.
        let mut sts = Box::<StatefulSet>::default();
        if let Some(m) = w.metadata {
            let meta = &mut sts.metadata;
            meta.name = m.name;
            meta.namespace = m.namespace;
            meta.generate_name = m.generate_name;
            meta.labels = m.labels;
        }
        if let Some(s) = w.spec {
            let spec = sts.spec.insert(StatefulSetSpec::default());
            spec.service_name = s.service_name;
            spec.selector = s.selector.unwrap_or_default();
            if let Some(p) = s.template.and_then(|t| t.spec) {
                let pod = spec.template.spec.insert(PodSpec::default());
                let containers = p.containers.unwrap_or_default();
                pod.containers.reserve_exact(containers.len());
                for c in containers {
                    pod.containers.push(Container::default());
                    if let Some(container) = pod.containers.last_mut() {
                        container.name = c.name.unwrap_or_default();
                        container.ports = c.ports;
                    }
                }
            }
        }
        Ok(SlimStatefulSet(sts))
    }
}

impl kube::Resource for SlimStatefulSet {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        <StatefulSet as kube::Resource>::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        <StatefulSet as kube::Resource>::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        <StatefulSet as kube::Resource>::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        <StatefulSet as kube::Resource>::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

/// The incoming AdmissionReview, reading only what the mutation and the answer use.
///
/// kube-core's `AdmissionReview` flattens its `TypeMeta` (serde then buffers the whole document
/// before decoding it) and its `AdmissionRequest` builds `userInfo`, `options` (a JSON tree),
/// `oldObject` and four group/version/kind structs the mutation never reads. Here those are
/// skipped unparsed ([`IgnoredAny`]). `userInfo` and `resource` stay required, as in kube-core;
/// what they (and `oldObject`, `options`) contain is no longer checked — the apiserver always
/// sends them well-formed, and the webhook never reads them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimReview<'a> {
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
    #[serde(default, borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    kind: GroupVersionKind,
    #[serde(rename = "resource")]
    _resource: IgnoredAny,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: AdmissionOp,
    #[serde(rename = "userInfo")]
    _user_info: IgnoredAny,
    #[serde(default)]
    object: Option<SlimStatefulSet>,
    #[serde(default)]
    dry_run: bool,
}

impl<'a> SlimReview<'a> {
    /// Reads an AdmissionReview body.
    ///
    /// The body is checked to be UTF-8 once, up front, and then read as a `str`: reading bytes,
    /// serde_json would check every string it borrows on its own, keys included.
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        let text = std::str::from_utf8(body).map_err(|e| {
            <serde_json::Error as serde::de::Error>::custom(format_args!(
                "request body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        serde_json::from_str(text)
    }

    /// The request as [`sts_model::mutation::mutate`] takes it (None when the review has
    /// none); the fields the mutation does not read stay empty.
    pub fn into_request(self) -> Option<AdmissionRequest<SlimStatefulSet>> {
        let api_version = self.api_version;
        self.request.map(|r| r.into_admission_request(&api_version))
    }
}

impl RequestIn<'_> {
    fn into_admission_request(self, api_version: &str) -> AdmissionRequest<SlimStatefulSet> {
        AdmissionRequest {
            types: TypeMeta {
                api_version: api_version.to_owned(),
                kind: "AdmissionReview".to_owned(),
            },
            uid: self.uid.into_owned(),
            kind: self.kind,
            resource: GroupVersionResource::gvr("", "", ""),
            sub_resource: self.sub_resource,
            request_kind: None,
            request_resource: None,
            request_sub_resource: None,
            name: self.name,
            namespace: self.namespace,
            operation: self.operation,
            user_info: Default::default(),
            object: self.object,
            old_object: None,
            dry_run: self.dry_run,
            options: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::admission::{AdmissionRequest, AdmissionReview};
    use serde_json::{Value, json};
    use sts_model::mutation::{MutationConfig, mutate};

    const CREATE: &str = include_str!("../tests/fixtures/create-statefulset.json");

    fn both(
        review: &Value,
    ) -> (
        AdmissionRequest<StatefulSet>,
        AdmissionRequest<SlimStatefulSet>,
    ) {
        let full: AdmissionReview<StatefulSet> = serde_json::from_value(review.clone()).unwrap();
        // The path the handler takes: bytes → SlimReview.
        let bytes = serde_json::to_vec(review).unwrap();
        let slim = SlimReview::parse(&bytes).unwrap().into_request().unwrap();
        (full.try_into().unwrap(), slim)
    }

    #[test]
    fn slim_and_full_parses_decide_the_same() {
        let base: Value = serde_json::from_str(CREATE).unwrap();
        let mut variants = vec![base.clone()];
        let mut v = base.clone();
        v["request"]["object"]["metadata"]["labels"] = json!({"headless.sts.dev/inject": "false"});
        variants.push(v);
        let mut v = base.clone();
        v["request"]["object"]["spec"]["selector"]["matchExpressions"] =
            json!([{"key": "a", "operator": "Exists"}]);
        variants.push(v);
        let mut v = base.clone();
        v["request"]["object"]["spec"]["serviceName"] = json!("peers");
        v["request"]["operation"] = json!("UPDATE");
        v["request"]["oldObject"] = v["request"]["object"].clone();
        variants.push(v);
        let mut v = base.clone();
        v["request"]["object"]["metadata"]["name"] = json!("0db");
        v["request"]["name"] = json!("0db");
        variants.push(v);
        let mut v = base.clone();
        v["request"]["subResource"] = json!("scale");
        variants.push(v);
        let mut v = base.clone();
        v["request"]["kind"]["kind"] = json!("Deployment");
        variants.push(v);
        let mut v = base.clone();
        v["request"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        v["request"]["object"]["metadata"]["generateName"] = json!("gen-");
        variants.push(v);
        let mut v = base;
        v["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]);
        variants.push(v);
        let cfg = MutationConfig::default();
        for review in variants {
            let (full, slim) = both(&review);
            assert_eq!(mutate(&full, &cfg), mutate(&slim, &cfg), "{review}");
        }
    }

    #[test]
    fn the_envelope_keeps_what_the_answer_needs() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"a\"b","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"resource":{},"userInfo":{},"operation":"UPDATE","namespace":"ns","name":"x","dryRun":true,"oldObject":7}}"#;
        let req = SlimReview::parse(body).unwrap().into_request().unwrap();
        assert_eq!(req.types.api_version, "admission.k8s.io/v1beta1");
        assert_eq!(req.uid, "a\"b");
        assert_eq!(req.operation, AdmissionOp::Update);
        assert_eq!(req.namespace.as_deref(), Some("ns"));
        assert_eq!(req.name, "x");
        assert!(req.dry_run && req.object.is_none() && req.old_object.is_none());
        // serde reads structs from arrays too: `[]` is a review without a request (→ 400).
        for none in [&br#"{"request":null}"#[..], b"{}", b"[]"] {
            assert!(SlimReview::parse(none).unwrap().into_request().is_none());
        }
        for bad in [
            &br#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"userInfo":{},"operation":"CREATE"}}"#[..],
            br#"{"request":{"uid":1}}"#,
            br#"{"request":"#,
            b"7",
            b"{\"apiVersion\":\"\xff\"}",
        ] {
            assert!(SlimReview::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nulls_and_missing_parts_are_tolerated() {
        let sts: SlimStatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "x", "labels": null},
            "spec": {"selector": null, "template": {"spec": {"containers": null}}}
        }))
        .unwrap();
        assert_eq!(sts.0.metadata.name.as_deref(), Some("x"));
        assert!(sts.0.spec.is_some());
        let empty: SlimStatefulSet = serde_json::from_value(json!({})).unwrap();
        assert!(empty.0.spec.is_none());
    }
}
