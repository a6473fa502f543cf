//! e2e: revisions as the real StatefulSet controller writes them — `set image`, partitions,
//! rollback — seen through `kubectl sts history/diff/inspect/rollback` (see
//! docs/e2e-scenarios.md).

mod common;

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, ensure};
use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use serde_json::{Value, json};

/// Records, from a pod watch, the order in which ordinals first appear on a given revision.
struct RevisionWatch {
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RevisionWatch {
    fn start(ns: &TestNs, sts: &str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let api = ns.pods();
        let cfg = watcher::Config::default().labels(&format!("app={sts}"));
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let pods: Vec<Pod> = match ev {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
                    _ => continue,
                };
                for p in pods {
                    if let (Some(name), Some(rev)) = (p.metadata.name.clone(), revision_of(&p))
                        && let Ok(mut s) = sink.lock()
                    {
                        s.push((name, rev.to_string()));
                    }
                }
            }
        });
        Self { seen, task }
    }

    /// Ordinals in the order they were first seen with revision `rev`.
    fn order_onto(&self, rev: &str) -> Vec<i32> {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        let mut order = Vec::new();
        for (name, r) in seen {
            if r == rev
                && let Some(o) = ordinal_of(&name)
                && !order.contains(&o)
            {
                order.push(o);
            }
        }
        order
    }
}

impl Drop for RevisionWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn revisions(st: &StatefulSet) -> (String, String) {
    let status = st.status.clone().unwrap_or_default();
    (
        status.current_revision.unwrap_or_default(),
        status.update_revision.unwrap_or_default(),
    )
}

fn history(ns: &TestNs, name: &str) -> Result<Vec<Value>> {
    let view = ns.plugin_json(&["history", name], "RevisionHistory")?;
    let mut revs = view["revisions"]
        .as_array()
        .cloned()
        .with_context(|| format!("history has no revisions[]: {view}"))?;
    revs.sort_by_key(|r| r["revision"].as_i64());
    Ok(revs)
}

fn image_of(st: &StatefulSet) -> Option<String> {
    st.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

/// `kubectl set image`: two revisions in `history`, pods replaced from the highest ordinal
/// down, and `diff 1 2` shows exactly the image change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_rolls_from_highest_ordinal_with_history_and_diff() -> Result<()> {
    let ns = TestNs::new("set-image").await?;
    let name = "web";
    ns.create_sts(&StsFixture::new(name, 3).build()).await?;
    let before = ns.wait_rollout_complete(name, 3).await?;
    let (rev1, _) = revisions(&before);

    let watch = RevisionWatch::start(&ns, name);
    let patched = ns.set_image(name, "main", IMAGE_V2).await?;
    let after = ns.wait_rollout_complete(name, 3).await?;
    let (current, rev2) = revisions(&after);
    ensure!(
        rev2 != rev1 && current == rev2,
        "expected a new revision after set image: before {rev1}, now current {current} update {rev2}"
    );
    ensure!(
        after.metadata.generation == patched.metadata.generation,
        "unexpected further changes"
    );
    let order = watch.order_onto(&rev2);
    ensure!(
        order == [2, 1, 0],
        "pods should move to {rev2} from the highest ordinal down, observed order {order:?}"
    );

    let revs = history(&ns, name)?;
    ensure!(revs.len() == 2, "history should show 2 revisions: {revs:?}");
    let (r1, r2) = (&revs[0], &revs[1]);
    ensure!(
        r1["revision"] == 1 && r1["name"] == rev1.as_str() && r1["pods"] == 0,
        "revision 1 should be {rev1} with no pods: {r1}"
    );
    ensure!(
        r2["revision"] == 2
            && r2["name"] == rev2.as_str()
            && r2["pods"] == 3
            && r2["current"] == true
            && r2["update"] == true,
        "revision 2 should be {rev2}, current and update, with 3 pods: {r2}"
    );
    ensure!(
        r2["summary"].as_str().is_some_and(|s| s.contains(IMAGE_V2)),
        "revision 2's summary should name the new image {IMAGE_V2}: {r2}"
    );

    let diff = ns.plugin(&["diff", name, "1", "2"])?;
    diff.expect_code(0)?;
    let removed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    let added: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    ensure!(
        removed.len() == 1
            && removed[0].contains(IMAGE_V1)
            && added.len() == 1
            && added[0].contains(IMAGE_V2),
        "`diff {name} 1 2` should change only the image {IMAGE_V1} -> {IMAGE_V2}:\n{}",
        diff.stdout
    );
    Ok(())
}

