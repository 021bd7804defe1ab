//! `faces enrol DATASET --gallery FILE` (alias `train`): detect, align and
//! embed every photo's subject and store the templates in a gallery file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use faces_core::dataset::{Dataset, Sample};
use faces_core::gallery::{Enrolment, Gallery, Threshold};
use faces_core::image::{self, ImageLimits};
use faces_core::models::{sha256_bytes, DEFAULT_RECOGNISER};
use faces_core::pipeline::Pipeline;
use serde::Serialize;

use crate::{batch, output, Context};

/// Enrol ("train") a labelled data set into a gallery file.
///
/// DATASET is a folder with one sub-folder per person (ROOT/NAME/photo.jpg),
/// or a CSV manifest with `path` and `subject` columns (e.g. the cleaned.csv
/// written by `faces clean`). Each photo gives one template: its main face
/// (the largest face nearest the centre). Several photos per person are kept
/// as several templates.
///
/// The gallery is an SQLite file, created when missing, written one batch at
/// a time: if a run is interrupted, rerun the same command and it resumes.
/// Photos already enrolled (same subject, same file content) are skipped, so
/// re-enrolling a grown folder only adds the new photos. A gallery holds
/// templates of one recogniser only; --model must match the gallery's.
///
/// Examples:
///   faces enrol club-members/ --gallery club.gallery
///   faces clean photos/ --out cleaned/ && faces enrol cleaned/cleaned.csv --gallery club.gallery
#[derive(Parser)]
#[command(verbatim_doc_comment, visible_alias = "train")]
pub struct Args {
    /// Folder with one sub-folder per person, or a CSV manifest (path,subject)
    dataset: PathBuf,
    /// Gallery file to create or add to
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Recogniser for a new gallery (see `faces models list`) [default: mobilefacenet;
    /// an existing gallery's own]
    #[arg(long)]
    model: Option<String>,
    /// Embed faces without averaging with their mirror image (for a new gallery)
    #[arg(long)]
    no_flip: bool,
    /// Print a JSON summary
    #[arg(long)]
    json: bool,
}

/// What an enrolment run did.
#[derive(Debug, Default, Serialize)]
struct Summary {
    gallery: String,
    model: String,
    photos: usize,
    enrolled: usize,
    already_enrolled: usize,
    no_face: usize,
    failed: usize,
    skipped_entries: usize,
    subjects_in_gallery: usize,
    templates_in_gallery: i64,
    seconds: f64,
    images_per_second: f64,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let dataset = Dataset::open(&args.dataset)?;
    let existing = args.gallery.exists().then(|| Gallery::open(&args.gallery)).transpose()?;
    let (model, flip) = match &existing {
        Some(g) => {
            if let Some(asked) = args.model.as_ref().filter(|m| **m != g.recogniser.name) {
                anyhow::bail!(
                    "{}: this gallery holds {} templates, not {asked}; drop --model or use another gallery file",
                    args.gallery.display(),
                    g.recogniser.name
                );
            }
            (g.recogniser.name.clone(), g.recogniser.flip)
        }
        None => (args.model.clone().unwrap_or_else(|| DEFAULT_RECOGNISER.to_string()), !args.no_flip),
    };
    let workers = ctx.threads.min(dataset.samples.len()).max(1);
    let mut pipeline = Pipeline::load(&ctx.store, &model, &ctx.engine_options(workers))?;
    pipeline.flip = flip;
    let id = pipeline.embedder.id(flip);
    let mut gallery = match existing {
        Some(g) => {
            g.check_recogniser(&id)?;
            g
        }
        None => {
            let source = format!("default for {model} from the model manifest (chosen on LFW View 1 DevTrain)");
            Gallery::create(&args.gallery, id, Threshold { value: pipeline.embedder.threshold, source })?
        }
    };

    let known = gallery.known_photos()?;
    let mut summary = Summary { gallery: args.gallery.display().to_string(), model, photos: dataset.samples.len(), ..Default::default() };
    summary.skipped_entries = dataset.skipped.len();
    let bar = output::progress(dataset.samples.len(), "enrolling");
    let mut pending: Vec<Enrolment> = Vec::new();
    let mut write_error = None;
    let work = |sample: &Sample| enrol_one(&pipeline, sample, &known);
    batch::in_order(&dataset.samples, workers, &bar, work, |sample, result| match result {
        Ok(None) => summary.already_enrolled += 1,
        Ok(Some(enrolment)) => {
            if enrolment.face.is_some() {
                summary.enrolled += 1;
            } else {
                summary.no_face += 1;
                eprintln!("faces: {}: no face found; not enrolled", sample.path.display());
            }
            pending.push(enrolment);
            // One transaction per few dozen photos: progress survives an interruption.
            if pending.len() >= 64 && write_error.is_none() {
                write_error = gallery.add(&std::mem::take(&mut pending)).err();
            }
        }
        Err(e) => {
            summary.failed += 1;
            eprintln!("faces: {}", output::error_line(&sample.path.display().to_string(), &format!("{e:#}")));
        }
    })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    gallery.add(&pending)?;
    let subjects = gallery.subjects()?;
    summary.subjects_in_gallery = subjects.len();
    summary.templates_in_gallery = subjects.iter().map(|s| s.templates).sum();
    summary.seconds = start.elapsed().as_secs_f64();
    summary.images_per_second = (summary.photos - summary.already_enrolled) as f64 / summary.seconds.max(1e-9);
    print_summary(&args, &summary, &dataset)?;
    Ok(if summary.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Embeds one photo's main face; `None` when this photo is already in the gallery.
fn enrol_one(pipeline: &Pipeline, sample: &Sample, known: &std::collections::HashSet<(String, String)>) -> anyhow::Result<Option<Enrolment>> {
    let bytes = std::fs::read(&sample.path).with_context(|| sample.path.display().to_string())?;
    let sha256 = sha256_bytes(&bytes);
    if known.contains(&(sample.subject.clone(), sha256.clone())) {
        return Ok(None);
    }
    drop(bytes);
    let img = image::load(&sample.path, &ImageLimits::default())?;
    let face = pipeline.main_face(&img)?.map(|f| (f.face, f.embedding));
    Ok(Some(Enrolment { subject: sample.subject.clone(), path: absolute(&sample.path), sha256, face }))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn print_summary(args: &Args, s: &Summary, dataset: &Dataset) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(s)?);
        return Ok(());
    }
    for skipped in &dataset.skipped {
        eprintln!("faces: {}: skipped: {}", skipped.path.display(), skipped.reason);
    }
    println!(
        "{}: {} photo(s): {} enrolled, {} already enrolled, {} without a face, {} failed",
        s.gallery, s.photos, s.enrolled, s.already_enrolled, s.no_face, s.failed
    );
    println!(
        "gallery now holds {} subject(s), {} template(s) [{}]; {:.1} s, {:.1} images/s",
        s.subjects_in_gallery, s.templates_in_gallery, s.model, s.seconds, s.images_per_second
    );
    Ok(())
}
