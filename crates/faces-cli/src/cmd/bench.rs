//! `faces bench`: speed and memory of each stage, measured on real photos.
//! `scripts/bench-detect.sh` runs it for every engine and thread count and
//! puts face_recognition beside it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::Embedder;
use faces_core::gallery::{Hit, Index};
use faces_core::image::{self, ImageLimits};
use serde::Serialize;

use crate::Context;

#[derive(Subcommand)]
pub enum Command {
    /// Detection time per image at given sizes, with the chosen --engine and --threads
    Detect(DetectArgs),
    /// Alignment and embedding time per face for each recogniser, with the chosen --engine and --threads
    Embed(EmbedArgs),
    /// Gallery search time per probe over synthetic templates (top-k, exact)
    Search(SearchArgs),
    /// What encrypting templates costs: a gallery of N encrypted templates, one photo identified against it
    Gallery(GalleryArgs),
}

/// Builds a gallery file of --templates encrypted templates (noisy copies of
/// PHOTO's main face, --per-subject per person), then times, --repeat times:
/// decrypting that many templates alone (the whole cost of encryption at
/// search time), opening the gallery and loading its search index (which
/// includes the decryption), and identifying PHOTO from cold as `faces
/// identify` does (models, gallery, detection, embedding, search).
#[derive(Parser)]
pub struct GalleryArgs {
    /// Photo with a face, used for the templates and as the probe
    #[arg(value_name = "IMAGE")]
    photo: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    templates: usize,
    #[arg(long, default_value_t = 5)]
    per_subject: usize,
    /// Timed runs of each measurement (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Builds an in-memory index of --templates random unit vectors (--subjects
/// owners, several templates each), then times top-k searches one probe at a
/// time on one core: half the probes are noisy copies of a template (a
/// genuine search), half random (an impostor search). A few probes are
/// checked against a brute-force f32 scan to confirm the answers are exact.
#[derive(Parser)]
pub struct SearchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    templates: usize,
    /// Distinct subjects owning the templates
    #[arg(long, default_value_t = 250_000)]
    subjects: u32,
    /// Embedding size (sface and dlib-resnet 128, mobilefacenet 192)
    #[arg(long, default_value_t = 192)]
    dim: usize,
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Probes to time
    #[arg(long, default_value_t = 40)]
    probes: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
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
        Command::Search(args) => search(args),
        Command::Gallery(args) => gallery(ctx, args),
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

fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.templates > 0 && args.subjects > 0 && args.dim > 0, "--templates, --subjects and --dim must be positive");
    let start = Instant::now();
    let mut rng = SplitMix::new(42);
    let mut index = Index::new(args.dim);
    let mut first = Vec::new();
    for i in 0..args.templates {
        let t = rng.unit(args.dim);
        index.push(i as u32 % args.subjects, &t);
        if first.len() < args.probes {
            first.push(t);
        }
    }
    let build_s = start.elapsed().as_secs_f64();
    let probes: Vec<Vec<f32>> = (0..args.probes)
        .map(|i| if i % 2 == 0 { rng.unit(args.dim) } else { rng.near(&first[i % first.len()], 0.5) })
        .collect();
    let mut times = Vec::new();
    let mut results = Vec::new();
    for p in &probes {
        let t = Instant::now();
        results.push(index.search(p, args.k));
        times.push(ms(t));
    }
    let checked = probes.len().min(4);
    let exact = probes.iter().zip(&results).take(checked).all(|(p, r)| brute_force(&index, p, args.k) == *r);
    let report = serde_json::json!({
        "templates": args.templates, "subjects": args.subjects, "dim": args.dim, "k": args.k, "probes": args.probes,
        "build_s": build_s, "median_ms": median(times.clone()), "max_ms": times.iter().cloned().fold(0.0, f64::max),
        "exact_checked": checked, "exact": exact, "peak_rss_mb": peak_rss_mb(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} templates of {} subjects, dim {}: top-{} search median {:.1} ms per probe (max {:.1}) on one core; \
             {checked} probes equal to brute force: {exact}; peak memory {:.0} MB",
            args.templates, args.subjects, args.dim, args.k, report["median_ms"].as_f64().unwrap_or(f64::NAN),
            report["max_ms"].as_f64().unwrap_or(f64::NAN), peak_rss_mb().unwrap_or(f64::NAN)
        );
    }
    Ok(if exact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Top-k distinct subjects by a plain f32 scan of every template.
fn brute_force(index: &Index, probe: &[f32], k: usize) -> Vec<Hit> {
    let mut best = std::collections::HashMap::new();
    for (owner, template) in index.rows() {
        let s: f32 = template.iter().zip(probe).map(|(a, b)| a * b).sum();
        let e = best.entry(owner).or_insert(f32::NEG_INFINITY);
        *e = f32::max(*e, s);
    }
    let mut hits: Vec<Hit> = best.into_iter().map(|(subject, similarity)| Hit { subject, similarity }).collect();
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.subject.cmp(&b.subject)));
    hits.truncate(k);
    hits
}

/// A deterministic generator of synthetic templates (on the calibration's seeded generator).
struct SplitMix(faces_core::eval::calibrate::Rng);

impl SplitMix {
    fn new(seed: u64) -> SplitMix {
        SplitMix(faces_core::eval::calibrate::Rng::new(seed))
    }

