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
use faces_core::privacy::{ConsentInput, Event};
use std::collections::BTreeSet;
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
/// Consent: face templates are biometric data. Each person needs an active
/// consent record (`faces consent add`) before enrolment; people without one
/// are refused. For a research data set, state one basis and purpose for
/// everyone in it with --basis research --purpose TEXT; it is recorded as such.
/// Templates are encrypted with the gallery key (see --key-file).
///
/// Examples:
///   faces consent add "Ann Lee" --gallery club.gallery --basis consent \
///       --purpose "door access" --evidence forms/ann-2026.pdf
///   faces enrol club-members/ --gallery club.gallery
///   faces enrol lfw/ --gallery lfw.gallery --basis research --purpose "accuracy study"
///   faces clean photos/ --out cleaned/ && faces enrol cleaned/cleaned.csv --gallery club.gallery
#[derive(Parser)]
#[command(verbatim_doc_comment, visible_alias = "train")]
pub struct Args {
    /// Folder with one sub-folder per person, or a CSV manifest (path,subject)
    dataset: PathBuf,
    /// Gallery file to create or add to
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Recogniser for a new gallery (see `faces models list`) [default: sface;
    /// an existing gallery's own]
    #[arg(long)]
    model: Option<String>,
    /// Embed faces without averaging with their mirror image (for a new gallery)
    #[arg(long)]
    no_flip: bool,
    /// Legal basis recorded for every person in the data set who has no
    /// active record (e.g. `research`; `consent` needs --evidence)
    #[arg(long, requires = "purpose")]
    basis: Option<String>,
    /// Purpose recorded with --basis
    #[arg(long, requires = "basis")]
    purpose: Option<String>,
    /// Reference to the evidence for --basis (a form's file name or id)
    #[arg(long, requires = "basis")]
    evidence: Option<String>,
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
    /// Photos of people with no active consent record, not enrolled.
    refused_no_consent: usize,
    /// People given the data-set-wide --basis by this run.
    consent_recorded: usize,
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
        Some(mut g) => {
            g.check_recogniser(&id)?;
            g.unlock(ctx.key.load(false)?.0)?;
            g
        }
        None => create_gallery(ctx, &args.gallery, &pipeline)?,
    };

