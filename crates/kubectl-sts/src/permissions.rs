//! The RBAC permissions each `kubectl sts` command needs: one table ([`COMMANDS`]), read from
//! the requests the commands make (`cmd/*`, `target.rs`, `collect.rs`; `-v` logs each one).
//!
//! The table is the one source for three things: the rule a Forbidden error names
//! ([`grant_hint`]), the README's permissions table ([`markdown_table`], checked by a unit test),
//! and the e2e test that runs each command as a ServiceAccount bound to exactly its required
//! rules, then without each of them (`tests/tests/permissions.rs`).
//!
//! Verbs, resources and API groups are spelled as RBAC spells them (`""` is the core group).

use std::fmt::Write as _;

/// One verb on one resource of one API group, as an RBAC rule grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
}

/// A permission whose absence only degrades the output: the command warns and goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optional {
    pub permission: Permission,
    /// What is missing from the output without it.
    pub without: &'static str,
}

/// A permission needed only in some cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditional {
    pub permission: Permission,
    /// When it is needed.
    pub when: &'static str,
}

/// What one command (or one form of it, e.g. `orphans --delete`) needs.
#[derive(Debug, Clone, Copy)]
pub struct CommandPermissions {
    /// The invocation, as typed after `kubectl sts` (`NAME` for the StatefulSet).
    pub command: &'static str,
    /// Whether it takes `-A` (then every namespaced rule must be granted in all namespaces:
    /// a ClusterRole with a ClusterRoleBinding).
    pub all_namespaces: bool,
    /// Without any of these, the command fails (naming the rule).
    pub required: &'static [Permission],
    pub conditional: &'static [Conditional],
    pub optional: &'static [Optional],
    /// What `-w`/`--watch` adds (a watch is a LIST, then a WATCH, of the same resources):
    /// without one of these the command ends, naming the rule.
    pub watch: &'static [Permission],
    /// Watches `-w` goes on without (those of the optional reads).
    pub watch_optional: &'static [Permission],
}

const fn p(api_group: &'static str, resource: &'static str, verb: &'static str) -> Permission {
    Permission {
        api_group,
        resource,
        verb,
    }
}

const GET_STATEFULSETS: Permission = p("apps", "statefulsets", "get");
const LIST_STATEFULSETS: Permission = p("apps", "statefulsets", "list");
const LIST_REVISIONS: Permission = p("apps", "controllerrevisions", "list");
const LIST_PODS: Permission = p("", "pods", "list");
const LIST_CLAIMS: Permission = p("", "persistentvolumeclaims", "list");
const GET_CLAIMS: Permission = p("", "persistentvolumeclaims", "get");
const LIST_SERVICES: Permission = p("", "services", "list");
const LIST_EVENTS: Permission = p("", "events", "list");

const EVENTS: Optional = Optional {
    permission: LIST_EVENTS,
    without: "no FailedCreate warnings (Events)",
};
const VOLUMES_LISTED: Optional = Optional {
    permission: p("", "persistentvolumes", "list"),
    without: "reclaim policies shown as unknown",
};
/// Claims made by hand, without the labels the StatefulSet controller gives its claims, are
/// read by name (`target.rs` `claims_of`).
const UNLABELLED_CLAIMS: Conditional = Conditional {
    permission: GET_CLAIMS,
    when: "a claim of its templates lacks the controller's labels",
};

