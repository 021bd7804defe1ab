//! Recognisers a user adds from ONNX files they own (SFace, ArcFace, ...):
//! checked by running them once, copied into the models folder, and recorded
//! with their spec and hash in `user-models.toml` there.

use std::path::Path;

use serde::Deserialize;

use super::manifest::{Artifact, ArtifactKind, Convert, Extract, Manifest, Registry, Source};
use super::{sha256_bytes, ModelStore};
use crate::embed::{Layout, RecogniserSpec};
use crate::engine::{self, Dim, EngineKind, EngineOptions, Tensor};
use crate::files::{write_atomically, Access};
use crate::{Error, Result};

/// The file in the models folder listing the user's own models.
pub const USER_MANIFEST: &str = "user-models.toml";

/// What a user states about their model: its recogniser spec plus licence and provenance.
#[derive(Debug, Clone, Deserialize)]
pub struct UserSpec {
    #[serde(flatten)]
    pub recogniser: RecogniserSpec,
    #[serde(default = "unknown")]
    pub licence: String,
    #[serde(default = "unknown")]
    pub provenance: String,
}

fn unknown() -> String {
    "not stated".into()
}

/// The user's manifest in `dir`, empty when there is none.
pub(crate) fn load(dir: &Path) -> Result<Manifest> {
    let path = dir.join(USER_MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| Error::model(&path, format!("malformed: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest { artifacts: Vec::new(), fusion: Vec::new() }),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Checks that `file` is an ONNX recogniser matching `spec` (one run on a blank
/// face gives `embedding_size` values), then installs it as `name`.
pub fn add_recogniser(store: &ModelStore, file: &Path, name: &str, spec: UserSpec) -> Result<Artifact> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(Error::Invalid(format!("model name {name:?}: use letters, digits, '-' and '_'")));
    }
    let builtin = Manifest::builtin()?;
    if builtin.get(name).is_some() {
        return Err(Error::Invalid(format!("{name} is a built-in model; choose another name")));
    }
    let original = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    // Quantised weights are folded to float and a batch of 1 freed, so both engines run it.
    let bytes = super::import::convert(Convert::Onnx, &original).map_err(|e| Error::model(file, format!("cannot read it as ONNX: {e}")))?;
    let artifact = Artifact {
        name: name.to_string(),
        kind: ArtifactKind::Recogniser,
        file: format!("{name}.onnx"),
        sha256: sha256_bytes(&bytes),
        size: bytes.len() as u64,
        licence: spec.licence,
        provenance: spec.provenance,
        optional: false,
        platform: None,
        source: Source {
            registry: Registry::Local,
            package: file.display().to_string(),
            version: "local".into(),
            pip_args: Vec::new(),
            member: String::new(),
            extract: Extract::Raw,
            variable: None,
            sha256: None,
            size: None,
        },
        convert: None,
        recogniser: Some(spec.recogniser),
    };
    // Checked under a trial name first, so a model that fails never replaces one that works.
    let installed = store.path_of(&artifact);
    let trial = installed.with_extension("onnx.checking");
    write_atomically(&trial, &bytes, Access::Shared)?;
    let checked = artifact.recogniser.as_ref().map_or(Ok(()), |r| check_runs(&trial, r));
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&trial);
        return Err(match e {
            Error::Model { reason, .. } => Error::model(file, reason),
            other => other,
        });
    }
    std::fs::rename(&trial, &installed).map_err(|e| Error::io(&installed, e))?;
    let mut user = load(&store.dir)?;
    user.artifacts.retain(|a| a.name != name);
    user.artifacts.push(artifact.clone());
    let text = toml::to_string(&user).map_err(|e| Error::Invalid(format!("cannot write {USER_MANIFEST}: {e}")))?;
    write_atomically(&store.dir.join(USER_MANIFEST), text.as_bytes(), Access::Shared)?;
    Ok(artifact)
}

/// Runs the model once with tract on a blank face of the spec's size.
fn check_runs(file: &Path, spec: &RecogniserSpec) -> Result<()> {
    let [w, h] = spec.input_size.map(|v| v as usize);
    let (dims, shape) = match spec.layout {
        Layout::Nchw => ([Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(h), Dim::Fixed(w)], vec![1, 3, h, w]),
        Layout::Nhwc => ([Dim::Fixed(1), Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(3)], vec![1, h, w, 3]),
    };
    let options = EngineOptions { kind: EngineKind::Tract, ..EngineOptions::default() };
    let model = engine::load(file, &dims, &options)?;
    let out = model.run(Tensor::new(shape, vec![0.0; 3 * w * h])?)?;
    let values = out.first().map_or(0, |t| t.data.len());
    if values != spec.embedding_size {
        return Err(Error::model(file, format!("gives {values} values per face, but the spec says embedding_size = {}", spec.embedding_size)));
    }
    Ok(())
}
