//! `faces evaluate lfw`: verification accuracy with the LFW pairs protocol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::{Embedding, Recogniser};
use faces_core::eval::{self, Pair, Verification};
use faces_core::image::{self, ImageLimits};
use faces_core::models::ArtifactKind;
use faces_core::pipeline;
use rayon::prelude::*;
use serde::Serialize;

use crate::{output, Context};

#[derive(Subcommand)]
pub enum Command {
    Lfw(LfwArgs),
}

/// Verification accuracy on Labeled Faces in the Wild.
///
/// View 2 (`pairs.txt`, the default): 10 folds of 300 matched and 300
/// mismatched pairs; for each fold the threshold is chosen on the other nine
/// and accuracy measured on it. Also reports the true-accept rate at a
/// false-accept rate of 1e-3 over all pairs, and the AUC. With --pairs on a
/// View 1 file (one fold) the threshold is chosen and tested on the same pairs.
///
/// The main face of each photo is used (largest, nearest the centre); photos
/// where no face is found score -1 and count as errors.
///
/// Example:
///   faces evaluate lfw --data ../shared/data/lfw --report lfw-report/
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct LfwArgs {
    /// LFW folder: one sub-folder per person, and the pairs files
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Pairs file [default: DIR/pairs.txt]
    #[arg(long, value_name = "FILE")]
    pairs: Option<PathBuf>,
    /// Recogniser to evaluate; repeat for several [default: every installed recogniser]
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// Embed each face alone, without averaging it with its mirror image
    #[arg(long)]
    no_flip: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Write roc.svg, wrong_pairs.csv and results.json into DIR
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

#[derive(Serialize)]
struct ModelResult {
    model: String,
    #[serde(flatten)]
    verification: Verification,
    /// Images in which no face was found.
    images_without_face: usize,
    ms_per_image: f64,
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Lfw(args) => lfw(ctx, args),
    }
}

