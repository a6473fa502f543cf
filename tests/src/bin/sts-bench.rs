//! `sts-bench`: times `kubectl sts inspect NAME -o json` at growing namespace sizes on the local
//! control plane, against an older plugin build and against the raw reads done with kubectl.
//!
//! For each size the namespace is loaded with StatefulSets of `--replicas` pods and one claim
//! template each (`podManagementPolicy: Parallel`), a headless Service per StatefulSet and as
//! many unrelated Services; the real controller makes the pods and claims and the simulated node
//! provisions, binds and runs them. Then every variant runs once through a byte-counting
//! loopback proxy (requests from the `-v` log, bytes on the wire) and `--rounds` times
//! interleaved (A B C A B C …) for the timing. Nothing leaves 127.0.0.1; the cluster stops on
//! exit. See README "Performance" and `tests/bench-inspect.sh`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sts_e2e::bench::{CountingProxy, first_line, kubectl_requests, plugin_requests, stats};
use sts_e2e::{ClusterOptions, LocalCluster};

const NAMESPACE: &str = "bench";
/// Bound on one command run; a hung run fails the benchmark instead of stalling it.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(
    about = "Benchmark kubectl sts inspect at growing namespace sizes on a local control plane"
)]
struct Cli {
    /// The current plugin (a release build).
    #[arg(long)]
    new: PathBuf,
    /// The plugin to compare with (a release build of an older commit).
    #[arg(long)]
    old: PathBuf,
    /// How to name the older plugin in the report.
    #[arg(long, default_value = "old")]
    old_label: String,
    /// Timed rounds per size; each round runs every variant once, in turn.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// StatefulSets in the namespace at each size, ascending (the namespace grows).
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    sizes: Vec<usize>,
    /// Replicas (and so claims) per StatefulSet.
    #[arg(long, default_value_t = 10)]
    replicas: usize,
    /// The StatefulSet to inspect (must be among the first size's: app-0 …).
    #[arg(long, default_value = "app-7")]
    target: String,
    /// Seconds each size may take to load before the benchmark fails.
    #[arg(long, default_value_t = 420)]
    load_timeout: u64,
    /// Seconds to wait after loading, so the controllers' trailing updates (status,
    /// EndpointSlices, events) do not fall into the first rounds.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Write the `-v` log of each counted run here (`<claims>-<variant>.log`).
    #[arg(long)]
    logs: Option<PathBuf>,
}

fn main() -> ExitCode {
    sts_e2e::init_tracing("sts_e2e=warn");
    let cli = Cli::parse();
    // One thread: the harness's child processes get PR_SET_PDEATHSIG from the spawning thread.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sts-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sts-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if cli.sizes.is_empty() || !cli.sizes.windows(2).all(|w| w[0] < w[1]) {
        bail!("--sizes must be ascending, e.g. 10,100");
    }
    for p in [&cli.new, &cli.old] {
        if !p.is_file() {
            bail!("{} is not a file", p.display());
        }
    }
    let opts = ClusterOptions {
        // The controllers' default client QPS (20) makes loading 1000 pods and claims slow.
        controller_manager_args: vec![
            "--kube-api-qps=200".to_owned(),
            "--kube-api-burst=400".to_owned(),
        ],
        ..ClusterOptions::default()
    };
    eprintln!("sts-bench: starting the local control plane on 127.0.0.1 …");
    let cluster = LocalCluster::start(opts)
        .await
        .context("starting the local control plane")?;
    let outcome = tokio::select! {
        r = bench(&cli, &cluster) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if outcome.is_err() {
        cluster.print_logs();
    }
    let kept = cluster.shutdown(outcome.is_err()).await;
    if let Some(dir) = kept {
        eprintln!("sts-bench: logs kept in {}", dir.display());
    }
    outcome
}

/// What one variant runs: the plugin, or kubectl with one argument list per invocation.
enum Variant {
    Plugin {
        label: String,
        bin: PathBuf,
    },
    Kubectl {
        bin: PathBuf,
        invocations: Vec<Vec<String>>,
    },
}

