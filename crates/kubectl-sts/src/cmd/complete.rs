//! `kubectl sts <TAB>` through kubectl itself.
//!
//! kubectl (1.26 and newer) completes a plugin's arguments by running an executable named
//! `kubectl_complete-<plugin>` from PATH with the words after the plugin name, the last one being
//! the word under the cursor (often `""`), and reading Cobra's completion protocol back: one
//! candidate per line, then `:<directive>` (kubernetes/kubernetes#105867,
//! `k8s.io/kubectl/pkg/cmd/plugin` and `spf13/cobra` `completions.go`). `kubectl-sts` acts as
//! that helper when it is started under the name [`HELPER_NAME`] (a symlink next to it) or as
//! `kubectl-sts __complete WORDS…`.
//!
//! What is completed: subcommands; flags (global ones and the subcommand's); values of `-o`,
//! `--dry-run` and other flags with fixed values; namespaces after `-n`; contexts after
//! `--context`; StatefulSet names where a subcommand takes `NAME`; the revisions of that
//! StatefulSet after `history --revision`, `diff NAME` and `rollback --to-revision`. Looking names up needs the
//! cluster: one LIST with a short timeout, and nothing is offered when it fails (completion never
//! prints errors into the shell).

use std::io::Write;
use std::time::Duration;

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::config::Kubeconfig;

use crate::cli::Cli;
use crate::context::Context;
use crate::error::{Error, Result};

/// The file name kubectl looks for on PATH to complete `kubectl sts …`.
pub const HELPER_NAME: &str = "kubectl_complete-sts";

/// Cobra's `ShellCompDirectiveNoFileComp`: do not fall back to file names.
const NO_FILE_COMP: u8 = 4;

/// How long a completion may wait for the API server.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the word under the cursor should become, decided from the words alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Subcommands,
    Flags {
        subcommand: Option<String>,
    },
    /// A flag's fixed values (`-o`, `--dry-run`, the shells of `completion`).
    Values(Vec<String>),
    Namespaces,
    Contexts,
    StatefulSets,
    /// Revisions of the StatefulSet named earlier on the line: their numbers and names, and
    /// with `keywords` also `current`, `update` and `live` (what `history --revision` and
    /// `diff` accept besides; `rollback --to-revision` takes only real revisions).
    Revisions {
        keywords: bool,
    },
    Nothing,
}

/// The words of the command line that matter for a lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// The subcommand's `NAME`, once given.
    pub name: Option<String>,
}

/// Decides what to complete. `words` are the arguments after `sts`; the last is the word being
/// completed (kubectl passes `""` for a new word). Returns the decision, the flags seen, and
/// the prefix candidates must start with.
pub fn plan(words: &[String]) -> (Want, Seen, String) {
    let command = Cli::command();
    let (current, before) = match words.split_last() {
        Some((last, rest)) => (last.clone(), rest),
        None => (String::new(), &[][..]),
    };
    let mut seen = Seen::default();
    let mut subcommand: Option<clap::Command> = None;
    let mut positionals = 0usize;
    let mut pending: Option<clap::Arg> = None;
    for word in before {
        if let Some(arg) = pending.take() {
            record(&mut seen, &arg, word);
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            let (name, inline) = word
                .split_once('=')
                .map_or((word.as_str(), None), |(n, v)| (n, Some(v)));
            if let Some(arg) = find_flag(&command, subcommand.as_ref(), name) {
                match inline {
                    Some(value) => record(&mut seen, &arg, value),
                    None if takes_value(&arg) => pending = Some(arg),
                    None => {}
                }
            }
            continue;
        }
        match &subcommand {
            None => subcommand = command.find_subcommand(word).cloned(),
            Some(sub) => {
                if sub
                    .get_positionals()
                    .nth(positionals)
                    .map(|a| a.get_id().as_str())
                    == Some("name")
                {
                    seen.name = Some(word.clone());
                }
                positionals += 1;
            }
        }
    }
    let want = if let Some(arg) = pending {
        values_of(&arg)
    } else if current.starts_with('-') {
        Want::Flags {
            subcommand: subcommand.as_ref().map(|s| s.get_name().to_string()),
        }
    } else {
        match &subcommand {
            None => Want::Subcommands,
            Some(sub) => positional(sub, positionals),
        }
    };
    (want, seen, current)
}

fn record(seen: &mut Seen, arg: &clap::Arg, value: &str) {
    let slot = match arg.get_id().as_str() {
        "kubeconfig" => &mut seen.kubeconfig,
        "context" => &mut seen.context,
        "namespace" => &mut seen.namespace,
        _ => return,
    };
    *slot = Some(value.to_string());
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
}

