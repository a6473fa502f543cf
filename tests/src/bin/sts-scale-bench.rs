//! `sts-scale-bench`: `kubectl sts list -A` and `orphans -A` (table and `-o json`) against
//! `kubectl get … -A -o json` of the kinds each reads, on a generated cluster of `--sizes` ×
//! `--base` StatefulSets loaded into a real local API server (issue 15).
//!
//! The control plane is etcd and kube-apiserver only, on 127.0.0.1: no kube-controller-manager,
//! which would make and delete pods and revisions for the StatefulSets, bind or lose the claims
//! and garbage-collect, and whose client (20 QPS by default) is not needed for a read benchmark.
//! The objects come from `sts_model::fixtures::cluster` and are loaded as they are with their
//! links (`sts_e2e::load`). Each size is loaded on top of the previous one (the first `n`
//! StatefulSets of a larger size are the same objects); then every command runs once through a
//! byte-counting loopback proxy with `-v` (requests per kind, bytes received; the plugin's JSON
//! is checked against what the model says the views must show), once as a warm-up, and
//! `--rounds` times interleaved (A B C … A B C …) for the medians, with stdout discarded and peak
//! RSS from wait4(2). With `--webhook`, the sts-webhook binary is also started on each size,
//! once per `--webhook-page-sizes` entry and round (interleaved), against the same API server:
//! the time until its caches are synced (`/readyz` 200, polled every 20 ms), its peak RSS
//! (VmHWM) and its RSS once synced. See README "Performance" and `make bench-scale`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sts_e2e::bench::{
    CountingProxy, format_counts, kubectl_requests, median_u64, plugin_requests, run_measured,
    scratch_dir, stats,
};
use sts_e2e::load::{Counts, LoadOptions, LoadReport, load_cluster};
use sts_e2e::{ClusterOptions, LocalCluster, WebhookOptions};

/// The kinds `kubectl sts list -A` reads, for kubectl.
const LIST_KINDS: &str =
    "statefulsets,pods,persistentvolumeclaims,services,controllerrevisions,events";
/// The kinds `kubectl sts orphans -A` reads, for kubectl.
const ORPHANS_KINDS: &str = "statefulsets,pods,persistentvolumeclaims,persistentvolumes";

