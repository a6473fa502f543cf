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

/// `orphans --delete` where one of two deletions is refused by the real server (the user may
/// delete only one of the claims, by RBAC `resourceNames`): each claim gets its own result
/// row, the refused one says why, the other is deleted, exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_delete_reports_each_failure_and_exits_1() -> Result<()> {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::PostParams;

    let ns = TestNs::new("orphans-partial").await?;
    let name = "pf";
    ns.create_sts(&StsFixture::new(name, 3).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 3).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let (allowed, refused) = (format!("data-{name}-1"), format!("data-{name}-2"));

    // A user who may read everything orphans reads, and delete only `allowed`.
    let user = "orphan-cleaner";
    let pp = PostParams::default();
    ns.api::<ServiceAccount>()
        .create(
            &pp,
            &serde_json::from_value(json!({ "metadata": { "name": user } }))?,
        )
        .await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": user },
        "rules": [
            { "apiGroups": ["apps"], "resources": ["statefulsets", "controllerrevisions"], "verbs": ["get", "list"] },
            { "apiGroups": [""], "resources": ["pods", "persistentvolumeclaims"], "verbs": ["get", "list"] },
            { "apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["delete"], "resourceNames": [allowed] },
        ],
    }))?;
    ns.api::<Role>().create(&pp, &role).await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": user },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user },
        "subjects": [{ "kind": "ServiceAccount", "name": user, "namespace": ns.name }],
    }))?;
    ns.api::<RoleBinding>().create(&pp, &binding).await?;
    let request =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))?;
    let token = ns
        .api::<ServiceAccount>()
        .create_token_request(user, &pp, &request)
        .await?
        .status
        .map(|s| s.token)
        .context("TokenRequest gave no token")?;
    // The admin kubeconfig with its user replaced by the token.
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&ns.env.kubeconfig)?)?;
    for u in config["users"]
        .as_sequence_mut()
        .context("kubeconfig users")?
    {
        u["user"] = serde_yaml::to_value(json!({ "token": token }))?;
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("cleaner");
    std::fs::write(&kubeconfig, serde_yaml::to_string(&config)?)?;

    // RBAC is cached by the authorizer for a moment; the first LIST may still be refused.
    let out = eventually(
        "the cleaner's permissions to apply",
        ns.timeout(),
        || async {
            let out = std::process::Command::new(&ns.env.kubectl_sts)
                .args(["orphans", name, "--delete", "--yes", "-n", &ns.name])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .env("NO_COLOR", "1")
                .env_remove("KUBECONFIG")
                .output()?;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if stdout.contains("Deleted") || stdout.contains("Failed") {
                Ok(Probe::Done((out.status.code(), stdout, stderr)))
            } else {
                Ok(Probe::NotYet(format!("{stdout}{stderr}")))
            }
        },
    )
    .await?;
    let (code, stdout, stderr) = out;
    ensure!(
        code == Some(1),
        "a partial failure should exit 1, got {code:?}\n{stdout}\n{stderr}"
    );
    // The result rows (the table of orphans above them lists the same claims).
    let result = |claim: &str, action: &str| {
        stdout
            .lines()
            .find(|l| l.contains(claim) && l.contains(action))
            .unwrap_or_default()
            .to_string()
    };
    let (deleted, failed) = (result(&allowed, "Deleted"), result(&refused, "Failed"));
    ensure!(
        deleted.contains("Deleted"),
        "{allowed} should be Deleted:\n{stdout}"
    );
    ensure!(
        failed.contains("Failed")
            && failed.contains(&format!(
                "forbidden: you may not delete persistentvolumeclaims in namespace \"{}\"",
                ns.name
            )),
        "{refused} should be Failed, saying it was forbidden:\n{stdout}"
    );
    ensure!(
        stderr.contains("error: 1 claim deletion(s) failed; see the results above"),
        "{stderr}"
    );
    ns.wait_gone::<PersistentVolumeClaim>(&allowed).await?;
    let kept = ns.pvcs().get(&refused).await?;
    ensure!(
        kept.metadata.deletion_timestamp.is_none(),
        "{refused} must not be deleted"
    );
    eprintln!("partial failure: exit 1\n{stdout}{stderr}");
    Ok(())
}

