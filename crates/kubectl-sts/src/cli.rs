//! The command line's flag types (clap derive), and nothing else: the commands live in
//! [`crate::cmd`], which reads these types; this module knows no command.
//!
//! How a subcommand plugs in:
//! 1. add its flags here as `#[derive(clap::Args)] pub struct <Name>Args` and a variant
//!    `<Name>(<Name>Args)` of [`Commands`];
//! 2. write `src/cmd/<name>.rs` with `pub async fn run(ctx: &Context, args: &<Name>Args) ->
//!    Result<Outcome>` (collect → model → a view printed through [`crate::printer`]);
//! 3. declare the module and add its match arm in `src/cmd/mod.rs`.
//!
//! The global flags ([`GlobalArgs`]) are declared `global = true`, so they are accepted before or
//! after the subcommand name, kubectl-style, and reach every command through [`crate::Context`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kubectl plugin for StatefulSets: pods by ordinal, revisions, diffs, rollback, orphaned PVCs.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-sts",
    bin_name = "kubectl sts",
    version,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Commands,
}

/// Flags accepted by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace to look in (default: the context's namespace, else "default").
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,

    /// Look in all namespaces.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Label selector restricting which StatefulSets are considered (e.g. app=web).
    #[arg(short = 'l', long, global = true, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Output format: table, wide, json, yaml, name, jsonpath=TEMPLATE,
    /// custom-columns=HEADER:JSONPATH,... (kubectl's forms; jsonpath and custom-columns read
    /// the JSON view).
    #[arg(
        short = 'o',
        long,
        global = true,
        value_name = "FORMAT",
        value_parser = crate::output::OutputParser,
        default_value = "table"
    )]
    pub output: crate::output::Output,

    /// Sort the rows of list-like views (list, history, orphans) by this JSONPath over each
    /// row of the JSON view, e.g. `.name`, `{.replicas}` (kubectl's `--sort-by`).
    #[arg(long, global = true, value_name = "JSONPATH", value_parser = parse_sort_by)]
    pub sort_by: Option<crate::output::JsonPathExpr>,

    /// Print no header line (table, wide, custom-columns).
    #[arg(long, global = true)]
    pub no_headers: bool,

    /// Add a column per label key (comma-separated, repeatable) to the table of views whose
    /// objects have labels (list, orphans); the header is the key's last `/` part, upper-cased.
    #[arg(
        short = 'L',
        long = "label-columns",
        global = true,
        value_name = "KEY,...",
        value_delimiter = ','
    )]
    pub label_columns: Vec<String>,

    /// Add a LABELS column to the table of views whose objects have labels (list, orphans).
    #[arg(long, global = true)]
    pub show_labels: bool,

    /// Never colour the output (colour is also off when stdout is not a terminal or NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Cluster DNS domain used to build stable pod DNS names.
    #[arg(
        long,
        global = true,
        default_value = "cluster.local",
        value_name = "DOMAIN"
    )]
    pub cluster_domain: String,

    /// Objects per LIST page; pages are followed with `continue` tokens (0 = no paging).
    #[arg(long, global = true, default_value_t = crate::collect::PAGE_SIZE, value_name = "N")]
    pub chunk_size: u32,

    /// How long to wait for the server to answer each request (kubectl's flag): a duration
    /// like 5s, 1m or 1m30s, a bare number of seconds, or 0 for no limit. Each attempt of a
    /// throttled request that is retried gets the whole time again.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "0",
        value_parser = parse_request_timeout
    )]
    pub request_timeout: std::time::Duration,

    /// More logging: -v logs every API request, -vv also the client's internals.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The kind of `-o` output (defined with the parsed value in [`crate::output`]).
pub use crate::output::OutputFormat;

/// `--sort-by`'s value: a relaxed JSONPath (clap turns the message into a usage error).
fn parse_sort_by(text: &str) -> Result<crate::output::JsonPathExpr, String> {
    crate::output::JsonPathExpr::parse_relaxed(text)
}

