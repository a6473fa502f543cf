//! e2e: `list --watch` and `inspect --watch` on the real control plane: rows and views printed
//! as the controller changes things, from watches, and a clean end on Ctrl-C.

mod common;

use anyhow::{Result, ensure};
use common::*;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::PostParams;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_watch_prints_a_row_for_each_change() -> Result<()> {
    let ns = TestNs::new("list-watch").await?;
    ns.create_sts(&StsFixture::new("w1", 2).build()).await?;
    ns.wait_rollout_complete("w1", 2).await?;
    let watch = Following::start(&ns, &["list", "--watch"])?;
    watch
        .wait_line("the first row", ns.timeout(), |l| {
            l.starts_with("w1 ") && l.contains(" 2/2 ")
        })
        .await?;
    ns.scale("w1", 3).await?;
    watch
        .wait_line("w1 at 3/3", ns.timeout(), |l| {
            l.starts_with("w1 ") && l.contains(" 3/3 ")
        })
        .await?;
    ns.create_sts(&StsFixture::new("w2", 1).build()).await?;
    watch
        .wait_line("a row for the new w2", ns.timeout(), |l| {
            l.starts_with("w2 ") && l.contains(" 1/1 ")
        })
        .await?;
    watch.interrupt()?;
    let run = watch.finish(ns.timeout()).await?;
    run.expect_code(0)?;
    let headers = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("NAME "))
        .count();
    ensure!(headers == 1, "the header once:\n{}", run.stdout);
    // What the watch printed last for w1 is what a fresh list says now.
    let now = ns.plugin(&["list", "--no-headers"])?;
    now.expect_code(0)?;
    let fresh = now.stdout.lines().find(|l| l.starts_with("w1 "));
    let last = run.stdout.lines().rev().find(|l| l.starts_with("w1 "));
    let columns = |l: Option<&str>| -> Vec<String> {
        // Without AGE (the last column), which moves with time.
        let mut c: Vec<String> = l
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        c.pop();
        c
    };
    ensure!(
        columns(fresh) == columns(last),
        "watch ended on {last:?}, list says {fresh:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_watch_shows_a_rollout_as_it_happens() -> Result<()> {
    let ns = TestNs::new("inspect-watch").await?;
    let name = "iw";
    ns.create_sts(&StsFixture::new(name, 3).build()).await?;
    ns.wait_rollout_complete(name, 3).await?;
    let watch = Following::start(&ns, &["inspect", name, "-w"])?;
    watch
        .wait_line("the first view", ns.timeout(), |l| {
            l.starts_with("Rollout:") && l.contains("complete")
        })
        .await?;
    // A new template whose pod waits for claim `gate`: the rollout stops at iw-2 until it exists.
    ns.merge_patch_sts(
        name,
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "gate", "persistentVolumeClaim": {"claimName": "gate"}}
        ]}}}}),
    )
    .await?;
    watch
        .wait_line("a rolling view", ns.timeout(), |l| {
            l.starts_with("Rollout:") && l.contains("rolling")
        })
        .await?;
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": { "name": "gate" },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    }))?;
    ns.pvcs().create(&PostParams::default(), &claim).await?;
    ns.wait_rollout_complete(name, 3).await?;
    let update = ns
        .sts()
        .get(name)
        .await?
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    watch
        .wait_line("the view after the rollout", ns.timeout(), |l| {
            l.starts_with("Revisions:") && l.contains(&format!("current = update = {update} "))
        })
        .await?;
    watch.interrupt()?;
    let run = watch.finish(ns.timeout()).await?;
    run.expect_code(0)?;
    let rollouts: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("Rollout:"))
        .collect();
    ensure!(
        rollouts.len() >= 3
            && rollouts.first().is_some_and(|l| l.contains("complete"))
            && rollouts.iter().any(|l| l.contains("rolling"))
            && rollouts.last().is_some_and(|l| l.contains("complete")),
        "complete, then rolling, then complete again:\n{}",
        run.stdout
    );
    Ok(())
}
