//! The admission decision for a StatefulSet: the JSON Patch that injects `spec.serviceName`,
//! the warnings for the user, and the headless Service that should exist.
//!
//! Pure: the webhook parses the AdmissionReview, calls [`mutate`], then does the side effect
//! (creating the Service) and writes the response.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube_core::admission::{AdmissionRequest, Operation};

use crate::dns::{ServiceNameTemplate, is_dns1035_label};
use crate::headless::{
    HeadlessConfig, NoService, check_buildable, desired_service_named, is_opted_out,
};

/// Webhook settings that shape the mutation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutationConfig {
    pub template: ServiceNameTemplate,
    pub headless: HeadlessConfig,
}

/// The outcome of [`mutate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// Empty when nothing is to be changed (then the response carries no patch).
    pub patch: Patch,
    /// Messages for the user (shown by kubectl as `Warning: …`).
    pub warnings: Vec<String>,
    /// The Service that should exist, or why there is none.
    pub service: ServicePlan,
}

/// Whether a Service should exist after this request.
#[derive(Clone, Debug, PartialEq)]
pub enum ServicePlan {
    /// Make sure this Service exists (create it if missing; never change an existing one).
    Ensure(ServiceTarget),
    /// No Service, and why.
    Skip(Skip),
}

/// The headless Service a StatefulSet should have: where, and for which StatefulSet.
///
/// The object itself is built by [`ServiceTarget::desired_service`] only when it is needed:
/// the webhook's cache usually holds the Service already, and building it (labels, selector,
/// ports) would be a good part of an admission request's cost for nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTarget {
    pub namespace: String,
    /// The Service's name (the StatefulSet's `serviceName`).
    pub name: String,
    /// The StatefulSet it is for.
    pub statefulset: String,
}

