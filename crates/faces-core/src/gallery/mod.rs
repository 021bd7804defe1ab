//! The gallery: enrolled subjects and their face templates in one embedded
//! SQLite file, and exact search over them ([`search`]).
//!
//! The file records which recogniser (name and model hashes) made its
//! templates and refuses templates from any other. Its schema is versioned
//! (`PRAGMA user_version`) and migrated on open; it runs in WAL mode with
//! `secure_delete` on, so removed rows are overwritten, not left behind.
//! Enrolment writes in batches, one transaction each: an interrupted run
//! leaves every earlier batch intact, and a rerun skips photos already
//! enrolled (by subject and SHA-256 of the file's bytes).

pub mod search;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::embed::{Embedding, RecogniserId};
use crate::{clock, Error, Face, Result};
pub use search::{Hit, Index};

/// `PRAGMA application_id` of gallery files: "FACE".
const APPLICATION_ID: i64 = 0x4641_4345;

/// Schema versions, each the SQL that upgrades from the one before.
const MIGRATIONS: &[&str] = &[include_str!("schema-1.sql")];

/// The decision threshold stored with a gallery and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f32,
    /// How it was obtained, e.g. "default for mobilefacenet (LFW View 1 DevTrain)".
    pub source: String,
}

/// One photo's outcome in an enrolment batch.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub subject: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The subject's face and its template, or `None` when no usable face was found.
    pub face: Option<(Face, Embedding)>,
}

/// A subject and how much is held on them.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectSummary {
    pub name: String,
    pub templates: i64,
    pub photos: i64,
    pub created: String,
}

/// One enrolled photo of a subject.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRecord {
    pub path: String,
    pub sha256: String,
    /// `enrolled` or `no face`.
    pub status: String,
    pub enrolled: String,
}

/// An open gallery file.
pub struct Gallery {
    conn: Connection,
    path: PathBuf,
    pub recogniser: RecogniserId,
    pub threshold: Threshold,
}

