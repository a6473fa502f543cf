//! `sts-admission-bench`: sts-webhook's admission latency as the API server sees it, on the
//! local control plane.
//!
//! The API server times every call to a webhook in its histogram
//! `apiserver_admission_webhook_admission_duration_seconds{name,operation,type}` (buckets
//! 5 ms, 25 ms, 100 ms, …; k8s.io/apiserver pkg/admission/metrics). This benchmark reads it
//! before and after each phase and reports the phase's calls, mean and share in the first
//! bucket. Phases, interleaved for `--rounds` rounds (A B C A B C …), each `--creates`
//! sequential StatefulSet creates without `spec.serviceName`:
//!
//! - `creates Service`: no Service exists, so the webhook creates it during admission;
//! - `Service cached`: the headless Service exists and is in the webhook's cache (the hot path);
//! - `no webhook`: the MutatingWebhookConfiguration removed (wall time only).
//!
//! Beside the API server's view, each phase reports the webhook's own view from its `/metrics`
//! (`sts_webhook_admission_duration_seconds`: the handler alone, without TLS, HTTP and the API
//! server's side; `sts_webhook_admission_service_create_duration_seconds`, when the webhook has it: the
//! Service create calls), and in `creates Service` whether the Service existed when the
//! StatefulSet create returned (a GET right after each create, not counted in the wall time;
//! `--no-presence-check` leaves it out). It also counts every client's writes per create from
//! the API server's `apiserver_request_total` (POST, PUT, PATCH, DELETE by resource), which
//! shows what a created Service brings with it: the create, the reconciler's adoption patch, and
//! the controller-manager's Endpoints and EndpointSlice (`--controller-manager-arg` can turn
//! those controllers off to see their share).
//!
//! `--webhook-bin` may be any webhook that takes the harness's `--listen`, `--tls-cert` and
//! `--tls-key`: `tests/go/floor-webhook` answers the same patch with no API call, as a control
//! (`make bench-admission` runs both, interleaved).
//!
//! Medians over rounds are printed with each round's figures. Nothing leaves 127.0.0.1; the
//! cluster stops on exit. README "Performance" quotes it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sts_e2e::webhook::{CONFIGURATION_NAME, WEBHOOK_NAME};
use sts_e2e::{ClusterOptions, LocalCluster, WebhookOptions};

const NAMESPACE: &str = "admission-bench";
const HISTOGRAM: &str = "apiserver_admission_webhook_admission_duration_seconds";

#[derive(Parser)]
#[command(about = "sts-webhook's admission latency from the API server's own histogram")]
struct Cli {
    /// StatefulSet creates per phase and round.
    #[arg(long, default_value_t = 100)]
    creates: usize,
    /// Rounds; each runs every phase once, in turn.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The sts-webhook binary (default: next to this one); give a release build for figures.
    #[arg(long)]
    webhook_bin: Option<std::path::PathBuf>,
    /// A flag for the webhook, after the harness's own (repeatable), e.g.
    /// `--webhook-arg=--create-wait=1ms`.
    #[arg(long = "webhook-arg", value_name = "FLAG", allow_hyphen_values = true)]
    webhook_args: Vec<String>,
    /// Milliseconds to pause after each create (and its presence check), outside the wall
    /// time: 0 creates back to back; a pause longer than a Service create (5–10 ms here) keeps
    /// each Service create from overlapping the next StatefulSet's admission.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// A flag for kube-controller-manager, after the harness's own (repeatable), e.g.
    /// `--controller-manager-arg=--controllers=*,-endpointslice` to see what the cluster's own
    /// reaction to a new Service costs the next admission.
    #[arg(
        long = "controller-manager-arg",
        value_name = "FLAG",
        allow_hyphen_values = true
    )]
    controller_manager_args: Vec<String>,
    /// Skip the GET after each create of `creates Service` (then "svc at return" is "-").
    #[arg(long)]
    no_presence_check: bool,
}

fn main() -> ExitCode {
    sts_e2e::init_tracing("warn");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sts-admission-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sts-admission-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The webhook's CREATE calls as the API server counted them: cumulative bucket counts
/// (upper bound in seconds, count), sum of seconds, count.
#[derive(Clone, Debug, Default)]
struct Calls {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Calls {
    fn minus(&self, before: &Calls) -> Calls {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let old = before
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |(_, c)| *c);
                (*le, n - old)
            })
            .collect();
        Calls {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }
    fn share_within(&self, le: f64) -> f64 {
        let n = self
            .buckets
            .iter()
            .find(|(l, _)| (*l - le).abs() < 1e-9)
            .map_or(0.0, |(_, c)| *c);
        if self.count > 0.0 {
            n / self.count
        } else {
            0.0
        }
    }
}

