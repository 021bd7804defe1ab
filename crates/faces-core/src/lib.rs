//! `faces-core`: the face pipeline as a library.
//!
//! Each module owns one stage and depends only on the modules above it:
//!
//! - [`error`]: the one error type every stage returns.
//! - [`image`]: decoding photos safely (formats, EXIF orientation, size limits).
//! - [`face`]: the small named types that cross stage boundaries (`Face`, `BBox`, `Landmarks`).
//! - [`models`]: the model manifest, installation from registry packages, our importers
//!   (TFLite, dlib) to ONNX, and the model store.
//! - [`engine`]: running ONNX graphs, with ONNX Runtime or tract behind one trait.
//! - [`detect`]: the RetinaFace detector (pre-processing, priors, decoding, NMS).
//! - [`align`]: similarity transform from five landmarks to a template, and the warp.
//! - [`embed`]: recognisers: crops to unit-length embeddings, per the manifest's spec.
//! - [`pipeline`]: detect, align and embed every face of a photo.
//! - [`dataset`]: labelled data sets (folder per person, or a CSV manifest).
//! - [`clean`]: a verdict per photo of a data set: unreadable, no face, blurry, too small,
//!   turned away, duplicated or likely mislabelled.
//! - [`gallery`]: enrolled subjects and templates in a SQLite file; exact top-k search.
//! - [`identify`]: naming a face from its closest subjects, or `unknown`.
//! - [`privacy`]: template encryption keys, consent records, the audit trail.
//! - [`eval`]: verification metrics (LFW protocol, TAR at FAR, ROC).
//! - [`draw`]: annotated copies of photos.
//! - [`clock`]: RFC 3339 timestamps.
//! - [`files`]: atomic file writes (temporary file, then rename).

pub mod align;
pub mod clean;
pub mod clock;
pub mod dataset;
pub mod detect;
pub mod draw;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod files;
pub mod gallery;
pub mod face;
pub mod identify;
pub mod image;
pub mod models;
pub mod pipeline;
pub mod privacy;

pub use error::{Error, Result};
pub use face::{BBox, Face, Landmarks, Point};
