//! `faces audit verify|export`: check and read the audit trail.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use faces_core::files::{write_atomically, Access};
use faces_core::privacy::Event;

use crate::Context;

/// Check or export the audit trail (see --audit-log)
#[derive(Subcommand)]
pub enum Command {
    /// Check the hash chain: exit 1 naming the first edited, removed or reordered entry
    Verify,
    /// Write the entries as JSON lines (to stdout, or --out FILE); the export is itself audited
    Export {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Verify => match ctx.audit.verify() {
            Ok(n) => {
                println!("{}: {n} entries, chain intact", ctx.audit.path.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("faces: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Export { out } => {
            let entries = ctx.audit.entries()?;
            let mut text = String::new();
            for e in &entries {
                text.push_str(&serde_json::to_string(e)?);
                text.push('\n');
            }
            match &out {
                Some(path) => write_atomically(path, text.as_bytes(), Access::Private)?,
                None => print!("{text}"),
            }
            let counts = serde_json::json!({ "entries": entries.len() }).as_object().cloned().unwrap_or_default();
            ctx.audit(Event { action: "audit-export".into(), counts, ..Default::default() })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
