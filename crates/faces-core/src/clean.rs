//! Data-set cleaning: measures every photo of a labelled data set, then
//! compares the photos with each other, and gives each one verdict (keep,
//! flag or drop) with the findings behind it. Nothing here touches the files.
//!
//! Per photo ([`measure`], run in parallel by the caller): the decoded pixels
//! are hashed (SHA-256, for exact duplicates) and given a 64-bit difference
//! hash (for near duplicates); every face is detected, embedded, and measured
//! on a fixed 112x112 aligned crop: sharpness (variance of the Laplacian of
//! its grey levels), eye distance in photo pixels and a yaw estimate from the
//! five landmarks. Over the whole set ([`review`]): the subject's face is
//! chosen in photos with several faces, duplicates are found within and
//! across subjects, and likely mislabels are found by comparing each face
//! with the other faces of its own subject and of every other subject.
//!
//! Which findings drop a photo and which only flag it for a look is
//! [`Reason::drops`]. The default limits were measured on LFW
//! (`tests/clean_calibration.rs`; figures in the README).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Skipped};
use crate::embed::Embedding;
use crate::image::ImageLimits;
use crate::pipeline::{most_prominent, Pipeline};
use crate::{align, Error, Face, Landmarks, Point, Result};

/// Side of the aligned crop that sharpness is measured on.
pub const CROP_SIZE: u32 = 112;
/// Where the five landmarks go in that crop (the 112x112 ArcFace template).
const CROP_TEMPLATE: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];
/// The part of the crop measured: eyes, nose and mouth, without the border
/// (which can hold black fill from outside the photo).
const SHARPNESS_REGION: (std::ops::Range<u32>, std::ops::Range<u32>) = (24..88, 32..104);
/// How far a frontal nose tip stands in front of the eyes, as a fraction of
/// the distance between the eyes (about 35 mm to 63 mm on an adult head).
const NOSE_DEPTH: f32 = 0.55;

/// On 2,001 LFW photos 0.60% of faces are below it (p1 40.9, median 150);
/// of the same photos blurred with sigma 2, 98.7% are (sigma 1.5: 73%).
pub const DEFAULT_MIN_SHARPNESS: f32 = 35.0;
/// The crop puts the eyes 35 px apart, so smaller faces are magnified over
/// 1.75x; 3 of 2,001 LFW faces are below it (p1 30.8 px).
pub const DEFAULT_MIN_EYE_DISTANCE: f32 = 20.0;
/// 0.40% of LFW faces are beyond it; the median same-person similarity falls
/// from 0.77 within it to 0.66 beyond.
pub const DEFAULT_MAX_YAW: f32 = 45.0;
/// Copies of LFW photos (shrunk to 70% and saved at JPEG quality 60, or
/// blurred with sigma 2) differ by at most 5 bits; two different photos of
/// the same person by at least 7.
pub const DEFAULT_NEAR_DUPLICATE_BITS: u32 = 6;
/// In cosine similarity of the recogniser; on LFW it flags 7 of 2,001 photos
/// with SFace (8 with MobileFaceNet), all in pairs of one person's photos that
/// look unalike.
pub const DEFAULT_MISLABEL_MARGIN: f32 = 0.1;

/// The limits a review applies.
#[derive(Debug, Clone, Serialize)]
pub struct CleanOptions {
    /// Least variance of the Laplacian on the aligned crop's grey levels.
    pub min_sharpness: f32,
    /// Least distance between the eye centres, in photo pixels.
    pub min_eye_distance: f32,
    /// Largest estimated yaw (head turned left or right), in degrees.
    pub max_yaw: f32,
    /// Photos whose difference hashes differ in at most this many of 64 bits are near duplicates.
    pub near_duplicate_bits: u32,
    /// The recogniser's same-person similarity threshold.
    pub same_person: f32,
    /// How much closer to another subject than to its own a face must be to be a likely mislabel.
    pub mislabel_margin: f32,
}

