//! StatefulSet revision history: ControllerRevisions parsed, ordered and joined
//! with the StatefulSet's status and pods, plus the rollback plan.
//!
//! Facts this module relies on (verified on a real v1.20 apiserver):
//! - a StatefulSet's ControllerRevision `data` is `{"spec":{"template":{…,"$patch":"replace"}}}`,
//!   i.e. only the pod template, applied as a strategic merge patch on rollback;
//! - revision names are `<sts>-<hash>`; `status.currentRevision` / `status.updateRevision` and the
//!   pods' `controller-revision-hash` label all carry the *full* name;
//! - the controller copies the StatefulSet's annotations onto each new revision, so
//!   `kubernetes.io/change-cause` is read from the revision itself;
//! - revision numbers are not stable: when the template becomes equal to an older revision, the
//!   controller renumbers that revision to max+1 instead of creating a new one.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::objects::{is_controlled_by, pod_revision};

/// Annotation kubectl (`--record`) and users set to explain a change.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// Revision argument meaning "the StatefulSet's spec.template as it is now".
pub const LIVE: &str = "live";

/// Something wrong with a revision or a user's revision argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    #[error(
        "unknown revision {requested:?} of StatefulSet {statefulset:?}; known revisions: {}",
        known_list(.known)
    )]
    Unknown {
        statefulset: String,
        requested: String,
        /// Existing revision numbers, ascending.
        known: Vec<i64>,
    },

    #[error(
        "revision {requested:?} of StatefulSet {statefulset:?} is ambiguous: it matches {}",
        .matches.join(", ")
    )]
    Ambiguous {
        statefulset: String,
        requested: String,
        matches: Vec<String>,
    },

    #[error(
        "StatefulSet {statefulset:?} has no revision before revision {number}: nothing to roll back to"
    )]
    NoPrevious { statefulset: String, number: i64 },

    #[error("StatefulSet {statefulset:?} has no ControllerRevisions")]
    Empty { statefulset: String },

    #[error("ControllerRevision {name:?} has unreadable data: {reason}")]
    BadData { name: String, reason: String },

    #[error("StatefulSet {statefulset:?} has no spec.template")]
    NoLiveTemplate { statefulset: String },
}

/// Revision numbers as a message lists them: `1, 2, 3`, or `none`.
pub fn known_list(known: &[i64]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One ControllerRevision of a StatefulSet, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: i64,
    /// Full name, `<sts>-<hash>`.
    pub name: String,
    /// The part after `<sts>-` (the controller's hash), or the whole name if it has no such prefix.
    pub hash: String,
    pub created: Option<Timestamp>,
    pub change_cause: Option<String>,
    /// The raw `data` as stored: this is the strategic merge patch a rollback sends.
    pub data: Option<Value>,
    /// The pod template in `data`, or why it could not be read.
    pub template: Result<PodTemplateSpec, String>,
}

impl Revision {
    /// Parses one ControllerRevision that belongs to the StatefulSet named `sts_name`.
    pub fn from_controller_revision(sts_name: &str, cr: &ControllerRevision) -> Self {
        let name = cr.metadata.name.clone().unwrap_or_default();
        let hash = name
            .strip_prefix(sts_name)
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(&name)
            .to_string();
        let data = cr.data.as_ref().map(|raw| raw.0.clone());
        let template = match &data {
            Some(d) => template_from_data(d),
            None => Err("no data".to_string()),
        };
        Revision {
            number: cr.revision,
            hash,
            created: cr.metadata.creation_timestamp.as_ref().map(|t| t.0),
            change_cause: annotation(&cr.metadata, CHANGE_CAUSE_ANNOTATION),
            data,
            template,
            name,
        }
    }

    /// The pod template, or [`RevisionError::BadData`].
    pub fn pod_template(&self) -> Result<&PodTemplateSpec, RevisionError> {
        self.template
            .as_ref()
            .map_err(|reason| RevisionError::BadData {
                name: self.name.clone(),
                reason: reason.clone(),
            })
    }

    /// `revision 3 (web-6c5f8b9d4)`, used as diff header and in messages.
    pub fn label(&self) -> String {
        format!("revision {} ({})", self.number, self.name)
    }
}

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .filter(|v| !v.trim().is_empty())
        .cloned()
}

/// Extracts the pod template from a StatefulSet ControllerRevision's `data`
/// (`{"spec":{"template":{…,"$patch":"replace"}}}`), dropping the `$patch` directive.
pub fn template_from_data(data: &Value) -> Result<PodTemplateSpec, String> {
    let mut template = data
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .ok_or_else(|| "data has no spec.template".to_string())?;
    if let Some(obj) = template.as_object_mut() {
        obj.remove("$patch");
    } else {
        return Err("spec.template is not an object".to_string());
    }
    serde_json::from_value(template)
        .map_err(|e| format!("spec.template is not a pod template: {e}"))
}

