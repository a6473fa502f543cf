//! One StatefulSet and what belongs to it, fetched the same way for every command that takes
//! `NAME` (`inspect`, `history`, `diff`, `rollback`).
//!
//! Requests scale with that StatefulSet, not with its namespace: one GET of the StatefulSet,
//! then LISTs narrowed by its `spec.selector` (pods, ControllerRevisions) and by the labels the
//! controller puts on the claims it creates (`spec.selector.matchLabels`,
//! pkg/controller/statefulset/stateful_set_utils.go `getPersistentVolumeClaims`). Claims of its
//! templates that the LIST did not return (a claim made by hand, without those labels) are read
//! by name, so none is reported missing when it exists.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::core::Selector;
use sts_model::naming::{claim_name, claim_template_names, ordinal_range};
use sts_model::objects::statefulset_selector_query;
use tracing::debug;

use crate::Context;
use crate::collect::{close_names, get_each, list_all, list_namespace, map_kube_error};
use crate::error::{Error, Result, Scope};

/// Commands about one StatefulSet work in one namespace: the namespace, or the usage error
/// that every such command gives for `-A` (and for `-l`, which would otherwise be ignored).
pub fn single_namespace<'a>(ctx: &'a Context, command: &str) -> Result<&'a str> {
    if ctx.all_namespaces {
        return Err(Error::Usage(format!(
            "`{command}` works on one StatefulSet in one namespace; use -n NAMESPACE instead of -A"
        )));
    }
    if ctx.selector.is_some() {
        return Err(Error::Usage(format!(
            "`{command}` works on the StatefulSet it names; -l/--selector selects several (use it with `list` or `orphans`)"
        )));
    }
    Ok(ctx.namespace.as_str())
}

/// Which of the StatefulSet's dependents to read besides its ControllerRevisions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub pods: bool,
    pub claims: bool,
}

/// A StatefulSet with its ControllerRevisions and, when asked for ([`Parts`]), its pods and the
/// claims of its templates.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub statefulset: StatefulSet,
    pub revisions: Vec<ControllerRevision>,
    /// Empty unless [`Parts::pods`].
    pub pods: Vec<Pod>,
    /// Empty unless [`Parts::claims`]; only claims named `<template>-<sts>-<ordinal>` for one
    /// of its templates.
    pub claims: Vec<PersistentVolumeClaim>,
}

impl Target {
    /// GET the StatefulSet `name` in the context's namespace, then LIST what [`Parts`] asks for
    /// with its selector, concurrently. `command` names the command in the `-A` error.
    ///
    /// Errors: `-A` (usage), NotFound with close names, an empty selector, and any API error
    /// naming verb, resource and namespace.
    pub async fn fetch(ctx: &Context, command: &str, name: &str, parts: Parts) -> Result<Self> {
        let namespace = single_namespace(ctx, command)?;
        let statefulset = get_statefulset(ctx, namespace, name).await?;
        let selector = statefulset_selector_query(&statefulset).ok_or_else(|| {
            Error::Other(format!(
                "StatefulSet {name:?} {} has an empty selector",
                Scope::Namespace(namespace.to_string())
            ))
        })?;
        let pods = async {
            if parts.pods {
                list_namespace::<Pod>(ctx, namespace, Some(&selector), None).await
            } else {
                Ok(Vec::new())
            }
        };
        let claims = async {
            if parts.claims {
                claims_of(ctx, namespace, &statefulset).await
            } else {
                Ok(Vec::new())
            }
        };
        let (revisions, pods, claims) = tokio::try_join!(
            list_namespace::<ControllerRevision>(ctx, namespace, Some(&selector), None),
            pods,
            claims,
        )?;
        Ok(Self {
            namespace: namespace.to_string(),
            statefulset,
            revisions,
            pods,
            claims,
        })
    }
}

/// GET one StatefulSet; when it does not exist, one LIST of names to suggest close ones.
pub async fn get_statefulset(ctx: &Context, namespace: &str, name: &str) -> Result<StatefulSet> {
    let scope = Scope::Namespace(namespace.to_string());
    let api = ctx.api_in::<StatefulSet>(namespace);
    debug!(verb = "get", resource = "statefulsets", scope = %scope, name, "API request");
    let err = match api.get(name).await {
        Ok(sts) => return Ok(sts),
        Err(e) => map_kube_error(
            e,
            "get",
            "statefulsets",
            scope.clone(),
            &ctx.server,
            Some(name),
        ),
    };
    if !matches!(err, Error::NotFound { .. }) {
        return Err(err);
    }
    // Best effort: a failing suggestion LIST must not hide the NotFound.
    let names: Vec<String> = list_all(&api, &scope, None, &ctx.server)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    Err(not_found(namespace, name, &names))
}