#[derive(Parser)]
#[command(
    about = "Benchmark kubectl sts list/orphans -A against kubectl's raw LISTs on a generated cluster in a local API server"
)]
struct Cli {
    /// The plugin to time (a release build: `cargo build --release -p kubectl-sts`).
    #[arg(long, required_unless_present = "webhook")]
    plugin: Option<PathBuf>,
    /// Also measure this sts-webhook binary's caches (a release build: `cargo build --release
    /// -p sts-webhook`): time to sync, peak RSS and RSS once synced.
    #[arg(long)]
    webhook: Option<PathBuf>,
    /// The webhook's `--watch-page-size` values to compare.
    #[arg(long, value_delimiter = ',', default_value = "500,100")]
    webhook_page_sizes: Vec<u32>,
    /// Cluster sizes as multiples of --base StatefulSets, ascending (the cluster grows).
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    sizes: Vec<f64>,
    /// StatefulSets at size 1 (issue 15: 3,000).
    #[arg(long, default_value_t = 3000)]
    base: usize,
    /// Timed rounds per size; each round runs every command once, in turn.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Write requests in flight while loading.
    #[arg(long, default_value_t = 48)]
    concurrency: usize,
    /// Working dir of the control plane (certificates, etcd data, logs), kept afterwards.
    /// Default: a temp dir, removed after a successful run.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep --dir's etcd data and go on loading where an earlier run stopped (namespaces
    /// already loaded are skipped).
    #[arg(long, requires = "dir")]
    resume: bool,
    /// Seconds one command may run before the benchmark fails.
    #[arg(long, default_value_t = 900)]
    run_timeout: u64,
    /// etcd's backend quota in GiB (etcd's default of 2 GiB is too small at 10×).
    #[arg(long, default_value_t = 8)]
    etcd_quota_gib: u64,
    /// Seconds to wait after loading, before the first command.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Write the `-v` log of each counted run here (`<size>x-<command>.log`).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Run kubectl once per kind (`kubectl get pods -A -o json`, then the next kind) and add
    /// up the times, instead of one `kubectl get a,b,c`: the same LISTs one after another (as
    /// kubectl makes them anyway), but kubectl then holds one kind at a time, not all (it
    /// needs about 28 KiB per object, 11 GiB at 10×, next to the API server's own memory).
    /// Adds a process start and a discovery-cache read per kind.
    #[arg(long)]
    kubectl_per_kind: bool,
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
            eprintln!("sts-scale-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sts-scale-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if cli.sizes.is_empty()
        || cli.sizes.iter().any(|s| *s <= 0.0)
        || !cli.sizes.windows(2).all(|w| w[0] < w[1])
    {
        bail!("--sizes must be positive and ascending, e.g. 1,10");
    }
    for bin in cli.plugin.iter().chain(&cli.webhook) {
        if !bin.is_file() {
            bail!("{} is not a file", bin.display());
        }
    }
    if cli.webhook_page_sizes.contains(&0) {
        bail!("--webhook-page-sizes must be at least 1");
    }
    if cli.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let opts = ClusterOptions {
        dir: cli.dir.clone(),
        api_only: true,
        keep_etcd_data: cli.resume,
        etcd_args: vec![format!(
            "--quota-backend-bytes={}",
            cli.etcd_quota_gib * 1024 * 1024 * 1024
        )],
        // Events expire after an hour by default: they would vanish during a long load.
        apiserver_args: vec!["--event-ttl=720h".to_owned()],
        ..ClusterOptions::default()
    };
    eprintln!("sts-scale-bench: starting etcd and kube-apiserver on 127.0.0.1 …");
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
        eprintln!("sts-scale-bench: cluster dir kept: {}", dir.display());
    }
    outcome
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Plugin,
    Kubectl,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    List,
    Orphans,
}

/// What the counted run of a plugin command must print, from the model.
#[derive(Clone, Copy)]
enum Check {
    ListJson,
    OrphansJson,
}

/// One command timed.
struct Command {
    label: &'static str,
    tool: Tool,
    reads: Reads,
    args: Vec<String>,
    check: Option<Check>,
}

impl Command {
    fn bin<'a>(&self, plugin: &'a Path, kubectl: &'a Path) -> &'a Path {
        match self.tool {
            Tool::Plugin => plugin,
            Tool::Kubectl => kubectl,
        }
    }
    /// The argument lists of one run: one, or for kubectl with `per_kind` one per kind.
    fn runs(&self, per_kind: bool, verbose: bool) -> Vec<Vec<String>> {
        let mut runs = match (self.tool, per_kind) {
            (Tool::Kubectl, true) => {
                let kinds = self.args.get(1).map_or("", String::as_str);
                kinds
                    .split(',')
                    .map(|kind| {
                        let mut a = self.args.clone();
                        a[1] = kind.to_owned();
                        a
                    })
                    .collect()
            }
            _ => vec![self.args.clone()],
        };
        if verbose {
            for args in &mut runs {
                args.push(
                    match self.tool {
                        Tool::Plugin => "-v",
                        Tool::Kubectl => "-v=6",
                    }
                    .to_owned(),
                );
            }
        }
        runs
    }
    fn requests(&self, log: &str) -> BTreeMap<String, usize> {
        match self.tool {
            Tool::Plugin => plugin_requests(log),
            Tool::Kubectl => kubectl_requests(log),
        }
    }
}