/// Every command that talks to the API server, one entry per form. `completion` and
/// `version` need nothing; shell completion (`kubectl_complete-sts`) lists namespaces,
/// StatefulSets and ControllerRevisions when it may, and offers nothing when it may not.
pub const COMMANDS: &[CommandPermissions] = &[
    CommandPermissions {
        command: "list",
        all_namespaces: true,
        required: &[
            LIST_STATEFULSETS,
            LIST_REVISIONS,
            LIST_PODS,
            LIST_CLAIMS,
            LIST_SERVICES,
        ],
        conditional: &[],
        optional: &[EVENTS],
        watch: &[
            p("apps", "statefulsets", "watch"),
            p("apps", "controllerrevisions", "watch"),
            p("", "pods", "watch"),
            p("", "persistentvolumeclaims", "watch"),
            p("", "services", "watch"),
        ],
        watch_optional: &[p("", "events", "watch")],
    },
    CommandPermissions {
        command: "inspect NAME",
        all_namespaces: false,
        required: &[
            GET_STATEFULSETS,
            LIST_REVISIONS,
            LIST_PODS,
            LIST_CLAIMS,
            p("", "services", "get"),
        ],
        conditional: &[UNLABELLED_CLAIMS],
        optional: &[
            Optional {
                permission: p("", "persistentvolumes", "get"),
                without: "reclaim policies shown as unknown (above 100 bound claims: list persistentvolumes)",
            },
            EVENTS,
            Optional {
                permission: p("discovery.k8s.io", "endpointslices", "list"),
                without: "DNS names shown unverified (before 1.21: get endpoints)",
            },
        ],
        watch: &[
            p("apps", "statefulsets", "list"),
            p("apps", "statefulsets", "watch"),
            p("apps", "controllerrevisions", "watch"),
            p("", "pods", "watch"),
            p("", "persistentvolumeclaims", "watch"),
            p("", "services", "list"),
            p("", "services", "watch"),
        ],
        watch_optional: &[
            p("", "events", "watch"),
            p("discovery.k8s.io", "endpointslices", "watch"),
        ],
    },
    CommandPermissions {
        command: "status NAME",
        all_namespaces: false,
        required: &[GET_STATEFULSETS, LIST_REVISIONS, LIST_PODS],
        conditional: &[],
        optional: &[Optional {
            permission: LIST_EVENTS,
            without: "FailedCreate from the controller not seen (Events)",
        }],
        watch: &[
            p("apps", "statefulsets", "list"),
            p("apps", "statefulsets", "watch"),
            p("", "pods", "watch"),
        ],
        watch_optional: &[p("", "events", "watch")],
    },
    CommandPermissions {
        command: "history NAME",
        all_namespaces: false,
        required: &[GET_STATEFULSETS, LIST_REVISIONS, LIST_PODS],
        conditional: &[],
        optional: &[],
        watch: &[],
        watch_optional: &[],
    },
    CommandPermissions {
        command: "diff NAME",
        all_namespaces: false,
        required: &[GET_STATEFULSETS, LIST_REVISIONS],
        conditional: &[],
        optional: &[],
        watch: &[],
        watch_optional: &[],
    },
    CommandPermissions {
        command: "rollback NAME",
        all_namespaces: false,
        required: &[
            GET_STATEFULSETS,
            LIST_REVISIONS,
            LIST_PODS,
            p("apps", "statefulsets", "patch"),
        ],
        conditional: &[],
        optional: &[],
        watch: &[],
        watch_optional: &[],
    },
    CommandPermissions {
        command: "orphans",
        all_namespaces: true,
        required: &[LIST_STATEFULSETS, LIST_PODS, LIST_CLAIMS],
        conditional: &[],
        optional: &[VOLUMES_LISTED],
        watch: &[],
        watch_optional: &[],
    },
    CommandPermissions {
        command: "orphans --delete",
        all_namespaces: true,
        required: &[
            LIST_STATEFULSETS,
            LIST_PODS,
            LIST_CLAIMS,
            GET_CLAIMS,
            p("", "persistentvolumeclaims", "delete"),
        ],
        conditional: &[],
        optional: &[VOLUMES_LISTED],
        watch: &[],
        watch_optional: &[],
    },
    CommandPermissions {
        command: "resize NAME",
        all_namespaces: false,
        required: &[
            GET_STATEFULSETS,
            LIST_REVISIONS,
            LIST_PODS,
            LIST_CLAIMS,
            p("", "persistentvolumeclaims", "patch"),
            GET_CLAIMS,
            p("apps", "statefulsets", "delete"),
            p("apps", "statefulsets", "create"),
        ],
        conditional: &[
            UNLABELLED_CLAIMS,
            Conditional {
                permission: p("storage.k8s.io", "storageclasses", "get"),
                when: "its claims name a StorageClass",
            },
        ],
        optional: &[Optional {
            permission: LIST_EVENTS,
            without: "no VolumeResizeFailed message (Events)",
        }],
        watch: &[],
        watch_optional: &[],
    },
];

/// The API group of a resource the plugin reads or writes, or None for one it does not know.
pub fn api_group(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "statefulsets" | "controllerrevisions" => "apps",
        "endpointslices" => "discovery.k8s.io",
        "storageclasses" => "storage.k8s.io",
        "pods"
        | "persistentvolumeclaims"
        | "persistentvolumes"
        | "services"
        | "events"
        | "endpoints"
        | "namespaces" => "",
        _ => return None,
    })
}

/// Cluster-scoped resources: only a ClusterRole can grant them.
pub fn cluster_scoped(resource: &str) -> bool {
    matches!(
        resource,
        "persistentvolumes" | "storageclasses" | "namespaces"
    )
}

/// The kind of role that grants `resource` in one namespace (`in_namespace`) or in all:
/// `ClusterRole` for all namespaces and cluster-scoped resources, else `Role`.
pub fn role_kind(resource: &str, in_namespace: bool) -> &'static str {
    if cluster_scoped(resource) || !in_namespace {
        "ClusterRole"
    } else {
        "Role"
    }
}

/// `apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["list"]`.
pub fn rule_text(api_group: &str, resource: &str, verb: &str) -> String {
    format!("apiGroups: [\"{api_group}\"], resources: [\"{resource}\"], verbs: [\"{verb}\"]")
}

/// What the Forbidden error appends: `; grant it with a Role rule: apiGroups: […], …`. Empty
/// for a resource whose group is not known here (the server's message still names it).
pub fn grant_hint(verb: &str, resource: &str, in_namespace: bool) -> String {
    match api_group(resource) {
        Some(group) => format!(
            "; grant it with a {} rule: {}",
            role_kind(resource, in_namespace),
            rule_text(group, resource, verb)
        ),
        None => String::new(),
    }
}