/// A StatefulSet with its revisions (ascending by number) and status.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub namespace: String,
    pub statefulset: String,
    /// Ascending by revision number (never by name or age: numbers change on rollback).
    pub revisions: Vec<Revision>,
    /// `status.currentRevision`.
    pub current: Option<String>,
    /// `status.updateRevision`.
    pub update: Option<String>,
    /// The StatefulSet's `spec.template` as it is now.
    pub live: PodTemplateSpec,
}

/// Which pod template a revision argument designates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selected<'a> {
    /// The StatefulSet's current `spec.template`.
    Live(&'a PodTemplateSpec),
    Revision(&'a Revision),
}

impl Selected<'_> {
    /// Human label: `revision 3 (web-6c5f8b9d4)` or `live (spec.template of web)`.
    pub fn label(&self, statefulset: &str) -> String {
        match self {
            Selected::Live(_) => format!("live (spec.template of {statefulset})"),
            Selected::Revision(r) => r.label(),
        }
    }

    pub fn template(&self) -> Result<&PodTemplateSpec, RevisionError> {
        match self {
            Selected::Live(t) => Ok(t),
            Selected::Revision(r) => r.pod_template(),
        }
    }

    pub fn revision(&self) -> Option<&Revision> {
        match self {
            Selected::Live(_) => None,
            Selected::Revision(r) => Some(r),
        }
    }
}

/// One row of `kubectl sts history`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub number: i64,
    pub name: String,
    pub created: Option<Timestamp>,
    /// Pods of this StatefulSet whose `controller-revision-hash` is this revision.
    pub pods: usize,
    pub current: bool,
    pub update: bool,
    pub change_cause: Option<String>,
    pub summary: String,
}

/// What `rollback` would do.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan<'a> {
    pub target: &'a Revision,
    /// The target's pod template (what `spec.template` becomes).
    pub template: &'a PodTemplateSpec,
    /// The strategic merge patch to send: the revision's `data`, as kubectl does.
    pub patch: &'a Value,
    /// The live template already equals the target: nothing to do.
    pub already_live: bool,
    /// The number the target will carry after the controller processes the rollback
    /// (max+1, unless it already is the highest revision).
    pub new_number: i64,
}

impl RollbackPlan<'_> {
    /// True when applying the plan makes the controller renumber the target revision.
    pub fn renumbers(&self) -> bool {
        self.new_number != self.target.number
    }
}

