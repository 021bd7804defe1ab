//! Line charts as standalone SVG (ROC, DET, score histograms, CMC): linear or
//! logarithmic axes, several series, and marked thresholds. No dependencies,
//! so the reports stay self-contained files.

use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
pub const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// One axis: its range and whether it is logarithmic (base 10).
#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl Axis {
    pub fn linear(label: &str, min: f64, max: f64) -> Axis {
        Axis { label: label.into(), min, max, log: false }
    }

    pub fn log(label: &str, min: f64, max: f64) -> Axis {
        Axis { label: label.into(), min: min.max(1e-12), max, log: true }
    }

    /// Position of `v` from 0 (min) to 1 (max), clamped.
    fn fraction(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.min).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        };
        f.clamp(0.0, 1.0)
    }

    /// Tick values: each power of ten on a log axis, five steps on a linear one.
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (lo, hi) = (self.min.log10().ceil() as i32, self.max.log10().floor() as i32);
            (lo..=hi).map(|e| 10f64.powi(e)).collect()
        } else {
            (0..=5).map(|k| self.min + (self.max - self.min) * f64::from(k) / 5.0).collect()
        }
    }

    fn tick_label(&self, v: f64) -> String {
        if self.log {
            format!("1e{}", v.log10().round() as i32)
        } else if (self.max - self.min) >= 5.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    }
}

/// A named line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: axes, lines, and vertical marks (such as the chosen threshold).
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub marks: Vec<(f64, String)>,
}

impl Chart {
    pub fn new(title: &str, x: Axis, y: Axis) -> Chart {
        Chart { title: title.into(), x, y, series: Vec::new(), marks: Vec::new() }
    }

    pub fn line(mut self, name: &str, points: Vec<(f64, f64)>) -> Chart {
        self.series.push(Series { name: name.into(), points });
        self
    }

    pub fn mark(mut self, x: f64, label: &str) -> Chart {
        self.marks.push((x, label.into()));
        self
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + self.x.fraction(x) * (W - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - self.y.fraction(y) * (H - TOP - BOTTOM)
    }

    pub fn svg(&self) -> String {
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"{}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
            escape(&self.title)
        );
        let _ = writeln!(s, "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>", W / 2.0, escape(&self.title));
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        for t in self.x.ticks() {
            let px = self.px(t);
            let _ = writeln!(
                s,
                "<line x1=\"{px:.1}\" y1=\"{y0}\" x2=\"{px:.1}\" y2=\"{y1}\" stroke=\"#e5e5e5\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y1 + 16.0,
                self.x.tick_label(t)
            );
        }
        for t in self.y.ticks() {
            let py = self.py(t);
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{x1}\" y2=\"{py:.1}\" stroke=\"#e5e5e5\"/><text x=\"{}\" y=\"{py:.1}\" text-anchor=\"end\" dy=\"4\">{}</text>",
                x0 - 6.0,
                self.y.tick_label(t)
            );
        }
        let _ = writeln!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>", x1 - x0, y1 - y0);
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", (x0 + x1) / 2.0, H - 12.0, escape(&self.x.label));
        let mid = (y0 + y1) / 2.0;
        let _ = writeln!(s, "<text x=\"16\" y=\"{mid}\" transform=\"rotate(-90 16 {mid})\" text-anchor=\"middle\">{}</text>", escape(&self.y.label));
        for (x, label) in &self.marks {
            let px = self.px(*x);
            let _ = writeln!(
                s,
                "<line x1=\"{px:.1}\" y1=\"{y0}\" x2=\"{px:.1}\" y2=\"{y1}\" stroke=\"#333\" stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#333\">{}</text>",
                px + 4.0,
                y0 + 14.0,
                escape(label)
            );
        }
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let visible = series.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.x.log || *x > 0.0) && (!self.y.log || *y > 0.0));
            let points: Vec<String> = visible.map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y))).collect();
            let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>", points.join(" "));
            let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>", x0 + 10.0, y0 + 18.0 + 16.0 * i as f64, escape(&series.name));
        }
        s + "</svg>\n"
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_lines_ticks_and_marks() {
        let svg = Chart::new("ROC <test>", Axis::log("FMR", 1e-4, 1.0), Axis::linear("TAR", 0.8, 1.0))
            .line("model", vec![(1e-4, 0.9), (1e-2, 0.95), (1.0, 1.0), (0.0, 1.0)])
            .mark(1e-3, "threshold")
            .svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("ROC &lt;test&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(">1e-4<") && svg.contains(">1e0<") && svg.contains(">0.80<"));
        assert!(svg.contains("stroke-dasharray") && svg.contains(">threshold<"));
        // Three drawable points: the zero FMR cannot sit on a log axis.
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(line.matches(',').count(), 3);
    }
}