    let mut summary = Summary { gallery: args.gallery.display().to_string(), model, photos: dataset.samples.len(), ..Default::default() };
    summary.skipped_entries = dataset.skipped.len();
    let (refused, recorded) = settle_consent(ctx, &args, &mut gallery, &dataset)?;
    summary.consent_recorded = recorded;
    let samples: Vec<Sample> = dataset.samples.iter().filter(|s| !refused.contains(&s.subject)).cloned().collect();
    summary.refused_no_consent = dataset.samples.len() - samples.len();
    let known = gallery.known_photos()?;
    let bar = output::progress(samples.len(), "enrolling");
    let mut pending: Vec<Enrolment> = Vec::new();
    let mut write_error = None;
    let work = |sample: &Sample| enrol_one(&pipeline, sample, &known);
    let mut enrolled_subjects = std::collections::BTreeSet::new();
    batch::in_order(&samples, workers, &bar, work, |sample, result| match result {
        Ok(None) => summary.already_enrolled += 1,
        Ok(Some(enrolment)) => {
            if enrolment.face.is_some() {
                summary.enrolled += 1;
                enrolled_subjects.insert(sample.subject.clone());
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
    summary.images_per_second = (samples.len() - summary.already_enrolled) as f64 / summary.seconds.max(1e-9);
    let ids = enrolled_subjects.iter().map(|n| gallery.subject_id(n)).collect::<Result<Vec<_>, _>>()?;
    ctx.audit(Event {
        action: "enrol".into(),
        gallery: Some(summary.gallery.clone()),
        counts: serde_json::json!({
            "photos": summary.photos, "enrolled": summary.enrolled, "already_enrolled": summary.already_enrolled,
            "no_face": summary.no_face, "failed": summary.failed, "refused_no_consent": summary.refused_no_consent,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        subjects: ids.into_iter().flatten().collect(),
        ..Default::default()
    })?;
    print_summary(&args, &summary, &dataset)?;
    Ok(if summary.failed + summary.refused_no_consent > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A new, empty gallery for the pipeline's recogniser at its default
/// threshold; makes the key file on first use and says where it is.
pub fn create_gallery(ctx: &Context, path: &Path, pipeline: &Pipeline) -> anyhow::Result<Gallery> {
    let (key, created) = ctx.key.load(true)?;
    if created {
        eprintln!("faces: created the gallery key {} (owner-only); keep a copy: without it the templates cannot be read", key.origin);
    }
    let model = &pipeline.embedder.name;
    let source = format!("default for {model} from the model manifest (chosen on LFW View 1 DevTrain)");
    let id = pipeline.embedder.id(pipeline.flip);
    Ok(Gallery::create(path, id, Threshold { value: pipeline.embedder.threshold, source }, &key)?)
}

/// Records the data-set-wide basis (--basis, --purpose) for everyone without
/// an active consent record, and returns the people refused: without
/// --basis, all of those; with it, those who withdrew consent (a data-set-wide
/// basis never overrides a withdrawal).
fn settle_consent(ctx: &Context, args: &Args, gallery: &mut Gallery, dataset: &Dataset) -> anyhow::Result<(BTreeSet<String>, usize)> {
    let people = dataset.by_subject();
    let missing: Vec<String> = gallery.without_consent(people.keys().copied())?.into_iter().map(String::from).collect();
    let mut refused = BTreeSet::new();
    let mut grant = Vec::new();
    for name in missing {
        if args.basis.is_some() && !gallery.has_withdrawn(&name)? {
            grant.push(name);
        } else {
            refused.insert(name);
        }
    }
    report_refused(args, gallery, &refused)?;
    let (Some(basis), Some(purpose)) = (&args.basis, &args.purpose) else { return Ok((refused, 0)) };
    let input = ConsentInput {
        basis: basis.clone(),
        purpose: purpose.clone(),
        evidence: args.evidence.clone(),
        recorded_by: faces_core::privacy::audit::os_user(),
        expires: None,
    };
    let ids = grant.iter().map(|name| gallery.add_consent(name, &input)).collect::<Result<Vec<_>, _>>()?;
    let n = ids.len();
    if n > 0 {
        let counts = serde_json::json!({ "records": n }).as_object().cloned().unwrap_or_default();
        let event = Event { action: "consent-add".into(), purpose: Some(purpose.clone()), gallery: Some(args.gallery.display().to_string()), counts, subjects: ids };
        ctx.audit(event)?;
        eprintln!("faces: recorded the basis {basis:?} for {purpose:?} for {n} new person(s) in {}", args.gallery.display());
    }
    Ok((refused, n))
}

/// Tells the user who was refused and how to record consent.
fn report_refused(args: &Args, gallery: &Gallery, refused: &BTreeSet<String>) -> anyhow::Result<()> {
    for name in refused.iter().take(5) {
        let why = if gallery.has_withdrawn(name)? { "withdrew consent" } else { "no active consent record" };
        eprintln!("faces: {name}: {why}; not enrolled");
    }
    if !refused.is_empty() {
        eprintln!(
            "faces: {} person(s) refused for want of consent; record it with `faces consent add NAME --gallery {} --basis consent --purpose TEXT --evidence REF`{}",
            refused.len(),
            args.gallery.display(),
            if args.basis.is_none() { ", or state a data-set-wide basis with --basis and --purpose" } else { "" }
        );
    }
    Ok(())
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
        "{}: {} photo(s): {} enrolled, {} already enrolled, {} without a face, {} failed, {} refused (no consent)",
        s.gallery, s.photos, s.enrolled, s.already_enrolled, s.no_face, s.failed, s.refused_no_consent
    );
    println!(
        "gallery now holds {} subject(s), {} template(s) [{}]; {:.1} s, {:.1} images/s",
        s.subjects_in_gallery, s.templates_in_gallery, s.model, s.seconds, s.images_per_second
    );
    Ok(())
}
