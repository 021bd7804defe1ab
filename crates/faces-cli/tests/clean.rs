//! `faces clean` end to end on a small data set built from LFW photos, with
//! one planted problem of each kind: each must be caught for the right reason,
//! the ordinary photos kept, and the user's files left as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Five people, five photos each, with one face each (Gerhard_Schroeder_0004
/// and Ariel_Sharon_0004 show a second face, so are not ordinary).
const PEOPLE: [(&str, [u32; 5]); 5] = [
    ("Colin_Powell", [1, 2, 3, 4, 5]),
    ("Tony_Blair", [1, 2, 3, 4, 5]),
    ("Donald_Rumsfeld", [1, 2, 3, 4, 5]),
    ("Gerhard_Schroeder", [1, 2, 3, 5, 6]),
    ("Ariel_Sharon", [1, 2, 3, 5, 7]),
];

fn lfw() -> Option<PathBuf> {
    let dir = std::env::var_os("FACES_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("lfw");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: LFW not found at {}", dir.display());
        None
    }
}

fn faces(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faces")).args(args).output().expect("run faces")
}

fn lfw_photo(lfw: &Path, person: &str, n: u32) -> PathBuf {
    lfw.join(person).join(format!("{person}_{n:04}.jpg"))
}

/// What was planted where, relative to the data set root.
struct Planted {
    ordinary: Vec<String>,
    duplicate: String,
    duplicated: String,
    blurred: String,
    no_face: String,
    swapped: String,
    unreadable: String,
}

fn build(lfw: &Path, root: &Path) -> Planted {
    let mut ordinary = Vec::new();
    for (person, photos) in PEOPLE {
        std::fs::create_dir_all(root.join(person)).unwrap();
        for n in photos {
            let name = format!("{person}/{person}_{n:04}.jpg");
            std::fs::copy(lfw_photo(lfw, person, n), root.join(&name)).unwrap();
            ordinary.push(name);
        }
    }
    let duplicate = "Colin_Powell/Colin_Powell_0003_copy.jpg".to_string();
    std::fs::copy(root.join("Colin_Powell/Colin_Powell_0003.jpg"), root.join(&duplicate)).unwrap();

    let blurred = "Tony_Blair/Tony_Blair_0002_blurred.png".to_string();
    let photo = image::open(root.join("Tony_Blair/Tony_Blair_0002.jpg")).unwrap().to_rgb8();
    image::imageops::blur(&photo, 3.0).save(root.join(&blurred)).unwrap();

    // Smooth shading with a little noise: a photo of a wall.
    let no_face = "Donald_Rumsfeld/wall.jpg".to_string();
    let wall = image::RgbImage::from_fn(250, 250, |x, y| {
        let noise = ((x * 7919 + y * 104_729) % 13) as u8;
        image::Rgb([120 + (x / 8) as u8 + noise, 110 + (y / 10) as u8 + noise, 100 + noise])
    });
    wall.save(root.join(&no_face)).unwrap();

    // Ariel Sharon's sixth photo (not otherwise in the set) filed under Gerhard Schroeder.
    let swapped = "Gerhard_Schroeder/Gerhard_Schroeder_0099.jpg".to_string();
    std::fs::copy(lfw_photo(lfw, "Ariel_Sharon", 6), root.join(&swapped)).unwrap();

    let unreadable = "Ariel_Sharon/notes.jpg".to_string();
    std::fs::write(root.join(&unreadable), b"not a photo\n").unwrap();
    let duplicated = "Colin_Powell/Colin_Powell_0003.jpg".to_string();
    Planted { ordinary, duplicate, duplicated, blurred, no_face, swapped, unreadable }
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for person in std::fs::read_dir(root).unwrap() {
        let person = person.unwrap().path();
        if person.is_dir() {
            for f in std::fs::read_dir(&person).unwrap() {
                let f = f.unwrap().path();
                out.insert(f.clone(), std::fs::read(&f).unwrap());
            }
        } else {
            out.insert(person.clone(), std::fs::read(&person).unwrap());
        }
    }
    out
}

/// Runs `faces clean` and returns report.json's photos by path relative to `root`.
fn clean(dataset: &Path, root: &Path, out: &Path) -> BTreeMap<String, Value> {
    let run = faces(&["clean", dataset.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "exit 0 even with photos dropped; stderr:\n{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let root = root.canonicalize().unwrap();
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let path = Path::new(i["path"].as_str().unwrap()).canonicalize().unwrap();
            (path.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), i.clone())
        })
        .collect()
}

