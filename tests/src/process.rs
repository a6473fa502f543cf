//! Child processes of the harness: logged to a file, killed with the harness, stopped in order.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::error::{HarnessError, Result};
use crate::sys;

/// A process started by the harness. Dropping it SIGKILLs the process.
pub struct ManagedProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ManagedProcess {
    /// Starts `program args…` with stdout and stderr appended to `log`, in its own process
    /// group (so a terminal Ctrl-C reaches only the harness, which then stops it in order).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self> {
        let out = open_log(log)?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io(format!("cannot reuse log {}", log.display()), e))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .process_group(0);
        sys::die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            HarnessError::io(format!("failed to start {name} ({})", program.display()), e)
        })?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Errors if the process has exited: a control-plane component must never stop on its own.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(e) => Err(HarnessError::io(format!("cannot poll {}", self.name), e)),
        }
    }

    fn exited(&self, status: ExitStatus) -> HarnessError {
        HarnessError::ProcessExited {
            name: self.name.clone(),
            status: status.to_string(),
            log: self.log.clone(),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps the process.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            if let Err(e) = sys::send_signal(pid, sys::SIGTERM) {
                tracing::warn!(name = %self.name, pid, "SIGTERM failed: {e}");
            }
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                tracing::warn!(name = %self.name, pid, "did not stop within {grace:?}; killing");
            }
        }
        // kill() is a no-op error on an already reaped child; wait() then returns at once.
        let _ = self.child.kill().await;
    }
}

fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| HarnessError::io(format!("cannot open log {}", path.display()), e))
}

/// The last `lines` lines of a log file (best effort: an unreadable log yields a note).
pub fn log_tail(path: &Path, lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Sends SIGTERM to `pid` (for processes the caller started itself).
pub fn signal_terminate(pid: u32) -> std::io::Result<()> {
    sys::send_signal(pid, sys::SIGTERM)
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::io("cannot bind a loopback port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("cannot read the bound port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_returns_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&p, 10), "a\nb\nc\nd");
        assert!(log_tail(&dir.path().join("missing"), 3).starts_with("(cannot read"));
    }

    #[tokio::test]
    async fn stop_terminates_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut p =
            ManagedProcess::spawn("sleep", Path::new("sleep"), &["30".to_owned()], &[], &log)
                .unwrap();
        p.ensure_running().unwrap();
        let pid = p.pid().unwrap();
        p.stop(Duration::from_secs(5)).await;
        assert!(p.pid().is_none(), "child still has a pid after stop");
        // The pid is reaped: signalling it fails (ESRCH) unless the pid was reused.
        assert!(sys::send_signal(pid, 0).is_err());
    }

    #[tokio::test]
    async fn ensure_running_reports_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("false.log");
        let mut p = ManagedProcess::spawn("false", Path::new("false"), &[], &[], &log).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let err = p.ensure_running().unwrap_err();
        assert!(
            err.to_string().contains("false exited unexpectedly"),
            "{err}"
        );
    }
}
