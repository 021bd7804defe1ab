//! Where the defaults of `faces clean` come from: measurements on LFW photos
//! against altered copies of the same photos. Slow (a few minutes), so ignored;
//! run with
//!
//! ```sh
//! cargo test --release -p faces-core --test clean_calibration -- --ignored --nocapture
//! ```
//!
//! and compare the printed percentiles with the defaults in `clean.rs`.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use faces_core::clean::{self, CleanOptions, MeasuredFace, Measurement, Photo, Reason};
use faces_core::dataset::{Dataset, Sample};
use faces_core::engine::EngineKind;
use faces_core::image::{self, ImageLimits};
use faces_core::models::DEFAULT_RECOGNISER;
use faces_core::pipeline::{most_prominent, Pipeline};
use ::image::RgbImage;
use rayon::prelude::*;

/// Photos per person, and the number of photos measured.
const PER_PERSON: usize = 3;
const PHOTOS: usize = 2000;

/// The first `PER_PERSON` photos of each person with at least two, in name order.
fn lfw_sample(lfw: &Path) -> Vec<(String, PathBuf)> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(lfw).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    people.sort();
    let mut out = Vec::new();
    for person in people {
        let mut photos: Vec<PathBuf> = std::fs::read_dir(&person).unwrap().map(|e| e.unwrap().path()).collect();
        photos.sort();
        if photos.len() >= 2 {
            let name = person.file_name().unwrap().to_string_lossy().into_owned();
            out.extend(photos.into_iter().take(PER_PERSON).map(|p| (name.clone(), p)));
        }
        if out.len() >= PHOTOS {
            break;
        }
    }
    out
}

/// A copy as a photo collection often holds one: shrunk to 70% and saved as JPEG at quality 60.
fn re_encoded(img: &RgbImage) -> RgbImage {
    let small = image::resize(img, img.width() * 7 / 10, img.height() * 7 / 10);
    let mut bytes = Cursor::new(Vec::new());
    ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 60).encode_image(&small).unwrap();
    image::decode(bytes.get_ref(), Path::new("copy.jpg"), &ImageLimits::default()).unwrap()
}

struct Measured {
    subject: String,
    photo: Photo,
    copy: Photo,
    /// Sharpness of the main face's crop in the photo blurred with sigma 1.0, 1.5, 2.0.
    blurred: [f32; 3],
    /// Difference hash of the photo blurred with sigma 2.0.
    blurred_hash: u64,
}

fn measure(pipeline: &Pipeline, img: &RgbImage) -> Photo {
    clean::measure_image(pipeline, img).unwrap()
}

fn main_face(p: &Photo) -> Option<&MeasuredFace> {
    let faces: Vec<_> = p.faces.iter().map(|f| f.face.clone()).collect();
    let m = most_prominent(&faces, p.width, p.height)?;
    p.faces.iter().find(|f| &f.face == m)
}

fn percentiles(name: &str, mut v: Vec<f32>) {
    v.sort_by(f32::total_cmp);
    let at = |q: f32| v.get(((v.len() - 1) as f32 * q).round() as usize).copied().unwrap_or(f32::NAN);
    println!(
        "{name:<48} n={:<6} min {:>8.3}  p1 {:>8.3}  p5 {:>8.3}  p50 {:>8.3}  p95 {:>8.3}  p99 {:>8.3}  max {:>8.3}",
        v.len(), at(0.0), at(0.01), at(0.05), at(0.5), at(0.95), at(0.99), at(1.0)
    );
}

#[test]
#[ignore = "slow; prints the measurements behind the defaults of `faces clean`"]
fn clean_defaults_from_lfw() {
    let Some(data) = common::shared_data() else { return };
    let sample = lfw_sample(&data.join("lfw"));
    let store = common::store();
    let mut options = common::engine(&store, EngineKind::Auto);
    (options.threads, options.instances) = (1, 2);
    let pipeline = Pipeline::load(&store, DEFAULT_RECOGNISER, &options).unwrap();
    let measured: Vec<Measured> = sample
        .par_iter()
        .map(|(subject, path)| {
            let img = image::load(path, &ImageLimits::default()).unwrap();
            let photo = measure(&pipeline, &img);
            let blurred = match main_face(&photo) {
                Some(f) => [1.0, 1.5, 2.0].map(|s| clean::face_quality(&::image::imageops::blur(&img, s), &f.face.landmarks).sharpness),
                None => [f32::NAN; 3],
            };
            let blurred_hash = clean::difference_hash(&::image::imageops::blur(&img, 2.0));
            Measured { subject: subject.clone(), copy: measure(&pipeline, &re_encoded(&img)), photo, blurred, blurred_hash }
        })
        .collect();
    report(&measured, pipeline.embedder.threshold);
    review(&measured, pipeline.embedder.threshold);
}