/// Writes the API server served, by resource (`resource/subresource` when there is one):
/// `apiserver_request_total` with a verb of POST, PUT, PATCH or DELETE, every client's.
#[derive(Clone, Debug, Default)]
struct Writes(std::collections::BTreeMap<String, f64>);

impl Writes {
    fn minus(&self, before: &Writes) -> Writes {
        Writes(
            self.0
                .iter()
                .map(|(k, n)| (k.clone(), n - before.0.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        )
    }
}

async fn api_metrics(client: &Client) -> Result<(Calls, Writes)> {
    let text = client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .context("building GET /metrics")?,
        )
        .await
        .context("reading the API server's /metrics")?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .context("parsing the API server's /metrics")?;
    let ours = |s: &prometheus_parse::Sample| {
        s.labels.get("name") == Some(WEBHOOK_NAME)
            && s.labels.get("operation") == Some("CREATE")
            && s.labels.get("type") == Some("admit")
    };
    let mut calls = Calls::default();
    let mut writes = Writes::default();
    for s in &scrape.samples {
        if s.metric == "apiserver_request_total"
            && matches!(
                s.labels.get("verb"),
                Some("POST" | "PUT" | "PATCH" | "DELETE")
            )
        {
            let resource = s.labels.get("resource").unwrap_or("?");
            let key = match s.labels.get("subresource") {
                Some(sub) if !sub.is_empty() => format!("{resource}/{sub}"),
                _ => resource.to_owned(),
            };
            *writes.0.entry(key).or_default() += value(&s.value);
            continue;
        }
        if !ours(s) {
            continue;
        }
        match (&s.value, s.metric.as_str()) {
            (prometheus_parse::Value::Histogram(h), m) if m == HISTOGRAM => {
                // One series per `rejected` value; add them up.
                for b in h {
                    match calls.buckets.iter_mut().find(|(le, _)| *le == b.less_than) {
                        Some((_, n)) => *n += b.count,
                        None => calls.buckets.push((b.less_than, b.count)),
                    }
                }
            }
            (v, m) if m == format!("{HISTOGRAM}_sum") => calls.sum += value(v),
            (v, m) if m == format!("{HISTOGRAM}_count") => calls.count += value(v),
            _ => {}
        }
    }
    Ok((calls, writes))
}

/// Sum and count of one of the webhook's own histograms (seconds), from its `/metrics`;
/// zeros when it has no such histogram (an older build).
#[derive(Clone, Copy, Debug, Default)]
struct Own {
    sum: f64,
    count: f64,
}

impl Own {
    fn minus(self, before: Own) -> Own {
        Own {
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }
    /// Mean in milliseconds, or "-" without observations.
    fn mean_ms(self) -> String {
        if self.count > 0.0 {
            ms(self.sum / self.count)
        } else {
            "-".to_owned()
        }
    }
}

/// The webhook's handler time and its Service create calls, as its own metrics count them.
#[derive(Clone, Copy, Debug, Default)]
struct OwnView {
    handler: Own,
    creates: Own,
}

impl OwnView {
    fn minus(self, before: OwnView) -> OwnView {
        OwnView {
            handler: self.handler.minus(before.handler),
            creates: self.creates.minus(before.creates),
        }
    }
}

async fn webhook_own(cluster: &mut LocalCluster) -> Result<OwnView> {
    let webhook = cluster
        .webhook()
        .context("the cluster runs without its webhook")?;
    let (code, text) = webhook
        .get("/metrics")
        .await
        .context("reading the webhook's /metrics")?;
    if code != 200 {
        bail!("the webhook's /metrics answered {code}");
    }
    let read = |name: &str| -> Own {
        let field = |suffix: &str| {
            let prefix = format!("{name}_{suffix} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Own {
            sum: field("sum"),
            count: field("count"),
        }
    };
    Ok(OwnView {
        handler: read("sts_webhook_admission_duration_seconds"),
        creates: read("sts_webhook_admission_service_create_duration_seconds"),
    })
}

fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        _ => 0.0,
    }
}

fn statefulset(name: &str) -> Result<StatefulSet> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": "registry.k8s.io/pause:3.9",
                    "ports": [{ "name": "http", "containerPort": 8080 }] }] },
            },
        },
    }))?)
}

