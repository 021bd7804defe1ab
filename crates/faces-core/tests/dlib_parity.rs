//! Our ONNX import of dlib's face recognition ResNet against dlib itself: the
//! same 150x150 chips (aligned by dlib) through both of our engines must give
//! dlib's raw descriptors to 1e-4. dlib runs in a throwaway venv made by
//! `scripts/reference/env.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use faces_core::engine::{self, Dim, EngineKind, Tensor};
use faces_core::models::{Manifest, ModelStore, ONNXRUNTIME};

const MODEL: &str = "dlib-resnet";
const SDIST: &str = "face_recognition_models-0.3.0.tar.gz";
const TOLERANCE: f32 = 1e-4;
/// Photos with nine frontal faces between them, dlib's own examples among them.
const PHOTOS: [&str; 6] = [
    "face_recognition/obama.jpg",
    "face_recognition/biden.jpg",
    "face_recognition/alex-lacamoire.png",
    "face_recognition/lin-manuel-miranda.png",
    "face_recognition/knn_examples/test/obama_and_biden.jpg",
    "face_recognition/knn_examples/test/kit_with_rose.jpg",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// dlib's chips and descriptors, from `scripts/reference/dlib_descriptors.py`.
struct Reference {
    chips: Vec<image::RgbImage>,
    descriptors: Vec<Vec<f32>>,
}

fn reference(sdist: &Path, data: &Path, out: &Path) -> Reference {
    let scripts = repo().join("scripts/reference");
    let status = Command::new("bash")
        .arg(scripts.join("env.sh"))
        .arg(scripts.join("dlib_descriptors.py"))
        .arg("--sdist")
        .arg(sdist)
        .arg("--out")
        .arg(out)
        .args(PHOTOS.iter().map(|p| data.join("samples").join(p)))
        .status()
        .expect("run bash scripts/reference/env.sh");
    assert!(status.success(), "the dlib reference script failed ({status})");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("descriptors.json")).expect("descriptors.json")).expect("valid JSON");
    let faces = json["faces"].as_array().expect("faces array");
    let chips = faces
        .iter()
        .map(|f| image::open(out.join(f["chip"].as_str().expect("chip name"))).expect("chip PNG").to_rgb8())
        .collect();
    let descriptors = faces
        .iter()
        .map(|f| f["descriptor"].as_array().expect("descriptor").iter().map(|v| v.as_f64().expect("number") as f32).collect())
        .collect();
    Reference { chips, descriptors }
}

/// NCHW batch normalised with the manifest's spec, as the recogniser feeds it.
fn batch(store: &ModelStore, chips: &[image::RgbImage]) -> Tensor {
    let spec = store.manifest.get(MODEL).and_then(|a| a.recogniser.clone()).expect("dlib-resnet spec");
    let [w, h] = spec.input_size.map(|v| v as usize);
    let mut data = Vec::with_capacity(chips.len() * 3 * h * w);
    for chip in chips {
        assert_eq!(chip.dimensions(), (w as u32, h as u32));
        for c in 0..3 {
            data.extend(chip.pixels().map(|p| (f32::from(p[c]) - spec.mean[c]) / spec.std[c]));
        }
    }
    Tensor::new(vec![chips.len(), 3, h, w], data).expect("tensor")
}

fn max_abs_diff(store: &ModelStore, kind: EngineKind, input: &Tensor, want: &[Vec<f32>]) -> f32 {
    let path = store.require(MODEL).expect("installed");
    let dims = [Dim::Dynamic("batch"), Dim::Fixed(3), Dim::Fixed(150), Dim::Fixed(150)];
    let engine = engine::load(&path, &dims, &common::engine(store, kind)).expect("load dlib-resnet");
    let out = engine.run(input.clone()).expect("run");
    let got = &out[0];
    assert_eq!(got.shape, vec![want.len(), 128], "{}", engine.name());
    let diff = want.iter().flatten().zip(&got.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("{}: max abs diff vs dlib over {} faces = {diff:.3e}", engine.name(), want.len());
    diff
}

/// The sdist `faces models install` downloaded into `<models>/.packages`.
fn sdist(store: &ModelStore) -> PathBuf {
    let path = store.dir.join(".packages").join(SDIST);
    assert!(path.is_file(), "{} not found: install the models with `faces models install` (it keeps the package there)", path.display());
    path
}

#[test]
fn dlib_resnet_matches_dlib_on_dlib_chips_with_both_engines() {
    let store = common::store();
    store.require(MODEL).unwrap_or_else(|e| panic!("{e}\nrun ./scripts/setup.sh (or `faces models install`) first"));
    let sdist = sdist(&store);
    let Some(data) = common::shared_data() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let reference = reference(&sdist, &data, out.path());
    assert!(reference.descriptors.len() >= 5, "dlib found only {} faces", reference.descriptors.len());
    let input = batch(&store, &reference.chips);
    let mut kinds = vec![EngineKind::Tract];
    if Manifest::builtin().unwrap().get(ONNXRUNTIME).is_some_and(|a| a.applies_here()) {
        kinds.push(EngineKind::Ort);
    } else {
        eprintln!("SKIPPED onnxruntime: no ONNX Runtime build for this platform in the manifest");
    }
    for kind in kinds {
        let diff = max_abs_diff(&store, kind, &input, &reference.descriptors);
        assert!(diff < TOLERANCE, "{kind}: max abs diff {diff:e} vs dlib (tolerance {TOLERANCE:e})");
    }
}
