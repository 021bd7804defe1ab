//! Annotated copies of photos: face boxes and landmarks drawn in place.

use image::{Rgb, RgbImage};

use crate::{BBox, Face};

const BOX: Rgb<u8> = Rgb([0, 220, 0]);
const LANDMARK_COLOURS: [Rgb<u8>; 5] =
    [Rgb([255, 40, 40]), Rgb([255, 220, 0]), Rgb([255, 0, 255]), Rgb([0, 160, 255]), Rgb([0, 255, 255])];

/// Draws every face's box and its five landmarks onto the image.
pub fn faces(image: &mut RgbImage, faces: &[Face]) {
    let thickness = (image.width().max(image.height()) / 400).max(2);
    for face in faces {
        rectangle(image, &face.bbox, thickness, BOX);
        let radius = (face.bbox.width / 30.0).max(thickness as f32);
        for (p, colour) in face.landmarks.points().iter().zip(LANDMARK_COLOURS) {
            disc(image, p.x, p.y, radius, colour);
        }
    }
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
}
