//! Helpers shared by the self-contained HTML reports (`faces clean`,
//! `faces calibrate` / `faces report`): escaping, base64 data URIs, and small
//! JPEG thumbnails of photos and faces.

use std::path::Path;

use faces_core::image::{self, ImageLimits};
use faces_core::BBox;

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for k in 0..4 {
            let c = if k <= chunk.len() { ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char } else { '=' };
            out.push(c);
        }
    }
    out
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JPEG (quality 80) as base64, for a `data:image/jpeg;base64,` URI.
pub fn jpeg_base64(image: &::image::RgbImage) -> Option<String> {
    let mut jpeg = Vec::new();
    ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(image).ok()?;
    Some(base64(&jpeg))
}

/// The face in `bbox` with a quarter of its size around it, `side` pixels
/// high, as base64 JPEG; `None` when the photo cannot be read.
pub fn face_thumbnail(path: &Path, bbox: &BBox, side: u32, limits: &ImageLimits) -> Option<String> {
    let photo = image::load(path, limits).ok()?;
    let (w, h) = (photo.width() as f32, photo.height() as f32);
    let size = bbox.width.max(bbox.height) * 1.5;
    let (cx, cy) = (bbox.x + bbox.width / 2.0, bbox.y + bbox.height / 2.0);
    let x0 = (cx - size / 2.0).clamp(0.0, (w - 1.0).max(0.0));
    let y0 = (cy - size / 2.0).clamp(0.0, (h - 1.0).max(0.0));
    let (cw, ch) = ((size.min(w - x0)).max(1.0), (size.min(h - y0)).max(1.0));
    let crop = ::image::imageops::crop_imm(&photo, x0 as u32, y0 as u32, cw as u32, ch as u32).to_image();
    let scale = side as f32 / crop.height().max(1) as f32;
    let small = image::resize(&crop, ((crop.width() as f32 * scale).round() as u32).max(1), side);
    jpeg_base64(&small)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(escape("<b>Tom & \"Jerry\"'s</b>"), "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&#39;s&lt;/b&gt;");
    }
}
