//! A test that keeps the crate's top-level modules free of circles: each role, the
//! admin core and the interfaces over it may depend on modules below them, never on
//! one that depends back on them (the console once imported the command line's
//! display helpers while the command line started the server that served the
//! console). It reads the sources, so it needs no tool beyond the test itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules each top-level module names through `crate::`.
fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        // Comments (doc links among them) are no dependency.
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let used = graph.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                // `crate::{a, b::c}`: every first segment inside the braces.
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|part| part.trim().split("::").next().unwrap_or("").trim())
                    .collect(),
                None => vec![
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ],
            };
            for name in names {
                if !name.is_empty() && name != module && name != "self" {
                    used.insert(name.to_string());
                }
            }
        }
    }
    graph
}

/// A circle through `start`, if there is one: the modules along it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut paths = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = paths.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == start {
                let mut found = path.clone();
                found.push(start.to_string());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                paths.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_top_level_module_depends_on_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = dependencies(&src);
    assert!(graph.contains_key("admin") && graph["cli"].contains("admin"));
    for module in graph.keys() {
        if let Some(found) = circle(&graph, module) {
            panic!("a circle of modules: {}", found.join(" -> "));
        }
    }
}

#[test]
fn a_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("cli", vec!["serve"]),
        ("serve", vec!["console"]),
        ("console", vec!["cli"]),
        ("state", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        circle(&graph, "cli").unwrap(),
        ["cli", "serve", "console", "cli"]
    );
    assert_eq!(circle(&graph, "state"), None);
}
