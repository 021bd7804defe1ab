//! Calibration and reports through the CLI on real data: the threshold for a
//! target false-match rate on LFW View 2 checked fold by fold, a target the
//! data cannot support refused, a calibrated gallery used by `identify`, the
//! bias breakdown from a labels file the test writes, the identification
//! protocol on an LFW subset, and the HTML report rendered in headless
//! Chromium (plots and thumbnails present and drawn).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json, knn_train, shared_data, text, Sandbox, RESEARCH};

fn lfw() -> PathBuf {
    shared_data().join("lfw")
}

/// `subject,initial,source` for every LFW person: two attributes a user might
/// label (here from the names, so the test needs no private data).
fn write_labels(path: &Path) {
    let mut csv = String::from("subject,initial,source\n");
    for entry in std::fs::read_dir(lfw()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_str().unwrap().to_string();
            let half = if name.as_str() < "K" { "A-J" } else { "K-Z" };
            // One tiny group, to be reported as too small.
            let source = if name == "George_W_Bush" { "agency" } else { "archive" };
            csv += &format!("{name},{half},{source}\n");
        }
    }
    std::fs::write(path, csv).unwrap();
}

/// Headless Chromium, as the machine's set-up installs it.
fn chromium() -> Command {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    let bin = bin.expect("headless Chromium is needed for the report test: run ./scripts/setup.sh (it installs Debian's chromium)");
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ]);
    c
}

/// Opens the page in Chromium: the text of #render-check after load, and a screenshot.
fn render(page: &Path, dir: &Path) -> (String, image::RgbImage) {
    let profile = dir.join("chromium-profile");
    let url = format!("file://{}", page.display());
    let dom = chromium().arg(format!("--user-data-dir={}", profile.display())).args(["--dump-dom", &url]).output().unwrap();
    assert!(dom.status.success(), "chromium --dump-dom failed: {}", text(&dom.stderr));
    let dom = text(&dom.stdout);
    let start = dom.find("id=\"render-check\">").expect("#render-check in the DOM") + "id=\"render-check\">".len();
    let check = dom[start..dom[start..].find('<').unwrap() + start].to_string();

    let shot = dir.join("report.png");
    let out = chromium()
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([&format!("--screenshot={}", shot.display()), "--window-size=1400,2400", &url])
        .output()
        .unwrap();
    assert!(out.status.success() && shot.is_file(), "chromium --screenshot failed: {}", text(&out.stderr));
    (check, image::open(&shot).unwrap().to_rgb8())
}

/// "rendered: A of B figures, C of D thumbnails" -> (A, B, C, D).
fn parse_check(check: &str) -> (usize, usize, usize, usize) {
    let n: Vec<usize> = check.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    assert_eq!(n.len(), 4, "{check}");
    (n[0], n[1], n[2], n[3])
}

