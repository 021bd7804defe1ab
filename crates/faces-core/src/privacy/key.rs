//! The key that encrypts a gallery's templates: 32 random bytes, from the
//! `FACES_KEY` environment variable (64 hex characters) or a key file that
//! only its owner can read. It is never stored in the gallery.

use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;

use crate::files::{write_atomically, Access};
use crate::{Error, Result};

/// Environment variable holding a key as 64 hex characters.
pub const KEY_ENV: &str = "FACES_KEY";

/// The authenticated cipher a gallery's templates are sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM, 96-bit random nonces: what new galleries use (AES-NI makes
    /// it ~3x faster than XChaCha20-Poly1305 without compile-time CPU flags).
    Aes256Gcm,
    /// XChaCha20-Poly1305, 192-bit random nonces: galleries made before.
    XChaCha20Poly1305,
}

impl Cipher {
    /// The cipher new galleries and `rekey` use.
    pub const NEWEST: Cipher = Cipher::Aes256Gcm;

    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    pub fn parse(name: &str) -> Option<Cipher> {
        [Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305].into_iter().find(|c| c.name() == name)
    }

    fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes256Gcm => 12,
            Cipher::XChaCha20Poly1305 => 24,
        }
    }
}

/// A key made ready for one cipher (its key schedule computed once): seals
/// and opens templates, from any number of threads.
pub struct Sealer {
    cipher: Cipher,
    aead: Aead256,
}

enum Aead256 {
    Aes(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl Sealer {
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Encrypts and authenticates `plain`, bound to `context` (which must be
    /// given again to open it): a random nonce, then the ciphertext and tag.
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = vec![0u8; self.cipher.nonce_len()];
        getrandom::fill(&mut nonce).map_err(|e| Error::Invalid(format!("no randomness from the OS: {e}")))?;
        let payload = Payload { msg: plain, aad: context };
        let sealed = match &self.aead {
            Aead256::Aes(c) => c.encrypt(nonce.as_slice().into(), payload),
            Aead256::XChaCha(c) => c.encrypt(nonce.as_slice().into(), payload),
        };
        let sealed = sealed.map_err(|_| Error::Invalid("encryption failed".into()))?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// Decrypts what [`seal`](Self::seal) made with the same key, cipher and
    /// context; `None` when any of them or the bytes differ.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < self.cipher.nonce_len() {
            return None;
        }
        let (nonce, body) = sealed.split_at(self.cipher.nonce_len());
        let payload = Payload { msg: body, aad: context };
        match &self.aead {
            Aead256::Aes(c) => c.decrypt(nonce.into(), payload).ok(),
            Aead256::XChaCha(c) => c.decrypt(nonce.into(), payload).ok(),
        }
    }
}

/// A 256-bit template key.
#[derive(Clone)]
pub struct TemplateKey {
    bytes: [u8; 32],
    /// Where the key came from, for messages (never the key itself).
    pub origin: String,
}

impl std::fmt::Debug for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TemplateKey({})", self.origin)
    }
}

/// Where to look for the key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `FACES_KEY` if set, else this file.
    Default { file: PathBuf },
    /// Exactly this file.
    File(PathBuf),
}

impl KeySource {
    /// `--key-file` if given, else the environment variable or the default file.
    pub fn new(key_file: Option<PathBuf>) -> KeySource {
        match key_file {
            Some(f) => KeySource::File(f),
            None => KeySource::Default { file: default_key_file() },
        }
    }

    /// Loads the key. With `create` (a new gallery), a missing key file is
    /// generated (the returned flag says so, so the caller can tell the user where it is).
    pub fn load(&self, create: bool) -> Result<(TemplateKey, bool)> {
        let file = match self {
            KeySource::Default { file } => {
                if let Ok(hex) = std::env::var(KEY_ENV) {
                    return Ok((TemplateKey::from_hex(hex.trim(), KEY_ENV)?, false));
                }
                file
            }
            KeySource::File(file) => file,
        };
        if create && !file.exists() {
            return Ok((TemplateKey::generate_file(file)?, true));
        }
        Ok((TemplateKey::from_file(file)?, false))
    }
}

