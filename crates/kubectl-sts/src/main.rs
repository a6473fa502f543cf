//! `kubectl-sts` binary: parse, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use kubectl_sts::{Cli, init_tracing, run};

#[tokio::main]
async fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version by itself.
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    match run(cli).await {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // `kubectl sts list | head -1`: the reader left; that is not an error worth reporting.
        Err(kubectl_sts::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            // Every message already embeds its cause, so Display is the whole story.
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
