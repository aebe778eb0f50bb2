//! No import circle inside a folder of `src/` (issue 27): within one folder, the files (and
//! sub-folders) import each other one way only, so a folder reads from its base modules up.
//! Shared types live in a module of their own below both users (`auth/decision.rs`,
//! `radius/shared.rs`, …) instead of one file importing another that imports it back.
//!
//! The check reads `use` declarations as text: `use super::…` and `use crate::…` paths are
//! made absolute, and an import of a sibling module (a file or a folder beside the importing
//! one, at the first place where the two paths part) is an edge. A `mod.rs` re-exporting its
//! children is the folder itself, not a sibling, and a file's `#[cfg(test)]` part is not read.
//! Imports of an item a folder's `mod.rs` defines or re-exports are not edges: the folder's
//! base is the place for what its files share.
#![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module's path from the crate root (`["auth", "engine"]`).
type ModPath = Vec<String>;

/// Every module of `src/` (files and folders) with the paths its `use` declarations name.
fn read_modules(dir: &Path, path: &ModPath, out: &mut BTreeMap<ModPath, Vec<ModPath>>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_stem().unwrap().to_string_lossy().into_owned();
        if entry.is_dir() {
            let mut inner = path.clone();
            inner.push(name);
            read_modules(&entry, &inner, out);
        } else if entry.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "mod" | "lib" | "main" => path.clone(),
                _ => [path.clone(), vec![name]].concat(),
            };
            let text = fs::read_to_string(&entry).unwrap();
            let parent = if module.is_empty() {
                vec![]
            } else {
                module[..module.len() - 1].to_vec()
            };
            let imports = out.entry(module.clone()).or_default();
            imports.extend(imports_of(&text, &parent));
        }
    }
}

/// The absolute paths a file's `use` declarations name (`parent`: what `super` is). A
/// declaration starts a line (after its visibility) and runs to its `;`.
fn imports_of(text: &str, parent: &ModPath) -> Vec<ModPath> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut paths = vec![];
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start();
        let line = ["pub(crate) ", "pub(super) ", "pub "]
            .iter()
            .find_map(|visibility| line.strip_prefix(visibility))
            .unwrap_or(line);
        let Some(start) = line.strip_prefix("use ") else {
            continue;
        };
        let mut declaration = start.to_string();
        while !declaration.contains(';') {
            let Some(next) = lines.next() else { break };
            declaration.push(' ');
            declaration.push_str(next);
        }
        let declaration = declaration.split(';').next().unwrap_or_default();
        // One line, `as` marked, then no spaces: `a::{b as c, d}` → `a::{b@c,d}`.
        let tree = declaration.split_whitespace().collect::<Vec<_>>().join(" ");
        let tree: String = tree
            .replace(" as ", "@")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for path in expand(&tree) {
            let mut parts = path.split("::").map(str::to_string);
            let absolute = match parts.next().as_deref() {
                Some("crate") => parts.collect(),
                Some("super") => parent.iter().cloned().chain(parts).collect(),
                _ => continue,
            };
            paths.push(absolute);
        }
    }
    paths
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (aliases and globs cut off).
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        let path = tree.split('@').next().unwrap_or(tree);
        return vec![path.trim_end_matches("::*").to_string()];
    };
    let prefix = &tree[..open];
    let close = tree
        .rfind('}')
        .filter(|&close| close > open)
        .unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut depth = 0;
    let mut start = 0;
    let mut items = vec![];
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty() && *item != "self")
        .flat_map(|item| expand(&format!("{prefix}{item}")))
        .collect()
}

/// Per folder, the edges between its modules: (importer, imported).
fn edges(
    modules: &BTreeMap<ModPath, Vec<ModPath>>,
) -> BTreeMap<ModPath, BTreeSet<(String, String)>> {
    let mut by_folder: BTreeMap<ModPath, BTreeSet<(String, String)>> = BTreeMap::new();
    for (module, imports) in modules {
        for target in imports {
            let common = module
                .iter()
                .zip(target)
                .take_while(|(a, b)| a == b)
                .count();
            let (Some(from), Some(to)) = (module.get(common), target.get(common)) else {
                continue;
            };
            let sibling: ModPath = target[..=common].to_vec();
            if modules.contains_key(&sibling) {
                by_folder
                    .entry(module[..common].to_vec())
                    .or_default()
                    .insert((from.clone(), to.clone()));
            }
        }
    }
    by_folder
}

/// A circle among `edges`, if there is one (depth-first search).
fn circle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(found) = visit(to, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .iter()
        .find_map(|(from, _)| visit(from, edges, &mut vec![], &mut done))
}

#[test]
fn no_folder_of_src_has_an_import_circle() {
    let mut modules = BTreeMap::new();
    read_modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &vec![],
        &mut modules,
    );
    let circles: Vec<String> = edges(&modules)
        .iter()
        .filter_map(|(folder, edges)| {
            let found = circle(edges)?;
            Some(format!("src/{}: {}", folder.join("/"), found.join(" -> ")))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_finds_a_circle_and_reads_use_trees() {
    let text = "use super::{a, b::{C, d as e}};\nuse crate::x::y::*;\n#[cfg(test)]\nuse super::z;";
    assert_eq!(
        imports_of(text, &vec!["p".into()]),
        [
            vec!["p", "a"],
            vec!["p", "b", "C"],
            vec!["p", "b", "d"],
            vec!["x", "y"]
        ]
        .map(|v| v.into_iter().map(String::from).collect::<ModPath>())
    );
    let mut modules = BTreeMap::new();
    let path = |s: &str| s.split('/').map(String::from).collect::<ModPath>();
    modules.insert(path("f/a"), vec![path("f/b/Thing")]);
    modules.insert(path("f/b"), vec![path("f/c")]);
    modules.insert(path("f/c"), vec![path("f/a/g")]);
    modules.insert(path("f/a/g"), vec![]);
    let found = edges(&modules);
    assert_eq!(
        circle(&found[&path("f")]).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".to_string())
    );
}