impl Variant {
    fn label(&self) -> &str {
        match self {
            Variant::Plugin { label, .. } => label,
            Variant::Kubectl { .. } => "kubectl",
        }
    }

    /// Runs the variant once against `kubeconfig`; returns the wall time and, with `verbose`,
    /// the number of API requests its log shows and the log.
    async fn run(
        &self,
        kubeconfig: &Path,
        target: &str,
        verbose: bool,
    ) -> Result<(Duration, usize, String)> {
        let mut total = Duration::ZERO;
        let mut requests = 0;
        let mut logs = String::new();
        let runs: Vec<(&Path, Vec<String>)> = match self {
            Variant::Plugin { bin, .. } => {
                let mut args: Vec<String> = ["-n", NAMESPACE, "inspect", target, "-o", "json"]
                    .map(str::to_owned)
                    .to_vec();
                if verbose {
                    args.push("-v".to_owned());
                }
                vec![(bin.as_path(), args)]
            }
            Variant::Kubectl { bin, invocations } => invocations
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    if verbose {
                        a.push("-v=6".to_owned());
                    }
                    (bin.as_path(), a)
                })
                .collect(),
        };
        for (bin, args) in runs {
            let start = Instant::now();
            let child = tokio::process::Command::new(bin)
                .args(&args)
                .env("KUBECONFIG", kubeconfig)
                .env_remove("RUST_LOG")
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(RUN_TIMEOUT, child)
                .await
                .with_context(|| {
                    format!(
                        "{} {} took over {RUN_TIMEOUT:?}",
                        bin.display(),
                        args.join(" ")
                    )
                })?
                .with_context(|| format!("cannot run {}", bin.display()))?;
            total += start.elapsed();
            if !out.status.success() {
                bail!(
                    "`{} {}` failed ({}): {}",
                    bin.display(),
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            serde_json::from_slice::<serde_json::Value>(&out.stdout).with_context(|| {
                format!("`{} {}` printed no JSON", bin.display(), args.join(" "))
            })?;
            let log = String::from_utf8_lossy(&out.stderr);
            logs.push_str(&log);
            requests += match self {
                Variant::Plugin { .. } => plugin_requests(&log).values().sum::<usize>(),
                // kubectl -v=6 logs one line per response, with its duration.
                Variant::Kubectl { .. } => kubectl_requests(&log).values().sum::<usize>(),
            };
        }
        Ok((total, requests, logs))
    }
}

/// Per variant at one size.
struct Measured {
    label: String,
    requests: usize,
    received: u64,
    sent: u64,
    times: Vec<Duration>,
}

