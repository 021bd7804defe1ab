//! `faces identify PATH... --gallery FILE`: name every face in new photos.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use faces_core::gallery::Gallery;
use faces_core::identify::{NamedFace, Policy, Searcher};
use faces_core::image::{self, ImageLimits};
use faces_core::pipeline::{EmbeddedFace, Pipeline};
use faces_core::privacy::Event;
use faces_core::draw;
use ::image::{Rgb, RgbImage};
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::{batch, output, Context};

/// Name every face in photos from a gallery made by `faces enrol`.
///
/// Each face gets the gallery's closest subjects (--top-k) with their cosine
/// similarity, and a decision: the best subject's name, or `unknown` when the
/// best similarity is below the threshold (the gallery's, set when it was made
/// or calibrated, unless --threshold is given) or when the runner-up is within
/// --min-margin of it. `confidence` estimates the probability that the best
/// candidate is the same person, for even prior odds: the map `faces calibrate`
/// fitted on your data and stored in the gallery, else the recogniser's own
/// (fitted on LFW pairs).
///
/// Output: a text summary; --json prints one record per photo
/// ({"file", "faces": [{"box", "landmarks", "score", "name", "similarity",
/// "confidence", "margin", "decision", "candidates"}]}); --csv one row per face.
///
/// Examples:
///   faces identify party.jpg --gallery club.gallery
///   faces identify photos/ --gallery club.gallery --annotate named/ --csv > names.csv
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Photos or folders (walked recursively)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Gallery file made by `faces enrol`
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Similarity needed to name a face [default: the gallery's]
    #[arg(long)]
    threshold: Option<f32>,
    /// Least lead over the runner-up needed to name a face
    #[arg(long, default_value_t = 0.03)]
    min_margin: f32,
    /// Candidates to report per face
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Only each photo's main face (largest nearest the centre), as in enrolment
    #[arg(long)]
    main_face: bool,
    /// Print one JSON record per photo
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV, one row per face
    #[arg(long)]
    csv: bool,
    /// Write copies of the photos with boxes and names drawn into DIR
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,
    /// Why this search is made, recorded in the audit trail (required when
    /// the gallery says so: `faces gallery require-purpose`)
    #[arg(long)]
    purpose: Option<String>,
}

