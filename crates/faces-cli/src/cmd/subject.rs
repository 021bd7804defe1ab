//! `faces subject export`: everything held about one person (a subject access request).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use faces_core::files::{write_atomically, Access};
use faces_core::gallery::Gallery;
use faces_core::privacy::Event;

use crate::Context;

/// Answer a subject access request
#[derive(Subcommand)]
pub enum Command {
    /// Write everything held about a person as JSON: their consent history,
    /// enrolled photos (path and hash), template metadata (face box and
    /// landmarks; never the embeddings) and every audit entry naming them
    ///
    /// Example:
    ///   faces subject export "Ann Lee" --gallery club.gallery --out ann-lee.json
    #[command(verbatim_doc_comment)]
    Export {
        /// Subject name as enrolled
        subject: String,
        /// Gallery file
        #[arg(long, value_name = "FILE")]
        gallery: PathBuf,
        /// Write to FILE (owner-only) instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Export { subject, gallery: path, out } = command;
    let gallery = Gallery::open(&path)?;
    let Some(uid) = gallery.subject_id(&subject)? else {
        anyhow::bail!("{}: no subject named {subject:?} (see `faces gallery list`; an erased person is no longer held)", path.display());
    };
    let photos = gallery.photos_of(&subject)?.unwrap_or_default();
    let templates = gallery.templates_of(&subject)?.unwrap_or_default();
    let audit: Vec<_> = ctx.audit.entries()?.into_iter().filter(|e| e.event.subjects.contains(&uid)).collect();
    let report = serde_json::json!({
        "subject": subject,
        "subject_id": uid,
        "gallery": path.display().to_string(),
        "exported": faces_core::clock::now(),
        "recogniser": gallery.recogniser,
        "consents": gallery.consents(Some(&subject))?,
        "photos": photos,
        "templates": templates,
        "audit_log": ctx.audit.path.display().to_string(),
        "audit": audit,
    });
    let text = serde_json::to_string_pretty(&report)? + "\n";
    match &out {
        Some(file) => {
            write_atomically(file, text.as_bytes(), Access::Private)?;
            eprintln!("wrote everything held about {subject} to {}", file.display());
        }
        None => print!("{text}"),
    }
    let counts = serde_json::json!({ "photos": photos.len(), "templates": templates.len(), "audit_entries": audit.len() });
    let counts = counts.as_object().cloned().unwrap_or_default();
    ctx.audit(Event { action: "subject-export".into(), gallery: Some(path.display().to_string()), counts, subjects: vec![uid], ..Default::default() })?;
    Ok(ExitCode::SUCCESS)
}
