//! Our TFLite importer against the TensorFlow Lite interpreter itself: the
//! MobileFaceNet ONNX we write, run by both engines, gives the raw embeddings
//! LiteRT gives on the same aligned crops, within 1e-4.

mod common;

use std::path::PathBuf;
use std::process::Command;

use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::Recogniser;
use faces_core::engine::EngineKind;
use faces_core::image::{self, ImageLimits};

const MODEL: &str = "mobilefacenet";

fn reference(package: &PathBuf, member: &str, crops: &[PathBuf]) -> Vec<Vec<f32>> {
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference");
    let out = Command::new("bash")
        .arg(scripts.join("env.sh"))
        .arg(scripts.join("litert_embeddings.py"))
        .arg(package)
        .arg(member)
        .args(crops)
        .output()
        .expect("run scripts/reference/env.sh");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    serde_json::from_value(json["embeddings"].clone()).expect("embeddings")
}

#[test]
fn mobilefacenet_import_matches_the_tflite_interpreter() {
    let Some(data) = common::shared_data() else { return };
    let store = common::store();
    let artifact = store.manifest.get(MODEL).expect("in manifest").clone();
    let package = store.dir.join(".packages").join(format!("{}-{}.tgz", artifact.source.package, artifact.source.version));
    assert!(package.is_file(), "{} missing: run ./scripts/setup.sh", package.display());

    let detector = Detector::load(&store, &common::engine(&store, EngineKind::Auto)).unwrap();
    let ort = Recogniser::load(&store, MODEL, &common::engine(&store, EngineKind::Ort)).unwrap();
    let tract = Recogniser::load(&store, MODEL, &common::engine(&store, EngineKind::Tract)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut crops = Vec::new();
    let mut paths = Vec::new();
    for name in ["face_recognition/obama.jpg", "face_recognition/two_people.jpg", "insightface/t1.jpg"] {
        let img = image::load(&data.join("samples").join(name), &ImageLimits::default()).unwrap();
        for face in detector.detect(&img, &DetectorOptions::default()).unwrap() {
            let crop = ort.align(&img, &face);
            let path = dir.path().join(format!("crop{}.png", crops.len()));
            crop.save(&path).unwrap();
            paths.push(path);
            crops.push(crop);
        }
    }
    assert_eq!(crops.len(), 9);
    let expected = reference(&package, &artifact.source.member, &paths);
    for recogniser in [&ort, &tract] {
        let got = recogniser.raw_outputs(&crops).unwrap();
        let worst = got.iter().flatten().zip(expected.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("{}: max abs difference from LiteRT {worst:.2e}", recogniser.engine_name());
        assert!(worst < 1e-4, "{}: max abs difference {worst}", recogniser.engine_name());
    }
}
