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
//!
//! Privacy: templates are sealed with the gallery's key ([`TemplateKey`],
//! never stored here; a sealed check value tells a wrong key from a tampered
//! template). A subject is enrolled and matched only while they have an
//! active consent record; [`Gallery::forget`] erases a subject completely
//! and vacuums the file so no freed page keeps their bytes.

pub mod api_keys;
pub mod search;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::embed::{Confidence, Embedding, RecogniserId};
use crate::privacy::consent::{self, Consent, ConsentInput};
use crate::privacy::key::{Cipher, Sealer};
use crate::privacy::TemplateKey;
use crate::{clock, Error, Face, Result};
pub use search::{Hit, Index};

/// `PRAGMA application_id` of gallery files: "FACE".
const APPLICATION_ID: i64 = 0x4641_4345;

/// Schema versions, each the SQL that upgrades from the one before.
const MIGRATIONS: &[&str] = &[include_str!("schema-1.sql"), include_str!("schema-2.sql")];

/// The decision threshold stored with a gallery and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f32,
    /// How it was obtained, e.g. "default for sface (LFW View 1 DevTrain)".
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

/// What is held with one template besides the (encrypted) embedding.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateRecord {
    pub photo_sha256: String,
    /// The face's box, landmarks and scores as enrolled.
    pub face: serde_json::Value,
}

/// What erasing a subject removed.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    /// The subject's pseudonymous id (kept in the consent record and audit trail).
    pub subject_id: String,
    pub templates: i64,
    pub photos: i64,
}

/// The sealed value that tells whether a key is this gallery's.
const KEY_CHECK: &[u8] = b"faces gallery key check";

