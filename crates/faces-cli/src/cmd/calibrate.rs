//! `faces calibrate` and `faces report`: score a labelled data set (or an
//! LFW-style pairs file), choose the threshold for a target false-match rate,
//! break errors down by user-labelled group, and write the evaluation report.
//! `calibrate` stores its threshold in a gallery; `report` only reports.

mod html;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use faces_core::dataset::Dataset;
use faces_core::embed::{Confidence, Embedding};
use faces_core::eval::calibrate::{self, Calibration, Comparison, HeldOut, Rng, ScoreSet, Support};
use faces_core::eval::groups::{GroupCounter, GroupLabels};
use faces_core::eval::identification::{self, Samples};
use faces_core::eval::report::{self, Report};
use faces_core::eval::{self as evaluation};
use faces_core::files::{write_atomically, Access};
use faces_core::gallery::{Gallery, Threshold};
use faces_core::image::{self, ImageLimits};
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::{EmbeddedFace, Pipeline};
use faces_core::BBox;
use rayon::prelude::*;
use serde::Serialize;

use crate::{output, Context};

/// Seed of every bootstrap, so reruns give the same intervals.
const SEED: u64 = 0x5EED_FACE;

/// What both commands read and measure.
#[derive(clap::Args)]
pub struct Source {
    /// A folder with one sub-folder per person or a CSV manifest (path,subject);
    /// with --pairs, the folder holding the pairs' person folders (LFW layout)
    #[arg(value_name = "DATASET")]
    dataset: PathBuf,
    /// An LFW-style pairs file (pairs.txt, pairsDevTrain.txt): compare only
    /// these pairs; with several folds, also check each fold against a
    /// threshold chosen on the others
    #[arg(long, value_name = "FILE")]
    pairs: Option<PathBuf>,
    /// Recogniser [default: the gallery's, else sface]
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Target false-match rate: the share of different-person pairs you accept being called the same
    #[arg(long, default_value_t = 1e-3, value_name = "RATE")]
    fmr: f64,
    /// CSV mapping subjects to groups (`subject,ATTRIBUTE...`, any columns you
    /// have: age band, sex, data source...): FMR and FNMR per group
    #[arg(long, value_name = "CSV")]
    groups: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Choose a gallery's threshold from the false-match rate you can accept.
///
/// Embeds the main face of every photo of a labelled data set and compares
/// every pair: genuine pairs (same subject) and impostor pairs (different
/// subjects). The threshold is the lowest similarity at which at most --fmr of
/// the impostor pairs match; the false non-match rate (FNMR: genuine pairs
/// missed) is measured there. Each figure has a 95% bootstrap interval
/// (resampling the pairs). With n impostor pairs the smallest rate that can be
/// measured is 1/n: a target below that is refused (exit 1) unless --force,
/// and fewer than 10 expected false matches are called imprecise.
///
/// With --gallery the threshold, the target and how they were obtained are
/// stored in the gallery, with a similarity-to-probability map fitted on the
/// same pairs; `faces identify` uses both from then on. Use photos of the
/// people and conditions you will meet, not the photos you enrolled.
///
/// Examples:
///   faces calibrate staff-photos/ --gallery club.gallery --fmr 1e-3
///   faces calibrate ../shared/data/lfw --pairs ../shared/data/lfw/pairs.txt --report lfw-report/
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct CalibrateArgs {
    #[command(flatten)]
    source: Source,
    /// Gallery to store the threshold in (its recogniser is used)
    #[arg(long, value_name = "FILE")]
    gallery: Option<PathBuf>,
    /// Also write report.html and report.json into DIR
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Store the threshold even when the data cannot measure the target rate
    #[arg(long)]
    force: bool,
}

/// An evaluation report: one self-contained HTML page and the same figures as JSON.
///
/// Measures as `faces calibrate` does (every pair of a labelled data set, or
/// the pairs of --pairs), then writes into --out DIR:
///   report.html  ROC and DET curves (log false-match axis), genuine and
///                impostor score histograms with the threshold marked, FMR and
///                FNMR at a range of thresholds, the worst false matches and
///                false non-matches as side-by-side face thumbnails with their
///                scores, per-fold checks (pairs files), group breakdown
///                (--groups), and for data sets the identification protocol
///                (each subject's first photo enrolled, the rest probes,
///                single-photo subjects as strangers): rank-1, CMC and FNIR at
///                fixed FPIR
///   report.json  the same figures
/// Decisions are made at --threshold, else the gallery's (--gallery), else the
/// threshold for --fmr. The report shows faces and names: it is readable by you only.
///
/// Examples:
///   faces report staff-photos/ --out report/ --groups staff-groups.csv
///   faces report ../shared/data/lfw --pairs ../shared/data/lfw/pairs.txt --out lfw-report/
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// Folder for report.html and report.json (created if needed)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Make decisions at this similarity
    #[arg(long)]
    threshold: Option<f32>,
    /// Take the threshold (and recogniser) from this gallery
    #[arg(long, value_name = "FILE")]
    gallery: Option<PathBuf>,
}

