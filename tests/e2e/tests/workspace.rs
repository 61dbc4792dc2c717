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

/// The layer rule: nothing under `codecs/` or `tokenizers/` reaches `tonic`, ONNX Runtime
/// (`ort`) or a `services/*` crate, through its dependencies of any kind (dev-dependencies
/// included) and theirs.
#[test]
fn codecs_and_tokenizers_reach_no_service_tonic_or_onnx_runtime() {
    let root = workspace();
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let host = rustc
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_string();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let by_id = |id: &str| packages.iter().find(|p| p["id"] == id).unwrap();
    let under = |package: &serde_json::Value, folder: &str| {
        let manifest = package["manifest_path"].as_str().unwrap();
        std::path::Path::new(manifest).starts_with(root.join(folder))
    };
    let nodes = metadata["resolve"]["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    let forbidden = |package: &serde_json::Value| {
        let name = package["name"].as_str().unwrap();
        name == "tonic" || name == "ort" || under(package, "services")
    };
    let mut checked = 0;
    for member in metadata["workspace_members"].as_array().unwrap() {
        let member = member.as_str().unwrap();
        let package = by_id(member);
        if !under(package, "codecs") && !under(package, "tokenizers") {
            continue;
        }
        checked += 1;
        // Direct dependencies of every kind, then what they need to build (normal and build
        // dependencies), transitively.
        let mut stack: Vec<(String, Vec<String>)> = node(member)["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["pkg"].as_str().unwrap().to_string(), vec![]))
            .collect();
        let mut seen = std::collections::HashSet::new();
        while let Some((id, mut path)) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let package = by_id(&id);
            path.push(package["name"].as_str().unwrap().to_string());
            assert!(
                !forbidden(package),
                "{} reaches {}",
                by_id(member)["name"],
                path.join(" → ")
            );
            for dep in node(&id)["deps"].as_array().unwrap() {
                let builds = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"] != "dev");
                if builds {
                    stack.push((dep["pkg"].as_str().unwrap().to_string(), path.clone()));
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} codec and tokenizer crates found"
    );
}
