//! e2e: `kubectl sts status` on the `Recreate` update strategy (alpha in 1.37, feature gate
//! `StatefulSetRecreateStrategy`, which the local control plane turns on from 1.37): the
//! controller deletes every old-revision pod and creates the new ones only once all have gone.
//! Needs [`MIN_MINOR`]; `tests/e2e-matrix.sh` reports it as not applicable on older servers.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::*;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const MIN_MINOR: u32 = 37;
/// Holds the old pods in Terminating until the test lets them go, so the phase in which the
/// controller waits for them is seen for certain.
const HOLD: &str = "sts.dev/e2e-hold";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_waits_for_every_old_pod_before_the_new_ones() -> Result<()> {
    let ns = TestNs::new("recreate").await?;
    require_server_minor(&ns, MIN_MINOR, "the Recreate update strategy").await?;
    let name = "rc";
    let mut sts = StsFixture::new(name, 2).build();
    let spec = sts.spec.as_mut().context("spec")?;
    spec.update_strategy = Some(serde_json::from_value(json!({"type": "Recreate"}))?);
    spec.template.metadata.get_or_insert_default().finalizers = Some(vec![HOLD.to_string()]);
    ns.create_sts(&sts).await?;
    let stored = ns.wait_rollout_complete(name, 2).await?;
    let strategy = stored
        .spec
        .and_then(|s| s.update_strategy)
        .and_then(|u| u.type_);
    ensure!(
        strategy.as_deref() == Some("Recreate"),
        "the server kept strategy {strategy:?} (feature gate StatefulSetRecreateStrategy off?)"
    );
    let done = ns.plugin_json(&["status", name], "StatefulSetRolloutStatus")?;
    ensure!(
        done["phase"] == "Complete" && done["strategy"] == "Recreate",
        "{done:#}"
    );

    // The update: new image, and new pods without the finalizer.
    ns.merge_patch_sts(
        name,
        json!({"spec": {"template": {
            "metadata": {"finalizers": null},
            "spec": {"containers": [{"name": "main", "image": IMAGE_V2}]}
        }}}),
    )
    .await?;
    let view = eventually(
        "both old pods terminating, seen by the controller",
        ns.timeout(),
        || async {
            let run = ns.plugin(&["status", name, "-o", "json"])?;
            run.expect_code(3)?;
            let v = run.json("StatefulSetRolloutStatus")?;
            let terminating = v["ordinals"]
                .as_array()
                .is_some_and(|o| o.len() == 2 && o.iter().all(|o| o["terminating"] == true));
            let observed = v["observed"] == true;
            Ok(if terminating && observed {
                Probe::Done(v)
            } else {
                Probe::NotYet(v.to_string())
            })
        },
    )
    .await?;
    ensure!(
        view["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Recreate: deleting every old-revision pod first")),
        "{view:#}"
    );

    let following = Following::start(&ns, &["status", name, "-w", "--timeout", "3m"])?;
    following
        .wait_line("the Recreate line", ns.timeout(), |l| {
            l.contains("Recreate: deleting every old-revision pod first (rc-0, rc-1 left)")
        })
        .await?;
    // Still no new pod while the old ones exist: what the controller promises.
    let update = ns
        .sts()
        .get(name)
        .await?
        .status
        .and_then(|s| s.update_revision)
        .context("update revision")?;
    for pod in pods_of(&ns.pods(), name).await? {
        ensure!(
            revision_of(&pod) != Some(update.as_str()),
            "a new pod exists while old ones terminate: {}",
            pod_summary(&pod)
        );
        let release = json!({"metadata": {"finalizers": null}});
        ns.pods()
            .patch(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&release),
            )
            .await?;
    }
    let run = following.finish(ns.timeout()).await?;
    run.expect_code(0)?;
    ensure!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("rc complete: 2/2 updated") && l.contains(&update)),
        "{}",
        run.stdout
    );
    for pod in pods_of(&ns.pods(), name).await? {
        ensure!(
            revision_of(&pod) == Some(update.as_str()),
            "{}",
            pod_summary(&pod)
        );
    }
    Ok(())
}
