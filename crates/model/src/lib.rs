//! Pure StatefulSet logic shared by `kubectl-sts` and `sts-webhook`.
//!
//! Everything here is a function over k8s-openapi types: no tokio, no kube
//! client, no HTTP. That keeps the Kubernetes rules (naming, revisions,
//! partitions, orphan classification, the headless Service, the serviceName
//! patch) in one place where they are unit-tested without a cluster.

// --- used by kubectl-sts ---
pub mod age;
pub mod diff;
pub mod naming;
pub mod orphans;
pub mod revision;
pub mod rollout;
pub mod service_health;

// --- used by sts-webhook ---
pub mod dns;
pub mod headless;
pub mod mutation;
pub mod reconcile;

// --- test support: real-shaped object builders ---
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
