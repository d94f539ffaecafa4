//! The architecture's one rule, checked: the pure core (`src/core`) and the HTTP client
//! (`src/http`) never import pgrx, so that they stay testable and reusable without PostgreSQL.
//! Only `src/pg` touches PostgreSQL.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_and_http_never_import_pgrx() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["core", "http"] {
        rust_files(&src.join(dir), &mut files);
    }
    assert!(files.len() >= 8, "{files:?}");
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            // a path into pgrx or into our PostgreSQL edge, in a `use` or in code (comments
            // may name them)
            let code = line.split("//").next().unwrap_or("");
            if code.contains("pgrx") || code.contains("crate::pg::") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the pure modules must not touch PostgreSQL:\n{}",
        offenders.join("\n")
    );
}

/// The file a module path names: `crate::pg::worker::pool::Job` -> src/pg/worker/pool.rs, the
/// longest prefix that is a file (an item of a module lives in that module's file).
fn file_of(src: &Path, path: &[&str]) -> Option<std::path::PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let dir = path[..n].iter().fold(src.to_path_buf(), |p, s| p.join(s));
        [dir.with_extension("rs"), dir.join("mod.rs")]
            .into_iter()
            .find(|f| f.is_file())
    })
}

/// The module path of a file: src/pg/worker/mod.rs -> [pg, worker].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

#[test]
fn no_import_circles_between_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // the test suites reach into everything by design
    files.retain(|f| !f.starts_with(src.join("tests")) && !f.ends_with("lib.rs"));
    let mut edges: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> =
        Default::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let here = module_of(&src, file);
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        // crate::a::b and super::a paths (use statements and inline paths alike)
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", {
                let mut b = here.clone();
                // super of a mod.rs module is its parent, of a plain file its directory's module
                b.pop();
                b
            }),
        ] {
            for found in code.match_indices(prefix) {
                let rest = &code[found.0 + prefix.len()..];
                let segs: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty() && s.chars().next().unwrap().is_lowercase())
                    .collect();
                let mut path: Vec<&str> = base.iter().map(String::as_str).collect();
                path.extend(segs);
                if let Some(target) = file_of(&src, &path)
                    && &target != file
                {
                    edges.entry(file.clone()).or_default().insert(target);
                }
            }
        }
    }
    // a depth-first search for a back edge
    fn visit(
        f: &std::path::PathBuf,
        edges: &std::collections::BTreeMap<
            std::path::PathBuf,
            std::collections::BTreeSet<std::path::PathBuf>,
        >,
        stack: &mut Vec<std::path::PathBuf>,
        done: &mut std::collections::BTreeSet<std::path::PathBuf>,
    ) -> Option<Vec<std::path::PathBuf>> {
        if let Some(i) = stack.iter().position(|s| s == f) {
            return Some(stack[i..].to_vec());
        }
        if !done.insert(f.clone()) {
            return None;
        }
        stack.push(f.clone());
        for next in edges.get(f).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = Default::default();
    for file in &files {
        if let Some(cycle) = visit(file, &edges, &mut Vec::new(), &mut done) {
            panic!(
                "files that import each other: {}",
                cycle
                    .iter()
                    .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            );
        }
    }
    assert!(edges.len() >= 10, "{edges:?}");
}
