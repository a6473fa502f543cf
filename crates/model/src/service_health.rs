//! Is the StatefulSet's governing Service there, headless, and selecting its pods?
//! Without that, the pods' stable DNS names do not resolve.

use std::borrow::Borrow;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use serde::{Deserialize, Serialize};

use crate::headless::ServiceFacts;
use crate::objects::service_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceHealth {
    /// A headless Service of that name selects the pod template's labels.
    Ok,
    /// `spec.serviceName` names a Service that does not exist in the namespace.
    Missing,
    /// The Service exists but has a cluster IP: no per-pod DNS records.
    NotHeadless,
    /// The Service has no selector, or its selector does not match the pod template's labels.
    SelectorMismatch,
    /// `spec.serviceName` is absent or empty.
    NotSet,
}

impl ServiceHealth {
    /// Lower-case words for tables.
    pub fn label(self) -> &'static str {
        match self {
            ServiceHealth::Ok => "ok",
            ServiceHealth::Missing => "missing",
            ServiceHealth::NotHeadless => "not headless",
            ServiceHealth::SelectorMismatch => "selector mismatch",
            ServiceHealth::NotSet => "not set",
        }
    }
}

/// Health of the governing Service, looked up by name among `services` of the StatefulSet's
/// namespace (Services of other namespaces are ignored). `services` may be the Services or
/// references to them (e.g. the one [`crate::index::ByName::get_slice`] found).
pub fn service_health<S: Borrow<Service>>(sts: &StatefulSet, services: &[S]) -> ServiceHealth {
    let Some(name) = service_name(sts) else {
        return ServiceHealth::NotSet;
    };
    let namespace = sts.metadata.namespace.as_deref();
    let Some(service) = services.iter().map(Borrow::borrow).find(|s| {
        s.metadata.name.as_deref() == Some(name) && s.metadata.namespace.as_deref() == namespace
    }) else {
        return ServiceHealth::Missing;
    };
    judge_service(service, sts)
}

/// Whether an existing Service gives the StatefulSet's pods their DNS names: headless, with a
/// selector that matches the pod template's labels. Never [`ServiceHealth::Missing`] or
/// [`ServiceHealth::NotSet`]. The Service is a full one or the webhook cache's
/// ([`ServiceFacts`]).
pub fn judge_service<S: ServiceFacts + ?Sized>(service: &S, sts: &StatefulSet) -> ServiceHealth {
    if !service.is_headless() {
        return ServiceHealth::NotHeadless;
    }
    // Without a selector the endpoints controller publishes nothing for the pods.
    if !service.has_selector() {
        return ServiceHealth::SelectorMismatch;
    }
    let template_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let selects = service
        .selector()
        .all(|(k, v)| template_labels.and_then(|l| l.get(k)).map(String::as_str) == Some(v));
    if selects {
        ServiceHealth::Ok
    } else {
        ServiceHealth::SelectorMismatch
    }
}

/// Another Service name for a StatefulSet whose derived name is taken by a Service that would
/// not give its pods DNS names: the first of `<name>-2` … `<name>-9` (cut to stay a DNS-1035
/// label of at most 63 characters) that `existing` does not know, or whose Service serves this
/// StatefulSet. `None` when all are taken.
///
/// `serviceName` is immutable, so a name that points at a Service selecting other pods could
/// never be corrected; a fresh name gets a fresh headless Service.
pub fn alternative_service_name<S, F>(taken: &str, sts: &StatefulSet, existing: F) -> Option<String>
where
    S: ServiceFacts + ?Sized,
    F: Fn(&str) -> Option<std::sync::Arc<S>>,
{
    (2..=9).find_map(|n| {
        let suffix = format!("-{n}");
        let keep = taken.len().min(63 - suffix.len());
        let stem = taken[..keep].trim_end_matches('-');
        let candidate = format!("{stem}{suffix}");
        match existing(&candidate) {
            None => Some(candidate),
            Some(svc) if judge_service(&*svc, sts) == ServiceHealth::Ok => Some(candidate),
            Some(_) => None,
        }
    })
}

/// The pod hostnames a Service's endpoints publish: what the cluster DNS serves as
/// `<hostname>.<service>.<ns>.svc.<domain>`. The endpoint controllers list a pod under its
/// `hostname` only when its `subdomain` names this Service, so membership here covers that rule
/// too. Read from EndpointSlices (`discovery.k8s.io/v1`, 1.21+) or, on older servers, from the
/// Endpoints object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedHostnames {
    /// Hostnames of ready endpoints (with `publishNotReadyAddresses`, every endpoint is ready):
    /// these have DNS records.
    pub ready: std::collections::BTreeSet<String>,
    /// Hostnames listed as not ready: no DNS record.
    pub not_ready: std::collections::BTreeSet<String>,
    /// `EndpointSlice` or `Endpoints`.
    pub source: &'static str,
}