/// A flag by `--long` or `-s`, among the global ones and the subcommand's.
fn find_flag(root: &clap::Command, sub: Option<&clap::Command>, name: &str) -> Option<clap::Arg> {
    let matches = |arg: &&clap::Arg| {
        if let Some(long) = name.strip_prefix("--") {
            arg.get_long() == Some(long)
        } else {
            let short = name.strip_prefix('-').and_then(|s| s.chars().next());
            short.is_some() && arg.get_short() == short
        }
    };
    sub.into_iter()
        .flat_map(|s| s.get_arguments())
        .chain(root.get_arguments())
        .find(matches)
        .cloned()
}

fn values_of(arg: &clap::Arg) -> Want {
    match arg.get_id().as_str() {
        "namespace" => Want::Namespaces,
        "context" => Want::Contexts,
        // history --revision, diff FROM TO
        "revision" | "from" | "to" => Want::Revisions { keywords: true },
        // rollback --to-revision
        "to_revision" => Want::Revisions { keywords: false },
        _ => {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if values.is_empty() {
                Want::Nothing
            } else {
                Want::Values(values)
            }
        }
    }
}

/// The `index`-th positional argument of `sub`: a StatefulSet when it is the `NAME`.
fn positional(sub: &clap::Command, index: usize) -> Want {
    let Some(arg) = sub.get_positionals().nth(index) else {
        return Want::Nothing;
    };
    if arg.get_id().as_str() == "name" {
        return Want::StatefulSets;
    }
    values_of(arg)
}

/// Candidates for `want` without a cluster: subcommands, flags, fixed values.
pub fn static_candidates(want: &Want) -> Vec<String> {
    let command = Cli::command();
    match want {
        Want::Subcommands => command
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect(),
        Want::Flags { subcommand } => {
            let sub = subcommand
                .as_deref()
                .and_then(|s| command.find_subcommand(s));
            sub.into_iter()
                .flat_map(|s| s.get_arguments())
                .chain(command.get_arguments())
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .chain(std::iter::once("--help".to_string()))
                .collect()
        }
        Want::Values(values) => values.clone(),
        Want::Namespaces
        | Want::Contexts
        | Want::StatefulSets
        | Want::Revisions { .. }
        | Want::Nothing => Vec::new(),
    }
}

/// Cobra's protocol: the candidates starting with `prefix`, one per line, then the directive.
pub fn render(candidates: &[String], prefix: &str, out: &mut impl Write) -> Result<()> {
    let mut shown: Vec<&String> = candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .collect();
    shown.sort();
    shown.dedup();
    for c in shown {
        writeln!(out, "{c}").map_err(Error::Output)?;
    }
    writeln!(out, ":{NO_FILE_COMP}").map_err(Error::Output)?;
    Ok(())
}

/// Completes `words` (see [`plan`]), looking names up in the cluster when needed.
pub async fn run(words: &[String], out: &mut impl Write) -> Result<()> {
    let (want, seen, prefix) = plan(words);
    let candidates = match want {
        Want::Namespaces | Want::StatefulSets | Want::Contexts | Want::Revisions { .. } => {
            tokio::time::timeout(LOOKUP_TIMEOUT, lookup(&want, &seen))
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or_default()
        }
        other => static_candidates(&other),
    };
    render(&candidates, &prefix, out)
}

async fn lookup(want: &Want, seen: &Seen) -> Result<Vec<String>> {
    if *want == Want::Contexts {
        let kubeconfig = match &seen.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|source| Error::Kubeconfig { source })?;
        return Ok(kubeconfig.contexts.into_iter().map(|c| c.name).collect());
    }
    let mut argv = vec!["kubectl-sts".to_string(), "version".to_string()];
    for (flag, value) in [
        ("--kubeconfig", &seen.kubeconfig),
        ("--context", &seen.context),
        ("--namespace", &seen.namespace),
    ] {
        if let Some(v) = value {
            argv.extend([flag.to_string(), v.clone()]);
        }
    }
    let cli =
        <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| Error::Usage(e.to_string()))?;
    let ctx = Context::from_args(&cli.global).await?;
    match want {
        Want::Namespaces => names(ctx.cluster_api::<Namespace>()).await,
        Want::Revisions { keywords } => {
            let Some(name) = &seen.name else {
                return Ok(Vec::new());
            };
            let revisions = ctx
                .api_in::<ControllerRevision>(&ctx.namespace)
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::Other(format!("completion lookup: {e}")))?;
            Ok(revision_candidates(&revisions.items, name, *keywords))
        }
        _ => names(ctx.api_in::<StatefulSet>(&ctx.namespace)).await,
    }
}

