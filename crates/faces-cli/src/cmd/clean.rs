//! `faces clean DATASET`: a verdict for every photo of a labelled data set,
//! a cleaned manifest, and JSON and HTML reports. The user's files are only read.

mod html;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use faces_core::clean::{self, CleanOptions, CleanReport, Measurement, Reason};
use faces_core::dataset::Dataset;
use faces_core::files::{write_atomically, Access};
use faces_core::image::ImageLimits;
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::Pipeline;
use rayon::prelude::*;
use serde::Serialize;

use crate::{output, Context};

/// Check a labelled data set before training or enrolment: one verdict per photo.
///
/// DATASET is a folder with one sub-folder per person (DATASET/NAME/photo.jpg)
/// or a CSV manifest with `path` and `subject` columns. Every photo is kept,
/// flagged for a look, or dropped, with the reason and the measured value:
///
///   drop  unreadable       the file cannot be decoded
///         no_face          no face found (detector score 0.9)
///         exact_duplicate  the same pixels as an earlier photo, of any subject
///         blurry           the aligned face's sharpness is below --min-sharpness
///         too_small        the eyes are closer than --min-face pixels
///   flag  several_faces    more than one face of at least --min-face; the
///                          subject's is the one most like their other photos,
///                          else the largest and most central
///         near_duplicate   nearly the same picture as an earlier photo (resized,
///                          re-encoded, retouched): hashes within --near-duplicate
///                          bits and faces of the same person
///         extreme_pose     the head is turned more than --max-yaw degrees
///         likely_mislabel  unlike the subject's other photos and like another
///                          subject's (see --mislabel-margin)
///
/// "Earlier" is data-set order (subject, then path); an original that is
/// dropped (say, blurred) does not count, so the usable copy is kept.
///
/// Your files are never moved, changed or deleted. --out DIR receives
/// cleaned.csv (the photos not dropped, as absolute paths, with a `flags`
/// column; usable as a DATASET), report.json (every verdict with its
/// measurements) and report.html (self-contained: a thumbnail of every dropped
/// or flagged photo with its face box, grouped by reason). These name people
/// and show faces, so they are readable by you only.
///
/// Examples:
///   faces clean photos/ --out clean-report/
///   faces clean photos.csv --out clean-report/ --min-sharpness 20 --strict
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Folder with one sub-folder per person, or a CSV manifest (path,subject)
    #[arg(value_name = "DATASET")]
    dataset: PathBuf,
    /// Folder for cleaned.csv, report.json and report.html (created if needed)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Recogniser used to compare faces (see `faces models list`)
    #[arg(long, default_value = DEFAULT_RECOGNISER)]
    model: String,
    /// Drop faces less sharp than this (variance of the Laplacian on the aligned 112x112 face)
    #[arg(long, default_value_t = clean::DEFAULT_MIN_SHARPNESS, value_name = "X")]
    min_sharpness: f32,
    /// Drop faces whose eyes are closer than this many pixels
    #[arg(long, default_value_t = clean::DEFAULT_MIN_EYE_DISTANCE, value_name = "PX")]
    min_face: f32,
    /// Flag heads turned further than this from frontal
    #[arg(long, default_value_t = clean::DEFAULT_MAX_YAW, value_name = "DEGREES")]
    max_yaw: f32,
    /// Flag photos whose 64-bit difference hashes differ in at most this many bits (and whose faces match)
    #[arg(long, default_value_t = clean::DEFAULT_NEAR_DUPLICATE_BITS, value_name = "BITS")]
    near_duplicate: u32,
    /// Flag a face as a likely mislabel when it is this much more similar to another subject than to its own
    #[arg(long, default_value_t = clean::DEFAULT_MISLABEL_MARGIN, value_name = "SIMILARITY")]
    mislabel_margin: f32,
    /// Leave flagged photos out of cleaned.csv too
    #[arg(long)]
    strict: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    json: bool,
    /// Refuse images with more pixels than this (decompression-bomb guard)
    #[arg(long, default_value_t = ImageLimits::default().max_pixels, value_name = "N")]
    max_pixels: u64,
}

/// What `report.json` holds: the model used and the review.
#[derive(Serialize)]
struct ReportFile<'a> {
    dataset: &'a Path,
    model: &'a str,
    #[serde(flatten)]
    review: &'a CleanReport,
}