/// With a partition, only ordinals ≥ partition move; `inspect` shows the partition and which
/// pods are on the update revision. Lowering the partition finishes the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_moves_only_ordinals_at_or_above_it() -> Result<()> {
    let ns = TestNs::new("partition").await?;
    let name = "part";
    ns.create_sts(&StsFixture::new(name, 4).partition(2).build())
        .await?;
    let before = ns.wait_rollout_complete(name, 4).await?;
    let (rev1, _) = revisions(&before);

    let watch = RevisionWatch::start(&ns, name);
    let patched = ns.set_image(name, "main", IMAGE_V2).await?;
    let generation = patched.metadata.generation.unwrap_or_default();
    let sts_api = ns.sts();
    let pods_api = ns.pods();
    // Settled = the controller saw the change, exactly 2 pods were updated and all 4 are Ready.
    let settled = eventually(
        "partitioned rollout to update exactly 2 pods with all 4 ready",
        ns.timeout(),
        || {
            let (sts_api, pods_api, rev1) = (sts_api.clone(), pods_api.clone(), rev1.clone());
            async move {
                let sts = sts_api.get(name).await?;
                let st = sts.status.clone().unwrap_or_default();
                let pods = pods_of(&pods_api, name).await?;
                let update = st.update_revision.clone().unwrap_or_default();
                let on_update = pods
                    .iter()
                    .filter(|p| revision_of(p) == Some(update.as_str()))
                    .count();
                let done = st.observed_generation.unwrap_or_default() >= generation
                    && update != rev1
                    && st.updated_replicas == Some(2)
                    && st.ready_replicas == Some(4)
                    && on_update == 2
                    && pods.len() == 4
                    && pods
                        .iter()
                        .all(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none());
                Ok(if done {
                    Probe::Done(sts)
                } else {
                    Probe::NotYet(format!(
                        "status {st:?}; pods {:?}",
                        pods.iter().map(pod_summary).collect::<Vec<_>>()
                    ))
                })
            }
        },
    )
    .await?;
    let (current, update) = revisions(&settled);
    ensure!(
        current == rev1,
        "current revision should stay {rev1}, is {current}"
    );

    let inspect = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        inspect["partition"] == 2,
        "inspect partition: {}",
        inspect["partition"]
    );
    ensure!(
        inspect["rollout"] == "PausedByPartition",
        "inspect rollout should be PausedByPartition: {}",
        inspect["rollout"]
    );
    for ordinal in 0..4 {
        let pod = find_by(&inspect["pods"], "name", &format!("{name}-{ordinal}"))
            .with_context(|| format!("inspect lacks pod {ordinal}: {}", inspect["pods"]))?;
        let want_update = ordinal >= 2;
        let want_rev = if want_update { &update } else { &rev1 };
        ensure!(
            pod["onUpdateRevision"] == want_update && pod["revision"] == want_rev.as_str(),
            "pod {ordinal} should be on {want_rev} (onUpdateRevision={want_update}): {pod}"
        );
    }
    ensure!(
        watch.order_onto(&update) == [3, 2],
        "only ordinals 3 then 2 should have moved, observed {:?}",
        watch.order_onto(&update)
    );

    ns.merge_patch_sts(
        name,
        json!({ "spec": { "updateStrategy": { "rollingUpdate": { "partition": 0 } } } }),
    )
    .await?;
    let done = ns.wait_rollout_complete(name, 4).await?;
    ensure!(
        revisions(&done).1 == update,
        "lowering the partition should not make a new revision"
    );
    ensure!(
        watch.order_onto(&update) == [3, 2, 1, 0],
        "after lowering the partition, pods should move 3,2 then 1,0: {:?}",
        watch.order_onto(&update)
    );
    let inspect = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        inspect["partition"] == 0 && inspect["rollout"] == "Complete",
        "inspect after partition 0: partition={} rollout={}",
        inspect["partition"],
        inspect["rollout"]
    );
    Ok(())
}

