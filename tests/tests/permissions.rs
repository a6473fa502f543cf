//! e2e: the README's permissions table (`kubectl_sts::permissions::COMMANDS`) is what each
//! command needs, on the real API server.
//!
//! For each command: a ServiceAccount bound (Role + RoleBinding; ClusterRole +
//! ClusterRoleBinding for `-A`) to exactly the table's required rules runs it successfully,
//! without any optional rule (and without the conditional ones, but for `resize`, whose
//! claims name a StorageClass); then, for each required rule in turn, the same
//! account bound to all the others fails, and the error names that rule (`grant it with a
//! Role rule: apiGroups: […], resources: […], verbs: […]`). `rollback` and `orphans --delete`
//! take their real write path: the removals first (nothing is written), the full run last
//! (it rolls back, it deletes the claim). `resize` runs its removals as server-side dry runs
//! where that reaches the request, for real where it does not, then resizes for real.
//! `list -w` and `inspect NAME -w` follow until interrupted with the table's `-w` rules added,
//! and end by themselves naming each of those rules when it is removed.

mod common;

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail, ensure};
use common::*;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kubectl_sts::permissions::{
    COMMANDS, CommandPermissions, Permission, cluster_scoped, role_kind, rule_text,
};
use serde_json::{Value, json};

/// Commands of the table this file does not run, and why.
const NOT_RUN: &[(&str, &str)] = &[];

/// The table's entry for `command`.
fn entry(command: &str) -> &'static CommandPermissions {
    COMMANDS
        .iter()
        .find(|c| c.command == command)
        .unwrap_or_else(|| panic!("no entry {command:?} in the permissions table"))
}

#[test]
fn every_command_of_the_table_is_run_here_or_says_why_not() {
    let run = [
        "list",
        "inspect NAME",
        "status NAME",
        "history NAME",
        "diff NAME",
        "rollback NAME",
        "orphans",
        "orphans --delete",
        "resize NAME",
    ];
    // The `-w` forms run (watching_needs_the_watch_rules): list and inspect; status -w is not.
    for c in COMMANDS {
        assert!(
            run.contains(&c.command) || NOT_RUN.iter().any(|(n, _)| *n == c.command),
            "{:?} is in the permissions table but no e2e test runs it",
            c.command
        );
    }
    for command in run {
        entry(command);
    }
}

/// A ServiceAccount of the test namespace and a kubeconfig with a token of it.
struct Account {
    /// The ServiceAccount's name, and that of its Role and RoleBinding.
    name: String,
    /// `<namespace>-<name>`: its ClusterRole and ClusterRoleBinding (cluster-wide names must
    /// not collide between test namespaces).
    cluster_name: String,
    user: String,
    kubeconfig: PathBuf,
    /// Every rule in all namespaces (ClusterRole), for `-A`; else only the cluster-scoped
    /// resources' rules are in the ClusterRole, the rest in a Role of the test namespace.
    cluster: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Account {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime; delete_cluster_object starts its own.
        let name = self.cluster_name.clone();
        let _ = std::thread::spawn(move || {
            let env = env();
            let _ = delete_cluster_object::<ClusterRoleBinding>(&env.kubeconfig, &name);
            let _ = delete_cluster_object::<ClusterRole>(&env.kubeconfig, &name);
        })
        .join();
    }
}

async fn account(ns: &TestNs, name: &str, cluster: bool) -> Result<Account> {
    let pp = PostParams::default();
    ns.api::<ServiceAccount>()
        .create(
            &pp,
            &serde_json::from_value(json!({ "metadata": { "name": name } }))?,
        )
        .await?;
    let request =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))?;
    let token = ns
        .api::<ServiceAccount>()
        .create_token_request(name, &pp, &request)
        .await?
        .status
        .map(|s| s.token)
        .context("TokenRequest gave no token")?;
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&ns.env.kubeconfig)?)?;
    for u in config["users"]
        .as_sequence_mut()
        .context("kubeconfig users")?
    {
        u["user"] = serde_yaml::to_value(json!({ "token": token }))?;
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join(name);
    std::fs::write(&kubeconfig, serde_yaml::to_string(&config)?)?;
    Ok(Account {
        user: format!("system:serviceaccount:{}:{name}", ns.name),
        name: name.to_string(),
        cluster_name: format!("{}-{name}", ns.name),
        kubeconfig,
        cluster,
        _dir: dir,
    })
}

/// One rule per permission, exactly as the table spells it.
fn rules<'a>(permissions: impl Iterator<Item = &'a Permission>) -> Value {
    permissions
        .map(
            |p| json!({ "apiGroups": [p.api_group], "resources": [p.resource], "verbs": [p.verb] }),
        )
        .collect()
}

