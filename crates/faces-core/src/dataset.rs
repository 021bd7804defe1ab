//! Labelled data sets: a folder with one sub-folder per person (the LFW
//! layout) or a CSV manifest with `path,subject` columns. Reading one never
//! changes the user's files; everything not used is listed with the reason.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::image::has_image_extension;
use crate::{Error, Result};

/// One labelled photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub path: PathBuf,
    pub subject: String,
}

/// A file or folder that was not used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The photos found, in a stable order (by subject, then path).
#[derive(Debug, Default, Serialize)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}

impl Dataset {
    /// Reads a folder-per-person tree, or a CSV manifest when `path` is a file.
    pub fn open(path: &Path) -> Result<Dataset> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut dataset = if meta.is_dir() { Self::from_folders(path)? } else { Self::from_manifest(path)? };
        dataset.samples.sort_by(|a, b| (&a.subject, &a.path).cmp(&(&b.subject, &b.path)));
        Ok(dataset)
    }

    /// Each sub-folder of `root` is a subject; its images (at any depth) are its photos.
    pub fn from_folders(root: &Path) -> Result<Dataset> {
        let mut dataset = Dataset::default();
        let found = find_images(root);
        dataset.skipped = found.skipped;
        for path in found.images {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let mut parts = relative.components();
            let subject = parts.next().map(|c| c.as_os_str().to_string_lossy().into_owned());
            match (subject, parts.next()) {
                (Some(subject), Some(_)) => dataset.samples.push(Sample { path, subject }),
                _ => dataset
                    .skipped
                    .push(Skipped { path, reason: "not inside a person's folder (expected ROOT/NAME/photo.jpg)".into() }),
            }
        }
        if dataset.samples.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no photos found in person folders; expected ROOT/NAME/photo.jpg or a CSV manifest with path,subject",
                root.display()
            )));
        }
        Ok(dataset)
    }

    /// A CSV file with a header naming `path` and `subject` columns (any order,
    /// other columns ignored). Relative paths are relative to the manifest's folder.
    pub fn from_manifest(manifest: &Path) -> Result<Dataset> {
        let bad = |reason: String| Error::Invalid(format!("{}: {reason}", manifest.display()));
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(manifest)
            .map_err(|e| bad(format!("cannot read the manifest: {e}")))?;
        let headers = reader.headers().map_err(|e| bad(format!("cannot read the header line: {e}")))?.clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(path_col), Some(subject_col)) = (column("path"), column("subject")) else {
            return Err(bad(format!("the header line must name `path` and `subject` columns (found: {})", headers.iter().collect::<Vec<_>>().join(","))));
        };
        let base = manifest.parent().unwrap_or(Path::new("."));
        let mut dataset = Dataset::default();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
            let (path, subject) = (record.get(path_col).unwrap_or(""), record.get(subject_col).unwrap_or(""));
            if path.is_empty() || subject.is_empty() {
                return Err(bad(format!("line {line}: empty path or subject")));
            }
            let path = base.join(path);
            if path.is_file() {
                dataset.samples.push(Sample { path, subject: subject.to_string() });
            } else {
                dataset.skipped.push(Skipped { path, reason: format!("listed on line {line} of the manifest but not found") });
            }
        }
        if dataset.samples.is_empty() {
            return Err(bad("no readable photos listed".into()));
        }
        Ok(dataset)
    }

    /// Sample indices per subject, subjects in name order.
    pub fn by_subject(&self) -> BTreeMap<&str, Vec<usize>> {
        let mut map: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.samples.iter().enumerate() {
            map.entry(s.subject.as_str()).or_default().push(i);
        }
        map
    }
}

/// Images under a folder, and the entries passed over.
#[derive(Debug, Default)]
pub struct FoundImages {
    pub images: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// Walks `root` recursively in name order: symlinks followed (each folder
/// once, so links cannot loop), hidden entries and non-image files skipped.
pub fn find_images(root: &Path) -> FoundImages {
    let mut found = FoundImages::default();
    walk(root, &mut HashSet::new(), &mut found);
    found
}

fn walk(dir: &Path, seen: &mut HashSet<PathBuf>, found: &mut FoundImages) {
    if let Ok(canonical) = dir.canonicalize() {
        if !seen.insert(canonical) {
            return;
        }
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            found.skipped.push(Skipped { path: dir.to_path_buf(), reason: format!("cannot list: {e}") });
            return;
        }
    };
    entries.sort();
    for path in entries {
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            found.skipped.push(Skipped { path, reason: "hidden".into() });
        } else if path.is_dir() {
            walk(&path, seen, found);
        } else if has_image_extension(&path) {
            found.images.push(path);
        } else {
            found.skipped.push(Skipped { path, reason: "not an image file (by its extension)".into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, files: &[&str]) {
        for f in files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
    }

    #[test]
    fn folders_give_one_subject_each() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["ann/1.jpg", "ann/more/2.png", "bob/1.jpg", "bob/notes.txt", ".git/x.jpg", "loose.jpg"]);
        let d = Dataset::open(dir.path()).unwrap();
        let got: Vec<_> = d.samples.iter().map(|s| (s.subject.as_str(), s.path.file_name().unwrap().to_str().unwrap())).collect();
        assert_eq!(got, vec![("ann", "1.jpg"), ("ann", "2.png"), ("bob", "1.jpg")]);
        let reasons: Vec<_> = d.skipped.iter().map(|s| s.reason.split(' ').next().unwrap()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(d.by_subject()["ann"], vec![0, 1]);
    }

    #[test]
    fn manifest_columns_by_name_and_missing_files_noted() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["a.jpg", "b.jpg"]);
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, "note,subject,path\nx,Ann,a.jpg\ny,\"Bob, Jr\",b.jpg\nz,Cy,gone.jpg\n").unwrap();
        let d = Dataset::open(&manifest).unwrap();
        assert_eq!(d.samples.len(), 2);
        assert_eq!(d.samples[1].subject, "Bob, Jr");
        assert_eq!(d.skipped.len(), 1);
        assert!(d.skipped[0].reason.contains("line 4"));
    }

    #[test]
    fn manifest_without_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, "file,name\na.jpg,Ann\n").unwrap();
        let e = Dataset::open(&manifest).unwrap_err().to_string();
        assert!(e.contains("m.csv") && e.contains("`path` and `subject`"), "{e}");
    }
}
