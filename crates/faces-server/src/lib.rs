//! The HTTP service behind `faces serve`: a JSON API under `/v1/` (detect,
//! compare, identify, subjects, consent, erasure, audit), health, readiness,
//! metrics, an OpenAPI document and a web page, all from one route table
//! ([`routes`]). Models load once; inference runs on a bounded pool of OS
//! threads ([`pool`]), so a full queue answers 503 with Retry-After instead of
//! growing memory; every request except `/health` and the page's static
//! files needs an API key whose scopes allow the route, and every action on
//! people lands in the audit trail under the key's id.

mod api;
mod error;
mod metrics;
mod pool;
pub mod routes;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use faces_core::gallery::Gallery;
use faces_core::identify::Searcher;
use faces_core::pipeline::Pipeline;
use faces_core::privacy::AuditLog;

pub use routes::ROUTES;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Inference threads (each runs one engine instance).
    pub workers: usize,
    /// Requests that may wait for a worker before new ones get 503.
    pub queue: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest decoded image, width x height (checked before decoding).
    pub max_pixels: u64,
    /// Longest a request may wait for and run inference.
    pub timeout: Duration,
}

/// What the service serves: loaded by the caller (the CLI) before it starts.
pub struct Parts {
    pub pipeline: Pipeline,
    /// An unlocked gallery.
    pub gallery: Gallery,
    pub gallery_path: PathBuf,
    pub audit: AuditLog,
}

/// Shared by every request.
pub struct State {
    config: Config,
    pipeline: Arc<Pipeline>,
    gallery: Mutex<Gallery>,
    gallery_name: String,
    loaded: RwLock<Loaded>,
    audit: AuditLog,
    pool: pool::Pool,
    metrics: metrics::Metrics,
}

/// The gallery as a search sees it: its index and decision settings, and
/// what they were loaded from.
#[derive(Clone)]
struct Loaded {
    searcher: Arc<Searcher>,
    threshold: f32,
    confidence: Option<faces_core::embed::Confidence>,
    purpose_required: bool,
    /// The gallery's data version and the day at loading: a change in either
    /// (another process wrote to it; a consent may have expired) reloads it.
    version: i64,
    day: String,
}

/// Runs the service until SIGINT or SIGTERM, then finishes the requests in
/// flight. `listening` is called with the bound address (useful with port 0).
pub fn serve(config: Config, parts: Parts, listening: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let state = Arc::new(State::new(config, parts)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(state.config.addr).await?;
        listening(listener.local_addr()?);
        let app = routes::router(Arc::clone(&state));
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    eprintln!("faces serve: shutting down; finishing requests in flight");
}

impl State {
    fn new(config: Config, mut parts: Parts) -> anyhow::Result<State> {
        let loaded = Loaded::from(&mut parts.gallery)?;
        Ok(State {
            pool: pool::Pool::new(config.workers, config.queue),
            config,
            pipeline: Arc::new(parts.pipeline),
            gallery: Mutex::new(parts.gallery),
            gallery_name: parts.gallery_path.display().to_string(),
            loaded: RwLock::new(loaded),
            audit: parts.audit,
            metrics: metrics::Metrics::new(),
        })
    }
}

impl Loaded {
    fn from(gallery: &mut Gallery) -> faces_core::Result<Loaded> {
        gallery.refresh()?;
        let (index, subjects) = gallery.index()?;
        Ok(Loaded {
            searcher: Arc::new(Searcher::new(index, subjects)),
            threshold: gallery.threshold.value,
            confidence: gallery.confidence,
            purpose_required: gallery.purpose_required()?,
            version: gallery.data_version()?,
            day: faces_core::privacy::consent::today(),
        })
    }
}
