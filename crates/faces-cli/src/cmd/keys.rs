//! `faces keys create|list|revoke`: API keys for `faces serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use faces_core::gallery::api_keys::Scope;
use faces_core::gallery::Gallery;
use faces_core::privacy::Event;

use crate::Context;

/// API keys for the HTTP service (`faces serve`), kept hashed in the gallery.
///
/// Clients send `Authorization: Bearer KEY`. Scopes: detect (find faces),
/// identify (compare and search), enrol (add people, record consent, list
/// subjects), admin (erase people, audit trail, metrics; implies the others).
///
/// Examples:
///   faces keys create --gallery club.gallery --scope identify --label front-desk
///   faces keys list --gallery club.gallery
///   faces keys revoke 3f9a0c1e --gallery club.gallery
#[derive(Subcommand)]
#[command(verbatim_doc_comment)]
pub enum Command {
    /// Make a key and print it once (only its hash is kept)
    Create(CreateArgs),
    /// List keys: id, label, scopes, created, revoked
    List(ListArgs),
    /// Revoke a key at once (a running server refuses it from its next request)
    Revoke(RevokeArgs),
}

#[derive(ClapArgs)]
pub struct CreateArgs {
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// What the key may do; repeat for several: detect, identify, enrol, admin
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Who or what the key is for, shown in `list`
    #[arg(long, default_value = "")]
    label: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs)]
pub struct ListArgs {
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs)]
pub struct RevokeArgs {
    /// The key's id (as `list` shows it)
    id: String,
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create(args) => create(ctx, args),
        Command::List(args) => list(args),
        Command::Revoke(args) => revoke(ctx, args),
    }
}

fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let scopes = args.scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let mut gallery = Gallery::open(&args.gallery)?;
    let (record, key) = gallery.create_api_key(&args.label, &scopes)?;
    audit(ctx, &args.gallery, "key-create", &record.id)?;
    if args.json {
        println!("{}", serde_json::json!({ "key": key, "record": record }));
    } else {
        println!("{key}");
        let names: Vec<&str> = record.scopes.iter().map(|s| s.name()).collect();
        eprintln!("faces: key {} ({}) made; it is shown only now: store it where the client can read it", record.id, names.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let keys = Gallery::open(&args.gallery)?.api_keys()?;
    if args.json {
        println!("{}", serde_json::to_string(&keys)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<10} {:<20} {:<28} {:<26} revoked", "id", "label", "scopes", "created");
    for k in keys {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.name()).collect();
        println!("{:<10} {:<20} {:<28} {:<26} {}", k.id, k.label, scopes.join(","), k.created, k.revoked.as_deref().unwrap_or("-"));
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(ctx: &Context, args: RevokeArgs) -> anyhow::Result<ExitCode> {
    if !Gallery::open(&args.gallery)?.revoke_api_key(&args.id)? {
        anyhow::bail!("{}: no key with id {:?} (see `faces keys list`)", args.gallery.display(), args.id);
    }
    audit(ctx, &args.gallery, "key-revoke", &args.id)?;
    println!("revoked key {}", args.id);
    Ok(ExitCode::SUCCESS)
}

fn audit(ctx: &Context, gallery: &std::path::Path, action: &str, id: &str) -> anyhow::Result<()> {
    let counts = serde_json::json!({ "key": id }).as_object().cloned().unwrap_or_default();
    ctx.audit(Event { action: action.into(), gallery: Some(gallery.display().to_string()), counts, ..Default::default() })
}
