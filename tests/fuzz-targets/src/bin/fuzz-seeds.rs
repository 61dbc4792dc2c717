//! Writes each target's seeds (valid inputs made from the fixtures) into
//! `<dir>/<target>/seed-<n>` (default dir: fuzz/corpus), keeping files already there.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| terse_fuzz_targets::workspace().join("fuzz/corpus"));
    for target in terse_fuzz_targets::TARGETS {
        let dir = root.join(target.name);
        std::fs::create_dir_all(&dir)?;
        let seeds = (target.seeds)();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
        println!("{:<24} {} seed(s)", target.name, seeds.len());
    }
    Ok(())
}
