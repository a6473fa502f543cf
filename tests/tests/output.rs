//! e2e: kubectl's output family on a real control plane — `-o name`, `-o jsonpath=…`,
//! `-o custom-columns=…`, `--sort-by`, `--no-headers`, `-L`/`--show-labels` — and the real
//! `-o json` of list, inspect, history and orphans against the published schemas
//! (docs/schemas/). Every expected value comes from the cluster: the plugin's own `-o json`
//! of the same objects, or the API.

mod common;

use anyhow::{Result, ensure};
use common::*;
use serde_json::Value;

fn strings<'a>(values: impl IntoIterator<Item = &'a Value>, field: &str) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| v[field].as_str().map(str::to_string))
        .collect()
}

/// `web` (2 replicas, claims, two revisions, scaled down to 1: one orphaned claim) and `zeta`
/// (1 replica, label tier=cache), one namespace; every format over every list-like view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_prints_what_the_json_view_holds() -> Result<()> {
    let ns = TestNs::new("output").await?;
    ns.create_sts(
        &StsFixture::new("web", 2)
            .claim_template("data")
            .label("tier", "db")
            .label("app.kubernetes.io/part-of", "shop")
            .build(),
    )
    .await?;
    ns.create_sts(&StsFixture::new("zeta", 1).label("tier", "cache").build())
        .await?;
    ns.wait_rollout_complete("web", 2).await?;
    ns.set_image("web", "main", IMAGE_V2).await?;
    ns.wait_rollout_complete("web", 2).await?;
    ns.scale("web", 1).await?;
    ns.wait_rollout_complete("web", 1).await?;
    ns.wait_rollout_complete("zeta", 1).await?;

    // -o json of each view matches its schema.
    let list = ns.plugin_json(&["list"], "StatefulSetList")?;
    ensure_schema("StatefulSetList", &list)?;
    let inspect = ns.plugin_json(&["inspect", "web"], "StatefulSetInspection")?;
    ensure_schema("StatefulSetInspection", &inspect)?;
    let history = ns.plugin_json(&["history", "web"], "RevisionHistory")?;
    ensure_schema("RevisionHistory", &history)?;
    let orphans = ns.plugin_json(&["orphans"], "OrphanedClaimList")?;
    ensure_schema("OrphanedClaimList", &orphans)?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let names = strings(&items, "name");
    ensure!(names == ["web", "zeta"], "list -o json: {list}");

    // -o name, as kubectl names the objects.
    let run = |args: &[&str]| -> Result<String> {
        let run = ns.plugin(args)?;
        run.expect_code(0)?;
        Ok(run.stdout)
    };
    let lines = |prefix: &str, names: &[String]| -> String {
        names.iter().map(|n| format!("{prefix}/{n}\n")).collect()
    };
    ensure!(run(&["list", "-o", "name"])? == lines("statefulset.apps", &names));
    ensure!(run(&["inspect", "web", "-o", "name"])? == "statefulset.apps/web\n");
    let revisions = strings(
        history["revisions"].as_array().into_iter().flatten(),
        "name",
    );
    ensure!(revisions.len() == 2, "two revisions: {history}");
    ensure!(
        run(&["history", "web", "-o", "name"])? == lines("controllerrevision.apps", &revisions)
    );
    let claims = strings(orphans["items"].as_array().into_iter().flatten(), "name");
    ensure!(claims == ["data-web-1"], "one orphan: {orphans}");
    ensure!(run(&["orphans", "-o", "name"])? == lines("persistentvolumeclaim", &claims));

    // -o jsonpath: a plain expression, and range/end with literals.
    ensure!(run(&["list", "-o", "jsonpath={.items[*].name}"])? == names.join(" "));
    let want: String = items
        .iter()
        .map(|i| {
            format!(
                "{}\t{}/{}\n",
                i["name"].as_str().unwrap_or("?"),
                i["readyReplicas"],
                i["replicas"]
            )
        })
        .collect();
    let got = run(&[
        "list",
        "-o",
        r#"jsonpath={range .items[*]}{.name}{"\t"}{.readyReplicas}/{.replicas}{"\n"}{end}"#,
    ])?;
    ensure!(got == want, "jsonpath range: {got:?}, want {want:?}");
    let got = run(&["inspect", "web", "-o", "jsonpath={.pods[*].name}"])?;
    let pods = strings(inspect["pods"].as_array().into_iter().flatten(), "name");
    ensure!(got == pods.join(" "), "{got:?} vs {pods:?}");

    // -o custom-columns, one row per item; --no-headers drops the header.
    let got = run(&[
        "list",
        "-o",
        "custom-columns=NAME:.name,PVCS:.pvcCount,ORPHANS:{.orphanCount}",
    ])?;
    let rows: Vec<Vec<&str>> = got
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mut want = vec![vec!["NAME".to_string(), "PVCS".into(), "ORPHANS".into()]];
    for i in &items {
        want.push(vec![
            i["name"].as_str().unwrap_or("?").to_string(),
            i["pvcCount"].to_string(),
            i["orphanCount"].to_string(),
        ]);
    }
    ensure!(rows == want, "custom-columns:\n{got}\nwant {want:?}");
    let got = run(&[
        "history",
        "web",
        "-o",
        "custom-columns=REVISION:.revision,NAME:.name",
        "--no-headers",
    ])?;
    let got_names: Vec<&str> = got
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    ensure!(got_names == revisions, "history custom-columns:\n{got}");

    // --sort-by a field whose order differs from the name order: the number of claims.
    let by_pvcs: Vec<String> = {
        let mut sorted = items.clone();
        sorted.sort_by_key(|i| i["pvcCount"].as_i64());
        strings(&sorted, "name")
    };
    ensure!(by_pvcs == ["zeta", "web"], "zeta has no claims: {list}");
    ensure!(
        run(&["list", "--sort-by", "{.pvcCount}", "-o", "name"])?
            == lines("statefulset.apps", &by_pvcs)
    );
    let table = run(&["list", "--sort-by", ".pvcCount", "--no-headers"])?;
    ensure!(table.starts_with("zeta "), "sorted table:\n{table}");

    // -L and --show-labels: the labels the API stored.
    let table = run(&["list", "-L", "tier", "--show-labels"])?;
    let header = table.lines().next().unwrap_or_default();
    let last: Vec<&str> = header.split_whitespace().rev().take(2).collect();
    ensure!(last == ["LABELS", "TIER"], "{table}");
    let web: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("web "))
        .map(|l| l.split_whitespace().rev().take(2).collect())
        .unwrap_or_default();
    ensure!(
        web == ["app.kubernetes.io/part-of=shop,tier=db", "db"],
        "web's labels:\n{table}"
    );

    // Usage errors: exit 2 with a message naming what is wrong.
    let bad = ns.plugin(&["list", "-o", "jsonpath={.items[*].name"])?;
    bad.expect_code(2)?;
    ensure!(bad.stderr.contains("unclosed action"), "{}", bad.stderr);
    let bad = ns.plugin(&["list", "-o", "custom-columns=NAME"])?;
    bad.expect_code(2)?;
    ensure!(
        bad.stderr.contains("expected <header>:<json-path-expr>"),
        "{}",
        bad.stderr
    );
    let bad = ns.plugin(&["diff", "web", "-o", "name"])?;
    bad.expect_code(2)?;
    ensure!(bad.stderr.contains("-o name"), "{}", bad.stderr);

    // `orphans --delete` with a template prints the view once, after the deletions, with the
    // results; the claim is gone from the API.
    let got = run(&[
        "orphans",
        "--delete",
        "--yes",
        "-o",
        r#"jsonpath={range .results[*]}{.name} {.action}{"\n"}{end}"#,
    ])?;
    ensure!(
        got == "data-web-1 Deleted\n",
        "orphans --delete -o jsonpath: {got:?}"
    );
    ns.wait_gone::<k8s_openapi::api::core::v1::PersistentVolumeClaim>("data-web-1")
        .await?;
    Ok(())
}
