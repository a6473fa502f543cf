//! API access: paginated LISTs per kind and scope, the PersistentVolumes of a set of claims,
//! and kube errors mapped to messages that say which verb, resource and namespace failed.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::{Event, PersistentVolume};
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::Context;
use crate::error::{Error, Scope};
use crate::retry::{RequestTimedOut, Throttled};

/// Default page size for LIST requests (kubectl's `--chunk-size` default): large enough that
/// most clusters need one page, small enough to keep each response bounded.
pub const PAGE_SIZE: u32 = 500;

/// The page size in effect; set once from `--chunk-size` before any request.
static CHUNK_SIZE: AtomicU32 = AtomicU32::new(PAGE_SIZE);

/// Set the LIST page size (`--chunk-size`); 0 means "no limit", as in kubectl.
pub fn set_chunk_size(size: u32) {
    CHUNK_SIZE.store(size, Ordering::Relaxed);
}

/// LIST every object of kind `K` visible through `api`, following `continue` tokens.
///
/// Each request is logged at debug level (`-v`), so the number of API calls a
/// command makes is visible. `label_selector` is passed to the server as-is.
pub async fn list_all<K>(
    api: &Api<K>,
    scope: &Scope,
    label_selector: Option<&str>,
    server: &str,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    list_all_filtered(api, scope, label_selector, None, server).await
}

/// [`list_all`] with an optional field selector too (e.g. Events by involved object).
pub async fn list_all_filtered<K>(
    api: &Api<K>,
    scope: &Scope,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
    server: &str,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let resource = K::plural(&()).to_string();
    let mut items = Vec::new();
    let mut continue_token: Option<String> = None;
    let mut page = 0u32;
    loop {
        page += 1;
        let mut params = ListParams::default();
        let chunk = CHUNK_SIZE.load(Ordering::Relaxed);
        if chunk > 0 {
            params = params.limit(chunk);
        }
        if let Some(sel) = label_selector {
            params = params.labels(sel);
        }
        if let Some(fields) = field_selector {
            params = params.fields(fields);
        }
        if let Some(token) = &continue_token {
            params = params.continue_token(token);
        }
        debug!(
            verb = "list",
            resource = %resource,
            scope = %scope,
            page,
            labels = label_selector.unwrap_or(""),
            fields = field_selector.unwrap_or(""),
            "API request"
        );
        let list = api
            .list(&params)
            .await
            .map_err(|e| map_kube_error(e, "list", &resource, scope.clone(), server, None))?;
        debug!(resource = %resource, page, items = list.items.len(), "API response");
        items.extend(list.items);
        match list.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => break,
        }
    }
    Ok(items)
}

/// LIST kind `K` over the context's scope (`-n` namespace, or all with `-A`).
pub async fn list_scope<K>(
    ctx: &Context,
    labels: Option<&str>,
    fields: Option<&str>,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    list_all_filtered(&ctx.api::<K>(), &ctx.scope(), labels, fields, &ctx.server).await
}

/// LIST kind `K` in one namespace.
pub async fn list_namespace<K>(
    ctx: &Context,
    namespace: &str,
    labels: Option<&str>,
    fields: Option<&str>,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let scope = Scope::Namespace(namespace.to_string());
    list_all_filtered(
        &ctx.api_in::<K>(namespace),
        &scope,
        labels,
        fields,
        &ctx.server,
    )
    .await
}