/// The share of values below each limit.
fn below(name: &str, v: &[f32], limits: &[f32]) {
    let shares: Vec<String> =
        limits.iter().map(|l| format!("<{l}: {:.2}%", 100.0 * v.iter().filter(|x| *x < l).count() as f32 / v.len().max(1) as f32)).collect();
    println!("{name:<48} {}", shares.join("  "));
}

/// `faces clean`'s review of the unaltered photos: what it flags in LFW.
fn review(m: &[Measured], same_person: f32) {
    let samples = m.iter().enumerate().map(|(i, x)| Sample { path: PathBuf::from(format!("{}/{i}", x.subject)), subject: x.subject.clone() });
    let dataset = Dataset { samples: samples.collect(), skipped: Vec::new() };
    let measurements: Vec<Measurement> = m.iter().map(|x| Measurement::Read(x.photo.clone())).collect();
    let report = clean::review(&dataset, &measurements, &CleanOptions::new(same_person));
    println!("review at the defaults: {:?}", report.summary);
    let mut sums: std::collections::BTreeMap<&str, Vec<f32>> = Default::default();
    for x in m {
        let Some(f) = main_face(&x.photo) else { continue };
        let sum = sums.entry(&x.subject).or_insert_with(|| vec![0.0; f.embedding.0.len()]);
        sum.iter_mut().zip(&f.embedding.0).for_each(|(s, v)| *s += v);
    }
    let cos = |e: &[f32], v: &[f32]| e.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() / v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let best_other: Vec<f32> = m
        .iter()
        .filter_map(|x| {
            let e = &main_face(&x.photo)?.embedding.0;
            sums.iter().filter(|(s, _)| **s != x.subject).map(|(_, v)| cos(e, v)).max_by(f32::total_cmp)
        })
        .collect();
    percentiles("similarity to the closest other subject's mean", best_other.clone());
    below("share below, -closest other", &best_other.iter().map(|v| -v).collect::<Vec<_>>(), &[-0.4, -0.45, -0.5, -0.55, -0.6]);
    for image in report.images.iter().filter(|i| i.findings.iter().any(|f| f.reason == Reason::LikelyMislabel)) {
        println!("  {}: {:?}", image.path.display(), image.findings.iter().map(|f| &f.message).collect::<Vec<_>>());
    }
}

