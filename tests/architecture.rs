//! The shape of `src/`, checked by reading the source: imports point one way
//! (platform <- http <- auth <- state <- features <- app, cli), features use only
//! earlier features, no two sibling modules import each other (directly or round a
//! cycle), only `cli` reaches `crate::cli`, and `lib.rs` holds no code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import its own layer's modules and lower ones.
const LAYERS: &[&[&str]] = &[
    &["platform"],
    &["http"],
    &["auth"],
    &["state"],
    &[
        "health", "accounts", "tokens", "webhooks", "billing", "admin",
    ],
    &["app", "cli"],
];

/// Within the feature layer, the order features may use each other in: a feature imports
/// only features of a lower rank (webhooks is the seam billing plugs into; admin, the
/// console, sits over them all).
const FEATURE_RANK: &[(&str, u8)] = &[
    ("health", 0),
    ("accounts", 1),
    ("tokens", 2),
    ("webhooks", 2),
    ("billing", 3),
    ("admin", 4),
];

/// Macros exported at the crate root are part of `platform` (`platform::ids`).
const ROOT_MACROS: &[(&str, &str)] = &[("text_id", "platform"), ("stored_enum", "platform")];

struct Source {
    /// `["tokens", "ledger"]` for `src/tokens/ledger.rs` and `src/tokens/ledger/mod.rs`.
    module: Vec<String>,
    path: PathBuf,
    /// The code, without its `#[cfg(test)]` module.
    code: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap().with_extension("");
                let mut module: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(i) => text[..i].to_owned(),
                    None => text,
                };
                out.push(Source { module, path, code });
            }
        }
    }
    out
}

/// Every module path (`a::b::c`) the code names through `crate::`, braces expanded one level.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| p.trim().to_owned())
            .take_while(|p| {
                !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .collect()
    };
    let mut out = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '{'))
                .unwrap_or(rest.len());
            let path = &rest[..end];
            match path.find('{') {
                Some(brace) => {
                    let prefix = ident(path[..brace].trim_end_matches("::"));
                    let inner = &rest[brace + 1..];
                    let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
                    for item in inner.split(',') {
                        let mut full = prefix.clone();
                        full.extend(ident(item.trim()));
                        if !full.is_empty() {
                            out.push(full);
                        }
                    }
                }
                None => out.push(ident(path)),
            }
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The top-level module a `crate::` path lands in.
fn top_of(path: &[String]) -> String {
    let first = path[0].as_str();
    ROOT_MACROS
        .iter()
        .find(|(name, _)| *name == first)
        .map_or(first, |(_, owner)| owner)
        .to_owned()
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top))
}

fn rank_of(feature: &str) -> Option<u8> {
    FEATURE_RANK
        .iter()
        .find(|(f, _)| *f == feature)
        .map(|(_, r)| *r)
}

/// Why `from` may not import `to`, if it may not.
fn violation(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    if to == "cli" {
        return Some("only cli imports crate::cli".into());
    }
    if to == "app" && from != "cli" {
        return Some("nothing but cli imports crate::app".into());
    }
    let (Some(lf), Some(lt)) = (layer_of(from), layer_of(to)) else {
        return Some(format!("{from} -> {to}: a module outside the layer list"));
    };
    if lt > lf {
        return Some(format!(
            "{from} (layer {lf}) imports {to} (layer {lt}) above it"
        ));
    }
    if lt == lf
        && let (Some(rf), Some(rt)) = (rank_of(from), rank_of(to))
        && rt >= rf
    {
        return Some(format!(
            "feature {from} imports feature {to}, which is not before it"
        ));
    }
    None
}

#[test]
fn imports_point_down_the_layers() {
    let mut found = BTreeSet::new();
    for source in sources() {
        let Some(from) = source.module.first() else {
            continue; // lib.rs, main.rs: checked below
        };
        for path in crate_paths(&source.code) {
            let to = top_of(&path);
            if let Some(why) = violation(from, &to) {
                found.insert(format!(
                    "{}: crate::{}: {why}",
                    source.path.display(),
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports against the rule:\n{}",
        found.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn no_two_sibling_modules_import_each_other_even_round_a_cycle() {
    let sources = sources();
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    // parent -> (child -> children it imports)
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for source in &sources {
        let mut targets: Vec<Vec<String>> = crate_paths(&source.code);
        // `super::x` from a file is `crate::<parent>::x`.
        if let Some((_, parent)) = source.module.split_last() {
            let is_mod_file = source.path.file_name().is_some_and(|n| n == "mod.rs");
            let base: Vec<String> = if is_mod_file {
                source.module[..source.module.len().saturating_sub(1)].to_vec()
            } else {
                parent.to_vec()
            };
            for (i, _) in source.code.match_indices("super::") {
                let rest = &source.code[i + "super::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let mut target = base.clone();
                target.push(name);
                targets.push(target);
            }
        }
        for target in targets {
            // The deepest common parent of the file and the target; the two children under it.
            let common = source
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common >= source.module.len() || common >= target.len() {
                continue; // a module using its own items or its descendants'
            }
            let parent = source.module[..common].to_vec();
            let (a, b) = (source.module[common].clone(), target[common].clone());
            let mut sibling = parent.clone();
            sibling.push(b.clone());
            if modules.contains(&sibling) {
                graphs
                    .entry(parent)
                    .or_default()
                    .entry(a)
                    .or_default()
                    .insert(b);
            }
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &graphs {
        for start in graph.keys() {
            // Depth-first search for a path back to `start`.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for next in graph.get(&node).into_iter().flatten() {
                    if next == start {
                        let mut cycle = trail.clone();
                        cycle.push(start.clone());
                        cycles.push(format!(
                            "crate::{}: {}",
                            parent.join("::"),
                            cycle.join(" -> ")
                        ));
                    } else if seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn lib_rs_holds_only_the_module_list_and_re_exports() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines().map(str::trim) {
        assert!(
            line.is_empty()
                || line.starts_with("//")
                || line.starts_with("pub mod ")
                || line.starts_with("pub use "),
            "lib.rs holds code: {line}"
        );
    }
}

#[test]
fn the_checker_sees_what_it_checks() {
    let paths = crate_paths(
        "use crate::platform::{db::Db, clock};\nlet x = crate::http::error::ApiError::NotFound;",
    );
    assert_eq!(
        paths,
        vec![
            vec!["platform".to_owned(), "db".into(), "Db".into()],
            vec!["platform".to_owned(), "clock".into()],
            vec![
                "http".to_owned(),
                "error".into(),
                "ApiError".into(),
                "NotFound".into()
            ],
        ]
    );
    assert!(violation("platform", "http").is_some());
    assert!(violation("tokens", "billing").is_some());
    assert!(violation("billing", "tokens").is_none());
    assert!(violation("webhooks", "cli").is_some());
    assert!(violation("cli", "app").is_none());
}
