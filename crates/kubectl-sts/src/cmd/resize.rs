//! `kubectl sts resize NAME --size Q [--template T] [--include-scaled-down] [--dry-run=…]
//! [--yes]`: grow every claim of a StatefulSet and carry the new size into its
//! volumeClaimTemplates without restarting a pod. The rules are [`sts_model::resize`].
//!
//! Steps, each re-checked against fresh state right before it writes:
//! 1. **Preflight**, all before any write: [`plan_resize`] over the StatefulSet, its claims,
//!    their StorageClasses and its rollout; every refusal is named at once. The plan is printed.
//! 2. **Claims**: a merge patch of `spec.resources.requests.storage` per claim carrying the
//!    resourceVersion read (the server answers 409 if the claim changed); then each claim is
//!    followed until `status.capacity` reaches the size, or it reports
//!    `FileSystemResizePending` (the filesystem grows when its pod restarts: said, never done),
//!    or a resize error condition.
//! 3. **StatefulSet**: re-read it; save it to `<state dir>/<namespace>/<name>.pending.json`
//!    (printed); DELETE it with `propagationPolicy: Orphan` and its UID and resourceVersion as
//!    preconditions; wait until it is gone; CREATE the copy with only the template size changed
//!    ([`resized_statefulset`]); wait until it has adopted the same pods (same UIDs, no
//!    restart) and check that no ControllerRevision was added; then the saved file is renamed
//!    to `<name>.<timestamp>.json`.
//!
//! If the command stops between the delete and the create (killed, connection lost), the
//! pending file remains, and running the same command again creates the StatefulSet from it
//! before anything else. The pending file is only used while the StatefulSet does not exist or
//! already has the new size, so a StatefulSet deleted on purpose later is never brought back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sts_model::objects::statefulset_selector_query;
use sts_model::progress::{Phase, rollout_progress};
use sts_model::quantity::quantity_bytes;
use sts_model::resize::{
    ClaimStep, Refusal, ResizePlan, adoption_problems, capacity_storage, plan_resize,
    resized_statefulset, template_requests,
};

use crate::cli::{DryRun, ResizeArgs};
use crate::collect::{get_each, list_namespace, map_kube_error};
use crate::error::{Error, Result, Scope};
use crate::prompt::require_confirmation;
use crate::target::{Parts, Target, single_namespace};
use crate::{Context, Outcome};

/// How often a claim or the re-created StatefulSet is read again while waiting.
const POLL: Duration = Duration::from_millis(500);

/// What the pending file holds: the StatefulSet as it was right before the delete, and the
/// size it is to be re-created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pending {
    template: String,
    size: String,
    saved_at: String,
    statefulset: StatefulSet,
}

