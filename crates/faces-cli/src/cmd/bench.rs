//! `faces bench`: speed and memory of each stage, measured on real photos.
//! `scripts/bench-detect.sh` runs it for every engine and thread count and
//! puts face_recognition beside it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::image::{self, ImageLimits};
use ::image::imageops::FilterType;
use serde::Serialize;

use crate::Context;

#[derive(Subcommand)]
pub enum Command {
    /// Detection time per image at given sizes, with the chosen --engine and --threads
    Detect(DetectArgs),
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
    }
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
            let img = ::image::imageops::resize(&original, w.max(1), h.max(1), FilterType::Triangle);
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