fn headless(name: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "clusterIP": "None", "selector": { "app": name }, "ports": [{ "port": 8080 }] },
    }))?)
}

/// What one phase of one round measured.
struct Phase {
    /// The creates' own time, one after the other (the presence checks not included).
    wall: Duration,
    calls: Calls,
    own: OwnView,
    /// Every client's writes from the phase's start until 500 ms after its last create.
    writes: Writes,
    /// Creates after which a GET found the Service (None: not checked).
    present: Option<usize>,
}

/// Creates the StatefulSets one after the other; returns the time spent in the creates and,
/// with `services`, how many of their Services a GET right after each create found.
async fn create_all(
    api: &Api<StatefulSet>,
    names: &[String],
    services: Option<&Api<Service>>,
    pause: Duration,
) -> Result<(Duration, Option<usize>)> {
    let mut wall = Duration::ZERO;
    let mut present = 0;
    for name in names {
        let started = Instant::now();
        api.create(&PostParams::default(), &statefulset(name)?)
            .await
            .with_context(|| format!("creating StatefulSet {name}"))?;
        wall += started.elapsed();
        if let Some(services) = services
            && services.get_opt(name).await?.is_some()
        {
            present += 1;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok((wall, services.map(|_| present)))
}

async fn measured(
    cluster: &mut LocalCluster,
    client: &Client,
    api: &Api<StatefulSet>,
    names: &[String],
    services: Option<&Api<Service>>,
    pause: Duration,
) -> Result<Phase> {
    let (before, writes_before) = api_metrics(client).await?;
    let own_before = webhook_own(cluster).await?;
    let (wall, present) = create_all(api, names, services, pause).await?;
    let calls = api_metrics(client).await?.0.minus(&before);
    // Background creates may still be finishing: give them a moment before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let own = webhook_own(cluster).await?.minus(own_before);
    let writes = api_metrics(client).await?.1.minus(&writes_before);
    if calls.count as usize != names.len() {
        bail!(
            "the API server counted {} webhook calls for {} creates",
            calls.count,
            names.len()
        );
    }
    Ok(Phase {
        wall,
        calls,
        own,
        writes,
        present,
    })
}

async fn run(cli: Cli) -> Result<()> {
    let webhook = cli.webhook_bin.as_deref().map_or_else(
        || "debug build next to this binary".to_owned(),
        |b| b.display().to_string(),
    );
    println!(
        "webhook: {webhook} {}; pause between creates: {} ms",
        cli.webhook_args.join(" "),
        cli.pause_ms
    );
    let mut cluster = LocalCluster::start(ClusterOptions {
        webhook: Some(WebhookOptions {
            bin: cli.webhook_bin.clone(),
            extra_args: cli.webhook_args.clone(),
            ..WebhookOptions::default()
        }),
        controller_manager_args: cli.controller_manager_args.clone(),
        ..ClusterOptions::default()
    })
    .await
    .context("starting the local control plane with sts-webhook")?;
    let result = bench(&mut cluster, &cli).await;
    cluster.shutdown(false).await;
    result
}

async fn bench(cluster: &mut LocalCluster, cli: &Cli) -> Result<()> {
    let client = cluster.client();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?,
        )
        .await?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let pause = Duration::from_millis(cli.pause_ms);
    let mut rows: Vec<(usize, Phase, Phase, Duration)> = Vec::new();
    for round in 0..cli.rounds {
        let names = |p: &str| -> Vec<String> {
            (0..cli.creates)
                .map(|i| format!("{p}{round}-{i}"))
                .collect()
        };
        let check = (!cli.no_presence_check).then_some(&services);
        let creating = measured(cluster, &client, &sets, &names("a"), check, pause).await?;

        let cached_names = names("b");
        for name in &cached_names {
            services
                .create(&PostParams::default(), &headless(name)?)
                .await?;
        }
        // The webhook's Service watch delivers them within milliseconds; give it a second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cached = measured(cluster, &client, &sets, &cached_names, None, pause).await?;
        if cached.calls.count as usize != cli.creates {
            bail!("cache-hit phase saw {} calls", cached.calls.count);
        }

        configs
            .delete(CONFIGURATION_NAME, &DeleteParams::default())
            .await
            .context("removing the webhook configuration")?;
        // The API server drops the webhook asynchronously; wait until a create is not mutated.
        let probe = statefulset("probe")?;
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let begin = Instant::now();
        while sets
            .create(&dry_run, &probe)
            .await?
            .spec
            .and_then(|s| s.service_name)
            .is_some_and(|n| !n.is_empty())
        {
            if begin.elapsed() > Duration::from_secs(30) {
                bail!("the API server still calls the webhook 30 s after its configuration went");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (bare, _) = create_all(&sets, &names("c"), None, pause).await?;
        let webhook = cluster
            .webhook()
            .context("the cluster runs without its webhook")?;
        webhook.register(&client).await?;
        rows.push((round + 1, creating, cached, bare));
    }
    print_report(cli, &rows);
    Ok(())
}

fn ms(d: f64) -> String {
    format!("{:.2}", d * 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One round: its number, the phase creating Services, the phase with Services cached, and the
/// wall time of the same creates with no webhook.
type Row = (usize, Phase, Phase, Duration);

fn print_report(cli: &Cli, rows: &[Row]) {
    println!(
        "{} sequential StatefulSet creates per phase, {} rounds; latency = the API server's own histogram of its calls to {WEBHOOK_NAME}",
        cli.creates, cli.rounds
    );
    println!(
        "(own ms: the webhook's handler alone, its own histogram; create ms: its Service create calls; svc at return: a GET right after the create found the Service)"
    );
    println!(
        "round  phase            calls  mean ms  <=5 ms  <=25 ms  wall s  wall / no webhook  own ms  create ms  svc at return"
    );
    for (round, creating, cached, bare) in rows {
        for (label, p) in [("creates Service", creating), ("Service cached", cached)] {
            println!(
                "{round:<5}  {label:<15}  {:>5}  {:>7}  {:>5.1}%  {:>6.1}%  {:>6.2}  {:>17.2}  {:>6}  {:>9}  {:>13}",
                p.calls.count,
                ms(p.calls.sum / p.calls.count),
                100.0 * p.calls.share_within(0.005),
                100.0 * p.calls.share_within(0.025),
                p.wall.as_secs_f64(),
                p.wall.as_secs_f64() / bare.as_secs_f64(),
                p.own.handler.mean_ms(),
                p.own.creates.mean_ms(),
                p.present.map_or_else(
                    || "-".to_owned(),
                    |n| format!("{:.1}%", 100.0 * n as f64 / p.calls.count)
                ),
            );
            let per_create: Vec<String> = p
                .writes
                .0
                .iter()
                .map(|(k, n)| format!("{k} {:.2}", n / p.calls.count))
                .collect();
            println!("       writes per create: {}", per_create.join(", "));
        }
        println!(
            "{round:<5}  {:<15}  {:>5}  {:>7}  {:>6}  {:>7}  {:>6.2}  {:>17.2}",
            "no webhook",
            "-",
            "-",
            "-",
            "-",
            bare.as_secs_f64(),
            1.0
        );
    }
    let pick = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(f).collect());
    // "-" when not checked (--no-presence-check).
    let at_return = if rows.iter().all(|r| r.1.present.is_some()) {
        format!(
            "{:.1}%",
            100.0 * pick(&|r| r.1.present.unwrap_or(0) as f64 / r.1.calls.count)
        )
    } else {
        "-".to_owned()
    };
    println!(
        "median  creates Service: mean {} ms, {:.1}% <= 5 ms, wall {:.2}x, Service at return {at_return}; Service cached: mean {} ms, {:.1}% <= 5 ms, wall {:.2}x",
        ms(pick(&|r| r.1.calls.sum / r.1.calls.count)),
        100.0 * pick(&|r| r.1.calls.share_within(0.005)),
        pick(&|r| r.1.wall.as_secs_f64() / r.3.as_secs_f64()),
        ms(pick(&|r| r.2.calls.sum / r.2.calls.count)),
        100.0 * pick(&|r| r.2.calls.share_within(0.005)),
        pick(&|r| r.2.wall.as_secs_f64() / r.3.as_secs_f64()),
    );
}
