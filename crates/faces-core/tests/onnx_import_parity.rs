//! Our ONNX importer against ONNX Runtime's own dequantisation: SFace as its
//! package ships it (int8 weights with blocked scales, which ONNX Runtime runs
//! and tract cannot) gives the raw embeddings that the float graph we write
//! gives in both engines, on the same aligned crops, within 1e-4.

mod common;

use faces_core::detect::{Detector, DetectorOptions};
use faces_core::embed::Recogniser;
use faces_core::engine::{self, Dim, EngineKind, Tensor};
use faces_core::image::{self, ImageLimits};
use faces_core::models::source_file;

const MODEL: &str = "sface";

#[test]
fn sface_import_matches_onnx_runtime_on_the_quantised_original() {
    let Some(data) = common::shared_data() else { return };
    let store = common::store();
    let artifact = store.manifest.get(MODEL).expect("in manifest").clone();
    let original = source_file(&store, &artifact).expect("package left by ./scripts/setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let original_path = dir.path().join("original.onnx");
    std::fs::write(&original_path, &original).unwrap();

    let detector = Detector::load(&store, &common::engine(&store, EngineKind::Auto)).unwrap();
    let ours_ort = Recogniser::load(&store, MODEL, &common::engine(&store, EngineKind::Ort)).unwrap();
    let ours_tract = Recogniser::load(&store, MODEL, &common::engine(&store, EngineKind::Tract)).unwrap();
    let mut crops = Vec::new();
    for name in ["face_recognition/obama.jpg", "face_recognition/two_people.jpg", "insightface/t1.jpg"] {
        let img = image::load(&data.join("samples").join(name), &ImageLimits::default()).unwrap();
        for face in detector.detect(&img, &DetectorOptions::default()).unwrap() {
            crops.push(ours_ort.align(&img, &face));
        }
    }
    assert_eq!(crops.len(), 9);

    // The original takes one face at a time: NCHW, RGB, raw 0..255 (it normalises inside).
    let dims = [Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(112), Dim::Fixed(112)];
    let reference = engine::load(&original_path, &dims, &common::engine(&store, EngineKind::Ort)).unwrap();
    let expected: Vec<Vec<f32>> = crops
        .iter()
        .map(|crop| {
            let mut planar = vec![0.0f32; 3 * 112 * 112];
            for (x, y, p) in crop.enumerate_pixels() {
                for c in 0..3 {
                    planar[c * 112 * 112 + y as usize * 112 + x as usize] = f32::from(p[c]);
                }
            }
            let out = reference.run(Tensor::new(vec![1, 3, 112, 112], planar).unwrap()).unwrap();
            out[0].data.clone()
        })
        .collect();
    assert!(expected.iter().all(|e| e.len() == 128 && e.iter().any(|v| *v != 0.0)));
    for recogniser in [&ours_ort, &ours_tract] {
        let got = recogniser.raw_outputs(&crops).unwrap();
        let worst = got.iter().flatten().zip(expected.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let scale = expected.iter().flatten().map(|v| v.abs()).fold(0.0f32, f32::max);
        eprintln!("{}: max abs difference from ONNX Runtime on the original {worst:.2e} (largest value {scale:.2})", recogniser.engine_name());
        assert!(worst < 1e-4, "{}: max abs difference {worst}", recogniser.engine_name());
    }
}
