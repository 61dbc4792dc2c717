//! Workspace policy: every crate takes the workspace's lint table (`[lints] workspace = true`),
//! except `terse-proto`, whose code is generated from `proto/` without doc comments on every
//! field.

use terse_e2e::workspace;

#[test]
fn every_crate_uses_the_workspace_lints() {
    let root = workspace();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = &manifest[manifest.find("members = [").unwrap()..];
    let members = &members[..members.find(']').unwrap()];
    let mut missing = Vec::new();
    for member in members.split('"').skip(1).step_by(2) {
        if member == "proto" {
            continue;
        }
        let text = std::fs::read_to_string(root.join(member).join("Cargo.toml")).unwrap();
        if !text.contains("[lints]\nworkspace = true") {
            missing.push(member);
        }
    }
    assert!(
        missing.is_empty(),
        "without [lints] workspace = true: {missing:?}"
    );
    assert!(manifest.contains("[workspace.lints.rust]"));
}
