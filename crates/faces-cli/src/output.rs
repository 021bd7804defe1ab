//! Shared output helpers: progress bars on a terminal, annotated copies
//! written atomically.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;
use faces_core::files::{write_atomically, Access};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

/// One error line for a file; decoder errors already start with the file name.
pub fn error_line(file: &str, why: &str) -> String {
    if why.starts_with(file) {
        why.to_string()
    } else {
        format!("{file}: {why}")
    }
}

/// A progress bar on stderr when it is a terminal and there is more than one item; hidden otherwise.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}, eta {eta}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Saves an image (format from the extension; anything but JPEG and PNG as PNG)
/// under `dir/relative`, atomically.
pub fn save_image(image: &RgbImage, dir: &Path, relative: &Path) -> anyhow::Result<std::path::PathBuf> {
    let mut target = dir.join(relative);
    let ext = target.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let format = match ext.as_str() {
        "jpg" | "jpeg" => image::ImageFormat::Jpeg,
        "png" => image::ImageFormat::Png,
        _ => {
            target.set_extension(format!("{ext}.png"));
            image::ImageFormat::Png
        }
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).with_context(|| format!("cannot encode {}", target.display()))?;
    write_atomically(&target, bytes.get_ref(), Access::Shared)?;
    Ok(target)
}
