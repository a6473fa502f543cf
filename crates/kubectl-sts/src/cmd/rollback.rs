//! `kubectl sts rollback NAME [--to-revision REV] [--dry-run=none|client|server] [--yes]`
//!
//! Does what `kubectl rollout undo statefulset/NAME` does — sends the target ControllerRevision's
//! `data` (`{"spec":{"template":{…,"$patch":"replace"}}}`) as a strategic merge patch — but first
//! shows the diff live → target, says that the controller will renumber the target revision to
//! max+1, and applies only after confirmation.

use std::io::Write;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Patch, PatchParams};
use serde_json::Value;
use sts_model::diff::{TemplateDiff, unified};
use sts_model::revision::{History, RollbackPlan};
use sts_model::rollout::{StuckPod, rollback_trap_message, trap_after_rollback};
use tracing::debug;

use crate::cli::{DryRun, RollbackArgs};
use crate::collect::map_kube_error;
use crate::error::{Error, Result, Scope};
use crate::prompt::require_confirmation;
use crate::render::write_unified;
use crate::target::{Parts, Target};
use crate::{Context, Outcome};

/// Field manager recorded on the StatefulSet for our patch.
pub const FIELD_MANAGER: &str = "kubectl-sts";

pub async fn run(ctx: &Context, args: &RollbackArgs) -> Result<Outcome> {
    if !ctx.output.is_text() {
        return Err(Error::Usage(
            "rollback prints a plan and a result as text; -o json|yaml|name|jsonpath|custom-columns is not supported (use `kubectl sts diff -o json`)"
                .into(),
        ));
    }
    // With the pods: a pod left behind on a broken revision is named before anything is sent.
    let parts = Parts {
        pods: true,
        claims: false,
    };
    let objects = Target::fetch(ctx, "rollback", &args.name, parts).await?;
    let history = History::new(&objects.statefulset, &objects.revisions)?;
    let plan = history.plan_rollback(args.to_revision.as_deref())?;
    let diff = plan_diff(&history, &plan)?;

    let mut out = std::io::stdout().lock();
    render_plan(&mut out, &history, &plan, &diff, ctx.color)?;
    if plan.already_live {
        return Ok(Outcome::Success);
    }
    let stuck = trap_after_rollback(&objects.statefulset, &objects.pods, &plan.target.name);
    render_trap_warning(&mut out, &stuck)?;
    match args.dry_run {
        DryRun::Client => {
            writeln!(out, "Dry run (client): nothing was sent to the server.")?;
            return Ok(Outcome::Success);
        }
        // The server persists nothing on dryRun=All, so there is nothing to confirm.
        DryRun::Server => {}
        DryRun::None => {
            out.flush()?;
            require_confirmation(args.yes, ctx.interactive, &question(&history, &plan), "yes")?;
        }
    }

    let ns = history.namespace.as_str();
    let scope = Scope::Namespace(ns.to_string());
    let mut body = patch_body(
        &plan,
        objects.statefulset.metadata.resource_version.as_deref(),
    );
    let params = PatchParams {
        dry_run: args.dry_run == DryRun::Server,
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let api = ctx.api_in::<StatefulSet>(ns);
    let mut attempt = 1;
    let result = loop {
        debug!(
            verb = "patch",
            resource = "statefulsets",
            scope = %scope,
            name = %history.statefulset,
            dry_run = params.dry_run,
            attempt,
            "API request"
        );
        match api
            .patch(&history.statefulset, &params, &Patch::Strategic(&body))
            .await
        {
            Ok(sts) => break sts,
            // The resourceVersion precondition failed. The controller writes status all the
            // time (and others write labels); that changes nothing the user confirmed. Decide
            // again from fresh state and retry only when the same patch would be sent.
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < MAX_ATTEMPTS => {
                attempt += 1;
                let fresh = Target::fetch(ctx, "rollback", &args.name, Parts::default()).await?;
                match replan(
                    &objects.statefulset,
                    &plan,
                    &fresh.statefulset,
                    &fresh.revisions,
                    args,
                ) {
                    Ok(fresh_body) => {
                        debug!(
                            resource_version = ?fresh.statefulset.metadata.resource_version,
                            "the StatefulSet changed only outside its spec; retrying the same rollback"
                        );
                        body = fresh_body;
                    }
                    Err(what) => return Err(modified_error(ns, &history.statefulset, &what)),
                }
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let what = format!(
                    "it kept changing: {MAX_ATTEMPTS} attempts met a newer resourceVersion"
                );
                return Err(modified_error(ns, &history.statefulset, &what));
            }
            Err(e) => {
                return Err(map_kube_error(
                    e,
                    "patch",
                    "statefulsets",
                    scope,
                    &ctx.server,
                    Some(&history.statefulset),
                ));
            }
        }
    };
    render_result(&mut out, &history, &plan, args.dry_run, &result)?;
    Ok(Outcome::Success)
}

/// The diff a rollback would make: live spec.template → target revision.
pub fn plan_diff(history: &History, plan: &RollbackPlan<'_>) -> Result<TemplateDiff> {
    unified(
        &live_label(history),
        &history.live,
        &plan.target.label(),
        plan.template,
    )
    .map_err(|e| Error::Other(e.to_string()))
}

/// `live (spec.template of web, = revision 3 web-…)` when the live template is a known revision.
fn live_label(history: &History) -> String {
    let equal = history
        .revisions
        .iter()
        .rev()
        .find(|r| r.template.as_ref().is_ok_and(|t| *t == history.live));
    match equal {
        Some(r) => format!(
            "live (spec.template of {}, = {})",
            history.statefulset,
            r.label()
        ),
        None => format!("live (spec.template of {})", history.statefulset),
    }
}

/// Patch attempts when the resourceVersion precondition keeps failing for status-only writes.
const MAX_ATTEMPTS: u32 = 4;

/// The refusal after a 409 that is not retried; `what` says what changed (from [`replan`]).
/// Exit code 1, like every runtime error.
fn modified_error(namespace: &str, name: &str, what: &str) -> Error {
    Error::Other(format!(
        "StatefulSet {namespace}/{name} was modified after it was read: {what}; nothing was changed. Run the command again to see the new diff."
    ))
}

/// The patch to send after a 409, when the rollback the user confirmed is still the same
/// decision on `fresh` state: the spec was not changed (`metadata.generation` is equal; status
/// and metadata writes do not bump it, per the API conventions), and planning again picks the
/// same target revision with the same patch. `Err` says what changed: stop.
fn replan(
    read: &StatefulSet,
    planned: &RollbackPlan<'_>,
    fresh: &StatefulSet,
    fresh_revisions: &[k8s_openapi::api::apps::v1::ControllerRevision],
    args: &RollbackArgs,
) -> std::result::Result<Value, String> {
    if read.metadata.uid != fresh.metadata.uid {
        return Err("it was deleted and created again (another UID)".into());
    }
    if read.metadata.generation != fresh.metadata.generation {
        return Err(format!(
            "its spec was changed (metadata.generation {} -> {}{})",
            show(read.metadata.generation),
            show(fresh.metadata.generation),
            last_writer(fresh).map_or_else(String::new, |m| format!(", last written by {m}"))
        ));
    }
    let history = History::new(fresh, fresh_revisions)
        .map_err(|e| format!("its revision history can no longer be read ({e})"))?;
    let again = history
        .plan_rollback(args.to_revision.as_deref())
        .map_err(|e| format!("its revision history changed ({e})"))?;
    if again.target.name != planned.target.name {
        return Err(format!(
            "the rollback would now go to {} instead of {}",
            again.target.label(),
            planned.target.label()
        ));
    }
    if again.already_live {
        return Err(format!(
            "it already runs the pod template of {}",
            again.target.label()
        ));
    }
    if again.patch != planned.patch {
        return Err(format!(
            "{} has another pod template now",
            again.target.label()
        ));
    }
    Ok(patch_body(
        &again,
        fresh.metadata.resource_version.as_deref(),
    ))
}

fn show(generation: Option<i64>) -> String {
    generation.map_or_else(|| "?".into(), |g| g.to_string())
}

/// The field manager(s) of the newest write that owns fields of the spec, from
/// `metadata.managedFields` ("a or b" when several share its time: it has a resolution of one
/// second). Owning `f:spec` is the test, not `subresource`: servers before 1.22 record the
/// controller's status writes without one.
fn last_writer(sts: &StatefulSet) -> Option<String> {
    let spec_writers: Vec<_> = sts
        .metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
        })
        .collect();
    let newest = spec_writers.iter().filter_map(|m| m.time.as_ref()).max()?;
    let mut names: Vec<&str> = spec_writers
        .iter()
        .filter(|m| m.time.as_ref() == Some(newest))
        .filter_map(|m| m.manager.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    (!names.is_empty()).then(|| names.join(" or "))
}

