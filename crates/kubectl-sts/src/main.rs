//! `kubectl-sts` binary: parse, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use kubectl_sts::cmd::complete;
use kubectl_sts::{Cli, init_tracing, run};

#[tokio::main]
async fn main() -> ExitCode {
    // kubectl's plugin completion: started as `kubectl_complete-sts WORDS…` (a symlink), or as
    // `kubectl-sts __complete WORDS…`.
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_default();
    let as_helper = std::path::Path::new(&program)
        .file_name()
        .is_some_and(|n| n == complete::HELPER_NAME);
    let words: Vec<String> = argv.collect();
    if as_helper || words.first().is_some_and(|w| w == "__complete") {
        let words = if as_helper { &words[..] } else { &words[1..] };
        return match complete::run(words, &mut std::io::stdout().lock()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
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
            // Not eprintln!: it panics when stderr is closed (exit 101 instead of 1).
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
