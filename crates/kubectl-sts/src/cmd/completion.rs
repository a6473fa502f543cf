//! `kubectl sts completion bash|zsh|fish`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionArgs, CompletionShell};
use crate::error::{Error, Result};

/// Write the completion script for `args.shell` to `out`.
///
/// The script completes the `kubectl-sts` binary. `kubectl sts <TAB>` (kubectl 1.26+) goes
/// through the `kubectl_complete-sts` helper instead: see [`crate::cmd::complete`].
pub fn run(args: &CompletionArgs, out: &mut impl Write) -> Result<()> {
    let script = match args.shell {
        CompletionShell::Bash => {
            // clap_complete's bash generator names nested cases inconsistently when the binary
            // name contains '-' (function names use "__", case labels "__subcmd__"), which
            // breaks completion below the first level. Generate for a hyphen-free name and
            // register the functions for the real binary.
            let text = generate(Shell::Bash, "kubectl_sts");
            text.lines()
                .map(|line| {
                    if line.trim_start().starts_with("complete -F") {
                        line.replace(" kubectl_sts", " kubectl-sts")
                    } else {
                        line.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        CompletionShell::Zsh => generate(Shell::Zsh, BIN),
        CompletionShell::Fish => generate(Shell::Fish, BIN),
    };
    out.write_all(script.as_bytes()).map_err(Error::Output)?;
    Ok(())
}

const BIN: &str = "kubectl-sts";

fn generate(shell: Shell, bin_name: &str) -> String {
    // The help text says "kubectl sts", but completion is for the `kubectl-sts` binary.
    let mut command = Cli::command().bin_name(bin_name);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut command, bin_name, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_mention_every_subcommand() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let mut out = Vec::new();
            run(&CompletionArgs { shell }, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("kubectl-sts"), "{shell:?}");
            if shell == CompletionShell::Bash {
                assert!(text.contains(
                    "complete -F _kubectl_sts -o nosort -o bashdefault -o default kubectl-sts"
                ));
            }
            assert!(
                !text.contains("kubectl sts"),
                "{shell:?}: bin name with a space"
            );
            for sub in [
                "list",
                "inspect",
                "history",
                "diff",
                "rollback",
                "orphans",
                "completion",
                "version",
            ] {
                assert!(text.contains(sub), "{shell:?} script lacks {sub}");
            }
        }
    }
}
