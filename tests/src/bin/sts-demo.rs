//! `sts-demo`: starts the local control plane with the webhook, replays the StatefulSet
//! walkthrough with real `kubectl sts` output, and tears everything down.

use std::process::ExitCode;

use anyhow::{Context, Result};
use sts_e2e::demo::Demo;
use sts_e2e::{ClusterOptions, LocalCluster, WebhookOptions, e2e_env};

fn main() -> ExitCode {
    sts_e2e::init_tracing("sts_e2e=warn");
    // One thread: children are tied to the spawning thread's life (PR_SET_PDEATHSIG).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sts-demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sts-demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    eprintln!(
        "sts-demo: starting etcd, kube-apiserver, kube-controller-manager and sts-webhook on 127.0.0.1 …"
    );
    let opts = ClusterOptions {
        dir: None,
        webhook: Some(WebhookOptions::default()),
        ..ClusterOptions::default()
    };
    let cluster = LocalCluster::start(opts)
        .await
        .context("starting the local control plane")?;
    let env = e2e_env(&cluster, None);
    let demo = Demo::new(cluster.client(), env, cluster.binaries().kubectl());
    let outcome = tokio::select! {
        r = demo.run() => r.map_err(anyhow::Error::from),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if outcome.is_err() {
        cluster.print_logs();
    }
    let kept = cluster.shutdown(outcome.is_err()).await;
    match (&outcome, kept) {
        (Ok(()), _) => {
            println!("\nsts-demo: done; the local control plane is stopped and removed.")
        }
        (Err(_), Some(dir)) => eprintln!("sts-demo: logs kept in {}", dir.display()),
        (Err(_), None) => {}
    }
    outcome
}
