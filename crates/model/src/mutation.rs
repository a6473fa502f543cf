//! The admission decision for a StatefulSet: the JSON Patch that injects `spec.serviceName`,
//! the warnings for the user, and the headless Service that should exist.
//!
//! Pure: the webhook parses the AdmissionReview, calls [`mutate`] (or [`mutate_request`] with
//! its own borrowed view of the request), then does the side effect (creating the Service) and
//! writes the response.

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube_core::admission::{AdmissionRequest, Operation};

use crate::dns::{ServiceNameTemplate, is_dns1035_label};
use crate::headless::{
    HeadlessConfig, NoService, StatefulSetFacts, check_buildable, desired_service_named,
};

/// Webhook settings that shape the mutation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutationConfig {
    pub template: ServiceNameTemplate,
    pub headless: HeadlessConfig,
}

/// The outcome of [`mutate`], borrowing names from the request it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation<'a> {
    /// The `serviceName` to set at `/spec/serviceName`; `None` when nothing is to be changed
    /// (then the response carries no patch). [`Mutation::patch`] is the JSON Patch that does it.
    ///
    /// - CREATE without one: the name derived from the template ([`ServiceNameTemplate`]).
    /// - UPDATE whose object has none (absent or `""`) while the stored object has one: the
    ///   stored value ([`ServiceNameSource::Restored`]). `serviceName` is immutable
    ///   (`ValidateStatefulSetUpdate` in kubernetes `pkg/apis/apps/validation`), so without this
    ///   every re-apply of the user's original manifest, every `kubectl replace` and every
    ///   operator's Update from its own desired object would be refused once the webhook has
    ///   injected the field.
    pub add_service_name: Option<String>,
    /// Where [`Mutation::add_service_name`] comes from (`None` when there is nothing to set).
    pub source: Option<ServiceNameSource>,
    /// Messages for the user (shown by kubectl as `Warning: …`).
    pub warnings: Vec<String>,
    /// The Service that should exist, or why there is none.
    pub service: ServicePlan<'a>,
}

/// JSON Pointer of the field the patch adds.
pub const SERVICE_NAME_PATH: &str = "/spec/serviceName";

impl Mutation<'_> {
    fn skip(skip: Skip) -> Self {
        Mutation {
            add_service_name: None,
            source: None,
            warnings: Vec::new(),
            service: ServicePlan::Skip(skip),
        }
    }

    /// The JSON Patch for the response: one `add` of [`SERVICE_NAME_PATH`], or empty.
    pub fn patch(&self) -> Patch {
        Patch(
            self.add_service_name
                .iter()
                .map(|name| {
                    PatchOperation::Add(AddOperation {
                        path: PointerBuf::from_tokens(["spec", "serviceName"]),
                        value: serde_json::Value::String(name.clone()),
                    })
                })
                .collect(),
        )
    }
}

/// Why the webhook sets `spec.serviceName`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceNameSource {
    /// CREATE without a `serviceName`: derived from the StatefulSet's name.
    Injected,
    /// UPDATE without a `serviceName`: the stored object's value, put back (the field is
    /// immutable, so the update would otherwise be refused).
    Restored,
}

/// Whether a Service should exist after this request.
#[derive(Clone, Debug, PartialEq)]
pub enum ServicePlan<'a> {
    /// Make sure this Service exists (create it if missing; never change an existing one).
    Ensure(ServiceTarget<'a>),
    /// No Service, and why.
    Skip(Skip),
}

/// The headless Service a StatefulSet should have: where, and for which StatefulSet.
///
/// The object itself is built by [`ServiceTarget::desired_service`] only when it is needed:
/// the webhook's cache usually holds the Service already, and building it (labels, selector,
/// ports) would be a good part of an admission request's cost for nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTarget<'a> {
    pub namespace: &'a str,
    /// The Service's name (the StatefulSet's `serviceName`, given or added).
    pub name: Cow<'a, str>,
    /// The StatefulSet it is for.
    pub statefulset: &'a str,
}

