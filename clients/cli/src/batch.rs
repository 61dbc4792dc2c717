//! `encode` and `decode` over many files: parallel requests, a progress bar, a summary table,
//! and a failure exit naming every file that failed.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use terse_client::{
    Client,
    proto::{audio::v1 as audio, image::v1 as image, splat::v1 as splat, tensor::v1 as weights},
};

use crate::{
    Connection,
    files::{self, Job, Kind},
    shard,
};

/// Splat quantization presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// Highest fidelity.
    High,
    /// The default trade-off.
    Balanced,
    /// Smallest files.
    Small,
    /// Web delivery: about SOG's precision, SH codebook.
    Web,
}

/// `encode` options.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    files: FileArgs,
    /// Image or audio codec name (default: the service's default).
    #[arg(long)]
    codec: Option<String>,
    /// Latent precision for image/audio codecs, 2..8 (fewer bits: smaller, lower quality).
    #[arg(long)]
    latent_bits: Option<u32>,
    /// Resample audio that is not at the codec's rate (otherwise such files fail).
    #[arg(long)]
    resample: bool,
    /// Splat preset.
    #[arg(long, value_enum, default_value_t = Preset::Balanced)]
    preset: Preset,
    /// Splat SH codebook: vector-quantize higher-order SH with up to this many k-means entries
    /// (16..65536; the service uses at most one per 16 splats and keeps per-coefficient coding
    /// when the codebook does not make the file smaller).
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=65_536))]
    sh_codebook: Option<u32>,
}

/// The files a command works on and where its outputs go.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// Files and folders (walked recursively; files of other types inside folders are skipped).
    #[arg(required_unless_present = "list")]
    inputs: Vec<PathBuf>,
    /// A file listing inputs, one path per line (relative to the list's folder, whose tree
    /// `--out` mirrors); with the positional inputs, if any.
    #[arg(long)]
    list: Option<PathBuf>,
    /// Process only shard INDEX/COUNT of the sorted inputs (a batch split over COUNT workers).
    #[arg(long, value_name = "INDEX/COUNT")]
    shard: Option<crate::shard::Shard>,
    /// Number of shards, the index coming from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job).
    #[arg(long, conflicts_with = "shard")]
    shard_count: Option<usize>,
    /// Write a JSON Lines manifest of this run's results (one row per input: status, sizes,
    /// PSNR, output SHA-256, error); rows of an earlier run's manifest are kept for inputs it
    /// skips with --skip-existing.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Output folder (mirrors the input tree); default: next to each input.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Skip inputs whose output already exists (resume an interrupted run).
    #[arg(long)]
    skip_existing: bool,
    /// Replace existing output files that terse did not write (by default the run refuses to
    /// start rather than overwrite them).
    #[arg(long, conflicts_with = "skip_existing")]
    overwrite: bool,
}

/// Image output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImageOut {
    /// Lossless PNG.
    Png,
    /// Lossless WebP.
    Webp,
}

/// Splat output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplatOut {
    /// 3DGS binary PLY.
    Ply,
    /// Niantic SPZ (latest version).
    Spz,
}

/// `decode` options.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// `.terse-image`, `.terse-audio` and `.terse-splat` files and folders.
    #[command(flatten)]
    files: FileArgs,
    /// Format of decoded images.
    #[arg(long, value_enum, default_value_t = ImageOut::Png)]
    image_format: ImageOut,
    /// Format of decoded splat scenes.
    #[arg(long, value_enum, default_value_t = SplatOut::Ply)]
    splat_format: SplatOut,
}

/// What happened to one file.
struct Outcome {
    job: Job,
    result: Result<Done, String>,
}

/// A file that was processed (or skipped because its output existed).
struct Done {
    bytes_in: u64,
    bytes_out: u64,
    /// PSNR in dB of the reconstruction (encode), when the service measured it.
    psnr_db: Option<f64>,
    skipped: bool,
}

/// Writes `bytes` to `path` through a temporary name, so an interrupted run never leaves a
/// truncated output that `--skip-existing` would trust.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))
}

