//! e2e: StatefulSet features of current Kubernetes, on the real controller — `spec.ordinals.start`
//! (GA 1.31) and `persistentVolumeClaimRetentionPolicy` (GA 1.32). See docs/e2e-scenarios.md.
//!
//! Older servers drop these fields silently, so these tests need a server of at least
//! [`MIN_MINOR`]. `tests/e2e-matrix.sh` runs this binary only on such servers and reports it as
//! *not applicable* on older ones (never as passed). Run by hand against an older server, each
//! test fails with that message rather than pass without having tested anything.

mod common;

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail, ensure};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSetOrdinals;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::DeleteParams;
use serde_json::json;

/// The oldest minor version these scenarios apply to.
const MIN_MINOR: u32 = 32;

async fn require_current_server(ns: &TestNs) -> Result<u32> {
    let info = ns.client.apiserver_version().await?;
    let minor: u32 = info
        .minor
        .trim_end_matches('+')
        .parse()
        .with_context(|| format!("server minor version {:?}", info.minor))?;
    if minor < MIN_MINOR {
        bail!(
            "this scenario needs Kubernetes >= 1.{MIN_MINOR}, the server is {}: it is not applicable here (tests/e2e-matrix.sh leaves it out on such servers)",
            info.git_version
        );
    }
    Ok(minor)
}

/// Claim names in the namespace, from the API.
async fn claim_names(ns: &TestNs) -> Result<BTreeSet<String>> {
    Ok(ns
        .pvcs()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter_map(|c| c.metadata.name)
        .collect())
}

/// The claims (`<template>-<pod>`) whose pod the controller does not run.
fn claims_without_pods(claims: &BTreeSet<String>, pods: &[String]) -> BTreeSet<String> {
    claims
        .iter()
        .filter(|c| !pods.iter().any(|p| c.ends_with(&format!("-{p}"))))
        .cloned()
        .collect()
}

/// The orphans `kubectl sts orphans NAME -o json` lists, by name.
fn orphan_names(ns: &TestNs, sts: &str) -> Result<BTreeSet<String>> {
    let view = ns.plugin_json(&["orphans", sts], "OrphanedClaimList")?;
    Ok(names_of(&view["items"]).into_iter().collect())
}

/// `ordinals.start` 5, 3 replicas, partition 1: the pods, the partition line and the orphans
/// follow the ordinals the controller really used, through a scale-down and a move of `start`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinals_start_shifts_pods_partition_and_orphans() -> Result<()> {
    let ns = TestNs::new("ordinals").await?;
    require_current_server(&ns).await?;
    let name = "ord";
    let mut sts = StsFixture::new(name, 3)
        .claim_template("data")
        .partition(1)
        .build();
    sts.spec.as_mut().context("spec")?.ordinals = Some(StatefulSetOrdinals { start: Some(5) });
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 3).await?;
    let pods = ns.pod_names(name).await?;
    ensure!(
        pods == ["ord-5", "ord-6", "ord-7"],
        "the controller should have made ord-5..7, made {pods:?}"
    );

    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        view["ordinalsStart"] == 5,
        "ordinalsStart: {}",
        view["ordinalsStart"]
    );
    let shown: Vec<String> = names_of(&view["pods"]);
    ensure!(
        shown == pods,
        "inspect should show the controller's pods {pods:?}, shows {shown:?}"
    );
    // The partition line is drawn by index: partition 1 = above ordinal 6.
    let table = ns.plugin(&["inspect", name])?;
    table.expect_code(0)?;
    let line = |needle: &str| table.stdout.lines().position(|l| l.contains(needle));
    let (p, o5, o6) = (line("---- partition 1"), line("ord-5 "), line("ord-6 "));
    ensure!(
        p.is_some() && o5 < p && p < o6,
        "the partition line should sit between ord-5 and ord-6:\n{}",
        table.stdout
    );

    // Scale to 2: the controller removes ord-7; only its claim is a ScaledDown orphan.
    ns.scale(name, 2).await?;
    ns.wait_rollout_complete(name, 2).await?;
    let pods = ns.pod_names(name).await?;
    let claims = claim_names(&ns).await?;
    let expected = claims_without_pods(&claims, &pods);
    ensure!(
        expected == BTreeSet::from(["data-ord-7".to_owned()]),
        "after scale-down the controller kept pods {pods:?} and claims {claims:?}"
    );
    ensure!(
        orphan_names(&ns, name)? == expected,
        "orphans after scale-down"
    );

    // Move start down to 3: the controller makes ord-3 and ord-4 and removes ord-5 and ord-6;
    // every claim above the new range is an orphan.
    ns.merge_patch_sts(name, json!({"spec": {"ordinals": {"start": 3}}}))
        .await?;
    ns.wait_rollout_complete(name, 2).await?;
    let pods = ns.pod_names(name).await?;
    ensure!(
        pods == ["ord-3", "ord-4"],
        "after start=3 the pods are {pods:?}"
    );
    let expected = claims_without_pods(&claim_names(&ns).await?, &pods);
    let view = ns.plugin_json(&["orphans", name], "OrphanedClaimList")?;
    ensure!(
        names_of(&view["items"])
            .into_iter()
            .collect::<BTreeSet<_>>()
            == expected,
        "orphans after start=3 should be {expected:?}: {}",
        view["items"]
    );
    ensure!(
        view["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["reason"] == "ScaledDown")),
        "claims outside the range are ScaledDown: {}",
        view["items"]
    );
    Ok(())
}

/// Retention policy Delete/Delete: the controller deletes the claims of removed ordinals
/// (nothing is left for `orphans`), and the garbage collector deletes the rest with the
/// StatefulSet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_policy_delete_leaves_no_orphans() -> Result<()> {
    let ns = TestNs::new("retention").await?;
    require_current_server(&ns).await?;
    let name = "ret";
    let mut sts = StsFixture::new(name, 3).claim_template("data").build();
    sts.spec
        .as_mut()
        .context("spec")?
        .persistent_volume_claim_retention_policy = Some(
        k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some("Delete".into()),
            when_scaled: Some("Delete".into()),
        },
    );
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 3).await?;
    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        view["retentionPolicy"] == json!({"whenDeleted": "Delete", "whenScaled": "Delete"}),
        "inspect retentionPolicy: {}",
        view["retentionPolicy"]
    );

    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    for gone in ["data-ret-1", "data-ret-2"] {
        ns.wait_gone::<PersistentVolumeClaim>(gone).await?;
    }
    ensure!(
        orphan_names(&ns, name)?.is_empty(),
        "whenScaled: Delete leaves no ScaledDown orphans"
    );

    ns.sts().delete(name, &DeleteParams::background()).await?;
    ns.wait_gone::<PersistentVolumeClaim>("data-ret-0").await?;
    ensure!(
        orphan_names(&ns, name)?.is_empty(),
        "whenDeleted: Delete leaves no orphans"
    );
    Ok(())
}
