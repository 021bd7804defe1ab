//! API keys for the HTTP service, kept in the gallery they open: an id, a
//! label, the scopes it grants and the SHA-256 of its secret. The key itself
//! (`fk_ID_SECRET`) is returned once, when made, and never stored.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{db_error, hex_decode, hex_encode, random_uid, Gallery};
use crate::{clock, Error, Result};

/// What a key may do. Each scope is checked on its own; `admin` grants every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Find faces in a photo.
    Detect,
    /// Compare photos and search the gallery.
    Identify,
    /// Add people, record consent, list subjects.
    Enrol,
    /// Erase people, read the audit trail and metrics, and everything else.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Detect, Scope::Identify, Scope::Enrol, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Detect => "detect",
            Scope::Identify => "identify",
            Scope::Enrol => "enrol",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope> {
        Scope::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown scope {s:?}: use detect, identify, enrol or admin")))
    }
}

/// One stored key, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub label: String,
    pub scopes: Vec<Scope>,
    pub created: String,
    pub revoked: Option<String>,
}

impl ApiKey {
    /// Whether this key may act in `scope` (`admin` may act in any).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|&s| s == scope || s == Scope::Admin)
    }
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not of the form `fk_ID_SECRET`, unknown id, or wrong secret.
    Invalid,
    Revoked,
}

fn digest(secret: &[u8]) -> String {
    hex_encode(&Sha256::digest(secret))
}

/// Equal-time comparison of two hex digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Gallery {
    /// Makes a key with these scopes; returns its record and the key, which is shown once.
    pub fn create_api_key(&mut self, label: &str, scopes: &[Scope]) -> Result<(ApiKey, String)> {
        if scopes.is_empty() {
            return Err(Error::Invalid("a key needs at least one --scope (detect, identify, enrol, admin)".into()));
        }
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let id = random_uid()?[..8].to_string();
        let secret = random_uid()? + &random_uid()?;
        let created = clock::now();
        let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        let scopes_json = serde_json::to_string(&names).map_err(|e| Error::Invalid(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO api_keys (id, label, hash, scopes, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, label, digest(secret.as_bytes()), scopes_json, created],
            )
            .map_err(|e| db_error(&self.path, &e))?;
        let key = format!("fk_{id}_{secret}");
        Ok((ApiKey { id, label: label.to_string(), scopes, created, revoked: None }, key))
    }

    /// Every key, newest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, label, scopes, created, revoked FROM api_keys ORDER BY created DESC, id")
            .map_err(|e| db_error(&self.path, &e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?)))
            .map_err(|e| db_error(&self.path, &e))?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, label, scopes, created, revoked) = row.map_err(|e| db_error(&self.path, &e))?;
            keys.push(ApiKey { id, label, scopes: self.parse_scopes(&scopes)?, created, revoked });
        }
        Ok(keys)
    }

    /// Revokes a key at once; false when there is no such key.
    pub fn revoke_api_key(&mut self, id: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("UPDATE api_keys SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL", params![id, clock::now()])
            .map_err(|e| db_error(&self.path, &e))?;
        if n == 0 && !self.api_keys()?.iter().any(|k| k.id == id) {
            return Ok(false);
        }
        Ok(true)
    }

    /// The key a client presented, if it is valid and not revoked.
    pub fn check_api_key(&self, presented: &str) -> Result<std::result::Result<ApiKey, Refusal>> {
        let Some((id, secret)) = presented.strip_prefix("fk_").and_then(|rest| rest.split_once('_')) else {
            return Ok(Err(Refusal::Invalid));
        };
        if hex_decode(secret).is_none_or(|b| b.len() != 24) {
            return Ok(Err(Refusal::Invalid));
        }
        let row: Option<(String, String, String, String, Option<String>)> = self
            .conn
            .query_row("SELECT label, hash, scopes, created, revoked FROM api_keys WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
            .map_err(|e| db_error(&self.path, &e))?;
        let Some((label, hash, scopes, created, revoked)) = row else { return Ok(Err(Refusal::Invalid)) };
        if !same(&hash, &digest(secret.as_bytes())) {
            return Ok(Err(Refusal::Invalid));
        }
        if revoked.is_some() {
            return Ok(Err(Refusal::Revoked));
        }
        Ok(Ok(ApiKey { id: id.to_string(), label, scopes: self.parse_scopes(&scopes)?, created, revoked }))
    }

    fn parse_scopes(&self, json: &str) -> Result<Vec<Scope>> {
        let names: Vec<String> = serde_json::from_str(json).map_err(|e| self.damaged(&format!("api key scopes: {e}")))?;
        names.iter().map(|n| Scope::parse(n)).collect()
    }
}
