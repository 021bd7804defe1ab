//! `faces forget SUBJECT --gallery FILE`: erase a person completely.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use faces_core::gallery::Gallery;
use faces_core::privacy::Event;

use crate::Context;

/// Erase a person completely from a gallery.
///
/// Removes their templates, their photos' records and their name; their
/// consent records keep only the basis, purpose and dates under a random
/// pseudonymous id, with the evidence reference and recorder cleared. The
/// gallery file and its journal are then rewritten (VACUUM, WAL truncated)
/// so that no freed page still holds their bytes. Your photo files are not
/// touched. The erasure is recorded in the audit trail by pseudonymous id.
///
/// Example:
///   faces forget "Ann Lee" --gallery club.gallery
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Subject name as enrolled
    subject: String,
    /// Gallery file
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    erase(ctx, &args.gallery, &args.subject, args.json)
}

/// Erases `subject` from the gallery and audits it.
pub fn erase(ctx: &Context, gallery: &Path, subject: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(erasure) = Gallery::open(gallery)?.forget(subject)? else {
        anyhow::bail!("{}: no subject named {subject:?}; nothing erased (see `faces gallery list`)", gallery.display());
    };
    let counts = serde_json::json!({ "templates": erasure.templates, "photos": erasure.photos }).as_object().cloned().unwrap_or_default();
    let event =
        Event { action: "forget".into(), gallery: Some(gallery.display().to_string()), counts, subjects: vec![erasure.subject_id.clone()], ..Default::default() };
    ctx.audit(event)?;
    if json {
        println!("{}", serde_json::to_string(&erasure)?);
    } else {
        println!(
            "erased {subject} from {}: {} template(s), {} photo record(s); consent kept as pseudonymous id {}",
            gallery.display(),
            erasure.templates,
            erasure.photos,
            erasure.subject_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
