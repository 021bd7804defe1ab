//! Enrolment, galleries and identification end to end, on real photos with
//! the installed models: naming people, strangers, resuming an interrupted
//! run, and galleries that are missing, corrupt or from another recogniser.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{json, knn_train, shared_data, text, Sandbox, RESEARCH};

/// Names given per test photo (file name -> sorted names of its faces).
fn identify_names(sb: &Sandbox, gallery: &Path) -> BTreeMap<String, Vec<String>> {
    let test = shared_data().join("samples/face_recognition/knn_examples/test");
    let out = sb.faces(&["identify", "--json", "--gallery", gallery.to_str().unwrap(), test.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let file = Path::new(record["file"].as_str().unwrap()).file_name().unwrap().to_str().unwrap().to_string();
            let faces = record["faces"].as_array().unwrap();
            for f in faces {
                for key in ["box", "similarity", "confidence", "margin", "candidates"] {
                    assert!(f.get(key).is_some(), "{file}: face without {key}: {f}");
                }
            }
            let mut names: Vec<String> = faces.iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
            names.sort();
            (file, names)
        })
        .collect()
}

#[test]
fn enrolled_people_are_named_and_a_stranger_is_unknown() {
    let sb = Sandbox::new();
    let dir = &sb.dir;
    let gallery = dir.path().join("club.gallery");
    let g = gallery.to_str().unwrap();
    let train = knn_train(dir.path(), &["alex_lacamoire"]);
    let out = sb.faces(&[&["enrol", "--json", train.to_str().unwrap(), "--gallery", g][..], &RESEARCH].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = json(&out);
    assert_eq!((summary["enrolled"].as_u64(), summary["subjects_in_gallery"].as_u64()), (Some(8), Some(4)), "{summary}");

    let names = identify_names(&sb, &gallery);
    let expected = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(names["alex_lacamoire1.jpg"], expected(&["unknown"]), "not enrolled: unknown");
    assert_eq!(names["johnsnow_test1.jpg"], expected(&["kit_harington"]));
    assert_eq!(names["kit_with_rose.jpg"], expected(&["kit_harington", "rose_leslie"]));
    assert_eq!(names["obama1.jpg"], expected(&["obama"]));
    // The third face is a child in the background, who is nobody enrolled.
    assert_eq!(names["obama_and_biden.jpg"], expected(&["biden", "obama", "unknown"]));

    // Enrolling the full folder adds only the new person's photo.
    let full = knn_train(&dir.path().join("all"), &[]);
    let out = sb.faces(&[&["train", "--json", full.to_str().unwrap(), "--gallery", g][..], &RESEARCH].concat());
    let summary = json(&out);
    assert_eq!((summary["enrolled"].as_u64(), summary["already_enrolled"].as_u64()), (Some(1), Some(8)), "{summary}");
    assert_eq!(identify_names(&sb, &gallery)["alex_lacamoire1.jpg"], expected(&["alex_lacamoire"]));

    // Removing a subject makes them unknown again.
    assert!(sb.faces(&["gallery", "remove", "--gallery", g, "obama"]).status.success());
    assert_eq!(identify_names(&sb, &gallery)["obama1.jpg"], expected(&["unknown"]));
    let listing = json(&sb.faces(&["gallery", "list", "--json", "--gallery", g]));
    let subjects: Vec<&str> = listing["subjects"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(subjects, vec!["alex_lacamoire", "biden", "kit_harington", "rose_leslie"]);
}

#[test]
fn annotate_and_csv_name_the_faces() {
    let sb = Sandbox::new();
    let dir = &sb.dir;
    let gallery = dir.path().join("g.gallery");
    let train = knn_train(dir.path(), &[]);
    assert!(sb.faces(&[&["enrol", train.to_str().unwrap(), "--gallery", gallery.to_str().unwrap()][..], &RESEARCH].concat()).status.success());
    let photo = shared_data().join("samples/face_recognition/knn_examples/test/kit_with_rose.jpg");
    let named = dir.path().join("named");
    let out = sb.faces(&["identify", "--csv", "--gallery", gallery.to_str().unwrap(), "--annotate", named.to_str().unwrap(), photo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    assert_eq!(csv.lines().next(), Some("file,face,x,y,width,height,name,similarity,confidence,margin,decision"));
    assert_eq!(csv.lines().filter(|l| l.contains(",match")).count(), 2, "{csv}");
    let original = image::open(&photo).unwrap().to_rgb8();
    let annotated = image::open(named.join("kit_with_rose.jpg")).unwrap().to_rgb8();
    assert_eq!(annotated.dimensions(), original.dimensions());
    let green = annotated.pixels().filter(|p| p[1] > 200 && p[0] < 60 && p[2] < 60).count();
    assert!(green > 500, "boxes and name labels drawn in green: {green} pixels");
}

#[test]
fn missing_corrupt_and_foreign_galleries_are_refused_clearly() {
    let sb = Sandbox::new();
    let dir = &sb.dir;
    let d = dir.path();
    let photo = shared_data().join("samples/face_recognition/obama.jpg");
    let photo = photo.to_str().unwrap();
    let refused = |gallery: &Path, why: &str| {
        let out = sb.faces(&["identify", "--gallery", gallery.to_str().unwrap(), photo]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(gallery.file_name().unwrap().to_str().unwrap()) && stderr.contains(why), "{why:?} in {stderr}");
    };
    refused(&d.join("missing.gallery"), "no gallery file here");
    std::fs::write(d.join("corrupt.gallery"), [0x5Au8; 8192]).unwrap();
    refused(&d.join("corrupt.gallery"), "not a faces gallery");
    std::fs::write(d.join("notes.gallery"), b"SQLite format 3\0 but not really").unwrap();
    refused(&d.join("notes.gallery"), "not a faces gallery");

    // A real gallery cut short: damaged, never silently empty.
    let train = knn_train(d, &[]);
    let good = d.join("good.gallery");
    assert!(sb.faces(&[&["enrol", train.to_str().unwrap(), "--gallery", good.to_str().unwrap()][..], &RESEARCH].concat()).status.success());
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d.join("cut.gallery"), &bytes[..bytes.len() / 2]).unwrap();
    let out = sb.faces(&["identify", "--gallery", d.join("cut.gallery").to_str().unwrap(), photo]);
    assert_eq!(out.status.code(), Some(1), "a truncated gallery fails: {}", text(&out.stderr));

    // Templates of another recogniser are never mixed in.
    let out = sb.faces(&[&["enrol", train.to_str().unwrap(), "--gallery", good.to_str().unwrap(), "--model", "dlib-resnet"][..], &RESEARCH].concat());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds sface templates, not dlib-resnet"), "{stderr}");
}

/// A data set of the first `people` LFW people with at least 4 photos each.
fn lfw_subset(root: &Path, people: usize) -> usize {
    let lfw = shared_data().join("lfw");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&lfw).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    names.sort();
    let mut photos = 0;
    for person in names.into_iter().filter(|p| std::fs::read_dir(p).unwrap().count() >= 4).take(people) {
        std::os::unix::fs::symlink(&person, root.join(person.file_name().unwrap())).unwrap();
        photos += std::fs::read_dir(&person).unwrap().count();
    }
    photos
}

#[test]
fn an_interrupted_enrolment_keeps_what_was_written_and_a_rerun_resumes() {
    let sb = Sandbox::new();
    let dir = &sb.dir;
    let data = dir.path().join("lfw");
    std::fs::create_dir_all(&data).unwrap();
    let photos = lfw_subset(&data, 40);
    assert!(photos > 200, "{photos} photos");
    let gallery = dir.path().join("lfw.gallery");
    let g = gallery.to_str().unwrap();

    let mut child = sb
        .command()
        .args(["enrol", data.to_str().unwrap(), "--gallery", g])
        .args(RESEARCH)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first batch has landed.
    let start = Instant::now();
    let written = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "no batch written in 2 minutes");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("enrolment finished before it could be interrupted: {status}");
        }
        let out = sb.faces(&["gallery", "list", "--json", "--gallery", g]);
        if out.status.success() {
            let n: i64 = json(&out)["subjects"].as_array().unwrap().iter().map(|s| s["photos"].as_i64().unwrap()).sum();
            if n > 0 {
                break n;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!((written as usize) < photos, "killed midway: {written} of {photos}");

    let out = sb.faces(&[&["enrol", "--json", data.to_str().unwrap(), "--gallery", g][..], &RESEARCH].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = json(&out);
    let already = summary["already_enrolled"].as_u64().unwrap() as usize;
    assert!(already >= written as usize, "the rerun skipped the photos already written: {summary}");
    assert_eq!(already + summary["enrolled"].as_u64().unwrap() as usize + summary["no_face"].as_u64().unwrap() as usize, photos);
    let listing = json(&sb.faces(&["gallery", "list", "--json", "--gallery", g]));
    let total: i64 = listing["subjects"].as_array().unwrap().iter().map(|s| s["photos"].as_i64().unwrap()).sum();
    assert_eq!(total as usize, photos, "every photo recorded exactly once");
}