pub async fn run(ctx: &Context, args: &ResizeArgs) -> Result<Outcome> {
    if !ctx.output.is_text() {
        return Err(Error::Usage(
            "resize prints a plan and a result per step as text; -o json|yaml|name|jsonpath|custom-columns is not supported".into(),
        ));
    }
    let namespace = single_namespace(ctx, "resize")?.to_string();
    let name = args.name.as_str();
    let state = state_dir(args)?.join(&namespace);
    let pending_path = state.join(format!("{name}.pending.json"));
    let mut out = std::io::stdout().lock();

    // An earlier run stopped between delete and create: finish that first.
    let live = get_live(ctx, &namespace, name).await?;
    if let Some(pending) = read_pending(&pending_path)? {
        match &live {
            None if args.dry_run == DryRun::None => {
                writeln!(
                    out,
                    "StatefulSet {name} does not exist, and {} holds it as saved by an interrupted resize: creating it again from there.",
                    pending_path.display()
                )?;
                let before = pods_of(ctx, &namespace, &pending.statefulset).await?;
                let revisions = revision_names(ctx, &namespace, &pending.statefulset).await?;
                let created = create_copy(ctx, &namespace, &pending).await?;
                verify(
                    ctx, &namespace, &created, &before, &revisions, args, &mut out,
                )
                .await?;
                finish_pending(&pending_path, &mut out)?;
            }
            None => {
                writeln!(
                    out,
                    "StatefulSet {name} does not exist; without --dry-run it would be created again from {} (saved by an interrupted resize).",
                    pending_path.display()
                )?;
                return Ok(Outcome::Success);
            }
            Some(sts) if template_requests(sts, &pending.template, &pending.size) => {
                // Created, but the run stopped before it checked the adoption.
                let before = pods_of(ctx, &namespace, sts).await?;
                let revisions = revision_names(ctx, &namespace, sts).await?;
                verify(ctx, &namespace, sts, &before, &revisions, args, &mut out).await?;
                finish_pending(&pending_path, &mut out)?;
            }
            // The delete never happened: the normal path below saves it again.
            Some(_) => {}
        }
    }

    let target = Target::fetch(
        ctx,
        "resize",
        name,
        Parts {
            pods: true,
            claims: true,
        },
    )
    .await?;
    let sts = &target.statefulset;
    let classes = storage_classes(ctx, &target.claims).await?;
    let progress = rollout_progress(sts, &target.pods, &[], Timestamp::now(), args.stall_after());
    let not_done = (progress.phase != Phase::Complete).then_some(progress.message.as_str());
    let plan = match plan_resize(
        sts,
        &target.claims,
        &classes,
        not_done,
        &args.size,
        args.template.as_deref(),
        args.include_scaled_down,
    ) {
        Ok(plan) => plan,
        // Finishing an interrupted run may leave nothing else to do.
        Err(refusals) if refusals == [Refusal::NothingToDo] && !pending_path.exists() => {
            writeln!(out, "{}", Refusal::NothingToDo)?;
            return Ok(Outcome::Success);
        }
        Err(refusals) => return Err(refused(&namespace, name, &refusals)),
    };
    write_plan(&mut out, &namespace, name, &plan, &pending_path)?;
    match args.dry_run {
        DryRun::Client => {
            writeln!(out, "Dry run (client): nothing was sent to the server.")?;
            return Ok(Outcome::Success);
        }
        DryRun::Server => {
            return server_dry_run(ctx, &namespace, sts, &plan, &mut out).await;
        }
        DryRun::None => {}
    }
    out.flush()?;
    let grow = plan
        .claims
        .iter()
        .filter(|c| c.step == ClaimStep::Grow)
        .count();
    require_confirmation(
        args.yes,
        ctx.interactive,
        &format!(
            "Grow {grow} claim(s) to {}{}?",
            plan.size,
            if plan.recreate {
                " and re-create the StatefulSet (its pods keep running)"
            } else {
                ""
            }
        ),
        "yes",
    )?;

    grow_claims(ctx, &namespace, &plan, args, &mut out).await?;
    if plan.recreate {
        recreate(ctx, &namespace, name, &plan, &pending_path, args, &mut out).await?;
    }
    write_manifest_advice(&mut out, name, &plan)?;
    Ok(Outcome::Success)
}

/// Where pending files go: `--state-dir`, else `$XDG_STATE_HOME/kubectl-sts/resize`, else
/// `~/.local/state/kubectl-sts/resize`.
fn state_dir(args: &ResizeArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .ok_or_else(|| {
            Error::Usage("neither XDG_STATE_HOME nor HOME is set: pass --state-dir DIR".into())
        })?;
    Ok(base.join("kubectl-sts").join("resize"))
}

