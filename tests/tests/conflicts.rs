//! e2e: the plugin's writes when another writer changes the object between the plugin's read
//! and its write (a real 409 from the real API server), and partial failures of
//! `orphans --delete`.
//!
//! The plugin runs on a pseudo-terminal and waits at its confirmation prompt (after it has read
//! the StatefulSet and shown the diff); the test writes with the real API meanwhile, then
//! types `yes`.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Patch, PatchParams};
use serde_json::json;

fn image_of(st: &StatefulSet) -> Option<String> {
    st.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .image
        .clone()
}

/// A StatefulSet with two revisions (IMAGE_V1 then IMAGE_V2), settled on IMAGE_V2.
async fn two_revisions(ns: &TestNs, name: &str) -> Result<StatefulSet> {
    ns.create_sts(&StsFixture::new(name, 1).build()).await?;
    ns.wait_rollout_complete(name, 1).await?;
    ns.set_image(name, "main", IMAGE_V2).await?;
    ns.wait_rollout_complete(name, 1).await
}

/// Another writer labels the StatefulSet while the prompt waits: the PATCH's resourceVersion
/// precondition fails (409), the plugin reads again, sees the same generation and the same
/// plan, and sends the same rollback with the new resourceVersion. The label stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_retries_a_conflict_when_only_metadata_changed() -> Result<()> {
    let ns = TestNs::new("conflict-retry").await?;
    let name = "cr";
    let before = two_revisions(&ns, name).await?;

    let prompt = AtPrompt::start(&ns, &["rollback", name, "-v"], "to continue").await?;
    let other = PatchParams {
        field_manager: Some("other-writer".into()),
        ..PatchParams::default()
    };
    let labelled = ns
        .sts()
        .patch(
            name,
            &other,
            &Patch::Merge(&json!({"metadata": {"labels": {"touched-by": "other-writer"}}})),
        )
        .await?;
    ensure!(
        labelled.metadata.generation == before.metadata.generation
            && labelled.metadata.resource_version != before.metadata.resource_version,
        "a label write should change resourceVersion only: generation {:?} -> {:?}",
        before.metadata.generation,
        labelled.metadata.generation
    );
    let out = prompt.answer("yes", ns.timeout()).await?;
    ensure!(
        out.code == Some(0),
        "rollback exited with {:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    ensure!(
        out.stderr
            .contains("the StatefulSet changed only outside its spec; retrying the same rollback"),
        "the 409 should have been met and retried (see -v):\n{}",
        out.stderr
    );
    ensure!(
        out.stdout.contains(&format!(
            "statefulset.apps/{name} rolled back to revision 1"
        )),
        "{}",
        out.stdout
    );
    let after = ns.sts().get(name).await?;
    ensure!(
        image_of(&after).as_deref() == Some(IMAGE_V1),
        "the rollback should be applied: image {:?}",
        image_of(&after)
    );
    ensure!(
        after
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("touched-by"))
            == Some(&"other-writer".to_string()),
        "the other writer's label was lost: {:?}",
        after.metadata.labels
    );
    eprintln!(
        "retried: exit 0; generation {:?} -> {:?}",
        before.metadata.generation, after.metadata.generation
    );
    Ok(())
}

/// Another writer changes the pod template while the prompt waits: the 409 is not retried
/// (the spec is no longer what the user saw), the error names what changed, exit 1, and the
/// StatefulSet stays as the other writer left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_when_the_spec_changed_after_the_diff() -> Result<()> {
    let ns = TestNs::new("conflict-refuse").await?;
    let name = "cf";
    let before = two_revisions(&ns, name).await?;

    let prompt = AtPrompt::start(&ns, &["rollback", name], "to continue").await?;
    ensure!(
        prompt.asked.contains("Roll back StatefulSet") || prompt.asked.contains("revision 1"),
        "{}",
        prompt.asked
    );
    let theirs = "registry.k8s.io/pause:3.8";
    let other = PatchParams {
        field_manager: Some("other-writer".into()),
        ..PatchParams::default()
    };
    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "main", "image": theirs }
    ] } } } });
    let written = ns
        .sts()
        .patch(name, &other, &Patch::Strategic(&patch))
        .await?;
    let out = prompt.answer("yes", ns.timeout()).await?;
    ensure!(
        out.code == Some(1),
        "rollback should fail with 1, exited {:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    let expected = format!(
        "error: StatefulSet {}/{name} was modified after it was read: its spec was changed (metadata.generation {} -> {}",
        ns.name,
        before.metadata.generation.context("generation")?,
        written.metadata.generation.context("generation")?,
    );
    ensure!(
        out.stderr.contains(&expected)
            && out.stderr.contains("other-writer")
            && out
                .stderr
                .contains("nothing was changed. Run the command again to see the new diff."),
        "expected {expected:?}…, got:\n{}",
        out.stderr
    );
    let after = ns.sts().get(name).await?;
    ensure!(
        image_of(&after).as_deref() == Some(theirs)
            && after.metadata.generation == written.metadata.generation,
        "the StatefulSet should be as the other writer left it (image {theirs}, generation {:?}): image {:?}, generation {:?}",
        written.metadata.generation,
        image_of(&after),
        after.metadata.generation
    );
    eprintln!("refused: exit 1: {}", out.stderr.trim());
    Ok(())
}
