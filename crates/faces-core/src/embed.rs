//! Embedding: aligned face crops in, unit-length feature vectors out, with the
//! pre-processing each recogniser's spec (in the model manifest) asks for.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align;
use crate::engine::{self, Dim, Engine, EngineOptions, Tensor};
use crate::models::ModelStore;
use crate::{Error, Face, Point, Result};

/// Memory layout of the recogniser's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

/// Channel order the recogniser expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Rgb,
    Bgr,
}

/// How to feed a recogniser and read its output, from the model manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecogniserSpec {
    /// Crop width and height in pixels.
    pub input_size: [u32; 2],
    pub layout: Layout,
    pub channels: Channels,
    /// Per-channel value subtracted, then divided by `std`, in the model's channel order.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Where the five landmarks (right eye, left eye, nose, mouth right, mouth left) go in the crop.
    pub template: [[f32; 2]; 5],
    pub embedding_size: usize,
    /// Cosine similarity at or above which two faces are called the same person.
    pub threshold: f32,
    /// Similarity to probability of the same person, when fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

impl RecogniserSpec {
    pub fn template_points(&self) -> [Point; 5] {
        self.template.map(|[x, y]| Point { x, y })
    }
}

/// A unit-length face embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// L2-normalises a raw network output; `None` for a zero or non-finite vector.
    pub fn normalised(raw: Vec<f32>) -> Option<Embedding> {
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        (norm.is_finite() && norm > 0.0).then(|| Embedding(raw.into_iter().map(|v| v / norm).collect()))
    }

    /// Cosine similarity in [-1, 1].
    pub fn similarity(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

/// Which recogniser makes a set of templates: name, model files and how it
/// is run. Templates are comparable only when these are all equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecogniserId {
    pub name: String,
    /// Each model file by name and SHA-256, with its weight (several for a fusion).
    pub models: Vec<ModelRef>,
    pub embedding_size: usize,
    /// Whether embeddings average the face with its mirror image.
    pub flip: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
    pub weight: f32,
}

/// A logistic map from similarity to the probability that two faces are the
/// same person: `1 / (1 + exp(-(intercept + slope * similarity)))`, fitted on
/// pairs with as many same-person as different-person pairs (LFW's protocol),
/// so it is the probability for even prior odds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    pub intercept: f32,
    pub slope: f32,
}

impl Confidence {
    pub fn probability(&self, similarity: f32) -> f32 {
        1.0 / (1.0 + (-(self.intercept + self.slope * similarity)).exp())
    }
}

/// A loaded recogniser.
pub struct Recogniser {
    pub name: String,
    pub spec: RecogniserSpec,
    /// SHA-256 of the model file, from the manifest.
    pub sha256: String,
    engine: Box<dyn Engine>,
}

impl Recogniser {
    /// Loads the installed recogniser `name` with its spec from the manifest.
    pub fn load(store: &ModelStore, name: &str, options: &EngineOptions) -> Result<Self> {
        let artifact = store
            .manifest
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("no recogniser named {name:?}; see `faces models list`")))?;
        let spec = artifact
            .recogniser
            .clone()
            .ok_or_else(|| Error::Invalid(format!("{name} is not a recogniser; see `faces models list`")))?;
        let path = store.require(name)?;
        let [w, h] = spec.input_size.map(|v| v as usize);
        let input = match spec.layout {
            Layout::Nchw => [Dim::Dynamic("batch"), Dim::Fixed(3), Dim::Fixed(h), Dim::Fixed(w)],
            Layout::Nhwc => [Dim::Dynamic("batch"), Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(3)],
        };
        Ok(Recogniser { name: name.to_string(), spec, sha256: artifact.sha256.clone(), engine: engine::load(&path, &input, options)? })
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// The aligned crop of a detected face.
    pub fn align(&self, image: &RgbImage, face: &Face) -> RgbImage {
        let [w, h] = self.spec.input_size;
        align::crop(image, &face.landmarks, &self.spec.template_points(), w, h)
    }

    /// Embeds aligned crops in one batch. With `flip`, each embedding is the
    /// mean of the crop's and its mirror image's.
    pub fn embed_crops(&self, crops: &[RgbImage], flip: bool) -> Result<Vec<Embedding>> {
        let mut batch: Vec<RgbImage> = crops.to_vec();
        if flip {
            batch.extend(crops.iter().map(image::imageops::flip_horizontal));
        }
        let raw = self.raw_outputs(&batch)?;
        (0..crops.len())
            .map(|i| {
                let unit = |row: &Vec<f32>| {
                    Embedding::normalised(row.clone()).ok_or_else(|| Error::Invalid(format!("{} produced a zero embedding", self.name)))
                };
                let e = unit(&raw[i])?;
                if !flip {
                    return Ok(e);
                }
                let mirror = unit(&raw[i + crops.len()])?;
                unit(&e.0.iter().zip(&mirror.0).map(|(x, y)| x + y).collect())
            })
            .collect()
    }

    /// The network's raw output rows for a batch of aligned crops (not normalised).
    pub fn raw_outputs(&self, crops: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.engine.run(self.to_tensor(crops)?)?;
        let output = out.first().ok_or_else(|| Error::Invalid(format!("{} produced no output", self.name)))?;
        let dim = self.spec.embedding_size;
        if output.data.len() != crops.len() * dim {
            return Err(Error::Invalid(format!(
                "{} gave {} values for {} faces, expected {dim} each",
                self.name,
                output.data.len(),
                crops.len()
            )));
        }
        Ok(output.data.chunks_exact(dim).map(<[f32]>::to_vec).collect())
    }

    fn to_tensor(&self, crops: &[RgbImage]) -> Result<Tensor> {
        let [w, h] = self.spec.input_size.map(|v| v as usize);
        let order: [usize; 3] = match self.spec.channels {
            Channels::Rgb => [0, 1, 2],
            Channels::Bgr => [2, 1, 0],
        };
        let (mean, std) = (self.spec.mean, self.spec.std);
        let mut data = vec![0.0f32; crops.len() * 3 * h * w];
        for (n, crop) in crops.iter().enumerate() {
            if crop.dimensions() != (w as u32, h as u32) {
                return Err(Error::Invalid(format!("crop is {:?}, {} needs {w}x{h}", crop.dimensions(), self.name)));
            }
            let base = n * 3 * h * w;
            for (x, y, px) in crop.enumerate_pixels() {
                let (x, y) = (x as usize, y as usize);
                for (c, &src) in order.iter().enumerate() {
                    let v = (f32::from(px[src]) - mean[c]) / std[c];
                    let i = match self.spec.layout {
                        Layout::Nchw => base + c * h * w + y * w + x,
                        Layout::Nhwc => base + (y * w + x) * 3 + c,
                    };
                    data[i] = v;
                }
            }
        }
        let shape = match self.spec.layout {
            Layout::Nchw => vec![crops.len(), 3, h, w],
            Layout::Nhwc => vec![crops.len(), h, w, 3],
        };
        Tensor::new(shape, data)
    }
}

