//! `faces gallery list|show|remove`: what a gallery file holds, and removing people from it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use faces_core::gallery::Gallery;
use serde::Serialize;

use faces_core::privacy::{Event, TemplateKey};

use crate::Context;

/// Inspect a gallery file, or remove a person from it
#[derive(Subcommand)]
pub enum Command {
    /// List the subjects with their template and photo counts
    List(Target),
    /// Show one subject's enrolled photos (paths and content hashes; no images are stored)
    Show {
        #[command(flatten)]
        target: Target,
        /// Subject name as enrolled
        subject: String,
    },
    /// Erase a subject completely (the same as `faces forget`)
    Remove {
        #[command(flatten)]
        target: Target,
        /// Subject name as enrolled
        subject: String,
    },
    /// Erase every subject whose consent has expired or been withdrawn
    Prune(Target),
    /// Re-encrypt every template with a new key, written to a new key file
    Rekey {
        #[command(flatten)]
        target: Target,
        /// Where to write the new key (must not exist; owner-only). Use it
        /// with --key-file or FACES_KEY_FILE from then on.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
    /// Require (or, with --off, stop requiring) a stated --purpose for every search
    RequirePurpose {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        off: bool,
    },
}

#[derive(ClapArgs)]
pub struct Target {
    /// Gallery file
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Listing<'a> {
    gallery: String,
    recogniser: &'a faces_core::embed::RecogniserId,
    threshold: &'a faces_core::gallery::Threshold,
    subjects: Vec<faces_core::gallery::SubjectSummary>,
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List(t) => list(&t),
        Command::Show { target, subject } => show(&target, &subject),
        Command::Remove { target, subject } => super::forget::erase(ctx, &target.gallery, &subject, target.json),
        Command::Prune(t) => prune(ctx, &t),
        Command::Rekey { target, new_key_file } => rekey(ctx, &target, &new_key_file),
        Command::RequirePurpose { target, off } => {
            Gallery::open(&target.gallery)?.set_purpose_required(!off)?;
            println!("{}: a stated purpose is {} for searches", target.gallery.display(), if off { "optional" } else { "required" });
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(t: &Target) -> anyhow::Result<ExitCode> {
    let gallery = Gallery::open(&t.gallery)?;
    let listing = Listing {
        gallery: t.gallery.display().to_string(),
        recogniser: &gallery.recogniser,
        threshold: &gallery.threshold,
        subjects: gallery.subjects()?,
    };
    if t.json {
        println!("{}", serde_json::to_string(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    let templates: i64 = listing.subjects.iter().map(|s| s.templates).sum();
    println!(
        "{}: {} subject(s), {templates} template(s); recogniser {}; threshold {:.3} ({})",
        listing.gallery,
        listing.subjects.len(),
        gallery.recogniser.name,
        gallery.threshold.value,
        gallery.threshold.source
    );
    let width = listing.subjects.iter().map(|s| s.name.len()).max().unwrap_or(7).max(7);
    println!("{:<width$} {:>9} {:>7}  ENROLLED", "SUBJECT", "TEMPLATES", "PHOTOS");
    for s in &listing.subjects {
        println!("{:<width$} {:>9} {:>7}  {}", s.name, s.templates, s.photos, s.created);
    }
    Ok(ExitCode::SUCCESS)
}

fn show(t: &Target, subject: &str) -> anyhow::Result<ExitCode> {
    let gallery = Gallery::open(&t.gallery)?;
    let Some(photos) = gallery.photos_of(subject)? else {
        anyhow::bail!("{}: no subject named {subject:?}; see `faces gallery list --gallery {}`", t.gallery.display(), t.gallery.display());
    };
    if t.json {
        println!("{}", serde_json::json!({ "subject": subject, "photos": photos }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{subject}: {} photo(s)", photos.len());
    for p in &photos {
        println!("  {:<8} {}  {}  sha256 {}", p.status, p.enrolled, p.path, &p.sha256[..16]);
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(ctx: &Context, t: &Target) -> anyhow::Result<ExitCode> {
    let mut gallery = Gallery::open(&t.gallery)?;
    let erased = gallery.prune()?;
    let counts = serde_json::json!({ "subjects": erased.len() }).as_object().cloned().unwrap_or_default();
    let subjects = erased.iter().map(|e| e.subject_id.clone()).collect();
    ctx.audit(Event { action: "prune".into(), gallery: Some(t.gallery.display().to_string()), counts, subjects, ..Default::default() })?;
    if t.json {
        println!("{}", serde_json::json!({ "erased": erased }));
    } else {
        println!("{}: erased {} subject(s) with no active consent", t.gallery.display(), erased.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn rekey(ctx: &Context, t: &Target, new_key_file: &std::path::Path) -> anyhow::Result<ExitCode> {
    if new_key_file.exists() {
        anyhow::bail!("{}: already exists; name a new file for the new key", new_key_file.display());
    }
    let mut gallery = Gallery::open(&t.gallery)?;
    gallery.unlock(ctx.key.load(false)?.0)?;
    // The new key is on disk before any template depends on it.
    let new = TemplateKey::generate_file(new_key_file)?;
    let templates = gallery.rekey(&new)?;
    let counts = serde_json::json!({ "templates": templates }).as_object().cloned().unwrap_or_default();
    ctx.audit(Event { action: "rekey".into(), gallery: Some(t.gallery.display().to_string()), counts, ..Default::default() })?;
    println!(
        "{}: {templates} template(s) re-encrypted; the key is now {} (use --key-file or FACES_KEY_FILE); the old key no longer opens this gallery",
        t.gallery.display(),
        new_key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
