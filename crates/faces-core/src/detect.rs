//! The RetinaFace detector (MobileNet-0.25): resize and normalise the photo,
//! run the network, decode boxes and landmarks from its anchor priors, and
//! suppress overlapping detections.

use image::RgbImage;

use crate::engine::{self, Dim, Engine, EngineOptions, Tensor};
use crate::models::{ModelStore, DETECTOR};
use crate::{BBox, Error, Face, Landmarks, Point, Result};

/// BGR channel means subtracted before the network (the values it was trained with).
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
/// Feature-map strides and the anchor sizes at each.
const STRIDES: [(usize, [f32; 2]); 3] = [(8, [16.0, 32.0]), (16, [64.0, 128.0]), (32, [256.0, 512.0])];
const CENTRE_VARIANCE: f32 = 0.1;
const SIZE_VARIANCE: f32 = 0.2;
/// Input sides are padded to a multiple of the coarsest stride.
const ALIGN: u32 = 32;

/// Tuning knobs of one detection call.
#[derive(Debug, Clone, Copy)]
pub struct DetectorOptions {
    /// Minimum detector confidence for a face, in [0, 1]. The default, 0.9, sits in
    /// the gap measured on the sample photos: every real face scored 0.993 or more,
    /// every false detection 0.84 or less.
    pub score_threshold: f32,
    /// Overlap (IoU) above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
    /// Smallest face kept, as the shorter box side in original pixels.
    pub min_size: f32,
    /// Photos whose longer side exceeds this are shrunk to it before detection;
    /// `None` runs at full resolution (slower; finds smaller faces in group photos).
    pub max_side: Option<u32>,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions { score_threshold: 0.9, nms_iou: 0.4, min_size: 0.0, max_side: Some(1280) }
    }
}

/// A loaded face detector; cheap to share between threads.
pub struct Detector {
    engine: Box<dyn Engine>,
}

impl Detector {
    /// Loads the installed RetinaFace model with the chosen engine.
    pub fn load(store: &ModelStore, options: &EngineOptions) -> Result<Self> {
        let model = store.require(DETECTOR)?;
        let input = [Dim::Fixed(1), Dim::Fixed(3), Dim::Dynamic("height"), Dim::Dynamic("width")];
        Ok(Detector { engine: engine::load(&model, &input, options)? })
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Finds every face in an upright RGB photo, best score first.
    pub fn detect(&self, image: &RgbImage, options: &DetectorOptions) -> Result<Vec<Face>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let scale = options.max_side.map_or(1.0, |m| (m.max(ALIGN) as f32 / w.max(h) as f32).min(1.0));
        let resized;
        let input = if scale < 1.0 {
            let (rw, rh) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
            resized = crate::image::resize(image, rw, rh);
            &resized
        } else {
            image
        };
        let tensor = to_tensor(input);
        let (th, tw) = (tensor.shape[2], tensor.shape[3]);
        let outputs = self.engine.run(tensor)?;
        let mut faces = decode(&outputs, tw, th, options.score_threshold)?;
        faces = non_maximum_suppression(faces, options.nms_iou);
        // Coordinates so far are in the resized photo; map them back.
        let back = 1.0 / scale;
        Ok(faces
            .into_iter()
            .map(|f| Face { bbox: f.bbox.scaled(back).clip(w, h), landmarks: f.landmarks.scaled(back), score: f.score })
            .filter(|f| f.bbox.width.min(f.bbox.height) >= options.min_size && f.bbox.area() > 0.0)
            .collect())
    }
}

/// NCHW float tensor, BGR minus the mean, padded right and bottom to a multiple
/// of [`ALIGN`] with the mean colour (zero after normalisation).
fn to_tensor(image: &RgbImage) -> Tensor {
    let (w, h) = image.dimensions();
    let pw = w.div_ceil(ALIGN) * ALIGN;
    let ph = h.div_ceil(ALIGN) * ALIGN;
    let plane = (pw * ph) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (y, row) in image.rows().enumerate() {
        let base = y * pw as usize;
        for (x, px) in row.enumerate() {
            let i = base + x;
            data[i] = f32::from(px[2]) - MEAN_BGR[0];
            data[plane + i] = f32::from(px[1]) - MEAN_BGR[1];
            data[2 * plane + i] = f32::from(px[0]) - MEAN_BGR[2];
        }
    }
    Tensor { shape: vec![1, 3, ph as usize, pw as usize], data }
}

