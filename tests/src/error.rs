//! Errors of the local control plane harness.

use std::path::PathBuf;

/// Everything that can go wrong while starting, running or stopping the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to generate {what}: {source}")]
    Cert {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("TLS setup failed ({context}): {source}")]
    Tls {
        context: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("{context}: {message}")]
    Setup { context: String, message: String },
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("{name} exited unexpectedly ({status}); its log is {}", log.display())]
    ProcessExited {
        name: String,
        status: String,
        log: PathBuf,
    },
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn setup(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Setup {
            context: context.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