/// `rollback` returns the template to the previous revision; the controller renumbers that
/// revision to max+1; `--dry-run=server` changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_previous_template_and_renumbers_it() -> Result<()> {
    let ns = TestNs::new("rollback").await?;
    let name = "rb";
    ns.create_sts(&StsFixture::new(name, 2).build()).await?;
    let (rev_old, _) = revisions(&ns.wait_rollout_complete(name, 2).await?);
    ns.set_image(name, "main", IMAGE_V2).await?;
    let updated = ns.wait_rollout_complete(name, 2).await?;
    let (_, rev_new) = revisions(&updated);
    ensure!(rev_new != rev_old, "set image made no new revision");

    let dry = ns.plugin(&["rollback", name, "--dry-run=server", "--yes"])?;
    dry.expect_code(0)?;
    let unchanged = ns.sts().get(name).await?;
    ensure!(
        unchanged.metadata.generation == updated.metadata.generation
            && image_of(&unchanged).as_deref() == Some(IMAGE_V2),
        "a server dry-run rollback changed the StatefulSet: generation {:?} -> {:?}, image {:?}",
        updated.metadata.generation,
        unchanged.metadata.generation,
        image_of(&unchanged)
    );

    let run = ns.plugin(&["rollback", name, "--yes"])?;
    run.expect_code(0)?;
    let rolled = ns.wait_rollout_complete(name, 2).await?;
    ensure!(
        image_of(&rolled).as_deref() == Some(IMAGE_V1),
        "after rollback the template image should be {IMAGE_V1}, is {:?}",
        image_of(&rolled)
    );
    let (current, update) = revisions(&rolled);
    ensure!(
        current == rev_old && update == rev_old,
        "after rollback the pods should be on the old revision {rev_old} again: current {current} update {update}"
    );

    // The controller renumbers asynchronously after the template change; poll the plugin.
    let revs = eventually(
        "history to show the old revision renumbered to 3",
        ns.timeout(),
        || async {
            let revs = history(&ns, name)?;
            let numbers: Vec<String> = revs
                .iter()
                .map(|r| format!("{}={}", r["revision"], r["name"]))
                .collect();
            let renumbered = revs.len() == 2
                && revs[0]["revision"] == 2
                && revs[0]["name"] == rev_new.as_str()
                && revs[1]["revision"] == 3
                && revs[1]["name"] == rev_old.as_str();
            Ok(if renumbered {
                Probe::Done(revs)
            } else {
                Probe::NotYet(format!("{numbers:?}"))
            })
        },
    )
    .await?;
    ensure!(
        revs[1]["current"] == true && revs[1]["update"] == true && revs[1]["pods"] == 2,
        "revision 3 should be current and update with 2 pods: {}",
        revs[1]
    );
    Ok(())
}

/// Issue 10, kind 2: the rollback trap (kubernetes/kubernetes#67250). 3 replicas, OrderedReady;
/// an update whose pod cannot start (a volume naming a claim that does not exist), then a
/// rollback. `rollback` warns first; afterwards `list` and `inspect` name the pod left on the
/// broken revision at once (no timer), and deleting it, as they advise, ends the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_trap_is_named_and_the_advice_works() -> Result<()> {
    let ns = TestNs::new("trap").await?;
    let name = "trap";
    ns.create_sts(&StsFixture::new(name, 3).build()).await?;
    let sts = ns.wait_rollout_complete(name, 3).await?;
    let good = sts
        .status
        .and_then(|s| s.update_revision)
        .context("no update revision")?;
    // The broken update: pod trap-2 is re-created on it and can never start.
    ns.merge_patch_sts(
        name,
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "gone", "persistentVolumeClaim": {"claimName": "does-not-exist"}}
        ]}}}}),
    )
    .await?;
    let broken = eventually("trap-2 on the broken revision", ns.timeout(), || async {
        let sts = ns.sts().get(name).await?;
        let update = sts
            .status
            .and_then(|s| s.update_revision)
            .unwrap_or_default();
        let pod = ns.pods().get_opt(&format!("{name}-2")).await?;
        Ok(match pod {
            Some(p) if update != good && revision_of(&p) == Some(update.as_str()) => {
                Probe::Done(update)
            }
            other => Probe::NotYet(format!(
                "update {update}, trap-2 {:?}",
                other.as_ref().map(pod_summary)
            )),
        })
    })
    .await?;

    // Issue 10, kind 2: DNS names as the endpoints publish them. trap-0 is Ready behind the
    // headless Service: published. trap-2 never started and has no IP: no record, and why.
    eventually(
        "inspect to show published DNS names",
        ns.timeout(),
        || async {
            let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
            let (p0, p2) = (&view["pods"][0], &view["pods"][2]);
            let done = p0["dnsPublished"] == true
                && p2["dnsPublished"] == false
                && p2["dnsMissingReason"]
                    .as_str()
                    .is_some_and(|r| r.contains("no IP"));
            Ok(if done {
                Probe::Done(())
            } else {
                Probe::NotYet(format!("{p0}\n{p2}"))
            })
        },
    )
    .await?;

    // Before the rollback: the plugin says which pod it will leave stuck.
    let dry = ns.plugin(&["rollback", name, "--dry-run=client"])?;
    dry.expect_code(0)?;
    ensure!(
        dry.stdout.contains(&format!(
            "Warning: after this rollback, pod(s) {name}-2 stay on revision {broken}"
        )),
        "rollback should warn about {name}-2 first:\n{}",
        dry.stdout
    );
    // The controller may still be writing the status of the broken update.
    rollback_until_applied(&ns, name).await?;
    eventually("the rollback to be observed", ns.timeout(), || async {
        let sts = ns.sts().get(name).await?;
        let status = sts.status.clone().unwrap_or_default();
        let observed = status.observed_generation >= sts.metadata.generation;
        Ok(
            if observed && status.update_revision.as_deref() == Some(good.as_str()) {
                Probe::Done(())
            } else {
                Probe::NotYet(format!("{status:?}"))
            },
        )
    })
    .await?;

    // What the controller did: trap-2 is still on the broken revision, not Ready.
    let pod = ns.pods().get(&format!("{name}-2")).await?;
    ensure!(
        revision_of(&pod) == Some(broken.as_str()) && !is_ready(&pod),
        "the controller should have left {name}-2 on {broken}: {}",
        pod_summary(&pod)
    );
    let list = ns.plugin_json(&["list"], "StatefulSetList")?;
    let item = find_by(&list["items"], "name", name).context("trap not listed")?;
    ensure!(
        item["rollout"] == "Stalled",
        "list should say Stalled: {item}"
    );
    let view = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    let warning = view["warnings"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["reason"] == "RollbackTrap"))
        .with_context(|| format!("inspect should warn RollbackTrap: {}", view["warnings"]))?;
    let message = warning["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains(&format!("kubectl delete pod {name}-2")),
        "the warning should say what to do: {message}"
    );

    // The advice: delete the pod; the controller re-creates it on the good revision.
    ns.pods()
        .delete(&format!("{name}-2"), &Default::default())
        .await?;
    ns.wait_rollout_complete(name, 3).await?;
    let list = ns.plugin_json(&["list"], "StatefulSetList")?;
    let item = find_by(&list["items"], "name", name).context("trap not listed")?;
    ensure!(item["rollout"] == "Complete", "after the delete: {item}");
    Ok(())
}