/// A loopback HTTP proxy to the real API server (through the test's admin client), for
/// `kubectl-sts --kubeconfig <proxy>`: before it forwards a DELETE of `claim`, it labels that
/// claim through the real API, so the DELETE's resourceVersion precondition, read by the
/// plugin's re-check a moment earlier, no longer holds and the real server answers 409.
async fn conflicting_proxy(ns: &TestNs, claim: String) -> Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let client = ns.client.clone();
    let pvcs = ns.pvcs();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (client, pvcs, claim) = (client.clone(), pvcs.clone(), claim.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let (method, target) = (
                        first.next().unwrap_or("GET").to_string(),
                        first.next().unwrap_or("/").to_string(),
                    );
                    let mut content_type = None;
                    let mut len = 0usize;
                    for l in lines {
                        if let Some((k, v)) = l.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "content-type" => content_type = Some(v.trim().to_string()),
                                _ => {}
                            }
                        }
                    }
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[head_end..head_end + len].to_vec();
                    buf.drain(..head_end + len);
                    if method == "DELETE"
                        && target.split('?').next().is_some_and(|p| {
                            p.ends_with(&format!("/persistentvolumeclaims/{claim}"))
                        })
                    {
                        let label = json!({"metadata": {"labels": {"touched-by": "other-writer"}}});
                        let _ = pvcs
                            .patch(&claim, &PatchParams::default(), &Patch::Merge(&label))
                            .await;
                    }
                    let mut req = http::Request::builder()
                        .method(method.as_str())
                        .uri(&target);
                    if let Some(ct) = &content_type {
                        req = req.header("content-type", ct);
                    }
                    let Ok(req) = req.body(kube::client::Body::from(body)) else {
                        return;
                    };
                    let Ok(resp) = client.send(req).await else {
                        return;
                    };
                    let status = resp.status();
                    let ct = resp
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/json")
                        .to_string();
                    let Ok(bytes) = resp.into_body().collect_bytes().await else {
                        return;
                    };
                    let head = format!(
                        "HTTP/1.1 {} {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or(""),
                        bytes.len()
                    );
                    if conn.write_all(head.as_bytes()).await.is_err()
                        || conn.write_all(&bytes).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// `orphans --delete` meets a real 409: the claim changes between the plugin's re-check and its
/// DELETE (the proxy above writes it at that moment). That claim is reported Failed with the
/// server's message and kept (with the other writer's label); the other orphan is deleted as
/// confirmed; exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_delete_meets_a_real_conflict_and_keeps_that_claim() -> Result<()> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let ns = TestNs::new("orphans-conflict").await?;
    let name = "oc";
    ns.create_sts(&StsFixture::new(name, 3).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 3).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let (changed, other) = (format!("data-{name}-1"), format!("data-{name}-2"));
    let uid_before = ns.pvcs().get(&changed).await?.metadata.uid;

    let url = conflicting_proxy(&ns, changed.clone()).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("proxy");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: {url}\nusers:\n- name: u\n  user:\n    token: the-proxy-authenticates\ncontexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: u\ncurrent-context: proxy\n"
        ),
    )?;
    let out = tokio::process::Command::new(&ns.env.kubectl_sts)
        .args(["orphans", name, "--delete", "--yes", "-n", &ns.name])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(ns.timeout(), out).await??;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    ensure!(
        out.status.code() == Some(1),
        "a conflict should exit 1, got {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    let failed = stdout
        .lines()
        .find(|l| l.contains(&changed) && l.contains("Failed"))
        .with_context(|| format!("{changed} should be Failed:\n{stdout}"))?;
    ensure!(
        failed.contains(
            "not deleted: it changed between the re-check and the delete (the server refused the UID/resourceVersion precondition, HTTP 409)"
        ) && failed.contains(&format!("Operation cannot be fulfilled on PersistentVolumeClaim \"{changed}\": the ResourceVersion in the precondition")),
        "the row should say what happened, with the server's message: {failed}"
    );
    ensure!(
        stdout
            .lines()
            .any(|l| l.contains(&other) && l.contains("Deleted")),
        "{other} should be deleted as confirmed:\n{stdout}"
    );
    ensure!(
        stderr.contains("error: 1 claim deletion(s) failed; see the results above"),
        "{stderr}"
    );
    let kept = ns.pvcs().get(&changed).await?;
    ensure!(
        kept.metadata.deletion_timestamp.is_none()
            && kept.metadata.uid == uid_before
            && kept
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("touched-by"))
                == Some(&"other-writer".to_string()),
        "{changed} should be kept as the other writer left it: {:?}",
        kept.metadata
    );
    ns.wait_gone::<PersistentVolumeClaim>(&other).await?;
    eprintln!("orphans conflict: exit 1\n{stdout}{stderr}");
    Ok(())
}