fn commands() -> Vec<Command> {
    let s = |a: &[&str]| a.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    vec![
        Command {
            label: "list -A",
            tool: Tool::Plugin,
            reads: Reads::List,
            args: s(&["list", "-A"]),
            check: None,
        },
        Command {
            label: "list -A -o json",
            tool: Tool::Plugin,
            reads: Reads::List,
            args: s(&["list", "-A", "-o", "json"]),
            check: Some(Check::ListJson),
        },
        Command {
            label: "kubectl get <list's kinds>",
            tool: Tool::Kubectl,
            reads: Reads::List,
            args: s(&["get", LIST_KINDS, "-A", "-o", "json"]),
            check: None,
        },
        Command {
            label: "orphans -A",
            tool: Tool::Plugin,
            reads: Reads::Orphans,
            args: s(&["orphans", "-A"]),
            check: None,
        },
        Command {
            label: "orphans -A -o json",
            tool: Tool::Plugin,
            reads: Reads::Orphans,
            args: s(&["orphans", "-A", "-o", "json"]),
            check: Some(Check::OrphansJson),
        },
        Command {
            label: "kubectl get <orphans' kinds>",
            tool: Tool::Kubectl,
            reads: Reads::Orphans,
            args: s(&["get", ORPHANS_KINDS, "-A", "-o", "json"]),
            check: None,
        },
    ]
}

/// One run of a command: its processes one after another (see [`Command::runs`]), wall and
/// CPU times added up, the largest peak RSS, the logs and the output bytes together.
struct Combined {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    stderr: String,
    output: u64,
}

async fn run_command(
    runs: &[Vec<String>],
    bin: &Path,
    kubeconfig: &Path,
    out: Option<&Path>,
    timeout: Duration,
) -> Result<Combined> {
    let mut all = Combined {
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss_kib: 0,
        stderr: String::new(),
        output: 0,
    };
    for args in runs {
        let r = run_measured(bin, args, kubeconfig, out, timeout).await?;
        all.wall += r.wall;
        all.cpu += r.usage.cpu;
        all.max_rss_kib = all.max_rss_kib.max(r.usage.max_rss_kib);
        all.stderr.push_str(&r.stderr);
        all.output += out
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
    }
    Ok(all)
}

/// One command at one size.
struct Measured {
    requests: BTreeMap<String, usize>,
    received: u64,
    sent: u64,
    /// Bytes it printed in the counted run.
    output: u64,
    times: Vec<Duration>,
    rss_kib: Vec<u64>,
    cpu: Vec<Duration>,
}

struct SizeReport {
    size: f64,
    load: LoadReport,
    etcd_db_bytes: u64,
    apiserver_rss_kib: u64,
    /// /proc/loadavg's three figures after the timed rounds.
    load_average: String,
    measured: Vec<Measured>,
    webhook: Vec<WebhookMeasured>,
}

/// The webhook's caches at one page size.
struct WebhookMeasured {
    page_size: u32,
    ready: Vec<Duration>,
    peak_kib: Vec<u64>,
    synced_kib: Vec<u64>,
}