impl PublishedHostnames {
    /// From the Service's EndpointSlices (label `kubernetes.io/service-name`). An endpoint
    /// whose `conditions.ready` is absent counts as ready, as the API documents.
    pub fn from_endpoint_slices(slices: &[k8s_openapi::api::discovery::v1::EndpointSlice]) -> Self {
        let mut out = PublishedHostnames {
            source: "EndpointSlice",
            ..Default::default()
        };
        for endpoint in slices.iter().flat_map(|s| &s.endpoints) {
            let Some(hostname) = endpoint.hostname.clone() else {
                continue;
            };
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if ready {
                out.ready.insert(hostname);
            } else {
                out.not_ready.insert(hostname);
            }
        }
        out
    }

    /// From the Service's Endpoints object: `addresses` are published, `notReadyAddresses` not.
    pub fn from_endpoints(endpoints: &k8s_openapi::api::core::v1::Endpoints) -> Self {
        let mut out = PublishedHostnames {
            source: "Endpoints",
            ..Default::default()
        };
        for subset in endpoints.subsets.iter().flatten() {
            for (addresses, ready) in [
                (&subset.addresses, true),
                (&subset.not_ready_addresses, false),
            ] {
                for hostname in addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.hostname.clone())
                {
                    if ready {
                        out.ready.insert(hostname);
                    } else {
                        out.not_ready.insert(hostname);
                    }
                }
            }
        }
        out
    }
}

/// Whether a pod's stable DNS name resolves, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodDns {
    /// The name has a record: the endpoints list the pod's hostname as ready.
    Published,
    /// No record, for this reason (one sentence).
    Missing(String),
    /// Unknown: the endpoints could not be read.
    Unknown,
}

