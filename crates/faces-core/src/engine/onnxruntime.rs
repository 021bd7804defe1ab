//! ONNX Runtime, loaded at run time from an installed shared library
//! (`ort` with `load-dynamic`), so the binary needs no ONNX Runtime to start.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::{Engine, EngineOptions, Tensor};
use crate::{Error, Result};

const NAME: &str = "onnxruntime";

/// The process-wide ONNX Runtime environment: the library can be loaded once only.
static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static Environment> {
    ENVIRONMENT
        .get_or_init(|| {
            let builder = ort::init_from(library)
                .map_err(|e| format!("cannot load {}: {e}; reinstall with `faces models install --force` or use --engine tract", library.display()))?;
            builder.with_name("faces").build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::engine(NAME, e))
}

/// One session per concurrent caller: a session runs one inference at a time.
pub struct OrtEngine {
    sessions: Vec<Mutex<Session>>,
}

impl OrtEngine {
    pub fn load(library: &Path, model: &Path, options: &EngineOptions) -> Result<Self> {
        let env = environment(library)?;
        let sessions = (0..options.instances.max(1))
            .map(|_| open_session(env, model, options.threads).map(Mutex::new))
            .collect::<Result<_>>()?;
        Ok(OrtEngine { sessions })
    }
}

fn open_session(env: &Environment, model: &Path, threads: usize) -> Result<Session> {
    let fail = |e: ort::Error<_>| Error::model(model, format!("ONNX Runtime cannot load this model: {e}"));
    Session::builder(env)
        .map_err(|e| Error::engine(NAME, e))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(fail)?
        .with_intra_threads(threads.max(1))
        .map_err(fail)?
        .with_inter_threads(1)
        .map_err(fail)?
        // Spinning workers steal the CPU from the other sessions in a batch.
        .with_intra_op_spinning(threads > 1)
        .map_err(fail)?
        .commit_from_file(model)
        .map_err(|e| Error::model(model, format!("ONNX Runtime cannot load this model: {e}")))
}

impl OrtEngine {
    /// A free session if there is one, else waits for the first.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for s in &self.sessions {
            if let Ok(guard) = s.try_lock() {
                return guard;
            }
        }
        // A panic while holding a session cannot leave it inconsistent for our use.
        self.sessions[0].lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine for OrtEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, input: Tensor) -> Result<Vec<Tensor>> {
        let value = ort::value::Tensor::from_array((input.shape, input.data.into_boxed_slice()))
            .map_err(|e| Error::engine(NAME, e))?;
        let mut session = self.session();
        let outputs = session.run(ort::inputs![value]).map_err(|e| Error::engine(NAME, e))?;
        outputs
            .values()
            .map(|v| {
                let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| Error::engine(NAME, e))?;
                Ok(Tensor { shape: shape.iter().map(|&d| d as usize).collect(), data: data.to_vec() })
            })
            .collect()
    }
}