fn read_pending(path: &Path) -> Result<Option<Pending>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Other(format!(
                "{} is not a saved StatefulSet ({e}); move it away if it is not needed",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Other(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The pending file becomes a dated record of what was re-created.
fn finish_pending(path: &Path, out: &mut impl Write) -> Result<()> {
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let done = path.with_file_name(
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .replace(".pending.json", &format!(".{stamp}.json")),
    );
    std::fs::rename(path, &done)
        .map_err(|e| Error::Other(format!("cannot rename {}: {e}", path.display())))?;
    writeln!(
        out,
        "The StatefulSet as it was before is kept in {}.",
        done.display()
    )?;
    Ok(())
}

fn refused(namespace: &str, name: &str, refusals: &[Refusal]) -> Error {
    let lines: Vec<String> = refusals.iter().map(|r| format!("  - {r}")).collect();
    Error::Other(format!(
        "cannot resize the volumes of StatefulSet {namespace}/{name}; nothing was changed:\n{}",
        lines.join("\n")
    ))
}

/// The StorageClasses the claims name, by GET each (cluster-scoped; a missing one is reported
/// by the plan).
async fn storage_classes(
    ctx: &Context,
    claims: &[PersistentVolumeClaim],
) -> Result<Vec<StorageClass>> {
    let mut names: Vec<String> = claims
        .iter()
        .filter_map(|c| c.spec.as_ref()?.storage_class_name.clone())
        .filter(|c| !c.is_empty())
        .collect();
    names.sort();
    names.dedup();
    get_each(
        &ctx.cluster_api::<StorageClass>(),
        &names,
        &Scope::Cluster,
        &ctx.server,
    )
    .await
}

fn write_plan(
    out: &mut impl Write,
    namespace: &str,
    name: &str,
    plan: &ResizePlan,
    pending: &Path,
) -> Result<()> {
    writeln!(
        out,
        "Resizing the volumes of StatefulSet {namespace}/{name}, template {}: {} -> {}",
        plan.template, plan.template_size, plan.size
    )?;
    for c in &plan.claims {
        let step = match c.step {
            ClaimStep::Grow => format!("{} -> {}", c.requested, plan.size),
            ClaimStep::AlreadyRequested => format!("already requests {}", plan.size),
        };
        let scaled = if c.desired { "" } else { ", ScaledDown" };
        writeln!(
            out,
            "  claim {:<24} {step}   (StorageClass {}{scaled})",
            c.name, c.storage_class
        )?;
    }
    for c in &plan.scaled_down_left {
        writeln!(
            out,
            "  claim {c:<24} ScaledDown: left as it is (--include-scaled-down grows it too, so a scale-up does not bring back a small volume)"
        )?;
    }
    if plan.recreate {
        writeln!(
            out,
            "Then the StatefulSet: saved to {}, deleted with propagationPolicy=Orphan (its pods keep running), created again with {}: {} in volumeClaimTemplates, and checked to adopt the same pods.",
            pending.display(),
            plan.template,
            plan.size
        )?;
    } else {
        writeln!(
            out,
            "The StatefulSet's template already requests {}: it is left as it is.",
            plan.size
        )?;
    }
    Ok(())
}

/// `--dry-run=server`: every claim patch and the delete are sent with dryRun=All (admission,
/// including the StorageClass check, runs; nothing is persisted). The create cannot be tried
/// while the StatefulSet exists.
async fn server_dry_run(
    ctx: &Context,
    namespace: &str,
    sts: &StatefulSet,
    plan: &ResizePlan,
    out: &mut impl Write,
) -> Result<Outcome> {
    let claims = ctx.api_in::<PersistentVolumeClaim>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    for c in plan.claims.iter().filter(|c| c.step == ClaimStep::Grow) {
        let params = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        claims
            .patch(
                &c.name,
                &params,
                &Patch::Merge(claim_patch(c.resource_version.as_deref(), &plan.size)),
            )
            .await
            .map_err(|e| {
                map_kube_error(
                    e,
                    "patch",
                    "persistentvolumeclaims",
                    scope.clone(),
                    &ctx.server,
                    Some(&c.name),
                )
            })?;
        writeln!(
            out,
            "claim {}: the server accepts {} (dry run)",
            c.name, plan.size
        )?;
    }
    if plan.recreate {
        let name = sts.metadata.name.as_deref().unwrap_or_default();
        let params = DeleteParams {
            dry_run: true,
            ..orphan_delete(sts)
        };
        ctx.api_in::<StatefulSet>(namespace)
            .delete(name, &params)
            .await
            .map_err(|e| {
                map_kube_error(
                    e,
                    "delete",
                    "statefulsets",
                    scope.clone(),
                    &ctx.server,
                    Some(name),
                )
            })?;
        writeln!(
            out,
            "StatefulSet {name}: the server accepts the orphaning delete (dry run); the create is not tried while it exists."
        )?;
    }
    writeln!(out, "Dry run (server): nothing was persisted.")?;
    Ok(Outcome::Success)
}

fn claim_patch(resource_version: Option<&str>, size: &str) -> serde_json::Value {
    json!({
        "metadata": { "resourceVersion": resource_version },
        "spec": { "resources": { "requests": { "storage": size } } }
    })
}

fn orphan_delete(sts: &StatefulSet) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: sts.metadata.uid.clone(),
            resource_version: sts.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    }
}

/// Patch each claim, then follow each until it has grown, waits for a pod restart, or fails.
async fn grow_claims(
    ctx: &Context,
    namespace: &str,
    plan: &ResizePlan,
    args: &ResizeArgs,
    out: &mut impl Write,
) -> Result<()> {
    let api = ctx.api_in::<PersistentVolumeClaim>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    for c in plan.claims.iter().filter(|c| c.step == ClaimStep::Grow) {
        tracing::debug!(verb = "patch", resource = "persistentvolumeclaims", namespace, name = %c.name, "API request");
        match api
            .patch(
                &c.name,
                &PatchParams::default(),
                &Patch::Merge(claim_patch(c.resource_version.as_deref(), &plan.size)),
            )
            .await
        {
            Ok(_) => writeln!(out, "claim {}: requested {}", c.name, plan.size)?,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Err(Error::Other(format!(
                    "claim {} was modified after it was read; nothing more was changed: run the command again",
                    c.name
                )));
            }
            Err(e) => {
                return Err(map_kube_error(
                    e,
                    "patch",
                    "persistentvolumeclaims",
                    scope,
                    &ctx.server,
                    Some(&c.name),
                ));
            }
        }
        out.flush()?;
    }
    let started = Timestamp::now() - jiff::SignedDuration::from_secs(2);
    let want = quantity_bytes(&plan.size).unwrap_or(u128::MAX);
    let deadline = tokio::time::Instant::now() + args.timeout.unsigned_abs();
    let mut pending_restart = Vec::new();
    for c in &plan.claims {
        loop {
            let claim = api.get(&c.name).await.map_err(|e| {
                map_kube_error(
                    e,
                    "get",
                    "persistentvolumeclaims",
                    scope.clone(),
                    &ctx.server,
                    Some(&c.name),
                )
            })?;
            let capacity = capacity_storage(&claim).map(str::to_string);
            let conditions: Vec<(String, String)> = claim
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.status == "True")
                .map(|c| (c.type_, c.message.unwrap_or_default()))
                .collect();
            if capacity
                .as_deref()
                .and_then(quantity_bytes)
                .is_some_and(|b| b >= want)
            {
                writeln!(
                    out,
                    "claim {}: capacity {}",
                    c.name,
                    capacity.unwrap_or_default()
                )?;
                break;
            }
            // Resizers report a failure as an error condition (servers that keep
            // allocatedResourceStatuses: ControllerResizeError/NodeResizeError) and as a
            // Warning Event, the only sign on older servers.
            if let Some(message) = resize_failed_event(ctx, namespace, &claim, started).await {
                return Err(Error::Other(format!(
                    "claim {} did not grow: VolumeResizeFailed: {message}; the StatefulSet was not changed (run the command again once the cause is fixed)",
                    c.name
                )));
            }
            if let Some((kind, message)) =
                conditions.iter().find(|(t, _)| t.ends_with("ResizeError"))
            {
                return Err(Error::Other(format!(
                    "claim {} did not grow: {kind}: {message}; the StatefulSet was not changed (run the command again once the cause is fixed)",
                    c.name
                )));
            }
            if conditions
                .iter()
                .any(|(t, _)| t == "FileSystemResizePending")
            {
                writeln!(
                    out,
                    "claim {}: the volume has grown; its filesystem grows when the pod that mounts it restarts (FileSystemResizePending). Nothing was restarted.",
                    c.name
                )?;
                pending_restart.push(c.name.clone());
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Other(format!(
                    "claim {} still has capacity {} after {:#}; the StatefulSet was not changed (run the command again to go on)",
                    c.name,
                    capacity.unwrap_or_else(|| "unknown".into()),
                    args.timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        out.flush()?;
    }
    if !pending_restart.is_empty() {
        writeln!(
            out,
            "Restart the pods of {} when it suits you (kubectl delete pod …, one at a time) to finish the filesystem resize.",
            pending_restart.join(", ")
        )?;
    }
    Ok(())
}

/// The message of a `VolumeResizeFailed` Warning Event about `claim` (same UID) last seen
/// after `since`, if any. Best effort: unreadable Events count as none.
async fn resize_failed_event(
    ctx: &Context,
    namespace: &str,
    claim: &PersistentVolumeClaim,
    since: Timestamp,
) -> Option<String> {
    use k8s_openapi::api::core::v1::Event;
    let name = claim.metadata.name.as_deref()?;
    let fields = format!(
        "involvedObject.kind=PersistentVolumeClaim,involvedObject.name={name},reason=VolumeResizeFailed"
    );
    tracing::debug!(verb = "list", resource = "events", namespace, fields = %fields, "API request");
    let events = ctx
        .api_in::<Event>(namespace)
        .list(&kube::api::ListParams::default().fields(&fields))
        .await
        .ok()?;
    events
        .items
        .into_iter()
        .filter(|e| e.involved_object.uid.is_none() || e.involved_object.uid == claim.metadata.uid)
        .filter(|e| sts_model::rollout::event_last_seen(e).is_some_and(|t| t >= since))
        .filter_map(|e| e.message)
        .next_back()
}

/// Save, delete (orphaning the pods), create the copy, verify.
async fn recreate(
    ctx: &Context,
    namespace: &str,
    name: &str,
    plan: &ResizePlan,
    pending_path: &Path,
    args: &ResizeArgs,
    out: &mut impl Write,
) -> Result<()> {
    let api = ctx.api_in::<StatefulSet>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    // Fresh state right before the delete: the same object, still rolled out.
    let live = get_live(ctx, namespace, name).await?.ok_or_else(|| {
        Error::Other(format!(
            "StatefulSet {name} was deleted while the claims grew; nothing more was changed"
        ))
    })?;
    let before = pods_of(ctx, namespace, &live).await?;
    let progress = rollout_progress(&live, &before, &[], Timestamp::now(), args.stall_after());
    if progress.phase != Phase::Complete {
        return Err(Error::Other(format!(
            "the StatefulSet changed while the claims grew ({}); it was not re-created: run the command again once its rollout is done",
            progress.message
        )));
    }
    let revisions = revision_names(ctx, namespace, &live).await?;
    let pending = Pending {
        template: plan.template.clone(),
        size: plan.size.clone(),
        saved_at: Timestamp::now().to_string(),
        statefulset: live.clone(),
    };
    std::fs::create_dir_all(pending_path.parent().unwrap_or(Path::new(".")))
        .and_then(|()| {
            std::fs::write(
                pending_path,
                serde_json::to_vec_pretty(&pending).unwrap_or_default(),
            )
        })
        .map_err(|e| {
            Error::Other(format!(
                "cannot save the StatefulSet to {}: {e}; it was not deleted",
                pending_path.display()
            ))
        })?;
    writeln!(
        out,
        "StatefulSet {name}: saved to {}",
        pending_path.display()
    )?;
    out.flush()?;

    tracing::debug!(
        verb = "delete",
        resource = "statefulsets",
        namespace,
        name,
        propagation = "Orphan",
        "API request"
    );
    match api.delete(name, &orphan_delete(&live)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let _ = std::fs::remove_file(pending_path);
            return Err(Error::Other(format!(
                "StatefulSet {name} was modified after it was read; it was not deleted: run the command again"
            )));
        }
        Err(e) => {
            let _ = std::fs::remove_file(pending_path);
            return Err(map_kube_error(
                e,
                "delete",
                "statefulsets",
                scope,
                &ctx.server,
                Some(name),
            ));
        }
    }
    writeln!(
        out,
        "StatefulSet {name}: deleted with propagationPolicy=Orphan; waiting until it is gone"
    )?;
    out.flush()?;
    let deadline = tokio::time::Instant::now() + args.timeout.unsigned_abs();
    loop {
        match api.get_opt(name).await {
            Ok(None) => break,
            Ok(Some(sts)) if sts.metadata.uid != live.metadata.uid => {
                return Err(Error::Other(format!(
                    "a different StatefulSet {name} exists now (created by someone else); the one saved in {} was not created",
                    pending_path.display()
                )));
            }
            Ok(Some(_)) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::Other(format!(
                    "StatefulSet {name} is still being deleted after {:#} (a finalizer?); run the command again to create it from {} once it is gone",
                    args.timeout,
                    pending_path.display()
                )));
            }
            Ok(Some(_)) | Err(_) => tokio::time::sleep(POLL).await,
        }
    }
    let created = create_copy(ctx, namespace, &pending).await?;
    writeln!(
        out,
        "StatefulSet {name}: created again with {}: {}",
        plan.template, plan.size
    )?;
    verify(ctx, namespace, &created, &before, &revisions, args, out).await?;
    finish_pending(pending_path, out)
}

