//! The project stands alone: nothing in the repository reads or links a folder beside the clone.
//!
//! A person who clones Sliver has only the repository. Reference data the tests need (finney's
//! metadata) is committed under `metadata/` with its provenance, so no test, script or document
//! may name a path outside it.

use std::path::{Path, PathBuf};

/// Directories that are not the project's files: git's, build output, runs, local caches.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "target" | "runs" | "node_modules")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if kind.is_dir() && !skipped(&name) {
            files(&path, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

#[test]
fn no_file_names_a_folder_beside_the_clone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    // Built at run time, so that this file does not name it either.
    let needles = [
        ["..", "shared"].join("/"),
        ["shared", "DESIGN.md"].join("/"),
    ];
    let mut all = Vec::new();
    files(root, &mut all);
    assert!(
        all.iter().any(|p| p.ends_with("metadata/finney.scale")),
        "finney's metadata is committed under metadata/"
    );
    let mut offenders = Vec::new();
    for path in &all {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for needle in &needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                offenders.push(format!("{} names {needle}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files reach outside the repository:\n{}",
        offenders.join("\n")
    );
}