async fn encode_one(client: &Client, args: &EncodeArgs, job: &Job) -> anyhow::Result<Done> {
    let data = std::fs::read(&job.input)?;
    let codec = args.codec.clone().unwrap_or_default();
    let latent_bits = args.latent_bits.unwrap_or(0);
    let (bitstream, psnr_db) = match job.kind {
        Kind::Image => {
            let options = image::EncodeOptions {
                codec,
                latent_bits,
                measure_quality: true,
                ..Default::default()
            };
            let result = client.encode_image(&data, options).await?;
            let psnr = result.rate_distortion.and_then(|rd| rd.psnr_db);
            (result.bitstream, psnr)
        }
        Kind::Audio => {
            let options = audio::EncodeOptions {
                codec,
                latent_bits,
                measure_quality: true,
                resample: args.resample,
                ..Default::default()
            };
            let result = client.encode_audio(&data, options).await?;
            let psnr = result.rate_distortion.and_then(|rd| rd.psnr_db);
            (result.bitstream, psnr)
        }
        Kind::Splat => {
            let preset = match args.preset {
                Preset::High => splat::Preset::High,
                Preset::Balanced => splat::Preset::Balanced,
                Preset::Small => splat::Preset::Small,
                Preset::Web => splat::Preset::Web,
            };
            let options = splat::EncodeOptions {
                preset: preset as i32,
                sh_codebook: args.sh_codebook,
                ..Default::default()
            };
            let result = client.encode_splat(&data, options).await?;
            // The colour PSNR is reported on the SH DC term.
            let psnr = result
                .attribute_errors
                .iter()
                .find(|e| e.attribute == "sh_dc")
                .and_then(|e| e.psnr_db);
            (result.bitstream, psnr)
        }
        // Lossless: nothing to measure.
        Kind::Tensor => {
            let result = client
                .encode_weights(&data, weights::EncodeOptions::default())
                .await?;
            (result.bitstream, None)
        }
    };
    write_atomically(&job.output, &bitstream)?;
    Ok(Done {
        bytes_in: data.len() as u64,
        bytes_out: bitstream.len() as u64,
        psnr_db,
        skipped: false,
    })
}

async fn decode_one(client: &Client, args: &DecodeArgs, job: &Job) -> anyhow::Result<Done> {
    let bitstream = std::fs::read(&job.input)?;
    let decoded = match job.kind {
        Kind::Image => {
            let format = match args.image_format {
                ImageOut::Png => image::ImageFormat::Png,
                ImageOut::Webp => image::ImageFormat::Webp,
            };
            client.decode_image(&bitstream, format).await?.image
        }
        Kind::Audio => client.decode_audio(&bitstream).await?.wav,
        Kind::Splat => {
            let format = match args.splat_format {
                SplatOut::Ply => splat::SplatFormat::Ply,
                SplatOut::Spz => splat::SplatFormat::Spz,
            };
            client.decode_splat(&bitstream, format, 0).await?.scene
        }
        Kind::Tensor => client.decode_weights(&bitstream).await?,
    };
    write_atomically(&job.output, &decoded)?;
    Ok(Done {
        bytes_in: bitstream.len() as u64,
        bytes_out: decoded.len() as u64,
        psnr_db: None,
        skipped: false,
    })
}

/// The services the jobs need (for the in-process mode).
fn services(jobs: &[Job]) -> Vec<&'static str> {
    let mut kinds: Vec<Kind> = jobs.iter().map(|job| job.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds.into_iter().map(Kind::service).collect()
}

/// Runs `command` over the jobs, `connection.jobs` at a time, with a progress bar; prints the
/// table; `Ok(false)` when any file failed.
async fn run_jobs<C: FileCommand>(
    connection: &Connection,
    jobs: Vec<Job>,
    command: &C,
) -> anyhow::Result<bool> {
    if jobs.is_empty() {
        if command.files().shard.is_some() || command.files().shard_count.is_some() {
            // More workers than files: this one has nothing to do, which is not an error.
            println!("no inputs in this shard");
            if let Some(path) = &command.files().manifest {
                shard::write_manifest(path, &[])?;
            }
            return Ok(true);
        }
        anyhow::bail!("no input files of a known type");
    }
    let (client, local) = connection.open(&services(&jobs)).await?;
    let progress = Arc::new(ProgressBar::new(jobs.len() as u64));
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}")
            .expect("valid template"),
    );
    let outcomes: Vec<Outcome> = stream::iter(jobs)
        .map(|job| {
            let progress = Arc::clone(&progress);
            let client = client.clone();
            let skip = command.files().skip_existing && job.output.exists();
            async move {
                let result = if skip {
                    Ok(Done {
                        bytes_in: file_size(&job.input),
                        bytes_out: file_size(&job.output),
                        psnr_db: None,
                        skipped: true,
                    })
                } else {
                    command
                        .process(&client, &job)
                        .await
                        .map_err(|e| format!("{e:#}"))
                };
                let outcome = Outcome { job, result };
                progress.set_message(outcome.job.input.display().to_string());
                progress.inc(1);
                outcome
            }
        })
        .buffered(connection.jobs.max(1))
        .collect()
        .await;
    progress.finish_and_clear();
    if let Some(local) = local {
        local.stop().await?;
    }
    print_table(&outcomes);
    if let Some(path) = &command.files().manifest {
        write_results(path, &outcomes)?;
    }
    let mut ok = true;
    for outcome in &outcomes {
        if let Err(message) = &outcome.result {
            eprintln!("terse-cli: {}: {message}", outcome.job.input.display());
            ok = false;
        }
    }
    Ok(ok)
}

