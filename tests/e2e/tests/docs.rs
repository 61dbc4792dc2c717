//! The README and `docs/` name files that exist: every relative link, and every backticked path
//! under a top-level folder of the repository, resolves (so moving or renaming a file without
//! fixing its docs fails CI).

use std::path::{Path, PathBuf};

use terse_e2e::workspace;

const TOP_LEVEL: &[&str] = &[
    "proto/",
    "services/",
    "codecs/",
    "tokenizers/",
    "models/",
    "clients/",
    "tests/",
    "scripts/",
    "docs/",
    "deploy/",
    "config/",
    "fuzz/",
    ".ci/",
];

/// Relative link targets of `[text](target)`, without their `#fragment`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains(char::is_whitespace))
        .filter(|t| !t.starts_with("http") && !t.starts_with('#') && !t.starts_with("mailto:"))
        .map(|t| t.split('#').next().unwrap_or(t).to_string())
        .collect()
}

/// Backticked repository paths (placeholders such as `<name>` or globs skipped).
fn paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|t| t.trim_end_matches(['.', ',', ':', ';']))
        .filter(|t| !t.contains(char::is_whitespace))
        .filter(|t| TOP_LEVEL.iter().any(|top| t.starts_with(top)))
        .filter(|t| !t.contains(['<', '>', '*', '{', '}', '…', '$', '|']))
        .map(|t| t.split(':').next().unwrap_or(t).to_string())
        .collect()
}

#[test]
fn readme_and_docs_name_files_that_exist() {
    let root = workspace();
    let mut pages: Vec<PathBuf> = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut missing = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let dir = page.parent().unwrap_or(Path::new(""));
        for link in links(&text) {
            if !dir.join(&link).exists() {
                missing.push(format!("{}: link {link}", page.display()));
            }
        }
        for path in paths(&text) {
            if !root.join(&path).exists() {
                missing.push(format!("{}: path {path}", page.display()));
            }
        }
    }
    assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
    // The README stays a front door (issue 19: at most 250 lines) and keeps its two commands.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 250,
        "README.md has {} lines",
        readme.lines().count()
    );
    for command in ["scripts/serve", "scripts/test"] {
        assert!(root.join(command).exists() && readme.contains(&format!("\n{command}\n")));
    }
}