async fn bench(cli: &Cli, cluster: &LocalCluster) -> Result<()> {
    let client = cluster.client();
    let kubectl = cluster.binaries().kubectl();
    print_versions(cli, cluster, &kubectl).await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?,
        )
        .await
        .context("creating the namespace")?;
    let proxy = CountingProxy::start(&cluster.api_url()).await?;
    let proxied = cluster.dir().join("bench-proxied.kubeconfig");
    proxy.write_kubeconfig(cluster.kubeconfig(), &cluster.api_url(), &proxied)?;

    let mut loaded = 0;
    let mut report = Vec::new();
    for &size in &cli.sizes {
        let started = Instant::now();
        load(&client, loaded, size, cli.replicas).await?;
        wait_loaded(
            &client,
            size,
            cli.replicas,
            Duration::from_secs(cli.load_timeout),
        )
        .await?;
        loaded = size;
        eprintln!(
            "sts-bench: {size} StatefulSets × {} = {} claims loaded in {:.0?}; settling {}s",
            cli.replicas,
            size * cli.replicas,
            started.elapsed(),
            cli.settle
        );
        tokio::time::sleep(Duration::from_secs(cli.settle)).await;
        let variants = variants(cli, &client, &kubectl).await?;
        let mut measured: Vec<Measured> = Vec::new();
        for v in &variants {
            // Twice through the proxy, the second counted: kubectl's discovery cache is per
            // server address, so its first run there also reads discovery.
            v.run(&proxied, &cli.target, true).await?;
            let (rx0, tx0) = proxy.totals();
            let (_, requests, log) = v.run(&proxied, &cli.target, true).await?;
            let (rx1, tx1) = proxy.totals();
            if let Some(dir) = &cli.logs {
                std::fs::create_dir_all(dir)?;
                let file = dir.join(format!("{}-{}.log", size * cli.replicas, v.label()));
                std::fs::write(&file, &log)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            // Warm-up on the direct address (page cache, discovery cache).
            v.run(cluster.kubeconfig(), &cli.target, false).await?;
            measured.push(Measured {
                label: v.label().to_owned(),
                requests,
                received: rx1 - rx0,
                sent: tx1 - tx0,
                times: Vec::new(),
            });
        }
        for _ in 0..cli.rounds {
            for (v, m) in variants.iter().zip(&mut measured) {
                let (t, _, _) = v.run(cluster.kubeconfig(), &cli.target, false).await?;
                m.times.push(t);
            }
        }
        print_size(size, cli.replicas, &measured);
        report.push((size, measured));
    }
    println!();
    println!("summary (median ms [min–max], requests, KiB received):");
    for (size, measured) in &report {
        let cells: Vec<String> = measured
            .iter()
            .map(|m| {
                let (med, min, max) = stats(&m.times);
                format!(
                    "{} {med:.0} [{min:.0}–{max:.0}] ms, {} req, {:.0} KiB",
                    m.label,
                    m.requests,
                    m.received as f64 / 1024.0
                )
            })
            .collect();
        println!("  {} claims: {}", size * cli.replicas, cells.join("; "));
    }
    Ok(())
}

/// The variants, with the kubectl reads for the target as it is now (its PVs by name).
async fn variants(cli: &Cli, client: &Client, kubectl: &Path) -> Result<Vec<Variant>> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let lp = ListParams::default().labels(&format!("app={}", cli.target));
    let pvs: Vec<String> = claims
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.spec.and_then(|s| s.volume_name))
        .map(|v| format!("persistentvolume/{v}"))
        .collect();
    let t = &cli.target;
    let ns = ["-n", NAMESPACE];
    let with_ns = |rest: Vec<String>| -> Vec<String> {
        ns.iter().map(|s| s.to_string()).chain(rest).collect()
    };
    let s = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut pv_args = s(&["get"]);
    pv_args.extend(pvs);
    pv_args.extend(s(&["-o", "json"]));
    let invocations = vec![
        with_ns(s(&[
            "get",
            &format!("statefulset/{t}"),
            &format!("service/{t}"),
            "-o",
            "json",
        ])),
        with_ns(s(&[
            "get",
            "pods,persistentvolumeclaims,controllerrevisions",
            "-l",
            &format!("app={t}"),
            "-o",
            "json",
        ])),
        pv_args,
        with_ns(s(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.kind=StatefulSet,involvedObject.name={t}"),
            "-o",
            "json",
        ])),
        with_ns(s(&[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={t}"),
            "-o",
            "json",
        ])),
    ];
    Ok(vec![
        Variant::Plugin {
            label: "new".to_owned(),
            bin: cli.new.clone(),
        },
        Variant::Plugin {
            label: cli.old_label.clone(),
            bin: cli.old.clone(),
        },
        Variant::Kubectl {
            bin: kubectl.to_owned(),
            invocations,
        },
    ])
}