/// StatefulSet `name` not found in `namespace`, suggesting the close ones among `names`.
fn not_found(namespace: &str, name: &str, names: &[String]) -> Error {
    Error::NotFound {
        kind: "StatefulSet",
        name: name.to_string(),
        scope: Scope::Namespace(namespace.to_string()),
        suggestions: close_names(name, names.iter().map(String::as_str)),
    }
}

/// The claims of the StatefulSet's templates for its ordinals: one LIST by the labels the
/// controller gives them, then a GET for each expected name the LIST did not return.
async fn claims_of(
    ctx: &Context,
    namespace: &str,
    sts: &StatefulSet,
) -> Result<Vec<PersistentVolumeClaim>> {
    let templates = claim_template_names(sts);
    if templates.is_empty() {
        return Ok(Vec::new());
    }
    let sts_name = sts.metadata.name.as_deref().unwrap_or_default();
    let expected: BTreeSet<String> = ordinal_range(sts)
        .flat_map(|o| templates.iter().map(move |t| claim_name(t, sts_name, o)))
        .collect();
    let labels = claim_labels(sts);
    let listed = match &labels {
        Some(query) => {
            list_namespace::<PersistentVolumeClaim>(ctx, namespace, Some(query), None).await?
        }
        // No matchLabels: the controller labels its claims with nothing we can select by.
        None => list_namespace::<PersistentVolumeClaim>(ctx, namespace, None, None).await?,
    };
    let mut claims: Vec<PersistentVolumeClaim> = listed
        .into_iter()
        .filter(|c| is_template_claim(c, &templates, sts_name))
        .collect();
    let found: BTreeSet<&str> = claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|n| !found.contains(n.as_str()))
        .cloned()
        .collect();
    let api = ctx.api_in::<PersistentVolumeClaim>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    claims.extend(get_each(&api, &missing, &scope, &ctx.server).await?);
    Ok(claims)
}

/// `spec.selector.matchLabels` as a query: the labels the controller copies onto every claim
/// it creates from a template. `None` when there are none.
pub fn claim_labels(sts: &StatefulSet) -> Option<String> {
    let labels = sts.spec.as_ref()?.selector.match_labels.clone()?;
    let selector: Selector = labels.into_iter().collect();
    (!selector.selects_all()).then(|| selector.to_string())
}

/// Whether a claim is named `<template>-<sts>-<ordinal>` for one of `templates` (any ordinal:
/// claims of scaled-down ordinals belong to the StatefulSet too).
pub fn is_template_claim(claim: &PersistentVolumeClaim, templates: &[&str], sts: &str) -> bool {
    let Some(name) = claim.metadata.name.as_deref() else {
        return false;
    };
    templates.iter().any(|t| {
        name.strip_prefix(t)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_prefix(sts))
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|ordinal| ordinal.parse::<i32>().is_ok_and(|o| o >= 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sts_model::fixtures::{claim, statefulset};

    #[test]
    fn claim_labels_are_the_selectors_match_labels() {
        let sts = statefulset("ns", "web")
            .replicas(2)
            .templates(&["data"])
            .build();
        assert_eq!(claim_labels(&sts).as_deref(), Some("app=web"));
    }

    #[test]
    fn not_found_suggests_close_names() {
        let names = ["web".to_string(), "db".to_string()];
        assert_eq!(
            not_found("prod", "wbe", &names).to_string(),
            "StatefulSet \"wbe\" not found in namespace \"prod\"; did you mean: web?"
        );
    }

    #[test]
    fn template_claims_are_recognised_by_name() {
        let templates = ["data", "logs"];
        for (name, ours) in [
            ("data-web-0", true),
            ("logs-web-12", true),
            ("data-web-a-0", false),
            ("data-web-", false),
            ("cache-web-0", false),
            ("data-web-x", false),
        ] {
            let c = claim("ns", name).build();
            assert_eq!(is_template_claim(&c, &templates, "web"), ours, "{name}");
        }
    }
}