/// The numbers and names of the revisions a StatefulSet `name` controls, newest first, and
/// the keywords when asked for.
fn revision_candidates(
    revisions: &[ControllerRevision],
    name: &str,
    keywords: bool,
) -> Vec<String> {
    let mut own: Vec<&ControllerRevision> =
        revisions
            .iter()
            .filter(|r| {
                r.metadata.owner_references.iter().flatten().any(|o| {
                    o.controller == Some(true) && o.kind == "StatefulSet" && o.name == name
                })
            })
            .collect();
    own.sort_by_key(|r| std::cmp::Reverse(r.revision));
    let mut out: Vec<String> = own.iter().map(|r| r.revision.to_string()).collect();
    out.extend(own.iter().filter_map(|r| r.metadata.name.clone()));
    if keywords {
        out.extend(["current", "update", "live"].map(String::from));
    }
    out
}

/// The names of the objects `api` lists (metadata only).
async fn names<K>(api: kube::Api<K>) -> Result<Vec<String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| Error::Other(format!("completion lookup: {e}")))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_string()).collect()
    }

    fn complete(w: &[&str]) -> (Want, Vec<String>, String) {
        let (want, _, prefix) = plan(&words(w));
        let mut out = Vec::new();
        render(&static_candidates(&want), &prefix, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        (want, text.lines().map(str::to_string).collect(), prefix)
    }

    #[test]
    fn subcommands_then_names_then_nothing() {
        let (want, lines, _) = complete(&[""]);
        assert_eq!(want, Want::Subcommands);
        assert!(lines.contains(&"inspect".to_string()) && lines.contains(&"orphans".to_string()));
        assert_eq!(lines.last().map(String::as_str), Some(":4"));
        let (_, lines, _) = complete(&["in"]);
        assert_eq!(lines, ["inspect", ":4"]);
        assert_eq!(plan(&words(&["inspect", ""])).0, Want::StatefulSets);
        assert_eq!(plan(&words(&["rollback", "web", ""])).0, Want::Nothing);
        assert_eq!(plan(&words(&["list", ""])).0, Want::Nothing);
    }

    #[test]
    fn flag_values_and_flags() {
        let (want, lines, _) = complete(&["list", "-o", ""]);
        assert_eq!(
            want,
            Want::Values(words(&[
                "table",
                "wide",
                "json",
                "yaml",
                "name",
                "jsonpath=",
                "custom-columns="
            ]))
        );
        assert_eq!(
            lines,
            [
                "custom-columns=",
                "json",
                "jsonpath=",
                "name",
                "table",
                "wide",
                "yaml",
                ":4"
            ]
        );
        assert_eq!(plan(&words(&["-n", ""])).0, Want::Namespaces);
        assert_eq!(
            plan(&words(&["inspect", "--context", ""])).0,
            Want::Contexts
        );
        let (_, lines, _) = complete(&["orphans", "--de"]);
        assert_eq!(lines, ["--delete", ":4"]);
        let (_, lines, _) = complete(&["completion", ""]);
        assert_eq!(lines, ["bash", "fish", "zsh", ":4"]);
    }

    #[test]
    fn revisions_of_the_named_statefulset() {
        let (want, seen, _) = plan(&words(&["diff", "web", ""]));
        assert_eq!(want, Want::Revisions { keywords: true });
        assert_eq!(seen.name.as_deref(), Some("web"));
        assert_eq!(
            plan(&words(&["diff", "web", "1", ""])).0,
            Want::Revisions { keywords: true }
        );
        assert_eq!(
            plan(&words(&["history", "web", "--revision", ""])).0,
            Want::Revisions { keywords: true }
        );
        assert_eq!(
            plan(&words(&["rollback", "-n", "x", "web", "--to-revision", ""])).0,
            Want::Revisions { keywords: false }
        );
        use sts_model::fixtures::{controller_revision, statefulset};
        let web = statefulset("ns", "web").build();
        let other = statefulset("ns", "webx").build();
        let revisions = vec![
            controller_revision(&web, "web-a", 1),
            controller_revision(&web, "web-b", 3),
            controller_revision(&other, "webx-c", 2),
        ];
        assert_eq!(
            revision_candidates(&revisions, "web", false),
            ["3", "1", "web-b", "web-a"]
        );
        assert_eq!(
            revision_candidates(&revisions, "web", true).len(),
            7,
            "plus current, update, live"
        );
    }

    #[test]
    fn flags_and_their_values_are_not_positionals() {
        // `-n shop` is a flag and its value, so `inspect`'s NAME is still next.
        let (want, seen, prefix) = plan(&words(&["-n", "shop", "inspect", "--context=dev", "w"]));
        assert_eq!(want, Want::StatefulSets);
        assert_eq!(seen.namespace.as_deref(), Some("shop"));
        assert_eq!(seen.context.as_deref(), Some("dev"));
        assert_eq!(prefix, "w");
    }
}
