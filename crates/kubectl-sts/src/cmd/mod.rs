//! One module per subcommand: `<Name>Args` (clap) and `run(ctx, args)`.

pub mod complete;
pub mod completion;
pub mod diff;
pub mod history;
pub mod inspect;
pub mod list;
pub mod orphans;
pub mod rollback;
