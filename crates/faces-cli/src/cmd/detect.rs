//! `faces detect`: every face's box, score and landmarks, for files and folders.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::image::{self, ImageLimits};
use faces_core::{draw, Face};
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::{batch, output};
use crate::Context;

/// Find faces in photos: box, score and five landmarks for each.
///
/// PATHs may be files or folders (searched recursively for images; hidden
/// files and non-images are skipped). Photos are shrunk to --max-side before
/// detection for speed; use --full-resolution for group photos with small faces.
///
/// Examples:
///   faces detect photo.jpg
///   faces detect holiday/ --annotate annotated/
///   faces detect group.jpg --full-resolution --min-size 12 --json
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Image files or folders
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Print one JSON object per image (file, width, height, faces) instead of a table
    #[arg(long)]
    json: bool,

    /// Write copies of the photos with boxes and landmarks drawn into DIR
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,

    /// Minimum detector confidence, 0..1
    #[arg(long, default_value_t = DetectorOptions::default().score_threshold, value_name = "SCORE")]
    threshold: f32,

    /// Ignore faces smaller than this many pixels (shorter side of the box)
    #[arg(long, default_value_t = 0.0, value_name = "PX")]
    min_size: f32,

    /// Shrink photos whose longer side is above PX before detecting
    #[arg(long, value_name = "PX", conflicts_with = "full_resolution")]
    max_side: Option<u32>,

    /// Detect at the photo's full resolution (finds smaller faces, slower)
    #[arg(long)]
    full_resolution: bool,

    /// Refuse images with more pixels than this (decompression-bomb guard)
    #[arg(long, default_value_t = ImageLimits::default().max_pixels, value_name = "N")]
    max_pixels: u64,
}

/// One line of `--json` output.
#[derive(Serialize)]
struct ImageRecord<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    faces: &'a [Face],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

struct Detected {
    width: u32,
    height: u32,
    faces: Vec<Face>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be between 0 and 1, got {}", args.threshold);
    }
    let options = DetectorOptions {
        score_threshold: args.threshold,
        min_size: args.min_size,
        max_side: if args.full_resolution { None } else { Some(args.max_side.unwrap_or(1280)) },
        ..DetectorOptions::default()
    };
    let limits = ImageLimits { max_pixels: args.max_pixels, ..ImageLimits::default() };
    let found = inputs::collect(&args.paths);
    let workers = found.images.len().clamp(1, ctx.threads);
    let detector = Detector::load(&ctx.store, &ctx.engine_options(workers))?;

    let mut failed = found.missing.len();
    for (path, why) in &found.missing {
        report_error(&args, &path.display().to_string(), why);
    }
    let bar = output::progress(found.images.len(), "detecting");
    let (mut images, mut faces) = (0usize, 0usize);
    let work = |input: &Input| detect_one(&detector, input, &options, &limits, args.annotate.as_deref());
    batch::in_order(&found.images, workers, &bar, work, |input, result| {
        let file = input.path.display().to_string();
        match result {
            Ok(d) => {
                images += 1;
                faces += d.faces.len();
                print_result(&args, &file, &d);
            }
            Err(e) => {
                failed += 1;
                report_error(&args, &file, &format!("{e:#}"));
            }
        }
    })?;
    if !args.json {
        eprintln!(
            "{images} image(s), {faces} face(s), {failed} failed [{} engine]",
            detector.engine_name()
        );
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn detect_one(
    detector: &Detector,
    input: &Input,
    options: &DetectorOptions,
    limits: &ImageLimits,
    annotate: Option<&std::path::Path>,
) -> anyhow::Result<Detected> {
    let mut img = image::load(&input.path, limits)?;
    let faces = detector.detect(&img, options).with_context(|| input.path.display().to_string())?;
    if let Some(dir) = annotate {
        draw::faces(&mut img, &faces);
        output::save_image(&img, dir, &input.relative)?;
    }
    Ok(Detected { width: img.width(), height: img.height(), faces })
}

fn print_result(args: &Args, file: &str, d: &Detected) {
    if args.json {
        let record = ImageRecord { file: file.into(), width: Some(d.width), height: Some(d.height), faces: &d.faces, error: None };
        println!("{}", serde_json::to_string(&record).unwrap_or_default());
        return;
    }
    println!("{file}  {}x{}  {} face(s)", d.width, d.height, d.faces.len());
    for (i, f) in d.faces.iter().enumerate() {
        let b = &f.bbox;
        println!(
            "  #{:<2} box x={:.0} y={:.0} w={:.0} h={:.0}  score {:.3}  eyes ({:.0},{:.0}) ({:.0},{:.0})",
            i + 1,
            b.x,
            b.y,
            b.width,
            b.height,
            f.score,
            f.landmarks.right_eye.x,
            f.landmarks.right_eye.y,
            f.landmarks.left_eye.x,
            f.landmarks.left_eye.y
        );
    }
}

/// Failures go to stderr as one line; with --json they are also a record on stdout.
fn report_error(args: &Args, file: &str, why: &str) {
    let line = output::error_line(file, why);
    eprintln!("faces: {line}");
    if args.json {
        let record = ImageRecord { file: file.into(), width: None, height: None, faces: &[], error: Some(&line) };
        println!("{}", serde_json::to_string(&record).unwrap_or_default());
    }
}
