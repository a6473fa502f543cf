//! e2e: StatefulSet features of current Kubernetes, on the real controller — `spec.ordinals.start`
//! (GA 1.31), `persistentVolumeClaimRetentionPolicy` and the pod-index label (GA 1.32),
//! an optional `serviceName` (1.33), `maxUnavailable` (beta, on by default, 1.35) — and the
//! webhook `matchConditions` deploy/ ships (GA 1.30). See docs/e2e-scenarios.md.
//!
//! Older servers drop these fields silently, so these tests need a server of at least
//! [`MIN_MINOR`]. `tests/e2e-matrix.sh` runs this binary only on such servers and reports it as
//! *not applicable* on older ones (never as passed). Run by hand against an older server, each
//! test fails with that message rather than pass without having tested anything.

mod common;

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail, ensure};
use common::*;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSetOrdinals};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams};
use serde_json::json;

/// The oldest minor version these scenarios apply to: the oldest release supported upstream
/// (1.35). Single scenarios need less; the matrix runs them all on current releases only.
const MIN_MINOR: u32 = 35;

/// Fails (as not applicable) on servers older than [`MIN_MINOR`].
async fn require_current_server(ns: &TestNs) -> Result<u32> {
    require_server_minor(ns, MIN_MINOR, "this scenario").await
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
    let sts = StsFixture::new(name, 3)
        .claim_template("data")
        .retention("Delete", "Delete")
        .build();
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

/// The pod-index label (GA 1.32): the controller labels each pod with its ordinal, and the
/// ordinals `inspect` shows are those labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinals_are_the_controllers_pod_index_labels() -> Result<()> {
    let ns = TestNs::new("pod-index").await?;
    require_current_server(&ns).await?;
    let name = "idx";
    let mut sts = StsFixture::new(name, 3).build();
    sts.spec.as_mut().context("spec")?.ordinals = Some(StatefulSetOrdinals { start: Some(2) });
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 3).await?;
    let mut labelled = BTreeSet::new();
    for pod in pods_of(&ns.pods(), name).await? {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let index = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(sts_model::naming::POD_INDEX_LABEL))
            .with_context(|| format!("the controller did not label pod {pod_name} with its index"))?
            .parse::<i64>()?;
        labelled.insert((pod_name, index));
    }
    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    let shown: BTreeSet<(String, i64)> = view["pods"]
        .as_array()
        .context("pods[]")?
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["ordinal"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    ensure!(
        shown == labelled,
        "inspect should show the ordinals of the pod-index labels {labelled:?}, shows {shown:?}"
    );
    Ok(())
}

/// `spec.serviceName` optional since 1.33: the real kubectl applies a manifest without it (no
/// `--validate=false`), the webhook injects a name and creates the Service; a preset name that
/// is not a DNS label is refused by the server, and the webhook's warning says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_name_may_be_absent_and_an_invalid_one_is_explained() -> Result<()> {
    let ns = TestNs::new("svcname-optional").await?;
    require_current_server(&ns).await?;
    let name = "opt";
    let manifest = serde_yaml::to_string(&StsFixture::new(name, 1).build())?;
    ensure!(!manifest.contains("serviceName"), "{manifest}");
    ns.kubectl(&["apply", "-f", "-"], &manifest)?
        .expect_code(0)?;
    let stored = ns.sts().get(name).await?;
    let injected = stored
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty())
        .context("the webhook did not inject spec.serviceName")?;
    ns.wait_service(&injected).await?;

    let bad = serde_yaml::to_string(&StsFixture::new("bad", 1).service_name("Web_Peers").build())?;
    let run = ns.kubectl(&["apply", "-f", "-"], &bad)?;
    ensure!(
        run.code != Some(0),
        "the server should refuse serviceName Web_Peers: {run:?}"
    );
    ensure!(
        run.stderr.contains("spec.serviceName"),
        "the server's refusal names the field: {}",
        run.stderr
    );
    ensure!(
        run.stderr.contains("Warning:") && run.stderr.contains("Web_Peers"),
        "the webhook's warning explains the name: {}",
        run.stderr
    );
    ensure!(
        ns.sts().get_opt("bad").await?.is_none(),
        "nothing was created"
    );
    Ok(())
}

