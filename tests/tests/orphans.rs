//! e2e: PVCs left behind by scale-down and by deleting a StatefulSet, as `kubectl sts orphans`
//! sees and deletes them (see docs/e2e-scenarios.md).

mod common;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use common::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

/// `visit-cnt-stfs`: 2 → 4 → 2 leaves data-…-2/3 as ScaledDown orphans (not 0/1); back to 4
/// reuses them and nothing is orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_leaves_scaled_down_orphans_that_scale_up_reuses() -> Result<()> {
    let ns = TestNs::new("visit-cnt").await?;
    let name = "visit-cnt-stfs";
    let svc_name = "visit-cnt-stfs-svc";
    ns.create_sts(
        &StsFixture::new(name, 2)
            .service_name(svc_name)
            .claim_template("data")
            .build(),
    )
    .await?;
    // The given serviceName had no Service: the webhook made it.
    let svc = ns.wait_service(svc_name).await?;
    ensure!(
        svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None"),
        "{svc_name} should be headless"
    );
    ns.wait_rollout_complete(name, 2).await?;
    ensure_orphans(&ns, name, &[]).await?;

    ns.scale(name, 4).await?;
    ns.wait_rollout_complete(name, 4).await?;
    let uids_before = claim_uids(&ns).await?;
    let want_claims: Vec<String> = (0..4).map(|i| format!("data-{name}-{i}")).collect();
    ensure!(
        uids_before.keys().cloned().collect::<Vec<_>>() == want_claims,
        "expected claims {want_claims:?}, found {:?}",
        uids_before.keys()
    );

    ns.scale(name, 2).await?;
    ns.wait_rollout_complete(name, 2).await?;
    let orphans = ensure_orphans(
        &ns,
        name,
        &[&format!("data-{name}-2"), &format!("data-{name}-3")],
    )
    .await?;
    for (item, ordinal) in orphans.iter().zip([2, 3]) {
        ensure!(
            item["reason"] == "ScaledDown"
                && item["statefulSet"] == name
                && item["template"] == "data"
                && item["ordinal"] == ordinal
                && item["usedBy"].as_array().is_none_or(Vec::is_empty),
            "orphan should be ScaledDown, of {name}, template data, ordinal {ordinal}, unused: {item}"
        );
    }
    // Also without a name filter (namespace-wide) the same two are listed.
    let all = ns.plugin_json(&["orphans"], "OrphanedClaimList")?;
    ensure!(
        names_of(&all["items"]) == [format!("data-{name}-2"), format!("data-{name}-3")],
        "`orphans` (all) should list exactly data-{name}-2/3: {}",
        all["items"]
    );

    ns.scale(name, 4).await?;
    ns.wait_rollout_complete(name, 4).await?;
    let uids_after = claim_uids(&ns).await?;
    ensure!(
        uids_after == uids_before,
        "scale-up should reuse the same claims (same uids): before {uids_before:?}, after {uids_after:?}"
    );
    for i in 2..4 {
        let pod = ns.pods().get(&format!("{name}-{i}")).await?;
        let claims: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.clone())
            })
            .collect();
        ensure!(
            claims == [format!("data-{name}-{i}")],
            "pod {name}-{i} should mount data-{name}-{i}, mounts {claims:?}"
        );
    }
    ensure_orphans(&ns, name, &[]).await?;
    Ok(())
}

