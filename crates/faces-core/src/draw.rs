//! Annotated copies of photos: face boxes, landmarks and name labels drawn in place.

use font8x8::{UnicodeFonts, BASIC_FONTS, LATIN_FONTS};
use image::{Rgb, RgbImage};

use crate::{BBox, Face};

const BOX: Rgb<u8> = Rgb([0, 220, 0]);
const LANDMARK_COLOURS: [Rgb<u8>; 5] =
    [Rgb([255, 40, 40]), Rgb([255, 220, 0]), Rgb([255, 0, 255]), Rgb([0, 160, 255]), Rgb([0, 255, 255])];

/// Draws every face's box and its five landmarks onto the image.
pub fn faces(image: &mut RgbImage, faces: &[Face]) {
    let thickness = line_width(image);
    for face in faces {
        rectangle(image, &face.bbox, thickness, BOX);
        let radius = (face.bbox.width / 30.0).max(thickness as f32);
        for (p, colour) in face.landmarks.points().iter().zip(LANDMARK_COLOURS) {
            disc(image, p.x, p.y, radius, colour);
        }
    }
}

/// Box line width for this image's size.
pub fn line_width(image: &RgbImage) -> u32 {
    (image.width().max(image.height()) / 400).max(2)
}

/// A text label on a filled background just above `b` (inside it when there
/// is no room above), in an 8x8 pixel font scaled to the image. Characters
/// outside Latin-1 are drawn as `?`.
pub fn label(image: &mut RgbImage, b: &BBox, text: &str, background: Rgb<u8>) {
    let scale = i64::from((image.width().max(image.height()) / 500).clamp(1, 6));
    let glyph = 8 * scale;
    let (pad, chars) = (scale, text.chars().count() as i64);
    let (w, h) = (chars * glyph + 2 * pad, glyph + 2 * pad);
    let x0 = (b.x.round() as i64).min(i64::from(image.width()) - w).max(0);
    let above = b.y.round() as i64 - h;
    let y0 = if above >= 0 { above } else { b.y.round().max(0.0) as i64 };
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            put(image, x, y, background);
        }
    }
    let ink = if luminance(background) > 140.0 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) };
    for (i, c) in (0_i64..).zip(text.chars()) {
        let rows = BASIC_FONTS.get(c).or_else(|| LATIN_FONTS.get(c)).or_else(|| BASIC_FONTS.get('?')).unwrap_or([0; 8]);
        for (row, bits) in (0_i64..).zip(rows) {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let (gx, gy) = (x0 + pad + i * glyph + col * scale, y0 + pad + row * scale);
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(image, gx + dx, gy + dy, ink);
                        }
                    }
                }
            }
        }
    }
}

fn luminance(c: Rgb<u8>) -> f32 {
    0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2])
}

/// A hollow rectangle whose lines grow inwards from the box edge.
pub fn rectangle(image: &mut RgbImage, b: &BBox, thickness: u32, colour: Rgb<u8>) {
    let (x0, y0) = (b.x.round() as i64, b.y.round() as i64);
    let (x1, y1) = (b.right().round() as i64 - 1, b.bottom().round() as i64 - 1);
    for t in 0..i64::from(thickness) {
        for x in x0..=x1 {
            put(image, x, y0 + t, colour);
            put(image, x, y1 - t, colour);
        }
        for y in y0..=y1 {
            put(image, x0 + t, y, colour);
            put(image, x1 - t, y, colour);
        }
    }
}

/// A filled disc centred on (cx, cy).
pub fn disc(image: &mut RgbImage, cx: f32, cy: f32, radius: f32, colour: Rgb<u8>) {
    let r = radius.ceil() as i64;
    let (cx_i, cy_i) = (cx.round() as i64, cy.round() as i64);
    for dy in -r..=r {
        for dx in -r..=r {
            if ((dx * dx + dy * dy) as f32) <= radius * radius {
                put(image, cx_i + dx, cy_i + dy, colour);
            }
        }
    }
}

fn put(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < u64::from(image.width()) && (y as u64) < u64::from(image.height()) {
        image.put_pixel(x as u32, y as u32, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangle_outline_is_drawn_and_clipped() {
        let mut img = RgbImage::new(20, 20);
        rectangle(&mut img, &BBox { x: 5.0, y: 5.0, width: 30.0, height: 10.0 }, 1, BOX);
        assert_eq!(*img.get_pixel(5, 5), BOX);
        assert_eq!(*img.get_pixel(5, 14), BOX);
        assert_eq!(*img.get_pixel(10, 10), Rgb([0, 0, 0]), "inside stays untouched");
    }

    #[test]
    fn label_draws_ink_on_its_background_above_the_box() {
        let mut img = RgbImage::new(100, 60);
        let b = BBox { x: 10.0, y: 30.0, width: 40.0, height: 20.0 };
        label(&mut img, &b, "Hi", BOX);
        let region: Vec<Rgb<u8>> = (20..30).flat_map(|y| (10..30).map(move |x| (x, y))).map(|(x, y)| *img.get_pixel(x, y)).collect();
        assert!(region.contains(&BOX) && region.contains(&Rgb([0, 0, 0])), "background and dark ink");
        assert_eq!(*img.get_pixel(10, 35), Rgb([0, 0, 0]), "box interior untouched");
        label(&mut img, &BBox { y: 0.0, ..b }, "Zoë 名", BOX);
    }
}
