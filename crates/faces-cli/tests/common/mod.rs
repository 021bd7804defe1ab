//! Shared by the CLI tests: the shared data folder, and a sandbox that runs
//! `faces` with its own key file and audit log so tests never touch the
//! user's (or each other's).

#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("FACES_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(dir.is_dir(), "shared data not found at {}; set FACES_SHARED_DATA", dir.display());
    dir
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(text(&out.stdout).trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// A temporary folder whose `key` file and `audit.jsonl` `faces` uses.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn key_file(&self) -> PathBuf {
        self.path().join("key")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.path().join("audit.jsonl")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_faces"));
        c.env("FACES_KEY_FILE", self.key_file()).env("FACES_AUDIT_LOG", self.audit_log()).env_remove("FACES_KEY");
        c
    }

    pub fn faces(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run faces")
    }

    /// Runs `faces`, asserting success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.faces(args);
        assert!(out.status.success(), "faces {args:?} failed: {}", text(&out.stderr));
        out
    }

    /// The audit trail's entries.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let log = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// A folder-per-person data set under `dir` of symlinks to
/// face_recognition's knn_examples/train, without `leave_out`.
pub fn knn_train(dir: &Path, leave_out: &[&str]) -> PathBuf {
    let train = shared_data().join("samples/face_recognition/knn_examples/train");
    let root = dir.join("train");
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(&train).unwrap() {
        let person = entry.unwrap().path();
        let name = person.file_name().unwrap().to_str().unwrap().to_string();
        if !leave_out.contains(&name.as_str()) {
            std::os::unix::fs::symlink(&person, root.join(&name)).unwrap();
        }
    }
    root
}

/// The basis and purpose the tests state for the public sample photos.
pub const RESEARCH: [&str; 4] = ["--basis", "research", "--purpose", "testing faces on public sample photos"];
