//! e2e: `kubectl sts inspect` reads what belongs to one StatefulSet, not its whole namespace,
//! and still shows every claim of its templates as the cluster has it (see
//! docs/e2e-scenarios.md).

mod common;

use anyhow::{Result, ensure};
use common::*;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::PostParams;
use serde_json::json;

fn claim(name: &str, labels: serde_json::Value) -> Result<PersistentVolumeClaim> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}
        }
    }))?)
}

/// A claim made by hand before the StatefulSet (no labels: the controller adopts it by name
/// and never labels it) and one the controller made are both shown as the API has them, while
/// the plugin lists claims by the StatefulSet's labels and reads the unlabelled one by name. A
/// claim of another StatefulSet with the same labels is not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_read_for_the_statefulset_only_and_none_is_missed() -> Result<()> {
    let ns = TestNs::new("inspect-claims").await?;
    let name = "pre";
    let pvcs = ns.pvcs();
    pvcs.create(&PostParams::default(), &claim("data-pre-0", json!({}))?)
        .await?;
    // Same labels as the StatefulSet's claims, but the name of another StatefulSet's.
    pvcs.create(
        &PostParams::default(),
        &claim("data-pre-other-0", json!({"app": name}))?,
    )
    .await?;
    ns.create_sts(&StsFixture::new(name, 2).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 2).await?;

    let run = ns.plugin(&["inspect", name, "-o", "json", "-v"])?;
    run.expect_code(0)?;
    let view = run.json("StatefulSetInspection")?;
    // The real output matches the published schema (docs/schemas/).
    ensure_schema("StatefulSetInspection", &view)?;
    for ordinal in 0..2 {
        let claim_name = format!("data-{name}-{ordinal}");
        let stored = pvcs.get(&claim_name).await?;
        let phase = stored.status.and_then(|s| s.phase);
        let row = &view["pods"][ordinal]["pvcs"][0];
        ensure!(
            row["name"] == claim_name.as_str() && row["phase"] == json!(phase),
            "inspect should show {claim_name} with the API's phase {phase:?}: {row}"
        );
    }
    let shown: Vec<&str> = view["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["pvcs"].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    ensure!(
        shown == ["data-pre-0", "data-pre-1"],
        "only the claims of {name}'s template, got {shown:?}"
    );
    // The requests: claims by the StatefulSet's labels, the unlabelled one by name, and no
    // namespace-wide LIST of claims or Services.
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("API request"))
        .collect();
    let claim_lists: Vec<&&str> = requests
        .iter()
        .filter(|l| l.contains("verb=\"list\"") && l.contains("persistentvolumeclaims"))
        .collect();
    ensure!(
        claim_lists.len() == 1 && claim_lists[0].contains("labels=\"app=pre\""),
        "one LIST of claims, by label app=pre: {requests:#?}"
    );
    ensure!(
        requests.iter().any(|l| l.contains("verb=\"get\"")
            && l.contains("persistentvolumeclaims")
            && l.contains("data-pre-0")),
        "data-pre-0 (no labels) read by name: {requests:#?}"
    );
    ensure!(
        !requests
            .iter()
            .any(|l| l.contains("verb=\"list\"") && l.contains("resource=services")),
        "the governing Service is read by name, not by listing the namespace: {requests:#?}"
    );
    Ok(())
}
