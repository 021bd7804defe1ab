//! `faces serve --gallery FILE --addr HOST:PORT`: the HTTP service and web page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use faces_core::gallery::Gallery;
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::Pipeline;
use faces_server::{Config, Parts};

use super::enrol::create_gallery;
use crate::Context;

/// Serve a gallery over HTTP: a JSON API under /v1/ and a web page.
///
/// Every request needs an API key (`Authorization: Bearer KEY`) whose scopes
/// allow the route, except /health and the web page's files; make keys with
/// `faces keys create --gallery FILE --scope identify` (scopes: detect,
/// identify, enrol, admin). The routes, with their scopes, are in
/// /openapi.json. Models load once at start; inference runs on --workers
/// threads with at most --queue requests waiting, beyond which requests get
/// 503 with Retry-After at once. Every search, enrolment, erasure and consent
/// change is audited under the key's id, with the X-Purpose header as its
/// purpose. SIGINT or SIGTERM stops accepting and finishes requests in flight.
///
/// Examples:
///   faces serve --gallery club.gallery --addr 127.0.0.1:8080
///   curl -H "Authorization: Bearer $KEY" -F image=@party.jpg http://127.0.0.1:8080/v1/identify
///   open http://127.0.0.1:8080/ in a browser and log in with a key
#[derive(Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Gallery file; created empty when missing (enrol people from the web
    /// page or the API, or with `faces enrol`)
    #[arg(long, value_name = "FILE")]
    gallery: PathBuf,
    /// Recogniser for a new gallery [default: sface]
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Inference worker threads [default: all cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Requests that may wait for a worker before new ones get 503
    #[arg(long, default_value_t = 32)]
    queue: usize,
    /// Largest request body, in MB
    #[arg(long, default_value_t = 20)]
    max_body_mb: usize,
    /// Largest image, in megapixels (checked from the header, before decoding)
    #[arg(long, default_value_t = 40)]
    max_megapixels: u64,
    /// Longest a request may wait for and run inference, in seconds
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let workers = args.workers.unwrap_or(ctx.threads).max(1);
    let (pipeline, gallery) = if args.gallery.exists() {
        let mut gallery = Gallery::open(&args.gallery)?;
        if let Some(asked) = args.model.as_ref().filter(|m| **m != gallery.recogniser.name) {
            anyhow::bail!("{}: this gallery holds {} templates, not {asked}; drop --model", args.gallery.display(), gallery.recogniser.name);
        }
        gallery.unlock(ctx.key.load(false)?.0)?;
        let mut pipeline = Pipeline::load(&ctx.store, &gallery.recogniser.name, &ctx.engine_options(workers))?;
        pipeline.flip = gallery.recogniser.flip;
        gallery.check_recogniser(&pipeline.embedder.id(pipeline.flip))?;
        (pipeline, gallery)
    } else {
        let model = args.model.clone().unwrap_or_else(|| DEFAULT_RECOGNISER.to_string());
        let pipeline = Pipeline::load(&ctx.store, &model, &ctx.engine_options(workers))?;
        let gallery = create_gallery(ctx, &args.gallery, &pipeline)?;
        eprintln!("faces serve: created the empty gallery {} ({model})", args.gallery.display());
        (pipeline, gallery)
    };
    let config = Config {
        addr: args.addr,
        workers,
        queue: args.queue,
        max_body_bytes: args.max_body_mb.max(1) << 20,
        max_pixels: args.max_megapixels.max(1) * 1_000_000,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "faces serve: warning: listening on {} in plain HTTP: API keys and photos cross the network unencrypted; put a TLS proxy in front",
            args.addr
        );
    }
    let parts = Parts { pipeline, gallery, gallery_path: args.gallery.clone(), audit: ctx.audit.clone() };
    let gallery_name = args.gallery.display().to_string();
    faces_server::serve(config, parts, |addr| {
        eprintln!("faces serve: listening on http://{addr}/ (gallery {gallery_name}, {workers} worker(s)); Ctrl-C to stop");
    })?;
    Ok(ExitCode::SUCCESS)
}