impl CleanOptions {
    /// How close to another subject the only usable photo of a subject must
    /// be to be called a likely mislabel: two margins above the same-person
    /// threshold, since the closest of many subjects is often near it
    /// (on LFW with SFace: median 0.38, 99th percentile 0.48; with
    /// MobileFaceNet: median 0.46, 99th percentile 0.59).
    pub fn single_photo_level(&self) -> f32 {
        self.same_person + 2.0 * self.mislabel_margin
    }

    /// The default limits, with the recogniser's same-person threshold.
    pub fn new(same_person: f32) -> Self {
        CleanOptions {
            min_sharpness: DEFAULT_MIN_SHARPNESS,
            min_eye_distance: DEFAULT_MIN_EYE_DISTANCE,
            max_yaw: DEFAULT_MAX_YAW,
            near_duplicate_bits: DEFAULT_NEAR_DUPLICATE_BITS,
            same_person,
            mislabel_margin: DEFAULT_MISLABEL_MARGIN,
        }
    }
}

/// Why a photo was dropped or flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Unreadable,
    NoFace,
    ExactDuplicate,
    Blurry,
    TooSmall,
    SeveralFaces,
    NearDuplicate,
    ExtremePose,
    LikelyMislabel,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Unreadable,
        Reason::NoFace,
        Reason::ExactDuplicate,
        Reason::Blurry,
        Reason::TooSmall,
        Reason::SeveralFaces,
        Reason::NearDuplicate,
        Reason::ExtremePose,
        Reason::LikelyMislabel,
    ];

    /// True when the photo is left out of the cleaned manifest: it cannot give a
    /// usable face, or adds nothing. The other reasons need a human to decide
    /// (the right face may have been chosen, a near duplicate may be a second
    /// shot, a turned head or a look-alike may be genuine).
    pub fn drops(self) -> bool {
        matches!(self, Reason::Unreadable | Reason::NoFace | Reason::ExactDuplicate | Reason::Blurry | Reason::TooSmall)
    }

    /// The snake_case code used in reports.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Unreadable => "unreadable",
            Reason::NoFace => "no_face",
            Reason::ExactDuplicate => "exact_duplicate",
            Reason::Blurry => "blurry",
            Reason::TooSmall => "too_small",
            Reason::SeveralFaces => "several_faces",
            Reason::NearDuplicate => "near_duplicate",
            Reason::ExtremePose => "extreme_pose",
            Reason::LikelyMislabel => "likely_mislabel",
        }
    }
}

/// What happens to a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Keep,
    Flag,
    Drop,
}

/// One problem found with a photo: a sentence, and the measured value against its limit.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub reason: Reason,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f32>,
    /// The photo this one duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<PathBuf>,
    /// The other subject this face resembles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looks_like: Option<String>,
}

impl Finding {
    fn new(reason: Reason, message: String) -> Self {
        Finding { reason, message, value: None, limit: None, duplicate_of: None, looks_like: None }
    }

    fn measured(reason: Reason, message: String, value: f32, limit: f32) -> Self {
        Finding { value: Some(value), limit: Some(limit), ..Finding::new(reason, message) }
    }
}

/// Measures of one face, on the aligned crop and its landmarks.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FaceQuality {
    /// Variance of the Laplacian of the crop's grey levels (higher is sharper).
    pub sharpness: f32,
    /// Distance between the eye centres in photo pixels.
    pub eye_distance: f32,
    /// Estimated head turn in degrees, positive towards the subject's left.
    pub yaw: f32,
}

/// A detected face with its embedding and quality measures.
#[derive(Debug, Clone)]
pub struct MeasuredFace {
    pub face: Face,
    pub embedding: Embedding,
    pub quality: FaceQuality,
}

/// What one readable photo measured, before it is compared with the others.
#[derive(Debug, Clone)]
pub struct Photo {
    pub width: u32,
    pub height: u32,
    /// SHA-256 of the size and decoded RGB pixels.
    pub pixel_hash: [u8; 32],
    /// Difference hash of the whole photo (see [`difference_hash`]).
    pub perceptual_hash: u64,
    /// Every face found, best detector score first.
    pub faces: Vec<MeasuredFace>,
}

/// A photo's measurements, or why it could not be read.
#[derive(Debug, Clone)]
pub enum Measurement {
    Unreadable(String),
    Read(Photo),
}