/// The anchor priors for an input of `width` x `height`, as (cx, cy, w, h) in pixels,
/// in the order the network emits them: per stride, row-major cells, then sizes.
fn priors(width: usize, height: usize) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for (stride, sizes) in STRIDES {
        for i in 0..height.div_ceil(stride) {
            for j in 0..width.div_ceil(stride) {
                let (cx, cy) = ((j as f32 + 0.5) * stride as f32, (i as f32 + 0.5) * stride as f32);
                out.extend(sizes.iter().map(|&s| [cx, cy, s, s]));
            }
        }
    }
    out
}

/// Decodes the network outputs into faces above `threshold`, in input pixels.
fn decode(outputs: &[Tensor], width: usize, height: usize, threshold: f32) -> Result<Vec<Face>> {
    let by_width = |n: usize| {
        outputs.iter().find(|t| t.shape.last() == Some(&n)).ok_or_else(|| {
            Error::Invalid(format!("detector output with last dimension {n} missing; is this the RetinaFace model?"))
        })
    };
    let (loc, conf, marks) = (by_width(4)?, by_width(2)?, by_width(10)?);
    let priors = priors(width, height);
    let n = priors.len();
    if loc.data.len() != n * 4 || conf.data.len() != n * 2 || marks.data.len() != n * 10 {
        return Err(Error::Invalid(format!(
            "detector gave {} anchors for a {width}x{height} input, expected {n}",
            conf.data.len() / 2
        )));
    }
    let mut faces = Vec::new();
    for (a, p) in priors.iter().enumerate() {
        let score = conf.data[a * 2 + 1];
        if score < threshold {
            continue;
        }
        let l = &loc.data[a * 4..a * 4 + 4];
        let cx = p[0] + l[0] * CENTRE_VARIANCE * p[2];
        let cy = p[1] + l[1] * CENTRE_VARIANCE * p[3];
        let bw = p[2] * (l[2] * SIZE_VARIANCE).exp();
        let bh = p[3] * (l[3] * SIZE_VARIANCE).exp();
        let m = &marks.data[a * 10..a * 10 + 10];
        let point = |k: usize| Point {
            x: p[0] + m[2 * k] * CENTRE_VARIANCE * p[2],
            y: p[1] + m[2 * k + 1] * CENTRE_VARIANCE * p[3],
        };
        faces.push(Face {
            bbox: BBox::from_corners(cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0),
            landmarks: Landmarks::from_points([point(0), point(1), point(2), point(3), point(4)]),
            score,
        });
    }
    Ok(faces)
}

/// Greedy NMS: keeps the best-scoring box, drops those overlapping it above `iou`, repeats.
fn non_maximum_suppression(mut faces: Vec<Face>, iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_cover_every_cell_of_every_stride() {
        let p = priors(64, 32);
        // stride 8: 8x4 cells, 16: 4x2, 32: 2x1; two sizes each.
        assert_eq!(p.len(), 2 * (32 + 8 + 2));
        assert_eq!(p[0], [4.0, 4.0, 16.0, 16.0]);
        assert_eq!(p[1], [4.0, 4.0, 32.0, 32.0]);
        assert_eq!(*p.last().unwrap(), [48.0, 16.0, 512.0, 512.0]);
    }

    #[test]
    fn tensor_is_padded_bgr_minus_mean() {
        let img = RgbImage::from_pixel(33, 1, image::Rgb([200, 100, 50]));
        let t = to_tensor(&img);
        assert_eq!(t.shape, vec![1, 3, 32, 64]);
        let plane = 32 * 64;
        assert_eq!((t.data[0], t.data[plane], t.data[2 * plane]), (50.0 - 104.0, 100.0 - 117.0, 200.0 - 123.0));
        assert_eq!(t.data[33], 0.0, "padding is the mean colour");
    }

    #[test]
    fn nms_drops_overlaps_and_keeps_separate_faces() {
        let face = |x: f32, score: f32| Face {
            bbox: BBox { x, y: 0.0, width: 10.0, height: 10.0 },
            landmarks: Landmarks::from_points([Point { x: 0.0, y: 0.0 }; 5]),
            score,
        };
        let kept = non_maximum_suppression(vec![face(1.0, 0.8), face(0.0, 0.9), face(50.0, 0.7)], 0.4);
        assert_eq!(kept.iter().map(|f| f.score).collect::<Vec<_>>(), vec![0.9, 0.7]);
    }
}
