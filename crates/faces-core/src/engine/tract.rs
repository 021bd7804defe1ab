//! tract: a pure-Rust ONNX engine, the fallback that needs nothing installed.
//!
//! tract cannot yet run this detector's graph with symbolic image sizes (its
//! Resize keeps an unresolved size expression), so a plan is optimised per
//! concrete input shape and cached; photos from one camera share a shape.
//!
//! A batch along a dynamic first axis runs one item at a time through the
//! batch-1 plan: tract's batch-1 plans are faster per item than its batched
//! ones (see `run`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;

use super::{Dim, Engine, EngineOptions, Tensor as FacesTensor};
use crate::{Error, Result};

const NAME: &str = "tract";
/// Plans kept for different input shapes before the cache is cleared.
const MAX_PLANS: usize = 16;

type Plan = Arc<TypedRunnableModel>;

pub struct TractEngine {
    path: PathBuf,
    graph: InferenceModel,
    dynamic: bool,
    /// The first axis is a dynamic batch: run its items one at a time.
    split_batch: bool,
    plans: Mutex<HashMap<Vec<usize>, Plan>>,
    executor: Option<Executor>,
}

impl TractEngine {
    pub fn load(model: &Path, input: &[Dim], options: &EngineOptions) -> Result<Self> {
        let graph = tract_onnx::onnx()
            .model_for_path(model)
            .map_err(|e| Error::model(model, format!("tract cannot load this model: {e:#}")))?;
        let engine = TractEngine {
            path: model.to_path_buf(),
            graph,
            dynamic: input.iter().any(|d| matches!(d, Dim::Dynamic(_))),
            split_batch: matches!(input.first(), Some(Dim::Dynamic(_))),
            plans: Mutex::new(HashMap::new()),
            executor: (options.threads > 1).then(|| Executor::multithread(options.threads)),
        };
        if !engine.dynamic {
            // A fixed shape is planned once, now, so load errors surface at load time.
            let shape: Vec<usize> = input.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 1 }).collect();
            engine.plan(&shape)?;
        }
        Ok(engine)
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plan) = plans.get(shape) {
            return Ok(plan.clone());
        }
        let bad = |e: TractError| Error::model(&self.path, format!("tract cannot plan this model for shape {shape:?}: {e:#}"));
        let fact = InferenceFact::dt_shape(f32::datum_type(), shape.iter().map(|&d| d.to_dim()).collect::<TVec<_>>());
        let plan = self
            .graph
            .clone()
            .with_input_fact(0, fact)
            .and_then(|g| g.into_optimized())
            .and_then(|g| g.into_runnable())
            .map_err(bad)?;
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Runs the plan for this input's shape.
    fn run_plan(&self, input: FacesTensor) -> Result<Vec<FacesTensor>> {
        let plan = self.plan(&input.shape)?;
        let tensor = tract_ndarray::ArrayD::from_shape_vec(input.shape, input.data)
            .map_err(|e| Error::engine(NAME, e))?
            .into_tensor();
        let run = || plan.run(tvec!(tensor.into()));
        let outputs = match &self.executor {
            Some(pool) => multithread_tract_scope(pool.clone(), run),
            None => run(),
        }
        .map_err(|e| Error::engine(NAME, format!("{e:#}")))?;
        outputs
            .iter()
            .map(|t| {
                let view = t.to_plain_array_view::<f32>().map_err(|e| Error::engine(NAME, format!("{e:#}")))?;
                Ok(FacesTensor { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
            })
            .collect()
    }
}

impl Engine for TractEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Measured on one core (`faces --engine tract --threads 1 bench embed`):
    /// SFace takes 55 ms for one face and 186 ms for a batch of two (a face
    /// and its mirror), but 108 ms for the two run one at a time, so a
    /// dynamic batch is split into single items.
    fn run(&self, input: FacesTensor) -> Result<Vec<FacesTensor>> {
        let n = input.shape.first().copied().unwrap_or(1);
        if !self.split_batch || n <= 1 || input.data.is_empty() {
            return self.run_plan(input);
        }
        let item_shape: Vec<usize> = std::iter::once(1).chain(input.shape[1..].iter().copied()).collect();
        let mut stacked: Vec<FacesTensor> = Vec::new();
        for item in input.data.chunks_exact(input.data.len() / n) {
            let outputs = self.run_plan(FacesTensor { shape: item_shape.clone(), data: item.to_vec() })?;
            if stacked.is_empty() {
                stacked = outputs.iter().map(|t| FacesTensor { shape: t.shape.clone(), data: Vec::new() }).collect();
            }
            for (all, one) in stacked.iter_mut().zip(outputs) {
                all.data.extend(one.data);
            }
        }
        for t in &mut stacked {
            if let Some(first) = t.shape.first_mut() {
                *first *= n;
            }
        }
        Ok(stacked)
    }
}
