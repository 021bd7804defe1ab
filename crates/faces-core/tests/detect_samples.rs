//! Detection on real photos: counts, engine parity, EXIF orientation, formats.

mod common;

use std::io::Cursor;

use faces_core::detect::{Detector, DetectorOptions};
use faces_core::engine::EngineKind;
use faces_core::image::{self as img, ImageLimits};
use faces_core::models::{Manifest, ONNXRUNTIME};
use faces_core::Face;
use image::{DynamicImage, ImageFormat};

fn detector(kind: EngineKind) -> Detector {
    let store = common::store();
    Detector::load(&store, &common::engine(&store, kind)).expect("load detector")
}

#[test]
fn every_sample_photo_has_its_expected_face_count() {
    let Some(data) = common::shared_data() else { return };
    let detector = detector(EngineKind::Auto);
    let mut wrong = Vec::new();
    for s in common::samples(&data) {
        let image = img::load(&s.path, &ImageLimits::default()).expect("sample decodes");
        let found = detector.detect(&image, &DetectorOptions::default()).expect("detect").len();
        if found != s.faces_expected {
            wrong.push(format!("{}: found {found}, expected {}", s.name, s.faces_expected));
        }
    }
    assert!(wrong.is_empty(), "wrong face counts with {}:\n{}", detector.engine_name(), wrong.join("\n"));
}

fn ort_is_expected_here() -> bool {
    Manifest::builtin().unwrap().get(ONNXRUNTIME).is_some_and(|a| a.applies_here())
}

#[test]
fn onnxruntime_and_tract_give_the_same_detections() {
    let Some(data) = common::shared_data() else { return };
    if !ort_is_expected_here() {
        eprintln!("SKIPPED: no ONNX Runtime build for this platform in the manifest");
        return;
    }
    let (ort, tract) = (detector(EngineKind::Ort), detector(EngineKind::Tract));
    assert_eq!((ort.engine_name(), tract.engine_name()), ("onnxruntime", "tract"));
    // A low threshold compares weak detections too, not just the easy ones.
    let options = DetectorOptions { score_threshold: 0.3, ..DetectorOptions::default() };
    let mut compared = 0;
    for s in common::samples(&data) {
        let image = img::load(&s.path, &ImageLimits::default()).unwrap();
        let a = ort.detect(&image, &options).unwrap();
        let b = tract.detect(&image, &options).unwrap();
        assert_eq!(a.len(), b.len(), "{}: onnxruntime found {}, tract {}", s.name, a.len(), b.len());
        for (fa, fb) in a.iter().zip(&b) {
            assert_close(fa, fb, &s.name);
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} faces compared");
}

fn assert_close(a: &Face, b: &Face, name: &str) {
    let (ba, bb) = (&a.bbox, &b.bbox);
    for (x, y) in [(ba.x, bb.x), (ba.y, bb.y), (ba.right(), bb.right()), (ba.bottom(), bb.bottom())] {
        assert!((x - y).abs() <= 1.0, "{name}: boxes differ by more than 1 px: {ba:?} vs {bb:?}");
    }
    for (p, q) in a.landmarks.points().iter().zip(b.landmarks.points()) {
        assert!((p.x - q.x).abs() <= 1.0 && (p.y - q.y).abs() <= 1.0, "{name}: landmarks differ: {p:?} vs {q:?}");
    }
    assert!((a.score - b.score).abs() <= 1e-3, "{name}: scores {} vs {}", a.score, b.score);
}

/// A minimal EXIF (APP1) segment holding only the orientation tag.
fn exif_orientation_segment(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF header, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend(payload);
    seg
}

#[test]
fn exif_orientation_is_applied_so_phone_photos_come_out_upright() {
    let Some(data) = common::shared_data() else { return };
    let path = data.join("samples/face_recognition/obama.jpg");
    let upright = img::load(&path, &ImageLimits::default()).unwrap();
    // Store the pixels turned a quarter to the left, as a phone held sideways does,
    // with EXIF orientation 6 ("rotate 90 clockwise to display").
    let sideways = DynamicImage::ImageRgb8(image::imageops::rotate270(&upright));
    let mut jpeg = Cursor::new(Vec::new());
    sideways.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    let mut with_exif = jpeg[..2].to_vec(); // SOI
    with_exif.extend(exif_orientation_segment(6));
    with_exif.extend_from_slice(&jpeg[2..]);

    let decoded = img::decode(&with_exif, std::path::Path::new("phone.jpg"), &ImageLimits::default()).unwrap();
    assert_eq!(decoded.dimensions(), upright.dimensions(), "orientation 6 turns the stored image back upright");
    let detector = detector(EngineKind::Auto);
    let a = detector.detect(&upright, &DetectorOptions::default()).unwrap();
    let b = detector.detect(&decoded, &DetectorOptions::default()).unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0].bbox.iou(&b[0].bbox) > 0.9, "{:?} vs {:?}", a[0].bbox, b[0].bbox);
    let eyes = &b[0].landmarks;
    assert!(eyes.right_eye.x < eyes.left_eye.x, "face is upright: right eye on the photo's left");
}

#[test]
fn every_supported_format_and_colour_type_decodes_and_detects() {
    let Some(data) = common::shared_data() else { return };
    let photo = img::load(&data.join("samples/face_recognition/obama-480p.jpg"), &ImageLimits::default()).unwrap();
    let rgb = DynamicImage::ImageRgb8(photo);
    let cases: Vec<(&str, DynamicImage, ImageFormat)> = vec![
        ("png", rgb.clone(), ImageFormat::Png),
        ("webp", rgb.clone(), ImageFormat::WebP),
        ("bmp", rgb.clone(), ImageFormat::Bmp),
        ("gif", rgb.clone(), ImageFormat::Gif),
        ("tiff", rgb.clone(), ImageFormat::Tiff),
        ("ppm", rgb.clone(), ImageFormat::Pnm),
        ("grey pgm", DynamicImage::ImageLuma8(rgb.to_luma8()), ImageFormat::Pnm),
        ("16-bit png", DynamicImage::ImageRgb16(rgb.to_rgb16()), ImageFormat::Png),
        ("rgba png", DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::Png),
    ];
    let detector = detector(EngineKind::Auto);
    for (name, image, format) in cases {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap_or_else(|e| panic!("encode {name}: {e}"));
        let decoded = img::decode(bytes.get_ref(), std::path::Path::new(name), &ImageLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.dimensions(), (853, 480), "{name}");
        let faces = detector.detect(&decoded, &DetectorOptions::default()).unwrap();
        assert_eq!(faces.len(), 1, "{name}");
    }
}

#[test]
fn full_resolution_finds_the_same_faces_as_the_default_on_a_group_photo() {
    let Some(data) = common::shared_data() else { return };
    let photo = img::load(&data.join("samples/face_recognition/knn_examples/test/obama_and_biden.jpg"), &ImageLimits::default()).unwrap();
    let detector = detector(EngineKind::Auto);
    let full = DetectorOptions { max_side: None, ..DetectorOptions::default() };
    assert_eq!(detector.detect(&photo, &full).unwrap().len(), 3);
    let tiny = DetectorOptions { max_side: Some(160), ..DetectorOptions::default() };
    assert!(detector.detect(&photo, &tiny).unwrap().len() < 3, "a 160 px copy loses the small faces");
}
