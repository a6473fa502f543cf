//! `kubectl sts status NAME [--watch] [--timeout D]`: the rollout status that understands
//! StatefulSets (partition, OnDelete, Recreate, minReadySeconds, maxUnavailable,
//! ordinals.start, the rollback trap), computed by [`sts_model::progress`].
//!
//! Requests: the StatefulSet (GET), its pods and revisions (LIST by its selector), the Events about it (LIST by
//! field selector; skipped with a warning when RBAC forbids). With `--watch`, the same three
//! as watches ([`crate::watch`]), re-evaluated on every change and when a pod's
//! `minReadySeconds` or the stall threshold passes; one line is printed per change.
//!
//! Exit codes ([`Outcome`]): 0 done, 3 not done (without `--watch`), 4 `--timeout` passed,
//! 5 stuck, 130 interrupted; errors 1, usage errors 2.

use std::io::Write;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde::Serialize;
use sts_model::objects::statefulset_selector_query;
use sts_model::progress::{OrdinalProgress, Phase, Progress, progress_line, rollout_progress};

use crate::cli::StatusArgs;
use crate::collect::list_events_lenient;
use crate::error::{Error, Result, Scope};
use crate::printer::{Printer, TextStyle, View};
use crate::render::{VIEW_API_VERSION, cell, new_table, paint, write_table};
use crate::target::{Parts, Target, get_statefulset, single_namespace};
use crate::watch::Follow;
use crate::{Context, Outcome};

/// `kind: StatefulSetRolloutStatus` (docs/contracts.md): the [`Progress`] with the object's
/// name.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatusView {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    #[serde(flatten)]
    pub progress: Progress,
}

impl RolloutStatusView {
    pub fn new(namespace: &str, name: &str, progress: Progress) -> Self {
        Self {
            api_version: VIEW_API_VERSION,
            kind: "StatefulSetRolloutStatus",
            namespace: namespace.to_string(),
            name: name.to_string(),
            progress,
        }
    }

    /// What the command exits with for this answer.
    pub fn outcome(&self) -> Outcome {
        match self.progress.phase {
            p if p.is_done() => Outcome::Success,
            Phase::Stuck => Outcome::RolloutStuck,
            _ => Outcome::RolloutNotDone,
        }
    }
}

pub async fn run(ctx: &Context, args: &StatusArgs) -> Result<Outcome> {
    if args.follows() {
        return follow(ctx, args).await;
    }
    let target = Target::fetch(
        ctx,
        "status",
        &args.name,
        Parts {
            pods: true,
            claims: false,
        },
    )
    .await?;
    let events =
        list_events_lenient(ctx, Some(&target.namespace), &events_fields(&args.name)).await?;
    let printer = Printer::for_context(ctx);
    let progress = rollout_progress(
        &target.statefulset,
        &target.pods,
        &events,
        printer.style().now,
        args.stall_after,
    );
    let view = RolloutStatusView::new(&target.namespace, &args.name, progress);
    printer.print(&mut std::io::stdout().lock(), &view)?;
    Ok(view.outcome())
}

/// The field selector of the Events about StatefulSet `name`.
fn events_fields(name: &str) -> String {
    format!("involvedObject.kind=StatefulSet,involvedObject.name={name}")
}

