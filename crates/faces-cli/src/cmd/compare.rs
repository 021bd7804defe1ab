//! `faces compare A B`: are these two photos of the same person?

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use faces_core::image::{self, ImageLimits};
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::Pipeline;
use faces_core::privacy::Event;
use serde::Serialize;

use crate::Context;

/// Compare the main face of two photos: cosine similarity and a decision.
///
/// The main face is the largest face nearest the centre. The decision uses
/// the recogniser's threshold from the model manifest unless --threshold is given.
///
/// Exit status: 0 same person, 1 different people, 2 error (unreadable photo, no face).
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    a: PathBuf,
    b: PathBuf,
    /// Recogniser to use (see `faces models list`)
    #[arg(long, default_value = DEFAULT_RECOGNISER)]
    model: String,
    /// Similarity at or above which the faces are called the same person
    #[arg(long)]
    threshold: Option<f32>,
    /// Embed each face alone, without averaging it with its mirror image
    #[arg(long)]
    no_flip: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Comparison {
    a: String,
    b: String,
    model: String,
    similarity: f32,
    /// Estimated probability of the same person (see `faces identify --help`).
    confidence: Option<f32>,
    threshold: f32,
    same_person: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match compare(ctx, &args) {
        Ok(c) => {
            let counts = serde_json::json!({ "photos": 2, "same_person": c.same_person }).as_object().cloned().unwrap_or_default();
            ctx.audit(Event { action: "compare".into(), counts, ..Default::default() })?;
            if args.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                let verdict = if c.same_person { "same person" } else { "different people" };
                let confidence = c.confidence.map(|p| format!(", confidence {p:.3}")).unwrap_or_default();
                println!("similarity {:.3}{confidence} (threshold {:.3}, {}): {verdict}", c.similarity, c.threshold, c.model);
            }
            Ok(if c.same_person { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Err(e) => {
            eprintln!("faces: error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(ctx: &Context, args: &Args) -> anyhow::Result<Comparison> {
    let mut pipeline = Pipeline::load(&ctx.store, &args.model, &ctx.engine_options(1))?;
    pipeline.flip = !args.no_flip;
    let embed = |path: &PathBuf| -> anyhow::Result<_> {
        let img = image::load(path, &ImageLimits::default())?;
        pipeline.main_face(&img)?.with_context(|| format!("{}: no face found", path.display()))
    };
    let (a, b) = (embed(&args.a)?, embed(&args.b)?);
    let similarity = a.embedding.similarity(&b.embedding);
    let threshold = args.threshold.unwrap_or(pipeline.embedder.threshold);
    Ok(Comparison {
        a: args.a.display().to_string(),
        b: args.b.display().to_string(),
        model: args.model.clone(),
        similarity,
        confidence: pipeline.embedder.confidence.map(|c| c.probability(similarity)),
        threshold,
        same_person: similarity >= threshold,
    })
}