    fn next(&mut self) -> f32 {
        self.0.uniform() as f32 - 0.5
    }

    fn unit(&mut self, dim: usize) -> Vec<f32> {
        normalise((0..dim).map(|_| self.next()).collect())
    }

    /// A unit vector near `v`: `v` plus noise of relative size `noise`.
    fn near(&mut self, v: &[f32], noise: f32) -> Vec<f32> {
        let n = self.unit(v.len());
        normalise(v.iter().zip(n).map(|(a, b)| a + noise * b).collect())
    }
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.into_iter().map(|x| x / norm).collect()
}

fn gallery(ctx: &Context, args: GalleryArgs) -> anyhow::Result<ExitCode> {
    use faces_core::gallery::{Enrolment, Gallery, Threshold};
    use faces_core::privacy::{ConsentInput, TemplateKey};
    anyhow::ensure!(args.templates > 0 && args.per_subject > 0 && args.repeat > 0, "--templates, --per-subject and --repeat must be positive");
    let model = faces_core::models::DEFAULT_RECOGNISER;
    let pipeline = faces_core::pipeline::Pipeline::load(&ctx.store, model, &ctx.engine_options(1))?;
    let img = image::load(&args.photo, &ImageLimits::default())?;
    let probe = pipeline.main_face(&img)?.ok_or_else(|| anyhow::anyhow!("{}: no face found; pass a photo with a face", args.photo.display()))?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.gallery");
    let key = TemplateKey::generate("benchmark key")?;
    let threshold = Threshold { value: pipeline.embedder.threshold, source: "benchmark".into() };
    let mut g = Gallery::create(&path, pipeline.embedder.id(true), threshold, &key)?;
    let consent = ConsentInput { basis: "research".into(), purpose: "benchmark".into(), evidence: None, recorded_by: "bench".into(), expires: None };
    let mut rng = SplitMix::new(7);
    let subjects = args.templates.div_ceil(args.per_subject);
    let bar = crate::output::progress(subjects, "building gallery");
    for s in 0..subjects {
        let name = format!("subject-{s:06}");
        g.add_consent(&name, &consent)?;
        let batch: Vec<Enrolment> = (0..args.per_subject.min(args.templates - s * args.per_subject))
            .map(|t| Enrolment {
                subject: name.clone(),
                path: PathBuf::from(format!("{name}/{t}.jpg")),
                sha256: format!("{s:032x}{t:032x}"),
                face: Some((probe.face.clone(), faces_core::embed::Embedding(rng.near(&probe.embedding.0, 2.0)))),
            })
            .collect();
        g.add(&batch)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(g);

    let payload = vec![0u8; 4 * probe.embedding.0.len()];
    // As the gallery does: one sealer, contexts made beforehand, opened across the cores.
    let sealer = key.sealer(faces_core::privacy::key::Cipher::NEWEST);
    let contexts: Vec<Vec<u8>> = (0..args.templates).map(|i| format!("t{i}").into_bytes()).collect();
    let sealed: Vec<Vec<u8>> = contexts.iter().map(|c| sealer.seal(c, &payload)).collect::<Result<_, _>>()?;
    let timed = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..args.repeat {
            let t = Instant::now();
            f()?;
            times.push(ms(t));
        }
        Ok(median(times))
    };
    let decrypt_ms = timed(&mut || {
        use rayon::prelude::*;
        let all = contexts.par_iter().zip(&sealed).all(|(c, s)| sealer.open(c, s).is_some());
        anyhow::ensure!(all, "a benchmark template failed to open");
        Ok(())
    })?;
    let open_index = || -> anyhow::Result<faces_core::identify::Searcher> {
        let mut g = Gallery::open(&path)?;
        g.unlock(key.clone())?;
        let (index, subjects) = g.index()?;
        Ok(faces_core::identify::Searcher::new(index, subjects))
    };
    let load_ms = timed(&mut || open_index().map(|_| ()))?;
    let identify_ms = timed(&mut || {
        let pipeline = faces_core::pipeline::Pipeline::load(&ctx.store, model, &ctx.engine_options(1))?;
        let searcher = open_index()?;
        let img = image::load(&args.photo, &ImageLimits::default())?;
        let policy = faces_core::identify::Policy { threshold: pipeline.embedder.threshold, min_margin: 0.03, top_k: 5, confidence: pipeline.embedder.confidence };
        for face in pipeline.faces(&img)? {
            std::hint::black_box(searcher.identify(&face.embedding, &policy));
        }
        Ok(())
    })?;
    let report = serde_json::json!({
        "templates": args.templates, "subjects": subjects, "model": model, "photo": args.photo.display().to_string(),
        "decrypt_ms": decrypt_ms, "gallery_load_ms": load_ms, "identify_ms": identify_ms,
        "encryption_share_of_identify": decrypt_ms / identify_ms, "threads": ctx.threads,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} encrypted templates ({subjects} subjects): decrypting them all {decrypt_ms:.1} ms; opening the gallery and loading its index {load_ms:.1} ms; \
             identifying one photo from cold {identify_ms:.1} ms; encryption is {:.2}% of identify (median of {})",
            args.templates,
            100.0 * decrypt_ms / identify_ms,
            args.repeat
        );
    }
    Ok(ExitCode::SUCCESS)
}