impl History {
    /// Builds the history from the StatefulSet and the ControllerRevisions listed with its
    /// selector; revisions not controlled by this StatefulSet are ignored (as kubectl does).
    /// `revisions` may be any ControllerRevisions, or references to them (e.g. those
    /// [`crate::index::RevisionsByOwner`] found); only those `sts` controls are kept.
    pub fn new<R: Borrow<ControllerRevision>>(
        sts: &StatefulSet,
        revisions: &[R],
    ) -> Result<Self, RevisionError> {
        let statefulset = sts.metadata.name.clone().unwrap_or_default();
        let live = sts
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .ok_or_else(|| RevisionError::NoLiveTemplate {
                statefulset: statefulset.clone(),
            })?;
        let mut revs: Vec<Revision> = revisions
            .iter()
            .map(Borrow::borrow)
            .filter(|cr| is_controlled_by(&cr.metadata, sts))
            .map(|cr| Revision::from_controller_revision(&statefulset, cr))
            .collect();
        // Ties cannot happen in a healthy cluster; the name keeps the order deterministic anyway.
        revs.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.name.cmp(&b.name)));
        let status = sts.status.as_ref();
        Ok(History {
            namespace: sts.metadata.namespace.clone().unwrap_or_default(),
            statefulset,
            revisions: revs,
            current: status.and_then(|s| s.current_revision.clone()),
            update: status.and_then(|s| s.update_revision.clone()),
            live,
        })
    }

    pub fn numbers(&self) -> Vec<i64> {
        self.revisions.iter().map(|r| r.number).collect()
    }

    pub fn by_number(&self, number: i64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.number == number)
    }

    pub fn by_name(&self, name: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.name == name)
    }

    /// The revision number of a full revision name (e.g. a pod's label), if it is in the history.
    pub fn number_of(&self, name: &str) -> Option<i64> {
        self.by_name(name).map(|r| r.number)
    }

    /// The revision a pod runs, by its `controller-revision-hash` label.
    pub fn pod_revision(&self, pod: &Pod) -> Option<&Revision> {
        pod_revision(pod).and_then(|n| self.by_name(n))
    }

    pub fn current_revision(&self) -> Option<&Revision> {
        self.current.as_deref().and_then(|n| self.by_name(n))
    }

    pub fn update_revision(&self) -> Option<&Revision> {
        self.update.as_deref().and_then(|n| self.by_name(n))
    }

    /// The highest-numbered revision.
    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// The highest-numbered revision below `number`.
    pub fn previous_of(&self, number: i64) -> Option<&Revision> {
        self.revisions.iter().rev().find(|r| r.number < number)
    }

    /// Pods per revision name, counting only pods this StatefulSet controls.
    pub fn pod_counts(&self, sts: &StatefulSet, pods: &[Pod]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for pod in pods.iter().filter(|p| is_controlled_by(&p.metadata, sts)) {
            if let Some(name) = pod_revision(pod) {
                *counts.entry(name.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// One-line summary of what `rev` changed compared with the revision numbered just below it.
    pub fn summary(&self, rev: &Revision) -> String {
        let Ok(template) = rev.template.as_ref() else {
            return "unreadable revision data".to_string();
        };
        match self.previous_of(rev.number).map(|p| p.template.as_ref()) {
            None => first_summary(rev.number, template),
            Some(Err(_)) => "previous revision unreadable".to_string(),
            Some(Ok(prev)) => summarize_change(prev, template),
        }
    }

    /// The rows of `kubectl sts history`, ascending by number.
    pub fn entries(&self, sts: &StatefulSet, pods: &[Pod]) -> Vec<HistoryEntry> {
        let counts = self.pod_counts(sts, pods);
        self.revisions
            .iter()
            .map(|r| HistoryEntry {
                number: r.number,
                name: r.name.clone(),
                created: r.created,
                pods: counts.get(&r.name).copied().unwrap_or(0),
                current: self.current.as_deref() == Some(r.name.as_str()),
                update: self.update.as_deref() == Some(r.name.as_str()),
                change_cause: r.change_cause.clone(),
                summary: self.summary(r),
            })
            .collect()
    }

    fn unknown(&self, requested: &str) -> RevisionError {
        RevisionError::Unknown {
            statefulset: self.statefulset.clone(),
            requested: requested.to_string(),
            known: self.numbers(),
        }
    }

    /// Resolves a user's revision argument: a number (`3`), a full name (`web-6c5f8b9d4`), a hash
    /// or a unique prefix of one (`6c5f`), `live` (the StatefulSet's spec.template), `current` or
    /// `update` (the revisions named in the status).
    pub fn resolve(&self, arg: &str) -> Result<Selected<'_>, RevisionError> {
        let arg = arg.trim();
        // Keywords cannot collide with hashes: the controller's hash alphabet has no vowels.
        match arg {
            LIVE => return Ok(Selected::Live(&self.live)),
            "current" => {
                return self
                    .current_revision()
                    .map(Selected::Revision)
                    .ok_or_else(|| self.unknown(arg));
            }
            "update" => {
                return self
                    .update_revision()
                    .map(Selected::Revision)
                    .ok_or_else(|| self.unknown(arg));
            }
            _ => {}
        }
        if let Ok(n) = arg.parse::<i64>() {
            // A number never falls back to a hash prefix: `7` must not silently mean `web-7b8…`.
            // Only a whole all-digit hash (rare, but possible) is still accepted.
            return self
                .by_number(n)
                .or_else(|| self.revisions.iter().find(|r| r.hash == arg))
                .map(Selected::Revision)
                .ok_or_else(|| self.unknown(arg));
        }
        if let Some(r) = self
            .by_name(arg)
            .or_else(|| self.revisions.iter().find(|r| r.hash == arg))
        {
            return Ok(Selected::Revision(r));
        }
        if arg.is_empty() {
            return Err(self.unknown(arg));
        }
        let matches: Vec<&Revision> = self
            .revisions
            .iter()
            .filter(|r| r.hash.starts_with(arg))
            .collect();
        match matches.as_slice() {
            [one] => Ok(Selected::Revision(one)),
            [] => Err(self.unknown(arg)),
            many => Err(RevisionError::Ambiguous {
                statefulset: self.statefulset.clone(),
                requested: arg.to_string(),
                matches: many.iter().map(|r| r.label()).collect(),
            }),
        }
    }

    /// The two templates `diff` compares when the user names none: current → update revision
    /// during a rollout, otherwise previous → latest revision. With a single revision both sides
    /// are that revision (an empty diff).
    pub fn default_diff(&self) -> Result<(Selected<'_>, Selected<'_>), RevisionError> {
        if let (Some(c), Some(u)) = (self.current_revision(), self.update_revision())
            && c.name != u.name
        {
            return Ok((Selected::Revision(c), Selected::Revision(u)));
        }
        let latest = self.latest().ok_or_else(|| RevisionError::Empty {
            statefulset: self.statefulset.clone(),
        })?;
        let from = self.previous_of(latest.number).unwrap_or(latest);
        Ok((Selected::Revision(from), Selected::Revision(latest)))
    }

    /// The rollback kubectl `rollout undo` would perform. `to` = a revision argument (see
    /// [`History::resolve`]; `live` is refused); `None` = the revision just below the update
    /// revision (kubectl: the second-highest revision).
    pub fn plan_rollback(&self, to: Option<&str>) -> Result<RollbackPlan<'_>, RevisionError> {
        let latest = self.latest().ok_or_else(|| RevisionError::Empty {
            statefulset: self.statefulset.clone(),
        })?;
        let target = match to {
            Some(arg) => match self.resolve(arg)? {
                Selected::Revision(r) => r,
                Selected::Live(_) => return Err(self.unknown(arg)),
            },
            None => {
                let from = self.update_revision().unwrap_or(latest);
                self.previous_of(from.number)
                    .ok_or_else(|| RevisionError::NoPrevious {
                        statefulset: self.statefulset.clone(),
                        number: from.number,
                    })?
            }
        };
        let template = target.pod_template()?;
        let patch = target.data.as_ref().ok_or_else(|| RevisionError::BadData {
            name: target.name.clone(),
            reason: "no data".to_string(),
        })?;
        let new_number = if target.number == latest.number {
            target.number
        } else {
            latest.number + 1
        };
        Ok(RollbackPlan {
            target,
            template,
            patch,
            already_live: *template == self.live,
            new_number,
        })
    }
}

/// Summary of the lowest revision kept: its images. Only revision 1 is really the initial one;
/// older revisions may have been pruned (revisionHistoryLimit) or renumbered away.
fn first_summary(number: i64, t: &PodTemplateSpec) -> String {
    let images: Vec<String> = containers(t)
        .iter()
        .filter_map(|c| c.image.clone())
        .collect();
    let images = if images.is_empty() {
        "no images".to_string()
    } else {
        images.join(", ")
    };
    if number == 1 {
        format!("initial: {images}")
    } else {
        format!("oldest kept: {images}")
    }
}

fn containers(t: &PodTemplateSpec) -> Vec<&Container> {
    t.spec
        .as_ref()
        .map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
                .collect()
        })
        .unwrap_or_default()
}