#[derive(Serialize)]
struct ImageRecord<'a> {
    file: String,
    faces: &'a [NamedFace],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut gallery = Gallery::open(&args.gallery)?;
    if gallery.purpose_required()? && args.purpose.as_deref().is_none_or(|p| p.trim().is_empty()) {
        anyhow::bail!("{}: this gallery requires a stated purpose for every search; pass --purpose TEXT", args.gallery.display());
    }
    gallery.unlock(ctx.key.load(false)?.0)?;
    let found = inputs::collect(&args.paths);
    let workers = found.images.len().clamp(1, ctx.threads);
    let mut pipeline = Pipeline::load(&ctx.store, &gallery.recogniser.name, &ctx.engine_options(workers))?;
    pipeline.flip = gallery.recogniser.flip;
    gallery.check_recogniser(&pipeline.embedder.id(pipeline.flip))?;
    let (index, subjects) = gallery.index()?;
    let searcher = Searcher::new(index, subjects);
    let policy = Policy {
        threshold: args.threshold.unwrap_or(gallery.threshold.value),
        min_margin: args.min_margin,
        top_k: args.top_k.max(1),
        confidence: gallery.confidence.or(pipeline.embedder.confidence),
    };

    let mut failed = found.missing.len();
    for (path, why) in &found.missing {
        report_error(&args, &path.display().to_string(), why);
    }
    if args.csv {
        println!("file,face,x,y,width,height,name,similarity,confidence,margin,decision");
    }
    let (mut photos, mut faces, mut named) = (0usize, 0usize, 0usize);
    let mut named_ids = std::collections::BTreeSet::new();
    let bar = output::progress(found.images.len(), "identifying");
    let work = |input: &Input| identify_one(&pipeline, &searcher, &policy, input, &args);
    batch::in_order(&found.images, workers, &bar, work, |input, result| {
        let file = input.path.display().to_string();
        match result {
            Ok(found) => {
                photos += 1;
                faces += found.len();
                for f in found.iter().filter(|f| f.id.name != faces_core::identify::UNKNOWN) {
                    named += 1;
                    named_ids.extend(searcher.id_of(&f.id.name).map(String::from));
                }
                print_result(&args, &file, &found);
            }
            Err(e) => {
                failed += 1;
                report_error(&args, &file, &format!("{e:#}"));
            }
        }
    })?;
    ctx.audit(Event {
        action: "identify".into(),
        purpose: args.purpose.clone(),
        gallery: Some(args.gallery.display().to_string()),
        counts: serde_json::json!({ "photos": photos, "faces": faces, "named": named, "failed": failed })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        subjects: named_ids.into_iter().collect(),
    })?;
    if !args.json && !args.csv {
        eprintln!(
            "{photos} photo(s), {faces} face(s), {named} named, {failed} failed; gallery of {} subject(s), threshold {:.3}",
            searcher.names.len(),
            policy.threshold
        );
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn identify_one(pipeline: &Pipeline, searcher: &Searcher, policy: &Policy, input: &Input, args: &Args) -> anyhow::Result<Vec<NamedFace>> {
    let mut img = image::load(&input.path, &ImageLimits::default())?;
    let embedded: Vec<EmbeddedFace> = if args.main_face { pipeline.main_face(&img)?.into_iter().collect() } else { pipeline.faces(&img)? };
    let named: Vec<NamedFace> =
        embedded.into_iter().map(|e| NamedFace { id: searcher.identify(&e.embedding, policy), face: e.face }).collect();
    if let Some(dir) = &args.annotate {
        annotate(&mut img, &named);
        output::save_image(&img, dir, &input.relative)?;
    }
    Ok(named)
}

fn annotate(img: &mut RgbImage, named: &[NamedFace]) {
    let thickness = draw::line_width(img);
    for n in named {
        let known = n.id.name != faces_core::identify::UNKNOWN;
        let colour = if known { Rgb([0, 220, 0]) } else { Rgb([230, 60, 60]) };
        let text = match n.id.similarity {
            Some(s) => format!("{} {s:.2}", n.id.name),
            None => n.id.name.clone(),
        };
        draw::rectangle(img, &n.face.bbox, thickness, colour);
        draw::label(img, &n.face.bbox, &text, colour);
    }
}

fn print_result(args: &Args, file: &str, faces: &[NamedFace]) {
    if args.json {
        let record = ImageRecord { file: file.into(), faces, error: None };
        println!("{}", serde_json::to_string(&record).unwrap_or_default());
    } else if args.csv {
        for (i, f) in faces.iter().enumerate() {
            let b = &f.face.bbox;
            let opt = |v: Option<f32>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
            println!(
                "{},{},{:.0},{:.0},{:.0},{:.0},{},{},{},{},{}",
                csv_field(file),
                i + 1,
                b.x,
                b.y,
                b.width,
                b.height,
                csv_field(&f.id.name),
                opt(f.id.similarity),
                opt(f.id.confidence),
                opt(f.id.margin),
                serde_json::to_value(f.id.decision).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            );
        }
    } else {
        println!("{file}: {} face(s)", faces.len());
        for (i, f) in faces.iter().enumerate() {
            let b = &f.face.bbox;
            let runner_up = f.id.candidates.get(1).map(|c| format!(", then {} {:.3}", c.name, c.similarity)).unwrap_or_default();
            println!(
                "  #{:<2} {:<24} similarity {:.3}  confidence {}  box x={:.0} y={:.0} w={:.0} h={:.0}{runner_up}",
                i + 1,
                f.id.name,
                f.id.similarity.unwrap_or(f32::NAN),
                f.id.confidence.map_or("n/a".into(), |c| format!("{:.3}", c)),
                b.x,
                b.y,
                b.width,
                b.height
            );
        }
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn report_error(args: &Args, file: &str, why: &str) {
    let line = output::error_line(file, why);
    eprintln!("faces: {line}");
    if args.json {
        let record = ImageRecord { file: file.into(), faces: &[], error: Some(&line) };
        println!("{}", serde_json::to_string(&record).unwrap_or_default());
    }
}