/// The patch sent: the revision's data as kubectl sends it, plus the resourceVersion we read,
/// so the server refuses (409) if the StatefulSet changed after the diff was shown.
pub fn patch_body(plan: &RollbackPlan<'_>, resource_version: Option<&str>) -> Value {
    let mut body = plan.patch.clone();
    if let (Some(rv), Some(obj)) = (resource_version, body.as_object_mut()) {
        obj.insert(
            "metadata".into(),
            serde_json::json!({ "resourceVersion": rv }),
        );
    }
    body
}

fn renumber_note(plan: &RollbackPlan<'_>) -> String {
    if plan.renumbers() {
        format!(
            "Note: the controller will renumber {} to revision {} (revision numbers are not stable; the name {} stays).",
            plan.target.label(),
            plan.new_number,
            plan.target.name
        )
    } else {
        format!(
            "{} is already the highest revision; its number stays.",
            plan.target.label()
        )
    }
}

/// The rollback trap (kubernetes/kubernetes#67250), said before the rollback is applied.
pub fn render_trap_warning(out: &mut impl Write, stuck: &[StuckPod]) -> Result<()> {
    if stuck.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Warning: after this rollback, {}.",
        rollback_trap_message(stuck)
    )?;
    Ok(())
}

fn question(history: &History, plan: &RollbackPlan<'_>) -> String {
    format!(
        "Roll back StatefulSet {}/{} to {}?",
        history.namespace,
        history.statefulset,
        plan.target.label()
    )
}

