//! The commands: one module per subcommand, each `run(ctx, args)` = collect → model → a view
//! printed through [`crate::printer`]. Their flags are in [`crate::cli`]; what several of them
//! need lives beside them ([`crate::target`], [`crate::collect`], [`crate::render`]), never in
//! one of them, so no command imports another.

pub mod complete;
pub mod completion;
pub mod diff;
pub mod history;
pub mod inspect;
pub mod list;
pub mod orphans;
pub mod resize;
pub mod rollback;
pub mod status;

use std::io::Write;

use crate::cli::{Cli, Commands};
use crate::{Context, Outcome, Result, collect};

/// Run a parsed command line: the commands that need no cluster first, then the others with a
/// [`Context`] built from the global flags.
pub async fn run(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Commands::Completion(args) => {
            completion::run(args, &mut std::io::stdout().lock())?;
            return Ok(Outcome::Success);
        }
        Commands::Version => {
            writeln!(
                std::io::stdout().lock(),
                "kubectl-sts {}",
                env!("CARGO_PKG_VERSION")
            )?;
            return Ok(Outcome::Success);
        }
        _ => {}
    }
    collect::set_chunk_size(cli.global.chunk_size);
    let ctx = Context::from_args(&cli.global).await?;
    match &cli.command {
        Commands::List(args) => list::run(&ctx, args).await,
        Commands::Inspect(args) => inspect::run(&ctx, args).await,
        Commands::Status(args) => status::run(&ctx, args).await,
        Commands::History(args) => history::run(&ctx, args).await,
        Commands::Diff(args) => diff::run(&ctx, args).await,
        Commands::Rollback(args) => rollback::run(&ctx, args).await,
        Commands::Orphans(args) => orphans::run(&ctx, args).await,
        Commands::Resize(args) => resize::run(&ctx, args).await,
        Commands::Completion(_) | Commands::Version => Ok(Outcome::Success),
    }
}