/// Decodes and measures one photo. Decoding failures are a [`Measurement::Unreadable`];
/// an error is a failure of the models, which would fail every photo.
pub fn measure(pipeline: &Pipeline, path: &Path, limits: &ImageLimits) -> Result<Measurement> {
    match crate::image::load(path, limits) {
        Ok(image) => Ok(Measurement::Read(measure_image(pipeline, &image)?)),
        Err(e) => Ok(Measurement::Unreadable(e.to_string())),
    }
}

/// Hashes a decoded photo, and finds, embeds and measures its faces.
pub fn measure_image(pipeline: &Pipeline, image: &RgbImage) -> Result<Photo> {
    let faces = pipeline
        .faces(image)?
        .into_iter()
        .map(|f| MeasuredFace { quality: face_quality(image, &f.face.landmarks), face: f.face, embedding: f.embedding })
        .collect();
    Ok(Photo {
        width: image.width(),
        height: image.height(),
        pixel_hash: pixel_hash(image),
        perceptual_hash: difference_hash(image),
        faces,
    })
}

/// Sharpness, eye distance and yaw of the face with these landmarks.
pub fn face_quality(image: &RgbImage, landmarks: &Landmarks) -> FaceQuality {
    let template = CROP_TEMPLATE.map(|[x, y]| Point { x, y });
    let crop = align::crop(image, landmarks, &template, CROP_SIZE, CROP_SIZE);
    let (right, left) = (landmarks.right_eye, landmarks.left_eye);
    FaceQuality { sharpness: sharpness(&crop), eye_distance: distance(right, left), yaw: yaw(landmarks) }
}

/// Variance of the 4-neighbour Laplacian of the grey levels over the face
/// region of an aligned [`CROP_SIZE`] crop. Blur removes the fine detail
/// the Laplacian responds to.
pub fn sharpness(crop: &RgbImage) -> f32 {
    let grey = |x: u32, y: u32| {
        let p = crop.get_pixel(x, y).0;
        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
    };
    let (xs, ys) = SHARPNESS_REGION;
    let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in ys.clone() {
        for x in xs.clone() {
            let l = grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1) - 4.0 * grey(x, y);
            sum += f64::from(l);
            sum_sq += f64::from(l * l);
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean) as f32
}

/// Estimated yaw in degrees from where the nose tip sits along the eye line:
/// a head turned by `a` moves the nose `depth * sin(a)` while the eyes close
/// up to `cos(a)` of their distance, so `a = atan(offset / (depth * eyes))`.
pub fn yaw(landmarks: &Landmarks) -> f32 {
    let (r, l, nose) = (landmarks.right_eye, landmarks.left_eye, landmarks.nose);
    let eyes = distance(r, l);
    if eyes <= 0.0 {
        return 90.0;
    }
    let mid = Point { x: (r.x + l.x) / 2.0, y: (r.y + l.y) / 2.0 };
    // Offset of the nose from the eye midpoint, along the line from the right eye to the left.
    let along = ((nose.x - mid.x) * (l.x - r.x) + (nose.y - mid.y) * (l.y - r.y)) / eyes;
    (along / (NOSE_DEPTH * eyes)).atan().to_degrees()
}

fn distance(a: Point, b: Point) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// SHA-256 of the width, height and RGB pixels: equal for the same picture
/// whatever the file format, name or metadata.
pub fn pixel_hash(image: &RgbImage) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(image.width().to_le_bytes());
    hasher.update(image.height().to_le_bytes());
    hasher.update(image.as_raw());
    hasher.finalize().into()
}

/// A 64-bit difference hash: the photo shrunk to 9x8 grey levels, one bit
/// per horizontally adjacent pair (set when the right one is brighter).
/// Re-encoding, resizing, slight blur or a brightness change alter few bits.
pub fn difference_hash(image: &RgbImage) -> u64 {
    let small = crate::image::resize(image, 9, 8);
    let grey = |x: u32, y: u32| {
        let p = small.get_pixel(x, y).0;
        299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])
    };
    let mut hash = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            hash = (hash << 1) | u64::from(grey(x + 1, y) > grey(x, y));
        }
    }
    hash
}

