//! The named types that cross stage boundaries: a detected [`Face`] with its
//! box, five landmarks and detector score.

use serde::{Deserialize, Serialize};

/// A point in image pixel coordinates (origin at the top-left corner).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in pixel coordinates: `x`, `y` of the top-left corner, then size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x: x1, y: y1, width: (x2 - x1).max(0.0), height: (y2 - y1).max(0.0) }
    }

    pub fn right(&self) -> f32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.height
    }

    pub fn area(&self) -> f32 {
        self.width * self.height
    }

    /// Intersection over union with another box, in [0, 1].
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = (self.right().min(other.right()) - self.x.max(other.x)).max(0.0);
        let h = (self.bottom().min(other.bottom()) - self.y.max(other.y)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The box clipped to an image of the given size.
    pub fn clip(&self, width: u32, height: u32) -> BBox {
        let (w, h) = (width as f32, height as f32);
        BBox::from_corners(
            self.x.clamp(0.0, w),
            self.y.clamp(0.0, h),
            self.right().clamp(0.0, w),
            self.bottom().clamp(0.0, h),
        )
    }

    pub fn scaled(&self, factor: f32) -> BBox {
        BBox { x: self.x * factor, y: self.y * factor, width: self.width * factor, height: self.height * factor }
    }
}

/// The five facial landmarks, named from the subject's point of view (the
/// subject's right eye appears on the left of the photo).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Landmarks {
    pub right_eye: Point,
    pub left_eye: Point,
    pub nose: Point,
    pub mouth_right: Point,
    pub mouth_left: Point,
}

impl Landmarks {
    pub fn points(&self) -> [Point; 5] {
        [self.right_eye, self.left_eye, self.nose, self.mouth_right, self.mouth_left]
    }

    pub fn from_points(p: [Point; 5]) -> Self {
        Landmarks { right_eye: p[0], left_eye: p[1], nose: p[2], mouth_right: p[3], mouth_left: p[4] }
    }

    pub fn scaled(&self, factor: f32) -> Landmarks {
        Landmarks::from_points(self.points().map(|p| Point { x: p.x * factor, y: p.y * factor }))
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub landmarks: Landmarks,
    /// Detector confidence in [0, 1].
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox { x: 20.0, ..a }), 0.0);
        let half = BBox { x: 5.0, ..a };
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn clip_keeps_box_inside_image() {
        let b = BBox { x: -5.0, y: 90.0, width: 20.0, height: 20.0 }.clip(100, 100);
        assert_eq!((b.x, b.y, b.right(), b.bottom()), (0.0, 90.0, 15.0, 100.0));
    }
}
