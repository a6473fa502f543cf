//! e2e: `kubectl sts resize` on the real control plane, with the simulated node acting as the
//! CSI resizer (`tests/src/node.rs`, StorageClasses `sim-expandable` and `sim-fixed`): claims
//! and template grown with one command and no pod restarted, a run killed between delete and
//! create completed by running it again, refusals before any write, and `--dry-run=server`
//! changing nothing. Expected values come from the API.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use common::*;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Holds the StatefulSet in Terminating so the test can stop the plugin between its delete and
/// its create.
const HOLD: &str = "sts.dev/e2e-hold";

/// `name` with `replicas`, claim template `data` of `class` requesting 1Gi.
fn fixture(name: &str, replicas: i32, class: &str) -> Result<StatefulSet> {
    let mut sts = StsFixture::new(name, replicas)
        .claim_template("data")
        .build();
    let template = sts
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .and_then(|t| t.first_mut())
        .and_then(|t| t.spec.as_mut())
        .context("claim template")?;
    template.storage_class_name = Some(class.to_string());
    template.resources = Some(serde_json::from_value(
        json!({"requests": {"storage": "1Gi"}}),
    )?);
    Ok(sts)
}

/// Claim name → (requested, capacity).
/// [`fixture`] whose claims carry the simulated resizer's annotation (`offline`, `fail`),
/// copied by the controller from the claim template.
fn fixture_resized_as(name: &str, replicas: i32, how: &str) -> Result<StatefulSet> {
    let mut sts = fixture(name, replicas, "sim-expandable")?;
    let template = sts
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .and_then(|t| t.first_mut())
        .context("claim template")?;
    template
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(
            sts_e2e::resize::RESIZE_ANNOTATION.to_string(),
            how.to_string(),
        );
    Ok(sts)
}

async fn claim_sizes(ns: &TestNs) -> Result<BTreeMap<String, (String, String)>> {
    let claims = ns.pvcs().list(&Default::default()).await?;
    Ok(claims
        .items
        .into_iter()
        .map(|c: PersistentVolumeClaim| {
            let requested = c
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone())
                .unwrap_or_default();
            let capacity = c
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone())
                .unwrap_or_default();
            (c.metadata.name.unwrap_or_default(), (requested, capacity))
        })
        .collect())
}

/// Pod name → (uid, controller uid, restarts).
async fn pods(ns: &TestNs, name: &str) -> Result<BTreeMap<String, (String, String, i32)>> {
    Ok(pods_of(&ns.pods(), name)
        .await?
        .into_iter()
        .map(|p: Pod| {
            let controller = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone())
                .unwrap_or_default();
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| cs.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0);
            (
                p.metadata.name.clone().unwrap_or_default(),
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    controller,
                    restarts,
                ),
            )
        })
        .collect())
}