fn reasons(image: &Value) -> Vec<&str> {
    image["findings"].as_array().unwrap().iter().map(|f| f["reason"].as_str().unwrap()).collect()
}

fn finding<'a>(image: &'a Value, reason: &str) -> &'a Value {
    let found = image["findings"].as_array().unwrap().iter().find(|f| f["reason"] == reason);
    found.unwrap_or_else(|| panic!("no {reason} finding in {image:#}"))
}

fn check(images: &BTreeMap<String, Value>, p: &Planted) {
    let get = |name: &str| images.get(name).unwrap_or_else(|| panic!("{name} missing from the report"));
    let verdict = |name: &str| get(name)["verdict"].as_str().unwrap().to_string();

    let dup = get(&p.duplicate);
    assert_eq!(verdict(&p.duplicate), "drop");
    assert!(finding(dup, "exact_duplicate")["duplicate_of"].as_str().unwrap().ends_with(&p.duplicated), "{dup:#}");

    let blurred = finding(get(&p.blurred), "blurry");
    assert_eq!(verdict(&p.blurred), "drop");
    assert!(blurred["value"].as_f64().unwrap() < blurred["limit"].as_f64().unwrap(), "{blurred:#}");

    assert_eq!(reasons(get(&p.no_face)), ["no_face"]);
    assert_eq!(verdict(&p.no_face), "drop");
    assert_eq!(reasons(get(&p.unreadable)), ["unreadable"]);
    assert!(finding(get(&p.unreadable), "unreadable")["message"].as_str().unwrap().contains("notes.jpg"));

    let swapped = finding(get(&p.swapped), "likely_mislabel");
    assert_eq!(verdict(&p.swapped), "flag");
    assert_eq!(swapped["looks_like"], "Ariel_Sharon", "{swapped:#}");

    for name in &p.ordinary {
        assert_eq!(verdict(name), "keep", "{name}: {:#}", get(name));
    }
    assert_eq!(images.len(), p.ordinary.len() + 5);
}

#[test]
fn clean_flags_each_planted_problem_for_its_reason_and_keeps_the_rest() {
    let Some(lfw) = lfw() else { return };
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("people");
    let planted = build(&lfw, &root);
    let before = snapshot(&root);
    let out = data.path().join("report");

    let images = clean(&root, &root, &out);
    check(&images, &planted);
    assert_eq!(snapshot(&root), before, "the data set is untouched");

    // cleaned.csv lists every photo not dropped, and is itself a data set.
    let cleaned = std::fs::read_to_string(out.join("cleaned.csv")).unwrap();
    assert!(cleaned.starts_with("path,subject,flags\n"), "{cleaned}");
    assert_eq!(cleaned.lines().count(), 1 + planted.ordinary.len() + 1, "{cleaned}");
    assert!(cleaned.lines().any(|l| l.contains("Gerhard_Schroeder_0099.jpg") && l.ends_with("likely_mislabel")), "{cleaned}");
    assert!(!cleaned.contains("_copy.jpg") && !cleaned.contains("wall.jpg"), "{cleaned}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in ["<h2 id=\"exact_duplicate\">", "<h2 id=\"blurry\">", "<h2 id=\"no_face\">", "<h2 id=\"likely_mislabel\">"] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    assert!(html.matches("src=\"data:image/jpeg;base64,").count() >= 4, "thumbnails inline");
    assert!(!html.contains("src=\"http") && !html.contains("src=\"/"), "self-contained");

    // The same photos listed in a CSV manifest (relative paths) get the same verdicts.
    let mut manifest = String::from("subject,path\n");
    for (name, image) in &images {
        manifest += &format!("{},people/{name}\n", image["subject"].as_str().unwrap());
    }
    std::fs::write(data.path().join("photos.csv"), manifest).unwrap();
    let again = clean(&data.path().join("photos.csv"), &root, &data.path().join("report2"));
    let verdicts = |m: &BTreeMap<String, Value>| m.iter().map(|(k, v)| (k.clone(), v["verdict"].clone())).collect::<Vec<_>>();
    assert_eq!(verdicts(&again), verdicts(&images));
}

#[test]
fn clean_exits_1_with_one_line_when_the_data_set_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let out = faces(&["clean", missing.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-folder"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing written");
}
