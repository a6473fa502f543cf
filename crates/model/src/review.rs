//! The AdmissionReview as sts-webhook's `/mutate` reads it: a borrowed view of the request body.
//!
//! Pure parsing (no I/O), so it lives in the model, where the fuzz target `mutate_body`
//! (`fuzz/`) checks it against kube-core's typed parse without building the server; the
//! webhook re-exports it as `sts_webhook::slim`.
//!
//! kube-core's `AdmissionReview<StatefulSet>` builds every field of the object — `managedFields`
//! (a `serde_json::Value` tree), the whole pod template, `userInfo`, `oldObject` — as owned
//! strings, maps and vectors, most of which the mutation never reads; that was most of the cost
//! of answering `/mutate`. [`SlimReview`] reads only what [`crate::mutation::mutate_request`]
//! looks at (the [`StatefulSetFacts`]) and borrows every string from the body (a string is
//! copied only when it contains JSON escapes). Everything else is checked to be well-formed
//! JSON and skipped ([`IgnoredAny`]):
//!
//! - envelope: `apiVersion`, `request.uid`, `kind`, `subResource`, `name`, `namespace`,
//!   `operation`, `dryRun` (`resource` and `userInfo` must be present, as in kube-core);
//! - object and oldObject: `metadata.name`, `namespace`, whether `labels` opt out; `spec.serviceName`; and of
//!   `spec.selector` only whether `matchLabels` and `matchExpressions` have entries.
//!
//! Building the Service needs the full StatefulSet (the selector's labels, the containers'
//! ports); that happens only when the watch cache lacks the Service, with
//! [`statefulset_of`] parsing the body again into k8s-openapi types.
//!
//! If `mutate_request` ever reads another field, add it here; the tests below compare the
//! decisions made from this view and from the full parse.

use std::borrow::Cow;
use std::fmt;

use crate::headless::{OPT_OUT_LABEL, SelectorShape, StatefulSetFacts};
use crate::mutation::RequestView;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube_core::admission::Operation as AdmissionOp;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A JSON string, borrowed from the body unless it had escapes.
///
/// (serde's own `Cow<str>` always copies when it is inside an `Option`.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The incoming AdmissionReview, reading only what the mutation and the answer use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimReview<'a> {
    #[serde(default, borrow)]
    pub api_version: Text<'a>,
    #[serde(default, borrow)]
    pub request: Option<SlimRequest<'a>>,
}

/// `request` of the review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimRequest<'a> {
    #[serde(borrow)]
    pub uid: Text<'a>,
    #[serde(borrow)]
    pub kind: Kind<'a>,
    #[serde(rename = "resource")]
    _resource: IgnoredAny,
    #[serde(default, borrow)]
    pub sub_resource: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub namespace: Option<Text<'a>>,
    pub operation: AdmissionOp,
    #[serde(rename = "userInfo")]
    _user_info: IgnoredAny,
    #[serde(default, borrow)]
    pub object: Option<SlimStatefulSet<'a>>,
    /// The stored StatefulSet, on UPDATE: its `serviceName` is put back when the incoming
    /// object has none.
    #[serde(default, borrow)]
    pub old_object: Option<SlimStatefulSet<'a>>,
    #[serde(default)]
    pub dry_run: bool,
}

/// `request.kind` (all three parts required, as in kube-core).
#[derive(Debug, Deserialize)]
pub struct Kind<'a> {
    #[serde(borrow)]
    pub group: Text<'a>,
    #[serde(borrow, rename = "version")]
    _version: Text<'a>,
    #[serde(borrow)]
    pub kind: Text<'a>,
}

/// The StatefulSet in `request.object`: its [`StatefulSetFacts`], nothing else.
#[derive(Debug, Default, Deserialize)]
pub struct SlimStatefulSet<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a>>,
    #[serde(default, borrow)]
    spec: Option<Spec<'a>>,
}

#[derive(Debug, Deserialize)]
struct Meta<'a> {
    #[serde(default, borrow)]
    name: Option<Text<'a>>,
    #[serde(default, borrow)]
    namespace: Option<Text<'a>>,
    #[serde(default)]
    labels: Option<StringMap>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    #[serde(default, borrow)]
    service_name: Option<Text<'a>>,
    #[serde(default)]
    selector: Option<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    #[serde(default)]
    match_labels: Option<StringMap>,
    #[serde(default)]
    match_expressions: Option<SeqLen>,
}