/// The `matchConditions` that deploy/ ships (GA 1.30), evaluated by the real apiserver: an
/// extra webhook with exactly those conditions, `failurePolicy: Fail` and nothing behind its
/// URL is refused when it is called, so every write shows whether the apiserver called it. A
/// CREATE and an UPDATE without `serviceName` call it; an UPDATE that keeps `serviceName` (a
/// label, a scale, a new image) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_match_conditions_call_the_webhook_only_when_needed() -> Result<()> {
    use kube::api::PostParams;

    let marker = format!("mc-{}", std::process::id());
    let ns = TestNs::with_labels(
        "match-conditions",
        [("sts-e2e.dev/match-conditions".to_string(), marker.clone())].into(),
    )
    .await?;
    require_current_server(&ns).await?;
    let deployed: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        workspace_root().join("deploy/base/mutatingwebhookconfiguration.yaml"),
    )?)?;
    let conditions = deployed["webhooks"][0]["matchConditions"].clone();
    ensure!(
        conditions.as_array().is_some_and(|c| !c.is_empty()),
        "deploy/ has no matchConditions"
    );

    // The StatefulSet to update, created before the failing webhook exists.
    let name = "mc";
    ns.create_sts(&StsFixture::new(name, 1).build()).await?;

    let hook = "match-conditions.e2e.sts.dev";
    let _guard = register_unanswered_webhook(
        &ns,
        hook,
        ("sts-e2e.dev/match-conditions", &marker),
        json!({
            "rules": deployed["webhooks"][0]["rules"],
            "matchConditions": conditions,
        }),
    )
    .await?;
    let called = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.message.contains(hook));

    // CREATE: called (dry run, once the apiserver has picked up the configuration).
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = StsFixture::new("probe", 1).build();
    let sts_api = ns.sts();
    eventually(
        "a CREATE to call the failing webhook",
        ns.timeout(),
        || async {
            Ok(match sts_api.create(&dry, &probe).await {
                Err(e) if called(&e) => Probe::Done(()),
                Err(e) => return Err(e.into()),
                Ok(_) => {
                    Probe::NotYet("dry-run create admitted: configuration not active yet".into())
                }
            })
        },
    )
    .await?;

    // UPDATEs that keep serviceName: not called.
    ns.merge_patch_sts(name, json!({"metadata": {"labels": {"touched": "yes"}}}))
        .await
        .context("a label UPDATE keeping serviceName must not call the webhook")?;
    ns.set_image(name, "main", IMAGE_V2)
        .await
        .context("an image UPDATE keeping serviceName must not call the webhook")?;

    // An UPDATE (PUT) whose object has no serviceName, as an operator's desired object: called.
    let mut live = ns.sts().get(name).await?;
    ensure!(
        live.spec
            .as_ref()
            .and_then(|s| s.service_name.as_deref())
            .is_some_and(|s| !s.is_empty()),
        "the real webhook injected serviceName at create"
    );
    if let Some(spec) = live.spec.as_mut() {
        spec.service_name = None;
    }
    match ns.sts().replace(name, &PostParams::default(), &live).await {
        Err(e) if called(&e) => {}
        Err(e) => bail!("the UPDATE without serviceName failed otherwise: {e}"),
        Ok(_) => {
            bail!("an UPDATE without serviceName must call the webhook (it restores the name)")
        }
    }
    Ok(())
}

