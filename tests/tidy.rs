//! Tidy checks over the source tree, in the spirit of rust-analyzer's tidy tests: rules of
//! shape that a review would otherwise have to catch by eye.
//!
//! - No function (free, method or nested; tests included) in `sim/`, `invariants/` or `store/`
//!   is longer than `MAX_FN_LINES`, except the ones in `LONG_FN_ALLOWED`, each with its reason.
//! - The files of one crate do not import each other in a circle (`use crate::...`,
//!   `super::...` and `crate::...` paths in code; re-exports and test modules do not count),
//!   except the cycles in `CYCLES_ALLOWED`.
//!
//! Both lists are meant to shrink: an entry that no longer applies fails the test, so a fixed
//! function or cycle cannot stay on the list by accident.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// The hard limit on a function's length, in lines from `fn` to its closing brace. The aim is
/// ~80 (the developers' guide); 120 is where a review stops arguing and the test fails.
const MAX_FN_LINES: usize = 120;

/// Functions allowed to be longer, as (file, function name, reason).
const LONG_FN_ALLOWED: &[(&str, &str, &str)] = &[];

/// Import cycles allowed between the files of a crate, as (the files in the cycle, reason).
const CYCLES_ALLOWED: &[(&[&str], &str)] = &[];

/// The source roots the rules apply to.
const ROOTS: &[&str] = &["sim", "invariants", "store"];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<(String, syn::File)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "tidy found only {} files", files.len());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, ast)
        })
        .collect()
}

/// Every function with a body and its length in lines.
#[derive(Default)]
struct FnLengths {
    found: Vec<(String, usize, usize)>, // (name, first line, lines)
}

impl FnLengths {
    fn record(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let (start, end) = (span.start().line, span.end().line);
        self.found
            .push((name.to_string(), start, end.saturating_sub(start) + 1));
    }
}

impl<'ast> Visit<'ast> for FnLengths {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.record(&f.sig.ident, f.span());
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.record(&f.sig.ident, f.span());
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.record(&f.sig.ident, f.span());
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut too_long = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for (file, ast) in all_sources() {
        let mut lengths = FnLengths::default();
        lengths.visit_file(&ast);
        for (name, line, lines) in lengths.found {
            if lines <= MAX_FN_LINES {
                continue;
            }
            match LONG_FN_ALLOWED
                .iter()
                .position(|(f, n, _)| *f == file && *n == name)
            {
                Some(i) => {
                    allowed_seen.insert(i);
                }
                None => too_long.push(format!("{file}:{line} fn {name}: {lines} lines")),
            }
        }
    }
    let stale: Vec<_> = LONG_FN_ALLOWED
        .iter()
        .enumerate()
        .filter(|(i, _)| !allowed_seen.contains(i))
        .map(|(_, (f, n, _))| format!("{f} fn {n}"))
        .collect();
    assert!(
        stale.is_empty(),
        "LONG_FN_ALLOWED lists functions that are no longer too long (remove them): {stale:?}"
    );
    assert!(
        too_long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them into named steps):\n{}",
        too_long.join("\n")
    );
}

/// A crate's source files, by module path (`["etcd", "facts"]` for `src/etcd/facts.rs`).
fn module_path(file: &str) -> Option<(String, Vec<String>)> {
    let (krate, rest) = file.split_once("/src/")?;
    let rest = rest.strip_suffix(".rs")?;
    let mut parts: Vec<String> = rest.split('/').map(str::to_owned).collect();
    let last = parts.last().map(String::as_str);
    if matches!(last, Some("mod") | Some("lib") | Some("main")) {
        parts.pop();
    }
    if parts.first().map(String::as_str) == Some("bin") {
        return None; // binaries are roots of their own, not modules of the library
    }
    Some((krate.to_owned(), parts))
}

/// Module paths a file refers to (`crate::a::b` and `super::` paths outside test modules and
/// outside `pub use` re-exports), relative to the crate root.
struct Refs<'a> {
    here: &'a [String],
    out: BTreeSet<Vec<String>>,
}

impl Refs<'_> {
    /// Record a path if it names something of this crate. `super` is the module above this
    /// file's (for `a/b.rs` and `a/b/mod.rs` alike: `a`); `self` is this file's module.
    fn add(&mut self, segments: &[String]) {
        let mut path = match segments.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") | Some("self") => self.here.to_vec(),
            _ => return,
        };
        let mut rest = segments;
        match rest.first().map(String::as_str) {
            Some("crate") | Some("self") => rest = &rest[1..],
            _ => {}
        }
        while rest.first().map(String::as_str) == Some("super") {
            path.pop();
            rest = &rest[1..];
        }
        path.extend(rest.iter().cloned());
        self.out.insert(path);
    }
}

fn use_tree_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_tree_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut p = prefix.clone();
            p.push(n.ident.to_string());
            out.push(p);
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            p.push(r.ident.to_string());
            out.push(p);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_tree_paths(t, prefix, out);
            }
        }
    }
}