fn in_cluster_role(account: &Account, p: &Permission) -> bool {
    account.cluster || cluster_scoped(p.resource)
}

/// Binds `account` to exactly `permissions` (creating or replacing its roles and bindings), and
/// waits until the server's authorizer agrees: each of `permissions` allowed, `removed` not.
async fn grant(
    ns: &TestNs,
    account: &Account,
    permissions: &[Permission],
    removed: Option<Permission>,
) -> Result<()> {
    let apply = PatchParams::apply("sts-e2e-permissions").force();
    let subjects =
        json!([{ "kind": "ServiceAccount", "name": account.name, "namespace": ns.name }]);
    let role_ref = |kind: &str, name: &str| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name });
    let cluster_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": account.cluster_name },
        "rules": rules(permissions.iter().filter(|p| in_cluster_role(account, p))),
    });
    let cluster_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": account.cluster_name },
        "roleRef": role_ref("ClusterRole", &account.cluster_name),
        "subjects": subjects,
    });
    Api::<ClusterRole>::all(ns.client.clone())
        .patch(&account.cluster_name, &apply, &Patch::Apply(&cluster_role))
        .await?;
    Api::<ClusterRoleBinding>::all(ns.client.clone())
        .patch(
            &account.cluster_name,
            &apply,
            &Patch::Apply(&cluster_binding),
        )
        .await?;
    if !account.cluster {
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": account.name },
            "rules": rules(permissions.iter().filter(|p| !in_cluster_role(account, p))),
        });
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": account.name },
            "roleRef": role_ref("Role", &account.name),
            "subjects": subjects,
        });
        ns.api::<Role>()
            .patch(&account.name, &apply, &Patch::Apply(&role))
            .await?;
        ns.api::<RoleBinding>()
            .patch(&account.name, &apply, &Patch::Apply(&binding))
            .await?;
    }
    let checks: Vec<(Permission, bool)> = permissions
        .iter()
        .map(|p| (*p, true))
        .chain(removed.map(|p| (p, false)))
        .collect();
    eventually(
        "the authorizer to apply the new rules",
        ns.timeout(),
        || async {
            for (p, want) in &checks {
                if allowed(ns, account, p).await? != *want {
                    return Ok(Probe::NotYet(format!("{p:?} not yet {want}")));
                }
            }
            Ok(Probe::Done(()))
        },
    )
    .await
}

/// The server's answer to "may the account do `p`" (in the test namespace, or in all).
async fn allowed(ns: &TestNs, account: &Account, p: &Permission) -> Result<bool> {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": account.user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", ns.name), "system:authenticated"],
            "resourceAttributes": {
                "group": p.api_group, "resource": p.resource, "verb": p.verb,
                "namespace": if in_cluster_role(account, p) { "" } else { ns.name.as_str() },
            },
        },
    }))?;
    Ok(Api::<SubjectAccessReview>::all(ns.client.clone())
        .create(&PostParams::default(), &review)
        .await?
        .status
        .is_some_and(|s| s.allowed))
}

