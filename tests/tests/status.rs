//! e2e: `kubectl sts status` on the real controller: a partitioned rollout followed live, an
//! OnDelete StatefulSet with pods left on the old revision, a completed rollout, and stuck ones
//! (a pod that never becomes Ready; the rollback trap), each with its exit code. Expected
//! revisions and pod names are read from what the controller did.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::*;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

/// Exit codes of `status` (README "Exit codes").
const NOT_DONE: i32 = 3;
const TIMED_OUT: i32 = 4;
const STUCK: i32 = 5;
const INTERRUPTED: i32 = 130;

fn status_json(ns: &TestNs, args: &[&str], code: i32) -> Result<Value> {
    let mut full = vec!["status"];
    full.extend_from_slice(args);
    full.extend(["-o", "json"]);
    let run = ns.plugin(&full)?;
    run.expect_code(code)?;
    let view = run.json("StatefulSetRolloutStatus")?;
    ensure_schema("StatefulSetRolloutStatus", &view)?;
    Ok(view)
}

/// (currentRevision, updateRevision) as the controller wrote them.
async fn revisions(ns: &TestNs, name: &str) -> Result<(String, String)> {
    let st = ns.sts().get(name).await?.status.context("no status")?;
    Ok((
        st.current_revision.unwrap_or_default(),
        st.update_revision.unwrap_or_default(),
    ))
}

/// A claim the simulated node provisions and binds at once.
fn claim(name: &str) -> Result<PersistentVolumeClaim> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "16Mi" } }
        }
    }))?)
}

