//! The worker's module graph has no import circle: ports and the SQL types
//! are defined once and depended on, never the other way round. Reads the
//! sources (`use crate::…`, `crate::…` paths, `super::…`), comments and unit
//! tests left out, one node per file; a child module may use its parent.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            modules(&path, &[prefix, &stem, "::"].concat(), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = match stem.as_str() {
                "lib" => "crate".to_owned(),
                "mod" => prefix.trim_end_matches("::").to_owned(),
                _ => [prefix, &stem].concat(),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
}

/// The longest module name that `path` (`a::b::Item`) starts with.
fn resolve<'a>(path: &str, known: &'a BTreeMap<String, String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| known.get_key_value(&parts[..n].join("::")).map(|(k, _)| k))
}

fn paths_after<'t>(code: &'t str, marker: &str) -> Vec<&'t str> {
    code.match_indices(marker)
        .map(|(i, _)| {
            let rest = &code[i + marker.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

#[test]
fn the_worker_has_no_import_circle() {
    let mut known = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut known,
    );
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, code) in &known {
        let parent = name.rsplit_once("::").map_or("crate", |(p, _)| p);
        let mut targets: Vec<&String> = paths_after(code, "crate::")
            .into_iter()
            .filter_map(|p| resolve(p, &known))
            .collect();
        targets.extend(paths_after(code, "super::").into_iter().filter_map(|p| {
            resolve(&[parent, "::", p].concat(), &known)
                .or(known.get_key_value(parent).map(|(k, _)| k))
        }));
        let from = edges.entry(name.as_str()).or_default();
        for t in targets {
            if t != name && !t.starts_with(&[name.as_str(), "::"].concat()) {
                from.insert(t.as_str());
            }
        }
    }
    assert!(edges.len() > 20, "read the sources: {:?}", edges.keys());
    assert!(
        edges["sinks::r2"].contains("ports"),
        "{:?}",
        edges["sinks::r2"]
    );
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| *s == n) {
            panic!("import circle: {} -> {n}", stack[i..].join(" -> "));
        }
        stack.push(n);
        for t in edges.get(n).into_iter().flatten() {
            visit(t, edges, stack, done);
        }
        stack.pop();
        done.insert(n);
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
}
