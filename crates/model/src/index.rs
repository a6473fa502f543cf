//! Objects of one LIST each, indexed once, so that joining one kind to another is a lookup and
//! never a scan of the other list.
//!
//! A view of a whole cluster joins every StatefulSet with its pods, revisions, claims, Service
//! and events. Done as "for each StatefulSet, scan the pods" the work grows with the square of
//! the cluster: at 3,101 StatefulSets, 55 % of `kubectl sts list -A`'s CPU went to such scans
//! (issue 15). The indexes here are built in one pass over each list (O(n), hash maps) and
//! answer with the same objects the scans found, in the same order as the input lists.
//!
//! Keys borrow from the objects; an object without a name or namespace is keyed by `""`, as the
//! scans compared them (`unwrap_or_default`).

use std::collections::HashMap;
use std::hash::Hash;

use k8s_openapi::Metadata;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::naming::split_ordinal;

/// `(namespace, name)` of an object, borrowed.
pub type NamespacedName<'a> = (&'a str, &'a str);

/// The `(namespace, name)` of `meta`; absent parts are `""`.
pub fn namespaced_name(meta: &ObjectMeta) -> NamespacedName<'_> {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Objects grouped under a key, each group in input order. [`Grouped::get`] of a key that has
/// no objects is the empty slice.
#[derive(Debug)]
pub struct Grouped<'a, Key, K> {
    groups: HashMap<Key, Vec<&'a K>>,
}

impl<'a, Key: Eq + Hash, K> Grouped<'a, Key, K> {
    /// Groups `items` by `key`; an item for which `key` is `None` is left out. One pass.
    pub fn new(items: &'a [K], key: impl Fn(&'a K) -> Option<Key>) -> Self {
        let mut groups: HashMap<Key, Vec<&'a K>> = HashMap::new();
        for item in items {
            if let Some(k) = key(item) {
                groups.entry(k).or_default().push(item);
            }
        }
        Grouped { groups }
    }

    /// The objects under `key`, in input order.
    pub fn get(&self, key: &Key) -> &[&'a K] {
        self.groups.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Objects by `(namespace, name)`. Names are unique per namespace in the API; if a hand-made
/// list repeats one, the first object wins, as a scan with `find` would pick it.
#[derive(Debug)]
pub struct ByName<'a, K> {
    objects: HashMap<NamespacedName<'a>, &'a K>,
}

impl<'a, K: Metadata<Ty = ObjectMeta>> ByName<'a, K> {
    pub fn new(items: &'a [K]) -> Self {
        let mut objects = HashMap::with_capacity(items.len());
        for item in items {
            objects
                .entry(namespaced_name(item.metadata()))
                .or_insert(item);
        }
        ByName { objects }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&'a K> {
        self.objects.get(&(namespace, name)).copied()
    }

    /// The object, as a slice of zero or one, for functions that take a list.
    pub fn get_slice<'r>(&'r self, namespace: &'r str, name: &'r str) -> &'r [&'a K] {
        self.objects
            .get(&(namespace, name))
            .map_or(&[], std::slice::from_ref)
    }
}

/// Pods grouped by the StatefulSet their name says they belong to: `(namespace, S)` for a pod
/// named `S-<ordinal>`. A superset of every pod that [`crate::rollout::pods_by_ordinal`] can
/// accept for `S` (it also wants a matching controller), so those functions give the same answer
/// on a group as on the whole list.
pub fn pods_by_statefulset_name(pods: &[Pod]) -> Grouped<'_, NamespacedName<'_>, Pod> {
    Grouped::new(pods, |p| {
        let (namespace, name) = namespaced_name(&p.metadata);
        Some((namespace, split_ordinal(name)?.0))
    })
}

/// The pods that may be `sts`'s (see [`pods_by_statefulset_name`]).
pub fn pods_of<'r, 'a: 'r>(
    index: &'r Grouped<'a, NamespacedName<'a>, Pod>,
    sts: &'r StatefulSet,
) -> &'r [&'a Pod] {
    let (namespace, name) = namespaced_name(&sts.metadata);
    index.get(&(namespace, name))
}

/// ControllerRevisions by their controller: by controller UID, and by controller name for the
/// StatefulSets without a UID that [`crate::objects::is_controlled_by`] matches by name.
#[derive(Debug)]
pub struct RevisionsByOwner<'a> {
    by_uid: Grouped<'a, &'a str, ControllerRevision>,
    by_name: Grouped<'a, &'a str, ControllerRevision>,
}

impl<'a> RevisionsByOwner<'a> {
    pub fn new(revisions: &'a [ControllerRevision]) -> Self {
        let controller = |cr: &'a ControllerRevision| {
            cr.metadata
                .owner_references
                .as_ref()?
                .iter()
                .find(|r| r.controller == Some(true))
        };
        RevisionsByOwner {
            by_uid: Grouped::new(revisions, |cr| Some(controller(cr)?.uid.as_str())),
            by_name: Grouped::new(revisions, |cr| {
                controller(cr)
                    .filter(|r| r.kind == "StatefulSet")
                    .map(|r| r.name.as_str())
            }),
        }
    }

    /// A superset of the revisions `is_controlled_by` accepts for `sts`, in input order.
    pub fn of<'r>(&'r self, sts: &'r StatefulSet) -> &'r [&'a ControllerRevision] {
        match sts.metadata.uid.as_deref() {
            Some(uid) => self.by_uid.get(&uid),
            None => self
                .by_name
                .get(&sts.metadata.name.as_deref().unwrap_or_default()),
        }
    }
}

/// Events by the `(namespace, name)` of the object they are about (the involved object's
/// namespace, else the event's own), for [`crate::rollout::failed_create_events`].
pub fn events_by_involved_object(events: &[Event]) -> Grouped<'_, NamespacedName<'_>, Event> {
    Grouped::new(events, |e| {
        let obj = &e.involved_object;
        Some((
            obj.namespace
                .as_deref()
                .or(e.metadata.namespace.as_deref())
                .unwrap_or_default(),
            obj.name.as_deref().unwrap_or_default(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{controller_revision, pod_for, statefulset};

    #[test]
    fn groups_keep_input_order_and_missing_keys_are_empty() {
        let web_a = statefulset("a", "web").replicas(2).build();
        let db_a = statefulset("a", "db").build();
        let web_b = statefulset("b", "web").build();
        let pods = vec![
            pod_for(&web_a, 1).build(),
            pod_for(&db_a, 0).build(),
            pod_for(&web_a, 0).build(),
            pod_for(&web_b, 0).build(),
        ];
        let index = pods_by_statefulset_name(&pods);
        let names: Vec<_> = pods_of(&index, &web_a)
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(names, ["web-1", "web-0"]);
        assert_eq!(pods_of(&index, &web_b).len(), 1);
        assert!(index.get(&("c", "web")).is_empty());
    }

    #[test]
    fn revisions_are_found_by_uid_or_by_name_without_one() {
        let sts = statefulset("a", "web").build();
        let crs = vec![
            controller_revision(&sts, "web-1", 1),
            controller_revision(&sts, "web-2", 2),
        ];
        let index = RevisionsByOwner::new(&crs);
        assert_eq!(index.of(&sts).len(), 2);
        let other = statefulset("a", "db").build();
        assert!(index.of(&other).is_empty());
    }
}
