//! The invariants of ARCHITECTURE.md that the compiler does not check by itself,
//! checked on the sources: which crate may depend on which (and which heavy
//! dependencies each may pull in), and that no crate has a cycle between its
//! modules.
//!
//! Module edges are read from paths in the code (`crate::a::b`, `super::c`),
//! module by module (a file is one module; test modules at the end of a file are
//! left out). A parent naming its own children (declarations, re-exports) is not
//! an edge: only a child using its parent or a sibling is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every library crate of the workspace: (package name, folder).
const CRATES: &[(&str, &str)] = &[
    ("palabre-core", "crates/core"),
    ("palabre-lang", "crates/lang"),
    ("palabre-rules", "crates/rules"),
    ("palabre-plan", "crates/plan"),
    ("palabre-store", "crates/store"),
    ("palabre-engine", "engine"),
    ("palabre-api", "api"),
    ("palabre-web", "web"),
    ("palabre-email", "plugins/email"),
    ("palabre-sms", "plugins/sms"),
];

/// The names under `[dependencies]` of a Cargo.toml (dev-dependencies are the
/// tests' business).
fn dependencies(folder: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(folder).join("Cargo.toml")).unwrap();
    let mut found = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() && !name.starts_with('#') {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn crates_depend_on_each_other_one_way_only() {
    // What each crate may depend on among palabre's own crates: the flow runs
    // core → lang → rules → plan → engine, the store beside the plan; plugins
    // see the seam only.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("palabre-core", &[][..]),
        ("palabre-lang", &["palabre-core"][..]),
        ("palabre-rules", &["palabre-core", "palabre-lang"][..]),
        (
            "palabre-plan",
            &["palabre-core", "palabre-lang", "palabre-rules"][..],
        ),
        ("palabre-store", &["palabre-core", "palabre-lang"][..]),
        (
            "palabre-engine",
            &[
                "palabre-core",
                "palabre-lang",
                "palabre-rules",
                "palabre-plan",
                "palabre-store",
            ][..],
        ),
        (
            "palabre-api",
            &[
                "palabre-core",
                "palabre-lang",
                "palabre-store",
                "palabre-engine",
            ][..],
        ),
        // The dashboard reaches the engine and the store only through the
        // API's router and its sign-in functions.
        (
            "palabre-web",
            &["palabre-core", "palabre-lang", "palabre-api"][..],
        ),
        ("palabre-email", &["palabre-core"][..]),
        ("palabre-sms", &["palabre-core"][..]),
    ]);
    // Heavy dependencies and where they may be: only the store writes SQL, only
    // the rules run scripts, the seam has neither nor templates.
    let confined: &[(&str, &[&str])] = &[
        ("sqlx", &["palabre-store"]),
        ("rhai", &["palabre-rules"]),
        (
            "minijinja",
            // templates; the generic gateway's request templates; the dashboard's pages
            &["palabre-lang", "palabre-sms", "palabre-web"],
        ),
        ("axum", &["palabre-api", "palabre-web"]),
        ("lettre", &["palabre-email"]),
        ("reqwest", &["palabre-sms"]),
        // Pure crates are not async.
        (
            "tokio",
            &[
                "palabre-engine",
                "palabre-api",
                "palabre-email",
                "palabre-sms",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (name, folder) in CRATES {
        let deps = dependencies(folder);
        for dep in deps.iter().filter(|d| d.starts_with("palabre-")) {
            if !allowed[name].contains(&dep.as_str()) {
                problems.push(format!("{name} depends on {dep}"));
            }
        }
        for (heavy, owners) in confined {
            if deps.contains(*heavy) && !owners.contains(name) {
                problems.push(format!("{name} depends on {heavy}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "crate edges against ARCHITECTURE.md: {problems:#?}"
    );
}

/// A module's path inside its crate (`["runtime", "cases"]`; the root is `[]`).
type ModulePath = Vec<String>;

fn modules(src: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: ModulePath = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("lib" | "mod" | "main")
            ) {
                parts.pop();
            }
            found.insert(parts, path);
        }
    }
    found
}

/// The longest known module that `path` (already absolute in the crate) names.
fn resolve(known: &BTreeMap<ModulePath, PathBuf>, path: &[String]) -> ModulePath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains_key(p))
        .unwrap_or_default()
}

/// The paths a module's code names: `crate::x::y` and `super::z` (with nested
/// `super::super::`), as absolute module paths.
fn edges(module: &ModulePath, text: &str) -> Vec<ModulePath> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    for (start, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        if code[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        {
            continue;
        }
        let rest = &code[start..];
        let mut segments: Vec<&str> = rest
            .split("::")
            .map(|s| {
                let end = s
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(s.len());
                &s[..end]
            })
            .collect();
        // Keep the segments up to the first that is not a plain name (`{`, `*`).
        if let Some(cut) = segments.iter().skip(1).position(|s| s.is_empty()) {
            segments.truncate(cut + 1);
        }
        let mut absolute: ModulePath = if segments[0] == "crate" {
            segments.remove(0);
            Vec::new()
        } else {
            let mut base = module.clone();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            base
        };
        absolute.extend(segments.iter().map(|s| (*s).to_owned()));
        found.push(absolute);
    }
    found
}

/// A cycle in `graph`, if there is one, as the list of its modules.
fn find_cycle(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Option<Vec<ModulePath>> {
    fn visit(
        node: &ModulePath,
        graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        done: &mut BTreeSet<ModulePath>,
        stack: &mut Vec<ModulePath>,
    ) -> Option<Vec<ModulePath>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            return Some(stack[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn module_graph(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let known = modules(src);
    let mut graph: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        let targets = graph.entry(module.clone()).or_default();
        for path in edges(module, &text) {
            let target = resolve(&known, &path);
            if target != *module && !target.starts_with(module) {
                targets.insert(target);
            }
        }
    }
    graph
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let mut crates: Vec<&str> = CRATES.iter().map(|(_, folder)| *folder).collect();
    crates.push(".");
    for folder in crates {
        let src = repo().join(folder).join("src");
        let graph = module_graph(&src);
        assert!(
            graph.len() > 1 || folder != "crates/lang",
            "{folder}: modules not found"
        );
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<String> = cycle
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        "(root)".to_owned()
                    } else {
                        m.join("::")
                    }
                })
                .collect();
            panic!("{folder}: module cycle {}", names.join(" → "));
        }
    }
}

/// The checker itself finds a cycle, and ignores a parent's use of its children.
#[test]
fn the_cycle_check_sees_cycles() {
    let folder = tempfile::tempdir().unwrap();
    let src = folder.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a; mod b; mod store; pub use store::x::Row;",
    )
    .unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::{B};\npub struct A;").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct B;\nfn f() -> crate::a::A { todo() }",
    )
    .unwrap();
    std::fs::write(src.join("store/mod.rs"), "mod x; pub struct Store;").unwrap();
    std::fs::write(
        src.join("store/x.rs"),
        "use super::Store;\n#[cfg(test)]\nmod tests { use crate::a::A; }",
    )
    .unwrap();
    let graph = module_graph(src);
    let cycle = find_cycle(&graph).expect("a → b → a is a cycle");
    assert_eq!(cycle.len(), 2, "{cycle:?}");
    // store::x → store is the ordinary child-to-parent edge; its test module is left out.
    assert_eq!(
        graph[&vec!["store".to_owned(), "x".to_owned()]],
        BTreeSet::from([vec!["store".to_owned()]])
    );
    std::fs::write(src.join("b.rs"), "pub struct B;").unwrap();
    assert_eq!(find_cycle(&module_graph(src)), None);
}