impl ServiceTarget<'_> {
    /// The Service to create, built from the StatefulSet of the same request. [`mutate`] has
    /// checked it can be built, so with that StatefulSet this is always Ok.
    pub fn desired_service(
        &self,
        sts: &StatefulSet,
        cfg: &HeadlessConfig,
    ) -> Result<Service, NoService> {
        desired_service_named(self.namespace, self.statefulset, sts, &self.name, cfg)
    }
}

/// Why no Service is wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not an `apps/v1` StatefulSet (or a subresource such as `scale`).
    NotAStatefulSet,
    /// DELETE or CONNECT.
    Operation,
    /// The request carried no object.
    NoObject,
    /// The StatefulSet has no `serviceName` and it cannot be added (UPDATE, or no name yet).
    NoServiceName,
    /// `serviceName` is not a valid Service name.
    InvalidServiceName,
    /// From the StatefulSet itself: opt-out, matchExpressions, …
    Model(NoService),
}

impl Skip {
    /// Short snake_case word for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::NotAStatefulSet => "not_a_statefulset",
            Skip::Operation => "operation",
            Skip::NoObject => "no_object",
            Skip::NoServiceName => "no_service_name",
            Skip::InvalidServiceName => "invalid_service_name",
            Skip::Model(n) => n.reason(),
        }
    }
}

/// The parts of an admission request that [`mutate_request`] reads, borrowed from wherever the
/// request was parsed into: a kube-core [`AdmissionRequest`] ([`RequestView::of`]) or the
/// webhook's own view of the request body.
#[derive(Clone, Debug)]
pub struct RequestView<'a, S: ?Sized> {
    /// `request.kind.group` and `request.kind.kind`.
    pub group: &'a str,
    pub kind: &'a str,
    pub sub_resource: Option<&'a str>,
    pub operation: Operation,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub object: Option<&'a S>,
    /// `request.oldObject`: the stored StatefulSet, on UPDATE.
    pub old_object: Option<&'a S>,
}

impl<'a, T: kube_core::Resource> RequestView<'a, T> {
    /// The view of a kube-core admission request.
    pub fn of(req: &'a AdmissionRequest<T>) -> Self {
        RequestView {
            group: &req.kind.group,
            kind: &req.kind.kind,
            sub_resource: req.sub_resource.as_deref(),
            operation: req.operation.clone(),
            namespace: req.namespace.as_deref(),
            name: &req.name,
            object: req.object.as_ref(),
            old_object: req.old_object.as_ref(),
        }
    }
}

impl<S: ?Sized> RequestView<'_, S> {
    /// True for `apps/v1 StatefulSet` requests on the main resource (not `status`/`scale`).
    pub fn is_statefulset(&self) -> bool {
        self.group == "apps"
            && self.kind == "StatefulSet"
            && self.sub_resource.is_none_or(str::is_empty)
    }
}

/// True for `apps/v1 StatefulSet` requests on the main resource (not `status`/`scale`).
pub fn is_statefulset_request<T: kube_core::Resource>(req: &AdmissionRequest<T>) -> bool {
    RequestView::of(req).is_statefulset()
}

/// Decides the patch, warnings and Service for one admission request.
pub fn mutate<'a, T>(req: &'a AdmissionRequest<T>, cfg: &MutationConfig) -> Mutation<'a>
where
    T: kube_core::Resource + StatefulSetFacts,
{
    mutate_request(&RequestView::of(req), cfg)
}

