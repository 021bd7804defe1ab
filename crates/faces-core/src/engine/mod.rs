//! Running ONNX graphs. Two engines sit behind the one [`Engine`] trait:
//! ONNX Runtime (loaded at run time from the library `faces models install`
//! puts beside the models) and tract (pure Rust, always available).

mod onnxruntime;
mod tract;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Error, Result};

/// A dense float tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Invalid(format!("tensor of shape {shape:?} needs {n} values, got {}", data.len())));
        }
        Ok(Tensor { shape, data })
    }
}

/// One dimension of a model input: fixed, or chosen per run (named, as in the ONNX file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dim {
    Fixed(usize),
    Dynamic(&'static str),
}

/// Which engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// ONNX Runtime when its library is installed, else tract.
    #[default]
    Auto,
    Ort,
    Tract,
}

impl FromStr for EngineKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(EngineKind::Auto),
            "ort" | "onnxruntime" => Ok(EngineKind::Ort),
            "tract" => Ok(EngineKind::Tract),
            other => Err(Error::Invalid(format!("unknown engine {other:?}; use auto, ort or tract"))),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Auto => "auto",
            EngineKind::Ort => "ort",
            EngineKind::Tract => "tract",
        })
    }
}

/// How to run a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub kind: EngineKind,
    /// Threads one inference may use.
    pub threads: usize,
    /// How many inferences may run at the same time (one per worker thread).
    pub instances: usize,
    /// The ONNX Runtime shared library, when installed.
    pub ort_library: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { kind: EngineKind::Auto, threads: 1, instances: 1, ort_library: None }
    }
}

impl EngineOptions {
    /// The engine `Auto` resolves to.
    pub fn resolved_kind(&self) -> EngineKind {
        match self.kind {
            EngineKind::Auto if self.ort_library.as_deref().is_some_and(Path::is_file) => EngineKind::Ort,
            EngineKind::Auto => EngineKind::Tract,
            k => k,
        }
    }
}

/// A loaded model, ready to run. Safe to call from several threads at once.
pub trait Engine: Send + Sync {
    /// `onnxruntime` or `tract`.
    fn name(&self) -> &'static str;
    /// Runs the model on one input and returns its outputs in graph order.
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>>;
}

/// Loads an ONNX model with the engine the options ask for. `input` gives the
/// shape of the model's single input; tract plans for it once, here.
pub fn load(model: &Path, input: &[Dim], options: &EngineOptions) -> Result<Box<dyn Engine>> {
    if !model.is_file() {
        return Err(Error::model(model, "model file not found; run `faces models install`"));
    }
    match options.resolved_kind() {
        EngineKind::Ort => {
            let Some(lib) = options.ort_library.as_deref() else {
                return Err(Error::engine(
                    "onnxruntime",
                    "library not installed; run `faces models install` or use --engine tract",
                ));
            };
            Ok(Box::new(onnxruntime::OrtEngine::load(lib, model, options)?))
        }
        _ => Ok(Box::new(tract::TractEngine::load(model, input, options)?)),
    }
}
