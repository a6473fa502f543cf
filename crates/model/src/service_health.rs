//! Is the StatefulSet's governing Service there, headless, and selecting its pods?
//! Without that, the pods' stable DNS names do not resolve.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use serde::{Deserialize, Serialize};

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

/// `spec.serviceName`, if set and non-empty (v1.20 servers return `""` when unset).
pub fn service_name(sts: &StatefulSet) -> Option<&str> {
    sts.spec
        .as_ref()
        .and_then(|s| s.service_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Health of the governing Service, looked up by name among `services` of the StatefulSet's
/// namespace (Services of other namespaces are ignored).
pub fn service_health(sts: &StatefulSet, services: &[Service]) -> ServiceHealth {
    let Some(name) = service_name(sts) else {
        return ServiceHealth::NotSet;
    };
    let namespace = sts.metadata.namespace.as_deref();
    let Some(service) = services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name) && s.metadata.namespace.as_deref() == namespace
    }) else {
        return ServiceHealth::Missing;
    };
    judge_service(service, sts)
}

/// Whether an existing Service gives the StatefulSet's pods their DNS names: headless, with a
/// selector that matches the pod template's labels. Never [`ServiceHealth::Missing`] or
/// [`ServiceHealth::NotSet`].
pub fn judge_service(service: &Service, sts: &StatefulSet) -> ServiceHealth {
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.cluster_ip.as_deref()) != Some("None") {
        return ServiceHealth::NotHeadless;
    }
    let template_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    match spec
        .and_then(|s| s.selector.as_ref())
        .filter(|sel| !sel.is_empty())
    {
        // Without a selector the endpoints controller publishes nothing for the pods.
        None => ServiceHealth::SelectorMismatch,
        Some(selector) => {
            let selects = selector
                .iter()
                .all(|(k, v)| template_labels.and_then(|l| l.get(k)) == Some(v));
            if selects {
                ServiceHealth::Ok
            } else {
                ServiceHealth::SelectorMismatch
            }
        }
    }
}

/// Another Service name for a StatefulSet whose derived name is taken by a Service that would
/// not give its pods DNS names: the first of `<name>-2` … `<name>-9` (cut to stay a DNS-1035
/// label of at most 63 characters) that `existing` does not know, or whose Service serves this
/// StatefulSet. `None` when all are taken.
///
/// `serviceName` is immutable, so a name that points at a Service selecting other pods could
/// never be corrected; a fresh name gets a fresh headless Service.
pub fn alternative_service_name<F>(taken: &str, sts: &StatefulSet, existing: F) -> Option<String>
where
    F: Fn(&str) -> Option<std::sync::Arc<Service>>,
{
    (2..=9).find_map(|n| {
        let suffix = format!("-{n}");
        let keep = taken.len().min(63 - suffix.len());
        let stem = taken[..keep].trim_end_matches('-');
        let candidate = format!("{stem}{suffix}");
        match existing(&candidate) {
            None => Some(candidate),
            Some(svc) if judge_service(&svc, sts) == ServiceHealth::Ok => Some(candidate),
            Some(_) => None,
        }
    })
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
        assert_eq!(service_health(&unset, &[]), ServiceHealth::NotSet);
        let empty = statefulset("prod", "web").service_name(Some("")).build();
        assert_eq!(
            service_health(&empty, &[service("prod", "web").build()]),
            ServiceHealth::NotSet
        );
    }

    #[test]
    fn missing_including_same_name_in_other_namespace() {
        let sts = statefulset("prod", "web").build();
        assert_eq!(service_health(&sts, &[]), ServiceHealth::Missing);
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
        let alt = alternative_service_name(&long, &sts, |_| None).unwrap();
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