/// GET the StatefulSet; `None` when it does not exist.
async fn get_live(ctx: &Context, namespace: &str, name: &str) -> Result<Option<StatefulSet>> {
    let api = ctx.api_in::<StatefulSet>(namespace);
    let scope = Scope::Namespace(namespace.to_string());
    Ok(get_each(&api, &[name.to_string()], &scope, &ctx.server)
        .await?
        .pop())
}

async fn create_copy(ctx: &Context, namespace: &str, pending: &Pending) -> Result<StatefulSet> {
    let copy = resized_statefulset(&pending.statefulset, &pending.template, &pending.size);
    let name = copy.metadata.name.clone().unwrap_or_default();
    tracing::debug!(verb = "create", resource = "statefulsets", namespace, name = %name, "API request");
    ctx.api_in::<StatefulSet>(namespace)
        .create(&PostParams::default(), &copy)
        .await
        .map_err(|e| {
            map_kube_error(
                e,
                "create",
                "statefulsets",
                Scope::Namespace(namespace.to_string()),
                &ctx.server,
                Some(&name),
            )
        })
}

/// Wait until the new StatefulSet controls the same pods, unrestarted, and no revision was added.
async fn verify(
    ctx: &Context,
    namespace: &str,
    sts: &StatefulSet,
    before: &[Pod],
    revisions_before: &[String],
    args: &ResizeArgs,
    out: &mut impl Write,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + args.timeout.unsigned_abs();
    let name = sts.metadata.name.as_deref().unwrap_or_default();
    loop {
        let now = pods_of(ctx, namespace, sts).await?;
        let mut problems = adoption_problems(sts, before, &now);
        if problems.is_empty() {
            // Adopted; done once the controller has also written the new object's status
            // (observed generation, revisions) and its rollout reads complete.
            match get_live(ctx, namespace, name).await? {
                Some(fresh) if fresh.metadata.uid == sts.metadata.uid => {
                    let progress =
                        rollout_progress(&fresh, &now, &[], Timestamp::now(), args.stall_after());
                    if progress.phase == Phase::Complete {
                        break;
                    }
                    problems.push(format!("its rollout is not complete: {}", progress.message));
                }
                _ => problems.push("it is gone, or replaced by another one".to_string()),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Other(format!(
                "StatefulSet {name} was re-created, but after {:#}: {}",
                args.timeout,
                problems.join("; ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    let revisions = revision_names(ctx, namespace, sts).await?;
    let added: Vec<&String> = revisions
        .iter()
        .filter(|r| !revisions_before.contains(r))
        .collect();
    if !added.is_empty() {
        writeln!(
            out,
            "Warning: the new StatefulSet added revision(s) {:?}: its pods will be replaced by a rollout",
            added
        )?;
    }
    writeln!(
        out,
        "StatefulSet {name}: adopted its {} pod(s), same UIDs, none restarted; no revision added.",
        before.len()
    )?;
    Ok(())
}

async fn pods_of(ctx: &Context, namespace: &str, sts: &StatefulSet) -> Result<Vec<Pod>> {
    let selector = statefulset_selector_query(sts);
    let pods = list_namespace::<Pod>(ctx, namespace, selector.as_deref(), None).await?;
    Ok(sts_model::rollout::pods_by_ordinal(sts, &pods)
        .into_values()
        .cloned()
        .collect())
}

async fn revision_names(ctx: &Context, namespace: &str, sts: &StatefulSet) -> Result<Vec<String>> {
    let selector = statefulset_selector_query(sts);
    let revisions =
        list_namespace::<ControllerRevision>(ctx, namespace, selector.as_deref(), None).await?;
    Ok(revisions
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect())
}

fn write_manifest_advice(out: &mut impl Write, name: &str, plan: &ResizePlan) -> Result<()> {
    writeln!(
        out,
        "Done. Change your own manifests too (Helm values, GitOps repository): volumeClaimTemplates {} of StatefulSet {name}: resources.requests.storage: {}. A re-apply of the old size fails, since volumeClaimTemplates cannot be changed in place.",
        plan.template, plan.size
    )?;
    Ok(())
}
