//! Pure StatefulSet logic shared by `kubectl-sts` and `sts-webhook`.
//!
//! Everything here is a function over k8s-openapi types (or, for the webhook's
//! watch caches, the compact types of [`cached`] that stand in for them): no tokio,
//! no kube client, no HTTP. That keeps the Kubernetes rules (naming, revisions,
//! partitions, orphan classification, the headless Service, the serviceName
//! patch) in one place where they are unit-tested without a cluster.
//!
//! Grouped by concept, not by which program uses it:

// --- objects and the facts read off them; names and quantities ---
pub mod age;
pub mod index;
pub mod naming;
pub mod objects;
pub mod quantity;

// --- revisions and rollouts ---
pub mod diff;
pub mod progress;
pub mod revision;
pub mod rollout;

// --- claims ---
pub mod orphans;
pub mod resize;

// --- the governing Service: its health, DNS, the Service to create, admission, reconciling ---
pub mod cached;
pub mod dns;
pub mod headless;
pub mod mutation;
pub mod reconcile;
pub mod review;
pub mod service_health;

// --- test support: real-shaped object builders ---
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

#[cfg(test)]
mod properties;