/// [`mutate`] on a borrowed view of the request.
pub fn mutate_request<'a, S>(req: &RequestView<'a, S>, cfg: &MutationConfig) -> Mutation<'a>
where
    S: StatefulSetFacts + ?Sized,
{
    if !req.is_statefulset() {
        return Mutation::skip(Skip::NotAStatefulSet);
    }
    let creating = match req.operation {
        Operation::Create => true,
        Operation::Update => false,
        Operation::Delete | Operation::Connect => return Mutation::skip(Skip::Operation),
    };
    let Some(sts) = req.object else {
        return Mutation::skip(Skip::NoObject);
    };
    // Before the opt-out: putting back a stored immutable value changes nothing that is
    // stored, it only keeps the update from being refused, so it is done for every StatefulSet.
    let restored = if creating {
        None
    } else {
        restore_service_name(sts, req.old_object)
    };
    if sts.opted_out() {
        let mut out = Mutation::skip(Skip::Model(NoService::OptedOut));
        if let Some(restored) = restored {
            out.set_restored(sts, restored);
        }
        return out;
    }
    // At CREATE the object may lack metadata.namespace/name; the request always has them.
    let namespace = sts
        .namespace()
        .filter(|n| !n.is_empty())
        .or(req.namespace)
        .unwrap_or_default();
    let name = sts.name().filter(|n| !n.is_empty()).unwrap_or(req.name);

    let mut out = Mutation::skip(Skip::NoServiceName);
    let service_name: Cow<'a, str> = match sts.service_name().filter(|s| !s.is_empty()) {
        Some(s) => Cow::Borrowed(s),
        None if !creating => match restored {
            Some(stored) => {
                out.set_restored(sts, stored);
                Cow::Borrowed(stored)
            }
            // serviceName is immutable: a StatefulSet stored without one keeps having none.
            None => return out,
        },
        // Without a spec there is nowhere to add the field (the apiserver rejects it anyway).
        None if !sts.has_spec() => return out,
        None => match cfg.template.render(name, namespace) {
            Ok(rendered) => {
                out.warnings.extend(rendered.warning);
                out.add_service_name = Some(rendered.name.clone());
                out.source = Some(ServiceNameSource::Injected);
                Cow::Owned(rendered.name)
            }
            Err(err) => {
                out.warnings.push(format!("sts-webhook: {err}"));
                return out;
            }
        },
    };
    if !is_dns1035_label(&service_name) {
        out.warnings.push(format!(
            "spec.serviceName {service_name:?} is not a valid Service name (DNS-1035 label), so no headless Service was created; pods get no stable DNS names"
        ));
        out.service = ServicePlan::Skip(Skip::InvalidServiceName);
        return out;
    }
    out.service = match check_buildable(namespace, name, sts) {
        Ok(()) => ServicePlan::Ensure(ServiceTarget {
            namespace,
            name: service_name,
            statefulset: name,
        }),
        Err(reason) => {
            out.warnings.push(format!(
                "no headless Service {namespace}/{service_name} was created: {reason}"
            ));
            ServicePlan::Skip(Skip::Model(reason))
        }
    };
    out
}

/// On UPDATE: the stored `serviceName` to put back when the incoming object has none (absent
/// or `""`) and the stored one is set. `None` when there is nothing to restore, including when
/// the incoming object sets a *different* value: that is the user's change, and the apiserver
/// refuses it with its own message.
fn restore_service_name<'a, S>(sts: &'a S, old: Option<&'a S>) -> Option<&'a str>
where
    S: StatefulSetFacts + ?Sized,
{
    if sts.service_name().is_some_and(|s| !s.is_empty()) || !sts.has_spec() {
        return None;
    }
    old?.service_name().filter(|s| !s.is_empty())
}

