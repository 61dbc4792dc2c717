//! Batch jobs over many workers: which inputs this worker takes (`--shard`), and the manifest of
//! results it writes (`--manifest`), which a rerun reads back to resume.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Worker `index` of `count`: takes every input whose position in the sorted input list is
/// `index` modulo `count`, so the shards are disjoint, cover everything and differ in size by
/// at most one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This worker, `0..count`.
    pub index: usize,
    /// Workers in all.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    /// `INDEX/COUNT`, e.g. `3/16`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not INDEX/COUNT"))?;
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{index}` is not a number"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{count}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= INDEX < COUNT"));
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// The shard from `--shard`, else from `$JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job)
    /// with `count` from `--shard-count`.
    pub fn resolve(explicit: Option<Shard>, count: Option<usize>) -> anyhow::Result<Option<Shard>> {
        if let Some(shard) = explicit {
            return Ok(Some(shard));
        }
        let Some(count) = count else {
            return Ok(None);
        };
        let index = std::env::var("JOB_COMPLETION_INDEX")
            .context("--shard-count without --shard needs $JOB_COMPLETION_INDEX")?;
        Shard::from_str(&format!("{index}/{count}"))
            .map(Some)
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Keeps this shard's items of a list already in its final (sorted) order.
    pub fn select<T>(self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, item)| item)
            .collect()
    }
}

/// Paths listed in an object-list file, one per line (blank lines and `#` comments skipped),
/// relative ones resolved against the list's folder.
pub fn read_list(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read input list {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let paths: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect();
    if paths.is_empty() {
        bail!("input list {} names no file", path.display());
    }
    Ok(paths)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The manifest rows of an earlier run, by input path (a missing file is an empty manifest).
pub fn read_manifest(path: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(BTreeMap::new());
    };
    let mut rows = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON line", path.display(), number + 1))?;
        if let Some(input) = row["input"].as_str() {
            rows.insert(input.to_string(), row);
        }
    }
    Ok(rows)
}

/// Writes the manifest (JSON Lines, one row per input of this run) through a temporary file.
pub fn write_manifest(path: &Path, rows: &[Value]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let mut file =
        std::fs::File::create(&partial).with_context(|| format!("writing {}", path.display()))?;
    for row in rows {
        writeln!(file, "{row}")?;
    }
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))
}

/// One manifest row.
pub fn row(
    input: &Path,
    output: &Path,
    kind: &str,
    status: &str,
    bytes: Option<(u64, u64)>,
    psnr_db: Option<f64>,
    error: Option<&str>,
) -> Value {
    let sha256 = if status == "failed" {
        None
    } else {
        sha256_file(output).ok()
    };
    json!({
        "input": input.display().to_string(),
        "output": output.display().to_string(),
        "kind": kind,
        "status": status,
        "bytes_in": bytes.map(|b| b.0),
        "bytes_out": bytes.map(|b| b.1),
        "psnr_db": psnr_db,
        "output_sha256": sha256,
        "error": error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_everything() {
        let items: Vec<usize> = (0..23).collect();
        let mut seen = Vec::new();
        for index in 0..4 {
            let shard = Shard { index, count: 4 };
            let part = shard.select(items.clone());
            assert!(part.len() == 5 || part.len() == 6);
            seen.extend(part);
        }
        seen.sort();
        assert_eq!(seen, items);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