/// LIST PersistentVolumes (cluster-scoped), for reclaim policies. Users whose RBAC stops at
/// their namespace may not list PVs: then `None`, with a warning, and the reclaim policy
/// column reads "unknown" instead of the whole command failing.
pub async fn list_volumes(ctx: &Context) -> Result<Option<Vec<PersistentVolume>>, Error> {
    match list_all(
        &ctx.cluster_api::<PersistentVolume>(),
        &Scope::Cluster,
        None,
        &ctx.server,
    )
    .await
    {
        Ok(volumes) => Ok(Some(volumes)),
        Err(Error::Forbidden { message, .. }) => {
            warn!(
                "cannot list persistentvolumes ({message}); reclaim policies are shown as unknown"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Above this many bound claims, one cluster-wide LIST of PersistentVolumes is cheaper than a GET
/// of each.
pub const MAX_VOLUME_GETS: usize = 100;

/// GETs in flight at once in [`get_each`].
const GETS_IN_FLIGHT: usize = 8;

/// GET each object of `names` through `api`, at most [`GETS_IN_FLIGHT`] at once, each request
/// logged. Objects that do not exist are left out; the result is sorted by name. The first
/// error (mapped, naming verb, resource and object) stops the whole read.
pub async fn get_each<K>(
    api: &Api<K>,
    names: &[String],
    scope: &Scope,
    server: &str,
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let resource = K::plural(&()).to_string();
    let limit = Arc::new(Semaphore::new(GETS_IN_FLIGHT));
    let mut gets = JoinSet::new();
    for name in names.iter().cloned() {
        let (api, limit, resource, shown) = (
            api.clone(),
            Arc::clone(&limit),
            resource.clone(),
            scope.to_string(),
        );
        gets.spawn(async move {
            let _permit = limit.acquire_owned().await;
            debug!(verb = "get", resource = %resource, scope = %shown, name, "API request");
            let got = api.get_opt(&name).await;
            (name, got)
        });
    }
    let mut objects = Vec::new();
    while let Some(joined) = gets.join_next().await {
        let (name, got) = joined.map_err(|e| Error::Other(format!("reading {resource}: {e}")))?;
        match got {
            Ok(Some(object)) => objects.push(object),
            Ok(None) => {}
            Err(e) => {
                return Err(map_kube_error(
                    e,
                    "get",
                    &resource,
                    scope.clone(),
                    server,
                    Some(&name),
                ));
            }
        }
    }
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    Ok(objects)
}

/// The PersistentVolumes named `names` (the ones a StatefulSet's claims are bound to), for their
/// reclaim policies: [`get_each`], so the cost follows the StatefulSet rather than the cluster's
/// PV count; above [`MAX_VOLUME_GETS`] names, one paginated LIST instead. `None`, with a
/// warning, when RBAC forbids reading PVs (the reclaim column then reads "unknown"); a volume
/// that does not exist is simply absent.
pub async fn get_volumes(
    ctx: &Context,
    names: &[String],
) -> Result<Option<Vec<PersistentVolume>>, Error> {
    if names.len() > MAX_VOLUME_GETS {
        return list_volumes(ctx).await;
    }
    let api = ctx.cluster_api::<PersistentVolume>();
    match get_each(&api, names, &Scope::Cluster, &ctx.server).await {
        Ok(volumes) => Ok(Some(volumes)),
        Err(Error::Forbidden { message, .. }) => {
            warn!(
                "cannot get persistentvolumes ({message}); reclaim policies are shown as unknown"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Events only add warnings (FailedCreate); without permission to list them the command
/// still works, minus those warnings.
pub async fn list_events_lenient(
    ctx: &Context,
    namespace: Option<&str>,
    fields: &str,
) -> Result<Vec<Event>, Error> {
    let listed = match namespace {
        Some(ns) => list_namespace::<Event>(ctx, ns, None, Some(fields)).await,
        None => list_scope::<Event>(ctx, None, Some(fields)).await,
    };
    match listed {
        Err(Error::Forbidden { message, .. }) => {
            warn!("cannot list events ({message}); FailedCreate warnings are not shown");
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Turn a kube error into an [`Error`] naming the verb, resource and scope.
///
/// `name` is the object name for single-object requests (used for NotFound).
pub fn map_kube_error(
    err: kube::Error,
    verb: &'static str,
    resource: &str,
    scope: Scope,
    server: &str,
    name: Option<&str>,
) -> Error {
    // The plugin's own client layers (crate::retry): throttled to the end, or timed out.
    if let kube::Error::Service(e) = &err {
        if let Some(throttled) = find::<Throttled>(e.as_ref()) {
            return Error::Throttled {
                server: server.to_string(),
                verb,
                resource: resource.to_string(),
                scope,
                source: throttled.clone(),
            };
        }
        if let Some(timed_out) = find::<RequestTimedOut>(e.as_ref()) {
            return Error::RequestTimeout {
                server: server.to_string(),
                verb,
                resource: resource.to_string(),
                scope,
                source: timed_out.clone(),
            };
        }
    }
    match err {
        kube::Error::Api(status) if status.code == 401 => Error::Unauthorized {
            server: server.to_string(),
        },
        kube::Error::Api(status) if status.is_forbidden() => Error::Forbidden {
            verb,
            resource: resource.to_string(),
            scope,
            message: status.message.clone(),
        },
        kube::Error::Api(status) if status.is_not_found() => match name {
            Some(name) => Error::NotFound {
                kind: kind_for(resource),
                name: name.to_string(),
                scope,
                suggestions: Vec::new(),
            },
            // A LIST that 404s means the API itself is missing (e.g. too old a server).
            None => Error::Other(format!(
                "the server does not serve {resource} ({verb} {scope}): {}",
                status.message
            )),
        },
        kube::Error::Api(status) => Error::Api {
            verb,
            resource: resource.to_string(),
            scope,
            detail: if status.message.is_empty() {
                format!("HTTP {} {}", status.code, status.reason)
            } else {
                format!(
                    "{} ({}, HTTP {})",
                    status.message, status.reason, status.code
                )
            },
        },
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            let detail = error_chain(&e);
            match certificate_verify_failure(&detail) {
                Some(reason) => Error::ServerNotTrusted {
                    server: server.to_string(),
                    reason,
                },
                None => Error::Unreachable {
                    server: server.to_string(),
                    verb,
                    resource: resource.to_string(),
                    scope,
                    detail,
                },
            }
        }
        other => Error::Api {
            verb,
            resource: resource.to_string(),
            scope,
            detail: error_chain(&other),
        },
    }
}

/// The first error of type `T` in `err`'s source chain, `err` itself included.
fn find<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// OpenSSL's reason when the server's certificate did not verify: its error reads
/// `…:certificate verify failed:<file>:<line>:: <X509 verify reason>` (`hostname mismatch`,
/// `unable to get local issuer certificate`, `certificate has expired`, …).
fn certificate_verify_failure(detail: &str) -> Option<String> {
    let at = detail.find("certificate verify failed")?;
    let rest = &detail[at..];
    let reason = rest
        .split_once(":: ")
        .map_or("certificate verify failed", |(_, r)| r);
    Some(reason.lines().next().unwrap_or(reason).trim().to_string())
}

/// A human name for a resource plural, for NotFound messages.
fn kind_for(resource: &str) -> &'static str {
    match resource {
        "statefulsets" => "StatefulSet",
        "pods" => "Pod",
        "persistentvolumeclaims" => "PersistentVolumeClaim",
        "persistentvolumes" => "PersistentVolume",
        "controllerrevisions" => "ControllerRevision",
        "services" => "Service",
        _ => "object",
    }
}

/// The error and its sources on one line ("connection refused" is usually deep inside).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Wrappers often repeat their source's text; keep each piece once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Names from `candidates` close to `wanted` (substring either way, or a small edit distance),
/// closest first, at most 3: for "not found; did you mean …?".
pub fn close_names<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.len() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = edit_distance(wanted, c);
            (d <= limit || c.contains(wanted) || wanted.contains(c)).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Edit distance over chars where swapping two neighbours counts as one edit
/// (optimal string alignment), so "wbe" is one edit from "web".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_server_certificate_is_named_with_its_reason() {
        let err = kube::Error::Service(Box::new(std::io::Error::other(
            "client error (Connect): error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:ssl/statem/statem_clnt.c:2125:: hostname mismatch",
        )));
        let mapped = map_kube_error(err, "list", "pods", Scope::Cluster, "https://h:6443/", None);
        assert_eq!(
            mapped.to_string(),
            "the API server at https://h:6443/ presented a certificate that does not verify: hostname mismatch\nhint: check certificate-authority(-data) and tls-server-name of the cluster in your kubeconfig (kubectl refuses this server too)"
        );
        let refused = kube::Error::Service(Box::new(std::io::Error::other("Connection refused")));
        assert!(matches!(
            map_kube_error(refused, "list", "pods", Scope::Cluster, "s", None),
            Error::Unreachable { .. }
        ));
    }

    #[test]
    fn http_401_says_the_credentials_were_not_accepted() {
        let status = kube::core::Status::failure("Unauthorized", "Unauthorized").with_code(401);
        let mapped = map_kube_error(
            kube::Error::Api(Box::new(status)),
            "list",
            "pods",
            Scope::Cluster,
            "https://h:6443/",
            None,
        );
        assert!(matches!(mapped, Error::Unauthorized { .. }), "{mapped:?}");
        assert!(
            mapped
                .to_string()
                .contains("did not accept the credentials")
        );
    }

    #[test]
    fn close_names_prefers_small_edits_and_substrings() {
        let names = ["web", "web-a", "database", "cache"];
        assert_eq!(close_names("wbe", names), vec!["web".to_string()]);
        assert_eq!(close_names("data", names), vec!["database".to_string()]);
        assert!(close_names("zzzzzz", names).is_empty());
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let status = kube::core::Status::failure(
            "statefulsets.apps is forbidden: User \"bob\" cannot list",
            "Forbidden",
        )
        .with_code(403);
        let err = map_kube_error(
            kube::Error::Api(status.boxed()),
            "list",
            "statefulsets",
            Scope::Namespace("prod".into()),
            "https://127.0.0.1:6443",
            None,
        );
        let text = err.to_string();
        assert!(
            text.contains("you may not list statefulsets in namespace \"prod\""),
            "{text}"
        );
    }

    #[test]
    fn not_found_for_a_named_object() {
        let status = kube::core::Status::failure("not found", "NotFound").with_code(404);
        let err = map_kube_error(
            kube::Error::Api(status.boxed()),
            "get",
            "statefulsets",
            Scope::Namespace("prod".into()),
            "https://127.0.0.1:6443",
            Some("web"),
        );
        assert_eq!(
            err.to_string(),
            "StatefulSet \"web\" not found in namespace \"prod\""
        );
    }
}
