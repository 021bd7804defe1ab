//! The audit trail: one JSON line per action (enrol, identify, compare,
//! forget, consent change, export), each carrying the SHA-256 of the line
//! before it, so that an edited, removed or reordered entry breaks the chain
//! and `faces audit verify` finds it. A small `.head` file beside the log
//! holds the last entry's number and hash, so that cutting entries off the
//! end is found too. Entries hold who, what, when, why and
//! counts and pseudonymous subject ids; never names, images or embeddings.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{write_atomically, Access};
use crate::models::sha256_bytes;
use crate::{clock, Error, Result};

/// Environment variable naming the audit log file.
pub const AUDIT_ENV: &str = "FACES_AUDIT_LOG";

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the caller states it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `enrol`, `identify`, `compare`, `forget`, `consent-add`, ...
    pub action: String,
    /// The purpose stated for the action, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The gallery file acted on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gallery: Option<String>,
    /// Counts (photos, faces, named, ...).
    #[serde(default)]
    pub counts: serde_json::Map<String, serde_json::Value>,
    /// Pseudonymous ids of the subjects concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    /// OS user, or API key id in the service.
    pub actor: String,
    #[serde(flatten)]
    pub event: Event,
    /// Hash of the previous line's entry.
    pub prev: String,
    /// SHA-256 of this entry with `hash` empty.
    pub hash: String,
}

impl Entry {
    fn digest(&self) -> String {
        let unsigned = Entry { hash: String::new(), ..self.clone() };
        sha256_bytes(serde_json::to_string(&unsigned).unwrap_or_default().as_bytes())
    }
}

/// The audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    pub path: PathBuf,
}

/// The OS user running this process.
pub fn os_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}

impl AuditLog {
    /// `FACES_AUDIT_LOG`, else `audit.jsonl` in the platform's data folder.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os(AUDIT_ENV) {
            return PathBuf::from(p);
        }
        dirs::data_local_dir().unwrap_or_else(std::env::temp_dir).join("faces").join("audit.jsonl")
    }

    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog { path: path.into() }
    }

    /// Appends one entry, chained to the last, under an exclusive file lock;
    /// the line is synced to disk before this returns.
    pub fn append(&self, actor: &str, event: Event) -> Result<Entry> {
        let err = |e: std::io::Error| Error::io(&self.path, e);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path).map_err(err)?;
        file.lock().map_err(err)?;
        let last = last_entry(&self.path)?;
        let mut entry = Entry {
            seq: last.as_ref().map_or(1, |e| e.seq + 1),
            time: clock::now(),
            actor: actor.to_string(),
            event,
            prev: last.map_or_else(|| GENESIS.to_string(), |e| e.hash),
            hash: String::new(),
        };
        entry.hash = entry.digest();
        let line = serde_json::to_string(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
        file.write_all(format!("{line}\n").as_bytes()).and_then(|_| file.sync_data()).map_err(err)?;
        write_atomically(&self.head_path(), format!("{} {}\n", entry.seq, entry.hash).as_bytes(), Access::Private)?;
        Ok(entry)
    }

    fn head_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".head");
        self.path.with_file_name(name)
    }

    /// Every entry in order; an error names the first line that is not an entry.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut entries = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::io(&self.path, e))?;
            let entry = serde_json::from_str(&line)
                .map_err(|e| Error::Invalid(format!("{}: line {} is not an audit entry: {e}", self.path.display(), i + 1)))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Checks the chain: numbering, links and hashes. `Err` describes the
    /// first break (an edited, removed, inserted or reordered entry).
    pub fn verify(&self) -> Result<usize> {
        let entries = self.entries()?;
        let mut prev = GENESIS.to_string();
        for (i, e) in entries.iter().enumerate() {
            let line = i + 1;
            let broken = |why: &str| Error::Invalid(format!("{}: line {line}: {why}", self.path.display()));
            if e.seq != line as u64 {
                return Err(broken(&format!("entry number {} where {line} was expected: an entry was removed, inserted or moved", e.seq)));
            }
            if e.prev != prev {
                return Err(broken("does not follow the entry before it: an entry was removed, inserted or moved"));
            }
            if e.digest() != e.hash {
                return Err(broken("its contents do not match its hash: the entry was edited"));
            }
            prev = e.hash.clone();
        }
        let last = entries.last().map_or_else(|| format!("0 {GENESIS}"), |e| format!("{} {}", e.seq, e.hash));
        if let Ok(head) = std::fs::read_to_string(self.head_path()) {
            if head.trim() != last {
                let recorded = head.split_whitespace().next().unwrap_or("?").to_string();
                return Err(Error::Invalid(format!(
                    "{}: the log ends at entry {} but entry {recorded} was the last one written: entries were removed from the end",
                    self.path.display(),
                    entries.len()
                )));
            }
        }
        Ok(entries.len())
    }
}

/// The log's last entry, read from its tail so appending stays fast however long the log grows.
fn last_entry(path: &Path) -> Result<Option<Entry>> {
    use std::io::{Read, Seek, SeekFrom};
    let err = |e: std::io::Error| Error::io(path, e);
    let mut file = std::fs::File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let mut tail = 64 * 1024;
    loop {
        let start = len.saturating_sub(tail);
        file.seek(SeekFrom::Start(start)).map_err(err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines().rev().filter(|l| !l.trim().is_empty());
        let last = lines.next();
        // The last line is whole if the read began at the file's start or a line break precedes it.
        let whole = start == 0 || lines.next().is_some();
        if !whole {
            tail *= 4;
            continue;
        }
        return match last {
            None => Ok(None),
            Some(line) => serde_json::from_str(line).map(Some).map_err(|e| {
                Error::Invalid(format!("{}: the last line is not an audit entry ({e}); run `faces audit verify`", path.display()))
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        for i in 0..n {
            let event = Event { action: "identify".into(), purpose: Some(format!("door {i}")), ..Default::default() };
            log.append("alice", event).unwrap();
        }
        (dir, log)
    }

    fn rewrite(log: &AuditLog, edit: impl FnOnce(&mut Vec<String>)) {
        let mut lines: Vec<String> = std::fs::read_to_string(&log.path).unwrap().lines().map(String::from).collect();
        edit(&mut lines);
        std::fs::write(&log.path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, log) = log_with(4);
        assert_eq!(log.verify().unwrap(), 4);
    }

    #[test]
    fn edits_removals_and_reorders_are_detected() {
        let (_d, log) = log_with(4);
        rewrite(&log, |l| l[1] = l[1].replace("door 1", "door 9"));
        assert!(log.verify().unwrap_err().to_string().contains("line 2: its contents do not match"));

        let (_d, log) = log_with(4);
        rewrite(&log, |l| {
            l.remove(2);
        });
        assert!(log.verify().unwrap_err().to_string().contains("line 3"));

        let (_d, log) = log_with(4);
        rewrite(&log, |l| l.swap(1, 2));
        assert!(log.verify().unwrap_err().to_string().contains("line 2"));

        let (_d, log) = log_with(4);
        rewrite(&log, |l| {
            l.pop();
        });
        assert!(log.verify().unwrap_err().to_string().contains("removed from the end"));
    }

    #[test]
    fn entries_longer_than_the_tail_read_still_chain() {
        let (_d, log) = log_with(2);
        let subjects = (0..6000).map(|i| format!("{i:024x}")).collect();
        log.append("alice", Event { action: "identify".into(), subjects, ..Default::default() }).unwrap();
        let next = log.append("alice", Event { action: "compare".into(), ..Default::default() }).unwrap();
        assert_eq!(next.seq, 4);
        assert_eq!(log.verify().unwrap(), 4);
    }
}
