//! Decoding photos safely: every common format, EXIF orientation applied,
//! grey / alpha / 16-bit converted to 8-bit RGB, and a pixel-count limit
//! checked from the header, before any pixel is decoded (decompression bombs).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
pub use image::RgbImage;

use crate::{Error, Result};

/// File name extensions of the formats we decode, for walking folders.
pub const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "pgm", "ppm", "pbm", "pnm"];

const SUPPORTED: &str = "JPEG, PNG, WebP, BMP, GIF, TIFF, PGM/PPM";

/// Limits applied to every decoded image.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest accepted width x height, checked from the header before decoding.
    pub max_pixels: u64,
    /// Largest accepted file size in bytes.
    pub max_file_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 100 megapixels covers every phone and most DSLR photos (a 108 MP
        // sensor is the largest in phones, and such photos are usually binned).
        ImageLimits { max_pixels: 100_000_000, max_file_bytes: 256 << 20 }
    }
}

/// True when the path has one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Reads and decodes an image file into upright 8-bit RGB.
pub fn load(path: &Path, limits: &ImageLimits) -> Result<RgbImage> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::image(path, "is a folder, not an image"));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(Error::image(
            path,
            format!("file is {} MB, above the {} MB limit", meta.len() >> 20, limits.max_file_bytes >> 20),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path, limits)
}

/// Decodes image bytes into upright 8-bit RGB; `name` is used in error messages.
pub fn decode(bytes: &[u8], name: &Path, limits: &ImageLimits) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::image(name, "empty file (0 bytes); not an image"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::image(name, format!("cannot read: {e}")))?;
    let Some(format) = reader.format() else {
        return Err(Error::image(name, format!("not an image in a supported format ({SUPPORTED})")));
    };
    let mut decoder_limits = image::Limits::default();
    // Room for one decoded frame at the pixel limit in 16-bit RGBA.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        // The JPEG decoder fills missing rows with grey instead of failing.
        return Err(Error::image(name, TRUNCATED.replace("{format}", "Jpeg")));
    }
    let bad = |e: image::ImageError| Error::image(name, describe(format, e));
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::image(name, format!("{format:?} header gives an empty {w}x{h} image")));
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(Error::TooLarge {
            path: name.to_path_buf(),
            reason: format!(
                "{w}x{h} is {:.0} megapixels, above the {:.0} megapixel limit (raise it with --max-pixels if the file is trusted)",
                (u64::from(w) * u64::from(h)) as f64 / 1e6,
                limits.max_pixels as f64 / 1e6
            ),
        });
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    Ok(to_rgb(img))
}

const TRUNCATED: &str = "truncated {format} file (it ends before the image data does); re-copy or re-export it";

/// True when a JPEG stream has no end-of-image marker after its first scan
/// header. Inside scan data every 0xFF byte is stuffed, so an end marker
/// cannot appear early; data a camera appends after the end does not matter.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Skip fill bytes before a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        match (bytes.get(i), bytes.get(i + 1)) {
            (Some(0xFF), Some(0xDA)) => break,
            (Some(0xFF), Some(0xD0..=0xD7 | 0x01)) => i += 2,
            (Some(0xFF), Some(_)) => match bytes.get(i + 2..i + 4) {
                Some(len) => i += 2 + usize::from(u16::from_be_bytes([len[0], len[1]])),
                None => return true,
            },
            // Not a marker where one must be: corrupt, left to the decoder to report.
            (Some(_), _) => return false,
            (None, _) => return true,
        }
    }
    !bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn describe(format: ImageFormat, e: image::ImageError) -> String {
    use image::ImageError as E;
    let text = match e {
        E::Limits(_) => format!("{format:?} image needs more memory than the decoder limit allows"),
        E::Unsupported(u) => format!("unsupported {format:?} variant: {u}"),
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => TRUNCATED.replace("{format}", &format!("{format:?}")),
        other => format!("corrupt {format:?} file: {other}"),
    };
    // Decoder messages sometimes span lines; ours are one line.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Resizes with a SIMD bilinear convolution (antialiased when shrinking):
/// about ten times faster than `image::imageops::resize` on a 1080p photo.
pub fn resize(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    use fast_image_resize::{images, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let (width, height) = (width.max(1), height.max(1));
    let fast = || -> Option<RgbImage> {
        let src = images::ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3).ok()?;
        let mut dst = images::Image::new(width, height, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new().resize(&src, &mut dst, &options).ok()?;
        RgbImage::from_raw(width, height, dst.into_vec())
    };
    fast().unwrap_or_else(|| image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle))
}

/// Converts any colour type to 8-bit RGB, compositing transparency over white.
fn to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, format).expect("encode");
        buf.into_inner()
    }

    #[test]
    fn grey_sixteen_bit_and_alpha_become_rgb8() {
        let grey16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(4, 3, image::Luma([65535u16])));
        let rgb = decode(&encode(&grey16, ImageFormat::Png), Path::new("g.png"), &ImageLimits::default()).unwrap();
        assert_eq!(rgb.dimensions(), (4, 3));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);

        let clear = DynamicImage::ImageRgba8(image::ImageBuffer::from_pixel(2, 2, image::Rgba([0, 0, 0, 0])));
        let rgb = decode(&encode(&clear, ImageFormat::Png), Path::new("a.png"), &ImageLimits::default()).unwrap();
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255], "transparent pixels composite over white");
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(200, 100));
        let limits = ImageLimits { max_pixels: 10_000, ..Default::default() };
        let err = decode(&encode(&img, ImageFormat::Png), Path::new("big.png"), &limits).unwrap_err();
        assert!(err.to_string().contains("200x100"), "{err}");
    }

    #[test]
    fn truncated_jpeg_and_png_are_refused() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 7])));
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let bytes = encode(&img, format);
            assert!(decode(&bytes, Path::new("whole"), &ImageLimits::default()).is_ok());
            let cut = &bytes[..bytes.len() * 3 / 4];
            let err = decode(cut, Path::new("cut"), &ImageLimits::default()).unwrap_err().to_string();
            assert!(err.contains("truncated"), "{format:?}: {err}");
        }
        // Data appended after the end marker (as some cameras do) is fine.
        let mut jpeg = encode(&img, ImageFormat::Jpeg);
        jpeg.extend_from_slice(b"appended trailer");
        assert!(decode(&jpeg, Path::new("trailer.jpg"), &ImageLimits::default()).is_ok());
    }

    #[test]
    fn non_image_and_empty_bytes_are_refused_with_the_file_name() {
        let err = decode(b"hello, world", Path::new("notes.jpg"), &ImageLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("notes.jpg: not an image"), "{err}");
        let err = decode(b"", Path::new("empty.png"), &ImageLimits::default()).unwrap_err();
        assert!(err.to_string().contains("empty file"), "{err}");
    }
}