/// One photo of the comparison set: its subject and its main face's box, if one was found.
pub struct Photo {
    pub path: PathBuf,
    pub subject: u32,
    pub face: Option<BBox>,
}

/// The measured set: photos, subjects, and their comparisons' scores.
pub struct Measured {
    photos: Vec<Photo>,
    subjects: Vec<String>,
    /// Index into `photos` of each sample in the comparisons.
    sample_photo: Vec<usize>,
    scores: ScoreSet,
    /// For a pairs file: each pair's comparison and fold.
    pairs: Option<(Vec<Comparison>, Vec<usize>)>,
    /// For a data set: the embedded samples.
    samples: Option<Samples>,
}

impl Measured {
    fn without_face(&self) -> usize {
        self.photos.iter().filter(|p| p.face.is_none()).count()
    }

    fn describe(&self, sample: u32) -> (String, String) {
        let photo = &self.photos[self.sample_photo[sample as usize]];
        (photo.path.display().to_string(), self.subjects[photo.subject as usize].clone())
    }
}

pub fn calibrate(ctx: &Context, args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let mut gallery = args.gallery.as_deref().map(Gallery::open).transpose()?;
    let model = model_name(&args.source, gallery.as_ref())?;
    let measured = measure(ctx, &args.source, &model, gallery.as_ref().is_none_or(|g| g.recogniser.flip))?;
    let mut rng = Rng::new(SEED);
    let calibration = calibrate::calibrate(&measured.scores, args.source.fmr, &mut rng);
    let confidence = calibrate::fit_confidence(&measured.scores);
    let held_out = held_out(&measured, args.source.fmr, &mut rng);
    let refused = calibration.support == Support::Unsupported && !args.force;
    if !calibration.warning.is_empty() {
        eprintln!("faces: warning: {}", calibration.warning);
    }
    let mut stored = false;
    if let (Some(g), false) = (gallery.as_mut(), refused) {
        let source = format!(
            "calibrated for FMR {:.0e} on {} ({} genuine, {} impostor pairs), {}",
            args.source.fmr,
            args.source.pairs.as_deref().unwrap_or(&args.source.dataset).display(),
            calibration.genuine_pairs,
            calibration.impostor_pairs,
            faces_core::privacy::consent::today()
        );
        let record = serde_json::json!({ "calibration": &calibration, "confidence": confidence, "source": source });
        g.set_calibration(Threshold { value: calibration.threshold, source }, confidence, &record)?;
        stored = true;
    }
    let threshold = (calibration.threshold, format!("chosen for FMR {:.0e}", args.source.fmr));
    let report = build_report(&measured, &args.source, &model, calibration, threshold, held_out, &mut rng)?;
    if let Some(dir) = &args.report {
        write_report(dir, &report, &measured)?;
    }
    print_calibration(&args.source, &report, confidence, stored.then_some(args.gallery.as_deref()).flatten())?;
    if refused {
        let what = if args.gallery.is_some() { "nothing was stored; " } else { "" };
        eprintln!("faces: error: the data cannot support FMR {:.0e}: {what}use more pairs, a higher --fmr, or --force", args.source.fmr);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn report(ctx: &Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let gallery = args.gallery.as_deref().map(Gallery::open).transpose()?;
    let model = model_name(&args.source, gallery.as_ref())?;
    let measured = measure(ctx, &args.source, &model, gallery.as_ref().is_none_or(|g| g.recogniser.flip))?;
    let mut rng = Rng::new(SEED);
    let calibration = calibrate::calibrate(&measured.scores, args.source.fmr, &mut rng);
    if !calibration.warning.is_empty() {
        eprintln!("faces: warning: {}", calibration.warning);
    }
    let threshold = match (args.threshold, &gallery) {
        (Some(t), _) => (t, "given with --threshold".to_string()),
        (None, Some(g)) => (g.threshold.value, format!("the gallery's: {}", g.threshold.source)),
        (None, None) => (calibration.threshold, format!("chosen for FMR {:.0e}", args.source.fmr)),
    };
    let held_out = held_out(&measured, args.source.fmr, &mut rng);
    let report = build_report(&measured, &args.source, &model, calibration, threshold, held_out, &mut rng)?;
    write_report(&args.out, &report, &measured)?;
    if args.source.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn model_name(source: &Source, gallery: Option<&Gallery>) -> anyhow::Result<String> {
    match (gallery, &source.model) {
        (Some(g), Some(m)) if *m != g.recogniser.name => {
            anyhow::bail!("the gallery's templates were made by {}; drop --model or pass --model {}", g.recogniser.name, g.recogniser.name)
        }
        (Some(g), _) => Ok(g.recogniser.name.clone()),
        (None, Some(m)) => Ok(m.clone()),
        (None, None) => Ok(DEFAULT_RECOGNISER.to_string()),
    }
}

/// Reads the photos, embeds each one's main face in parallel, and scores the comparisons.
fn measure(ctx: &Context, source: &Source, model: &str, flip: bool) -> anyhow::Result<Measured> {
    if !(source.fmr > 0.0 && source.fmr < 1.0) {
        anyhow::bail!("--fmr {} must lie between 0 and 1 (such as 1e-3)", source.fmr);
    }
    let (paths, subject_names, pair_list) = match &source.pairs {
        Some(file) => {
            let pairs = evaluation::read_lfw_pairs(file, &source.dataset)?;
            let (paths, names) = pair_photos(&pairs);
            (paths, names, Some(pairs))
        }
        None => {
            let dataset = Dataset::open(&source.dataset)?;
            let (paths, names) = dataset.samples.into_iter().map(|s| (s.path, s.subject)).unzip();
            (paths, names, None)
        }
    };
    let (subjects, subject_ids) = index_subjects(&subject_names);

    let workers = paths.len().clamp(1, ctx.threads);
    let mut pipeline = Pipeline::load(&ctx.store, model, &ctx.engine_options(workers))?;
    pipeline.flip = flip;
    let bar = output::progress(paths.len(), "embedding");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    let faces: Vec<Option<EmbeddedFace>> = pool.install(|| {
        paths
            .par_iter()
            .map(|path| {
                let face = image::load(path, &ImageLimits::default()).and_then(|img| pipeline.main_face(&img));
                bar.inc(1);
                face.map_err(|e| {
                    bar.suspend(|| eprintln!("faces: {}", output::error_line(&path.display().to_string(), &e.to_string())));
                })
                .ok()
                .flatten()
            })
            .collect()
    });
    bar.finish_and_clear();
    let photos: Vec<Photo> = paths
        .into_iter()
        .zip(subject_ids)
        .zip(&faces)
        .map(|((path, subject), face)| Photo { path, subject, face: face.as_ref().map(|f| f.face.bbox) })
        .collect();
    let embeddings: Vec<Option<Embedding>> = faces.into_iter().map(|f| f.map(|f| f.embedding)).collect();
    match pair_list {
        Some(pairs) => {
            let index: HashMap<&Path, usize> = photos.iter().enumerate().map(|(i, p)| (p.path.as_path(), i)).collect();
            let scores = pairs
                .iter()
                .map(|p| match (&embeddings[index[p.a.as_path()]], &embeddings[index[p.b.as_path()]]) {
                    (Some(x), Some(y)) => x.similarity(y),
                    _ => -1.0,
                })
                .collect::<Vec<f32>>();
            Ok(Measured::for_pairs(photos, subjects, &pairs, &scores))
        }
        None => measure_dataset(photos, subjects, &embeddings, pool, pipeline.embedder.embedding_size),
    }
}

/// Every photo of the pairs once, sorted, with its subject: the LFW layout's person folder.
fn pair_photos(pairs: &[evaluation::Pair]) -> (Vec<PathBuf>, Vec<String>) {
    let mut paths: Vec<PathBuf> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    paths.sort();
    paths.dedup();
    let names = paths.iter().map(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    (paths, names)
}

/// The sorted distinct subjects, and each name's index among them.
fn index_subjects(names: &[String]) -> (Vec<String>, Vec<u32>) {
    let mut subjects = names.to_vec();
    subjects.sort();
    subjects.dedup();
    let ids = names.iter().map(|n| subjects.binary_search(n).unwrap_or(0) as u32).collect();
    (subjects, ids)
}

/// `faces evaluate lfw --report`: the same report as `faces report --pairs`,
/// from scores already measured. `face_of` gives each photo's main face box.
pub fn write_pairs_report(
    out: &Path,
    (data, pairs_file): (&Path, &Path),
    pairs: &[evaluation::Pair],
    face_of: impl Fn(&Path) -> Option<BBox>,
    model: &str,
    scores: &[f32],
) -> anyhow::Result<()> {
    let (paths, names) = pair_photos(pairs);
    let (subjects, ids) = index_subjects(&names);
    let photos = paths.into_iter().zip(ids).map(|(path, subject)| Photo { face: face_of(&path), path, subject }).collect();
    let measured = Measured::for_pairs(photos, subjects, pairs, scores);
    let source = Source {
        dataset: data.to_path_buf(),
        pairs: Some(pairs_file.to_path_buf()),
        model: Some(model.to_string()),
        fmr: 1e-3,
        groups: None,
        json: false,
    };
    let mut rng = Rng::new(SEED);
    let calibration = calibrate::calibrate(&measured.scores, source.fmr, &mut rng);
    let threshold = (calibration.threshold, format!("chosen for FMR {:.0e}", source.fmr));
    let held_out = held_out(&measured, source.fmr, &mut rng);
    let report = build_report(&measured, &source, model, calibration, threshold, held_out, &mut rng)?;
    write_report(out, &report, &measured)
}

impl Measured {
    /// The pairs' comparisons with their scores (a pair with a photo without
    /// a face scores -1, an error, as in `faces evaluate`). Every pair's
    /// photos are in `photos`.
    pub fn for_pairs(photos: Vec<Photo>, subjects: Vec<String>, pairs: &[evaluation::Pair], scores: &[f32]) -> Measured {
        let index: HashMap<&Path, usize> = photos.iter().enumerate().map(|(i, p)| (p.path.as_path(), i)).collect();
        let comparisons: Vec<Comparison> = pairs
            .iter()
            .zip(scores)
            .map(|(p, &score)| Comparison { score, same: p.same, a: index[p.a.as_path()] as u32, b: index[p.b.as_path()] as u32 })
            .collect();
        let folds = pairs.iter().map(|p| p.fold).collect();
        Measured {
            sample_photo: (0..photos.len()).collect(),
            scores: ScoreSet::from_comparisons(comparisons.iter().copied()),
            pairs: Some((comparisons, folds)),
            samples: None,
            photos,
            subjects,
        }
    }
}

/// Every pair of photos with a face.
fn measure_dataset(
    photos: Vec<Photo>,
    subjects: Vec<String>,
    embeddings: &[Option<Embedding>],
    pool: rayon::ThreadPool,
    dim: usize,
) -> anyhow::Result<Measured> {
    let sample_photo: Vec<usize> = (0..photos.len()).filter(|&i| embeddings[i].is_some()).collect();
    if sample_photo.len() < 2 {
        anyhow::bail!("fewer than two photos with a usable face: nothing to compare");
    }
    let samples = Samples {
        dim,
        matrix: sample_photo.iter().flat_map(|&i| embeddings[i].as_ref().map(|e| e.0.clone()).unwrap_or_default()).collect(),
        subject_of: sample_photo.iter().map(|&i| photos[i].subject).collect(),
    };
    let n = samples.len() as u64;
    eprintln!("comparing {} pairs of {} photos", n * (n - 1) / 2, n);
    let scores = pool.install(|| identification::all_pairs(&samples, ScoreSet::default, ScoreSet::add, ScoreSet::merge)).finish();
    if scores.genuine.is_empty() {
        anyhow::bail!("no subject has two photos with a usable face: there are no genuine pairs to measure");
    }
    Ok(Measured { photos, subjects, sample_photo, scores, pairs: None, samples: Some(samples) })
}

fn held_out(measured: &Measured, fmr: f64, rng: &mut Rng) -> Option<HeldOut> {
    let (comparisons, folds) = measured.pairs.as_ref()?;
    (folds.iter().max().copied().unwrap_or(0) > 0).then(|| calibrate::held_out(comparisons, folds, fmr, rng))
}

fn build_report(
    measured: &Measured,
    source: &Source,
    model: &str,
    calibration: Calibration,
    threshold: (f32, String),
    held_out: Option<HeldOut>,
    rng: &mut Rng,
) -> anyhow::Result<Report> {
    let groups = match &source.groups {
        Some(file) => {
            let labels = GroupLabels::read(file)?;
            let counter = GroupCounter::new(&labels, &measured.subjects, threshold.0);
            let subject_of: Vec<u32> = measured.sample_photo.iter().map(|&i| measured.photos[i].subject).collect();
            let counter = match (&measured.pairs, &measured.samples) {
                (Some((comparisons, _)), _) => comparisons.iter().fold(counter, |mut c, x| {
                    c.add(x, &subject_of);
                    c
                }),
                (None, Some(samples)) => identification::all_pairs(samples, || counter.clone(), |c, x| c.add(&x, &subject_of), GroupCounter::merge),
                (None, None) => counter,
            };
            let report = counter.report(&labels, source.fmr, rng);
            let unlabelled = measured.subjects.iter().filter(|s| !labels.by_subject.contains_key(*s)).count();
            if unlabelled > 0 {
                eprintln!("faces: note: {unlabelled} of {} subjects have no row in {}", measured.subjects.len(), file.display());
            }
            report
        }
        None => Vec::new(),
    };
    let title = format!("{}{}", source.dataset.display(), source.pairs.as_ref().map(|p| format!(", pairs {}", p.display())).unwrap_or_default());
    let identification = measured.samples.as_ref().map(|s| identification::identification(s, threshold.0));
    Ok(report::build(report::Inputs {
        title,
        model: model.to_string(),
        scores: &measured.scores,
        calibration,
        threshold,
        describe: &|s| measured.describe(s),
        samples: measured.photos.len(),
        without_face: measured.without_face(),
        held_out,
        groups,
        identification,
    }))
}

fn write_report(dir: &Path, report: &Report, measured: &Measured) -> anyhow::Result<()> {
    let boxes: HashMap<String, BBox> =
        measured.photos.iter().filter_map(|p| p.face.map(|b| (p.path.display().to_string(), b))).collect();
    let page = html::page(report, &boxes);
    // Faces and names: owner-only, like the clean report.
    write_atomically(&dir.join("report.html"), page.as_bytes(), Access::Private).context("writing report.html")?;
    write_atomically(&dir.join("report.json"), serde_json::to_string_pretty(report)?.as_bytes(), Access::Private)?;
    eprintln!("report written to {}", dir.join("report.html").display());
    Ok(())
}

/// What `calibrate --json` prints.
#[derive(Serialize)]
struct Printed<'a> {
    model: &'a str,
    calibration: &'a Calibration,
    confidence: Confidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_out: Option<&'a HeldOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_in: Option<&'a Path>,
}

fn print_calibration(source: &Source, report: &Report, confidence: Confidence, stored_in: Option<&Path>) -> anyhow::Result<()> {
    let c = &report.calibration;
    if source.json {
        let printed = Printed { model: &report.model, calibration: c, confidence, held_out: report.held_out.as_ref(), stored_in };
        println!("{}", serde_json::to_string(&printed)?);
        return Ok(());
    }
    print_summary(report);
    println!(
        "confidence map fitted on these pairs: p(same) = 1 / (1 + exp(-({:.3} + {:.3} x similarity)))",
        confidence.intercept, confidence.slope
    );
    match stored_in {
        Some(g) => println!("stored in {}: `faces identify` now uses threshold {:.4}", g.display(), c.threshold),
        None => println!("(pass --gallery FILE to store this threshold)"),
    }
    Ok(())
}

fn print_summary(report: &Report) {
    let c = &report.calibration;
    println!(
        "{}: {} photos ({} without a face), {} genuine and {} impostor pairs, {}",
        report.title, report.samples, report.without_face, c.genuine_pairs, c.impostor_pairs, report.model
    );
    println!(
        "threshold for FMR {:.0e}: {:.4} (95% interval {:.4} .. {:.4})",
        c.target_fmr, c.threshold, c.threshold_low, c.threshold_high
    );
    println!("  FMR  {} ({} of {})", rate(&c.fmr), c.fmr.events, c.fmr.trials);
    println!("  FNMR {} ({} of {})", rate(&c.fnmr), c.fnmr.events, c.fnmr.trials);
    let o = &report.operating;
    if o.threshold != c.threshold {
        println!("decisions at {:.4} ({}): FMR {:.2e}, FNMR {:.2e}", o.threshold, o.source, o.fmr, o.fnmr);
    }
    if let Some(h) = &report.held_out {
        println!(
            "held-out folds: the FMR measured on each fold fell within the interval of the threshold chosen on the others in {} of {} folds, and its own interval contained the target in {} of {}; pooled held-out FMR {}, FNMR {}",
            h.within_interval,
            h.folds.len(),
            h.covering_target,
            h.folds.len(),
            rate(&h.pooled_fmr),
            rate(&h.pooled_fnmr)
        );
    }
    if let Some(id) = &report.identification {
        let at = id.fnir_at_fpir.iter().map(|f| format!("FNIR {:.2}% at FPIR {}", 100.0 * f.fnir, f.fpir)).collect::<Vec<_>>().join(", ");
        println!(
            "identification ({} enrolled, {} mated and {} non-mated probes): rank-1 {:.2}%{}{}",
            id.enrolled_subjects,
            id.mated_probes,
            id.non_mated_probes,
            100.0 * id.rank1,
            if at.is_empty() { "" } else { "; " },
            at
        );
    }
    for a in &report.groups {
        println!("by {}: FMR worst/best {}, FNMR worst/best {}", a.attribute, a.fmr_ratio.describe(), a.fnmr_ratio.describe());
        for g in &a.groups {
            let note = if g.too_small { format!("  (too small: {})", g.note) } else { String::new() };
            println!("  {:<20} FMR {}  FNMR {}{note}", g.group, rate(&g.fmr), rate(&g.fnmr));
        }
    }
}

/// `1.00e-3 [4.0e-4, 1.7e-3]`.
pub fn rate(r: &calibrate::Rate) -> String {
    format!("{:.2e} [{:.1e}, {:.1e}]", r.value, r.low, r.high)
}
