//! The per-photo pipeline: detect every face, align it to the recogniser's
//! template and embed it. One `Pipeline` is loaded once and shared by threads.

use image::RgbImage;

use crate::detect::{Detector, DetectorOptions};
use crate::embed::{Embedder, Embedding};
use crate::engine::EngineOptions;
use crate::models::ModelStore;
use crate::{Face, Result};

/// A detected face with its embedding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbeddedFace {
    #[serde(flatten)]
    pub face: Face,
    pub embedding: Embedding,
}

pub struct Pipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub detect: DetectorOptions,
    /// Average each face's embedding with its mirror image's.
    pub flip: bool,
}

impl Pipeline {
    /// Loads the detector and the recogniser (or fusion) called `model`.
    pub fn load(store: &ModelStore, model: &str, engine: &EngineOptions) -> Result<Self> {
        Ok(Pipeline {
            detector: Detector::load(store, engine)?,
            embedder: Embedder::load(store, model, engine)?,
            detect: DetectorOptions::default(),
            flip: true,
        })
    }

    /// Every face in the photo, embedded.
    pub fn faces(&self, image: &RgbImage) -> Result<Vec<EmbeddedFace>> {
        let faces = self.detector.detect(image, &self.detect)?;
        self.embed(image, faces)
    }

    /// Embeds the given faces of a photo in one batch.
    pub fn embed(&self, image: &RgbImage, faces: Vec<Face>) -> Result<Vec<EmbeddedFace>> {
        let embeddings = self.embedder.embed_faces(image, &faces, self.flip)?;
        Ok(faces.into_iter().zip(embeddings).map(|(face, embedding)| EmbeddedFace { face, embedding }).collect())
    }

    /// The photo's main subject, embedded (see [`main_face`]).
    pub fn main_face(&self, image: &RgbImage) -> Result<Option<EmbeddedFace>> {
        match main_face(&self.detector, &self.detect, image)? {
            Some(face) => Ok(self.embed(image, vec![face])?.pop()),
            None => Ok(None),
        }
    }
}

/// Detects the photo's main subject (see [`most_prominent`]), retrying with a
/// lower detector threshold before giving up, since a portrait is known to hold a face.
pub fn main_face(detector: &Detector, options: &DetectorOptions, image: &RgbImage) -> Result<Option<Face>> {
    // One detection at the lowest threshold; greedy NMS keeps a box only for
    // overlaps with stronger boxes, so filtering by score afterwards gives
    // exactly what a detection at each higher threshold would.
    let lowest = DetectorOptions { score_threshold: options.score_threshold.min(0.2), ..*options };
    let faces = detector.detect(image, &lowest)?;
    for threshold in [options.score_threshold, 0.5, 0.2] {
        let kept: Vec<Face> = faces.iter().filter(|f| f.score >= threshold.min(options.score_threshold)).cloned().collect();
        if let Some(face) = most_prominent(&kept, image.width(), image.height()) {
            return Ok(Some(face.clone()));
        }
    }
    Ok(None)
}

/// The face with the largest area weighted by closeness to the image centre.
pub fn most_prominent(faces: &[Face], width: u32, height: u32) -> Option<&Face> {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let diagonal = (cx * cx + cy * cy).sqrt().max(1.0);
    let weight = |f: &Face| {
        let (fx, fy) = (f.bbox.x + f.bbox.width / 2.0, f.bbox.y + f.bbox.height / 2.0);
        let off_centre = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt() / diagonal;
        f.bbox.area() * (1.0 - off_centre).max(0.0)
    };
    faces.iter().max_by(|a, b| weight(a).total_cmp(&weight(b)))
}