/// An open gallery file.
pub struct Gallery {
    conn: Connection,
    path: PathBuf,
    pub recogniser: RecogniserId,
    pub threshold: Threshold,
    /// The similarity-to-probability map fitted by `faces calibrate`, if run.
    pub confidence: Option<Confidence>,
    /// The cipher its templates are sealed with (meta `cipher`; galleries
    /// made before it was recorded use XChaCha20-Poly1305).
    pub cipher: Cipher,
    sealer: Option<Arc<Sealer>>,
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
        gallery.refresh()?;
        Ok(gallery)
    }

    /// Re-reads the recogniser, threshold and confidence map from the file,
    /// for a reader that outlives another process's `faces calibrate`.
    pub fn refresh(&mut self) -> Result<()> {
        let (recogniser, threshold) = self.read_meta()?;
        self.recogniser = recogniser;
        self.threshold = threshold;
        self.cipher = match self.optional_meta("cipher")? {
            None => Cipher::XChaCha20Poly1305,
            Some(name) => Cipher::parse(&name).ok_or_else(|| self.damaged(&format!("unknown cipher {name:?}; upgrade faces")))?,
        };
        self.confidence = self.optional_meta("confidence")?.and_then(|v| serde_json::from_str(&v).ok());
        Ok(())
    }

    /// Creates a new, empty gallery at `path` (which must not exist). The file
    /// is built under a temporary name and renamed into place when complete.
    pub fn create(path: &Path, recogniser: RecogniserId, threshold: Threshold, key: &TemplateKey) -> Result<Gallery> {
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
            gallery.set_meta("cipher", Cipher::NEWEST.name())?;
            gallery.write_key_check(&key.sealer(Cipher::NEWEST))?;
        }
        // Temporary files are created owner-only (0600); SQLite gives its WAL
        // and shared-memory files the same mode.
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        let mut gallery = Self::open(path)?;
        gallery.unlock(key.clone())?;
        Ok(gallery)
    }

    /// Checks `key` against the gallery's sealed check value and keeps it for
    /// reading and writing templates.
    pub fn unlock(&mut self, key: TemplateKey) -> Result<()> {
        let check = self.meta_value("key_check")?;
        let sealed = hex_decode(&check).ok_or_else(|| self.damaged("key_check is not hex"))?;
        let sealer = key.sealer(self.cipher);
        if sealer.open(b"key-check", &sealed).as_deref() != Some(KEY_CHECK) {
            return Err(Error::Invalid(format!(
                "{}: wrong key ({}): this gallery's templates were sealed with another key; set FACES_KEY or --key-file to the key it was made with",
                self.path.display(),
                key.origin
            )));
        }
        self.sealer = Some(Arc::new(sealer));
        Ok(())
    }

    fn write_key_check(&mut self, sealer: &Sealer) -> Result<()> {
        let sealed = sealer.seal(b"key-check", KEY_CHECK)?;
        self.set_meta("key_check", &hex_encode(&sealed))
    }

    fn sealer(&self) -> Result<Arc<Sealer>> {
        self.sealer.clone().ok_or_else(|| Error::Invalid(format!("{}: gallery not unlocked with its key", self.path.display())))
    }

    fn from_connection(conn: Connection, path: &Path) -> Result<Gallery> {
        let setup = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000;";
        conn.execute_batch(setup).map_err(|e| not_a_gallery(path, &e))?;
        let recogniser = RecogniserId { name: String::new(), models: Vec::new(), embedding_size: 0, flip: true };
        let threshold = Threshold { value: 0.0, source: String::new() };
        Ok(Gallery { conn, path: path.to_path_buf(), recogniser, threshold, confidence: None, cipher: Cipher::NEWEST, sealer: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes whenever another connection (another `faces` process) commits
    /// to this gallery, so a long-running reader knows to reload its index.
    pub fn data_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| db_error(&self.path, &e))
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

    fn damaged(&self, why: &str) -> Error {
        Error::Invalid(format!("{}: damaged gallery: {why}", self.path.display()))
    }

    fn meta_value(&self, key: &str) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, String>(0))
            .optional()
            .map_err(|e| db_error(&self.path, &e))?
            .ok_or_else(|| self.damaged(&format!("no {key} record")))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        let sql = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        self.conn.execute(sql, params![key, value]).map_err(|e| db_error(&self.path, &e))?;
        Ok(())
    }

    fn read_meta(&self) -> Result<(RecogniserId, Threshold)> {
        let recogniser = serde_json::from_str(&self.meta_value("recogniser")?).map_err(|e| self.damaged(&format!("recogniser: {e}")))?;
        let threshold = serde_json::from_str(&self.meta_value("threshold")?).map_err(|e| self.damaged(&format!("threshold: {e}")))?;
        Ok((recogniser, threshold))
    }

    fn write_meta(&mut self) -> Result<()> {
        let recogniser = serde_json::to_string(&self.recogniser).map_err(|e| Error::Invalid(e.to_string()))?;
        let threshold = serde_json::to_string(&self.threshold).map_err(|e| Error::Invalid(e.to_string()))?;
        self.set_meta("recogniser", &recogniser)?;
        self.set_meta("threshold", &threshold)
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

    fn optional_meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| db_error(&self.path, &e))
    }

    /// Whether every search must state its purpose.
    pub fn purpose_required(&self) -> Result<bool> {
        Ok(self.optional_meta("require_purpose")?.as_deref() == Some("true"))
    }

    /// Stores what `faces calibrate` chose: the threshold (with how it was
    /// obtained), the confidence map, and the calibration's figures as JSON.
    pub fn set_calibration(&mut self, threshold: Threshold, confidence: Confidence, record: &serde_json::Value) -> Result<()> {
        self.set_meta("calibration", &record.to_string())?;
        self.set_meta("confidence", &serde_json::to_string(&confidence).map_err(|e| Error::Invalid(e.to_string()))?)?;
        self.confidence = Some(confidence);
        self.set_threshold(threshold)
    }

    /// The figures of the last calibration, if any.
    pub fn calibration(&self) -> Result<Option<serde_json::Value>> {
        Ok(self.optional_meta("calibration")?.and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub fn set_purpose_required(&mut self, required: bool) -> Result<()> {
        self.set_meta("require_purpose", if required { "true" } else { "false" })
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

    /// Writes a batch of enrolments in one transaction: all of it lands or
    /// none. Every subject must have an active consent record.
    pub fn add(&mut self, batch: &[Enrolment]) -> Result<()> {
        let key = self.sealer()?;
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let dim = self.recogniser.embedding_size;
        let (now, today) = (clock::now(), consent::today());
        let tx = self.conn.transaction().map_err(err)?;
        for e in batch {
            let subject: Option<(i64, String)> = tx
                .query_row(&format!("SELECT s.id, s.uid FROM subjects s WHERE s.name = ?1 AND {}", active("?2")), params![e.subject, today], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(err)?;
            let Some((subject, uid)) = subject else {
                return Err(no_consent(&path, &e.subject));
            };
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
            let sealed = key.seal(&template_context(&uid, &e.sha256), &embedding_bytes(embedding))?;
            tx.execute(
                "INSERT INTO templates (subject_id, photo_id, face, embedding) VALUES (?1, ?2, ?3, ?4)",
                params![subject, photo, face, sealed],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Which of `names` have no active consent record.
    pub fn without_consent<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<Vec<&'a str>> {
        let today = consent::today();
        let sql = format!("SELECT count(*) FROM subjects s WHERE s.name = ?1 AND {}", active("?2"));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| db_error(&self.path, &e))?;
        let mut missing = Vec::new();
        for name in names {
            let n: i64 = stmt.query_row(params![name, today], |r| r.get(0)).map_err(|e| db_error(&self.path, &e))?;
            if n == 0 {
                missing.push(name);
            }
        }
        Ok(missing)
    }

    /// Whether `name` has withdrawn a consent record: a data-set-wide basis
    /// must not enrol them again; only a new record of their own can.
    pub fn has_withdrawn(&self, name: &str) -> Result<bool> {
        let sql = "SELECT count(*) FROM consents c JOIN subjects s ON s.id = c.subject_id WHERE s.name = ?1 AND c.withdrawn IS NOT NULL";
        let n: i64 = self.conn.query_row(sql, [name], |r| r.get(0)).map_err(|e| db_error(&self.path, &e))?;
        Ok(n > 0)
    }

    /// Records a consent (or other legal basis) for a subject, creating the
    /// subject when new. Returns the subject's pseudonymous id.
    pub fn add_consent(&mut self, name: &str, input: &ConsentInput) -> Result<String> {
        input.validate(&consent::today())?;
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let now = clock::now();
        let tx = self.conn.transaction().map_err(err)?;
        let existing: Option<(i64, String)> =
            tx.query_row("SELECT id, uid FROM subjects WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(err)?;
        let (id, uid) = match existing {
            Some(found) => found,
            None => {
                let uid = random_uid()?;
                tx.execute("INSERT INTO subjects (uid, name, created) VALUES (?1, ?2, ?3)", params![uid, name, now]).map_err(err)?;
                (tx.last_insert_rowid(), uid)
            }
        };
        tx.execute(
            "INSERT INTO consents (subject_id, subject_uid, basis, purpose, evidence, recorded_by, recorded, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, uid, input.basis, input.purpose, input.evidence, input.recorded_by, now, input.expires],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(uid)
    }

    /// Withdraws every active record of a subject: they are unmatchable from
    /// now on (their templates stay until erased). Returns the number withdrawn.
    pub fn withdraw_consent(&mut self, name: &str) -> Result<usize> {
        let sql = "UPDATE consents SET withdrawn = ?1 WHERE withdrawn IS NULL AND erased IS NULL \
                   AND subject_id = (SELECT id FROM subjects WHERE name = ?2)";
        self.conn.execute(sql, params![clock::now(), name]).map_err(|e| db_error(&self.path, &e))
    }

    /// Consent records, of one subject or of all (erased subjects' records included), oldest first.
    pub fn consents(&self, name: Option<&str>) -> Result<Vec<Consent>> {
        let today = consent::today();
        let sql = "SELECT c.id, s.name, c.subject_uid, c.basis, c.purpose, c.evidence, c.recorded_by, c.recorded, \
                   c.expires, c.withdrawn, c.erased FROM consents c LEFT JOIN subjects s ON s.id = c.subject_id \
                   WHERE ?1 IS NULL OR s.name = ?1 ORDER BY c.id";
        let mut stmt = self.conn.prepare(sql).map_err(|e| db_error(&self.path, &e))?;
        let rows = stmt
            .query_map([name], |r| {
                let (expires, withdrawn, erased): (Option<String>, Option<String>, Option<String>) = (r.get(8)?, r.get(9)?, r.get(10)?);
                Ok(Consent {
                    id: r.get(0)?,
                    subject: r.get(1)?,
                    subject_id: r.get(2)?,
                    basis: r.get(3)?,
                    purpose: r.get(4)?,
                    evidence: r.get(5)?,
                    recorded_by: r.get(6)?,
                    recorded: r.get(7)?,
                    active: consent::is_active(expires.as_deref(), withdrawn.as_deref(), erased.as_deref(), &today),
                    expires,
                    withdrawn,
                    erased,
                })
            })
            .map_err(|e| db_error(&self.path, &e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| db_error(&self.path, &e))
    }

    /// A subject's pseudonymous id, if there is such a subject.
    pub fn subject_id(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT uid FROM subjects WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| db_error(&self.path, &e))
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

    /// Metadata of one subject's templates (the face box and landmarks each
    /// came from, and its photo's hash), never the embeddings themselves;
    /// `None` when there is no such subject.
    pub fn templates_of(&self, name: &str) -> Result<Option<Vec<TemplateRecord>>> {
        let err = |e: rusqlite::Error| db_error(&self.path, &e);
        let id: Option<i64> = self.conn.query_row("SELECT id FROM subjects WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(err)?;
        let Some(id) = id else { return Ok(None) };
        let sql = "SELECT p.sha256, t.face FROM templates t JOIN photos p ON p.id = t.photo_id WHERE t.subject_id = ?1 ORDER BY t.id";
        let mut stmt = self.conn.prepare(sql).map_err(err)?;
        let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(err)?;
        let mut records = Vec::new();
        for row in rows {
            let (photo_sha256, face) = row.map_err(err)?;
            let face = serde_json::from_str(&face).map_err(|_| self.damaged("a template's face record is not JSON"))?;
            records.push(TemplateRecord { photo_sha256, face });
        }
        Ok(Some(records))
    }

    /// Erases a subject completely: templates, photo records and name go,
    /// their consent records keep only the basis, purpose and dates under the
    /// pseudonymous id; then the file and its journal are rewritten so no
    /// freed page keeps their bytes. `None` when there is no such subject.
    pub fn forget(&mut self, name: &str) -> Result<Option<Erasure>> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self.conn.transaction().map_err(err)?;
        let found: Option<(i64, String)> =
            tx.query_row("SELECT id, uid FROM subjects WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(err)?;
        let Some((id, uid)) = found else { return Ok(None) };
        let count = |table: &str| -> Result<i64> {
            tx.query_row(&format!("SELECT count(*) FROM {table} WHERE subject_id = ?1"), [id], |r| r.get(0)).map_err(err)
        };
        let erasure = Erasure { subject_id: uid.clone(), templates: count("templates")?, photos: count("photos")? };
        tx.execute("UPDATE consents SET evidence = NULL, recorded_by = NULL, erased = ?1 WHERE subject_uid = ?2", params![clock::now(), uid])
            .map_err(err)?;
        tx.execute("DELETE FROM subjects WHERE id = ?1", [id]).map_err(err)?;
        tx.commit().map_err(err)?;
        self.compact()?;
        Ok(Some(erasure))
    }

    /// Erases every subject with no active consent record (expired or withdrawn).
    pub fn prune(&mut self) -> Result<Vec<Erasure>> {
        let today = consent::today();
        let names: Vec<String> = {
            let sql = format!("SELECT s.name FROM subjects s WHERE NOT {} ORDER BY s.name", active("?1"));
            let mut stmt = self.conn.prepare(&sql).map_err(|e| db_error(&self.path, &e))?;
            let rows = stmt.query_map([today], |r| r.get(0)).map_err(|e| db_error(&self.path, &e))?;
            rows.collect::<rusqlite::Result<_>>().map_err(|e| db_error(&self.path, &e))?
        };
        let mut erased = Vec::new();
        for name in names {
            erased.extend(self.forget(&name)?);
        }
        Ok(erased)
    }

    /// Rewrites the file without free pages and empties the write-ahead log.
    fn compact(&mut self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| db_error(&self.path, &e))
    }

    /// Re-seals every template with `new` (and the newest cipher) in one
    /// transaction, then compacts the file so no template sealed with the old
    /// key remains.
    pub fn rekey(&mut self, new: &TemplateKey) -> Result<usize> {
        let old = self.sealer()?;
        let new = new.sealer(Cipher::NEWEST);
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self.conn.transaction().map_err(err)?;
        let rows: Vec<(i64, String, String, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT t.id, s.uid, p.sha256, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id JOIN photos p ON p.id = t.photo_id")
                .map_err(err)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        for (id, uid, sha, sealed) in &rows {
            let context = template_context(uid, sha);
            let plain = old.open(&context, sealed).ok_or_else(|| tampered(&path, *id))?;
            tx.execute("UPDATE templates SET embedding = ?1 WHERE id = ?2", params![new.seal(&context, &plain)?, id]).map_err(err)?;
        }
        let check = hex_encode(&new.seal(b"key-check", KEY_CHECK)?);
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'key_check'", [check]).map_err(err)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('cipher', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [new.cipher().name()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.cipher = new.cipher();
        self.sealer = Some(Arc::new(new));
        self.compact()?;
        Ok(rows.len())
    }

    /// Loads the templates of every subject with an active consent record
    /// into a search index, with subject names and pseudonymous ids by index.
    /// A template that fails authentication stops the load.
    pub fn index(&self) -> Result<(Index, Vec<(String, String)>)> {
        let key = self.sealer()?;
        let err = |e: rusqlite::Error| db_error(&self.path, &e);
        let dim = self.recogniser.embedding_size;
        let mut subjects: Vec<(String, String)> = Vec::new();
        let mut position = std::collections::HashMap::new();
        let mut index = Index::new(dim);
        let sql = format!(
            "SELECT t.id, s.id, s.name, s.uid, p.sha256, t.embedding FROM templates t JOIN subjects s ON s.id = t.subject_id \
             JOIN photos p ON p.id = t.photo_id WHERE {} ORDER BY t.id",
            active("?1")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(err)?;
        type Row = (i64, i64, String, String, String, Vec<u8>);
        let rows: Vec<Row> = stmt
            .query_map([consent::today()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        // Decrypting is most of the cost of loading: spread it over the cores.
        let opened: Vec<Option<Vec<u8>>> =
            rows.par_iter().map(|(_, _, _, uid, sha, sealed)| key.open(&template_context(uid, sha), sealed)).collect();
        for ((template, id, name, uid, _, _), plain) in rows.into_iter().zip(opened) {
            let plain = plain.ok_or_else(|| tampered(&self.path, template))?;
            let embedding = embedding_from_bytes(&plain, dim).ok_or_else(|| self.damaged("a template has the wrong size"))?;
            let subject = *position.entry(id).or_insert_with(|| {
                subjects.push((name, uid));
                subjects.len() as u32 - 1
            });
            index.push(subject, &embedding);
        }
        Ok((index, subjects))
    }
}

/// SQL condition: subject `s` has a consent record in force on the date
/// bound to the parameter `today` (such as `?2`).
fn active(today: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM consents c WHERE c.subject_id = s.id AND c.withdrawn IS NULL \
         AND c.erased IS NULL AND (c.expires IS NULL OR c.expires >= {today}))"
    )
}

/// What a sealed template is bound to: moving it to another subject or photo breaks it.
fn template_context(uid: &str, photo_sha256: &str) -> Vec<u8> {
    format!("faces-template\0{uid}\0{photo_sha256}").into_bytes()
}

pub(crate) fn random_uid() -> Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| Error::Invalid(format!("no randomness from the OS: {e}")))?;
    Ok(hex_encode(&bytes))
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

fn tampered(path: &Path, template: i64) -> Error {
    Error::Invalid(format!(
        "{}: template {template} failed authentication: the gallery was altered or damaged; restore it from a backup",
        path.display()
    ))
}

fn no_consent(path: &Path, name: &str) -> Error {
    Error::Invalid(format!(
        "{}: {name} has no active consent record; add one with `faces consent add {name:?} --gallery {} --basis consent \
         --purpose TEXT --evidence REF`, or enrol a research data set with --basis research --purpose TEXT",
        path.display(),
        path.display()
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Landmarks, Point};

    fn face() -> Face {
        let p = Point { x: 1.0, y: 2.0 };
        let landmarks = Landmarks { right_eye: p, left_eye: p, nose: p, mouth_right: p, mouth_left: p };
        Face { bbox: BBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 }, landmarks, score: 0.99 }
    }

    /// A gallery made before the cipher was recorded (XChaCha20-Poly1305, no
    /// `cipher` meta) still opens with its key, and `rekey` moves it to AES-256-GCM.
    #[test]
    fn galleries_sealed_with_xchacha_open_and_rekey_to_aes_gcm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.gallery");
        let key = TemplateKey::generate("test").unwrap();
        let id = RecogniserId { name: "test".into(), models: Vec::new(), embedding_size: 4, flip: true };
        let mut g = Gallery::create(&path, id, Threshold { value: 0.5, source: "test".into() }, &key).unwrap();
        assert_eq!(g.cipher, Cipher::Aes256Gcm, "new galleries use AES-256-GCM");
        let consent = ConsentInput { basis: "research".into(), purpose: "test".into(), evidence: None, recorded_by: "t".into(), expires: None };
        g.add_consent("ann", &consent).unwrap();
        let embedding = Embedding(vec![0.5, 0.5, 0.5, 0.5]);
        let e = Enrolment { subject: "ann".into(), path: "ann.jpg".into(), sha256: "ab".repeat(32), face: Some((face(), embedding.clone())) };
        g.add(&[e]).unwrap();

        // Make it as an older faces did: every value sealed with XChaCha20-Poly1305, no cipher recorded.
        let old = key.sealer(Cipher::XChaCha20Poly1305);
        let uid = g.subject_id("ann").unwrap().unwrap();
        let sealed = old.seal(&template_context(&uid, &"ab".repeat(32)), &embedding_bytes(&embedding)).unwrap();
        g.conn.execute("UPDATE templates SET embedding = ?1", [sealed]).unwrap();
        g.write_key_check(&old).unwrap();
        g.conn.execute("DELETE FROM meta WHERE key = 'cipher'", []).unwrap();
        drop(g);

        let mut g = Gallery::open(&path).unwrap();
        assert_eq!(g.cipher, Cipher::XChaCha20Poly1305);
        g.unlock(key.clone()).unwrap();
        let rows = |g: &Gallery| g.index().unwrap().0.rows().map(|(_, t)| t.to_vec()).collect::<Vec<_>>();
        assert_eq!(rows(&g), vec![embedding.0.clone()]);

        let new = TemplateKey::generate("new").unwrap();
        assert_eq!(g.rekey(&new).unwrap(), 1);
        drop(g);
        let mut g = Gallery::open(&path).unwrap();
        assert_eq!(g.cipher, Cipher::Aes256Gcm);
        assert!(g.unlock(key).is_err(), "the old key no longer opens it");
        g.unlock(new).unwrap();
        assert_eq!(rows(&g), vec![embedding.0]);
    }
}
