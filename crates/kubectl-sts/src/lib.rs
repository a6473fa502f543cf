//! `kubectl sts`: a kubectl plugin that joins the StatefulSet facts kubectl leaves scattered.
//!
//! Each command is *collect* (paginated LISTs, [`collect`]; one StatefulSet with what belongs
//! to it, [`target`]) → *model* (pure, `sts-model`) → a view printed through [`printer`] (to
//! `impl Write`).

pub mod cli;
pub mod client;
pub mod cmd;
pub mod collect;
pub mod context;
pub mod error;
pub mod output;
pub mod permissions;
pub mod printer;
pub mod prompt;
pub mod render;
pub mod retry;
pub mod target;
#[cfg(test)]
pub(crate) mod testing;
pub mod watch;

pub use cli::Cli;
pub use context::Context;
pub use error::{Error, Result};

/// How a successful command ended; mapped to the process exit code by `main`. Errors exit
/// with 1, usage errors with 2 ([`Error::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Exit 0.
    #[default]
    Success,
    /// `orphans --exit-code` found orphaned claims: exit 3.
    OrphansFound,
    /// `status` without `--watch`: the rollout is not done: exit 3.
    RolloutNotDone,
    /// `status --timeout` passed before the rollout was done: exit 4.
    TimedOut,
    /// `status`: the rollout is stuck: exit 5.
    RolloutStuck,
    /// Ctrl-C during `--watch`: exit 130, as a shell reports SIGINT.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::OrphansFound | Outcome::RolloutNotDone => 3,
            Outcome::TimedOut => 4,
            Outcome::RolloutStuck => 5,
            Outcome::Interrupted => 130,
        }
    }
}

/// Run a parsed command line (the dispatch is [`cmd::run`]).
pub async fn run(cli: Cli) -> Result<Outcome> {
    cmd::run(cli).await
}

/// Install the tracing subscriber: `RUST_LOG` wins; otherwise `-v` enables debug logs
/// for this crate (every API request) and `-vv` also for kube's client. Logs go to stderr.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // An empty RUST_LOG counts as unset (it would otherwise mean "errors from everyone").
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok());
    let filter = from_env.unwrap_or_else(|| {
        EnvFilter::new(match verbose {
            // kube logs connection failures at ERROR; our own message says it better.
            0 => "warn,kube_client=off",
            1 => "warn,kube_client=off,kubectl_sts=debug",
            _ => "debug,hyper_util=info,tower=info",
        })
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