/// `rollback` waits at its prompt while the cluster moves on. A write that leaves the spec
/// alone (here a label; the controller's status writes are the everyday case) makes the
/// resourceVersion precondition fail: the plugin decides again from fresh state and applies the
/// rollback the user confirmed. A template change while it waits is a different situation:
/// nothing is changed and the user is told to look again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_survives_status_writes_but_not_spec_changes_while_it_asks() -> Result<()> {
    let ns = TestNs::new("rollback-race").await?;
    let name = "rr";
    ns.create_sts(&StsFixture::new(name, 1).build()).await?;
    ns.wait_rollout_complete(name, 1).await?;
    ns.set_image(name, "main", IMAGE_V2).await?;
    ns.wait_rollout_complete(name, 1).await?;

    // A metadata-only write while the prompt waits: the rollback still happens.
    let prompt = AtPrompt::start(&ns, &["rollback", name], "to continue").await?;
    let before = ns.sts().get(name).await?;
    let touched = ns
        .merge_patch_sts(name, json!({"metadata": {"labels": {"touched": "yes"}}}))
        .await?;
    ensure!(
        touched.metadata.resource_version != before.metadata.resource_version
            && touched.metadata.generation == before.metadata.generation,
        "the label write should change the resourceVersion and not the generation"
    );
    let run = prompt.answer("yes", ns.timeout()).await?;
    ensure!(
        run.code == Some(0),
        "rollback after a label write: exit {:?}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    let rolled = ns.wait_rollout_complete(name, 1).await?;
    ensure!(
        image_of(&rolled).as_deref() == Some(IMAGE_V1),
        "the rollback applied: image {:?}",
        image_of(&rolled)
    );

    // A template change while the prompt waits: refused, nothing changed.
    let prompt = AtPrompt::start(&ns, &["rollback", name], "to continue").await?;
    // An image neither revision has, so the template really changes.
    let changed = ns
        .set_image(name, "main", "registry.k8s.io/pause:3.8")
        .await?;
    let run = prompt.answer("yes", ns.timeout()).await?;
    ensure!(
        run.code == Some(1) && run.stderr.contains("was modified after it was read"),
        "a spec change while asking must stop the rollback: exit {:?}\n{}",
        run.code,
        run.stderr
    );
    let now = ns.sts().get(name).await?;
    ensure!(
        now.metadata.generation == changed.metadata.generation
            && image_of(&now).as_deref() == Some("registry.k8s.io/pause:3.8"),
        "nothing changed after the refusal: generation {:?}, image {:?}",
        now.metadata.generation,
        image_of(&now)
    );
    Ok(())
}