/// A map of strings (`metadata.labels`, `spec.selector.matchLabels`) read for two facts: how
/// many entries it has, and whether it holds the opt-out label set to `"false"`. Nothing is
/// kept, but every key and value must be a string, as in a `BTreeMap<String, String>`.
#[derive(Debug)]
struct StringMap {
    len: usize,
    opted_out: bool,
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                let mut out = StringMap {
                    len: 0,
                    opted_out: false,
                };
                while let Some((key, value)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    out.len += 1;
                    if &*key == OPT_OUT_LABEL {
                        out.opted_out = &*value == "false";
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// The number of elements of an array (`matchExpressions`), each skipped.
#[derive(Debug)]
struct SeqLen(usize);

impl<'de> Deserialize<'de> for SeqLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SeqLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeqLen, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(SeqLen(n))
            }
        }
        d.deserialize_seq(V)
    }
}

impl StatefulSetFacts for SlimStatefulSet<'_> {
    fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.metadata.as_ref()?.namespace.as_deref()
    }
    fn opted_out(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .is_some_and(|l| l.opted_out)
    }
    fn has_spec(&self) -> bool {
        self.spec.is_some()
    }
    fn service_name(&self) -> Option<&str> {
        self.spec.as_ref()?.service_name.as_deref()
    }
    fn selector_shape(&self) -> SelectorShape {
        let selector = self.spec.as_ref().and_then(|s| s.selector.as_ref());
        let expressions = selector
            .and_then(|s| s.match_expressions.as_ref())
            .map_or(0, |e| e.0);
        let labels = selector
            .and_then(|s| s.match_labels.as_ref())
            .map_or(0, |l| l.len);
        if expressions > 0 {
            SelectorShape::MatchExpressions
        } else if labels > 0 {
            SelectorShape::MatchLabels
        } else {
            SelectorShape::Empty
        }
    }
}

impl<'a> SlimReview<'a> {
    /// Reads an AdmissionReview body.
    ///
    /// The body is checked to be UTF-8 once, up front, and then read as a `str`: reading bytes,
    /// serde_json would check every string it borrows on its own, keys included.
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_str(utf8(body)?)
    }
}

impl<'a> SlimRequest<'a> {
    /// The request as [`crate::mutation::mutate_request`] takes it.
    pub fn view(&self) -> RequestView<'_, SlimStatefulSet<'a>> {
        RequestView {
            group: &self.kind.group,
            kind: &self.kind.kind,
            sub_resource: self.sub_resource.as_deref(),
            operation: self.operation.clone(),
            namespace: self.namespace.as_deref(),
            name: &self.name,
            object: self.object.as_ref(),
            old_object: self.old_object.as_ref(),
        }
    }
}