/// One photo's verdict, its findings and the measures of the face used.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub path: PathBuf,
    pub subject: String,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Faces found in the photo (0 when unreadable).
    pub faces_found: usize,
    /// The face taken to be the subject's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<Face>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<FaceQuality>,
}

/// Counts of photos per verdict and per reason.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub photos: usize,
    pub kept: usize,
    pub flagged: usize,
    pub dropped: usize,
    pub by_reason: BTreeMap<Reason, usize>,
}

/// The whole review: a verdict per photo, in data-set order.
#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    pub options: CleanOptions,
    pub summary: Summary,
    pub images: Vec<ImageReport>,
    /// Files and folders the data set reader passed over.
    pub skipped: Vec<Skipped>,
}

impl CleanReport {
    /// The photos not dropped (with `strict`, only those kept), as a CSV
    /// manifest that [`Dataset::open`] reads: `path,subject,flags`, with
    /// absolute paths and the flag codes separated by `;`.
    pub fn cleaned_manifest(&self, strict: bool) -> Result<Vec<u8>> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let csv_error = |e: csv::Error| Error::Invalid(format!("cannot write the cleaned manifest: {e}"));
        out.write_record(["path", "subject", "flags"]).map_err(csv_error)?;
        let wanted = |v: Verdict| v == Verdict::Keep || (v == Verdict::Flag && !strict);
        for image in self.images.iter().filter(|i| wanted(i.verdict)) {
            let path = std::path::absolute(&image.path).map_err(|e| Error::io(&image.path, e))?;
            let path = path.to_str().ok_or_else(|| {
                Error::Invalid(format!("{}: the path is not valid UTF-8, so it cannot go in a CSV manifest", path.display()))
            })?;
            let flags: Vec<&str> = image.findings.iter().map(|f| f.reason.code()).collect();
            out.write_record([path, &image.subject, &flags.join(";")]).map_err(csv_error)?;
        }
        out.into_inner().map_err(|e| Error::Invalid(format!("cannot write the cleaned manifest: {e}")))
    }
}

/// The working state of one photo during the review.
struct Entry<'a> {
    photo: Option<&'a Photo>,
    chosen: Option<usize>,
    findings: Vec<Finding>,
}

impl Entry<'_> {
    fn face(&self) -> Option<&MeasuredFace> {
        Some(&self.photo?.faces[self.chosen?])
    }

    fn dropped(&self) -> bool {
        self.findings.iter().any(|f| f.reason.drops())
    }

    fn has(&self, reason: Reason) -> bool {
        self.findings.iter().any(|f| f.reason == reason)
    }
}

/// Compares the measured photos (in `dataset.samples` order) with each other
/// and gives each a verdict.
pub fn review(dataset: &Dataset, measurements: &[Measurement], options: &CleanOptions) -> CleanReport {
    let mut entries: Vec<Entry> = measurements.iter().map(first_look).collect();
    let subjects: Vec<&str> = dataset.samples.iter().map(|s| s.subject.as_str()).collect();
    find_exact_duplicates(&mut entries, dataset);
    choose_subject_faces(&mut entries, &subjects, options);
    for entry in &mut entries {
        judge_face(entry, options);
    }
    find_near_duplicates(&mut entries, dataset, options);
    find_mislabels(&mut entries, &subjects, options);
    let images: Vec<ImageReport> = entries.into_iter().zip(&dataset.samples).map(|(e, s)| image_report(e, &s.path, &s.subject)).collect();
    CleanReport { options: options.clone(), summary: summarise(&images), images, skipped: dataset.skipped.clone() }
}

/// Unreadable photos and photos without a face; otherwise the most prominent face.
fn first_look(measurement: &Measurement) -> Entry<'_> {
    match measurement {
        Measurement::Unreadable(why) => {
            Entry { photo: None, chosen: None, findings: vec![Finding::new(Reason::Unreadable, why.clone())] }
        }
        Measurement::Read(photo) => {
            let faces: Vec<Face> = photo.faces.iter().map(|f| f.face.clone()).collect();
            let chosen = most_prominent(&faces, photo.width, photo.height).and_then(|m| faces.iter().position(|f| f == m));
            let findings = match chosen {
                Some(_) => Vec::new(),
                None => vec![Finding::new(Reason::NoFace, "no face found".into())],
            };
            Entry { photo: Some(photo), chosen, findings }
        }
    }
}