/// Deleting a StatefulSet: its managed Service is garbage-collected, its claims become
/// StatefulSetDeleted orphans, `--dry-run=server` deletes none, and `--delete --yes` deletes
/// exactly those no pod uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_statefulset_service_is_collected_and_unused_claims_deleted() -> Result<()> {
    let ns = TestNs::new("deleted-sts").await?;
    let name = "gone";
    let created = ns
        .create_sts(&StsFixture::new(name, 3).claim_template("data").build())
        .await?;
    let uid = created.metadata.uid.clone().context("no uid")?;
    ns.wait_service_owned_by(name, name, &uid).await?;
    ns.wait_rollout_complete(name, 3).await?;
    // A second StatefulSet that stays: its claims are in use and must never be listed.
    ns.create_sts(&StsFixture::new("stays", 1).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete("stays", 1).await?;

    ns.sts()
        .delete(name, &DeleteParams::background())
        .await
        .context("deleting the StatefulSet")?;
    ns.wait_gone::<Service>(name).await?;
    for i in 0..3 {
        ns.wait_gone::<Pod>(&format!("{name}-{i}")).await?;
    }

    // Another workload still mounts data-gone-1: it is an orphan of the StatefulSet, but in use.
    let in_use = format!("data-{name}-1");
    let user = pod_mounting("user", &in_use, json!({ "role": "user" }))?;
    ns.pods().create(&PostParams::default(), &user).await?;

    let unused = [format!("data-{name}-0"), format!("data-{name}-2")];
    let listed = ensure_orphans(&ns, "", &[&unused[0], &in_use, &unused[1]]).await?;
    for item in &listed {
        ensure!(
            item["reason"] == "StatefulSetDeleted" && item["statefulSet"] == name,
            "orphan should be StatefulSetDeleted of {name}: {item}"
        );
    }
    let user_item = listed
        .iter()
        .find(|i| i["name"] == in_use.as_str())
        .context("in-use claim")?;
    ensure!(
        user_item["usedBy"] == json!(["user"]),
        "{in_use} should be reported as used by pod user: {user_item}"
    );

    // Server-side dry run: the apiserver validates each delete but removes nothing.
    let dry = ns.plugin_json(
        &["orphans", "--delete", "--dry-run=server", "--yes"],
        "OrphanedClaimList",
    )?;
    check_results(&dry, &unused, "DryRun", &in_use)?;
    let still: Vec<String> = claim_uids(&ns).await?.into_keys().collect();
    for claim in unused.iter().chain([&in_use]) {
        ensure!(
            still.contains(claim),
            "dry run deleted {claim}; claims now {still:?}"
        );
    }
    for claim in &unused {
        let pvc = ns.pvcs().get(claim).await?;
        ensure!(
            pvc.metadata.deletion_timestamp.is_none(),
            "dry run marked {claim} for deletion"
        );
    }

    let real = ns.plugin_json(&["orphans", "--delete", "--yes"], "OrphanedClaimList")?;
    check_results(&real, &unused, "Deleted", &in_use)?;
    for claim in &unused {
        ns.wait_gone::<PersistentVolumeClaim>(claim).await?;
    }
    let kept = ns.pvcs().get(&in_use).await?;
    ensure!(
        kept.metadata.deletion_timestamp.is_none(),
        "the in-use claim {in_use} was deleted"
    );
    let stays = ns.pvcs().get("data-stays-0").await?;
    ensure!(
        stays.metadata.deletion_timestamp.is_none(),
        "data-stays-0 belongs to a live StatefulSet and was deleted"
    );
    ensure_orphans(&ns, "", &[&in_use]).await?;
    Ok(())
}

/// `orphans --exit-code`: 3 when orphans exist, 0 when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_exit_code_reports_orphans() -> Result<()> {
    let ns = TestNs::new("exit-code").await?;
    let name = "exitcode";
    ns.create_sts(&StsFixture::new(name, 2).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 2).await?;
    ns.plugin(&["orphans", "--exit-code"])?.expect_code(0)?;
    ns.plugin(&["orphans", name, "--exit-code"])?
        .expect_code(0)?;

    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let run = ns.plugin(&["orphans", "--exit-code"])?;
    run.expect_code(3)?;
    ensure!(
        run.stdout.contains(&format!("data-{name}-1")),
        "the table should name the orphan data-{name}-1:\n{}",
        run.stdout
    );
    ns.plugin(&["orphans", name, "--exit-code", "-o", "json"])?
        .expect_code(3)?;

    ns.scale(name, 2).await?;
    ns.wait_rollout_complete(name, 2).await?;
    ns.plugin(&["orphans", "--exit-code"])?.expect_code(0)?;
    Ok(())
}

