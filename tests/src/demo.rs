//! The walkthrough that `make demo` replays against the local control plane: real objects, real
//! controllers, real `kubectl sts` output at each step.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::io::AsyncWriteExt;

use crate::error::{HarnessError, Result};

/// Namespace the demo works in.
pub const NAMESPACE: &str = "sts-demo";
const WAIT: Duration = Duration::from_secs(180);

const NGINX: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: nginx-stateful
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx-stateful
  template:
    metadata:
      labels:
        app: nginx-stateful
    spec:
      containers:
      - name: nginx
        image: nginx:1.19
        ports:
        - name: web
          containerPort: 80
";

const VISIT: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: visit-cnt-stfs
spec:
  serviceName: visit-cnt-stfs-svc
  replicas: 2
  selector:
    matchLabels:
      app: visit-cnt
  template:
    metadata:
      labels:
        app: visit-cnt
    spec:
      containers:
      - name: counter
        image: redis:6.2
        ports:
        - name: redis
          containerPort: 6379
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
";

/// Runs commands the way a user would type them, printing each one first.
pub struct Demo {
    client: Client,
    env: Vec<(String, OsString)>,
    kubectl: std::path::PathBuf,
    color: bool,
}

impl Demo {
    pub fn new(client: Client, env: Vec<(String, OsString)>, kubectl: std::path::PathBuf) -> Self {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal();
        Self {
            client,
            env,
            kubectl,
            color,
        }
    }

    fn step(&self, title: &str) {
        println!("\n{}", self.paint("1", &format!("==> {title}")));
    }