async fn revision_names(ns: &TestNs) -> Result<Vec<String>> {
    let api: Api<ControllerRevision> = ns.api();
    let mut names: Vec<String> = api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

fn template_size(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .first()?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_template_grow_and_no_pod_restarts() -> Result<()> {
    let ns = TestNs::new("resize").await?;
    let name = "db";
    let state = tempfile::tempdir()?;
    let state_dir = state.path().to_string_lossy().to_string();
    ns.create_sts(&fixture(name, 4, "sim-expandable")?).await?;
    ns.wait_rollout_complete(name, 4).await?;
    // Ordinal 3 scaled down: its claim stays (ScaledDown).
    ns.scale(name, 3).await?;
    let old = ns.wait_rollout_complete(name, 3).await?;
    let pods_before = pods(&ns, name).await?;
    let revisions_before = revision_names(&ns).await?;
    let claims_before = claim_sizes(&ns).await?;
    ensure!(claims_before.len() == 4, "{claims_before:?}");

    // --dry-run=server: the server accepts every step, nothing changes.
    let dry = ns.plugin(&[
        "resize",
        name,
        "--size",
        "2Gi",
        "--dry-run=server",
        "--state-dir",
        &state_dir,
    ])?;
    dry.expect_code(0)?;
    ensure!(
        dry.stdout
            .contains("Dry run (server): nothing was persisted."),
        "{dry:?}"
    );
    ensure!(
        claim_sizes(&ns).await? == claims_before,
        "dry run changed claims"
    );
    ensure!(
        ns.sts().get(name).await?.metadata.uid == old.metadata.uid,
        "dry run re-created"
    );

    let run = ns.plugin(&[
        "resize",
        name,
        "--size",
        "2Gi",
        "--include-scaled-down",
        "--yes",
        "--state-dir",
        &state_dir,
    ])?;
    run.expect_code(0)?;
    for want in [
        "claim data-db-0",
        "claim data-db-3",
        "deleted with propagationPolicy=Orphan",
        "adopted its 3 pod(s), same UIDs, none restarted; no revision added.",
        "Change your own manifests too",
    ] {
        ensure!(
            run.stdout.contains(want),
            "missing {want:?}:\n{}",
            run.stdout
        );
    }

    // The claims (the scaled-down one included) request and have 2Gi.
    let claims_after = claim_sizes(&ns).await?;
    ensure!(
        claims_after.values().all(|(r, c)| r == "2Gi" && c == "2Gi"),
        "{claims_after:?}"
    );
    // A new StatefulSet with 2Gi in its template, the same pods, no new revision.
    let new = ns.sts().get(name).await?;
    ensure!(
        new.metadata.uid != old.metadata.uid,
        "the StatefulSet was re-created"
    );
    ensure!(
        template_size(&new).as_deref() == Some("2Gi"),
        "{:?}",
        template_size(&new)
    );
    let pods_after = pods(&ns, name).await?;
    let new_uid = new.metadata.uid.clone().unwrap_or_default();
    ensure!(pods_after.len() == pods_before.len(), "{pods_after:?}");
    for (pod, (uid, _, restarts)) in &pods_before {
        let (uid_after, controller, restarts_after) = pods_after.get(pod).context("pod kept")?;
        ensure!(uid == uid_after, "{pod} re-created");
        ensure!(
            controller == &new_uid,
            "{pod} controlled by {controller}, not {new_uid}"
        );
        ensure!(restarts == restarts_after, "{pod} restarted");
    }
    ensure!(
        revision_names(&ns).await? == revisions_before,
        "no revision added"
    );
    let status = ns.plugin_json(&["status", name], "StatefulSetRolloutStatus")?;
    ensure!(status["phase"] == "Complete", "{status:#}");
    // Nothing is left pending; the saved copy is kept under a dated name.
    let saved: Vec<String> = std::fs::read_dir(state.path().join(&ns.name))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    ensure!(
        saved.len() == 1 && saved[0].starts_with("db.") && !saved[0].contains("pending"),
        "{saved:?}"
    );

    // Again: nothing to do.
    let again = ns.plugin(&[
        "resize",
        name,
        "--size",
        "2Gi",
        "--yes",
        "--state-dir",
        &state_dir,
    ])?;
    again.expect_code(0)?;
    ensure!(again.stdout.contains("nothing to do"), "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_between_delete_and_create_is_completed_by_running_it_again() -> Result<()> {
    let ns = TestNs::new("resize-resume").await?;
    let name = "kv";
    let state = tempfile::tempdir()?;
    let state_dir = state.path().to_string_lossy().to_string();
    ns.create_sts(&fixture(name, 2, "sim-expandable")?).await?;
    ns.wait_rollout_complete(name, 2).await?;
    let pods_before = pods(&ns, name).await?;
    ns.merge_patch_sts(name, json!({"metadata": {"finalizers": [HOLD]}}))
        .await?;

    let resize = Following::start(
        &ns,
        &[
            "resize",
            name,
            "--size",
            "2Gi",
            "--yes",
            "--state-dir",
            &state_dir,
        ],
    )?;
    resize
        .wait_line("the delete", ns.timeout(), |l| {
            l.contains("waiting until it is gone")
        })
        .await?;
    // Killed (SIGKILL) while it waits: between the delete and the create.
    drop(resize);
    let pending = state.path().join(&ns.name).join("kv.pending.json");
    ensure!(
        pending.is_file(),
        "the saved copy is there: {}",
        pending.display()
    );
    // The StatefulSet goes once its finalizer does; the pods stay (orphaned).
    ns.sts()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    ns.wait_gone::<StatefulSet>(name).await?;
    ensure!(pods(&ns, name).await?.len() == 2, "the pods keep running");

    let run = ns.plugin(&[
        "resize",
        name,
        "--size",
        "2Gi",
        "--yes",
        "--state-dir",
        &state_dir,
    ])?;
    run.expect_code(0)?;
    ensure!(
        run.stdout.contains("creating it again from there"),
        "{}",
        run.stdout
    );
    let new = ns.sts().get(name).await?;
    ensure!(
        template_size(&new).as_deref() == Some("2Gi"),
        "{:?}",
        template_size(&new)
    );
    ensure!(
        new.metadata
            .finalizers
            .iter()
            .flatten()
            .all(|f| f != "orphan"),
        "{:?}",
        new.metadata.finalizers
    );
    let new_uid = new.metadata.uid.clone().unwrap_or_default();
    let pods_after = pods(&ns, name).await?;
    for (pod, (uid, _, _)) in &pods_before {
        let (uid_after, controller, _) = pods_after.get(pod).context("pod kept")?;
        ensure!(
            uid == uid_after && controller == &new_uid,
            "{pod}: {pods_after:?}"
        );
    }
    ensure!(!pending.exists(), "the pending copy is done with");
    // The claims grew in the first run already.
    ensure!(
        claim_sizes(&ns).await?.values().all(|(r, _)| r == "2Gi"),
        "{:?}",
        claim_sizes(&ns).await?
    );
    // Remove the finalizer from the new StatefulSet too, so the namespace can go.
    ns.sts()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_any_write() -> Result<()> {
    let ns = TestNs::new("resize-refused").await?;
    ns.create_sts(&fixture("fixed", 2, "sim-fixed")?).await?;
    ns.create_sts(&fixture("grow", 1, "sim-expandable")?)
        .await?;
    ns.wait_rollout_complete("fixed", 2).await?;
    ns.wait_rollout_complete("grow", 1).await?;
    let before = ns.pvcs().list(&Default::default()).await?;
    let versions = |claims: &[PersistentVolumeClaim]| -> Vec<Option<String>> {
        claims
            .iter()
            .map(|c| c.metadata.resource_version.clone())
            .collect()
    };
    let uid = ns.sts().get("fixed").await?.metadata.uid;

    let run = ns.plugin(&["resize", "fixed", "--size", "2Gi", "--yes"])?;
    run.expect_code(1)?;
    ensure!(
        run.stderr.contains("nothing was changed")
            && run
                .stderr
                .contains("StorageClass sim-fixed does not allow volume expansion")
            && run.stderr.contains("data-fixed-0, data-fixed-1"),
        "{}",
        run.stderr
    );
    let run = ns.plugin(&["resize", "grow", "--size", "512Mi", "--yes"])?;
    run.expect_code(1)?;
    ensure!(
        run.stderr.contains("volumes can only grow"),
        "{}",
        run.stderr
    );
    // resize prints text steps only: other -o formats are refused, not ignored.
    let run = ns.plugin(&["resize", "grow", "--size", "2Gi", "--dry-run", "-o", "json"])?;
    run.expect_code(2)?;
    ensure!(
        run.stderr.contains("resize prints a plan"),
        "{}",
        run.stderr
    );
    // A bad size is a usage error, found before the server is asked anything.
    let run = ns.plugin(&["resize", "grow", "--size", "lots", "--yes"])?;
    run.expect_code(2)?;
    ensure!(
        run.stderr.contains("\"lots\" is not a storage size"),
        "{}",
        run.stderr
    );
    let run = ns.plugin(&["resize", "grow", "--size", "2Gi", "--dry-run=client"])?;
    run.expect_code(0)?;
    ensure!(
        run.stdout.contains("claim data-grow-0") && run.stdout.contains("1Gi -> 2Gi"),
        "{}",
        run.stdout
    );

    let after = ns.pvcs().list(&Default::default()).await?;
    ensure!(
        versions(&before.items) == versions(&after.items),
        "a claim was written"
    );
    ensure!(
        ns.sts().get("fixed").await?.metadata.uid == uid,
        "re-created"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_filesystem_resize_is_reported_and_nothing_is_restarted() -> Result<()> {
    let ns = TestNs::new("resize-offline").await?;
    let name = "off";
    ns.create_sts(&fixture_resized_as(name, 2, "offline")?)
        .await?;
    ns.wait_rollout_complete(name, 2).await?;
    let before = pods(&ns, name).await?;
    let state = tempfile::tempdir()?;
    let state_dir = state.path().to_string_lossy().to_string();
    let run = ns.plugin(&[
        "resize",
        name,
        "--size",
        "2Gi",
        "--yes",
        "--state-dir",
        &state_dir,
    ])?;
    run.expect_code(0)?;
    ensure!(
        run.stdout.contains("claim data-off-0: the volume has grown; its filesystem grows when the pod that mounts it restarts (FileSystemResizePending). Nothing was restarted.")
            && run.stdout.contains("Restart the pods of data-off-0, data-off-1 when it suits you"),
        "{}",
        run.stdout
    );
    // The claims wait for their pods; the StatefulSet was re-created; no pod restarted.
    let claims = ns.pvcs().list(&Default::default()).await?;
    for c in &claims.items {
        let pending = c
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "FileSystemResizePending" && c.status == "True")
            });
        ensure!(pending, "{:?}", c.status);
    }
    let after = pods(&ns, name).await?;
    let new_uid = ns.sts().get(name).await?.metadata.uid.unwrap_or_default();
    for (pod, (uid, _, restarts)) in &before {
        let (uid_after, controller, restarts_after) = after.get(pod).context("pod kept")?;
        ensure!(
            uid == uid_after && restarts == restarts_after && controller == &new_uid,
            "{pod}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_resizer_stops_before_the_statefulset_is_touched() -> Result<()> {
    let ns = TestNs::new("resize-fail").await?;
    let name = "bad";
    ns.create_sts(&fixture_resized_as(name, 1, "fail")?).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let uid = ns.sts().get(name).await?.metadata.uid;
    let run = ns.plugin(&["resize", name, "--size", "2Gi", "--yes", "--timeout", "1m"])?;
    run.expect_code(1)?;
    ensure!(
        run.stderr.contains("claim data-bad-0 did not grow")
            && run.stderr.contains("the StatefulSet was not changed"),
        "{run:?}"
    );
    let sts = ns.sts().get(name).await?;
    ensure!(sts.metadata.uid == uid, "re-created");
    ensure!(
        template_size(&sts).as_deref() == Some("1Gi"),
        "{:?}",
        template_size(&sts)
    );
    let sizes = claim_sizes(&ns).await?;
    ensure!(
        sizes.get("data-bad-0") == Some(&("2Gi".to_string(), "1Gi".to_string())),
        "requested, not grown: {sizes:?}"
    );
    Ok(())
}