impl Gallery {
    /// Opens an existing gallery, migrating its schema if it is older.
    pub fn open(path: &Path) -> Result<Gallery> {
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "{}: no gallery file here; create one with `faces enrol DATASET --gallery {}`",
                path.display(),
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| not_a_gallery(path, &e))?;
        let mut gallery = Self::from_connection(conn, path)?;
        gallery.migrate()?;
        let (recogniser, threshold) = gallery.read_meta()?;
        gallery.recogniser = recogniser;
        gallery.threshold = threshold;
        Ok(gallery)
    }

    /// Creates a new, empty gallery at `path` (which must not exist). The file
    /// is built under a temporary name and renamed into place when complete.
    pub fn create(path: &Path, recogniser: RecogniserId, threshold: Threshold) -> Result<Gallery> {
        if path.exists() {
            return Err(Error::Invalid(format!("{}: already exists", path.display())));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = tempfile::Builder::new().prefix(".gallery-").tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        {
            let conn = Connection::open(tmp.path()).map_err(|e| db_error(tmp.path(), &e))?;
            let mut gallery = Self::from_connection(conn, tmp.path())?;
            gallery.migrate()?;
            gallery.recogniser = recogniser;
            gallery.threshold = threshold;
            gallery.write_meta()?;
        }
        // Temporary files are created owner-only (0600); SQLite gives its WAL
        // and shared-memory files the same mode.
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Self::open(path)
    }

    /// Opens `path`, or creates it when it does not exist yet.
    pub fn open_or_create(path: &Path, recogniser: RecogniserId, threshold: Threshold) -> Result<Gallery> {
        if path.exists() {
            Self::open(path)
        } else {
            Self::create(path, recogniser, threshold)
        }
    }

    fn from_connection(conn: Connection, path: &Path) -> Result<Gallery> {
        let setup = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000;";
        conn.execute_batch(setup).map_err(|e| not_a_gallery(path, &e))?;
        let recogniser = RecogniserId { name: String::new(), models: Vec::new(), embedding_size: 0, flip: true };
        let threshold = Threshold { value: 0.0, source: String::new() };
        Ok(Gallery { conn, path: path.to_path_buf(), recogniser, threshold })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings the schema to the newest version; refuses files from a newer `faces`.
    fn migrate(&mut self) -> Result<()> {
        let (app, version): (i64, i64) = self
            .conn
            .query_row("SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| not_a_gallery(&self.path, &e))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        let fresh = version == 0 && self.table_count()? == 0;
        if !fresh && app != APPLICATION_ID {
            return Err(Error::Invalid(format!("{}: not a faces gallery (another SQLite database)", self.path.display())));
        }
        if version > MIGRATIONS.len() {
            return Err(Error::Invalid(format!(
                "{}: gallery schema version {version} is newer than this faces understands ({}); upgrade faces",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        if version == MIGRATIONS.len() && app == APPLICATION_ID {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_error(&path, &e))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql).map_err(|e| db_error(&path, &e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1).map_err(|e| db_error(&path, &e))?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| db_error(&path, &e))?;
        tx.commit().map_err(|e| db_error(&path, &e))
    }

    fn table_count(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| not_a_gallery(&self.path, &e))
    }

    fn read_meta(&self) -> Result<(RecogniserId, Threshold)> {
        let get = |key: &str| -> Result<String> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, String>(0))
                .optional()
                .map_err(|e| db_error(&self.path, &e))?
                .ok_or_else(|| Error::Invalid(format!("{}: damaged gallery: no {key} record", self.path.display())))
        };
        let parse_error = |key: &str, e: serde_json::Error| Error::Invalid(format!("{}: damaged gallery: {key}: {e}", self.path.display()));
        let recogniser = serde_json::from_str(&get("recogniser")?).map_err(|e| parse_error("recogniser", e))?;
        let threshold = serde_json::from_str(&get("threshold")?).map_err(|e| parse_error("threshold", e))?;
        Ok((recogniser, threshold))
    }

    fn write_meta(&mut self) -> Result<()> {
        let recogniser = serde_json::to_string(&self.recogniser).map_err(|e| Error::Invalid(e.to_string()))?;
        let threshold = serde_json::to_string(&self.threshold).map_err(|e| Error::Invalid(e.to_string()))?;
        let sql = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        for (key, value) in [("recogniser", recogniser), ("threshold", threshold)] {
            self.conn.execute(sql, params![key, value]).map_err(|e| db_error(&self.path, &e))?;
        }
        Ok(())
    }

    /// Refuses to mix templates: `id` must be the recogniser that made this gallery.
    pub fn check_recogniser(&self, id: &RecogniserId) -> Result<()> {
        if *id == self.recogniser {
            return Ok(());
        }
        let describe = |r: &RecogniserId| {
            let hashes: Vec<String> = r.models.iter().map(|m| format!("{} {}", m.name, &m.sha256[..m.sha256.len().min(12)])).collect();
            format!("{} [{}{}]", r.name, hashes.join(", "), if r.flip { "" } else { ", no flip" })
        };
        Err(Error::Invalid(format!(
            "{}: this gallery's templates were made by {}, not {}; use --model {} or another gallery file",
            self.path.display(),
            describe(&self.recogniser),
            describe(id),
            self.recogniser.name
        )))
    }

    /// Sets the decision threshold stored with the gallery.
    pub fn set_threshold(&mut self, threshold: Threshold) -> Result<()> {
        self.threshold = threshold;
        self.write_meta()
    }

    /// `(subject, sha256)` of every photo already processed, for skipping on a rerun.
    pub fn known_photos(&self) -> Result<HashSet<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT s.name, p.sha256 FROM photos p JOIN subjects s ON s.id = p.subject_id")
            .map_err(|e| db_error(&self.path, &e))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| db_error(&self.path, &e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| db_error(&self.path, &e))
    }

    /// Writes a batch of enrolments in one transaction: all of it lands or none.
    pub fn add(&mut self, batch: &[Enrolment]) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let dim = self.recogniser.embedding_size;
        let now = clock::now();
        let tx = self.conn.transaction().map_err(err)?;
        for e in batch {
            tx.execute("INSERT INTO subjects (name, created) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING", params![e.subject, now])
                .map_err(err)?;
            let subject: i64 = tx.query_row("SELECT id FROM subjects WHERE name = ?1", [&e.subject], |r| r.get(0)).map_err(err)?;
            let status = if e.face.is_some() { "enrolled" } else { "no face" };
            let inserted = tx
                .execute(
                    "INSERT INTO photos (subject_id, path, sha256, status, enrolled) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT(subject_id, sha256) DO NOTHING",
                    params![subject, e.path.to_string_lossy(), e.sha256, status, now],
                )
                .map_err(err)?;
            // The same photo twice for one subject (a copy) gives one template.
            let (1, Some((face, embedding))) = (inserted, &e.face) else { continue };
            if embedding.0.len() != dim {
                return Err(Error::Invalid(format!("{}: template of {} values, gallery holds {dim}", path.display(), embedding.0.len())));
            }
            let photo: i64 = tx
                .query_row("SELECT id FROM photos WHERE subject_id = ?1 AND sha256 = ?2", params![subject, e.sha256], |r| r.get(0))
                .map_err(err)?;
            let face = serde_json::to_string(face).map_err(|e| Error::Invalid(e.to_string()))?;
            tx.execute(
                "INSERT INTO templates (subject_id, photo_id, face, embedding) VALUES (?1, ?2, ?3, ?4)",
                params![subject, photo, face, embedding_bytes(embedding)],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Every subject with counts, by name.
    pub fn subjects(&self) -> Result<Vec<SubjectSummary>> {
        let sql = "SELECT s.name, s.created, \
                   (SELECT count(*) FROM templates t WHERE t.subject_id = s.id), \
                   (SELECT count(*) FROM photos p WHERE p.subject_id = s.id) \
                   FROM subjects s ORDER BY s.name";
        let mut stmt = self.conn.prepare(sql).map_err(|e| db_error(&self.path, &e))?;
        let rows = stmt
            .query_map([], |r| Ok(SubjectSummary { name: r.get(0)?, created: r.get(1)?, templates: r.get(2)?, photos: r.get(3)? }))
            .map_err(|e| db_error(&self.path, &e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| db_error(&self.path, &e))
    }

    /// The photos enrolled for one subject; `None` when there is no such subject.
    pub fn photos_of(&self, name: &str) -> Result<Option<Vec<SourceRecord>>> {
        let err = |e: rusqlite::Error| db_error(&self.path, &e);
        let id: Option<i64> = self.conn.query_row("SELECT id FROM subjects WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(err)?;
        let Some(id) = id else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare("SELECT path, sha256, status, enrolled FROM photos WHERE subject_id = ?1 ORDER BY path")
            .map_err(err)?;
        let rows = stmt
            .query_map([id], |r| Ok(SourceRecord { path: r.get(0)?, sha256: r.get(1)?, status: r.get(2)?, enrolled: r.get(3)? }))
            .map_err(err)?;
        Ok(Some(rows.collect::<rusqlite::Result<_>>().map_err(err)?))
    }

    /// Removes a subject with all their photos' records and templates; the
    /// freed pages are zeroed (`secure_delete`). False when there was no such subject.
    pub fn remove(&mut self, name: &str) -> Result<bool> {
        let removed = self.conn.execute("DELETE FROM subjects WHERE name = ?1", [name]).map_err(|e| db_error(&self.path, &e))?;
        Ok(removed > 0)
    }

    /// Loads every template into a search index, with subject names by index.
    pub fn index(&self) -> Result<(Index, Vec<String>)> {
        let err = |e: rusqlite::Error| db_error(&self.path, &e);
        let dim = self.recogniser.embedding_size;
        let mut names: Vec<String> = Vec::new();
        let mut position = std::collections::HashMap::new();
        let mut index = Index::new(dim);
        let mut stmt = self
            .conn
            .prepare("SELECT s.id, s.name, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id ORDER BY t.id")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let (id, name, blob): (i64, String, Vec<u8>) = (row.get(0).map_err(err)?, row.get(1).map_err(err)?, row.get(2).map_err(err)?);
            let embedding = embedding_from_bytes(&blob, dim)
                .ok_or_else(|| Error::Invalid(format!("{}: damaged gallery: a template of {name} has the wrong size", self.path.display())))?;
            let subject = *position.entry(id).or_insert_with(|| {
                names.push(name);
                names.len() as u32 - 1
            });
            index.push(subject, &embedding);
        }
        Ok((index, names))
    }
}

fn embedding_bytes(e: &Embedding) -> Vec<u8> {
    e.0.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn embedding_from_bytes(bytes: &[u8], dim: usize) -> Option<Vec<f32>> {
    (bytes.len() == dim * 4).then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn db_error(path: &Path, e: &rusqlite::Error) -> Error {
    Error::Invalid(format!("{}: gallery database error: {e}", path.display()))
}

fn not_a_gallery(path: &Path, e: &rusqlite::Error) -> Error {
    Error::Invalid(format!("{}: not a faces gallery (corrupt, or another kind of file): {e}", path.display()))
}
