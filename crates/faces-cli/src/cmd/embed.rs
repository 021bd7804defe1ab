//! `faces embed`: every face's box, landmarks and embedding, as JSON or .npy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use faces_core::files::{write_atomically, Access};
use faces_core::image::{self, ImageLimits};
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::{EmbeddedFace, Pipeline};
use rayon::prelude::*;
use serde::Serialize;

use crate::{inputs, output, Context};

/// Detect, align and embed every face in photos.
///
/// --json prints one object per image: `file` and `faces`, each face with
/// `box`, `landmarks`, `score` and its unit-length `embedding`. --npy writes
/// all embeddings as a float32 matrix (one row per face, in output order).
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Image files or folders
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Recogniser to use (see `faces models list`)
    #[arg(long, default_value = DEFAULT_RECOGNISER)]
    model: String,
    /// Print one JSON object per image
    #[arg(long)]
    json: bool,
    /// Also write every embedding to this .npy file
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// Embed each face alone, without averaging it with its mirror image
    #[arg(long)]
    no_flip: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    file: String,
    faces: &'a [EmbeddedFace],
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let found = inputs::collect(&args.paths);
    let workers = found.images.len().clamp(1, ctx.threads);
    let mut pipeline = Pipeline::load(&ctx.store, &args.model, &ctx.engine_options(workers))?;
    pipeline.flip = !args.no_flip;
    let mut failed = found.missing.len();
    for (path, why) in &found.missing {
        eprintln!("faces: {}: {why}", path.display());
    }
    let bar = output::progress(found.images.len(), "embedding");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    let results: Vec<anyhow::Result<Vec<EmbeddedFace>>> = pool.install(|| {
        found
            .images
            .par_iter()
            .map(|input| {
                let r = image::load(&input.path, &ImageLimits::default())
                    .and_then(|img| pipeline.faces(&img))
                    .with_context(|| input.path.display().to_string());
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut rows: Vec<&[f32]> = Vec::new();
    for (input, result) in found.images.iter().zip(&results) {
        let file = input.path.display().to_string();
        match result {
            Ok(faces) => {
                rows.extend(faces.iter().map(|f| f.embedding.0.as_slice()));
                if args.json {
                    println!("{}", serde_json::to_string(&Record { file, faces })?);
                } else {
                    println!("{file}  {} face(s)", faces.len());
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("faces: {}", output::error_line(&file, &format!("{e:#}")));
            }
        }
    }
    if let Some(path) = &args.npy {
        write_npy(path, &rows, pipeline.embedder.embedding_size)?;
        eprintln!("wrote {} embedding(s) to {}", rows.len(), path.display());
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Writes a little-endian float32 matrix in NumPy's .npy format (version 1.0),
/// readable by its owner only: these are face templates.
fn write_npy(path: &Path, rows: &[&[f32]], width: usize) -> anyhow::Result<()> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {width}), }}", rows.len());
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(rows.iter().flat_map(|r| r.iter()).flat_map(|v| v.to_le_bytes()));
    write_atomically(path, &out, Access::Private)?;
    Ok(())
}