/// `--dry-run` values, as in kubectl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DryRun {
    /// really apply the change
    #[default]
    None,
    /// print what would be done, send nothing that changes state
    Client,
    /// send the request with dryRun=All: the server validates but persists nothing
    Server,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// List StatefulSets with rollout state, Service health, PVC and orphan counts.
    List(ListArgs),
    /// Show one StatefulSet: pods by ordinal, revisions, partition line, PVCs, warnings.
    Inspect(InspectArgs),
    /// Rollout status: done, progressing, waiting for deletion or stuck; --watch waits for it.
    Status(StatusArgs),
    /// Show the revision history of a StatefulSet.
    History(HistoryArgs),
    /// Diff the pod templates of two revisions.
    Diff(DiffArgs),
    /// Roll a StatefulSet back to an earlier revision, after showing the diff.
    Rollback(RollbackArgs),
    /// Find PVCs left behind by scale-downs and deleted StatefulSets; optionally delete them.
    Orphans(OrphansArgs),
    /// Grow every claim of a StatefulSet and carry the size into its volumeClaimTemplates,
    /// without restarting a pod.
    Resize(ResizeArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Print the plugin version.
    Version,
}

// ------------------------------------------------------------- subcommand flags --

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// After the list, follow changes with watches (not polling): a row again for each
    /// StatefulSet whose row changed, as `kubectl get -w` does. Ctrl-C ends it (exit 0).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// StatefulSet name.
    pub name: String,
    /// Follow the StatefulSet with watches (not polling) and show the whole view again on
    /// each change (on a terminal in place). Ctrl-C ends it (exit 0).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// `status NAME`: exit 0 when done, 3 when not done yet, 4 when `--timeout` passed, 5 when
/// stuck, 130 when interrupted (see [`crate::Outcome`]).
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// StatefulSet name.
    pub name: String,
    /// Follow the rollout live (a watch, not polling) until it is done or stuck: one line per
    /// change.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// With --watch, give up after this long (e.g. 90s, 5m, 1h30m; 0 = never). Implies --watch.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub timeout: Option<jiff::SignedDuration>,
    /// How long a pod may stay not Ready before the rollout counts as stuck (a pod caught in
    /// the rollback trap: this or 30s, whichever is shorter).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m", allow_hyphen_values = true)]
    pub stall_after: jiff::SignedDuration,
}

impl StatusArgs {
    /// `--watch`, or implied by `--timeout`.
    pub fn follows(&self) -> bool {
        self.watch || self.timeout.is_some()
    }
}

/// A duration as kubectl writes them (`90s`, `5m`, `1h30m`) or in ISO 8601 (`PT5M`); `0` alone
/// means zero. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let value = if text.trim() == "0" {
        jiff::SignedDuration::ZERO
    } else {
        text.trim()
            .parse::<jiff::SignedDuration>()
            .map_err(|e| format!("{text:?} is not a duration like 90s, 5m or 1h30m ({e})"))?
    };
    if value.is_negative() {
        return Err(format!("{text:?} is negative"));
    }
    Ok(value)
}

/// `--request-timeout`, as kubectl reads it (`k8s.io/client-go/tools/clientcmd`): a bare
/// integer is seconds, anything else a duration ([`parse_duration`]); zero means no timeout.
pub fn parse_request_timeout(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let value = match text.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => {
            let d = parse_duration(text).map_err(|e| {
                format!("{e}; give an integer number of seconds or a duration with a unit (e.g. 1s, 2m, 3h)")
            })?;
            std::time::Duration::try_from(d).map_err(|e| format!("{text:?}: {e}"))?
        }
    };
    Ok(value)
}