fn is_test_module(m: &syn::ItemMod) -> bool {
    m.attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

impl<'ast> Visit<'ast> for Refs<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_module(m) {
            syn::visit::visit_item_mod(self, m);
        }
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if matches!(u.vis, syn::Visibility::Public(_)) {
            return; // a re-export shapes the API; it is not a dependency of this file's code
        }
        let mut paths = Vec::new();
        use_tree_paths(&u.tree, &mut Vec::new(), &mut paths);
        for p in paths {
            self.add(&p);
        }
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(&segments);
        syn::visit::visit_path(self, p);
    }
}

/// The file (module path) a referenced path lands in: its longest prefix that is a module.
fn resolve(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

/// Import edges between the files of each crate: crate -> file -> files it uses.
fn import_graphs() -> BTreeMap<String, BTreeMap<Vec<String>, BTreeSet<Vec<String>>>> {
    let sources: Vec<_> = all_sources()
        .into_iter()
        .filter_map(|(file, ast)| module_path(&file).map(|(k, m)| (file, k, m, ast)))
        .collect();
    let mut modules: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (_, krate, module, _) in &sources {
        modules
            .entry(krate.clone())
            .or_default()
            .insert(module.clone());
    }
    let mut graphs: BTreeMap<String, BTreeMap<_, BTreeSet<_>>> = BTreeMap::new();
    for (_file, krate, module, ast) in &sources {
        let mut refs = Refs {
            here: module,
            out: BTreeSet::new(),
        };
        refs.visit_file(ast);
        let edges = graphs
            .entry(krate.clone())
            .or_default()
            .entry(module.clone())
            .or_default();
        for r in refs.out {
            let target = resolve(&modules[krate], &r);
            // A file's own module, and the crate root (lib.rs re-exports), are not edges.
            if &target != module && !target.is_empty() {
                edges.insert(target);
            }
        }
    }
    graphs
}

/// The strongly connected components with more than one file (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'g> {
        graph: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                connect(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            connect(&mut s, v);
        }
    }
    s.out
}

fn file_name(krate: &str, module: &[String]) -> String {
    if module.is_empty() {
        format!("{krate}/src/lib.rs")
    } else {
        format!("{krate}/src/{}", module.join("/"))
    }
}

#[test]
fn files_of_a_crate_do_not_import_each_other_in_a_circle() {
    let mut found = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for (krate, graph) in import_graphs() {
        for component in cycles(&graph) {
            let names: Vec<String> = component.iter().map(|m| file_name(&krate, m)).collect();
            match CYCLES_ALLOWED
                .iter()
                .position(|(files, _)| files.iter().copied().eq(names.iter().map(String::as_str)))
            {
                Some(i) => {
                    allowed_seen.insert(i);
                }
                None => found.push(names.join(" <-> ")),
            }
        }
    }
    let stale: Vec<_> = CYCLES_ALLOWED
        .iter()
        .enumerate()
        .filter(|(i, _)| !allowed_seen.contains(i))
        .map(|(_, (files, _))| files.join(" <-> "))
        .collect();
    assert!(
        stale.is_empty(),
        "CYCLES_ALLOWED lists cycles that no longer exist (remove them): {stale:?}"
    );
    assert!(
        found.is_empty(),
        "files that import each other in a circle (move what both need below them):\n{}",
        found.join("\n")
    );
}

/// The checks themselves can fail: a planted long function and a planted cycle are found.
#[test]
fn tidy_checks_find_planted_violations() {
    let long_body = "    let _x = 1;\n".repeat(MAX_FN_LINES);
    let ast = syn::parse_file(&format!("fn planted() {{\n{long_body}}}\n")).unwrap();
    let mut lengths = FnLengths::default();
    lengths.visit_file(&ast);
    assert_eq!(lengths.found.len(), 1);
    assert!(lengths.found[0].2 > MAX_FN_LINES);

    let m = |s: &str| vec![s.to_owned()];
    let graph = BTreeMap::from([
        (m("a"), BTreeSet::from([m("b")])),
        (m("b"), BTreeSet::from([m("c")])),
        (m("c"), BTreeSet::from([m("a")])),
        (m("d"), BTreeSet::from([m("a")])),
    ]);
    assert_eq!(cycles(&graph), vec![vec![m("a"), m("b"), m("c")]]);

    let ast = syn::parse_file("use crate::models::etcd::KeyState;\nuse super::x::Y;\n").unwrap();
    let here = vec!["etcd".to_owned(), "facts".to_owned()];
    let mut refs = Refs {
        here: &here,
        out: BTreeSet::new(),
    };
    refs.visit_file(&ast);
    let expected: BTreeSet<Vec<String>> =
        [vec!["models", "etcd", "KeyState"], vec!["etcd", "x", "Y"]]
            .into_iter()
            .map(|p| p.into_iter().map(str::to_owned).collect())
            .collect();
    assert_eq!(refs.out, expected);
}
