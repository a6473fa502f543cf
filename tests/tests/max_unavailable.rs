//! e2e: `rollingUpdate.maxUnavailable` on the real controller (KEP-961, feature gate
//! `MaxUnavailableStatefulSet`). The field is beta since 1.35, but with default feature gates
//! the apiserver of 1.36.3 (and 1.35.4) drops it, as seen here; 1.37.2 keeps it and the
//! controller follows it. So this needs [`MIN_MINOR`]; `tests/e2e-matrix.sh` reports it as not
//! applicable on older servers, and run by hand there it fails saying so. See
//! docs/e2e-scenarios.md.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use common::*;
use serde_json::json;

/// The oldest minor version whose apiserver keeps `maxUnavailable` with default feature gates.
const MIN_MINOR: u32 = 37;

/// `maxUnavailable: 2` with Parallel pods: an update whose
/// pods cannot start leaves as many pods down as the controller allowed; `inspect` and `list`
/// show the setting, and the rollout is Rolling with the not-ready count the API shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_unavailable_is_shown_and_the_rollout_follows_it() -> Result<()> {
    let ns = TestNs::new("max-unavailable").await?;
    require_server_minor(&ns, MIN_MINOR, "rollingUpdate.maxUnavailable").await?;
    let name = "mu";
    let mut sts = StsFixture::new(name, 4).build();
    let spec = sts.spec.as_mut().context("spec")?;
    spec.pod_management_policy = Some("Parallel".into());
    spec.update_strategy = Some(serde_json::from_value(json!({
        "type": "RollingUpdate",
        "rollingUpdate": { "maxUnavailable": 2 }
    }))?);
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 4).await?;
    let stored = ns.sts().get(name).await?;
    ensure!(
        sts_model::rollout::max_unavailable(&stored).as_deref() == Some("2"),
        "the server dropped maxUnavailable (feature gate MaxUnavailableStatefulSet off?)"
    );
    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        view["maxUnavailable"] == "2",
        "inspect: {}",
        view["maxUnavailable"]
    );
    let list = ns.plugin_json(&["list"], "StatefulSetList")?;
    let item = find_by(&list["items"], "name", name).context("list has the StatefulSet")?;
    ensure!(item["maxUnavailable"] == "2", "list: {item}");
    let wide = ns.plugin(&["list", "-o", "wide"])?;
    wide.expect_code(0)?;
    ensure!(
        wide.stdout.contains("RollingUpdate (maxUnavailable 2)"),
        "list -o wide:\n{}",
        wide.stdout
    );

    // A template whose pods can never start: a volume naming a claim that does not exist.
    ns.merge_patch_sts(
        name,
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "broken", "persistentVolumeClaim": {"claimName": "does-not-exist"}}
        ]}}}}),
    )
    .await?;
    // Wait until the controller has taken down what it will: the not-ready count stops moving.
    let last = std::sync::Mutex::new((usize::MAX, std::time::Instant::now()));
    let down = eventually(
        "the controller to stop taking pods down",
        ns.timeout(),
        || {
            let last = &last;
            let ns = &ns;
            async move {
                let pods = pods_of(&ns.pods(), name).await?;
                let down = 4 - pods.iter().filter(|p| is_ready(p)).count();
                let mut last = last.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                if down != last.0 {
                    *last = (down, std::time::Instant::now());
                }
                Ok(if down > 0 && last.1.elapsed() > Duration::from_secs(5) {
                    Probe::Done(down)
                } else {
                    Probe::NotYet(format!("{down} pod(s) down"))
                })
            }
        },
    )
    .await?;
    ensure!(
        down == 2,
        "with maxUnavailable 2 the controller should take down 2 pods, took down {down}"
    );
    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(view["rollout"] == "Rolling", "rollout: {}", view["rollout"]);
    let table = ns.plugin(&["inspect", name])?;
    table.expect_code(0)?;
    ensure!(
        table
            .stdout
            .contains(&format!("{down} pod(s) not ready; maxUnavailable 2")),
        "inspect should explain the {down} pods down by maxUnavailable:\n{}",
        table.stdout
    );
    let not_ready_shown = view["pods"]
        .as_array()
        .context("pods[]")?
        .iter()
        .filter(|p| p["ready"] == false)
        .count();
    ensure!(
        not_ready_shown == down,
        "inspect shows {not_ready_shown} pods not ready, the API {down}"
    );
    Ok(())
}
