//! Everything a cluster-facing command needs, resolved once from the global flags.

use std::io::IsTerminal;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::cli::{GlobalArgs, OutputFormat};
use crate::error::{Error, Result, Scope};
use crate::printer::PrintOptions;

/// Resolved global settings plus a connected client.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// API server URL, for error messages.
    pub server: String,
    /// The namespace commands act in (from `-n`, else the kubeconfig context, else "default").
    /// With `-A` it is still set (to the context's namespace) but [`Context::scope`] is cluster-wide.
    pub namespace: String,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    /// The kind of `-o` output (what `-o` says in full, with `--sort-by`, `--no-headers`, `-L`,
    /// `--show-labels`, is [`Context::print`]).
    pub output: OutputFormat,
    /// Everything the printer needs from the command line.
    pub print: PrintOptions,
    /// Whether ANSI colour may be written to stdout.
    pub color: bool,
    pub cluster_domain: String,
    /// Whether stdin is a terminal: confirmations may only be typed when it is.
    pub interactive: bool,
}

impl Context {
    /// Load the kubeconfig (honouring `--kubeconfig`, `KUBECONFIG`, `--context`) and build a client.
    /// No request is sent yet.
    pub async fn from_args(args: &GlobalArgs) -> Result<Self> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        // `--kubeconfig`, else KUBECONFIG (merged), else ~/.kube/config, as kubectl reads them.
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|source| Error::Kubeconfig { source })?;
        if let Some(name) = &args.context {
            check_context(&kubeconfig, name)?;
        }
        let context = args
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .map_or_else(|| "(current)".to_string(), |c| format!("{c:?}"));
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| Error::KubeconfigUnusable { context, source })?;
        let server = config.cluster_url.to_string();
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // `--request-timeout=0` (the default): no limit, as kubectl.
        let request_timeout = Some(args.request_timeout).filter(|d| !d.is_zero());
        let client = crate::client::build(&config, request_timeout)?;
        Ok(Self {
            client,
            server,
            namespace,
            all_namespaces: args.all_namespaces,
            selector: args.selector.clone(),
            output: args.output.format(),
            print: PrintOptions::from_args(args),
            color: color_allowed(args.no_color),
            cluster_domain: args.cluster_domain.clone(),
            interactive: std::io::stdin().is_terminal(),
        })
    }

    /// The scope of LIST requests: the namespace, or everything with `-A`.
    pub fn scope(&self) -> Scope {
        if self.all_namespaces {
            Scope::AllNamespaces
        } else {
            Scope::Namespace(self.namespace.clone())
        }
    }

    /// An `Api` for kind `K` over [`Context::scope`].
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self.scope() {
            Scope::Namespace(ns) => Api::namespaced(self.client.clone(), &ns),
            Scope::AllNamespaces | Scope::Cluster => Api::all(self.client.clone()),
        }
    }

    /// An `Api` for kind `K` in one given namespace (writes always target one namespace).
    pub fn api_in<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// An `Api` for a cluster-scoped kind `K` (PersistentVolumes).
    pub fn cluster_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>,
    {
        Api::all(self.client.clone())
    }
}

/// Colour only when not disabled by flag or `NO_COLOR`, and stdout is a terminal.
pub fn color_allowed(no_color_flag: bool) -> bool {
    !no_color_flag
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

/// `--context NAME` must name one of the kubeconfig's contexts; the error lists those that exist.
fn check_context(kubeconfig: &Kubeconfig, name: &str) -> Result<()> {
    if kubeconfig.contexts.iter().any(|c| c.name == name) {
        return Ok(());
    }
    Err(Error::UnknownContext {
        name: name.to_string(),
        known: kubeconfig.contexts.iter().map(|c| c.name.clone()).collect(),
    })
}

#[cfg(test)]
mod context_tests {
    use super::*;

    #[test]
    fn an_unknown_context_is_named_with_the_ones_that_exist() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncontexts:\n- name: dev\n  context: {cluster: c, user: u}\n- name: prod\n  context: {cluster: c, user: u}\n",
        )
        .unwrap();
        assert!(check_context(&kubeconfig, "dev").is_ok());
        let err = check_context(&kubeconfig, "nosuch").unwrap_err();
        assert_eq!(
            err.to_string(),
            "context \"nosuch\" does not exist in the kubeconfig; the contexts there: dev, prod"
        );
        let empty = Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\n").unwrap();
        assert!(
            check_context(&empty, "x")
                .unwrap_err()
                .to_string()
                .ends_with("it has no contexts")
        );
    }
}