/// Retention `whenDeleted: Delete` while another pod still mounts a claim: deleting the
/// StatefulSet makes the garbage collector delete its claims, but `kubernetes.io/pvc-protection`
/// holds back the one in use. `orphans` shows it as OwnerGone, used by that pod, already
/// terminating, and `--delete` leaves it alone; it goes when the pod does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_gone_claim_is_held_back_by_the_pod_that_mounts_it() -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::PostParams;

    let ns = TestNs::new("held-back").await?;
    require_current_server(&ns).await?;
    let name = "hold";
    let claim = "data-hold-0";
    let sts = StsFixture::new(name, 1)
        .claim_template("data")
        .retention("Delete", "Retain")
        .build();
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let holder = pod_mounting("holder", claim, json!({}))?;
    ns.pods().create(&PostParams::default(), &holder).await?;
    eventually("pod holder to run", ns.timeout(), || async {
        let pod = ns.pods().get("holder").await?;
        Ok(if is_ready(&pod) {
            Probe::Done(())
        } else {
            Probe::NotYet(pod_summary(&pod))
        })
    })
    .await?;

    ns.sts().delete(name, &DeleteParams::background()).await?;
    ns.wait_gone::<Pod>("hold-0").await?;
    // What the cluster did: the garbage collector deleted the claim, pvc-protection keeps it.
    let held = eventually(
        "the garbage collector to delete the claim",
        ns.timeout(),
        || async {
            let pvc = ns.pvcs().get(claim).await?;
            Ok(if pvc.metadata.deletion_timestamp.is_some() {
                Probe::Done(pvc)
            } else {
                Probe::NotYet("no deletionTimestamp yet".into())
            })
        },
    )
    .await?;
    ensure!(
        held.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "kubernetes.io/pvc-protection"),
        "the claim is held by pvc-protection: {:?}",
        held.metadata.finalizers
    );

    let view = ns.plugin_json(&["orphans"], "OrphanedClaimList")?;
    let item = find_by(&view["items"], "name", claim).context("orphans lists the held claim")?;
    ensure!(
        item["reason"] == "OwnerGone"
            && item["usedBy"] == json!(["holder"])
            && item["terminating"] == true,
        "{claim} should be OwnerGone, used by holder, terminating: {item}"
    );
    let table = ns.plugin(&["orphans"])?;
    ensure!(
        table.stdout.contains("(Terminating)"),
        "the table says it is terminating:\n{}",
        table.stdout
    );
    let deleted = ns.plugin_json(&["orphans", "--delete", "--yes"], "OrphanedClaimList")?;
    let result = find_by(&deleted["results"], "name", claim).context("a result for the claim")?;
    ensure!(result["action"] == "Skipped", "--delete skips it: {result}");

    ns.pods().delete("holder", &DeleteParams::default()).await?;
    ns.wait_gone::<PersistentVolumeClaim>(claim).await?;
    let after = ns.plugin_json(&["orphans"], "OrphanedClaimList")?;
    ensure!(
        names_of(&after["items"]).is_empty(),
        "nothing is left once the pod is gone: {}",
        after["items"]
    );
    Ok(())
}