/// The same decoded pixels as an earlier photo (in data-set order).
fn find_exact_duplicates(entries: &mut [Entry], dataset: &Dataset) {
    let mut first: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        let Some(photo) = entry.photo else { continue };
        let original = *first.entry(photo.pixel_hash).or_insert(i);
        if original != i {
            let path = &dataset.samples[original].path;
            let mut finding = Finding::new(Reason::ExactDuplicate, format!("same pixels as {}", path.display()));
            finding.duplicate_of = Some(path.clone());
            entry.findings.push(finding);
        }
    }
}

/// In photos with several faces big enough to use, takes the face most like
/// the subject's other photos when one reaches the same-person threshold, and
/// says so. Faces too small to use are not counted.
fn choose_subject_faces(entries: &mut [Entry], subjects: &[&str], options: &CleanOptions) {
    let centroids = Centroids::new(entries, subjects, |_| true);
    for (i, entry) in entries.iter_mut().enumerate() {
        let (Some(photo), Some(prominent)) = (entry.photo, entry.chosen) else { continue };
        let n = photo.faces.iter().filter(|f| f.quality.eye_distance >= options.min_eye_distance).count();
        if n < 2 {
            continue;
        }
        let own = centroids.without(subjects[i], Some(&photo.faces[prominent].embedding));
        let best = own.and_then(|own| {
            let scored = photo.faces.iter().enumerate().map(|(k, f)| (k, cosine(&f.embedding.0, &own)));
            scored.max_by(|a, b| a.1.total_cmp(&b.1)).filter(|(_, s)| *s >= options.same_person)
        });
        let how = match best {
            Some((k, s)) => {
                entry.chosen = Some(k);
                format!("using the one most like the subject's other photos (similarity {s:.2})")
            }
            None => "using the largest, most central one".to_string(),
        };
        let message = format!("{n} faces found; {how}");
        entry.findings.push(Finding::measured(Reason::SeveralFaces, message, n as f32, 1.0));
    }
}

/// Size, sharpness and pose of the chosen face.
fn judge_face(entry: &mut Entry, options: &CleanOptions) {
    let Some(q) = entry.face().map(|f| f.quality) else { return };
    if q.eye_distance < options.min_eye_distance {
        let message = format!("face too small: eyes {:.0} px apart, below {:.0}", q.eye_distance, options.min_eye_distance);
        entry.findings.push(Finding::measured(Reason::TooSmall, message, q.eye_distance, options.min_eye_distance));
    }
    if q.sharpness < options.min_sharpness {
        let message = format!("blurry face: sharpness {:.0}, below {:.0}", q.sharpness, options.min_sharpness);
        entry.findings.push(Finding::measured(Reason::Blurry, message, q.sharpness, options.min_sharpness));
    }
    if q.yaw.abs() > options.max_yaw {
        let message = format!("head turned about {:.0} degrees, beyond {:.0}", q.yaw.abs(), options.max_yaw);
        entry.findings.push(Finding::measured(Reason::ExtremePose, message, q.yaw.abs(), options.max_yaw));
    }
}