fn to_map(v: impl serde::Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// Keys whose values differ between two JSON objects, in sorted order.
fn changed_keys(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// One-line description of what changed from `prev` to `cur`, e.g.
/// `image nginx:1.19 → nginx:1.20; env changed`.
pub fn summarize_change(prev: &PodTemplateSpec, cur: &PodTemplateSpec) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !items.contains(&s) {
            items.push(s);
        }
    };

    let old_c = containers(prev);
    let new_c = containers(cur);
    // Name the container only when there is more than one, to keep the common case short.
    let multi = old_c.len() > 1 || new_c.len() > 1;
    for c in &new_c {
        let prefix = if multi {
            format!("{}: ", c.name)
        } else {
            String::new()
        };
        match old_c.iter().find(|o| o.name == c.name) {
            None => push(format!(
                "container {} added ({})",
                c.name,
                c.image.as_deref().unwrap_or("no image")
            )),
            Some(o) => {
                let mut keys = changed_keys(&to_map(o), &to_map(c));
                // The image is what people look for first.
                keys.sort_by_key(|k| k != "image");
                for key in keys {
                    push(match key.as_str() {
                        "image" => format!(
                            "{prefix}image {} → {}",
                            o.image.as_deref().unwrap_or("<none>"),
                            c.image.as_deref().unwrap_or("<none>")
                        ),
                        "env" | "envFrom" => format!("{prefix}env changed"),
                        "resources" | "resizePolicy" => format!("{prefix}resources changed"),
                        "command" | "args" => format!("{prefix}command changed"),
                        "livenessProbe" | "readinessProbe" | "startupProbe" => {
                            format!("{prefix}probes changed")
                        }
                        "volumeMounts" | "volumeDevices" => {
                            format!("{prefix}volume mounts changed")
                        }
                        other => format!("{prefix}{other} changed"),
                    });
                }
            }
        }
    }
    for o in &old_c {
        if !new_c.iter().any(|c| c.name == o.name) {
            push(format!("container {} removed", o.name));
        }
    }

    let old_meta = to_map(&prev.metadata);
    let new_meta = to_map(&cur.metadata);
    for key in changed_keys(&old_meta, &new_meta) {
        push(format!("{key} changed"));
    }

    let mut old_spec = to_map(&prev.spec);
    let mut new_spec = to_map(&cur.spec);
    for m in [&mut old_spec, &mut new_spec] {
        m.remove("containers");
        m.remove("initContainers");
    }
    for key in changed_keys(&old_spec, &new_spec) {
        push(format!("{key} changed"));
    }

    if items.is_empty() {
        "no template change".to_string()
    } else {
        items.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A pod template shaped like the ones a v1.20 controller stores (defaults applied).
    pub(crate) fn template_json(app: &str, image: &str) -> Value {
        json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": app}},
            "spec": {
                "containers": [{
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "name": "nginx",
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"mountPath": "/usr/share/nginx/html", "name": "www"}]
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    pub(crate) const UID: &str = "a981f84a-de83-4550-9f4c-67192fbba2fd";

    pub(crate) fn cr_with(
        name: &str,
        number: i64,
        template: Value,
        created: &str,
        uid: &str,
    ) -> ControllerRevision {
        let mut t = template;
        t["$patch"] = json!("replace");
        serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "annotations": {"kubernetes.io/change-cause": format!("set {name}")},
                "creationTimestamp": created,
                "labels": {"app": "web", "controller.kubernetes.io/hash": name.rsplit('-').next()},
                "name": name,
                "namespace": "default",
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                    "kind": "StatefulSet", "name": "web", "uid": uid
                }],
                "resourceVersion": "217",
                "uid": format!("cr-{name}")
            },
            "data": {"spec": {"template": t}},
            "revision": number
        }))
        .expect("fixture revision")
    }

    pub(crate) fn cr(name: &str, number: i64, image: &str, created: &str) -> ControllerRevision {
        cr_with(name, number, template_json("web", image), created, UID)
    }

    pub(crate) fn sts(image: &str, current: &str, update: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": 2},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "serviceName": "web",
                "template": template_json("web", image),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            },
            "status": {"currentRevision": current, "updateRevision": update, "replicas": 3}
        }))
        .expect("fixture statefulset")
    }

    pub(crate) fn pod(ordinal: u32, revision: &str, owner_uid: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("web-{ordinal}"),
                "namespace": "default",
                "labels": {
                    "app": "web",
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": format!("web-{ordinal}")
                },
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                    "kind": "StatefulSet", "name": "web", "uid": owner_uid
                }]
            }
        }))
        .expect("fixture pod")
    }

    /// Three image changes where revision 1 was renumbered to 4 by a rollback: names and ages
    /// are deliberately out of number order.
    fn rolled_back() -> (StatefulSet, Vec<ControllerRevision>) {
        let crs = vec![
            cr("web-5d4fd4b95c", 4, "nginx:1.19", "2026-11-22T03:00:00Z"),
            cr("web-7b8c9d6f5", 2, "nginx:1.20", "2026-11-22T03:10:00Z"),
            cr("web-6c5f8b9d4", 3, "nginx:1.21", "2026-11-22T03:20:00Z"),
        ];
        (sts("nginx:1.19", "web-5d4fd4b95c", "web-5d4fd4b95c"), crs)
    }

    #[test]
    fn orders_by_number_not_name_or_age() {
        let (s, crs) = rolled_back();
        let h = History::new(&s, &crs).unwrap();
        assert_eq!(h.numbers(), vec![2, 3, 4]);
        assert_eq!(h.latest().unwrap().name, "web-5d4fd4b95c");
        assert_eq!(h.previous_of(4).unwrap().name, "web-6c5f8b9d4");
        assert_eq!(h.previous_of(2), None);
        assert_eq!(h.revisions[0].hash, "7b8c9d6f5");
    }

    #[test]
    fn ignores_revisions_of_other_owners() {
        let (s, mut crs) = rolled_back();
        crs.push(cr_with(
            "web2-55b9bf69d7",
            9,
            template_json("web", "nginx:9"),
            "2026-11-22T03:00:00Z",
            "67c2859e-8505-45a2-9f1f-0c4e9a932e09",
        ));
        let mut orphan = cr("web-abc", 7, "nginx:7", "2026-11-22T03:00:00Z");
        orphan.metadata.owner_references = None;
        crs.push(orphan);
        let h = History::new(&s, &crs).unwrap();
        assert_eq!(h.numbers(), vec![2, 3, 4]);
    }

    #[test]
    fn template_strips_patch_directive_and_null_timestamp() {
        let (s, crs) = rolled_back();
        let h = History::new(&s, &crs).unwrap();
        let rev = h.by_number(4).unwrap();
        let t = rev.pod_template().unwrap();
        // Same template as the live one although the stored data has `$patch` and a null timestamp.
        assert_eq!(t, &h.live);
        assert!(rev.data.as_ref().unwrap()["spec"]["template"]["$patch"] == "replace");
        assert_eq!(
            t.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some("nginx:1.19")
        );
    }

    #[test]
    fn bad_data_is_reported_not_panicked() {
        let (s, mut crs) = rolled_back();
        crs[0].data = Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
            json!({"spec": 3}),
        ));
        crs[1].data = None;
        let h = History::new(&s, &crs).unwrap();
        let err = h.by_number(4).unwrap().pod_template().unwrap_err();
        assert!(err.to_string().contains("web-5d4fd4b95c"), "{err}");
        assert_eq!(
            h.summary(h.by_number(4).unwrap()),
            "unreadable revision data"
        );
        assert_eq!(
            h.summary(h.by_number(3).unwrap()),
            "previous revision unreadable"
        );
        assert!(matches!(
            h.plan_rollback(Some("4")),
            Err(RevisionError::BadData { .. })
        ));
        assert_eq!(
            template_from_data(&json!({"spec": {"template": []}})).unwrap_err(),
            "spec.template is not an object"
        );
    }

    #[test]
    fn current_update_and_pod_mapping() {
        let s = sts("nginx:1.21", "web-7b8c9d6f5", "web-6c5f8b9d4");
        let crs = vec![
            cr("web-7b8c9d6f5", 1, "nginx:1.20", "2026-11-22T03:10:00Z"),
            cr("web-6c5f8b9d4", 2, "nginx:1.21", "2026-11-22T03:20:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        assert_eq!(h.current_revision().unwrap().number, 1);
        assert_eq!(h.update_revision().unwrap().number, 2);
        let pods = vec![
            pod(0, "web-7b8c9d6f5", UID),
            pod(1, "web-7b8c9d6f5", UID),
            pod(2, "web-6c5f8b9d4", UID),
            // Same labels, other owner: must not be counted.
            pod(3, "web-6c5f8b9d4", "someone-else"),
        ];
        assert_eq!(h.pod_revision(&pods[2]).unwrap().number, 2);
        assert_eq!(h.number_of("web-7b8c9d6f5"), Some(1));
        assert_eq!(h.number_of("web-nope"), None);
        let counts = h.pod_counts(&s, &pods);
        assert_eq!(counts.get("web-7b8c9d6f5"), Some(&2));
        assert_eq!(counts.get("web-6c5f8b9d4"), Some(&1));

        let entries = h.entries(&s, &pods);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (
                entries[0].number,
                entries[0].pods,
                entries[0].current,
                entries[0].update
            ),
            (1, 2, true, false)
        );
        assert_eq!(
            (
                entries[1].number,
                entries[1].pods,
                entries[1].current,
                entries[1].update
            ),
            (2, 1, false, true)
        );
        assert_eq!(
            entries[1].change_cause.as_deref(),
            Some("set web-6c5f8b9d4")
        );
        assert_eq!(entries[1].summary, "image nginx:1.20 → nginx:1.21");
        assert_eq!(entries[0].summary, "initial: nginx:1.20");
    }

    #[test]
    fn resolve_accepts_number_name_hash_prefix_and_keywords() {
        let (s, crs) = rolled_back();
        let h = History::new(&s, &crs).unwrap();
        let name = |sel: Selected<'_>| sel.revision().map(|r| r.name.clone());
        assert_eq!(
            name(h.resolve("3").unwrap()).as_deref(),
            Some("web-6c5f8b9d4")
        );
        assert_eq!(
            name(h.resolve("web-7b8c9d6f5").unwrap()).as_deref(),
            Some("web-7b8c9d6f5")
        );
        assert_eq!(
            name(h.resolve("7b8c9d6f5").unwrap()).as_deref(),
            Some("web-7b8c9d6f5")
        );
        assert_eq!(
            name(h.resolve("6c5").unwrap()).as_deref(),
            Some("web-6c5f8b9d4")
        );
        assert_eq!(
            name(h.resolve("current").unwrap()).as_deref(),
            Some("web-5d4fd4b95c")
        );
        assert_eq!(
            name(h.resolve("update").unwrap()).as_deref(),
            Some("web-5d4fd4b95c")
        );
        assert!(matches!(h.resolve("live").unwrap(), Selected::Live(t) if *t == h.live));
        assert_eq!(
            h.resolve("live").unwrap().label("web"),
            "live (spec.template of web)"
        );
        assert_eq!(
            h.resolve("3").unwrap().label("web"),
            "revision 3 (web-6c5f8b9d4)"
        );
    }

    #[test]
    fn resolve_unknown_lists_known_numbers() {
        let (s, crs) = rolled_back();
        let h = History::new(&s, &crs).unwrap();
        let err = h.resolve("1").unwrap_err();
        assert_eq!(
            err,
            RevisionError::Unknown {
                statefulset: "web".into(),
                requested: "1".into(),
                known: vec![2, 3, 4]
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown revision \"1\" of StatefulSet \"web\"; known revisions: 2, 3, 4"
        );
        assert!(matches!(
            h.resolve("zzz"),
            Err(RevisionError::Unknown { .. })
        ));
        assert!(matches!(h.resolve(""), Err(RevisionError::Unknown { .. })));
        assert!(matches!(
            h.resolve("-1"),
            Err(RevisionError::Unknown { .. })
        ));
    }

    #[test]
    fn resolve_numbers_never_match_hash_prefixes() {
        let s = sts("nginx:1", "web-5d4fd4b95c", "web-5d4fd4b95c");
        let crs = vec![
            cr("web-5d4fd4b95c", 1, "nginx:1", "2026-11-22T03:00:00Z"),
            cr("web-7b8c9d6f5", 2, "nginx:2", "2026-11-22T03:00:00Z"),
            cr("web-2456789", 3, "nginx:3", "2026-11-22T03:00:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        assert_eq!(
            h.resolve("2").unwrap().revision().unwrap().name,
            "web-7b8c9d6f5"
        );
        assert!(matches!(h.resolve("7"), Err(RevisionError::Unknown { .. })));
        assert!(matches!(h.resolve("5"), Err(RevisionError::Unknown { .. })));
        // A whole all-digit hash still resolves.
        assert_eq!(h.resolve("2456789").unwrap().revision().unwrap().number, 3);
    }

    #[test]
    fn resolve_ambiguous_prefix() {
        let s = sts("nginx:1", "web-abc1", "web-abc1");
        let crs = vec![
            cr("web-abc1", 1, "nginx:1", "2026-11-22T03:00:00Z"),
            cr("web-abc2", 2, "nginx:2", "2026-11-22T03:00:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        let err = h.resolve("abc").unwrap_err();
        assert!(
            matches!(&err, RevisionError::Ambiguous { matches, .. } if matches.len() == 2),
            "{err}"
        );
    }

    #[test]
    fn default_diff_current_to_update_during_rollout() {
        let s = sts("nginx:1.21", "web-7b8c9d6f5", "web-6c5f8b9d4");
        let crs = vec![
            cr("web-aaa", 1, "nginx:1.19", "2026-11-22T03:00:00Z"),
            cr("web-7b8c9d6f5", 2, "nginx:1.20", "2026-11-22T03:10:00Z"),
            cr("web-6c5f8b9d4", 3, "nginx:1.21", "2026-11-22T03:20:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        let (from, to) = h.default_diff().unwrap();
        assert_eq!(from.revision().unwrap().number, 2);
        assert_eq!(to.revision().unwrap().number, 3);
    }

    #[test]
    fn default_diff_previous_to_latest_when_settled() {
        let (s, crs) = rolled_back();
        let h = History::new(&s, &crs).unwrap();
        let (from, to) = h.default_diff().unwrap();
        assert_eq!(from.revision().unwrap().number, 3);
        assert_eq!(to.revision().unwrap().number, 4);

        let single = History::new(&s, &crs[..1]).unwrap();
        let (from, to) = single.default_diff().unwrap();
        assert_eq!(from, to);
        let empty = History::new::<ControllerRevision>(&s, &[]).unwrap();
        assert!(matches!(
            empty.default_diff(),
            Err(RevisionError::Empty { .. })
        ));
    }

    #[test]
    fn rollback_default_targets_previous_and_renumbers() {
        let s = sts("nginx:1.21", "web-6c5f8b9d4", "web-6c5f8b9d4");
        let crs = vec![
            cr("web-5d4fd4b95c", 1, "nginx:1.19", "2026-11-22T03:00:00Z"),
            cr("web-7b8c9d6f5", 2, "nginx:1.20", "2026-11-22T03:10:00Z"),
            cr("web-6c5f8b9d4", 3, "nginx:1.21", "2026-11-22T03:20:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        let plan = h.plan_rollback(None).unwrap();
        assert_eq!(plan.target.number, 2);
        assert!(!plan.already_live);
        assert_eq!(plan.new_number, 4);
        assert!(plan.renumbers());
        // The patch is the stored data, `$patch: replace` included, like kubectl sends it.
        assert_eq!(plan.patch["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            plan.patch["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.20"
        );

        let plan = h.plan_rollback(Some("1")).unwrap();
        assert_eq!((plan.target.number, plan.new_number), (1, 4));
    }

    #[test]
    fn rollback_to_live_template_is_a_no_op() {
        let s = sts("nginx:1.21", "web-6c5f8b9d4", "web-6c5f8b9d4");
        let crs = vec![
            cr("web-7b8c9d6f5", 1, "nginx:1.20", "2026-11-22T03:10:00Z"),
            cr("web-6c5f8b9d4", 2, "nginx:1.21", "2026-11-22T03:20:00Z"),
        ];
        let h = History::new(&s, &crs).unwrap();
        let plan = h.plan_rollback(Some("2")).unwrap();
        assert!(plan.already_live);
        // Already the highest revision: the controller keeps its number.
        assert_eq!(plan.new_number, 2);
        assert!(!plan.renumbers());
        assert!(matches!(
            h.plan_rollback(Some("live")),
            Err(RevisionError::Unknown { .. })
        ));
        assert!(
            matches!(h.plan_rollback(Some("9")), Err(RevisionError::Unknown { known, .. }) if known == vec![1, 2])
        );
    }

    #[test]
    fn rollback_needs_an_earlier_revision() {
        let s = sts("nginx:1.21", "web-6c5f8b9d4", "web-6c5f8b9d4");
        let crs = vec![cr("web-6c5f8b9d4", 1, "nginx:1.21", "2026-11-22T03:20:00Z")];
        let h = History::new(&s, &crs).unwrap();
        let err = h.plan_rollback(None).unwrap_err();
        assert_eq!(
            err,
            RevisionError::NoPrevious {
                statefulset: "web".into(),
                number: 1
            }
        );
        assert!(matches!(
            History::new::<ControllerRevision>(&s, &[])
                .unwrap()
                .plan_rollback(None),
            Err(RevisionError::Empty { .. })
        ));
    }

    fn after_sts() -> StatefulSet {
        sts("nginx:1.20", "web-b", "web-b")
    }

    /// After `rollback` the controller renumbers: the history built from the new objects
    /// orders the renumbered revision last and the default rollback target moves accordingly.
    #[test]
    fn history_after_renumbering() {
        let before = History::new(
            &sts("nginx:1.21", "web-c", "web-c"),
            &[
                cr("web-a", 1, "nginx:1.19", "2026-11-22T03:00:00Z"),
                cr("web-b", 2, "nginx:1.20", "2026-11-22T03:10:00Z"),
                cr("web-c", 3, "nginx:1.21", "2026-11-22T03:20:00Z"),
            ],
        )
        .unwrap();
        let plan = before.plan_rollback(None).unwrap();
        assert_eq!((plan.target.name.as_str(), plan.new_number), ("web-b", 4));

        let after = History::new(
            &after_sts(),
            &[
                cr("web-a", 1, "nginx:1.19", "2026-11-22T03:00:00Z"),
                cr(
                    "web-b",
                    plan.new_number,
                    "nginx:1.20",
                    "2026-11-22T03:10:00Z",
                ),
                cr("web-c", 3, "nginx:1.21", "2026-11-22T03:20:00Z"),
            ],
        )
        .unwrap();
        assert_eq!(after.numbers(), vec![1, 3, 4]);
        assert_eq!(
            after.summary(after.by_number(1).unwrap()),
            "initial: nginx:1.19"
        );
        let pruned = History::new(
            &after_sts(),
            &[cr("web-c", 3, "nginx:1.21", "2026-11-22T03:20:00Z")],
        )
        .unwrap();
        assert_eq!(
            pruned.summary(pruned.by_number(3).unwrap()),
            "oldest kept: nginx:1.21"
        );
        assert_eq!(
            after.summary(after.by_number(4).unwrap()),
            "image nginx:1.21 → nginx:1.20"
        );
        assert_eq!(after.plan_rollback(None).unwrap().target.name, "web-c");
    }

    fn parse(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn summary_names_env_resources_and_other_fields() {
        let base = template_json("web", "nginx:1.19");
        let mut changed = base.clone();
        changed["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        changed["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}});
        changed["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        changed["metadata"]["annotations"] = json!({"x": "y"});
        assert_eq!(
            summarize_change(&parse(base.clone()), &parse(changed)),
            "env changed; resources changed; annotations changed; nodeSelector changed"
        );
        assert_eq!(
            summarize_change(&parse(base.clone()), &parse(base.clone())),
            "no template change"
        );
        let mut env_and_image = base.clone();
        env_and_image["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        env_and_image["spec"]["containers"][0]["image"] = json!("nginx:1.20");
        assert_eq!(
            summarize_change(&parse(base), &parse(env_and_image)),
            "image nginx:1.19 → nginx:1.20; env changed"
        );
    }

    #[test]
    fn summary_with_several_containers_names_them() {
        let base = template_json("web", "nginx:1.19");
        let mut two = base.clone();
        let mut sidecar = base["spec"]["containers"][0].clone();
        sidecar["name"] = json!("sidecar");
        sidecar["image"] = json!("busybox:1.36");
        two["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(sidecar);
        assert_eq!(
            summarize_change(&parse(base.clone()), &parse(two.clone())),
            "container sidecar added (busybox:1.36)"
        );
        let mut bumped = two.clone();
        bumped["spec"]["containers"][1]["image"] = json!("busybox:1.37");
        assert_eq!(
            summarize_change(&parse(two.clone()), &parse(bumped)),
            "sidecar: image busybox:1.36 → busybox:1.37"
        );
        assert_eq!(
            summarize_change(&parse(two), &parse(base)),
            "container sidecar removed"
        );
    }

    /// Objects captured from the project's local v1.20.2 control plane (`sts-cluster up`) after
    /// nginx:1.19 → 1.20 → 1.21 and `kubectl sts rollback web --to-revision 1 --yes`; managedFields
    /// and last-applied annotations removed. The apiserver lists revisions by name, not number.
    const REAL_V1_20: &str = include_str!("../testdata/v1.20-after-rollback.json");

    #[test]
    fn real_objects_after_rollback() {
        let v: Value = serde_json::from_str(REAL_V1_20).unwrap();
        let s: StatefulSet = serde_json::from_value(v["statefulset"].clone()).unwrap();
        let crs: Vec<ControllerRevision> =
            serde_json::from_value(v["controllerRevisions"].clone()).unwrap();
        let pods: Vec<Pod> = serde_json::from_value(v["pods"].clone()).unwrap();
        let h = History::new(&s, &crs).unwrap();
        // Revision 1 (web-8b969f588) was renumbered to 4 by the rollback.
        assert_eq!(h.numbers(), vec![2, 3, 4]);
        assert_eq!(h.latest().unwrap().name, "web-8b969f588");
        // The live template equals the stored revision although the stored data carries
        // `$patch` and `creationTimestamp: null`.
        assert_eq!(h.latest().unwrap().pod_template().unwrap(), &h.live);
        assert!(matches!(h.resolve("live").unwrap(), Selected::Live(_)));
        let entries = h.entries(&s, &pods);
        let row = |n: i64| entries.iter().find(|e| e.number == n).unwrap();
        assert_eq!(
            (row(4).pods, row(4).current, row(4).update),
            (3, true, true)
        );
        assert_eq!(row(3).pods, 0);
        assert_eq!(
            row(3).change_cause.as_deref(),
            Some("nginx 1.21 + resources")
        );
        assert_eq!(
            row(3).summary,
            "image nginx:1.20 → nginx:1.21; resources changed"
        );
        assert_eq!(
            row(4).summary,
            "image nginx:1.21 → nginx:1.19; resources changed"
        );
        assert_eq!(row(2).summary, "oldest kept: nginx:1.20");
        let plan = h.plan_rollback(None).unwrap();
        assert_eq!(
            (plan.target.number, plan.new_number, plan.already_live),
            (3, 5, false)
        );
        assert!(h.plan_rollback(Some("8b969f588")).unwrap().already_live);
    }
}