/// `~/.config/faces/gallery.key` (the platform's config folder).
pub fn default_key_file() -> PathBuf {
    dirs::config_dir().unwrap_or_else(std::env::temp_dir).join("faces").join("gallery.key")
}

impl TemplateKey {
    /// A new random key.
    pub fn generate(origin: &str) -> Result<TemplateKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Invalid(format!("no randomness from the OS: {e}")))?;
        Ok(TemplateKey { bytes, origin: origin.into() })
    }

    /// Generates a key and writes it as hex to `path`, owner-only (0600).
    pub fn generate_file(path: &Path) -> Result<TemplateKey> {
        let key = TemplateKey::generate(&path.display().to_string())?;
        write_atomically(path, format!("{}\n", key.to_hex()).as_bytes(), Access::Private)?;
        Ok(key)
    }

    pub fn from_hex(hex: &str, origin: &str) -> Result<TemplateKey> {
        let bad = || Error::Invalid(format!("{origin}: a key is 64 hex characters (32 bytes)"));
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(TemplateKey { bytes, origin: origin.into() })
    }

    /// Reads a key file, refusing one that anyone but its owner can read.
    pub fn from_file(path: &Path) -> Result<TemplateKey> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Invalid(format!(
                "{}: no key file; set {KEY_ENV} or pass --key-file with the key this gallery was made with",
                path.display()
            )),
            _ => Error::io(path, e),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::Invalid(format!(
                    "{}: key file is readable by others (mode {mode:o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                )));
            }
        }
        let _ = meta;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        TemplateKey::from_hex(text.trim(), &path.display().to_string())
    }

    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This key made ready for `cipher`.
    pub fn sealer(&self, cipher: Cipher) -> Sealer {
        let key = (&self.bytes).into();
        let aead = match cipher {
            Cipher::Aes256Gcm => Aead256::Aes(Box::new(Aes256Gcm::new(key))),
            Cipher::XChaCha20Poly1305 => Aead256::XChaCha(Box::new(XChaCha20Poly1305::new(key))),
        };
        Sealer { cipher, aead }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_cipher_and_context() {
        for cipher in [Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305] {
            let key = TemplateKey::generate("test").unwrap().sealer(cipher);
            let sealed = key.seal(b"template 1", b"secret embedding").unwrap();
            assert_eq!(key.open(b"template 1", &sealed).as_deref(), Some(&b"secret embedding"[..]));
            assert!(key.open(b"template 2", &sealed).is_none(), "moved to another row");
            assert!(TemplateKey::generate("other").unwrap().sealer(cipher).open(b"template 1", &sealed).is_none(), "wrong key");
            let mut tampered = sealed.clone();
            tampered[30] ^= 1;
            assert!(key.open(b"template 1", &tampered).is_none(), "tampered");
            assert_ne!(key.seal(b"template 1", b"secret embedding").unwrap(), sealed, "fresh nonce each time");
        }
        let key = TemplateKey::generate("test").unwrap();
        let sealed = key.sealer(Cipher::Aes256Gcm).seal(b"t", b"secret").unwrap();
        assert!(key.sealer(Cipher::XChaCha20Poly1305).open(b"t", &sealed).is_none(), "the other cipher cannot open it");
    }

    #[test]
    fn key_files_must_be_private_and_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = TemplateKey::generate_file(&path).unwrap();
        assert_eq!(TemplateKey::from_file(&path).unwrap().to_hex(), key.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = TemplateKey::from_file(&path).unwrap_err().to_string();
            assert!(e.contains("readable by others") && e.contains("chmod 600"), "{e}");
        }
        assert!(TemplateKey::from_hex("abc", "x").is_err());
        assert!(TemplateKey::from_hex(&"zz".repeat(32), "x").is_err());
    }
}