/// Photos whose difference hashes are within `bits` of an earlier photo's and
/// whose faces are the same person's. The earlier photo must not be dropped,
/// so a sharp original is kept over a blurred copy filed before it. The face
/// check matters: LFW's centred faces give strangers close hashes too.
fn find_near_duplicates(entries: &mut [Entry], dataset: &Dataset, options: &CleanOptions) {
    let usable: Vec<Option<(u64, &Embedding)>> = entries
        .iter()
        .map(|e| Some((e.photo?.perceptual_hash, &e.face()?.embedding)).filter(|_| !e.dropped()))
        .collect();
    let mut found = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (Some(photo), Some(face)) = (entry.photo, entry.face()) else { continue };
        if entry.has(Reason::ExactDuplicate) {
            continue;
        }
        let close = |j: usize| {
            let (hash, embedding) = usable[j].filter(|_| j != i)?;
            let bits = (hash ^ photo.perceptual_hash).count_ones();
            let similarity = face.embedding.similarity(embedding);
            (bits <= options.near_duplicate_bits && similarity >= options.same_person).then_some((j, bits, similarity))
        };
        let Some((j, bits, similarity)) = (0..entries.len()).find_map(close) else { continue };
        if j < i || usable[i].is_none() {
            let path = &dataset.samples[j].path;
            let message = format!(
                "nearly the same picture as {} ({bits} of 64 hash bits differ; face similarity {similarity:.2})",
                path.display()
            );
            let mut finding = Finding::measured(Reason::NearDuplicate, message, bits as f32, options.near_duplicate_bits as f32);
            finding.duplicate_of = Some(path.clone());
            found.push((i, finding));
        }
    }
    for (i, finding) in found {
        entries[i].findings.push(finding);
    }
}

/// Faces far from their own subject's other faces and close to another subject's.
fn find_mislabels(entries: &mut [Entry], subjects: &[&str], options: &CleanOptions) {
    let reference = |e: &Entry| !e.dropped() && !e.has(Reason::NearDuplicate) && !e.has(Reason::ExactDuplicate);
    let centroids = Centroids::new(entries, subjects, reference);
    for (i, entry) in entries.iter_mut().enumerate() {
        let Some(face) = entry.face().filter(|_| !entry.dropped()) else { continue };
        let e = &face.embedding;
        let own = centroids.without(subjects[i], reference(entry).then_some(e)).map(|c| cosine(&e.0, &c));
        let Some((other, best)) = centroids.closest_other(subjects[i], e) else { continue };
        let finding = match own {
            Some(own) if own < options.same_person && best - own >= options.mislabel_margin => Finding {
                looks_like: Some(other.to_string()),
                ..Finding::measured(
                    Reason::LikelyMislabel,
                    format!("unlike {}'s other photos (similarity {own:.2}) and like {other}'s ({best:.2})", subjects[i]),
                    own,
                    options.same_person,
                )
            },
            None if best >= options.single_photo_level() => Finding {
                looks_like: Some(other.to_string()),
                ..Finding::measured(
                    Reason::LikelyMislabel,
                    format!("the only photo of {}, and like {other}'s photos (similarity {best:.2})", subjects[i]),
                    best,
                    options.single_photo_level(),
                )
            },
            _ => continue,
        };
        entry.findings.push(finding);
    }
}

/// Per subject, the sum of the chosen faces' embeddings and their count.
struct Centroids<'a> {
    sums: BTreeMap<&'a str, (Vec<f32>, usize)>,
}