/// The `--json` summary.
#[derive(Serialize)]
struct Printed<'a> {
    summary: &'a clean::Summary,
    skipped: usize,
    cleaned_csv: PathBuf,
    report_json: PathBuf,
    report_html: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let options = check_options(&args)?;
    let dataset = Dataset::open(&args.dataset)?;
    let workers = dataset.samples.len().clamp(1, ctx.threads);
    let pipeline = Pipeline::load(&ctx.store, &args.model, &ctx.engine_options(workers))?;
    let options = CleanOptions { same_person: pipeline.embedder.threshold, ..options };
    let limits = ImageLimits { max_pixels: args.max_pixels, ..ImageLimits::default() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;

    let bar = output::progress(dataset.samples.len(), "measuring");
    let measured: Vec<anyhow::Result<Measurement>> = pool.install(|| {
        dataset
            .samples
            .par_iter()
            .map(|s| {
                let m = clean::measure(&pipeline, &s.path, &limits).with_context(|| s.path.display().to_string());
                bar.inc(1);
                m
            })
            .collect()
    });
    bar.finish_and_clear();
    let measurements = measured.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let review = clean::review(&dataset, &measurements, &options);

    let report = ReportFile { dataset: &args.dataset, model: &args.model, review: &review };
    let html = pool.install(|| html::report(report.review, &args.dataset, &limits));
    let paths = Printed {
        summary: &review.summary,
        skipped: review.skipped.len(),
        cleaned_csv: args.out.join("cleaned.csv"),
        report_json: args.out.join("report.json"),
        report_html: args.out.join("report.html"),
    };
    write_atomically(&paths.cleaned_csv, &review.cleaned_manifest(args.strict)?, Access::Private)?;
    write_atomically(&paths.report_json, serde_json::to_string_pretty(&report)?.as_bytes(), Access::Private)?;
    write_atomically(&paths.report_html, html.as_bytes(), Access::Private)?;
    print_summary(&args, &paths)?;
    Ok(ExitCode::SUCCESS)
}

/// The limits from the command line, refused when out of range.
fn check_options(args: &Args) -> anyhow::Result<CleanOptions> {
    let non_negative = [("--min-sharpness", args.min_sharpness), ("--min-face", args.min_face), ("--max-yaw", args.max_yaw)];
    if let Some((name, value)) = non_negative.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        anyhow::bail!("{name} must be a number of at least 0, got {value}");
    }
    if args.near_duplicate > 64 {
        anyhow::bail!("--near-duplicate counts bits of a 64-bit hash; got {}", args.near_duplicate);
    }
    if !(0.0..=2.0).contains(&args.mislabel_margin) {
        anyhow::bail!("--mislabel-margin is a difference of similarities, between 0 and 2; got {}", args.mislabel_margin);
    }
    Ok(CleanOptions {
        min_sharpness: args.min_sharpness,
        min_eye_distance: args.min_face,
        max_yaw: args.max_yaw,
        near_duplicate_bits: args.near_duplicate,
        mislabel_margin: args.mislabel_margin,
        ..CleanOptions::new(0.0)
    })
}

fn print_summary(args: &Args, printed: &Printed) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(printed)?);
        return Ok(());
    }
    let s = printed.summary;
    println!("{} photos: {} kept, {} flagged, {} dropped", s.photos, s.kept, s.flagged, s.dropped);
    for (label, drops) in [("drop reasons", true), ("flag reasons", false)] {
        let counts: Vec<String> = Reason::ALL
            .iter()
            .filter(|r| r.drops() == drops)
            .filter_map(|r| s.by_reason.get(r).map(|n| format!("{} {n}", r.code())))
            .collect();
        if !counts.is_empty() {
            println!("  {label}: {}", counts.join(", "));
        }
    }
    if printed.skipped > 0 {
        println!("  {} files or folders skipped (not images, hidden or missing; listed in report.json)", printed.skipped);
    }
    let used = if args.strict { s.kept } else { s.kept + s.flagged };
    println!("wrote {} ({used} photos), {} and {}", printed.cleaned_csv.display(), printed.report_json.display(), printed.report_html.display());
    Ok(())
}