impl Mutation<'_> {
    /// Records the restore of `stored` and the warning that tells the user about it.
    fn set_restored<S: StatefulSetFacts + ?Sized>(&mut self, sts: &S, stored: &str) {
        let sent = match sts.service_name() {
            Some(_) => "an empty spec.serviceName",
            None => "no spec.serviceName",
        };
        self.warnings.push(format!(
            "sts-webhook kept spec.serviceName {stored:?}: this update sent {sent}, and the field cannot change after creation; add `serviceName: {stored}` to your manifest to make this explicit"
        ));
        self.add_service_name = Some(stored.to_owned());
        self.source = Some(ServiceNameSource::Restored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headless::{MANAGED_BY_LABEL, OPT_OUT_LABEL, STATEFULSET_ANNOTATION};
    use kube_core::admission::AdmissionReview;
    use serde_json::{Value, json};

    fn sts_json(name: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "nginx", "image": "nginx",
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
                    }]}
                }
            }
        })
    }

    fn review(op: &str, object: Value) -> AdmissionRequest<StatefulSet> {
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let body = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "resource": {"group": "apps", "version": "v1", "resource": "statefulsets"},
                "name": name,
                "namespace": "default",
                "operation": op,
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": null,
                "dryRun": false
            }
        });
        let review: AdmissionReview<StatefulSet> = serde_json::from_value(body).unwrap();
        review.try_into().unwrap()
    }

    /// An UPDATE review: `object` is what the client sent, `old` what is stored.
    fn update(object: Value, old: Value) -> AdmissionRequest<StatefulSet> {
        let mut req = review("UPDATE", object);
        req.old_object = Some(serde_json::from_value(old).unwrap());
        req
    }

    fn patch_json(m: &Mutation) -> Value {
        serde_json::to_value(m.patch()).unwrap()
    }

    /// Runs [`mutate`] and builds the Service it asks for, as the webhook does on a cache miss.
    fn mutate_and_build<'a>(
        req: &'a AdmissionRequest<StatefulSet>,
        cfg: &MutationConfig,
    ) -> (Mutation<'a>, Service) {
        let m = mutate(req, cfg);
        let service = match &m.service {
            ServicePlan::Ensure(target) => target
                .desired_service(req.object.as_ref().unwrap(), &cfg.headless)
                .unwrap(),
            other => panic!("expected a Service, got {other:?}"),
        };
        (m, service)
    }

    #[test]
    fn create_without_service_name_is_patched() {
        let req = review("CREATE", sts_json("web"));
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert_eq!(
            patch_json(&m),
            json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
        );
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let svc = &service;
        assert_eq!(svc.metadata.name.as_deref(), Some("web"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            svc.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
            "sts-webhook"
        );
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 80);
    }

    #[test]
    fn the_patch_applies_to_the_object() {
        let mut obj = sts_json("web");
        let req = review("CREATE", obj.clone());
        let m = mutate(&req, &MutationConfig::default());
        json_patch::patch(&mut obj, &m.patch()).unwrap();
        assert_eq!(obj["spec"]["serviceName"], "web");
        // an empty serviceName is replaced by the same `add`
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("");
        let req = review("CREATE", obj.clone());
        let m = mutate(&req, &MutationConfig::default());
        json_patch::patch(&mut obj, &m.patch()).unwrap();
        assert_eq!(obj["spec"]["serviceName"], "web");
    }

    #[test]
    fn template_is_used() {
        let cfg = MutationConfig {
            template: ServiceNameTemplate::parse("{name}-headless").unwrap(),
            ..Default::default()
        };
        let req = review("CREATE", sts_json("db"));
        let (m, service) = mutate_and_build(&req, &cfg);
        assert_eq!(patch_json(&m)[0]["value"], "db-headless");
        assert_eq!(service.metadata.name.as_deref(), Some("db-headless"));
        assert_eq!(
            service.metadata.annotations.as_ref().unwrap()[STATEFULSET_ANNOTATION],
            "db"
        );
    }

    #[test]
    fn name_starting_with_digit_is_derived_with_warning() {
        let req = review("CREATE", sts_json("0db"));
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert_eq!(patch_json(&m)[0]["value"], "s-0db");
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("s-0db"), "{:?}", m.warnings);
        assert_eq!(service.metadata.name.as_deref(), Some("s-0db"));
    }

    #[test]
    fn existing_service_name_is_kept_and_ensured() {
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("web-peers");
        let req = review("CREATE", obj);
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(service.metadata.name.as_deref(), Some("web-peers"));
    }

    #[test]
    fn invalid_user_service_name_gets_a_warning_and_no_service() {
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("Web_Peers");
        let req = review("CREATE", obj);
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::InvalidServiceName));
        assert!(m.warnings[0].contains("Web_Peers"));
    }

    #[test]
    fn update_without_a_stored_name_never_patches() {
        let req = review("UPDATE", sts_json("web"));
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::NoServiceName));
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("web");
        let req = review("UPDATE", obj);
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(service.metadata.name.as_deref(), Some("web"));
    }

    /// The stored object has `serviceName: web` (injected at CREATE); the client sends its
    /// original manifest back, with `""` or without the field (kubectl apply, replace, SSA, an
    /// operator's Update).
    #[test]
    fn update_without_service_name_restores_the_stored_one() {
        let mut stored = sts_json("web");
        stored["spec"]["serviceName"] = json!("web");
        let mut empty = sts_json("web");
        empty["spec"]["serviceName"] = json!("");
        for (incoming, sent) in [
            (empty, "an empty spec.serviceName"),
            (sts_json("web"), "no spec.serviceName"),
        ] {
            let req = update(incoming.clone(), stored.clone());
            let (m, service) = mutate_and_build(&req, &MutationConfig::default());
            assert_eq!(m.add_service_name.as_deref(), Some("web"));
            assert_eq!(m.source, Some(ServiceNameSource::Restored));
            assert_eq!(
                patch_json(&m),
                json!([{"op": "add", "path": "/spec/serviceName", "value": "web"}])
            );
            // The patch really restores the value in both shapes ("add" replaces a member).
            let mut patched = incoming;
            json_patch::patch(&mut patched, &m.patch()).unwrap();
            assert_eq!(patched["spec"]["serviceName"], json!("web"));
            assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
            assert!(m.warnings[0].contains("kept spec.serviceName \"web\""));
            assert!(m.warnings[0].contains(sent), "{}", m.warnings[0]);
            // The Service is still ensured, as for any UPDATE with a serviceName.
            assert_eq!(service.metadata.name.as_deref(), Some("web"));
        }
    }

    #[test]
    fn update_restores_only_what_is_missing() {
        let mut stored = sts_json("web");
        stored["spec"]["serviceName"] = json!("web");
        // A different value is the user's change: the apiserver refuses it with its own message.
        let mut other = sts_json("web");
        other["spec"]["serviceName"] = json!("peers");
        let req = update(other, stored.clone());
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(m.source, None);
        // Stored without one (created while the webhook was down): nothing to restore.
        let req = update(sts_json("web"), sts_json("web"));
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert!(m.warnings.is_empty());
        // Opted out: no Service, but the stored value still comes back.
        let mut opted = sts_json("web");
        opted["metadata"]["labels"] = json!({ OPT_OUT_LABEL: "false" });
        let req = update(opted, stored);
        let m = mutate(&req, &MutationConfig::default());
        assert_eq!(m.add_service_name.as_deref(), Some("web"));
        assert_eq!(
            m.service,
            ServicePlan::Skip(Skip::Model(NoService::OptedOut))
        );
    }

    #[test]
    fn opt_out_means_nothing() {
        let mut obj = sts_json("web");
        obj["metadata"]["labels"] = json!({ OPT_OUT_LABEL: "false" });
        let req = review("CREATE", obj);
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert!(m.warnings.is_empty());
        assert_eq!(
            m.service,
            ServicePlan::Skip(Skip::Model(NoService::OptedOut))
        );
    }

    #[test]
    fn match_expressions_patch_but_no_service() {
        let mut obj = sts_json("web");
        obj["spec"]["selector"] = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]
        });
        let req = review("CREATE", obj);
        let m = mutate(&req, &MutationConfig::default());
        // serviceName is immutable, so it is still set: the user can add the Service later.
        assert_eq!(patch_json(&m)[0]["value"], "web");
        assert_eq!(
            m.service,
            ServicePlan::Skip(Skip::Model(NoService::MatchExpressions))
        );
        assert_eq!(m.warnings.len(), 1);
        assert!(
            m.warnings[0].contains("matchExpressions"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn other_kinds_and_subresources_are_ignored() {
        let mut req = review("CREATE", sts_json("web"));
        req.kind.kind = "Deployment".into();
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::NotAStatefulSet));
        let mut req = review("UPDATE", sts_json("web"));
        req.sub_resource = Some("scale".into());
        assert_eq!(
            mutate(&req, &MutationConfig::default()).service,
            ServicePlan::Skip(Skip::NotAStatefulSet)
        );
    }

    #[test]
    fn delete_and_missing_object() {
        let req = review("DELETE", sts_json("web"));
        let m = mutate(&req, &MutationConfig::default());
        assert_eq!(m.service, ServicePlan::Skip(Skip::Operation));
        let mut req = review("CREATE", sts_json("web"));
        req.object = None;
        assert_eq!(
            mutate(&req, &MutationConfig::default()).service,
            ServicePlan::Skip(Skip::NoObject)
        );
    }

    #[test]
    fn generate_name_without_name_warns() {
        let mut obj = sts_json("x");
        obj["metadata"] = json!({"generateName": "web-", "namespace": "default"});
        let mut req = review("CREATE", obj);
        req.name = String::new();
        let m = mutate(&req, &MutationConfig::default());
        assert!(m.patch().0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::NoServiceName));
        assert!(m.warnings[0].contains("generateName"), "{:?}", m.warnings);
    }

    #[test]
    fn namespace_and_name_come_from_the_request_when_the_object_lacks_them() {
        let mut obj = sts_json("web");
        obj["metadata"] = json!({});
        let mut req = review("CREATE", obj);
        req.name = "web".into();
        req.namespace = Some("prod".into());
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert_eq!(patch_json(&m)[0]["value"], "web");
        let svc = &service;
        assert_eq!(svc.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(
            svc.metadata.annotations.as_ref().unwrap()[STATEFULSET_ANNOTATION],
            "web"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        // The patch path is built from tokens, so '/' and '~' in a token cannot break it.
        let p = PointerBuf::from_tokens(["metadata", "labels", "a/b~c"]);
        assert_eq!(p.as_str(), "/metadata/labels/a~1b~0c");
        let req = review("CREATE", sts_json("web"));
        let m = mutate(&req, &MutationConfig::default());
        assert_eq!(patch_json(&m)[0]["path"], "/spec/serviceName");
    }

    #[test]
    fn real_v1_20_review_shape_parses_and_mutates() {
        // Shape of what a v1.20 apiserver sends (uid empty at CREATE, creationTimestamp null).
        let body = json!({
            "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": "460e5208", "kind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "resource": {"group": "apps", "version": "v1", "resource": "statefulsets"},
                "requestKind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "requestResource": {"group": "apps", "version": "v1", "resource": "statefulsets"},
                "name": "web2", "namespace": "default", "operation": "CREATE",
                "userInfo": {"username": "admin", "groups": ["system:masters"]},
                "object": {
                    "kind": "StatefulSet", "apiVersion": "apps/v1",
                    "metadata": {"name": "web2", "namespace": "default", "creationTimestamp": null},
                    "spec": {
                        "replicas": 3, "selector": {"matchLabels": {"app": "web2"}},
                        "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web2"}},
                            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]}},
                        "serviceName": "",
                        "podManagementPolicy": "Parallel",
                        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                        "revisionHistoryLimit": 10
                    },
                    "status": {"replicas": 0}
                },
                "oldObject": null, "dryRun": false,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
            }
        });
        let review: AdmissionReview<StatefulSet> = serde_json::from_value(body).unwrap();
        let req: AdmissionRequest<StatefulSet> = review.try_into().unwrap();
        let (m, service) = mutate_and_build(&req, &MutationConfig::default());
        assert_eq!(patch_json(&m)[0]["value"], "web2");
        assert_eq!(service.metadata.name.as_deref(), Some("web2"));
    }
}