/// The DNS state of the pod `pod_name` (`pod` = `None` when it does not exist), given the
/// Service's health and what its endpoints publish (`None` = could not be read). Rules from the
/// Kubernetes docs "DNS for Services and Pods" and the StatefulSet "Stable Network ID" section:
/// a record exists only for a pod with an IP, listed by a headless Service that selects it,
/// and Ready — or with the Service's `publishNotReadyAddresses: true`.
pub fn pod_dns(
    pod_name: &str,
    pod: Option<&k8s_openapi::api::core::v1::Pod>,
    health: ServiceHealth,
    publish_not_ready: bool,
    published: Option<&PublishedHostnames>,
) -> PodDns {
    match health {
        ServiceHealth::Ok => {}
        ServiceHealth::NotSet => return PodDns::Missing("no spec.serviceName".into()),
        ServiceHealth::Missing => return PodDns::Missing("the Service does not exist".into()),
        ServiceHealth::NotHeadless => return PodDns::Missing("the Service is not headless".into()),
        ServiceHealth::SelectorMismatch => {
            return PodDns::Missing("the Service does not select the pods".into());
        }
    }
    let Some(pod) = pod else {
        return PodDns::Missing("no pod".into());
    };
    let Some(published) = published else {
        return PodDns::Unknown;
    };
    if published.ready.contains(pod_name) {
        return PodDns::Published;
    }
    let has_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty());
    let not_ready = "the pod is not Ready and the Service does not publish not-ready addresses";
    let reason = if published.not_ready.contains(pod_name) {
        not_ready
    } else if !has_ip {
        "the pod has no IP yet"
    } else if !crate::rollout::pod_is_ready(pod) && !publish_not_ready {
        not_ready
    } else {
        "not in the Service's endpoints (yet)"
    };
    PodDns::Missing(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{service, statefulset};

    #[test]
    fn healthy_headless_service() {
        let sts = statefulset("prod", "web").build();
        assert_eq!(
            service_health(&sts, &[service("prod", "web").build()]),
            ServiceHealth::Ok
        );
    }

    #[test]
    fn unset_and_empty_service_name() {
        let unset = statefulset("prod", "web").service_name(None).build();
        assert_eq!(
            service_health::<Service>(&unset, &[]),
            ServiceHealth::NotSet
        );
        let empty = statefulset("prod", "web").service_name(Some("")).build();
        assert_eq!(
            service_health(&empty, &[service("prod", "web").build()]),
            ServiceHealth::NotSet
        );
    }

    #[test]
    fn missing_including_same_name_in_other_namespace() {
        let sts = statefulset("prod", "web").build();
        assert_eq!(service_health::<Service>(&sts, &[]), ServiceHealth::Missing);
        assert_eq!(
            service_health(&sts, &[service("staging", "web").build()]),
            ServiceHealth::Missing
        );
    }

    #[test]
    fn cluster_ip_service_is_not_headless() {
        let sts = statefulset("prod", "web").build();
        let svc = service("prod", "web").cluster_ip("10.96.0.12").build();
        assert_eq!(service_health(&sts, &[svc]), ServiceHealth::NotHeadless);
    }

    /// Issue 10, kind 2: a name is shown only when the endpoints publish it.
    #[test]
    fn a_pod_dns_name_exists_only_when_the_endpoints_publish_it() {
        use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset, Endpoints};
        use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
        let sts = statefulset("prod", "web").replicas(3).build();
        let ready = crate::fixtures::pod_for(&sts, 0).build();
        let mut not_ready = crate::fixtures::pod_for(&sts, 1).ready(false, 30).build();
        not_ready.status.as_mut().unwrap().pod_ip = Some("10.244.0.2".into());
        let mut no_ip = crate::fixtures::pod_for(&sts, 2).ready(false, 30).build();
        no_ip.status.as_mut().unwrap().pod_ip = None;
        let endpoint = |host: &str, ready: bool| Endpoint {
            hostname: Some(host.into()),
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            addresses: vec!["10.244.0.1".into()],
            ..Default::default()
        };
        let slices = [EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: vec![endpoint("web-0", true), endpoint("web-1", false)],
            ..Default::default()
        }];
        let published = PublishedHostnames::from_endpoint_slices(&slices);
        let ok = ServiceHealth::Ok;
        assert_eq!(
            pod_dns("web-0", Some(&ready), ok, false, Some(&published)),
            PodDns::Published
        );
        let PodDns::Missing(why) = pod_dns("web-1", Some(&not_ready), ok, false, Some(&published))
        else {
            panic!("web-1 is not Ready");
        };
        assert!(why.contains("not Ready"), "{why}");
        let PodDns::Missing(why) = pod_dns("web-2", Some(&no_ip), ok, true, Some(&published))
        else {
            panic!("web-2 has no IP");
        };
        assert!(why.contains("no IP"), "{why}");
        assert_eq!(
            pod_dns("web-0", Some(&ready), ok, false, None),
            PodDns::Unknown
        );
        assert_eq!(
            pod_dns(
                "web-0",
                Some(&ready),
                ServiceHealth::NotHeadless,
                false,
                Some(&published)
            ),
            PodDns::Missing("the Service is not headless".into())
        );
        assert_eq!(
            pod_dns("web-0", None, ok, false, Some(&published)),
            PodDns::Missing("no pod".into())
        );
        // The same from an Endpoints object (servers before discovery.k8s.io/v1).
        let address = |host: &str| EndpointAddress {
            hostname: Some(host.into()),
            ip: "10.244.0.1".into(),
            ..Default::default()
        };
        let endpoints = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![address("web-0")]),
                not_ready_addresses: Some(vec![address("web-1")]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let old = PublishedHostnames::from_endpoints(&endpoints);
        assert_eq!(old.source, "Endpoints");
        assert_eq!(old.ready, published.ready);
        assert_eq!(old.not_ready, published.not_ready);
    }

    #[test]
    fn an_alternative_name_is_free_or_serves_the_statefulset() {
        use std::collections::BTreeMap;
        use std::sync::Arc;
        let sts = statefulset("prod", "0db").build();
        let other = Arc::new(
            service("prod", "s-0db")
                .selector(&[("app", "other")])
                .build(),
        );
        let mut services: BTreeMap<&str, Arc<Service>> = BTreeMap::new();
        services.insert("s-0db", other.clone());
        let lookup =
            |services: &BTreeMap<&str, Arc<Service>>, name: &str| services.get(name).cloned();
        assert_eq!(
            alternative_service_name("s-0db", &sts, |n| lookup(&services, n)).as_deref(),
            Some("s-0db-2")
        );
        services.insert("s-0db-2", other.clone());
        let fits = Arc::new(
            service("prod", "s-0db-3")
                .selector(&[("app", "0db")])
                .build(),
        );
        services.insert("s-0db-3", fits);
        assert_eq!(
            alternative_service_name("s-0db", &sts, |n| lookup(&services, n)).as_deref(),
            Some("s-0db-3")
        );
        for n in 2..=9 {
            let name: &'static str = Box::leak(format!("s-0db-{n}").into_boxed_str());
            services.insert(name, other.clone());
        }
        assert_eq!(
            alternative_service_name("s-0db", &sts, |n| lookup(&services, n)),
            None
        );
        // Long names are cut so the suffix fits in 63 characters.
        let long = "a".repeat(63);
        let alt = alternative_service_name(&long, &sts, |_| None::<Arc<Service>>).unwrap();
        assert_eq!(alt.len(), 63);
        assert!(alt.ends_with("-2"));
    }

    #[test]
    fn selector_must_be_subset_of_template_labels() {
        let sts = statefulset("prod", "web")
            .template_labels(&[("app", "web"), ("tier", "db")])
            .build();
        let subset = service("prod", "web").selector(&[("app", "web")]).build();
        assert_eq!(service_health(&sts, &[subset]), ServiceHealth::Ok);
        let wrong = service("prod", "web").selector(&[("app", "other")]).build();
        assert_eq!(
            service_health(&sts, &[wrong]),
            ServiceHealth::SelectorMismatch
        );
        let extra = service("prod", "web")
            .selector(&[("app", "web"), ("zone", "a")])
            .build();
        assert_eq!(
            service_health(&sts, &[extra]),
            ServiceHealth::SelectorMismatch
        );
        let none = service("prod", "web").selector(&[]).build();
        assert_eq!(
            service_health(&sts, &[none]),
            ServiceHealth::SelectorMismatch
        );
    }
}