impl<'a> Centroids<'a> {
    fn new(entries: &[Entry], subjects: &[&'a str], include: impl Fn(&Entry) -> bool) -> Self {
        let mut sums: BTreeMap<&str, (Vec<f32>, usize)> = BTreeMap::new();
        for (entry, subject) in entries.iter().zip(subjects) {
            let Some(face) = entry.face().filter(|_| include(entry)) else { continue };
            let (sum, n) = sums.entry(subject).or_insert_with(|| (vec![0.0; face.embedding.0.len()], 0));
            sum.iter_mut().zip(&face.embedding.0).for_each(|(s, v)| *s += v);
            *n += 1;
        }
        Centroids { sums }
    }

    /// The subject's sum less `own` (when it was counted), or `None` when nothing is left.
    fn without(&self, subject: &str, own: Option<&Embedding>) -> Option<Vec<f32>> {
        let (sum, n) = self.sums.get(subject)?;
        let Some(own) = own else { return Some(sum.clone()) };
        (*n > 1).then(|| sum.iter().zip(&own.0).map(|(s, v)| s - v).collect())
    }

    /// The other subject whose faces are most like `e`, and that similarity.
    fn closest_other(&self, subject: &str, e: &Embedding) -> Option<(&'a str, f32)> {
        self.sums
            .iter()
            .filter(|(s, _)| **s != subject)
            .map(|(s, (sum, _))| (*s, cosine(&e.0, sum)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Cosine similarity of a unit vector with any vector (0 for a zero vector).
fn cosine(unit: &[f32], v: &[f32]) -> f32 {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        unit.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() / norm
    } else {
        0.0
    }
}

fn image_report(entry: Entry, path: &Path, subject: &str) -> ImageReport {
    let verdict = if entry.dropped() {
        Verdict::Drop
    } else if entry.findings.is_empty() {
        Verdict::Keep
    } else {
        Verdict::Flag
    };
    let face = entry.face().map(|f| (f.face.clone(), f.quality));
    ImageReport {
        path: path.to_path_buf(),
        subject: subject.to_string(),
        verdict,
        faces_found: entry.photo.map_or(0, |p| p.faces.len()),
        face: face.as_ref().map(|f| f.0.clone()),
        quality: face.map(|f| f.1),
        findings: entry.findings,
    }
}

fn summarise(images: &[ImageReport]) -> Summary {
    let mut summary = Summary { photos: images.len(), ..Summary::default() };
    for image in images {
        match image.verdict {
            Verdict::Keep => summary.kept += 1,
            Verdict::Flag => summary.flagged += 1,
            Verdict::Drop => summary.dropped += 1,
        }
        for finding in &image.findings {
            *summary.by_reason.entry(finding.reason).or_default() += 1;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn sharpness_is_zero_on_flat_grey_and_falls_with_blur() {
        let flat = RgbImage::from_pixel(CROP_SIZE, CROP_SIZE, image::Rgb([90, 90, 90]));
        assert_eq!(sharpness(&flat), 0.0);
        let checker = RgbImage::from_fn(CROP_SIZE, CROP_SIZE, |x, y| image::Rgb([if (x / 2 + y / 2) % 2 == 0 { 40 } else { 200 }; 3]));
        let blurred = image::imageops::blur(&checker, 2.0);
        assert!(sharpness(&checker) > 10.0 * sharpness(&blurred), "{} vs {}", sharpness(&checker), sharpness(&blurred));
    }

    #[test]
    fn yaw_is_zero_for_a_centred_nose_and_grows_as_it_moves_along_the_eyes() {
        let at = |nose_x: f32| {
            yaw(&Landmarks::from_points([pt(40.0, 50.0), pt(80.0, 50.0), pt(nose_x, 70.0), pt(45.0, 90.0), pt(75.0, 90.0)]))
        };
        assert!(at(60.0).abs() < 1e-4);
        assert!((at(60.0 + 0.55 * 40.0) - 45.0).abs() < 1e-3, "{}", at(82.0));
        assert!(at(50.0) < 0.0);
    }

    #[test]
    fn difference_hash_survives_re_encoding_but_not_another_picture() {
        let a = RgbImage::from_fn(90, 80, |x, y| image::Rgb([(x * 2 + y) as u8, (y * 3) as u8, ((x * y) % 251) as u8]));
        let brighter = RgbImage::from_fn(90, 80, |x, y| image::Rgb(a.get_pixel(x, y).0.map(|v| v.saturating_add(6))));
        let b = RgbImage::from_fn(90, 80, |x, y| image::Rgb([(255 - x * 2) as u8, (x * y % 97) as u8, (y * 2) as u8]));
        assert!((difference_hash(&a) ^ difference_hash(&brighter)).count_ones() <= 2);
        assert!((difference_hash(&a) ^ difference_hash(&b)).count_ones() > 16);
        assert_eq!(pixel_hash(&a), pixel_hash(&a.clone()));
        assert_ne!(pixel_hash(&a), pixel_hash(&brighter));
    }

    #[test]
    fn reasons_that_drop_and_their_codes_match_serde() {
        for reason in Reason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.code());
        }
        let dropping: Vec<_> = Reason::ALL.iter().filter(|r| r.drops()).map(|r| r.code()).collect();
        assert_eq!(dropping, ["unreadable", "no_face", "exact_duplicate", "blurry", "too_small"]);
    }
}
