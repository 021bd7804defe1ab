//! `faces bench`: speed and memory of each stage, measured on real photos.
//! `scripts/bench-detect.sh` runs it for every engine and thread count and
//! puts face_recognition beside it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::Embedder;
use faces_core::image::{self, ImageLimits};
use serde::Serialize;

use crate::Context;

#[derive(Subcommand)]
pub enum Command {
    /// Detection time per image at given sizes, with the chosen --engine and --threads
    Detect(DetectArgs),
    /// Alignment and embedding time per face for each recogniser, with the chosen --engine and --threads
    Embed(EmbedArgs),
}

/// Faces are detected once (not timed); then each face is aligned and embedded
/// --repeat times, one face per call, with and without flip averaging.
#[derive(Parser)]
pub struct EmbedArgs {
    /// Photos whose faces to time
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Recogniser to time; repeat for several [default: every installed recogniser]
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// Timed runs per face
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct EmbedTiming {
    model: String,
    faces: usize,
    align_ms: f64,
    embed_ms: f64,
    embed_flip_ms: f64,
}

/// Each photo is resized so its longer side is each of --sizes, then detected
/// --repeat times (after one warm-up run). Reports the median milliseconds, the
/// faces found, and the process's peak resident memory.
#[derive(Parser)]
pub struct DetectArgs {
    /// Photos to time
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Longer side of the photo, in pixels, for each measurement (1920 = 1080p for 16:9)
    #[arg(long, value_delimiter = ',', default_value = "640,1920")]
    sizes: Vec<u32>,
    /// Timed runs per photo and size
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Detect at full resolution instead of the default --max-side
    #[arg(long)]
    full_resolution: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Measurement {
    file: String,
    width: u32,
    height: u32,
    faces: usize,
    median_ms: f64,
    min_ms: f64,
}

#[derive(Serialize)]
struct Report {
    engine: &'static str,
    threads: usize,
    full_resolution: bool,
    model_load_ms: f64,
    peak_rss_mb: Option<f64>,
    measurements: Vec<Measurement>,
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Detect(args) => detect(ctx, args),
        Command::Embed(args) => embed(ctx, args),
    }
}

fn embed(ctx: &Context, args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let options = ctx.engine_options(1);
    let detector = Detector::load(&ctx.store, &options)?;
    let mut photos = Vec::new();
    for path in &args.images {
        let img = image::load(path, &ImageLimits::default())?;
        let faces = detector.detect(&img, &DetectorOptions::default())?;
        photos.push((img, faces));
    }
    let names = if args.models.is_empty() { crate::cmd::evaluate::installed_recognisers(ctx) } else { args.models.clone() };
    let mut rows = Vec::new();
    for name in &names {
        let embedder = Embedder::load(&ctx.store, name, &options)?;
        let (mut align, mut plain, mut flip, mut faces) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for (img, found) in &photos {
            for face in found {
                faces += 1;
                let one = std::slice::from_ref(face);
                embedder.embed_faces(img, one, true)?; // warm-up
                for _ in 0..args.repeat.max(1) {
                    let t = Instant::now();
                    embedder.align(img, face);
                    let align_ms = ms(t);
                    align.push(align_ms);
                    // Embedding time excludes the alignment inside embed_faces.
                    let t = Instant::now();
                    embedder.embed_faces(img, one, false)?;
                    plain.push(ms(t) - align_ms);
                    let t = Instant::now();
                    embedder.embed_faces(img, one, true)?;
                    flip.push(ms(t) - align_ms);
                }
            }
        }
        rows.push(EmbedTiming { model: name.clone(), faces, align_ms: median(align), embed_ms: median(plain), embed_flip_ms: median(flip) });
    }
    let engine = detector.engine_name();
    if args.json {
        println!("{}", serde_json::json!({ "engine": engine, "threads": ctx.threads, "peak_rss_mb": peak_rss_mb(), "models": rows }));
    } else {
        println!("engine {engine} threads {} (peak memory {:.0} MB); median ms per face", ctx.threads, peak_rss_mb().unwrap_or(f64::NAN));
        println!("  {:<16} {:>6} {:>8} {:>8} {:>12}", "MODEL", "FACES", "ALIGN", "EMBED", "EMBED+FLIP");
        for r in &rows {
            println!("  {:<16} {:>6} {:>8.2} {:>8.2} {:>12.2}", r.model, r.faces, r.align_ms, r.embed_ms, r.embed_flip_ms);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn detect(ctx: &Context, args: DetectArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let detector = Detector::load(&ctx.store, &ctx.engine_options(1))?;
    let model_load_ms = start.elapsed().as_secs_f64() * 1e3;
    let options = DetectorOptions {
        max_side: if args.full_resolution { None } else { DetectorOptions::default().max_side },
        ..DetectorOptions::default()
    };
    let mut measurements = Vec::new();
    for path in &args.images {
        let original = image::load(path, &ImageLimits::default())?;
        for &side in &args.sizes {
            let scale = side as f32 / original.width().max(original.height()) as f32;
            let (w, h) = ((original.width() as f32 * scale).round() as u32, (original.height() as f32 * scale).round() as u32);
            let img = image::resize(&original, w, h);
            let faces = detector.detect(&img, &options)?.len();
            let mut times: Vec<f64> = (0..args.repeat.max(1))
                .map(|_| {
                    let t = Instant::now();
                    let r = detector.detect(&img, &options);
                    (t.elapsed().as_secs_f64() * 1e3, r)
                })
                .map(|(ms, r)| r.map(|_| ms))
                .collect::<Result<_, _>>()?;
            times.sort_by(f64::total_cmp);
            measurements.push(Measurement {
                file: path.display().to_string(),
                width: w,
                height: h,
                faces,
                median_ms: times[times.len() / 2],
                min_ms: times[0],
            });
        }
    }
    let report = Report {
        engine: detector.engine_name(),
        threads: ctx.threads,
        full_resolution: args.full_resolution,
        model_load_ms,
        peak_rss_mb: peak_rss_mb(),
        measurements,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "engine {} threads {} (model load {:.0} ms, peak memory {:.0} MB)",
            report.engine,
            report.threads,
            report.model_load_ms,
            report.peak_rss_mb.unwrap_or(f64::NAN)
        );
        for m in &report.measurements {
            println!("  {:<50} {:>4}x{:<4} {:>2} face(s)  median {:>7.1} ms  min {:>7.1} ms", m.file, m.width, m.height, m.faces, m.median_ms, m.min_ms);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak resident memory of this process (VmHWM), on Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