/// `--watch`: watches on the StatefulSet, its pods and its Events; a line (or, with `-o
/// json|yaml`, a view) per change, until done, stuck, `--timeout`, or Ctrl-C.
async fn follow(ctx: &Context, args: &StatusArgs) -> Result<Outcome> {
    let namespace = single_namespace(ctx, "status")?;
    let name = args.name.as_str();
    // A GET first: NotFound with close names, and the selector (immutable) for the pod watch.
    let sts = get_statefulset(ctx, namespace, name).await?;
    let selector = statefulset_selector_query(&sts).ok_or_else(|| {
        Error::Other(format!(
            "StatefulSet {name:?} {} has an empty selector",
            Scope::Namespace(namespace.to_string())
        ))
    })?;
    let deadline = args
        .timeout
        .filter(|t| !t.is_zero())
        .map(|t| tokio::time::Instant::now() + t.unsigned_abs());
    let scope = Scope::Namespace(namespace.to_string());
    let mut follow = Follow::new(&ctx.server);
    let interrupt = follow.interrupt();
    let statefulsets = follow.watch(
        ctx.api_in::<StatefulSet>(namespace),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
        scope.clone(),
        true,
    );
    let pods = follow.watch(
        ctx.api_in::<Pod>(namespace),
        watcher::Config::default().labels(&selector),
        scope.clone(),
        true,
    );
    let events = follow.watch(
        ctx.api_in::<Event>(namespace),
        watcher::Config::default().fields(&events_fields(name)),
        scope,
        false,
    );
    let printer = Printer::for_context(ctx);
    let mut out = std::io::stdout().lock();
    let timed_out = |_: &mut dyn Write| -> Result<Outcome> {
        // `{:#}`: jiff's friendly form (3s, 5m), as the flag is written.
        let waited = args.timeout.map(|t| format!("{t:#}")).unwrap_or_default();
        // Not eprintln!: it panics when stderr is closed.
        let _ = writeln!(
            std::io::stderr(),
            "error: timed out after {waited} waiting for the rollout of {name}"
        );
        Ok(Outcome::TimedOut)
    };

    // Answer only from complete lists: the StatefulSet and pod watches have listed once.
    let listed = async {
        let _ = statefulsets.wait_until_ready().await;
        let _ = pods.wait_until_ready().await;
    };
    let mut listed = std::pin::pin!(listed);
    loop {
        tokio::select! {
            () = &mut listed => break,
            changed = follow.changed() => changed?,
            () = until(deadline) => return timed_out(&mut out),
            () = interrupt.notified() => return Ok(Outcome::Interrupted),
        }
    }

    let key = ObjectRef::<StatefulSet>::new(name).within(namespace);
    let mut last_line: Option<String> = None;
    loop {
        let Some(sts) = statefulsets.get(&key) else {
            return Err(Error::Other(format!(
                "StatefulSet {name:?} {} was deleted while watching its rollout",
                Scope::Namespace(namespace.to_string())
            )));
        };
        let pods: Vec<Pod> = pods.state().iter().map(|p| Pod::clone(p)).collect();
        let events: Vec<Event> = events.state().iter().map(|e| Event::clone(e)).collect();
        let now = Timestamp::now();
        let progress = rollout_progress(&sts, &pods, &events, now, args.stall_after);
        let wake = progress.next_change;
        let line = progress_line(name, &progress);
        let view = RolloutStatusView::new(namespace, name, progress);
        if last_line.as_ref() != Some(&line) {
            if !ctx.output.is_text() {
                // json, yaml, jsonpath, custom-columns: the view per change.
                printer.clone().at(now).print(&mut out, &view)?;
            } else {
                let color = printer.style().color;
                writeln!(
                    out,
                    "{}",
                    paint(&line, phase_color(view.progress.phase), color)
                )?;
            }
            out.flush()?;
            last_line = Some(line);
        }
        match view.outcome() {
            Outcome::RolloutNotDone => {}
            done_or_stuck => return Ok(done_or_stuck),
        }
        let wake = wake.map(|at| {
            tokio::time::Instant::now() + at.duration_since(Timestamp::now()).unsigned_abs()
        });
        tokio::select! {
            changed = follow.changed() => changed?,
            () = until(wake) => {}
            () = until(deadline) => return timed_out(&mut out),
            () = interrupt.notified() => return Ok(Outcome::Interrupted),
        }
    }
}

/// Sleep until `at`; forever when `None`.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn phase_color(phase: Phase) -> Option<comfy_table::Color> {
    use comfy_table::Color;
    match phase {
        Phase::Complete | Phase::PartitionComplete => Some(Color::Green),
        Phase::Progressing | Phase::WaitingForDeletion => Some(Color::Yellow),
        Phase::Stuck => Some(Color::Red),
    }
}

impl View for RolloutStatusView {
    fn object_names(&self) -> Option<Vec<String>> {
        Some(vec![format!("statefulset.apps/{}", self.name)])
    }

    fn write_text(&self, out: &mut impl Write, style: &TextStyle) -> Result<()> {
        let p = &self.progress;
        let mut strategy = p.strategy.clone();
        if p.strategy == "RollingUpdate" {
            strategy.push_str(&format!(", partition {}", p.partition));
            if let Some(max) = &p.max_unavailable {
                strategy.push_str(&format!(", maxUnavailable {max}"));
            }
        }
        if p.min_ready_seconds > 0 {
            strategy.push_str(&format!(", minReadySeconds {}", p.min_ready_seconds));
        }
        writeln!(
            out,
            "StatefulSet {}/{}: {strategy}",
            self.namespace, self.name
        )?;
        writeln!(
            out,
            "Revisions: current {}, update {}",
            p.current_revision.as_deref().unwrap_or("<none>"),
            p.update_revision.as_deref().unwrap_or("<none>")
        )?;
        let mut table = new_table([
            "ORDINAL",
            "POD",
            "REVISION",
            "UPDATED",
            "READY",
            "AVAILABLE",
            "NOTE",
        ]);
        for o in &p.ordinals {
            let yes = |b: bool| if b { "yes" } else { "no" };
            table.add_row(vec![
                cell(o.ordinal.to_string(), None, false),
                cell(o.pod.clone(), None, false),
                cell(
                    o.revision.clone().unwrap_or_else(|| "-".into()),
                    None,
                    false,
                ),
                cell(
                    if o.exists {
                        yes(o.on_update_revision)
                    } else {
                        "-"
                    },
                    None,
                    false,
                ),
                cell(if o.exists { yes(o.ready) } else { "-" }, None, false),
                cell(if o.exists { yes(o.available) } else { "-" }, None, false),
                cell(note(p, o, style.now), None, false),
            ]);
        }
        write_table(out, &table)?;
        let status = format!("{}: {}", p.phase.label(), p.message);
        writeln!(
            out,
            "Status: {}",
            paint(&status, phase_color(p.phase), style.color)
        )?;
        Ok(())
    }
}

