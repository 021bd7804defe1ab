//! `faces gallery list|show|remove`: what a gallery file holds, and removing people from it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use faces_core::gallery::Gallery;
use serde::Serialize;

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
    /// Remove a subject and all their templates; freed space is zeroed
    Remove {
        #[command(flatten)]
        target: Target,
        /// Subject name as enrolled
        subject: String,
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

pub fn run(_ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List(t) => list(&t),
        Command::Show { target, subject } => show(&target, &subject),
        Command::Remove { target, subject } => remove(&target, &subject),
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

fn remove(t: &Target, subject: &str) -> anyhow::Result<ExitCode> {
    let mut gallery = Gallery::open(&t.gallery)?;
    if !gallery.remove(subject)? {
        anyhow::bail!("{}: no subject named {subject:?}; nothing removed", t.gallery.display());
    }
    if t.json {
        println!("{}", serde_json::json!({ "removed": subject }));
    } else {
        println!("removed {subject} and their templates from {}", t.gallery.display());
    }
    Ok(ExitCode::SUCCESS)
}
