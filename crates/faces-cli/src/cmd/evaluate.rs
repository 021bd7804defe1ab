//! `faces evaluate lfw`: verification accuracy with the LFW pairs protocol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::{Confidence, Embedder, Embedding, FusionSpec};
use faces_core::eval::calibrate::{Comparison, ScoreSet};
use faces_core::eval::{self, Pair, Verification};
use faces_core::files::{write_atomically, Access};
use faces_core::image::{self, ImageLimits};
use faces_core::models::ArtifactKind;
use faces_core::{pipeline, BBox};
use rayon::prelude::*;
use serde::Serialize;

use super::calibrate as calibrate_cmd;
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
    /// Write into DIR: report.html and report.json (as `faces report`; the
    /// first model's in DIR, the others' in DIR/MODEL/), and roc.svg,
    /// wrong_pairs.csv, scores.csv (every pair under every model) and
    /// results.json comparing every model
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
    /// Decoding, detection and every evaluated recogniser, per image per core (one figure for all rows).
    ms_per_image: f64,
    /// The similarity-to-probability map fitted on all these pairs (a manifest `confidence` entry).
    confidence: Confidence,
    /// For the per-fold fusion: the same fusion fitted on every pair, as a manifest `[[fusion]]` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    fitted_on_all_pairs: Option<FusionSpec>,
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
    let recognisers = names.iter().map(|n| Embedder::load(&ctx.store, n, &options)).collect::<Result<Vec<_>, _>>()?;
    let mut images: Vec<&Path> = pairs.iter().flat_map(|p| [p.a.as_path(), p.b.as_path()]).collect();
    images.sort();
    images.dedup();

    let start = Instant::now();
    let bar = output::progress(images.len(), "embedding LFW");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(ctx.threads).build()?;
    let embedded: Vec<anyhow::Result<Embedded>> = pool.install(|| {
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
    let mut table: BTreeMap<&Path, Embedded> = BTreeMap::new();
    for (path, result) in images.iter().zip(embedded) {
        table.insert(path, result?);
    }

    let scores: Vec<Vec<f32>> =
        (0..names.len()).map(|m| score_pairs(&pairs, |p| table.get(p).and_then(|e| e.embeddings[m].as_ref()))).collect();
    let without_face = |m: usize| table.values().filter(|e| e.embeddings[m].is_none()).count();
    let mut results: Vec<ModelResult> = names
        .iter()
        .enumerate()
        .map(|(m, name)| ModelResult {
            model: name.clone(),
            verification: eval::cross_validate(&scores[m], &pairs),
            images_without_face: without_face(m),
            ms_per_image,
            confidence: fit_confidence(&scores[m], &pairs),
            fitted_on_all_pairs: None,
        })
        .collect();
    // Fit a fusion of the single recognisers per fold (fusions already in the manifest are rows above).
    let singles: Vec<usize> = (0..names.len()).filter(|&m| !ctx.store.manifest.fusion.iter().any(|f| f.name == names[m])).collect();
    if singles.len() > 1 {
        let columns: Vec<Vec<f32>> = singles.iter().map(|&m| scores[m].clone()).collect();
        let members: Vec<String> = singles.iter().map(|&m| names[m].clone()).collect();
        let spec = fit_fusion_spec(&columns, &pairs, members.clone());
        results.push(ModelResult {
            model: format!("fitted-fusion({})", members.join("+")),
            verification: eval::cross_validate_fusion(&columns, &pairs),
            images_without_face: singles.iter().map(|&m| without_face(m)).max().unwrap_or(0),
            ms_per_image,
            confidence: fit_confidence(&fused_scores(&spec, &columns), &pairs),
            fitted_on_all_pairs: Some(spec),
        });
    }
    print_results(&args, &pairs_file, &results, pairs.len())?;
    if let Some(dir) = &args.report {
        write_report(dir, &pairs, &results)?;
        // Each model's full report (the first in DIR, the others in DIR/MODEL/).
        for (i, result) in results.iter().enumerate() {
            let out = if i == 0 { dir.clone() } else { dir.join(folder_name(&result.model)) };
            let face_of = |p: &Path| table.get(p).and_then(|e| e.face);
            calibrate_cmd::write_pairs_report(&out, (&args.data, &pairs_file), &pairs, face_of, &result.model, &result.verification.scores)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every installed recogniser in manifest order, then the fusions of installed ones.
pub fn installed_recognisers(ctx: &Context) -> Vec<String> {
    let installed = |name: &str| ctx.store.require(name).is_ok();
    let manifest = &ctx.store.manifest;
    let single = manifest.artifacts.iter().filter(|a| a.kind == ArtifactKind::Recogniser && installed(&a.name));
    let fused = manifest.fusion.iter().filter(|f| f.members.iter().all(|m| installed(m)));
    single.map(|a| a.name.clone()).chain(fused.map(|f| f.name.clone())).collect()
}

/// The photo's main face: its box and each recogniser's embedding of it.
struct Embedded {
    face: Option<BBox>,
    embeddings: Vec<Option<Embedding>>,
}

fn embed_main_face(path: &Path, detector: &Detector, recognisers: &[Embedder], flip: bool) -> anyhow::Result<Embedded> {
    let img = image::load(path, &ImageLimits::default())?;
    let Some(face) = pipeline::main_face(detector, &DetectorOptions::default(), &img)? else {
        return Ok(Embedded { face: None, embeddings: vec![None; recognisers.len()] });
    };
    let embeddings = recognisers
        .iter()
        .map(|r| Ok(r.embed_faces(&img, std::slice::from_ref(&face), flip).with_context(|| path.display().to_string())?.pop()))
        .collect::<anyhow::Result<_>>()?;
    Ok(Embedded { face: Some(face.bbox), embeddings })
}

/// A logistic fusion fitted on every pair, written as a weighted mean of
/// similarities with its best-accuracy threshold (a manifest `[[fusion]]` entry).
fn fit_fusion_spec(columns: &[Vec<f32>], pairs: &[Pair], members: Vec<String>) -> FusionSpec {
    let rows: Vec<usize> = (0..pairs.len()).collect();
    let fit = eval::Fusion::fit(columns, &rows, pairs);
    let total: f64 = fit.weights.iter().map(|w| w.max(1e-6)).sum();
    let weights: Vec<f32> = fit.weights.iter().map(|w| (w.max(1e-6) / total) as f32).collect();
    let mut spec = FusionSpec { name: "fusion".into(), members, weights, threshold: 0.0, confidence: None };
    let fused = fused_scores(&spec, columns);
    let scored: Vec<(f32, bool)> = fused.iter().zip(pairs).map(|(s, p)| (*s, p.same)).collect();
    spec.threshold = eval::best_threshold(&scored);
    spec.confidence = Some(fit_confidence(&fused, pairs));
    spec
}

/// The fusion's similarity for every pair: the weighted mean of the members'.
fn fused_scores(spec: &FusionSpec, columns: &[Vec<f32>]) -> Vec<f32> {
    let n = columns.first().map_or(0, Vec::len);
    (0..n).map(|i| columns.iter().zip(&spec.weights).map(|(c, w)| w * c[i]).sum()).collect()
}

/// The same-person probability map over every pair, fitted as `faces calibrate` fits it.
fn fit_confidence(scores: &[f32], pairs: &[Pair]) -> Confidence {
    let comparisons = scores.iter().zip(pairs).map(|(&score, p)| Comparison { score, same: p.same, a: 0, b: 0 });
    faces_core::eval::calibrate::fit_confidence(&ScoreSet::from_comparisons(comparisons))
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
    let width = results.iter().map(|r| r.model.len()).max().unwrap_or(5).max(5);
    println!("{:<width$} {:>16} {:>14} {:>8} {:>10}", "MODEL", "ACCURACY", "TAR@FAR=1e-3", "AUC", "NO FACE");
    for r in results {
        let v = &r.verification;
        println!(
            "{:<width$} {:>9.2}% ±{:.2} {:>13.2}% {:>8.4} {:>10}",
            r.model,
            100.0 * v.mean_accuracy,
            100.0 * v.std_accuracy,
            100.0 * v.tar_at_far_1e3,
            v.auc,
            r.images_without_face
        );
    }
    if let Some(r) = results.first() {
        println!("{:.1} ms per image per core: decoding, detection and every model above, together", r.ms_per_image);
    }
    println!("confidence maps fitted on all these pairs (manifest `confidence` entries):");
    for r in results {
        println!("  {}: confidence = {{ intercept = {:.4}, slope = {:.4} }}", r.model, r.confidence.intercept, r.confidence.slope);
    }
    for f in results.iter().filter_map(|r| r.fitted_on_all_pairs.as_ref()) {
        println!(
            "fusion fitted on all these pairs, as a manifest entry: members = {:?}, weights = [{}], threshold = {:.4}",
            f.members,
            f.weights.iter().map(|w| format!("{w:.4}")).collect::<Vec<_>>().join(", "),
            f.threshold
        );
    }
    Ok(())
}

fn write_report(dir: &Path, pairs: &[Pair], results: &[ModelResult]) -> anyhow::Result<()> {
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
    // Every pair's score under every model, for analyses of your own.
    let mut all = String::from("fold,same,a,b");
    for result in results {
        all += &format!(",{}", result.model);
    }
    all.push('\n');
    for (i, p) in pairs.iter().enumerate() {
        all += &format!("{},{},{},{}", p.fold, p.same, p.a.display(), p.b.display());
        for result in results {
            all += &format!(",{:.6}", result.verification.scores.get(i).copied().unwrap_or(f32::NAN));
        }
        all.push('\n');
    }
    write(dir, "roc.svg", eval::roc_svg(&curves).as_bytes())?;
    write(dir, "wrong_pairs.csv", wrong.as_bytes())?;
    write(dir, "scores.csv", all.as_bytes())?;
    write(dir, "results.json", serde_json::to_string_pretty(results)?.as_bytes())?;
    eprintln!("report written to {}", dir.display());
    Ok(())
}

/// A model name as a folder name: `fitted-fusion(a+b)` becomes `fitted-fusion-a-b`.
fn folder_name(model: &str) -> String {
    let mapped: String = model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    mapped.trim_matches('-').to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(write_atomically(&dir.join(name), bytes, Access::Shared)?)
}