/// `resource` or `resource.group`, as `kubectl create role --resource` spells it.
fn qualified(p: &Permission) -> String {
    if p.api_group.is_empty() {
        p.resource.to_string()
    } else {
        format!("{}.{}", p.resource, p.api_group)
    }
}

/// `get statefulsets.apps, list pods`: each resource once, its verbs in the table's order.
fn list(permissions: impl IntoIterator<Item = Permission>) -> String {
    let mut by_resource: Vec<(String, Vec<&'static str>)> = Vec::new();
    for p in permissions {
        let name = qualified(&p);
        match by_resource.iter_mut().find(|(n, _)| *n == name) {
            Some((_, verbs)) => verbs.push(p.verb),
            None => by_resource.push((name, vec![p.verb])),
        }
    }
    by_resource
        .iter()
        .map(|(name, verbs)| format!("{} {name}", verbs.join("/")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README's table (between `<!-- permissions:begin -->` and `<!-- permissions:end -->`).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| command | needs (in its namespace: a Role) | `-A` | only when | optional: without it |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in COMMANDS {
        let all = if c.all_namespaces {
            "the same, in all namespaces (ClusterRole)"
        } else {
            "not taken"
        };
        let conditional = c
            .conditional
            .iter()
            .map(|x| format!("{}: {}", list([x.permission]), x.when))
            .collect::<Vec<_>>()
            .join("; ");
        let optional = c
            .optional
            .iter()
            .map(|x| format!("{}: {}", list([x.permission]), x.without))
            .collect::<Vec<_>>()
            .join("; ");
        let mut required = list(c.required.iter().copied());
        if !c.watch.is_empty() {
            let _ = write!(required, "; `-w` adds {}", list(c.watch.iter().copied()));
        }
        let mut optional = optional;
        if !c.watch_optional.is_empty() {
            let _ = write!(
                optional,
                "; with `-w`: {}",
                list(c.watch_optional.iter().copied())
            );
        }
        let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
        let _ = writeln!(
            out,
            "| `{}` | {} | {all} | {} | {} |",
            c.command,
            required,
            dash(conditional),
            dash(optional)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- permissions:begin -->\n";
    const END: &str = "<!-- permissions:end -->";

    #[test]
    fn the_readme_table_is_the_code_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md is readable");
        let start = readme
            .find(BEGIN)
            .expect("README has <!-- permissions:begin -->")
            + BEGIN.len();
        let end = readme[start..]
            .find(END)
            .expect("README has <!-- permissions:end -->")
            + start;
        let expected = markdown_table();
        assert!(
            readme[start..end] == expected,
            "README.md's permissions table differs from crates/kubectl-sts/src/permissions.rs; \
             put this between the markers:\n{expected}"
        );
    }

    #[test]
    fn every_resource_of_the_table_has_a_group_and_a_hint() {
        for c in COMMANDS {
            let all = c
                .required
                .iter()
                .chain(c.watch)
                .chain(c.watch_optional)
                .copied()
                .chain(c.optional.iter().map(|o| o.permission))
                .chain(c.conditional.iter().map(|o| o.permission));
            for p in all {
                assert_eq!(
                    api_group(p.resource),
                    Some(p.api_group),
                    "{p:?} in {}",
                    c.command
                );
            }
        }
    }

    #[test]
    fn the_hint_names_role_or_cluster_role() {
        assert_eq!(
            grant_hint("list", "statefulsets", true),
            "; grant it with a Role rule: apiGroups: [\"apps\"], resources: [\"statefulsets\"], verbs: [\"list\"]"
        );
        assert_eq!(
            grant_hint("list", "pods", false),
            "; grant it with a ClusterRole rule: apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"list\"]"
        );
        assert_eq!(
            grant_hint("get", "persistentvolumes", true),
            "; grant it with a ClusterRole rule: apiGroups: [\"\"], resources: [\"persistentvolumes\"], verbs: [\"get\"]"
        );
        assert_eq!(grant_hint("get", "widgets", true), "");
    }

    #[test]
    fn the_forbidden_error_names_the_rule() {
        use crate::error::{Error, Scope};
        let forbidden = |scope| Error::Forbidden {
            verb: "list",
            resource: "statefulsets".into(),
            scope,
            message: "the server's message".into(),
        };
        assert_eq!(
            forbidden(Scope::Namespace("prod".into())).to_string(),
            "forbidden: you may not list statefulsets in namespace \"prod\": the server's message; grant it with a Role rule: apiGroups: [\"apps\"], resources: [\"statefulsets\"], verbs: [\"list\"]"
        );
        assert_eq!(
            forbidden(Scope::AllNamespaces).to_string(),
            "forbidden: you may not list statefulsets in all namespaces: the server's message; grant it with a ClusterRole rule: apiGroups: [\"apps\"], resources: [\"statefulsets\"], verbs: [\"list\"]"
        );
    }
}