/// `kubectl-sts ARGS` as the account (`-n <ns>` unless `-A` is among `args`).
fn run_as(ns: &TestNs, account: &Account, args: &[&str]) -> Result<PluginRun> {
    let mut cmd = std::process::Command::new(&ns.env.kubectl_sts);
    cmd.args(args).arg("--kubeconfig").arg(&account.kubeconfig);
    if !args.contains(&"-A") {
        cmd.args(["-n", &ns.name]);
    }
    let out = cmd.env("NO_COLOR", "1").env_remove("KUBECONFIG").output()?;
    Ok(PluginRun {
        command: format!("kubectl-sts {} (as {})", args.join(" "), account.user),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The refusal a run without `p` must print: the rule that grants it.
fn named_rule(p: &Permission, cluster: bool) -> String {
    format!(
        "grant it with a {} rule: {}",
        role_kind(p.resource, !cluster),
        rule_text(p.api_group, p.resource, p.verb)
    )
}

/// A run the rollback's own resourceVersion precondition refused (the controller wrote the
/// status between read and write): run it again.
fn raced(run: &PluginRun) -> bool {
    run.stderr.contains("was modified after it was read")
}

/// [`run_as`] again while [`raced`], at most 10 times; counts the runs.
fn run_until_not_raced(
    ns: &TestNs,
    account: &Account,
    args: &[&str],
    runs: &mut usize,
) -> Result<PluginRun> {
    for _ in 0..10 {
        let run = run_as(ns, account, args)?;
        *runs += 1;
        if !raced(&run) {
            return Ok(run);
        }
    }
    bail!(
        "`kubectl-sts {}` raced the controller 10 times",
        args.join(" ")
    )
}

/// Runs `args` as `account` bound to `entry`'s required rules minus each one in turn (must
/// fail naming it), then to exactly the required rules (must succeed). Returns the runs' count.
async fn prove(ns: &TestNs, command: &str, args: &[&str], cluster: bool) -> Result<usize> {
    let removals: Vec<(Permission, Vec<&str>)> = entry(command)
        .required
        .iter()
        .map(|p| (*p, args.to_vec()))
        .collect();
    prove_with(ns, command, &removals, args, cluster).await
}

/// [`prove`] with each removal run as given, in the order given (`removals`: the rule left out
/// and the arguments), and the rules `removals` names granted for the run of `args`.
async fn prove_with(
    ns: &TestNs,
    command: &str,
    removals: &[(Permission, Vec<&str>)],
    args: &[&str],
    cluster: bool,
) -> Result<usize> {
    let entry = entry(command);
    ensure!(
        !cluster || entry.all_namespaces,
        "{command} does not take -A"
    );
    let required: Vec<Permission> = removals.iter().map(|(p, _)| *p).collect();
    let sa = command
        .split_whitespace()
        .next()
        .unwrap_or("cmd")
        .to_string()
        + if cluster { "-all" } else { "" }
        + if args.contains(&"--delete") {
            "-delete"
        } else {
            ""
        };
    let account = account(ns, &sa, cluster).await?;
    let mut runs = 0;
    for (missing, removal_args) in removals {
        let rest: Vec<Permission> = required.iter().filter(|p| *p != missing).copied().collect();
        grant(ns, &account, &rest, Some(*missing)).await?;
        let want = named_rule(missing, cluster);
        let run = run_until_not_raced(ns, &account, removal_args, &mut runs)?;
        let output = format!("{}{}", run.stdout, run.stderr);
        ensure!(
            run.code != Some(0) && output.contains(&want),
            "`{}` without {missing:?} should fail naming `{want}`; exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            run.command,
            run.code,
            run.stdout,
            run.stderr
        );
        eprintln!(
            "{command}{}: without {} {}: exit {:?}, {}",
            if cluster { " -A" } else { "" },
            missing.verb,
            missing.resource,
            run.code,
            output
                .lines()
                .find(|l| l.contains(&want))
                .unwrap_or_default()
                .trim()
        );
    }
    grant(ns, &account, &required, None).await?;
    let run = run_until_not_raced(ns, &account, args, &mut runs)?;
    run.expect_code(0)?;
    ensure!(
        !run.stderr.contains("forbidden: you may not"),
        "`{}` with exactly its rules was refused something:\n{}",
        run.command,
        run.stderr
    );
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("cannot "))
        .collect();
    eprintln!(
        "{command}{}: with exactly {} rules: exit 0; optional ones missing: {warnings:?}",
        if cluster { " -A" } else { "" },
        required.len()
    );
    Ok(runs)
}

/// `web`: 2 replicas with a claim each, then a second revision, settled.
async fn statefulset(ns: &TestNs, name: &str) -> Result<()> {
    ns.create_sts(&StsFixture::new(name, 2).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 2).await?;
    ns.set_image(name, "main", IMAGE_V2).await?;
    ns.wait_rollout_complete(name, 2).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_need_exactly_their_rules() -> Result<()> {
    let ns = TestNs::new("permissions-read").await?;
    let name = "web";
    statefulset(&ns, name).await?;
    let mut runs = 0;
    runs += prove(&ns, "list", &["list"], false).await?;
    runs += prove(&ns, "inspect NAME", &["inspect", name], false).await?;
    runs += prove(&ns, "status NAME", &["status", name], false).await?;
    runs += prove(&ns, "history NAME", &["history", name], false).await?;
    runs += prove(&ns, "diff NAME", &["diff", name], false).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    runs += prove(&ns, "orphans", &["orphans"], false).await?;
    eprintln!("read commands: {runs} runs");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_need_a_cluster_role() -> Result<()> {
    let ns = TestNs::new("permissions-all").await?;
    statefulset(&ns, "web").await?;
    let mut runs = 0;
    runs += prove(&ns, "list", &["list", "-A"], true).await?;
    runs += prove(&ns, "orphans", &["orphans", "-A"], true).await?;
    eprintln!("-A: {runs} runs");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_needs_exactly_its_rules() -> Result<()> {
    let ns = TestNs::new("permissions-rollback").await?;
    let name = "rb";
    statefulset(&ns, name).await?;
    let before = ns.sts().get(name).await?;
    let runs = prove(&ns, "rollback NAME", &["rollback", name, "--yes"], false).await?;
    let after = ns.sts().get(name).await?;
    let image = |s: &k8s_openapi::api::apps::v1::StatefulSet| {
        s.spec.as_ref()?.template.spec.as_ref()?.containers[0]
            .image
            .clone()
    };
    ensure!(
        image(&before).as_deref() == Some(IMAGE_V2) && image(&after).as_deref() == Some(IMAGE_V1),
        "only the last run (with every rule) rolls back: {:?} → {:?}",
        image(&before),
        image(&after)
    );
    eprintln!("rollback: {runs} runs");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_delete_needs_exactly_its_rules() -> Result<()> {
    let ns = TestNs::new("permissions-delete").await?;
    let name = "od";
    ns.create_sts(&StsFixture::new(name, 2).claim_template("data").build())
        .await?;
    ns.wait_rollout_complete(name, 2).await?;
    ns.scale(name, 1).await?;
    ns.wait_rollout_complete(name, 1).await?;
    let orphan = format!("data-{name}-1");
    let runs = prove(
        &ns,
        "orphans --delete",
        &["orphans", name, "--delete", "--yes"],
        false,
    )
    .await?;
    ns.wait_gone::<PersistentVolumeClaim>(&orphan).await?;
    if ns
        .pvcs()
        .get_opt(&format!("data-{name}-0"))
        .await?
        .is_none()
    {
        bail!("the claim in use was deleted");
    }
    eprintln!("orphans --delete: {runs} runs");
    Ok(())
}

/// `resize` of claims of the simulated node's expandable StorageClass: the removals as
/// `--dry-run=server` (the server authorizes each write as if it were made, and nothing
/// persists, so each run meets the same state), then a real resize with exactly the rules.
/// Its claims name a StorageClass, so the table's conditional `get storageclasses` is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_needs_exactly_its_rules() -> Result<()> {
    let ns = TestNs::new("permissions-resize").await?;
    let name = "rs";
    let mut sts = StsFixture::new(name, 2).claim_template("data").build();
    let template = sts
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .and_then(|t| t.first_mut())
        .and_then(|t| t.spec.as_mut())
        .context("claim template")?;
    template.storage_class_name = Some("sim-expandable".to_string());
    template.resources = Some(serde_json::from_value(
        json!({"requests": {"storage": "1Gi"}}),
    )?);
    ns.create_sts(&sts).await?;
    ns.wait_rollout_complete(name, 2).await?;
    let uids = |pods: Vec<k8s_openapi::api::core::v1::Pod>| -> Vec<Option<String>> {
        pods.into_iter().map(|p| p.metadata.uid).collect()
    };
    let before = uids(pods_of(&ns.pods(), name).await?);
    let entry = entry("resize NAME");
    let storage_classes = entry
        .conditional
        .iter()
        .find(|c| c.permission.resource == "storageclasses")
        .context("resize's conditional get storageclasses")?
        .permission;
    let state = tempfile::tempdir()?;
    let state_dir = state.path().to_string_lossy().to_string();
    let resize = |size: &'static str, mode: &'static str| -> Vec<&str> {
        vec![
            "resize",
            name,
            "--size",
            size,
            "--state-dir",
            state_dir.as_str(),
            mode,
        ]
    };
    // A server-side dry run reaches every request but the waits (GET of the claims until they
    // grow) and the delete and create of the StatefulSet: those three removals run for real,
    // last, in the order the command makes them. Without get: the claims were patched to 2Gi;
    // without delete: nothing more; without create: the StatefulSet is deleted and saved in
    // the state dir, and the full run (3Gi) first creates it again from there.
    let real = [
        Permission {
            api_group: "",
            resource: "persistentvolumeclaims",
            verb: "get",
        },
        Permission {
            api_group: "apps",
            resource: "statefulsets",
            verb: "delete",
        },
        Permission {
            api_group: "apps",
            resource: "statefulsets",
            verb: "create",
        },
    ];
    let mut removals: Vec<(Permission, Vec<&str>)> = entry
        .required
        .iter()
        .copied()
        .chain([storage_classes])
        .filter(|p| !real.contains(p))
        .map(|p| (p, resize("2Gi", "--dry-run=server")))
        .collect();
    for p in real {
        ensure!(
            entry.required.contains(&p),
            "{p:?} is not required by the table"
        );
        removals.push((p, resize("2Gi", "--yes")));
    }
    let runs = prove_with(
        &ns,
        "resize NAME",
        &removals,
        &resize("3Gi", "--yes"),
        false,
    )
    .await?;
    let resized = ns.sts().get(name).await?;
    let size = resized
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .and_then(|t| t.first())
        .and_then(|t| {
            t.spec
                .as_ref()?
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")
        })
        .map(|q| q.0.clone());
    ensure!(
        size.as_deref() == Some("3Gi"),
        "the template should ask for 3Gi: {size:?}"
    );
    let after = uids(pods_of(&ns.pods(), name).await?);
    ensure!(
        before == after,
        "pods were re-created: {before:?} → {after:?}"
    );
    eprintln!("resize: {runs} runs");
    Ok(())
}

/// A `-w` form as the account. Still running after 3 s (a refused watch ends it well within
/// that), it is interrupted as a user would (SIGINT); returns its run and whether it had to be
/// interrupted.
async fn follow_as(ns: &TestNs, account: &Account, args: &[&str]) -> Result<(PluginRun, bool)> {
    use tokio::io::AsyncReadExt as _;
    let mut child = tokio::process::Command::new(&ns.env.kubectl_sts)
        .args(args)
        .arg("--kubeconfig")
        .arg(&account.kubeconfig)
        .args(["-n", &ns.name])
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let err = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let pid = child.id().context("no pid")?;
    // The first view takes well under a second here; a refused watch ends it at once.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(3), child.wait()).await;
    let interrupted = ended.is_err();
    if interrupted {
        sts_e2e::sys::send_signal(pid, sts_e2e::sys::SIGINT).context("kill(SIGINT)")?;
    }
    let status = tokio::time::timeout(ns.timeout(), child.wait())
        .await
        .context("the follow did not end after SIGINT")??;
    Ok((
        PluginRun {
            command: format!("kubectl-sts {} (as {})", args.join(" "), account.user),
            code: status.code(),
            stdout: out.await?,
            stderr: err.await?,
        },
        interrupted,
    ))
}

/// `list -w` and `inspect NAME -w` with exactly their rules and the `-w` ones follow until
/// interrupted (exit 0, a view printed); without each `-w` rule in turn they end by themselves,
/// naming it. (`status -w` on a finished rollout ends before it would watch.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_needs_the_watch_rules() -> Result<()> {
    let ns = TestNs::new("permissions-watch").await?;
    let name = "wt";
    statefulset(&ns, name).await?;
    let mut runs = 0;
    for (command, args) in [
        ("list", vec!["list", "-w"]),
        ("inspect NAME", vec!["inspect", name, "-w"]),
    ] {
        let entry = entry(command);
        let required: Vec<Permission> = entry.required.iter().chain(entry.watch).copied().collect();
        let sa = format!(
            "{}-watch",
            command.split_whitespace().next().unwrap_or("cmd")
        );
        let account = account(&ns, &sa, false).await?;
        for missing in entry.watch {
            let rest: Vec<Permission> =
                required.iter().filter(|p| *p != missing).copied().collect();
            grant(&ns, &account, &rest, Some(*missing)).await?;
            let (run, interrupted) = follow_as(&ns, &account, &args).await?;
            runs += 1;
            let want = named_rule(missing, false);
            ensure!(
                !interrupted && run.code != Some(0) && run.stderr.contains(&want),
                "`{}` without {missing:?} should end by itself naming `{want}`; interrupted: {interrupted}, exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                run.command,
                run.code,
                run.stdout,
                run.stderr
            );
            eprintln!(
                "{command} -w: without {} {}: exit {:?}, {}",
                missing.verb,
                missing.resource,
                run.code,
                run.stderr
                    .lines()
                    .find(|l| l.contains(&want))
                    .unwrap_or_default()
                    .trim()
            );
        }
        grant(&ns, &account, &required, None).await?;
        let (run, interrupted) = follow_as(&ns, &account, &args).await?;
        runs += 1;
        ensure!(
            interrupted && run.code == Some(0) && run.stdout.contains(name),
            "`{}` with exactly {} rules should follow until interrupted, showing {name}; interrupted: {interrupted}, exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            run.command,
            required.len(),
            run.code,
            run.stdout,
            run.stderr
        );
        ensure!(
            !run.stderr.contains("forbidden: you may not"),
            "`{}` was refused something:\n{}",
            run.command,
            run.stderr
        );
        eprintln!(
            "{command} -w: with exactly {} rules: followed until SIGINT, exit 0",
            required.len()
        );
    }
    eprintln!("-w: {runs} runs");
    Ok(())
}