fn lfw(ctx: &Context, args: LfwArgs) -> anyhow::Result<ExitCode> {
    let pairs_file = args.pairs.clone().unwrap_or_else(|| args.data.join("pairs.txt"));
    let pairs = eval::read_lfw_pairs(&pairs_file, &args.data)?;
    let names = if args.models.is_empty() { installed_recognisers(ctx) } else { args.models.clone() };
    if names.is_empty() {
        anyhow::bail!("no recogniser installed; run `faces models install`");
    }
    let options = ctx.engine_options(ctx.threads);
    let detector = Detector::load(&ctx.store, &options)?;
    let recognisers = names.iter().map(|n| Recogniser::load(&ctx.store, n, &options)).collect::<Result<Vec<_>, _>>()?;
    let mut images: Vec<&Path> = pairs.iter().flat_map(|p| [p.a.as_path(), p.b.as_path()]).collect();
    images.sort();
    images.dedup();

    let start = Instant::now();
    let bar = output::progress(images.len(), "embedding LFW");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(ctx.threads).build()?;
    let embedded: Vec<anyhow::Result<Vec<Option<Embedding>>>> = pool.install(|| {
        images
            .par_iter()
            .map(|path| {
                let r = embed_main_face(path, &detector, &recognisers, !args.no_flip);
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let ms_per_image = start.elapsed().as_secs_f64() * 1e3 * ctx.threads as f64 / images.len().max(1) as f64;
    let mut table: BTreeMap<&Path, Vec<Option<Embedding>>> = BTreeMap::new();
    for (path, result) in images.iter().zip(embedded) {
        table.insert(path, result?);
    }

    let scores: Vec<Vec<f32>> =
        (0..names.len()).map(|m| score_pairs(&pairs, |p| table.get(p).and_then(|e| e[m].as_ref()))).collect();
    let without_face = |m: usize| table.values().filter(|e| e[m].is_none()).count();
    let mut results: Vec<ModelResult> = names
        .iter()
        .enumerate()
        .map(|(m, name)| ModelResult {
            model: name.clone(),
            verification: eval::cross_validate(&scores[m], &pairs),
            images_without_face: without_face(m),
            ms_per_image,
        })
        .collect();
    if names.len() > 1 {
        results.push(ModelResult {
            model: format!("fusion({})", names.join("+")),
            verification: eval::cross_validate_fusion(&scores, &pairs),
            images_without_face: (0..names.len()).map(without_face).max().unwrap_or(0),
            ms_per_image,
        });
    }
    print_results(&args, &pairs_file, &results, pairs.len())?;
    if let Some(dir) = &args.report {
        write_report(dir, &pairs, &results)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every installed recogniser, in manifest order.
pub fn installed_recognisers(ctx: &Context) -> Vec<String> {
    ctx.store
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Recogniser && ctx.store.require(&a.name).is_ok())
        .map(|a| a.name.clone())
        .collect()
}

fn embed_main_face(path: &Path, detector: &Detector, recognisers: &[Recogniser], flip: bool) -> anyhow::Result<Vec<Option<Embedding>>> {
    let img = image::load(path, &ImageLimits::default())?;
    let Some(face) = pipeline::main_face(detector, &DetectorOptions::default(), &img)? else {
        return Ok(vec![None; recognisers.len()]);
    };
    recognisers
        .iter()
        .map(|r| {
            let crop = r.align(&img, &face);
            Ok(r.embed_crops(&[crop], flip).with_context(|| path.display().to_string())?.pop())
        })
        .collect()
}

/// Cosine similarity of each pair; -1 when either photo has no face.
fn score_pairs<'a>(pairs: &[Pair], lookup: impl Fn(&Path) -> Option<&'a Embedding>) -> Vec<f32> {
    pairs
        .iter()
        .map(|p| match (lookup(&p.a), lookup(&p.b)) {
            (Some(a), Some(b)) => a.similarity(b),
            _ => -1.0,
        })
        .collect()
}

fn print_results(args: &LfwArgs, pairs_file: &Path, results: &[ModelResult], n: usize) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(results)?);
        return Ok(());
    }
    let folds = results.first().map_or(0, |r| r.verification.folds.len());
    println!("{} ({n} pairs, {folds} fold(s)){}", pairs_file.display(), if args.no_flip { "" } else { ", flip averaging on" });
    println!("{:<16} {:>16} {:>14} {:>8} {:>10} {:>12}", "MODEL", "ACCURACY", "TAR@FAR=1e-3", "AUC", "NO FACE", "MS/IMAGE");
    for r in results {
        let v = &r.verification;
        println!(
            "{:<16} {:>9.2}% ±{:.2} {:>13.2}% {:>8.4} {:>10} {:>12.1}",
            r.model,
            100.0 * v.mean_accuracy,
            100.0 * v.std_accuracy,
            100.0 * v.tar_at_far_1e3,
            v.auc,
            r.images_without_face,
            r.ms_per_image
        );
    }
    Ok(())
}

fn write_report(dir: &Path, pairs: &[Pair], results: &[ModelResult]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut curves = Vec::new();
    let mut wrong = String::from("model,fold,same,score,threshold,a,b\n");
    for result in results {
        let (name, scores) = (&result.model, &result.verification.scores);
        let scored: Vec<(f32, bool)> = scores.iter().copied().zip(pairs.iter().map(|p| p.same)).collect();
        curves.push((format!("{name} ({:.2}%)", 100.0 * result.verification.mean_accuracy), eval::roc(&scored)));
        for (p, &s) in pairs.iter().zip(scores) {
            let t = result.verification.folds.get(p.fold).map_or(0.0, |f| f.threshold);
            if (s >= t) != p.same {
                wrong += &format!("{name},{},{},{s:.4},{t:.4},{},{}\n", p.fold, p.same, p.a.display(), p.b.display());
            }
        }
    }
    write(dir, "roc.svg", eval::roc_svg(&curves).as_bytes())?;
    write(dir, "wrong_pairs.csv", wrong.as_bytes())?;
    write(dir, "results.json", serde_json::to_string_pretty(results)?.as_bytes())?;
    eprintln!("report written to {}", dir.display());
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path: PathBuf = dir.join(name);
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), bytes).with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
