//! `faces consent add|show|withdraw|list`: the legal basis for holding each
//! person's templates, kept in the gallery.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use faces_core::gallery::Gallery;
use faces_core::privacy::{Consent, ConsentInput, Event};

use crate::Context;

/// Record, inspect and withdraw consent (or another legal basis)
#[derive(Subcommand)]
pub enum Command {
    /// Record a person's consent or other legal basis (creates the gallery entry for them)
    #[command(verbatim_doc_comment)]
    Add {
        #[command(flatten)]
        target: Target,
        /// The person's name, as they will be enrolled
        subject: String,
        /// `consent` (explicit consent, needs --evidence), or another basis stated in words
        #[arg(long)]
        basis: String,
        /// What the templates are used for
        #[arg(long)]
        purpose: String,
        /// Reference to the evidence: a signed form's file name or id (not the form itself)
        #[arg(long)]
        evidence: Option<String>,
        /// Last day the record is valid (YYYY-MM-DD); the person is unmatchable after it
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
    },
    /// Show one person's records
    Show {
        #[command(flatten)]
        target: Target,
        subject: String,
    },
    /// Withdraw a person's consent: unmatchable at once; erase with `faces forget`
    Withdraw {
        #[command(flatten)]
        target: Target,
        subject: String,
    },
    /// List every record, erased people's included (by pseudonymous id)
    List(Target),
}

#[derive(ClapArgs)]
pub struct Target {
    /// Gallery file (created when recording the first consent)
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Add { target, subject, basis, purpose, evidence, expires } => {
            let input = ConsentInput { basis, purpose, evidence, recorded_by: faces_core::privacy::audit::os_user(), expires };
            add(ctx, &target, &subject, &input)
        }
        Command::Show { target, subject } => {
            let records = Gallery::open(&target.gallery)?.consents(Some(&subject))?;
            if records.is_empty() {
                anyhow::bail!("{}: no consent record for {subject:?}", target.gallery.display());
            }
            print(&target, &records)
        }
        Command::Withdraw { target, subject } => withdraw(ctx, &target, &subject),
        Command::List(target) => print(&target, &Gallery::open(&target.gallery)?.consents(None)?),
    }
}

fn add(ctx: &Context, t: &Target, subject: &str, input: &ConsentInput) -> anyhow::Result<ExitCode> {
    let mut gallery = open_or_create(ctx, t)?;
    let id = gallery.add_consent(subject, input)?;
    audit(ctx, t, "consent-add", Some(input.purpose.clone()), id.clone())?;
    if t.json {
        println!("{}", serde_json::json!({ "subject": subject, "subject_id": id }));
    } else {
        println!("recorded {} for {subject} ({}) in {}", input.basis, input.purpose, t.gallery.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A new gallery needs a recogniser: the default one, as `faces enrol` would make it.
fn open_or_create(ctx: &Context, t: &Target) -> anyhow::Result<Gallery> {
    if t.gallery.exists() {
        return Ok(Gallery::open(&t.gallery)?);
    }
    let model = faces_core::models::DEFAULT_RECOGNISER;
    let embedder = faces_core::embed::Embedder::load(&ctx.store, model, &ctx.engine_options(1))?;
    let (key, created) = ctx.key.load(true)?;
    if created {
        eprintln!("faces: created the gallery key {} (owner-only); keep a copy: without it the templates cannot be read", key.origin);
    }
    let source = format!("default for {model} from the model manifest (chosen on LFW View 1 DevTrain)");
    let threshold = faces_core::gallery::Threshold { value: embedder.threshold, source };
    Ok(Gallery::create(&t.gallery, embedder.id(true), threshold, &key)?)
}

fn withdraw(ctx: &Context, t: &Target, subject: &str) -> anyhow::Result<ExitCode> {
    let mut gallery = Gallery::open(&t.gallery)?;
    let Some(id) = gallery.subject_id(subject)? else {
        anyhow::bail!("{}: no subject named {subject:?}", t.gallery.display());
    };
    let n = gallery.withdraw_consent(subject)?;
    audit(ctx, t, "consent-withdraw", None, id)?;
    if t.json {
        println!("{}", serde_json::json!({ "subject": subject, "withdrawn": n }));
    } else {
        println!("withdrew {n} record(s) for {subject}: unmatchable from now on; erase with `faces forget {subject:?} --gallery {}`", t.gallery.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(ctx: &Context, t: &Target, action: &str, purpose: Option<String>, subject_id: String) -> anyhow::Result<()> {
    ctx.audit(Event { action: action.into(), purpose, gallery: Some(t.gallery.display().to_string()), subjects: vec![subject_id], ..Default::default() })
}

fn print(t: &Target, records: &[Consent]) -> anyhow::Result<ExitCode> {
    if t.json {
        for r in records {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for r in records {
        let who = r.subject.clone().unwrap_or_else(|| format!("(erased {})", r.subject_id));
        let state = match (&r.erased, &r.withdrawn) {
            (Some(when), _) => format!("erased {when}"),
            (None, Some(when)) => format!("withdrawn {when}"),
            _ if r.active => "active".to_string(),
            _ => "expired".to_string(),
        };
        println!(
            "{who}: {} for {:?}; recorded {} by {}; evidence {}; expires {}; {state}",
            r.basis,
            r.purpose,
            r.recorded,
            r.recorded_by.as_deref().unwrap_or("-"),
            r.evidence.as_deref().unwrap_or("-"),
            r.expires.as_deref().unwrap_or("never")
        );
    }
    Ok(ExitCode::SUCCESS)
}