async fn bench(cli: &Cli, cluster: &LocalCluster) -> Result<()> {
    let client = cluster.client();
    let kubectl = cluster.binaries().kubectl();
    let commands = if cli.plugin.is_some() {
        commands()
    } else {
        Vec::new()
    };
    let plugin = cli.plugin.clone().unwrap_or_default();
    print_conditions(cli, cluster, &kubectl).await;
    let proxy = CountingProxy::start(&cluster.api_url()).await?;
    let proxied = cluster.dir().join("bench-proxied.kubeconfig");
    proxy.write_kubeconfig(cluster.kubeconfig(), &cluster.api_url(), &proxied)?;
    let timeout = Duration::from_secs(cli.run_timeout);
    let scratch = scratch_dir(cluster.dir())?;
    // kubectl caches discovery per server address: fill both caches before anything is counted.
    for kubeconfig in [cluster.kubeconfig(), proxied.as_path()] {
        run_measured(
            &kubectl,
            &["api-resources".to_owned()],
            kubeconfig,
            None,
            timeout,
        )
        .await?;
    }

    let mut reports: Vec<SizeReport> = Vec::new();
    for &size in &cli.sizes {
        let statefulsets = (size * cli.base as f64).round() as usize;
        eprintln!("sts-scale-bench: loading {size}× = {statefulsets} StatefulSets …");
        let load = load_cluster(
            &client,
            statefulsets,
            LoadOptions {
                concurrency: cli.concurrency,
                ..LoadOptions::default()
            },
        )
        .await
        .with_context(|| format!("loading {size}×"))?;
        let counts = load.expected.counts;
        eprintln!(
            "sts-scale-bench: {size}×: {} objects ({}) in {} namespaces; this run created {} ({} existed) with {} writes in {:.0} s ({:.0} writes/s, {} retried); settling {} s",
            counts.total(),
            describe(&counts),
            load.expected.namespaces,
            load.created,
            load.existed,
            load.writes,
            load.elapsed.as_secs_f64(),
            load.writes_per_second(),
            load.retries,
            cli.settle
        );
        tokio::time::sleep(Duration::from_secs(cli.settle)).await;
        let etcd_db_bytes = dir_size(&cluster.dir().join("etcd-data"));
        let apiserver_rss_kib = cluster
            .pids()
            .get(1)
            .map_or(0, |pid| proc_status_kib(*pid, "VmRSS"));

        let mut measured = Vec::new();
        for c in &commands {
            let bin = c.bin(&plugin, &kubectl);
            let out = scratch.path().join("counted.out");
            let (rx0, tx0) = proxy.totals();
            let runs = c.runs(cli.kubectl_per_kind, true);
            let counted = run_command(&runs, bin, &proxied, Some(&out), timeout)
                .await
                .with_context(|| format!("{size}×: counted run of {}", c.label))?;
            let (rx1, tx1) = proxy.totals();
            let output = counted.output;
            if let Some(check) = c.check {
                check_output(check, &out, &load).with_context(|| {
                    format!("{size}×: {} does not show the loaded cluster", c.label)
                })?;
            }
            let _ = std::fs::remove_file(&out);
            if let Some(dir) = &cli.logs {
                std::fs::create_dir_all(dir)?;
                let name = c.label.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_");
                std::fs::write(dir.join(format!("{size}x-{name}.log")), &counted.stderr)?;
            }
            // A warm-up on the direct address.
            let runs = c.runs(cli.kubectl_per_kind, false);
            run_command(&runs, bin, cluster.kubeconfig(), None, timeout).await?;
            measured.push(Measured {
                requests: c.requests(&counted.stderr),
                received: rx1 - rx0,
                sent: tx1 - tx0,
                output,
                times: Vec::new(),
                rss_kib: Vec::new(),
                cpu: Vec::new(),
            });
        }
        for round in (1..=cli.rounds).filter(|_| !commands.is_empty()) {
            for (c, m) in commands.iter().zip(&mut measured) {
                let bin = c.bin(&plugin, &kubectl);
                let runs = c.runs(cli.kubectl_per_kind, false);
                let r = run_command(&runs, bin, cluster.kubeconfig(), None, timeout)
                    .await
                    .with_context(|| format!("{size}×: round {round} of {}", c.label))?;
                m.times.push(r.wall);
                m.rss_kib.push(r.max_rss_kib);
                m.cpu.push(r.cpu);
            }
            eprintln!(
                "sts-scale-bench: {size}×: round {round}/{} done",
                cli.rounds
            );
        }
        let webhook = match &cli.webhook {
            Some(bin) => measure_webhook(cli, cluster, bin, size).await?,
            None => Vec::new(),
        };
        let report = SizeReport {
            size,
            load,
            etcd_db_bytes,
            apiserver_rss_kib,
            load_average: load_average(),
            measured,
            webhook,
        };
        print_size(&commands, &report);
        print_webhook(&report);
        reports.push(report);
    }
    print_summary(&commands, &reports);
    Ok(())
}