#[test]
fn lfw_view2_calibration_holds_on_held_out_folds_and_the_report_renders_in_chromium() {
    let sb = Sandbox::new();
    let labels = sb.path().join("labels.csv");
    write_labels(&labels);
    let report_dir = sb.path().join("report");
    let pairs = lfw().join("pairs.txt");
    let out = sb.faces(&[
        "calibrate",
        lfw().to_str().unwrap(),
        "--pairs",
        pairs.to_str().unwrap(),
        "--fmr",
        "1e-3",
        "--groups",
        labels.to_str().unwrap(),
        "--report",
        report_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result = json(&out);
    let c = &result["calibration"];
    assert_eq!((c["genuine_pairs"].as_u64(), c["impostor_pairs"].as_u64()), (Some(3000), Some(3000)));
    let threshold = c["threshold"].as_f64().unwrap();
    assert!((0.3..0.6).contains(&threshold), "MobileFaceNet's threshold for FMR 1e-3 on LFW: {threshold}");
    assert!(c["fmr"]["value"].as_f64().unwrap() <= 1e-3, "{c}");
    assert!(c["fnmr"]["value"].as_f64().unwrap() < 0.03, "FNMR at FMR 1e-3: {c}");
    assert!(c["threshold_low"].as_f64().unwrap() <= threshold && threshold <= c["threshold_high"].as_f64().unwrap());
    // 3,000 impostor pairs give only 3 expected false matches at 1e-3: said so.
    assert_eq!(c["support"], "imprecise");
    assert!(text(&out.stderr).contains("false matches are expected"), "{}", text(&out.stderr));

    // Each fold's held-out FMR against the interval of the threshold chosen on the other nine.
    let held = &result["held_out"];
    assert_eq!(held["folds"].as_array().unwrap().len(), 10);
    let within = held["within_interval"].as_u64().unwrap();
    assert!(within >= 6, "most folds' held-out FMR within the interval: {within} of 10\n{held}");
    let covering = held["covering_target"].as_u64().unwrap();
    assert!(covering >= 8, "most folds' own interval covers the target: {covering} of 10\n{held}");
    let pooled = &held["pooled_fmr"];
    assert!(pooled["low"].as_f64().unwrap() <= 1e-3 && 1e-3 <= pooled["high"].as_f64().unwrap(), "pooled held-out FMR covers the target: {pooled}");

    // The report: figures as JSON, and the bias breakdown from our labels.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap()).unwrap();
    assert!(report["roc"].as_array().unwrap().len() > 50 && report["det"].as_array().unwrap().len() > 50);
    let worst = report["worst_false_matches"].as_array().unwrap();
    assert!(!worst.is_empty() && worst.iter().all(|p| p["subject_a"] != p["subject_b"] && p["score"].as_f64().unwrap() >= threshold));
    assert!(!report["worst_false_non_matches"].as_array().unwrap().is_empty());
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let initial = &groups[0];
    assert_eq!(initial["attribute"], "initial");
    let halves = initial["groups"].as_array().unwrap();
    assert_eq!(halves.len(), 2);
    let genuine: u64 = halves.iter().map(|g| g["fnmr"]["trials"].as_u64().unwrap()).sum();
    assert_eq!(genuine, 3000, "every genuine pair lands in its subject's half");
    let source = groups[1]["groups"].as_array().unwrap();
    let agency = source.iter().find(|g| g["group"] == "agency").unwrap();
    assert_eq!((agency["subjects"].as_u64(), agency["too_small"].as_bool()), (Some(1), Some(true)), "{agency}");
    assert_eq!(groups[1]["fmr_ratio"]["kind"], "too_few_groups");

    // The page in a real browser: every figure and thumbnail drawn, and not a blank screenshot.
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    let thumbnails = html.matches("data:image/jpeg;base64,").count();
    assert!(thumbnails >= 4, "side-by-side thumbnails of the worst pairs: {thumbnails}");
    let (check, shot) = render(&report_dir.join("report.html"), sb.path());
    let (drawn, figures, shown, images) = parse_check(&check);
    assert_eq!((drawn, figures), (3, 3), "ROC, DET and histograms: {check}");
    assert_eq!((shown, images), (thumbnails, thumbnails), "{check}");
    let coloured = shot.pixels().filter(|p| p.0.iter().map(|&v| i32::from(v)).max().unwrap() - p.0.iter().map(|&v| i32::from(v)).min().unwrap() > 40).count();
    assert!(coloured > 2000, "the screenshot shows coloured curves and photos: {coloured} coloured pixels");
}

#[test]
fn a_target_the_data_cannot_support_is_refused_and_a_calibrated_gallery_is_used_by_identify() {
    let sb = Sandbox::new();
    let train = knn_train(sb.path(), &[]);
    let gallery = sb.path().join("club.gallery");
    let (t, g) = (train.to_str().unwrap(), gallery.to_str().unwrap());
    sb.ok(&[&["enrol", t, "--gallery", g][..], &RESEARCH].concat());
    let before = json(&sb.ok(&["gallery", "list", "--json", "--gallery", g]));

    // 9 photos: 4 genuine and 32 impostor pairs cannot measure FMR 1e-3.
    let out = sb.faces(&["calibrate", t, "--gallery", g, "--fmr", "1e-3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("only 32 impostor pairs") && stderr.contains("cannot be measured"), "{stderr}");
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    let after = json(&sb.ok(&["gallery", "list", "--json", "--gallery", g]));
    assert_eq!(before["threshold"], after["threshold"], "the gallery keeps its threshold");

    // A target these pairs can (coarsely) measure is stored, and identify uses it.
    let out = json(&sb.ok(&["calibrate", t, "--gallery", g, "--fmr", "0.1", "--json"]));
    assert_eq!(out["calibration"]["support"], "imprecise");
    let threshold = out["calibration"]["threshold"].as_f64().unwrap();
    let listed = json(&sb.ok(&["gallery", "list", "--json", "--gallery", g]));
    assert!((listed["threshold"]["value"].as_f64().unwrap() - threshold).abs() < 1e-6, "{listed}");
    assert!(listed["threshold"]["source"].as_str().unwrap().starts_with("calibrated for FMR 1e-1"), "{listed}");
    let photo = shared_data().join("samples/face_recognition/knn_examples/test/obama1.jpg");
    let named = sb.faces(&["identify", "--gallery", g, photo.to_str().unwrap()]);
    assert!(text(&named.stderr).contains(&format!("threshold {threshold:.3}")), "{}", text(&named.stderr));
    // The confidence now comes from the gallery's own calibration pairs.
    let id = json(&sb.ok(&["identify", "--json", "--gallery", g, photo.to_str().unwrap()]));
    let confidence = id["faces"][0]["confidence"].as_f64().unwrap();
    let map = &out["confidence"];
    let similarity = id["faces"][0]["similarity"].as_f64().unwrap();
    let expected = 1.0 / (1.0 + (-(map["intercept"].as_f64().unwrap() + map["slope"].as_f64().unwrap() * similarity)).exp());
    assert!((confidence - expected).abs() < 1e-3, "{confidence} vs {expected}");
}

/// A data set of symlinks to LFW: the first `per_person` photos of the first
/// `people` persons with at least two, and `strangers` persons with one.
fn lfw_subset(dir: &Path, people: usize, per_person: usize, strangers: usize) -> PathBuf {
    let root = dir.join("subset");
    let mut names: Vec<(String, usize)> = std::fs::read_dir(lfw())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| (e.file_name().to_str().unwrap().to_string(), std::fs::read_dir(e.path()).unwrap().count()))
        .collect();
    names.sort();
    let several = names.iter().filter(|n| n.1 >= 2).take(people);
    let single = names.iter().filter(|n| n.1 == 1).take(strangers);
    for (name, count) in several.chain(single) {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for i in 1..=(*count).min(per_person) {
            let file = format!("{name}_{i:04}.jpg");
            std::os::unix::fs::symlink(lfw().join(name).join(&file), root.join(name).join(&file)).unwrap();
        }
    }
    root
}

#[test]
fn a_data_set_report_has_the_identification_protocol_and_groups() {
    let sb = Sandbox::new();
    let subset = lfw_subset(sb.path(), 40, 3, 30);
    let labels = sb.path().join("labels.csv");
    write_labels(&labels);
    let out_dir = sb.path().join("report");
    let out = sb.ok(&["report", subset.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--groups", labels.to_str().unwrap(), "--json"]);
    let report = json(&out);
    let id = &report["identification"];
    assert_eq!((id["enrolled_subjects"].as_u64(), id["non_mated_probes"].as_u64()), (Some(40), Some(30)), "{id}");
    assert!(id["mated_probes"].as_u64().unwrap() >= 40);
    assert!(id["rank1"].as_f64().unwrap() >= 0.9, "rank-1 on 40 LFW people: {id}");
    assert_eq!(id["cmc"].as_array().unwrap().len(), 20);
    assert!(id["cmc"][19].as_f64() >= id["cmc"][0].as_f64());
    assert_eq!(id["fnir_at_fpir"].as_array().unwrap().len(), 3);
    // Every pair of 70 subjects' photos: C(n, 2) comparisons in all.
    let c = &report["calibration"];
    let n = report["samples"].as_u64().unwrap() - report["without_face"].as_u64().unwrap();
    assert_eq!(c["genuine_pairs"].as_u64().unwrap() + c["impostor_pairs"].as_u64().unwrap(), n * (n - 1) / 2);
    assert_eq!(report["groups"][0]["attribute"], "initial");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains(">CMC<") && html.contains("Identification"), "the CMC figure is drawn");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(out_dir.join("report.html")).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the report shows faces: owner-only");
}