/// The NOTE column: why this ordinal is where it is.
fn note(p: &Progress, o: &OrdinalProgress, now: Timestamp) -> String {
    if !o.desired {
        return "above the desired ordinals: being removed".into();
    }
    if !o.exists {
        return "no pod yet".into();
    }
    if o.terminating {
        return "terminating".into();
    }
    if p.delete_to_update.contains(&o.pod) {
        return "changes only when deleted".into();
    }
    if !o.on_update_revision && !o.gets_update {
        return "below the partition: keeps the current revision".into();
    }
    if o.gets_update && !o.on_update_revision {
        return "to be updated".into();
    }
    if let Some(at) = o.available_at {
        let left = at.duration_since(now).as_secs().max(0);
        return format!("available in {}s (minReadySeconds)", left);
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use sts_model::fixtures::{now, pod_for, statefulset};

    fn render(view: &RolloutStatusView) -> String {
        let mut out = Vec::new();
        Printer::new(crate::cli::OutputFormat::Table, false)
            .at(now())
            .print(&mut out, view)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_partitioned_rollout_shows_which_ordinals_wait_on_purpose() {
        let sts = statefulset("prod", "web")
            .replicas(3)
            .partition(1)
            .revisions("web-a", "web-b")
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("web-a").build(),
            pod_for(&sts, 1).build(),
            pod_for(&sts, 2).build(),
        ];
        let progress = rollout_progress(&sts, &pods, &[], now(), SignedDuration::from_secs(300));
        let view = RolloutStatusView::new("prod", "web", progress);
        assert_eq!(view.outcome(), Outcome::Success);
        crate::testing::assert_schema(
            "StatefulSetRolloutStatus",
            &serde_json::to_value(&view).unwrap(),
        );
        assert_eq!(
            render(&view),
            "\
StatefulSet prod/web: RollingUpdate, partition 1
Revisions: current web-a, update web-b
ORDINAL   POD     REVISION   UPDATED   READY   AVAILABLE   NOTE
0         web-0   web-a      no        yes     yes         below the partition: keeps the current revision
1         web-1   web-b      yes       yes     yes
2         web-2   web-b      yes       yes     yes
Status: partition complete: partitioned rollout complete: 2 pod(s) at or above ordinal 1 on revision web-b; 1 below stay on web-a until the partition is lowered
"
        );
    }

    #[test]
    fn on_delete_and_missing_pods_are_not_done_and_say_why() {
        let sts = statefulset("prod", "db")
            .replicas(3)
            .on_delete()
            .revisions("db-a", "db-b")
            .build();
        let pods = vec![
            pod_for(&sts, 0).revision("db-a").build(),
            pod_for(&sts, 1).build(),
        ];
        let progress = rollout_progress(&sts, &pods, &[], now(), SignedDuration::from_secs(300));
        let view = RolloutStatusView::new("prod", "db", progress);
        assert_eq!(view.outcome(), Outcome::RolloutNotDone);
        assert_eq!(
            render(&view),
            "\
StatefulSet prod/db: OnDelete
Revisions: current db-a, update db-b
ORDINAL   POD    REVISION   UPDATED   READY   AVAILABLE   NOTE
0         db-0   db-a       no        yes     yes         changes only when deleted
1         db-1   db-b       yes       yes     yes
2         db-2   -          -         -       -           no pod yet
Status: progressing: waiting for pod db-2 to be created
"
        );
        let json = serde_json::to_value(&view).unwrap();
        crate::testing::assert_schema("StatefulSetRolloutStatus", &json);
        assert_eq!(json["phase"], "Progressing");
        assert_eq!(json["deleteToUpdate"], serde_json::json!(["db-0"]));
        assert_eq!(json["counts"]["updated"], 1);
    }
}