/// What will happen: target, diff live → target, renumbering.
pub fn render_plan(
    out: &mut impl Write,
    history: &History,
    plan: &RollbackPlan<'_>,
    diff: &TemplateDiff,
    color: bool,
) -> Result<()> {
    if plan.already_live {
        writeln!(
            out,
            "StatefulSet {}/{} already runs the pod template of {}: nothing to roll back.",
            history.namespace,
            history.statefulset,
            plan.target.label()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "Rolling back StatefulSet {}/{} to {}.",
        history.namespace,
        history.statefulset,
        plan.target.label()
    )?;
    writeln!(out)?;
    write_unified(out, &diff.text, color)?;
    writeln!(out)?;
    writeln!(out, "{}", renumber_note(plan))?;
    Ok(())
}

/// The outcome after the PATCH.
pub fn render_result(
    out: &mut impl Write,
    history: &History,
    plan: &RollbackPlan<'_>,
    dry_run: DryRun,
    result: &StatefulSet,
) -> Result<()> {
    let applied = result.spec.as_ref().map(|s| &s.template) == Some(plan.template);
    let suffix = if dry_run == DryRun::Server {
        " (server dry run: validated, nothing persisted)"
    } else {
        ""
    };
    writeln!(
        out,
        "statefulset.apps/{} rolled back to {}{suffix}",
        history.statefulset,
        plan.target.label()
    )?;
    if !applied {
        // E.g. a mutating webhook changed the template: say so rather than claim an exact rollback.
        writeln!(
            out,
            "Warning: the StatefulSet's spec.template returned by the server differs from {}.",
            plan.target.label()
        )?;
    }
    if dry_run == DryRun::None && plan.renumbers() {
        writeln!(
            out,
            "{} is now being renumbered to revision {}; follow the rollout with `kubectl sts history {}`.",
            plan.target.name, plan.new_number, history.statefulset
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cr, sts};
    use k8s_openapi::api::apps::v1::ControllerRevision;

    fn settled() -> (StatefulSet, Vec<ControllerRevision>) {
        (
            sts("nginx:1.21", "web-6c5f8b9d4", "web-6c5f8b9d4"),
            vec![
                cr(
                    "web-5d4fd4b95c",
                    1,
                    "nginx:1.19",
                    "2026-11-22T03:00:00Z",
                    None,
                ),
                cr(
                    "web-7b8c9d6f5",
                    2,
                    "nginx:1.20",
                    "2026-11-22T03:10:00Z",
                    None,
                ),
                cr(
                    "web-6c5f8b9d4",
                    3,
                    "nginx:1.21",
                    "2026-11-22T03:20:00Z",
                    None,
                ),
            ],
        )
    }

    fn plan_text(h: &History, to: Option<&str>, color: bool) -> String {
        let plan = h.plan_rollback(to).unwrap();
        let diff = plan_diff(h, &plan).unwrap();
        let mut out = Vec::new();
        render_plan(&mut out, h, &plan, &diff, color).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plan_shows_diff_from_live_and_renumbering() {
        let (s, crs) = settled();
        let h = History::new(&s, &crs).unwrap();
        let text = plan_text(&h, None, false);
        let expected_head = "\
Rolling back StatefulSet default/web to revision 2 (web-7b8c9d6f5).

--- live (spec.template of web, = revision 3 (web-6c5f8b9d4))
+++ revision 2 (web-7b8c9d6f5)
";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(
            text.contains("\n-  - image: nginx:1.21\n+  - image: nginx:1.20\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "\nNote: the controller will renumber revision 2 (web-7b8c9d6f5) to revision 4 \
                 (revision numbers are not stable; the name web-7b8c9d6f5 stays).\n"
            ),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
        assert!(plan_text(&h, None, true).contains('\u{1b}'));
    }

    #[test]
    fn plan_to_live_revision_is_nothing_to_do() {
        let (s, crs) = settled();
        let h = History::new(&s, &crs).unwrap();
        assert_eq!(
            plan_text(&h, Some("3"), false),
            "StatefulSet default/web already runs the pod template of revision 3 (web-6c5f8b9d4): nothing to roll back.\n"
        );
    }

    #[test]
    fn patch_is_revision_data_with_resource_version_precondition() {
        let (s, crs) = settled();
        let h = History::new(&s, &crs).unwrap();
        let plan = h.plan_rollback(Some("1")).unwrap();
        let body = patch_body(&plan, Some("900"));
        assert_eq!(body["metadata"]["resourceVersion"], "900");
        assert_eq!(body["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            body["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.19"
        );
        // Nothing else at the top level: the patch only replaces the pod template.
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["metadata", "spec"]);
        assert!(patch_body(&plan, None).get("metadata").is_none());
    }

    #[test]
    fn a_conflict_is_retried_only_when_the_confirmed_rollback_is_unchanged() {
        let (read, crs) = settled();
        let h = History::new(&read, &crs).unwrap();
        let plan = h.plan_rollback(Some("1")).unwrap();
        let args = RollbackArgs {
            name: "web".into(),
            to_revision: Some("1".into()),
            dry_run: DryRun::None,
            yes: true,
        };
        // The controller wrote status (and someone a label): same generation, same plan.
        let mut status_only = read.clone();
        status_only.metadata.resource_version = Some("901".into());
        status_only.metadata.labels = Some([("touched".into(), "yes".into())].into());
        let body = replan(&read, &plan, &status_only, &crs, &args).expect("retried");
        assert_eq!(body["metadata"]["resourceVersion"], "901");
        assert_eq!(body["spec"], patch_body(&plan, None)["spec"]);
        // The spec changed (generation bumped): not what the user confirmed.
        let mut read = read;
        read.metadata.generation = Some(2);
        status_only.metadata.generation = Some(2);
        let mut respecced = status_only.clone();
        respecced.metadata.generation = Some(3);
        assert_eq!(
            replan(&read, &plan, &respecced, &crs, &args).unwrap_err(),
            "its spec was changed (metadata.generation 2 -> 3)"
        );
        // Deleted and re-created under the same name.
        let mut recreated = status_only.clone();
        recreated.metadata.uid = Some("another".into());
        assert_eq!(
            replan(&read, &plan, &recreated, &crs, &args).unwrap_err(),
            "it was deleted and created again (another UID)"
        );
        // The target revision is gone (history pruned): stop.
        let pruned = replan(&read, &plan, &status_only, &crs[1..], &args).unwrap_err();
        assert!(
            pruned.starts_with("its revision history changed ("),
            "{pruned}"
        );
    }

    #[test]
    fn result_reports_dry_run_and_mismatch() {
        let (s, crs) = settled();
        let h = History::new(&s, &crs).unwrap();
        let plan = h.plan_rollback(None).unwrap();
        let mut patched = s.clone();
        if let Some(spec) = patched.spec.as_mut() {
            spec.template = plan.template.clone();
        }
        let mut out = Vec::new();
        render_result(&mut out, &h, &plan, DryRun::Server, &patched).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "statefulset.apps/web rolled back to revision 2 (web-7b8c9d6f5) (server dry run: validated, nothing persisted)\n"
        );

        let mut out = Vec::new();
        render_result(&mut out, &h, &plan, DryRun::None, &patched).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("web-7b8c9d6f5 is now being renumbered to revision 4"),
            "{text}"
        );
        assert!(!text.contains("Warning"), "{text}");

        // The server returned something else (e.g. a webhook mutated it): warn.
        let mut out = Vec::new();
        render_result(&mut out, &h, &plan, DryRun::None, &s).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Warning: the StatefulSet's spec.template")
        );
    }
}
