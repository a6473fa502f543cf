//! The plugin's error type. Every variant names what failed and where, so the
//! message printed by `main` is actionable without `-v`.

use std::fmt;

/// Result alias used across the plugin.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a request was aimed: one namespace or the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
    /// Cluster-scoped resources (PersistentVolumes).
    Cluster,
}

/// "contexts there: a, b" or "it has no contexts".
fn known_contexts(known: &[String]) -> String {
    if known.is_empty() {
        "it has no contexts".to_string()
    } else {
        format!("the contexts there: {}", known.join(", "))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Namespace(ns) => write!(f, "in namespace {ns:?}"),
            Scope::AllNamespaces => f.write_str("in all namespaces"),
            Scope::Cluster => f.write_str("cluster-wide"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line usage that clap could not catch (exit code 2).
    #[error("{0}")]
    Usage(String),

    #[error(
        "no usable kubeconfig: {source}\nhint: pass --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config"
    )]
    Kubeconfig {
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// The kubeconfig was read, but its context, cluster or user entry cannot be used (bad
    /// base64, a certificate file that does not exist, an unknown cluster name…).
    #[error("the kubeconfig's context {context} cannot be used: {source}")]
    KubeconfigUnusable {
        /// `"NAME"`, or "(current)" when none was named.
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// `--context NAME` names no context of the kubeconfig (kubectl: `context was not found
    /// for specified context`).
    #[error("context {name:?} does not exist in the kubeconfig; {}", known_contexts(.known))]
    UnknownContext { name: String, known: Vec<String> },

    #[error("cannot build a Kubernetes client for {server}: {source}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },

    /// The kubeconfig's certificates or keys cannot be loaded into the TLS stack.
    #[error("cannot set up TLS for {server}: {detail}")]
    Tls { server: String, detail: String },

    /// The server's certificate did not verify against the kubeconfig's trust settings.
    #[error(
        "the API server at {server} presented a certificate that does not verify: {reason}\nhint: check certificate-authority(-data) and tls-server-name of the cluster in your kubeconfig (kubectl refuses this server too)"
    )]
    ServerNotTrusted { server: String, reason: String },

    /// HTTP 401: the server did not accept the kubeconfig user's credentials.
    #[error(
        "the API server at {server} did not accept the credentials of the kubeconfig's user (HTTP 401 Unauthorized)\nhint: an expired or revoked token, or a client certificate from another cluster's CA; `kubectl auth whoami` shows who the server thinks you are"
    )]
    Unauthorized { server: String },

    /// The kubeconfig sets `proxy-url`, which the plugin does not support yet.
    #[error(
        "the kubeconfig sets proxy-url {proxy} for {server}; kubectl-sts does not support proxies yet (nothing was sent)"
    )]
    UnsupportedProxy { server: String, proxy: String },

    #[error(
        "cannot reach the Kubernetes API server at {server} ({verb} {resource} {scope}): {detail}"
    )]
    Unreachable {
        server: String,
        verb: &'static str,
        resource: String,
        scope: Scope,
        detail: String,
    },

    /// Every attempt the retry policy allowed was throttled (429) or found the server
    /// unavailable ([`crate::retry`] states the bounds).
    #[error(
        "failed to {verb} {resource} {scope} at {server}: {source}\nhint: the server is overloaded or limits this client (API priority and fairness); try again later"
    )]
    Throttled {
        server: String,
        verb: &'static str,
        resource: String,
        scope: Scope,
        #[source]
        source: crate::retry::Throttled,
    },

    /// `--request-timeout` passed before the server answered.
    #[error(
        "the API server at {server} did not answer ({verb} {resource} {scope}): {source}\nhint: raise --request-timeout, or pass --request-timeout=0 for no limit"
    )]
    RequestTimeout {
        server: String,
        verb: &'static str,
        resource: String,
        scope: Scope,
        #[source]
        source: crate::retry::RequestTimedOut,
    },

    /// HTTP 403. The message ends with the RBAC rule that grants the request
    /// ([`crate::permissions::grant_hint`]): a Role rule in a namespace, a ClusterRole rule for
    /// all namespaces and cluster-scoped resources. One line: `orphans --delete` shows it in a
    /// result row.
    #[error(
        "forbidden: you may not {verb} {resource} {scope}: {message}{}",
        crate::permissions::grant_hint(verb, resource, matches!(scope, Scope::Namespace(_)))
    )]
    Forbidden {
        verb: &'static str,
        resource: String,
        scope: Scope,
        message: String,
    },

    #[error("{kind} {name:?} not found {scope}{}", suggest(.suggestions))]
    NotFound {
        kind: &'static str,
        name: String,
        scope: Scope,
        suggestions: Vec<String>,
    },

    #[error("failed to {verb} {resource} {scope}: {detail}")]
    Api {
        verb: &'static str,
        resource: String,
        scope: Scope,
        detail: String,
    },

    /// The user asked for a revision the StatefulSet does not have.
    #[error(
        "unknown revision {requested:?} of StatefulSet {statefulset:?}; known revisions: {known}"
    )]
    UnknownRevision {
        statefulset: String,
        requested: String,
        known: String,
    },

    /// A confirmation prompt was declined or could not be shown.
    #[error("{0}")]
    Aborted(String),

    #[error("failed to write output: {0}")]
    Output(#[from] std::io::Error),

    #[error("failed to serialise output as JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("failed to serialise output as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),

    #[error("{0}")]
    Other(String),
}

/// Model errors about revisions as plugin errors; unknown revisions keep their own variant.
impl From<sts_model::revision::RevisionError> for Error {
    fn from(e: sts_model::revision::RevisionError) -> Self {
        use sts_model::revision::RevisionError;
        match e {
            RevisionError::Unknown {
                statefulset,
                requested,
                known,
            } => Error::UnknownRevision {
                statefulset,
                requested,
                known: sts_model::revision::known_list(&known),
            },
            other => Error::Other(other.to_string()),
        }
    }
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean: {}?", suggestions.join(", "))
    }
}

impl Error {
    /// Process exit code for this error: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}