/// The manifest of this run; skipped inputs keep their earlier row's PSNR.
fn write_results(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let earlier = shard::read_manifest(path)?;
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|outcome| {
            let job = &outcome.job;
            let kind = job.kind.name();
            match &outcome.result {
                Ok(done) => {
                    let psnr = done.psnr_db.or_else(|| {
                        earlier
                            .get(&job.input.display().to_string())
                            .and_then(|row| row["psnr_db"].as_f64())
                    });
                    let status = if done.skipped { "skipped" } else { "ok" };
                    let bytes = Some((done.bytes_in, done.bytes_out));
                    shard::row(&job.input, &job.output, kind, status, bytes, psnr, None)
                }
                Err(message) => shard::row(
                    &job.input,
                    &job.output,
                    kind,
                    "failed",
                    None,
                    None,
                    Some(message),
                ),
            }
        })
        .collect();
    shard::write_manifest(path, &rows)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Prints one row per file and a total: bytes in and out, the ratio larger/smaller, PSNR.
fn print_table(outcomes: &[Outcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.job.input.display().to_string().len())
        .max()
        .unwrap_or(4)
        .max(5);
    println!(
        "{:<width$}  {:<5}  {:>12}  {:>12}  {:>7}  {:>8}  status",
        "file", "kind", "bytes in", "bytes out", "ratio", "PSNR dB"
    );
    let ratio = |a: u64, b: u64| {
        let (big, small) = (a.max(b), a.min(b));
        if small == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", big as f64 / small as f64)
        }
    };
    let (mut total_in, mut total_out, mut failed) = (0u64, 0u64, 0usize);
    for outcome in outcomes {
        let name = outcome.job.input.display().to_string();
        match &outcome.result {
            Ok(done) => {
                total_in += done.bytes_in;
                total_out += done.bytes_out;
                println!(
                    "{name:<width$}  {:<5}  {:>12}  {:>12}  {:>7}  {:>8}  {}",
                    outcome.job.kind.name(),
                    done.bytes_in,
                    done.bytes_out,
                    ratio(done.bytes_in, done.bytes_out),
                    done.psnr_db.map_or("-".into(), |p| format!("{p:.2}")),
                    if done.skipped { "skipped" } else { "ok" }
                );
            }
            Err(_) => {
                failed += 1;
                println!(
                    "{name:<width$}  {:<5}  {:>12}  {:>12}  {:>7}  {:>8}  FAILED",
                    outcome.job.kind.name(),
                    "-",
                    "-",
                    "-",
                    "-"
                );
            }
        }
    }
    println!(
        "{:<width$}  {:<5}  {:>12}  {:>12}  {:>7}  {:>8}  {} ok, {} failed",
        format!("total ({} files)", outcomes.len()),
        "",
        total_in,
        total_out,
        ratio(total_in, total_out),
        "",
        outcomes.len() - failed,
        failed
    );
}

/// A command that turns each input file into one output file.
trait FileCommand: Send + Sync + 'static {
    /// The inputs, output folder and resume flag.
    fn files(&self) -> &FileArgs;
    /// The kind of an input file, `None` for files this command does not take.
    fn classify(path: &Path) -> Option<Kind>;
    /// The output file name of `input`.
    fn output_name(&self, input: &Path, kind: Kind) -> String;
    /// Processes one file.
    fn process(
        &self,
        client: &Client,
        job: &Job,
    ) -> impl std::future::Future<Output = anyhow::Result<Done>>;
}