/// kubectl of this release finds the plugin (`kubectl plugin list`, `kubectl sts …`) and
/// completes `kubectl sts <TAB>` through a `kubectl_complete-sts` symlink to it: subcommands,
/// output formats, and the StatefulSet names the API lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_finds_the_plugin_and_completes_through_it() -> Result<()> {
    let ns = TestNs::new("plugin-completion").await?;
    require_current_server(&ns).await?;
    for name in ["alpha", "beta"] {
        ns.create_sts(&StsFixture::new(name, 0).build()).await?;
    }
    // A PATH entry holding only the plugin and the helper, as a krew install would.
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(&ns.env.kubectl_sts, dir.path().join("kubectl-sts"))?;
    std::os::unix::fs::symlink(&ns.env.kubectl_sts, dir.path().join("kubectl_complete-sts"))?;
    // Only that and kubectl's own directory: `kubectl plugin list` fails on any other copy of
    // the plugin it finds (target/debug holds one).
    let kubectl_dir = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("kubectl").is_file())
        .context("kubectl on PATH")?;
    let kubectl_bin = kubectl_dir.join("kubectl");
    let path = std::env::join_paths([dir.path().to_owned(), kubectl_dir])?;
    let kubectl = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(&kubectl_bin)
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", &ns.env.kubeconfig)
            .output()
            .context("running kubectl")?;
        ensure!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    let lines = |text: String| -> Vec<String> { text.lines().map(str::to_owned).collect() };

    let listed = kubectl(&["plugin", "list"])?;
    ensure!(
        listed.contains(&dir.path().join("kubectl-sts").display().to_string()),
        "kubectl plugin list:\n{listed}"
    );
    let version = kubectl(&["sts", "version"])?;
    ensure!(
        version.starts_with("kubectl-sts "),
        "kubectl sts version: {version}"
    );

    let subcommands = lines(kubectl(&["__complete", "sts", ""])?);
    for sub in [
        "list", "inspect", "status", "history", "diff", "rollback", "orphans",
    ] {
        ensure!(
            subcommands.iter().any(|l| l == sub),
            "kubectl __complete sts '' should offer {sub}: {subcommands:?}"
        );
    }
    ensure!(
        subcommands.last().is_some_and(|l| l.starts_with(':')),
        "Cobra's directive ends the answer: {subcommands:?}"
    );
    let formats = lines(kubectl(&["__complete", "sts", "list", "-o", ""])?);
    ensure!(
        formats.iter().any(|l| l == "json") && formats.iter().any(|l| l == "wide"),
        "output formats: {formats:?}"
    );
    // The names come from the API.
    let live: BTreeSet<String> = ns
        .sts()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    let offered: BTreeSet<String> = lines(kubectl(&[
        "__complete",
        "sts",
        "inspect",
        "-n",
        &ns.name,
        "",
    ])?)
    .into_iter()
    .filter(|l| !l.starts_with(':') && !l.starts_with("Completion ended"))
    .collect();
    ensure!(
        offered == live,
        "kubectl __complete sts inspect -n {} '' should offer {live:?}, offered {offered:?}",
        ns.name
    );
    let prefixed = lines(kubectl(&[
        "__complete",
        "sts",
        "inspect",
        "-n",
        &ns.name,
        "al",
    ])?);
    ensure!(
        prefixed
            .iter()
            .filter(|l| !l.starts_with(':'))
            .collect::<Vec<_>>()
            == ["alpha"],
        "prefix al: {prefixed:?}"
    );

    // Revisions of the StatefulSet named on the line, as the controller made them.
    ns.set_image("alpha", "main", IMAGE_V2).await?;
    let revisions = eventually("a second revision of alpha", ns.timeout(), || async {
        let revisions: Api<ControllerRevision> = ns.api();
        let own: Vec<ControllerRevision> = revisions
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|r| {
                r.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.name == "alpha")
            })
            .collect();
        Ok(if own.len() == 2 {
            Probe::Done(own)
        } else {
            Probe::NotYet(format!("{} revisions", own.len()))
        })
    })
    .await?;
    let mut expected: BTreeSet<String> = revisions
        .iter()
        .flat_map(|r| {
            [
                r.revision.to_string(),
                r.metadata.name.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let offered = |args: &[&str]| -> Result<BTreeSet<String>> {
        let mut full = vec!["__complete", "sts", "-n", &ns.name];
        full.extend_from_slice(args);
        Ok(lines(kubectl(&full)?)
            .into_iter()
            .filter(|l| !l.starts_with(':') && !l.starts_with("Completion ended"))
            .collect())
    };
    let to_revision = offered(&["rollback", "alpha", "--to-revision", ""])?;
    ensure!(
        to_revision == expected,
        "rollback --to-revision: {to_revision:?}, expected {expected:?}"
    );
    expected.extend(["current", "update", "live"].map(String::from));
    let from = offered(&["diff", "alpha", ""])?;
    ensure!(
        from == expected,
        "diff alpha '': {from:?}, expected {expected:?}"
    );
    Ok(())
}
