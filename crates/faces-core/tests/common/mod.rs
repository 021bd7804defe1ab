//! Helpers shared by the integration tests: the shared data folder and the installed models.
#![allow(dead_code)]

use std::path::PathBuf;

use faces_core::engine::{EngineKind, EngineOptions};
use faces_core::models::{ModelStore, DETECTOR};

/// `../shared/data` beside the repository (or `$FACES_SHARED_DATA`), if present.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("FACES_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("samples/manifest.csv").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: shared data not found at {} (set FACES_SHARED_DATA)", dir.display());
        None
    }
}

/// One row of `samples/manifest.csv`.
pub struct Sample {
    pub path: PathBuf,
    pub name: String,
    pub faces_expected: usize,
}

pub fn samples(data: &std::path::Path) -> Vec<Sample> {
    let text = std::fs::read_to_string(data.join("samples/manifest.csv")).expect("read manifest.csv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // The first four columns never contain quotes or commas.
            let cols: Vec<&str> = line.splitn(5, ',').collect();
            Sample {
                path: data.join("samples").join(cols[0]),
                name: cols[0].to_string(),
                faces_expected: cols[3].parse().expect("faces_expected"),
            }
        })
        .collect()
}

/// The installed models; a failing test (not a skip) when they are missing.
pub fn store() -> ModelStore {
    let store = ModelStore::new(ModelStore::default_dir()).expect("manifest");
    store.require(DETECTOR).unwrap_or_else(|e| panic!("{e}\nrun ./scripts/setup.sh (or `faces models install`) first"));
    store
}

pub fn engine(store: &ModelStore, kind: EngineKind) -> EngineOptions {
    EngineOptions { kind, threads: 2, instances: 1, ort_library: store.ort_library() }
}