/// A weighted fusion of recognisers, from the manifest's `[[fusion]]` tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionSpec {
    pub name: String,
    pub members: Vec<String>,
    /// Positive weights summing to 1: the fused similarity is the weighted mean
    /// of the members' cosine similarities.
    pub weights: Vec<f32>,
    pub threshold: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

/// Turns faces into embeddings: one recogniser, or a fusion of several whose
/// embedding is the concatenation of the members' scaled by the square roots
/// of their weights, so that a plain dot product gives the fused similarity.
pub struct Embedder {
    pub name: String,
    parts: Vec<(Recogniser, f32)>,
    /// Similarity at or above which two faces are called the same person.
    pub threshold: f32,
    pub confidence: Option<Confidence>,
    pub embedding_size: usize,
}

impl Embedder {
    /// Loads the recogniser or fusion called `name`.
    pub fn load(store: &ModelStore, name: &str, options: &EngineOptions) -> Result<Self> {
        let Some(fusion) = store.manifest.fusion.iter().find(|f| f.name == name) else {
            let r = Recogniser::load(store, name, options)?;
            let (threshold, confidence, embedding_size) = (r.spec.threshold, r.spec.confidence, r.spec.embedding_size);
            return Ok(Embedder { name: name.into(), parts: vec![(r, 1.0)], threshold, confidence, embedding_size });
        };
        let total: f32 = fusion.weights.iter().sum();
        if fusion.weights.len() != fusion.members.len() || fusion.weights.iter().any(|w| *w <= 0.0) || total <= 0.0 {
            return Err(Error::Invalid(format!("fusion {name}: needs one positive weight per member")));
        }
        let parts = fusion
            .members
            .iter()
            .zip(&fusion.weights)
            .map(|(m, w)| Ok((Recogniser::load(store, m, options)?, w / total)))
            .collect::<Result<Vec<_>>>()?;
        let embedding_size = parts.iter().map(|(r, _)| r.spec.embedding_size).sum();
        Ok(Embedder { name: name.into(), parts, threshold: fusion.threshold, confidence: fusion.confidence, embedding_size })
    }

    /// The identity of this embedder's templates when run with or without `flip`.
    pub fn id(&self, flip: bool) -> RecogniserId {
        RecogniserId {
            name: self.name.clone(),
            models: self.parts.iter().map(|(r, w)| ModelRef { name: r.name.clone(), sha256: r.sha256.clone(), weight: *w }).collect(),
            embedding_size: self.embedding_size,
            flip,
        }
    }

    /// One aligned crop of the face per recogniser in this embedder.
    pub fn align(&self, image: &RgbImage, face: &Face) -> Vec<RgbImage> {
        self.parts.iter().map(|(r, _)| r.align(image, face)).collect()
    }

    /// Aligns and embeds the given faces of a photo (one batch per recogniser).
    pub fn embed_faces(&self, image: &RgbImage, faces: &[Face], flip: bool) -> Result<Vec<Embedding>> {
        let mut fused: Vec<Vec<f32>> = vec![Vec::with_capacity(self.embedding_size); faces.len()];
        for (recogniser, weight) in &self.parts {
            let crops: Vec<RgbImage> = faces.iter().map(|f| recogniser.align(image, f)).collect();
            let scale = weight.sqrt();
            for (out, e) in fused.iter_mut().zip(recogniser.embed_crops(&crops, flip)?) {
                out.extend(e.0.iter().map(|v| v * scale));
            }
        }
        Ok(fused.into_iter().map(Embedding).collect())
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_unit_length_and_similarity_is_cosine() {
        let a = Embedding::normalised(vec![3.0, 4.0]).unwrap();
        let b = Embedding::normalised(vec![4.0, 3.0]).unwrap();
        assert!((a.similarity(&a) - 1.0).abs() < 1e-6);
        assert!((a.similarity(&b) - 0.96).abs() < 1e-6);
        assert!(Embedding::normalised(vec![0.0, 0.0]).is_none());
    }
}