/// Starts the webhook once per page size and round, interleaved, each time from scratch: how
/// long until `/readyz` says its caches are synced, its peak RSS, and its RSS 2 s later.
async fn measure_webhook(
    cli: &Cli,
    cluster: &LocalCluster,
    bin: &Path,
    size: f64,
) -> Result<Vec<WebhookMeasured>> {
    let mut measured: Vec<WebhookMeasured> = cli
        .webhook_page_sizes
        .iter()
        .map(|&page_size| WebhookMeasured {
            page_size,
            ready: Vec::new(),
            peak_kib: Vec::new(),
            synced_kib: Vec::new(),
        })
        .collect();
    let timeout = Duration::from_secs(cli.run_timeout);
    for round in 1..=cli.rounds {
        for m in &mut measured {
            let mut runner = cluster.admin_webhook_runner(WebhookOptions {
                bin: Some(bin.to_owned()),
                extra_args: vec![format!("--watch-page-size={}", m.page_size)],
                log_name: format!("sts-webhook-bench-{}.log", m.page_size),
                ..WebhookOptions::default()
            })?;
            let begin = Instant::now();
            runner.spawn().await?;
            let ready = loop {
                runner.ensure_running()?;
                if matches!(runner.get("/readyz").await, Ok((200, _))) {
                    break begin.elapsed();
                }
                if begin.elapsed() > timeout {
                    runner.stop().await;
                    bail!(
                        "{size}×: sts-webhook (page size {}) not ready within {} s; log: {}",
                        m.page_size,
                        timeout.as_secs(),
                        runner.log().display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            tokio::time::sleep(Duration::from_secs(2)).await;
            let pid = runner.pid().context("sts-webhook has no pid")?;
            let (peak, synced) = (proc_status_kib(pid, "VmHWM"), proc_status_kib(pid, "VmRSS"));
            runner.stop().await;
            m.ready.push(ready);
            m.peak_kib.push(peak);
            m.synced_kib.push(synced);
        }
        eprintln!(
            "sts-scale-bench: {size}×: webhook round {round}/{} done",
            cli.rounds
        );
    }
    Ok(measured)
}

/// Compares the plugin's JSON with what the model says the loaded cluster holds.
fn check_output(check: Check, out: &Path, load: &LoadReport) -> Result<()> {
    let text = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
    let view: serde_json::Value =
        serde_json::from_slice(&text).context("the output is not JSON")?;
    let items = view["items"].as_array().context("no items")?;
    let expected = load.expected;
    match check {
        Check::ListJson => {
            let ready: u64 = items
                .iter()
                .filter_map(|i| i["readyReplicas"].as_u64())
                .sum();
            if items.len() as u64 != expected.counts.statefulsets || ready != expected.ready_pods {
                bail!(
                    "{} StatefulSets with {ready} ready pods; the model says {} with {}",
                    items.len(),
                    expected.counts.statefulsets,
                    expected.ready_pods
                );
            }
        }
        Check::OrphansJson => {
            let unclassified = view["unclassified"].as_array().map_or(0, Vec::len);
            if items.len() as u64 != expected.orphans || unclassified != 0 {
                bail!(
                    "{} orphans and {unclassified} unclassified claims; the model says {} and 0",
                    items.len(),
                    expected.orphans
                );
            }
        }
    }
    Ok(())
}

fn describe(c: &Counts) -> String {
    format!(
        "{} StatefulSets, {} pods, {} claims, {} PVs, {} Services, {} revisions, {} events",
        c.statefulsets, c.pods, c.claims, c.volumes, c.services, c.revisions, c.events
    )
}

fn objects_read(reads: Reads, counts: &Counts) -> u64 {
    match reads {
        Reads::List => counts.read_by_list(),
        Reads::Orphans => counts.read_by_orphans(),
    }
}

/// Index of the kubectl command reading the same kinds as `c`.
fn baseline(commands: &[Command], c: &Command) -> Option<usize> {
    commands
        .iter()
        .position(|b| b.tool == Tool::Kubectl && b.reads == c.reads)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The size's objects, how they were loaded, and the control plane's footprint.
fn print_loaded(r: &SizeReport) {
    let counts = r.load.expected.counts;
    println!(
        "{}×: {} objects ({}), {} namespaces; this run loaded {} namespaces in {:.0} s ({} writes, {:.0}/s); etcd data {:.0} MiB, kube-apiserver RSS {:.0} MiB; load average {}",
        r.size,
        counts.total(),
        describe(&counts),
        r.load.expected.namespaces,
        r.load.namespaces_loaded,
        r.load.elapsed.as_secs_f64(),
        r.load.writes,
        r.load.writes_per_second(),
        mib(r.etcd_db_bytes),
        r.apiserver_rss_kib as f64 / 1024.0,
        r.load_average
    );
}

fn print_size(commands: &[Command], r: &SizeReport) {
    let counts = r.load.expected.counts;
    println!();
    print_loaded(r);
    if commands.is_empty() {
        return;
    }
    println!(
        "  {:<30} {:>9} {:>17} {:>7} {:>10} {:>10} {:>9} {:>10} {:>8}  requests per kind; runs (ms)",
        "command",
        "median",
        "min–max",
        "ratio",
        "MiB recv",
        "MiB out",
        "peak RSS",
        "KiB/1000",
        "CPU"
    );
    for (c, m) in commands.iter().zip(&r.measured) {
        let (med, min, max) = stats(&m.times);
        let ratio = baseline(commands, c)
            .filter(|_| c.tool == Tool::Plugin)
            .map(|b| med / stats(&r.measured[b].times).0.max(1e-9));
        let rss = median_u64(&m.rss_kib);
        let per_1000 = rss as f64 / (objects_read(c.reads, &counts) as f64 / 1000.0).max(1e-9);
        let (cpu, _, _) = stats(&m.cpu);
        let runs: Vec<String> = m
            .times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "  {:<30} {:>7.0}ms {:>17} {:>7} {:>10.1} {:>10.1} {:>6.0}MiB {:>10.0} {:>6.0}ms  {} ({} requests, {:.1} KiB sent); {}",
            c.label,
            med,
            format!("{min:.0}–{max:.0}ms"),
            ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
            mib(m.received),
            mib(m.output),
            rss as f64 / 1024.0,
            per_1000,
            cpu,
            format_counts(&m.requests),
            m.requests.values().sum::<usize>(),
            m.sent as f64 / 1024.0,
            runs.join(" ")
        );
    }
}

/// The webhook's figures at one size, as text and as README rows.
fn print_webhook(r: &SizeReport) {
    if r.webhook.is_empty() {
        return;
    }
    let counts = r.load.expected.counts;
    println!(
        "  sts-webhook, caches of {} StatefulSets and {} Services:",
        counts.statefulsets, counts.services
    );
    for m in &r.webhook {
        let (med, min, max) = stats(&m.ready);
        println!(
            "    --watch-page-size={:<5} synced in {:>6.0} ms ({min:.0}–{max:.0}), peak RSS {:>6.1} MiB, RSS once synced {:>6.1} MiB; peaks (MiB) {}",
            m.page_size,
            med,
            median_u64(&m.peak_kib) as f64 / 1024.0,
            median_u64(&m.synced_kib) as f64 / 1024.0,
            m.peak_kib
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!();
    println!(
        "| size | StatefulSets | Services | --watch-page-size | synced in | peak RSS | RSS once synced |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for m in &r.webhook {
        let (med, min, max) = stats(&m.ready);
        println!(
            "| {}× | {} | {} | {} | {:.0} ms ({min:.0}–{max:.0}) | {:.1} MiB | {:.1} MiB |",
            r.size,
            counts.statefulsets,
            counts.services,
            m.page_size,
            med,
            median_u64(&m.peak_kib) as f64 / 1024.0,
            median_u64(&m.synced_kib) as f64 / 1024.0,
        );
    }
}

/// Markdown rows for README, and the plugin's memory per 1000 objects between sizes.
fn print_summary(commands: &[Command], reports: &[SizeReport]) {
    if commands.is_empty() {
        return;
    }
    println!();
    println!(
        "| size | objects | loaded by this run | command | median (min–max) | kubectl median | ratio | requests | MiB received | peak RSS | per 1000 objects read |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in reports {
        let counts = r.load.expected.counts;
        for (c, m) in commands.iter().zip(&r.measured) {
            let (med, min, max) = stats(&m.times);
            let base = baseline(commands, c)
                .filter(|_| c.tool == Tool::Plugin)
                .map(|b| stats(&r.measured[b].times).0);
            let rss = median_u64(&m.rss_kib);
            let read = objects_read(c.reads, &counts);
            println!(
                "| {}× | {} | {:.0} s | `{}` | {:.0} ms ({min:.0}–{max:.0}) | {} | {} | {} | {:.1} | {:.0} MiB | {:.1} MiB ({read} objects) |",
                r.size,
                counts.total(),
                r.load.elapsed.as_secs_f64(),
                c.label,
                med,
                base.map_or_else(|| "-".to_owned(), |b| format!("{b:.0} ms")),
                base.map_or_else(|| "-".to_owned(), |b| format!("{:.3}", med / b.max(1e-9))),
                m.requests.values().sum::<usize>(),
                mib(m.received),
                rss as f64 / 1024.0,
                rss as f64 / 1024.0 / (read as f64 / 1000.0).max(1e-9),
            );
        }
    }
    if let [.., a, b] = reports {
        println!();
        println!(
            "peak RSS added per 1000 objects read, {}× → {}×:",
            a.size, b.size
        );
        for (i, c) in commands.iter().enumerate() {
            let (ra, rb) = (
                median_u64(&a.measured[i].rss_kib),
                median_u64(&b.measured[i].rss_kib),
            );
            let (oa, ob) = (
                objects_read(c.reads, &a.load.expected.counts),
                objects_read(c.reads, &b.load.expected.counts),
            );
            let per_1000 = (rb as f64 - ra as f64) / ((ob - oa) as f64 / 1000.0).max(1e-9);
            println!("  {:<30} {:.0} KiB", c.label, per_1000);
        }
    }
}

async fn print_conditions(cli: &Cli, cluster: &LocalCluster, kubectl: &Path) {
    use sts_e2e::bench::first_line;
    let apiserver = first_line(&cluster.binaries().apiserver(), &["--version"]).await;
    let etcd = first_line(&cluster.binaries().etcd(), &["--version"]).await;
    let kubectl_version = first_line(kubectl, &["version", "--client"]).await;
    let plugin = match &cli.plugin {
        Some(p) => format!("{} ({})", p.display(), first_line(p, &["version"]).await),
        None => "not timed".to_owned(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("sts-scale-bench: {}", jiff::Timestamp::now());
    println!(
        "  machine: {cpus} CPUs, {}; load average {}",
        std::env::consts::ARCH,
        load_average()
    );
    println!("  {apiserver} (no kube-controller-manager); {etcd}; {kubectl_version}");
    println!("  plugin: {plugin}");
    if let Some(w) = &cli.webhook {
        println!(
            "  webhook: {} ({}), --watch-page-size {:?}",
            w.display(),
            first_line(w, &["--version"]).await,
            cli.webhook_page_sizes
        );
    }
    println!(
        "  sizes {:?} × {} StatefulSets; {} timed rounds per size, interleaved; loading with {} requests in flight; kubectl {}",
        cli.sizes,
        cli.base,
        cli.rounds,
        cli.concurrency,
        if cli.kubectl_per_kind {
            "once per kind, times added up"
        } else {
            "once for all kinds"
        }
    );
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 when unreadable.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
