//! The plugin's module structure (issue 12): no subcommand uses another (what several need
//! lives beside them: target, collect, render, printer, watch), and no two modules import each
//! other through any chain. Read from the sources: every `crate::<module>` path outside
//! comments and `#[cfg(test)] mod tests`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`cmd::list`, `printer`) → the modules it refers to.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative
            .with_extension("")
            .to_string_lossy()
            .replace("/mod", "")
            .replace('/', "::");
        let text = std::fs::read_to_string(&file).expect("source is readable");
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let mut uses = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut parts = path.split("::").filter(|p| !p.is_empty());
                let Some(first) = parts.next() else { continue };
                let target = match (first, parts.next()) {
                    ("cmd", Some(sub))
                        if sub.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                    {
                        format!("cmd::{sub}")
                    }
                    (first, _) => first.to_string(),
                };
                if target != module {
                    uses.insert(target);
                }
            }
        }
        graph.insert(module, uses);
    }
    graph
}

#[test]
fn no_subcommand_imports_another() {
    let graph = graph();
    assert!(
        graph.contains_key("cmd::list"),
        "modules found: {:?}",
        graph.keys()
    );
    let sibling: Vec<(String, String)> = graph
        .iter()
        .filter(|(m, _)| m.starts_with("cmd::"))
        .flat_map(|(m, uses)| {
            uses.iter()
                .filter(|u| u.starts_with("cmd::") && graph.contains_key(*u))
                .map(move |u| (m.clone(), u.clone()))
        })
        .collect();
    assert!(
        sibling.is_empty(),
        "subcommands importing each other: {sibling:?}"
    );
}

#[test]
fn no_import_circle() {
    let graph = graph();
    // Depth-first search for a back edge, restricted to the crate's own modules.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(circle) = visit(next, graph, path, done)
            {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(circle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
}
