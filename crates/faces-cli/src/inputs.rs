//! Turning the paths a user typed into the list of images to process:
//! files as given, folders walked recursively (symlinks followed, hidden
//! entries and non-image files skipped).

use std::path::PathBuf;

use faces_core::dataset::find_images;

/// One image to process and where its output copy goes (relative path).
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub relative: PathBuf,
}

/// What walking the arguments produced.
#[derive(Debug, Default)]
pub struct Inputs {
    pub images: Vec<Input>,
    /// Paths that do not exist or cannot be listed, with why.
    pub missing: Vec<(PathBuf, String)>,
}

pub fn collect(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let found = find_images(path);
                for image in found.images {
                    let relative = image.strip_prefix(path).unwrap_or(&image).to_path_buf();
                    inputs.images.push(Input { path: image, relative });
                }
                let unreadable = found.skipped.into_iter().filter(|s| s.reason.starts_with("cannot list"));
                inputs.missing.extend(unreadable.map(|s| (s.path, s.reason)));
            }
            Ok(_) => inputs.images.push(Input {
                path: path.clone(),
                relative: PathBuf::from(path.file_name().unwrap_or(path.as_os_str())),
            }),
            Err(e) => inputs.missing.push((path.clone(), describe_missing(e))),
        }
    }
    inputs
}

fn describe_missing(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_skipping_hidden_and_non_images() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in ["a/one.JPG", "a/b/two.png", "a/notes.txt", ".hidden.jpg", ".git/x.jpg"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let found = collect(&[root.to_path_buf(), root.join("nope.jpg")]);
        let names: Vec<_> = found.images.iter().map(|i| i.relative.to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["a/b/two.png", "a/one.JPG"]);
        assert_eq!(found.missing.len(), 1);
    }
}
