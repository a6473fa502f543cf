//! `sts-e2e`: a local Kubernetes control plane without containers (etcd + kube-apiserver +
//! kube-controller-manager on loopback, a simulated node, optionally the sts-webhook process),
//! used by the `sts-cluster` and `sts-demo` binaries and by the e2e suite in `tests/tests`.
//!
//! See docs/e2e.md for how it works and how to run the suite against another cluster.

pub mod assets;
pub mod bench;
pub mod certs;
pub mod cluster;
pub mod control;
pub mod demo;
pub mod error;
pub mod faults;
pub mod https;
pub mod load;
pub mod node;
pub mod process;
pub mod rbac;
pub mod resize;
pub mod sys;
pub mod webhook;

pub use cluster::{ClusterOptions, LocalCluster};
pub use error::{HarnessError, Result};
pub use webhook::WebhookOptions;

use std::ffi::OsString;
use std::path::Path;

/// Logging of the harness's binaries to stderr: `RUST_LOG` when set, else `default_filter`;
/// colours only when stderr is a terminal (their logs often go to files, e.g. CI's).
pub fn init_tracing(default_filter: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// The environment `sts-cluster run` gives its command (see docs/contracts.md).
/// `control_url` is the harness control endpoint, when there is one.
pub fn e2e_env(cluster: &LocalCluster, control_url: Option<&str>) -> Vec<(String, OsString)> {
    let kubeconfig = cluster.kubeconfig().as_os_str().to_owned();
    let mut env = vec![
        ("KUBECONFIG".to_owned(), kubeconfig.clone()),
        ("STS_E2E_KUBECONFIG".to_owned(), kubeconfig),
        ("STS_E2E_MODE".to_owned(), OsString::from("local")),
        (
            "STS_E2E_LOG_DIR".to_owned(),
            cluster.dir().as_os_str().to_owned(),
        ),
    ];
    let (ca_cert, ca_key) = cluster.client_ca();
    env.push((
        "STS_E2E_CLIENT_CA_CERT".to_owned(),
        ca_cert.as_os_str().to_owned(),
    ));
    env.push((
        "STS_E2E_CLIENT_CA_KEY".to_owned(),
        ca_key.as_os_str().to_owned(),
    ));
    if let Some(url) = control_url {
        env.push((control::CONTROL_URL_ENV.to_owned(), OsString::from(url)));
    }
    let mut path_dirs = Vec::new();
    if let Ok(plugin) = webhook::sibling_binary("kubectl-sts") {
        if plugin.is_file() {
            env.push((
                "STS_E2E_KUBECTL_STS".to_owned(),
                plugin.as_os_str().to_owned(),
            ));
        }
        // `kubectl sts …` finds the plugin on PATH, and `kubectl sts <TAB>` its completion
        // helper: a `kubectl_complete-sts` link to it in the cluster's directory.
        let helpers = cluster.dir().join("bin");
        let link = helpers.join("kubectl_complete-sts");
        if std::fs::create_dir_all(&helpers).is_ok()
            && (link.exists() || std::os::unix::fs::symlink(&plugin, &link).is_ok())
        {
            path_dirs.push(helpers);
        }
        if let Some(dir) = plugin.parent() {
            path_dirs.push(dir.to_owned());
        }
    }
    // kubectl matching the control plane (from the install cache or KUBEBUILDER_ASSETS).
    path_dirs.push(cluster.binaries().dir.clone());
    if let Some(old) = std::env::var_os("PATH") {
        path_dirs.extend(std::env::split_paths(&old));
    }
    if let Ok(path) = std::env::join_paths(path_dirs) {
        env.push(("PATH".to_owned(), path));
    }
    env
}

/// Shell-quotes a path for the `export …` lines printed by `sts-cluster up`.
pub fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(
            shell_quote(Path::new("/tmp/a-b/c.kubeconfig")),
            "/tmp/a-b/c.kubeconfig"
        );
        assert_eq!(
            shell_quote(Path::new("/tmp/a b/it's")),
            r"'/tmp/a b/it'\''s'"
        );
    }
}
