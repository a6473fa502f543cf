//! Where the control-plane binaries come from: `KUBEBUILDER_ASSETS` (setup-envtest layout) or
//! `tests/control-plane/install.sh`, which installs/builds Kubernetes v1.20.2 once per machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::{HarnessError, Result};

/// Directory holding etcd, kube-apiserver, kube-controller-manager and (usually) kubectl.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    pub fn apiserver(&self) -> PathBuf {
        self.dir.join("kube-apiserver")
    }
    pub fn controller_manager(&self) -> PathBuf {
        self.dir.join("kube-controller-manager")
    }
    /// kubectl from the assets dir if present (envtest ships one), else whatever is on PATH.
    pub fn kubectl(&self) -> PathBuf {
        let own = self.dir.join("kubectl");
        if own.is_file() {
            own
        } else {
            PathBuf::from("kubectl")
        }
    }

    /// The minor version of the kube-apiserver (`kube-apiserver --version` prints
    /// `Kubernetes v1.37.2`), so the harness passes only flags that release knows. `None` when it
    /// cannot be read (an unstamped build says `v0.0.0-master`): then the current flags are used.
    pub fn apiserver_minor(&self) -> Option<u32> {
        let out = std::process::Command::new(self.apiserver())
            .arg("--version")
            .output()
            .ok()?;
        parse_minor(&String::from_utf8_lossy(&out.stdout))
    }

    /// Checks the three binaries the control plane cannot start without.
    pub fn validate(&self) -> Result<()> {
        for b in [self.etcd(), self.apiserver(), self.controller_manager()] {
            if !is_executable(&b) {
                return Err(HarnessError::setup(
                    "control-plane binaries",
                    format!(
                        "{} is missing or not executable (set KUBEBUILDER_ASSETS or run tests/control-plane/install.sh)",
                        b.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `1.37` → 37 from text like `Kubernetes v1.37.2`; `None` for `v0.0.0-master` or garbage.
fn parse_minor(version: &str) -> Option<u32> {
    let v = version.split_whitespace().find(|w| w.starts_with("v1."))?;
    v.trim_start_matches("v1.").split('.').next()?.parse().ok()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The install script, located from this crate's sources.
pub fn install_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/install.sh")
}

/// Finds (installing if needed) the control-plane binaries.
pub async fn locate() -> Result<Binaries> {
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()) {
        let bins = Binaries {
            dir: PathBuf::from(dir),
        };
        bins.validate()?;
        return Ok(bins);
    }
    let script = install_script();
    tracing::info!("locating control-plane binaries with {}", script.display());
    // The script logs progress to stderr (inherited, so a first-time build is visible) and
    // prints only the bin directory on stdout.
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| HarnessError::io(format!("cannot run {}", script.display()), e))?;
    if !out.status.success() {
        return Err(HarnessError::setup(
            "installing the control plane",
            format!("{} failed with {}", script.display(), out.status),
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| {
            HarnessError::setup(
                "installing the control plane",
                format!("{} printed no directory", script.display()),
            )
        })?;
    let bins = Binaries {
        dir: PathBuf::from(dir.trim()),
    };
    bins.validate()?;
    Ok(bins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions_are_read_from_version_output() {
        assert_eq!(parse_minor("Kubernetes v1.37.2\n"), Some(37));
        assert_eq!(parse_minor("Kubernetes v1.20.2"), Some(20));
        assert_eq!(parse_minor("Kubernetes v0.0.0-master+$Format:%H$"), None);
        assert_eq!(parse_minor(""), None);
    }
}