/// Run `orphans [NAME] -o json` and require exactly `want` (sorted by name); returns the items.
/// Regression (issue 10): `orphans --delete` on a terminal; while the prompt waits, the
/// StatefulSet is scaled back up, so the pod of a listed ScaledDown claim is created and mounts
/// it; then the user answers `yes`. The claim used to be deleted (Terminating under
/// pvc-protection: its data gone at the pod's next restart). The decision is now made again
/// from fresh state right before each delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_taken_back_while_the_prompt_waits_are_not_deleted() -> Result<()> {
    let ns = TestNs::new("prompt-race").await?;
    let name = "race";
    ns.create_sts(&StsFixture::new(name, 3).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 3).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let listed = ensure_orphans(
        &ns,
        name,
        &[&format!("data-{name}-1"), &format!("data-{name}-2")],
    )
    .await?;
    ensure!(
        listed.iter().all(|o| o["reason"] == "ScaledDown"),
        "{listed:?}"
    );
    let uids = claim_uids(&ns).await?;

    let prompt = AtPrompt::start(&ns, &["orphans", name, "--delete"], "to continue").await?;
    ensure!(
        prompt.asked.contains("Delete 2 PersistentVolumeClaim(s)"),
        "the prompt should offer both claims: {}",
        prompt.asked
    );

    // While the prompt waits: scale back up; pod race-1 is created and mounts data-race-1.
    ns.scale(name, 2).await?;
    ns.wait_rollout_complete(name, 2).await?;
    let out = prompt.answer("yes", ns.timeout()).await?;
    let stdout = &out.stdout;
    ensure!(
        out.code == Some(0),
        "orphans --delete exited with {:?}\n{stdout}\n{}",
        out.code,
        out.stderr
    );
    let taken_back = format!("data-{name}-1");
    let line = stdout
        .lines()
        .find(|l| l.contains(&taken_back) && l.contains("Skipped"))
        .with_context(|| format!("{taken_back} should be reported as Skipped:\n{stdout}"))?;
    ensure!(
        line.contains("no longer an orphan") || line.contains("in use by pod"),
        "the skip should say why: {line}"
    );
    let claim = ns.pvcs().get(&taken_back).await?;
    ensure!(
        claim.metadata.deletion_timestamp.is_none()
            && claim.metadata.uid.as_ref() == uids.get(&taken_back),
        "{taken_back} was deleted although pod {name}-1 uses it"
    );
    // The claim that still qualified was deleted.
    ensure!(
        stdout
            .lines()
            .any(|l| l.contains(&format!("data-{name}-2")) && l.contains("Deleted")),
        "data-{name}-2 should be deleted:\n{stdout}"
    );
    ns.wait_gone::<PersistentVolumeClaim>(&format!("data-{name}-2"))
        .await?;
    Ok(())
}

async fn ensure_orphans(ns: &TestNs, sts: &str, want: &[&str]) -> Result<Vec<Value>> {
    let mut args = vec!["orphans"];
    if !sts.is_empty() {
        args.push(sts);
    }
    let view = ns.plugin_json(&args, "OrphanedClaimList")?;
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    ensure!(
        names_of(&view["items"]) == want,
        "`kubectl sts {}` should list exactly {want:?}, got {}",
        args.join(" "),
        view["items"]
    );
    let mut items = view["items"].as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(items)
}

/// Each unused claim got `action`, the in-use one `Skipped`, and nothing else was touched.
fn check_results(view: &Value, unused: &[String], action: &str, in_use: &str) -> Result<()> {
    let results = view["results"]
        .as_array()
        .with_context(|| format!("--delete output has no results[]: {view}"))?;
    let actions: BTreeMap<String, String> = results
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r["action"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let mut want: BTreeMap<String, String> = unused
        .iter()
        .map(|c| (c.clone(), action.to_string()))
        .collect();
    want.insert(in_use.to_string(), "Skipped".to_string());
    ensure!(
        actions == want,
        "--delete results should be {want:?}, got {results:?}"
    );
    Ok(())
}

async fn claim_uids(ns: &TestNs) -> Result<BTreeMap<String, String>> {
    Ok(ns
        .pvcs()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|p| Some((p.metadata.name?, p.metadata.uid?)))
        .collect())
}