fn report(m: &[Measured], same_person: f32) {
    let faces = |k: usize| m.iter().filter(|x| x.photo.faces.len() == k).count();
    println!("{} photos of {} people: {} without a face, {} with one, {} with several", m.len(),
        m.iter().map(|x| &x.subject).collect::<std::collections::HashSet<_>>().len(), faces(0), faces(1), m.len() - faces(0) - faces(1));
    let main: Vec<(&Measured, &MeasuredFace)> = m.iter().filter_map(|x| main_face(&x.photo).map(|f| (x, f))).collect();
    percentiles("sharpness, photo", main.iter().map(|(_, f)| f.quality.sharpness).collect());
    for (k, sigma) in ["1.0", "1.5", "2.0"].iter().enumerate() {
        percentiles(&format!("sharpness, blurred sigma {sigma}"), main.iter().map(|(x, _)| x.blurred[k]).filter(|v| v.is_finite()).collect());
    }
    let sharp: Vec<f32> = main.iter().map(|(_, f)| f.quality.sharpness).collect();
    let limits = [25.0, 30.0, 35.0, 40.0, 50.0];
    below("share below, photo", &sharp, &limits);
    for (k, sigma) in ["1.0", "1.5", "2.0"].iter().enumerate() {
        below(&format!("share below, blurred sigma {sigma}"), &main.iter().map(|(x, _)| x.blurred[k]).collect::<Vec<_>>(), &limits);
    }
    percentiles("sharpness, re-encoded copy", m.iter().filter_map(|x| main_face(&x.copy)).map(|f| f.quality.sharpness).collect());
    percentiles("eye distance px", main.iter().map(|(_, f)| f.quality.eye_distance).collect());
    percentiles("|yaw| degrees", main.iter().map(|(_, f)| f.quality.yaw.abs()).collect());
    below("share below, -|yaw|", &main.iter().map(|(_, f)| -f.quality.yaw.abs()).collect::<Vec<_>>(), &[-30.0, -35.0, -40.0, -45.0, -50.0]);
    let other_faces: Vec<f32> = m.iter().filter(|x| x.photo.faces.len() > 1).flat_map(|x| {
        let main = main_face(&x.photo).map(|f| f.face.clone());
        x.photo.faces.iter().filter(move |f| Some(&f.face) != main.as_ref()).map(|f| f.quality.eye_distance)
    }).collect();
    percentiles("eye distance px of the other faces", other_faces);

    let bits = |a: &Photo, b: &Photo| (a.perceptual_hash ^ b.perceptual_hash).count_ones() as f32;
    percentiles("hash bits, photo vs its re-encoded copy", m.iter().map(|x| bits(&x.photo, &x.copy)).collect());
    percentiles("hash bits, photo vs blurred sigma 2", m.iter().map(|x| (x.photo.perceptual_hash ^ x.blurred_hash).count_ones() as f32).collect());
    let mut yaw_bins: [Vec<f32>; 4] = Default::default();
    // Per hash distance: pairs of different people, of the same person, then those with similar faces.
    let mut close = [[0usize; 4]; 9];
    let (mut same, mut other) = (Vec::new(), Vec::new());
    let (mut same_sim, mut other_sim) = (Vec::new(), Vec::new());
    for i in 0..m.len() {
        for j in i + 1..m.len() {
            let is_same = m[i].subject == m[j].subject;
            (if is_same { &mut same } else { &mut other }).push(bits(&m[i].photo, &m[j].photo));
            let (Some(a), Some(b)) = (main_face(&m[i].photo), main_face(&m[j].photo)) else { continue };
            let sim = a.embedding.similarity(&b.embedding);
            (if is_same { &mut same_sim } else { &mut other_sim }).push(sim);
            let d = bits(&m[i].photo, &m[j].photo) as usize;
            if d <= 8 {
                close[d][usize::from(is_same)] += 1;
                close[d][2 + usize::from(is_same)] += usize::from(sim >= same_person);
            }
            if is_same {
                let yaw = a.quality.yaw.abs().max(b.quality.yaw.abs());
                yaw_bins[((yaw / 15.0) as usize).min(3)].push(sim);
            }
        }
    }
    for (k, bin) in yaw_bins.into_iter().enumerate() {
        percentiles(&format!("similarity, same person, larger |yaw| {}-{}", k * 15, k * 15 + 15), bin);
    }
    percentiles("hash bits, two photos of the same person", same);
    for (d, [other, same, other_similar, same_similar]) in close.iter().enumerate() {
        println!("pairs {d} hash bits apart: {other} of different people ({other_similar} with face similarity >= {same_person}), {same} of the same person ({same_similar})");
    }
    percentiles("hash bits, photos of different people", other);
    let copy_sim = m.iter().filter_map(|x| Some(main_face(&x.photo)?.embedding.similarity(&main_face(&x.copy)?.embedding))).collect();
    let caught = |x: &Measured, copy: &Photo| {
        let similar = main_face(&x.photo).zip(main_face(copy)).is_some_and(|(a, b)| a.embedding.similarity(&b.embedding) >= same_person);
        similar && bits(&x.photo, copy) <= clean::DEFAULT_NEAR_DUPLICATE_BITS as f32
    };
    println!("re-encoded copies that are near duplicates at the defaults: {} of {}", m.iter().filter(|x| caught(x, &x.copy)).count(), m.len());
    percentiles("similarity, photo vs its re-encoded copy", copy_sim);
    percentiles("similarity, two photos of the same person", same_sim);
    percentiles("similarity, photos of different people", other_sim);
}