impl FileCommand for EncodeArgs {
    fn files(&self) -> &FileArgs {
        &self.files
    }
    fn classify(path: &Path) -> Option<Kind> {
        Kind::of_source(path)
    }
    fn output_name(&self, input: &Path, kind: Kind) -> String {
        files::compressed_name(input, kind)
    }
    async fn process(&self, client: &Client, job: &Job) -> anyhow::Result<Done> {
        encode_one(client, self, job).await
    }
}

impl FileCommand for DecodeArgs {
    fn files(&self) -> &FileArgs {
        &self.files
    }
    fn classify(path: &Path) -> Option<Kind> {
        Kind::of_compressed(path)
    }
    fn output_name(&self, input: &Path, kind: Kind) -> String {
        let extension = match kind {
            Kind::Image => match self.image_format {
                ImageOut::Png => "png",
                ImageOut::Webp => "webp",
            },
            Kind::Audio => "wav",
            Kind::Splat => match self.splat_format {
                SplatOut::Ply => "ply",
                SplatOut::Spz => "spz",
            },
            Kind::Tensor => "safetensors",
        };
        files::decoded_name(input, extension)
    }
    async fn process(&self, client: &Client, job: &Job) -> anyhow::Result<Done> {
        decode_one(client, self, job).await
    }
}

/// The command's inputs (positional and listed), sorted by path without duplicates, and of
/// those this worker's shard, each with the folder its output tree is mirrored from.
fn inputs<C: FileCommand>(args: &FileArgs) -> anyhow::Result<Vec<(PathBuf, PathBuf, Kind)>> {
    let mut found = files::collect(&args.inputs, C::classify)?;
    if let Some(list) = &args.list {
        let root = list.parent().unwrap_or(Path::new(".")).to_path_buf();
        for (input, base, kind) in files::collect(&shard::read_list(list)?, C::classify)? {
            let base = if input.starts_with(&root) {
                root.clone()
            } else {
                base
            };
            found.push((input, base, kind));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    Ok(match shard::Shard::resolve(args.shard, args.shard_count)? {
        Some(shard) => shard.select(found),
        None => found,
    })
}

/// Collects the command's files and runs it over them.
async fn run_command<C: FileCommand>(connection: &Connection, command: C) -> anyhow::Result<bool> {
    let jobs = inputs::<C>(command.files())?
        .into_iter()
        .map(|(input, base, kind)| {
            let name = command.output_name(&input, kind);
            let output = files::output_path(&input, &base, command.files().out.as_deref(), &name);
            Job {
                input,
                kind,
                output,
            }
        })
        .collect::<Vec<Job>>();
    check_outputs(&jobs, command.files())?;
    run_jobs(connection, jobs, &command).await
}

/// Refuses, before any work, a run that would lose data (issue 18, findings 10 and 11): two
/// inputs that would write the same output, or an existing file that terse did not write (it
/// is not a terse container, e.g. the original photo a decode would replace) without
/// `--overwrite`.
fn check_outputs(jobs: &[Job], args: &FileArgs) -> anyhow::Result<()> {
    let mut writers: std::collections::BTreeMap<&Path, &Path> = Default::default();
    for job in jobs {
        if let Some(first) = writers.insert(&job.output, &job.input) {
            anyhow::bail!(
                "{} and {} would both write {}: process them into separate --out folders",
                first.display(),
                job.input.display(),
                job.output.display()
            );
        }
        if !args.skip_existing
            && !args.overwrite
            && job.output.exists()
            && !written_by_terse(&job.output)
        {
            anyhow::bail!(
                "{} exists and was not written by terse: pass --overwrite to replace it, or --out to write elsewhere",
                job.output.display()
            );
        }
    }
    Ok(())
}

/// Whether `path` starts like a terse bitstream (an earlier encode's output).
fn written_by_terse(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| terse_entropy::Container::sniff(&head))
}

/// `terse-cli encode`.
pub async fn encode(connection: &Connection, args: EncodeArgs) -> anyhow::Result<bool> {
    run_command(connection, args).await
}

/// `terse-cli decode`.
pub async fn decode(connection: &Connection, args: DecodeArgs) -> anyhow::Result<bool> {
    run_command(connection, args).await
}
