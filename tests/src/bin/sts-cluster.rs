//! `sts-cluster`: start the local control plane (`up`), or run a command against it (`run`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sts_e2e::control::{self, Command as ControlCommand};
use sts_e2e::{ClusterOptions, LocalCluster, WebhookOptions, e2e_env, shell_quote};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    about = "Local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, simulated node) for the sts toolkit"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the cluster, print `export KUBECONFIG=…`, stay up until Ctrl-C / SIGTERM.
    Up(Common),
    /// Start the cluster, run CMD with KUBECONFIG/STS_E2E_* set, stop; exit with CMD's code.
    Run {
        #[command(flatten)]
        common: Common,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Args)]
struct Common {
    /// Working dir for certificates, etcd data and logs (kept afterwards). Default: a temp dir,
    /// removed after a successful run.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also run sts-webhook and register a URL-based MutatingWebhookConfiguration.
    #[arg(long)]
    webhook: bool,
    /// The sts-webhook binary (default: next to this executable, built if missing).
    #[arg(long, requires = "webhook")]
    webhook_bin: Option<PathBuf>,
    /// The webhook's --orphan-service-grace.
    #[arg(long, default_value = "20s")]
    orphan_service_grace: String,
    /// Keep the working dir even when everything succeeded.
    #[arg(long)]
    keep: bool,
}

impl Common {
    fn options(&self) -> ClusterOptions {
        ClusterOptions {
            dir: self.dir.clone(),
            webhook: self.webhook.then(|| WebhookOptions {
                bin: self.webhook_bin.clone(),
                orphan_service_grace: self.orphan_service_grace.clone(),
                ..WebhookOptions::default()
            }),
            ..ClusterOptions::default()
        }
    }
}

fn main() -> ExitCode {
    sts_e2e::init_tracing("sts_e2e=info,sts_cluster=info");
    let cli = Cli::parse();
    // One thread: child processes get PR_SET_PDEATHSIG, which fires when the *spawning thread*
    // exits, so every spawn must happen on a thread that lives as long as the harness.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sts-cluster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sts-cluster: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<u8> {
    let (common, command) = match cli.command {
        Cmd::Up(c) => (c, None),
        Cmd::Run { common, command } => (common, Some(command)),
    };
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let cluster = tokio::select! {
        c = LocalCluster::start(common.options()) => c.context("starting the local control plane")?,
        _ = sigint.recv() => anyhow::bail!("interrupted during startup"),
        _ = sigterm.recv() => anyhow::bail!("terminated during startup"),
    };
    let mut cluster = cluster;
    let (control_url, mut control_rx, control_task) = control::serve().await?;
    let env = e2e_env(&cluster, Some(&control_url));

    let outcome = match &command {
        None => {
            println!("export KUBECONFIG={}", shell_quote(cluster.kubeconfig()));
            println!(
                "export STS_E2E_KUBECONFIG={}",
                shell_quote(cluster.kubeconfig())
            );
            println!("export STS_E2E_MODE=local");
            println!("export {}={control_url}", control::CONTROL_URL_ENV);
            eprintln!(
                "sts-cluster: control plane up at {} (logs in {}); Ctrl-C to stop",
                cluster.api_url(),
                cluster.dir().display()
            );
            serve_until_signal(&mut cluster, &mut control_rx, &mut sigint, &mut sigterm).await
        }
        Some(argv) => {
            run_command(
                &mut cluster,
                argv,
                &env,
                &mut control_rx,
                &mut sigint,
                &mut sigterm,
            )
            .await
        }
    };
    control_task.abort();

    let (code, failed) = match &outcome {
        Ok(code) => (*code, *code != 0),
        Err(e) => {
            eprintln!("sts-cluster: error: {e:#}");
            cluster.print_logs();
            (1, true)
        }
    };
    let keep = failed || common.keep || !cluster.dir_is_temp();
    match cluster.shutdown(keep).await {
        Some(dir) if failed => eprintln!("sts-cluster: stopped; logs kept in {}", dir.display()),
        Some(dir) => eprintln!("sts-cluster: stopped; working dir {}", dir.display()),
        None => eprintln!("sts-cluster: stopped and cleaned up"),
    }
    Ok(code)
}

async fn handle_control(cluster: &mut LocalCluster, req: control::Request) {
    let client = cluster.client();
    let result = match cluster.webhook() {
        None => Err("this cluster runs without --webhook".to_owned()),
        Some(w) => match req.command {
            ControlCommand::StopWebhook => {
                w.stop().await;
                eprintln!("sts-cluster: webhook stopped (on request)");
                Ok(())
            }
            ControlCommand::StartWebhook => match w.start().await {
                Ok(()) => w
                    .register(&client)
                    .await
                    .map_err(|e| e.to_string())
                    .map(|()| {
                        eprintln!("sts-cluster: webhook started (on request)");
                    }),
                Err(e) => Err(e.to_string()),
            },
        },
    };
    let _ = req.reply.send(result);
}

fn health(cluster: &mut LocalCluster) -> Result<()> {
    cluster
        .health_check()
        .context("the local control plane failed")?;
    if let Some(w) = cluster.webhook() {
        w.ensure_running().context("sts-webhook failed")?;
    }
    Ok(())
}

async fn serve_until_signal(
    cluster: &mut LocalCluster,
    control_rx: &mut tokio::sync::mpsc::Receiver<control::Request>,
    sigint: &mut tokio::signal::unix::Signal,
    sigterm: &mut tokio::signal::unix::Signal,
) -> Result<u8> {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = sigint.recv() => return Ok(0),
            _ = sigterm.recv() => return Ok(0),
            Some(req) = control_rx.recv() => handle_control(cluster, req).await,
            _ = tick.tick() => health(cluster)?,
        }
    }
}

async fn run_command(
    cluster: &mut LocalCluster,
    argv: &[String],
    env: &[(String, std::ffi::OsString)],
    control_rx: &mut tokio::sync::mpsc::Receiver<control::Request>,
    sigint: &mut tokio::signal::unix::Signal,
    sigterm: &mut tokio::signal::unix::Signal,
) -> Result<u8> {
    let (program, args) = argv.split_first().context("no command given after --")?;
    eprintln!("sts-cluster: running {}", argv.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut interrupted = false;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for the command")?;
                let code = match status.code() {
                    Some(c) => u8::try_from(c).unwrap_or(1),
                    None => 128 + u8::try_from(std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(1)).unwrap_or(1),
                };
                if code != 0 {
                    eprintln!("sts-cluster: `{}` failed ({status})", argv.join(" "));
                    cluster.print_logs();
                }
                return Ok(if interrupted && code == 0 { 130 } else { code });
            }
            _ = sigint.recv() => { interrupted = true; terminate(&mut child, false).await; }
            _ = sigterm.recv() => { interrupted = true; terminate(&mut child, true).await; }
            Some(req) = control_rx.recv() => handle_control(cluster, req).await,
            _ = tick.tick() => {
                if let Err(e) = health(cluster) {
                    terminate(&mut child, true).await;
                    return Err(e);
                }
            }
        }
    }
}

/// Stops the command: a terminal Ctrl-C already reached it (same process group), otherwise it
/// gets SIGTERM; after 10 s it is killed.
async fn terminate(child: &mut tokio::process::Child, send_sigterm: bool) {
    if send_sigterm && let Some(pid) = child.id() {
        let _ = sts_e2e::process::signal_terminate(pid);
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
