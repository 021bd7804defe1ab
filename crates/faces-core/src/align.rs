//! Alignment: a similarity transform fitted by least squares from a face's
//! five landmarks onto a recogniser's template, and a bilinear warp that cuts
//! the aligned crop out of the photo.

use image::RgbImage;

use crate::{Landmarks, Point};

/// A 2-D similarity transform: `q = [a -b; b a] p + t` (rotation, uniform scale, shift).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity mapping `from[i]` onto `to[i]` (Umeyama, without reflection).
    pub fn fit(from: &[Point], to: &[Point]) -> Similarity {
        let n = from.len().min(to.len()).max(1) as f32;
        let mean = |ps: &[Point]| {
            let (x, y) = ps.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
            Point { x: x / n, y: y / n }
        };
        let (pm, qm) = (mean(from), mean(to));
        let (mut dot, mut cross, mut norm) = (0.0f32, 0.0f32, 0.0f32);
        for (p, q) in from.iter().zip(to) {
            let (px, py, qx, qy) = (p.x - pm.x, p.y - pm.y, q.x - qm.x, q.y - qm.y);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        let (a, b) = if norm > 0.0 { (dot / norm, cross / norm) } else { (1.0, 0.0) };
        Similarity { a, b, tx: qm.x - (a * pm.x - b * pm.y), ty: qm.y - (b * pm.x + a * pm.y) }
    }

    pub fn apply(&self, p: Point) -> Point {
        Point { x: self.a * p.x - self.b * p.y + self.tx, y: self.b * p.x + self.a * p.y + self.ty }
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = if d > 0.0 { (self.a / d, -self.b / d) } else { (1.0, 0.0) };
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }
}

/// Warps the face into a `width` x `height` crop so its landmarks land on `template`.
/// Pixels outside the photo are black.
pub fn crop(image: &RgbImage, landmarks: &Landmarks, template: &[Point; 5], width: u32, height: u32) -> RgbImage {
    let to_crop = Similarity::fit(&landmarks.points(), template);
    warp(image, &to_crop, width, height)
}

/// Samples `image` through the inverse of `to_crop` (bilinear), pixel centres at integers.
pub fn warp(image: &RgbImage, to_crop: &Similarity, width: u32, height: u32) -> RgbImage {
    let back = to_crop.inverse();
    let (w, h) = (image.width() as i64, image.height() as i64);
    let raw = image.as_raw();
    let mut out = RgbImage::new(width, height);
    for (u, v, px) in out.enumerate_pixels_mut() {
        let p = back.apply(Point { x: u as f32, y: v as f32 });
        let (x0, y0) = (p.x.floor(), p.y.floor());
        let (fx, fy) = (p.x - x0, p.y - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let mut acc = [0.0f32; 3];
        for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
            for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                let (x, y) = (x0 + dx, y0 + dy);
                if x < 0 || y < 0 || x >= w || y >= h {
                    continue;
                }
                let i = ((y * w + x) * 3) as usize;
                let weight = wx * wy;
                for c in 0..3 {
                    acc[c] += weight * f32::from(raw[i + c]);
                }
            }
        }
        px.0 = acc.map(|v| v.round().clamp(0.0, 255.0) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn fit_recovers_a_known_similarity_exactly() {
        let truth = Similarity { a: 0.8, b: 0.3, tx: 5.0, ty: -2.0 };
        let from = [pt(0.0, 0.0), pt(10.0, 0.0), pt(5.0, 7.0), pt(1.0, 12.0), pt(9.0, 12.0)];
        let to: Vec<Point> = from.iter().map(|&p| truth.apply(p)).collect();
        let fit = Similarity::fit(&from, &to);
        for (got, want) in [(fit.a, truth.a), (fit.b, truth.b), (fit.tx, truth.tx), (fit.ty, truth.ty)] {
            assert!((got - want).abs() < 1e-4, "{fit:?}");
        }
        let round_trip = fit.inverse().apply(fit.apply(pt(3.0, 4.0)));
        assert!((round_trip.x - 3.0).abs() < 1e-4 && (round_trip.y - 4.0).abs() < 1e-4);
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 10, y as u8 * 10, 3]));
        let out = warp(&img, &Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 }, 8, 6);
        assert_eq!(out, img);
        let shifted = warp(&img, &Similarity { a: 1.0, b: 0.0, tx: -1.0, ty: 0.0 }, 8, 6);
        assert_eq!(shifted.get_pixel(0, 0), img.get_pixel(1, 0));
        assert_eq!(shifted.get_pixel(7, 0).0, [0, 0, 0], "outside the photo is black");
    }
}