impl ServiceTarget {
    /// The Service to create, built from the StatefulSet of the same request. [`mutate`] has
    /// checked it can be built, so with that StatefulSet this is always Ok.
    pub fn desired_service(
        &self,
        sts: &StatefulSet,
        cfg: &HeadlessConfig,
    ) -> Result<Service, NoService> {
        desired_service_named(&self.namespace, &self.statefulset, sts, &self.name, cfg)
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

impl Mutation {
    fn skip(skip: Skip) -> Self {
        Mutation {
            patch: Patch(Vec::new()),
            warnings: Vec::new(),
            service: ServicePlan::Skip(skip),
        }
    }
}

/// True for `apps/v1 StatefulSet` requests on the main resource (not `status`/`scale`).
pub fn is_statefulset_request<T: kube_core::Resource>(req: &AdmissionRequest<T>) -> bool {
    req.kind.group == "apps"
        && req.kind.kind == "StatefulSet"
        && req.sub_resource.as_deref().is_none_or(str::is_empty)
}

/// Anything holding a StatefulSet: the full object, or a slimmer parse of it (the webhook
/// reads only the fields [`mutate`] needs, for speed).
pub trait AsStatefulSet {
    fn as_statefulset(&self) -> &StatefulSet;
}

impl AsStatefulSet for StatefulSet {
    fn as_statefulset(&self) -> &StatefulSet {
        self
    }
}

/// Decides the patch, warnings and Service for one admission request.
pub fn mutate<T>(req: &AdmissionRequest<T>, cfg: &MutationConfig) -> Mutation
where
    T: kube_core::Resource + AsStatefulSet,
{
    if !is_statefulset_request(req) {
        return Mutation::skip(Skip::NotAStatefulSet);
    }
    let creating = match req.operation {
        Operation::Create => true,
        Operation::Update => false,
        Operation::Delete | Operation::Connect => return Mutation::skip(Skip::Operation),
    };
    let Some(sts) = req.object.as_ref().map(AsStatefulSet::as_statefulset) else {
        return Mutation::skip(Skip::NoObject);
    };
    if is_opted_out(sts) {
        return Mutation::skip(Skip::Model(NoService::OptedOut));
    }
    // At CREATE the object may lack metadata.namespace/name; the request always has them.
    let namespace = sts
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .or(req.namespace.as_deref())
        .unwrap_or_default();
    let name = sts
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(req.name.as_str());

    let mut out = Mutation::skip(Skip::NoServiceName);
    let existing = sts
        .spec
        .as_ref()
        .and_then(|s| s.service_name.as_deref())
        .filter(|s| !s.is_empty());
    let service_name = match existing {
        Some(s) => s.to_owned(),
        // serviceName is immutable: on UPDATE, a StatefulSet without one keeps having none.
        None if !creating => return out,
        // Without a spec there is nowhere to add the field (the apiserver rejects it anyway).
        None if sts.spec.is_none() => return out,
        None => match cfg.template.render(name, namespace) {
            Ok(rendered) => {
                out.warnings.extend(rendered.warning);
                out.patch.0.push(PatchOperation::Add(AddOperation {
                    path: PointerBuf::from_tokens(["spec", "serviceName"]),
                    value: serde_json::Value::String(rendered.name.clone()),
                }));
                rendered.name
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
            namespace: namespace.to_owned(),
            name: service_name,
            statefulset: name.to_owned(),
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

    fn patch_json(m: &Mutation) -> Value {
        serde_json::to_value(&m.patch).unwrap()
    }

    /// Runs [`mutate`] and builds the Service it asks for, as the webhook does on a cache miss.
    fn mutate_and_build(
        req: &AdmissionRequest<StatefulSet>,
        cfg: &MutationConfig,
    ) -> (Mutation, Service) {
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
        let (m, service) = mutate_and_build(
            &review("CREATE", sts_json("web")),
            &MutationConfig::default(),
        );
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
        let m = mutate(&review("CREATE", obj.clone()), &MutationConfig::default());
        json_patch::patch(&mut obj, &m.patch).unwrap();
        assert_eq!(obj["spec"]["serviceName"], "web");
        // an empty serviceName is replaced by the same `add`
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("");
        let m = mutate(&review("CREATE", obj.clone()), &MutationConfig::default());
        json_patch::patch(&mut obj, &m.patch).unwrap();
        assert_eq!(obj["spec"]["serviceName"], "web");
    }

    #[test]
    fn template_is_used() {
        let cfg = MutationConfig {
            template: ServiceNameTemplate::parse("{name}-headless").unwrap(),
            ..Default::default()
        };
        let (m, service) = mutate_and_build(&review("CREATE", sts_json("db")), &cfg);
        assert_eq!(patch_json(&m)[0]["value"], "db-headless");
        assert_eq!(service.metadata.name.as_deref(), Some("db-headless"));
        assert_eq!(
            service.metadata.annotations.as_ref().unwrap()[STATEFULSET_ANNOTATION],
            "db"
        );
    }

    #[test]
    fn name_starting_with_digit_is_derived_with_warning() {
        let (m, service) = mutate_and_build(
            &review("CREATE", sts_json("0db")),
            &MutationConfig::default(),
        );
        assert_eq!(patch_json(&m)[0]["value"], "s-0db");
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("s-0db"), "{:?}", m.warnings);
        assert_eq!(service.metadata.name.as_deref(), Some("s-0db"));
    }

    #[test]
    fn existing_service_name_is_kept_and_ensured() {
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("web-peers");
        let (m, service) = mutate_and_build(&review("CREATE", obj), &MutationConfig::default());
        assert!(m.patch.0.is_empty());
        assert_eq!(service.metadata.name.as_deref(), Some("web-peers"));
    }

    #[test]
    fn invalid_user_service_name_gets_a_warning_and_no_service() {
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("Web_Peers");
        let m = mutate(&review("CREATE", obj), &MutationConfig::default());
        assert!(m.patch.0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::InvalidServiceName));
        assert!(m.warnings[0].contains("Web_Peers"));
    }

    #[test]
    fn update_never_patches() {
        let m = mutate(
            &review("UPDATE", sts_json("web")),
            &MutationConfig::default(),
        );
        assert!(m.patch.0.is_empty());
        assert_eq!(m.service, ServicePlan::Skip(Skip::NoServiceName));
        let mut obj = sts_json("web");
        obj["spec"]["serviceName"] = json!("web");
        let (m, service) = mutate_and_build(&review("UPDATE", obj), &MutationConfig::default());
        assert!(m.patch.0.is_empty());
        assert_eq!(service.metadata.name.as_deref(), Some("web"));
    }

    #[test]
    fn opt_out_means_nothing() {
        let mut obj = sts_json("web");
        obj["metadata"]["labels"] = json!({ OPT_OUT_LABEL: "false" });
        let m = mutate(&review("CREATE", obj), &MutationConfig::default());
        assert!(m.patch.0.is_empty());
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
        let m = mutate(&review("CREATE", obj), &MutationConfig::default());
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
        assert!(m.patch.0.is_empty());
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
        let m = mutate(
            &review("DELETE", sts_json("web")),
            &MutationConfig::default(),
        );
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
        assert!(m.patch.0.is_empty());
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
        let m = mutate(
            &review("CREATE", sts_json("web")),
            &MutationConfig::default(),
        );
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