/// A storage size for `resize --size`: a Kubernetes quantity of more than 0 bytes
/// ([`sts_model::quantity::quantity_bytes`]).
pub fn parse_size(text: &str) -> Result<String, String> {
    let text = text.trim();
    match sts_model::quantity::quantity_bytes(text) {
        Some(0) => Err(format!(
            "{text:?} is 0 bytes: give the size the volumes should grow to"
        )),
        Some(_) => Ok(text.to_string()),
        None if text.starts_with('-') => {
            Err(format!("{text:?} is negative: volumes can only grow"))
        }
        None => Err(format!(
            "{text:?} is not a storage size like 20Gi, 500Mi or 1Ti"
        )),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// StatefulSet name.
    pub name: String,
    /// Print the pod template of this revision: a number, a full name (web-6c5f8b9d4), a hash
    /// (prefix), `current`, `update`, or `live` (the StatefulSet's spec.template).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// StatefulSet name.
    pub name: String,
    /// Revision to diff from: a number, a full name, a hash (prefix), `current`, `update` or
    /// `live` (the StatefulSet's spec.template). Default: the current revision, or the previous
    /// one when current = update.
    pub from: Option<String>,
    /// Revision to diff to (same forms). Default: the update revision when FROM is not given,
    /// `live` when it is.
    pub to: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    /// StatefulSet name.
    pub name: String,
    /// Revision to roll back to: a number, a full name or a hash (prefix). Default: the revision
    /// before the update revision (what `kubectl rollout undo` picks).
    #[arg(long, value_name = "REV")]
    pub to_revision: Option<String>,
    /// Only show what would happen (client), or let the server validate without persisting (server).
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OrphansArgs {
    /// Only claims of this StatefulSet (existing or deleted).
    pub name: Option<String>,
    /// Delete the orphaned claims that no pod uses (asks for confirmation).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: `client` only shows what would be deleted; `server` sends the deletes
    /// with dryRun=All so the apiserver validates them but persists nothing.
    #[arg(
        long,
        value_enum,
        default_value_t = DryRun::None,
        num_args = 0..=1,
        default_missing_value = "client",
        require_equals = true,
        requires = "delete"
    )]
    pub dry_run: DryRun,
    /// With --delete: do not ask for confirmation.
    #[arg(short = 'y', long, requires = "delete")]
    pub yes: bool,
    /// Exit with code 3 when orphaned claims exist (after --delete: when any remain).
    #[arg(long)]
    pub exit_code: bool,
}