fn utf8(body: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(body).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format_args!(
            "request body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// The full StatefulSet in the review's `request.object` (k8s-openapi types, everything else
/// skipped), for building its Service when the cache lacks it. `Ok(None)` when the review has
/// no object.
pub fn statefulset_of(body: &[u8]) -> Result<Option<StatefulSet>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Review {
        #[serde(default)]
        request: Option<Request>,
    }
    #[derive(Deserialize)]
    struct Request {
        #[serde(default)]
        object: Option<StatefulSet>,
    }
    let review: Review = serde_json::from_str(utf8(body)?)?;
    Ok(review.request.and_then(|r| r.object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutation::{MutationConfig, mutate, mutate_request};
    use kube_core::admission::{AdmissionRequest, AdmissionReview};
    use serde_json::{Value, json};

    const CREATE: &str = include_str!("../../webhook/tests/fixtures/create-statefulset.json");

    /// Variants of the fixture covering every branch of the mutation.
    fn variants() -> Vec<Value> {
        let base: Value = serde_json::from_str(CREATE).unwrap();
        let mut variants = vec![base.clone()];
        let mut edit = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            variants.push(v);
        };
        edit(&|v| {
            v["request"]["object"]["metadata"]["labels"] =
                json!({"a": "b", "headless.sts.dev/inject": "false"})
        });
        edit(&|v| v["request"]["object"]["metadata"]["labels"] = json!({OPT_OUT_LABEL: "true"}));
        edit(&|v| v["request"]["object"]["metadata"]["labels"] = Value::Null);
        edit(&|v| {
            v["request"]["object"]["spec"]["selector"]["matchExpressions"] =
                json!([{"key": "a", "operator": "Exists"}])
        });
        edit(&|v| v["request"]["object"]["spec"]["selector"]["matchExpressions"] = json!([]));
        edit(&|v| v["request"]["object"]["spec"]["selector"]["matchLabels"] = json!({}));
        edit(&|v| v["request"]["object"]["spec"]["selector"] = json!({}));
        edit(&|v| v["request"]["object"]["spec"]["selector"]["matchLabels"] = Value::Null);
        edit(&|v| {
            v["request"]["object"]["spec"]["serviceName"] = json!("peers");
            v["request"]["operation"] = json!("UPDATE");
            v["request"]["oldObject"] = v["request"]["object"].clone();
        });
        edit(&|v| v["request"]["operation"] = json!("UPDATE"));
        // UPDATE without a serviceName over a stored one: restored (absent, empty, opted out).
        for incoming in [None, Some(json!("")), Some(json!("peers"))] {
            for labels in [Value::Null, json!({OPT_OUT_LABEL: "false"})] {
                edit(&|v| {
                    v["request"]["operation"] = json!("UPDATE");
                    let mut old = v["request"]["object"].clone();
                    old["spec"]["serviceName"] = json!("web");
                    v["request"]["oldObject"] = old;
                    v["request"]["object"]["metadata"]["labels"] = labels.clone();
                    let spec = v["request"]["object"]["spec"].as_object_mut().unwrap();
                    match &incoming {
                        None => spec.remove("serviceName"),
                        Some(value) => spec.insert("serviceName".into(), value.clone()),
                    };
                });
            }
        }
        edit(&|v| v["request"]["operation"] = json!("DELETE"));
        edit(&|v| v["request"]["object"]["spec"]["serviceName"] = json!("Not_Valid"));
        edit(&|v| v["request"]["object"]["spec"]["serviceName"] = json!(""));
        edit(&|v| v["request"]["object"]["spec"]["serviceName"] = json!("pe\"ers"));
        edit(&|v| {
            v["request"]["object"]["metadata"]["name"] = json!("0db");
            v["request"]["name"] = json!("0db");
        });
        edit(&|v| v["request"]["subResource"] = json!("scale"));
        edit(&|v| v["request"]["subResource"] = json!(""));
        edit(&|v| v["request"]["kind"]["kind"] = json!("Deployment"));
        edit(&|v| v["request"]["kind"]["group"] = json!(""));
        edit(&|v| {
            let meta = v["request"]["object"]["metadata"].as_object_mut().unwrap();
            meta.remove("name");
            meta.insert("generateName".into(), json!("gen-"));
            v["request"]["name"] = json!("");
        });
        edit(&|v| {
            v["request"]["object"]["metadata"] = json!({});
            v["request"]["namespace"] = json!("prod");
        });
        edit(&|v| {
            let meta = v["request"]["object"]["metadata"].as_object_mut().unwrap();
            meta.remove("namespace");
            v["request"].as_object_mut().unwrap().remove("namespace");
        });
        edit(&|v| {
            v["request"]["object"]
                .as_object_mut()
                .unwrap()
                .remove("spec");
        });
        edit(&|v| {
            v["request"].as_object_mut().unwrap().remove("object");
        });
        edit(&|v| {
            v["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["ports"] =
                json!([{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}])
        });
        variants
    }

    /// The decision from the view of the body equals the one from kube-core's full parse.
    #[test]
    fn the_view_and_the_full_parse_decide_the_same() {
        let cfgs = [
            MutationConfig::default(),
            MutationConfig {
                template: crate::dns::ServiceNameTemplate::parse("{name}-{namespace}").unwrap(),
                ..Default::default()
            },
        ];
        for review in variants() {
            let full: AdmissionReview<StatefulSet> =
                serde_json::from_value(review.clone()).unwrap();
            let full: AdmissionRequest<StatefulSet> = full.try_into().unwrap();
            let bytes = serde_json::to_vec(&review).unwrap();
            let slim = SlimReview::parse(&bytes).unwrap();
            let req = slim.request.as_ref().unwrap();
            assert_eq!(req.uid.0, full.uid);
            assert_eq!(req.dry_run, full.dry_run);
            for cfg in &cfgs {
                assert_eq!(
                    mutate(&full, cfg),
                    mutate_request(&req.view(), cfg),
                    "{review}"
                );
            }
            // On a cache miss the Service is built from the full object read back out of the
            // same body.
            assert_eq!(statefulset_of(&bytes).unwrap(), full.object, "{review}");
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let body = br#"{"request":{"uid":"a\"b","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"resource":{},"userInfo":{},"operation":"CREATE","name":"web","object":{"metadata":{"name":"web"}}}}"#;
        let review = SlimReview::parse(body).unwrap();
        let req = review.request.unwrap();
        assert!(matches!(req.uid.0, Cow::Owned(ref s) if s == "a\"b"));
        assert!(matches!(req.name.0, Cow::Borrowed("web")));
        assert_eq!(req.object.unwrap().name(), Some("web"));
    }

    #[test]
    fn the_envelope_keeps_what_the_answer_needs() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"resource":{},"userInfo":{},"operation":"UPDATE","namespace":"ns","name":"x","dryRun":true,"oldObject":null}}"#;
        let review = SlimReview::parse(body).unwrap();
        assert_eq!(&*review.api_version, "admission.k8s.io/v1beta1");
        let req = review.request.unwrap();
        assert_eq!(req.operation, AdmissionOp::Update);
        assert_eq!(req.namespace.as_deref(), Some("ns"));
        assert_eq!(&*req.name, "x");
        assert!(req.dry_run && req.object.is_none());
        // serde reads structs from arrays too: `[]` is a review without a request (→ 400).
        for none in [&br#"{"request":null}"#[..], b"{}", b"[]"] {
            assert!(SlimReview::parse(none).unwrap().request.is_none());
        }
        for bad in [
            // no resource
            &br#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"userInfo":{},"operation":"CREATE"}}"#[..],
            br#"{"request":{"uid":1}}"#,
            // oldObject is read (its serviceName is restored on UPDATE), so it must be an object
            br#"{"request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"resource":{},"userInfo":{},"operation":"UPDATE","oldObject":7}}"#,
            br#"{"request":"#,
            b"7",
            b"{\"apiVersion\":\"\xff\"}",
        ] {
            assert!(SlimReview::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn what_is_read_must_have_its_type() {
        let review = |object: Value| {
            serde_json::to_vec(&json!({"request": {
                "uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "resource": {}, "userInfo": {}, "operation": "CREATE", "object": object
            }}))
            .unwrap()
        };
        for bad in [
            json!({"metadata": {"labels": {"a": 1}}}),
            json!({"metadata": {"labels": []}}),
            json!({"metadata": {"name": 5}}),
            json!({"spec": {"serviceName": ["x"]}}),
            json!({"spec": {"selector": {"matchLabels": {"app": null}}}}),
            json!({"spec": {"selector": {"matchExpressions": {}}}}),
            json!([1]),
        ] {
            assert!(SlimReview::parse(&review(bad.clone())).is_err(), "{bad}");
        }
        // Skipped parts need only be well-formed JSON.
        let ok = review(json!({"spec": {"template": {"spec": {"containers": 7}}}}));
        assert!(SlimReview::parse(&ok).is_ok());
        assert!(statefulset_of(&ok).is_err(), "the full read is strict");
    }

    #[test]
    fn nulls_and_missing_parts_are_tolerated() {
        let text = json!({
            "metadata": {"name": "x", "labels": null, "namespace": null},
            "spec": {"selector": null, "serviceName": null}
        })
        .to_string();
        let sts: SlimStatefulSet = serde_json::from_str(&text).unwrap();
        assert_eq!(sts.name(), Some("x"));
        assert_eq!(sts.namespace(), None);
        assert!(sts.has_spec() && !sts.opted_out());
        assert_eq!(sts.selector_shape(), SelectorShape::Empty);
        let empty: SlimStatefulSet = serde_json::from_str("{}").unwrap();
        assert!(!empty.has_spec());
        assert_eq!(statefulset_of(br#"{"request":{}}"#).unwrap(), None);
    }
}