    /// ANSI style only when stdout is a terminal (not in CI logs or pipes).
    fn paint(&self, sgr: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `kubectl ARGS…` (optionally fed `stdin`), output straight to the terminal.
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<()> {
        println!(
            "{}",
            self.paint("36", &format!("$ kubectl {}", args.join(" ")))
        );
        let mut cmd = tokio::process::Command::new(&self.kubectl);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| HarnessError::io(format!("cannot run {}", self.kubectl.display()), e))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(|e| HarnessError::io("writing to kubectl", e))?;
        }
        let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("kubectl {}", args.join(" ")),
                secs: 120,
            })?
            .map_err(|e| HarnessError::io("waiting for kubectl", e))?;
        if !status.success() {
            return Err(HarnessError::setup(
                format!("kubectl {}", args.join(" ")),
                format!("exited with {status}"),
            ));
        }
        Ok(())
    }

    async fn apply(&self, manifest: &str, note: &str) -> Result<()> {
        println!("{note}");
        for line in manifest.lines() {
            println!("    {line}");
        }
        // Before 1.33 the OpenAPI schema calls serviceName required, so kubectl's validation
        // refuses the manifest that the server itself accepts; from 1.33 it is optional.
        let minor = self
            .client
            .apiserver_version()
            .await
            .ok()
            .and_then(|v| v.minor.trim_end_matches('+').parse::<u32>().ok());
        let mut args = vec!["apply"];
        if minor.is_none_or(|m| m < 33) {
            args.push("--validate=false");
        }
        args.extend(["-n", NAMESPACE, "-f", "-"]);
        self.kubectl(&args, Some(manifest)).await
    }

    /// `kubectl scale`, shown to the viewer, then waits for the pods to settle.
    async fn scale(&self, name: &str, replicas: i32) -> Result<()> {
        let replicas_flag = format!("--replicas={replicas}");
        self.kubectl(
            &[
                "scale",
                "statefulset",
                name,
                "-n",
                NAMESPACE,
                &replicas_flag,
            ],
            None,
        )
        .await?;
        self.settle(name, replicas).await
    }

    /// Waits until the StatefulSet has exactly `replicas` pods, all Ready and on the update revision.
    async fn settle(&self, name: &str, replicas: i32) -> Result<()> {
        let sts_api: Api<StatefulSet> = Api::namespaced(self.client.clone(), NAMESPACE);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let begin = Instant::now();
        print!("   (waiting for {name}: {replicas} ready pods on the update revision …");
        loop {
            let sts = sts_api
                .get(name)
                .await
                .map_err(|e| HarnessError::kube(format!("reading StatefulSet {name}"), e))?;
            let selector = sts
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let pod_count = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| HarnessError::kube(format!("listing pods of {name}"), e))?
                .items
                .len();
            let generation = sts.metadata.generation.unwrap_or_default();
            let settled = sts.status.as_ref().is_some_and(|s| {
                s.observed_generation.unwrap_or_default() >= generation
                    && s.ready_replicas.unwrap_or_default() == replicas
                    && s.updated_replicas.unwrap_or_default() == replicas
                    && s.current_revision == s.update_revision
            }) && pod_count == usize::try_from(replicas).unwrap_or_default();
            if settled {
                println!(" {:.0}s)", begin.elapsed().as_secs_f32());
                return Ok(());
            }
            if begin.elapsed() > WAIT {
                println!();
                return Err(HarnessError::Timeout {
                    what: format!("StatefulSet {name} to settle at {replicas}"),
                    secs: WAIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The whole walkthrough.
    pub async fn run(&self) -> Result<()> {
        self.step("A namespace for the demo");
        self.kubectl(&["create", "namespace", NAMESPACE], None)
            .await?;

        self.step("1. nginx-stateful: 3 replicas, no serviceName, no Service");
        self.apply(
            NGINX,
            "The manifest has no spec.serviceName, and no Service exists:",
        )
        .await?;
        self.settle("nginx-stateful", 3).await?;
        println!("sts-webhook injected spec.serviceName and created a headless Service:");
        self.kubectl(
            &[
                "get",
                "statefulset",
                "nginx-stateful",
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.spec.serviceName}{\"\\n\"}",
            ],
            None,
        )
        .await?;
        self.kubectl(
            &[
                "get",
                "service",
                "-n",
                NAMESPACE,
                "-o",
                "wide",
                "--show-labels",
            ],
            None,
        )
        .await?;
        self.kubectl(&["sts", "list", "-n", NAMESPACE], None)
            .await?;
        self.kubectl(&["sts", "inspect", "nginx-stateful", "-n", NAMESPACE], None)
            .await?;

        self.step("2. visit-cnt-stfs with a claim template `data`: scale 2 → 4 → 2");
        self.apply(
            VISIT,
            "serviceName visit-cnt-stfs-svc (no such Service yet) and one claim template `data`:",
        )
        .await?;
        self.settle("visit-cnt-stfs", 2).await?;
        self.scale("visit-cnt-stfs", 4).await?;
        self.kubectl(&["sts", "inspect", "visit-cnt-stfs", "-n", NAMESPACE], None)
            .await?;
        self.scale("visit-cnt-stfs", 2).await?;
        println!("The pods are gone, their claims are not:");
        self.kubectl(&["get", "pvc", "-n", NAMESPACE], None).await?;
        self.kubectl(&["sts", "orphans", "-n", NAMESPACE], None)
            .await?;

        self.step("3. A new image for nginx-stateful: rolling update, history, diff");
        self.kubectl(
            &[
                "set",
                "image",
                "statefulset/nginx-stateful",
                "-n",
                NAMESPACE,
                "nginx=nginx:1.20",
            ],
            None,
        )
        .await?;
        self.settle("nginx-stateful", 3).await?;
        self.kubectl(&["sts", "history", "nginx-stateful", "-n", NAMESPACE], None)
            .await?;
        self.kubectl(
            &["sts", "diff", "nginx-stateful", "1", "2", "-n", NAMESPACE],
            None,
        )
        .await?;
        self.kubectl(&["sts", "list", "-n", NAMESPACE], None)
            .await?;
        Ok(())
    }
}
