//! The layering rule of ARCHITECTURE.md, checked on the source: each library module imports
//! only modules of lower layers, and only the binary's edge (`app`) uses `anyhow`.
//!
//! It reads `crate::NAME` paths (also inside `use crate::{a, b::c}` groups) in every file of a
//! module, leaving out its test code (files named `*tests*`/`test_support`, and what follows a
//! `#[cfg(test)]` module line). The shared test harnesses (`test_*`) may be used anywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first; a module may import any module of a lower layer and none of its own or higher.
const LAYERS: &[&[&str]] = &[
    // Leaves: plain data, the component parts that need nothing else of Atlas.
    &[
        "redact", "config", "spec", "secrets", "model", "audio", "intent",
    ],
    &["stt", "tts", "store"],
    &["template"],
    &["actions"],
    &["workflow"],
    &["engine"],
    &["triggers", "voice"],
    // The desktop (hotkey, tray, notifications) sits high so that nothing under the agent, and
    // no audio, speech or matching code, can reach it.
    &["desktop", "integrations"],
    &["agent"],
    // Atlas as an MCP server (tools and resources over the engine, the store and the voice loop).
    &["mcp"],
    // The HTTP edge of the daemon: control API and webhooks, over the engine and voice loop.
    &["api"],
    // Composition: builds the parts into a runtime and a daemon.
    &["runtime"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's text without its test code.
fn non_test_text(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.contains("tests") || name.starts_with("test_") || name == "test_support.rs" {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut kept = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        // The item under the attribute: one line (`use ...;`, `mod x;`) or a braced block.
        let mut depth = 0i32;
        for item in lines.by_ref() {
            depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
            if depth <= 0 {
                break;
            }
        }
    }
    Some(kept)
}

/// The top-level modules a text names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the names at the group's first level.
            let mut depth = 0;
            let mut at_item_start = true;
            let mut word = String::new();
            for c in group.chars() {
                if c.is_alphanumeric() || c == '_' {
                    if at_item_start && depth == 0 {
                        word.push(c);
                    }
                    continue;
                }
                if !word.is_empty() {
                    found.insert(std::mem::take(&mut word));
                    at_item_start = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_item_start = true,
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// The library module a file of `src/` belongs to (`src/engine/task.rs` is `engine`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn each_module_imports_only_lower_layers() {
    let mut broken = Vec::new();
    let mut seen = BTreeSet::new();
    for file in rust_files(&src()) {
        let module = module_of(&file);
        if matches!(module.as_str(), "app" | "bin" | "main" | "lib") || module.starts_with("test_")
        {
            continue;
        }
        let Some(layer) = layer_of(&module) else {
            broken.push(format!(
                "{}: module `{module}` has no layer in tests/layering.rs (and ARCHITECTURE.md)",
                file.display()
            ));
            continue;
        };
        seen.insert(module.clone());
        let Some(text) = non_test_text(&file) else {
            continue;
        };
        for imported in imports(&text) {
            if imported == module || imported.starts_with("test_") {
                continue;
            }
            match layer_of(&imported) {
                Some(l) if l < layer => {}
                Some(_) => broken.push(format!(
                    "{}: `{module}` (layer {layer}) imports `{imported}`, which is not below it",
                    file.display()
                )),
                None => broken.push(format!(
                    "{}: `{module}` imports `crate::{imported}`, which is no layered module",
                    file.display()
                )),
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // The rule covers every module the library has (a renamed one cannot slip out of it).
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .map(|m| m.to_string())
        .collect();
    assert_eq!(seen, listed, "modules in src/ vs. LAYERS");
}

#[test]
fn only_the_binary_edge_uses_anyhow() {
    let mut users = Vec::new();
    for file in rust_files(&src()) {
        let module = module_of(&file);
        if matches!(module.as_str(), "app" | "main") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("anyhow") {
            users.push(file.display().to_string());
        }
    }
    assert!(users.is_empty(), "anyhow outside src/app: {users:?}");
}

#[test]
fn the_import_reader_sees_groups_and_skips_test_code() {
    let found =
        imports("use crate::{config::X, store::{A, B}, voice};\nlet x = crate::engine::f();");
    let expected: BTreeSet<String> = ["config", "store", "voice", "engine"]
        .map(String::from)
        .into();
    assert_eq!(found, expected);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.rs");
    std::fs::write(
        &file,
        "use crate::config::C;\n#[cfg(test)]\nuse crate::desktop::D;\n#[cfg(test)]\nmod tests {\n    use crate::agent::A;\n}\nfn f() { crate::store::g() }\n",
    )
    .unwrap();
    let text = non_test_text(&file).unwrap();
    assert_eq!(
        imports(&text),
        BTreeSet::from(["config".to_owned(), "store".to_owned()])
    );
}