/// Creates StatefulSets `app-{from}` … `app-{to - 1}` with their headless Services, and as many
/// unrelated Services `other-…`.
async fn load(client: &Client, from: usize, to: usize, replicas: usize) -> Result<()> {
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let svc_api: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let pp = PostParams::default();
    for i in from..to {
        let name = format!("app-{i}");
        let svc: Service = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "app": name } },
            "spec": { "clusterIP": "None", "selector": { "app": name },
                      "ports": [{ "name": "web", "port": 80 }] },
        }))?;
        svc_api
            .create(&pp, &svc)
            .await
            .with_context(|| format!("creating Service {name}"))?;
        let other: Service = serde_json::from_value(json!({
            "metadata": { "name": format!("other-{i}") },
            "spec": { "selector": { "tier": format!("other-{i}") }, "ports": [{ "port": 8080 }] },
        }))?;
        svc_api
            .create(&pp, &other)
            .await
            .with_context(|| format!("creating Service other-{i}"))?;
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": {
                "serviceName": name,
                "replicas": replicas,
                "podManagementPolicy": "Parallel",
                "selector": { "matchLabels": { "app": name } },
                "template": {
                    "metadata": { "labels": { "app": name } },
                    "spec": { "containers": [{
                        "name": "app", "image": "registry.invalid/app:1",
                        "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
                    }] },
                },
                "volumeClaimTemplates": [{
                    "metadata": { "name": "data" },
                    "spec": { "accessModes": ["ReadWriteOnce"],
                              "resources": { "requests": { "storage": "1Mi" } } },
                }],
            },
        }))?;
        sts_api
            .create(&pp, &sts)
            .await
            .with_context(|| format!("creating StatefulSet {name}"))?;
    }
    Ok(())
}

/// Waits until `size` StatefulSets report every replica ready and every claim is Bound.
async fn wait_loaded(
    client: &Client,
    size: usize,
    replicas: usize,
    timeout: Duration,
) -> Result<()> {
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let want = size * replicas;
    let start = Instant::now();
    let mut last_note = Instant::now();
    loop {
        let sets = sts_api.list(&ListParams::default()).await?.items;
        let ready: usize = sets
            .iter()
            .filter_map(|s| s.status.as_ref()?.ready_replicas)
            .map(|r| usize::try_from(r).unwrap_or(0))
            .sum();
        let bound = pvc_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        if sets.len() == size && ready == want && bound == want {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!(
                "loading did not finish in {timeout:?}: {} StatefulSets, {ready}/{want} pods ready, {bound}/{want} claims bound",
                sets.len()
            );
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "sts-bench: loading … {ready}/{want} pods ready, {bound}/{want} claims bound ({:.0?})",
                start.elapsed()
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn print_size(size: usize, replicas: usize, measured: &[Measured]) {
    println!();
    println!(
        "{size} StatefulSets × {replicas} replicas ({} pods, {} claims, {} Services):",
        size * replicas,
        size * replicas,
        size * 2
    );
    println!(
        "  {:<10} {:>8} {:>16} {:>9} {:>13} {:>9}  runs (ms, in order)",
        "variant", "median", "min–max", "requests", "KiB received", "KiB sent"
    );
    for m in measured {
        let (med, min, max) = stats(&m.times);
        let runs: Vec<String> = m
            .times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "  {:<10} {:>6.0}ms {:>14} {:>9} {:>13.1} {:>9.1}  {}",
            m.label,
            med,
            format!("{min:.0}–{max:.0}ms"),
            m.requests,
            m.received as f64 / 1024.0,
            m.sent as f64 / 1024.0,
            runs.join(" ")
        );
    }
}

async fn print_versions(cli: &Cli, cluster: &LocalCluster, kubectl: &Path) {
    let apiserver = first_line(&cluster.binaries().apiserver(), &["--version"]).await;
    let kubectl_version = first_line(kubectl, &["version", "--client"]).await;
    let new = first_line(&cli.new, &["version"]).await;
    let old = first_line(&cli.old, &["version"]).await;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("sts-bench: {}", jiff::Timestamp::now());
    println!("  machine: {cpus} CPUs, {}", std::env::consts::ARCH);
    println!("  {apiserver}; {kubectl_version}");
    println!("  new: {} ({new})", cli.new.display());
    println!("  {}: {} ({old})", cli.old_label, cli.old.display());
    println!(
        "  inspect {} -o json; {} timed rounds per size, interleaved new, {}, kubectl",
        cli.target, cli.rounds, cli.old_label
    );
}