/// A template change whose pods wait for claim `gate` (Pending until it exists and is bound).
fn gated_on(claim: &str) -> Value {
    json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "gate", "persistentVolumeClaim": {"claimName": claim}}
    ]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_rollout_is_followed_live_until_its_partition_is_done() -> Result<()> {
    let ns = TestNs::new("status-partition").await?;
    let name = "part";
    ns.create_sts(&StsFixture::new(name, 3).build()).await?;
    ns.wait_rollout_complete(name, 3).await?;

    // Completed: exit 0, every pod on the revision the controller made current.
    let (current, update) = revisions(&ns, name).await?;
    ensure!(current == update, "complete rollout: {current} vs {update}");
    let done = status_json(&ns, &[name], 0)?;
    ensure!(
        done["phase"] == "Complete" && done["done"] == true,
        "{done:#}"
    );
    ensure!(done["updateRevision"] == update.as_str(), "{done:#}");
    ensure!(done["counts"]["available"] == 3, "{done:#}");

    // Partition 2, and a template whose new pod waits for claim `gate`: ordinal 2 only.
    ns.merge_patch_sts(
        name,
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}),
    )
    .await?;
    ns.merge_patch_sts(name, gated_on("gate")).await?;
    let following = Following::start(&ns, &["status", name, "--watch", "--timeout", "3m"])?;
    following
        .wait_line("a progressing line", ns.timeout(), |l| {
            l.starts_with("part progressing:") && l.contains("part-2")
        })
        .await?;
    // Not done yet: exit 3 without --watch.
    let pending = status_json(&ns, &[name], NOT_DONE)?;
    ensure!(pending["phase"] == "Progressing", "{pending:#}");

    ns.pvcs()
        .create(&PostParams::default(), &claim("gate")?)
        .await?;
    let run = following.finish(ns.timeout()).await?;
    run.expect_code(0)?;
    let last = run.stdout.lines().last().unwrap_or_default();
    ensure!(
        last.starts_with("part partition complete: 1/1 updated, 3/3 ready"),
        "last line: {last}\nall:\n{}",
        run.stdout
    );
    ensure!(
        run.stdout.lines().count() >= 2,
        "a line per change:\n{}",
        run.stdout
    );

    // What the controller did: ordinals 0 and 1 on the old revision, 2 on the new one.
    let (current, update) = revisions(&ns, name).await?;
    ensure!(current != update, "the partition holds the old revision");
    let view = status_json(&ns, &[name], 0)?;
    ensure!(view["phase"] == "PartitionComplete", "{view:#}");
    for pod in pods_of(&ns.pods(), name).await? {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let row = find_by(&view["ordinals"], "pod", &pod_name).context("a row per pod")?;
        ensure!(
            row["revision"] == revision_of(&pod).unwrap_or_default(),
            "{pod_name}: {row}"
        );
        let ordinal = ordinal_of(&pod_name).context("ordinal")?;
        ensure!(row["getsUpdate"] == (ordinal >= 2), "{pod_name}: {row}");
    }
    let names = ns.plugin(&["status", name, "-o", "name"])?;
    names.expect_code(0)?;
    ensure!(names.stdout == "statefulset.apps/part\n", "{names:?}");
    let phase = ns.plugin(&["status", name, "-o", "jsonpath={.phase} {.counts.updated}"])?;
    phase.expect_code(0)?;
    ensure!(
        phase.stdout
            == format!(
                "{} {}",
                view["phase"].as_str().unwrap_or_default(),
                view["counts"]["updated"]
            ),
        "{phase:?}"
    );
    let text = ns.plugin(&["status", name])?;
    text.expect_code(0)?;
    ensure!(
        text.stdout
            .contains("below the partition: keeps the current revision"),
        "{}",
        text.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_lists_the_old_pods_and_the_watch_ends_when_they_are_replaced() -> Result<()> {
    let ns = TestNs::new("status-ondelete").await?;
    let name = "od";
    let mut sts = StsFixture::new(name, 2).build();
    sts.spec.as_mut().context("spec")?.update_strategy =
        Some(serde_json::from_value(json!({"type": "OnDelete"}))?);
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 2).await?;
    ns.set_image(name, "main", IMAGE_V2).await?;

    // The controller records the new update revision and replaces nothing.
    let view = eventually("status to wait for deletion", ns.timeout(), || async {
        let v = status_json(&ns, &[name], NOT_DONE)?;
        Ok(if v["phase"] == "WaitingForDeletion" {
            Probe::Done(v)
        } else {
            Probe::NotYet(v.to_string())
        })
    })
    .await?;
    let (_, update) = revisions(&ns, name).await?;
    let mut old: Vec<String> = pods_of(&ns.pods(), name)
        .await?
        .iter()
        .filter(|p| revision_of(p) != Some(update.as_str()))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    old.sort();
    ensure!(
        old.len() == 2,
        "both pods stay on the old revision: {old:?}"
    );
    ensure!(view["deleteToUpdate"] == json!(old), "{view:#}");
    ensure!(
        view["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("kubectl delete pod {}", old.join(" ")))),
        "{view:#}"
    );

    // --timeout: exit 4 after printing where it stands.
    let run = ns.plugin(&["status", name, "--timeout", "3s"])?;
    run.expect_code(TIMED_OUT)?;
    ensure!(
        run.stdout.contains("od waiting for deletion: 0/2 updated")
            && run
                .stderr
                .contains("error: timed out after 3s waiting for the rollout of od"),
        "{run:?}"
    );

    // Ctrl-C ends a watch with 130.
    let watch = Following::start(&ns, &["status", name, "-w"])?;
    watch
        .wait_line("the first line", ns.timeout(), |l| {
            l.contains("waiting for deletion")
        })
        .await?;
    watch.interrupt()?;
    watch.finish(ns.timeout()).await?.expect_code(INTERRUPTED)?;

    // Deleting the pods is what moves them on; the watch ends with the rollout.
    let watch = Following::start(&ns, &["status", name, "-w", "--timeout", "3m"])?;
    watch
        .wait_line("the first line", ns.timeout(), |l| {
            l.contains("waiting for deletion")
        })
        .await?;
    for pod in &old {
        ns.pods().delete(pod, &DeleteParams::default()).await?;
    }
    let run = watch.finish(ns.timeout()).await?;
    run.expect_code(0)?;
    ensure!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("od complete: 2/2 updated")),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_never_gets_ready_and_the_rollback_trap_are_stuck() -> Result<()> {
    let ns = TestNs::new("status-stuck").await?;
    let name = "stuck";
    ns.create_sts(&StsFixture::new(name, 3).build()).await?;
    ns.wait_rollout_complete(name, 3).await?;

    // An update whose pod cannot start: claim `missing` never exists.
    ns.merge_patch_sts(name, gated_on("missing")).await?;
    let run = ns.plugin(&[
        "status",
        name,
        "-w",
        "--stall-after",
        "5s",
        "--timeout",
        "3m",
    ])?;
    run.expect_code(STUCK)?;
    let last = run.stdout.lines().last().unwrap_or_default();
    ensure!(
        last.contains("pod stuck-2 on the update revision has not been ready for"),
        "{}",
        run.stdout
    );

    // Roll back: stuck-2 stays on the broken revision, not Ready, and the controller waits
    // for it forever (kubernetes/kubernetes#67250).
    rollback_until_applied(&ns, name).await?;
    let view = eventually("the rollback trap", ns.timeout(), || async {
        let v = status_json(&ns, &[name, "--stall-after", "5s"], STUCK);
        Ok(match v {
            Ok(v) if v["deleteToUpdate"] == json!(["stuck-2"]) => Probe::Done(v),
            other => Probe::NotYet(format!("{other:?}")),
        })
    })
    .await?;
    let message = view["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("kubectl delete pod stuck-2") && message.contains("67250"),
        "{view:#}"
    );
    // The advice works: deleting the pod ends the rollout.
    ns.pods()
        .delete("stuck-2", &DeleteParams::default())
        .await?;
    let run = ns.plugin(&["status", name, "-w", "--timeout", "3m"])?;
    run.expect_code(0)?;
    let (current, update) = revisions(&ns, name).await?;
    ensure!(current == update, "{current} vs {update}");
    ensure!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains(&update)),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_errors_are_clear() -> Result<()> {
    let ns = TestNs::new("status-errors").await?;
    ns.create_sts(&StsFixture::new("web", 1).build()).await?;
    let run = ns.plugin(&["status", "wbe"])?;
    run.expect_code(1)?;
    ensure!(
        run.stderr.contains("StatefulSet \"wbe\" not found")
            && run.stderr.contains("did you mean: web?"),
        "{}",
        run.stderr
    );
    // -l would be ignored by a command about one StatefulSet: refused, as -A is.
    let run = ns.plugin(&["status", "web", "-l", "app=other"])?;
    run.expect_code(2)?;
    ensure!(
        run.stderr.contains("-l/--selector selects several"),
        "{}",
        run.stderr
    );
    let run = ns.plugin(&["status", "web", "--timeout", "soon"])?;
    run.expect_code(2)?;
    ensure!(
        run.stderr.contains("\"soon\" is not a duration"),
        "{}",
        run.stderr
    );
    Ok(())
}