/// `resize NAME --size Q`: see `cmd/resize.rs` for the steps.
#[derive(Debug, Clone, clap::Args)]
pub struct ResizeArgs {
    /// StatefulSet name.
    pub name: String,
    /// The new size of each claim and of the template (a Kubernetes quantity: 20Gi, 500Gi,
    /// 1Ti); only growing is possible.
    #[arg(long, value_name = "QUANTITY", value_parser = parse_size, allow_hyphen_values = true)]
    pub size: String,
    /// Which volumeClaimTemplate to grow (needed when there are several).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// Also grow the claims of scaled-down ordinals, so a later scale-up does not bring back a
    /// small volume.
    #[arg(long)]
    pub include_scaled_down: bool,
    /// `client`: only print the plan; `server`: send the claim patches and the delete with
    /// dryRun=All (the create cannot be tried while the StatefulSet exists).
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How long to wait for each claim to grow, for the delete, and for the adoption.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m", allow_hyphen_values = true)]
    pub timeout: jiff::SignedDuration,
    /// Where the StatefulSet is saved before it is deleted (default:
    /// $XDG_STATE_HOME/kubectl-sts/resize, else ~/.local/state/kubectl-sts/resize).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl ResizeArgs {
    /// The stall threshold of the rollout check ([`StatusArgs::stall_after`]'s default).
    pub fn stall_after(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(300)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionArgs {
    /// Shell to generate the completion script for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-sts").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn request_timeout_reads_like_kubectls() {
        use std::time::Duration;
        let timeout = |args: &[&str]| {
            parse(args).map(|c| Some(c.global.request_timeout).filter(|d| !d.is_zero()))
        };
        assert_eq!(timeout(&["list"]).unwrap(), None, "default 0: no timeout");
        assert_eq!(timeout(&["list", "--request-timeout", "0"]).unwrap(), None);
        assert_eq!(timeout(&["list", "--request-timeout=0s"]).unwrap(), None);
        assert_eq!(
            timeout(&["list", "--request-timeout", "5"]).unwrap(),
            Some(Duration::from_secs(5)),
            "a bare number is seconds, as kubectl"
        );
        assert_eq!(
            timeout(&["--request-timeout=1m", "list"]).unwrap(),
            Some(Duration::from_secs(60)),
            "global: before the command too"
        );
        assert_eq!(
            timeout(&["list", "--request-timeout", "1m30s"]).unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            timeout(&["list", "--request-timeout", "250ms"]).unwrap(),
            Some(Duration::from_millis(250))
        );
        for bad in ["-1", "-5s", "soon", "5x"] {
            let err = parse_request_timeout(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(timeout(&["list", "--request-timeout", "soon"]).is_err());
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = parse(&[
            "inspect",
            "web",
            "-n",
            "prod",
            "-o",
            "json",
            "--no-color",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.global.output.format(), OutputFormat::Json);
        assert!(cli.global.no_color);
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.cluster_domain, "cluster.local");
        assert!(matches!(cli.command, Commands::Inspect(ref a) if a.name == "web"));
    }

    #[test]
    fn usage_errors_exit_with_2() {
        for bad in [
            &["list", "-o", "xml"][..],
            &["list", "-o", "jsonpath={.items[*].name"][..],
            &["list", "-o", "jsonpath="][..],
            &["list", "-o", "custom-columns=NAME"][..],
            &["list", "--sort-by", "{.items["][..],
            &["list", "-A", "-n", "x"][..],
            &["orphans", "--dry-run=server"][..],
            &["orphans", "--delete", "--dry-run=sometimes"][..],
            &["completion", "powershell"][..],
            &["nope"][..],
        ] {
            let err = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} should not parse"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn durations_read_like_kubectls() {
        use jiff::SignedDuration as D;
        for (text, secs) in [
            ("90s", 90),
            ("5m", 300),
            ("1h30m", 5400),
            ("0", 0),
            ("PT2M", 120),
        ] {
            assert_eq!(parse_duration(text), Ok(D::from_secs(secs)), "{text}");
        }
        for bad in ["", "soon", "-5m", "5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let cli = parse(&["status", "web", "--timeout", "2m"]).unwrap();
        let Commands::Status(args) = cli.command else {
            panic!("status expected")
        };
        assert!(args.follows() && !args.watch, "--timeout implies --watch");
        assert_eq!(args.stall_after, D::from_secs(300));
        assert!(parse(&["status", "web", "--timeout", "later"]).is_err());
    }

    #[test]
    fn output_family_flags() {
        let cli = parse(&[
            "list",
            "-o",
            "jsonpath={range .items[*]}{.name}{\"\\n\"}{end}",
            "--sort-by",
            "{.replicas}",
            "--no-headers",
            "-L",
            "app,tier",
            "--label-columns",
            "app.kubernetes.io/name",
            "--show-labels",
        ])
        .unwrap();
        assert_eq!(cli.global.output.format(), OutputFormat::JsonPath);
        assert_eq!(
            cli.global.sort_by.as_ref().map(|e| e.written.as_str()),
            Some("{.replicas}")
        );
        assert!(cli.global.no_headers && cli.global.show_labels);
        assert_eq!(
            cli.global.label_columns,
            vec!["app", "tier", "app.kubernetes.io/name"]
        );
        for simple in ["table", "wide", "json", "yaml", "name"] {
            let cli = parse(&["list", "-o", simple]).unwrap();
            assert!(cli.global.output.format().is_text() == matches!(simple, "table" | "wide"));
        }
        let err = parse(&["list", "-o", "custom-columns=A:.a["]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("custom-columns column \"A\""),
            "{err}"
        );
    }

    #[test]
    fn resize_flags() {
        let cli = parse(&[
            "resize",
            "db",
            "--size",
            "20Gi",
            "--dry-run",
            "--include-scaled-down",
        ])
        .unwrap();
        let Commands::Resize(args) = cli.command else {
            panic!("resize expected")
        };
        assert_eq!((args.name.as_str(), args.size.as_str()), ("db", "20Gi"));
        assert_eq!(args.dry_run, DryRun::Client, "bare --dry-run means client");
        assert!(args.include_scaled_down && !args.yes);
        assert_eq!(args.timeout, jiff::SignedDuration::from_secs(300));
        assert_eq!(
            parse(&["resize", "db"]).unwrap_err().exit_code(),
            2,
            "--size is required"
        );
        for (bad, why) in [
            ("abc", "not a storage size"),
            ("0", "0 bytes"),
            ("-1Gi", "negative"),
        ] {
            let err = parse(&["resize", "db", "--size", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        let err = parse(&["status", "web", "--timeout", "-5s"]).unwrap_err();
        assert!(err.to_string().contains("is negative"), "{err}");
    }

    #[test]
    fn orphans_delete_flags() {
        let cli = parse(&[
            "orphans",
            "web",
            "--delete",
            "--dry-run=server",
            "--yes",
            "--exit-code",
        ])
        .unwrap();
        let Commands::Orphans(args) = cli.command else {
            panic!("orphans expected")
        };
        assert_eq!(args.name.as_deref(), Some("web"));
        assert!(args.delete && args.yes && args.exit_code);
        assert_eq!(args.dry_run, DryRun::Server);
        let cli = parse(&["orphans", "--delete", "--dry-run"]).unwrap();
        let Commands::Orphans(args) = cli.command else {
            panic!("orphans expected")
        };
        assert_eq!(
            args.dry_run,
            DryRun::Client,
            "bare --dry-run means client, as in kubectl"
        );
    }
}
