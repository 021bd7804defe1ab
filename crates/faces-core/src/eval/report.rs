//! The figures of an evaluation report, as data (written as `report.json`
//! and drawn into `report.html` by the CLI): the calibration, a table of FMR
//! and FNMR by threshold, ROC and DET curves, score histograms, the worst
//! false matches and false non-matches, and, when there are any, the
//! held-out fold check, the bias breakdown and the identification results.

use serde::Serialize;

use super::calibrate::{bin_edge, Calibration, Comparison, HeldOut, ScoreSet, BINS};
use super::groups::AttributeReport;
use super::identification::Identification;
use super::plot::{Axis, Chart};

/// Worst pairs of each kind shown.
pub const WORST: usize = 12;
/// Bins of the drawn histograms (each joins several fine bins).
const HISTOGRAM_BINS: usize = 100;

/// One compared pair of samples, for the worst-pairs pages.
#[derive(Debug, Clone, Serialize)]
pub struct PairRecord {
    pub a: String,
    pub b: String,
    pub subject_a: String,
    pub subject_b: String,
    pub score: f32,
}

/// One row of the threshold table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub threshold: f32,
    pub fmr: f64,
    pub fnmr: f64,
}

/// Where the report's operating threshold came from.
#[derive(Debug, Clone, Serialize)]
pub struct Operating {
    pub threshold: f32,
    pub source: String,
    pub fmr: f64,
    pub fnmr: f64,
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub title: String,
    pub model: String,
    pub created: String,
    pub samples: usize,
    /// Samples without a usable face (left out, or scored -1 in a pairs protocol).
    pub without_face: usize,
    pub calibration: Calibration,
    pub operating: Operating,
    pub table: Vec<Row>,
    /// (FMR, TAR) points, thinned.
    pub roc: Vec<(f64, f64)>,
    /// (FMR, FNMR) points, thinned.
    pub det: Vec<(f64, f64)>,
    /// Lower edge of each histogram bin, and the fraction of each kind of pair in it.
    pub histogram_edges: Vec<f32>,
    pub genuine_histogram: Vec<f64>,
    pub impostor_histogram: Vec<f64>,
    pub worst_false_matches: Vec<PairRecord>,
    pub worst_false_non_matches: Vec<PairRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<AttributeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identification: Option<Identification>,
}

/// The parts of a report that the caller measures.
pub struct Inputs<'a> {
    pub title: String,
    pub model: String,
    pub scores: &'a ScoreSet,
    pub calibration: Calibration,
    /// The threshold decisions are made at, and where it came from.
    pub threshold: (f32, String),
    /// Each sample's path and subject.
    pub describe: &'a dyn Fn(u32) -> (String, String),
    pub samples: usize,
    pub without_face: usize,
    pub held_out: Option<HeldOut>,
    pub groups: Vec<AttributeReport>,
    pub identification: Option<Identification>,
}

pub fn build(inputs: Inputs<'_>) -> Report {
    let scores = inputs.scores;
    let (threshold, source) = inputs.threshold;
    let points = scores.operating_points();
    let mut table: Vec<Row> = (0..=18).map(|k| k as f32 * 0.05).chain([threshold]).map(|t| row(scores, t)).collect();
    table.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
    table.dedup_by(|a, b| a.threshold == b.threshold);
    let pair = |c: &Comparison| {
        let ((a, subject_a), (b, subject_b)) = ((inputs.describe)(c.a), (inputs.describe)(c.b));
        PairRecord { a, b, subject_a, subject_b, score: c.score }
    };
    let (edges, genuine, impostor) = histograms(scores);
    Report {
        title: inputs.title,
        model: inputs.model,
        created: crate::clock::now(),
        samples: inputs.samples,
        without_face: inputs.without_face,
        calibration: inputs.calibration,
        operating: Operating { threshold, source, fmr: scores.fmr(threshold), fnmr: scores.fnmr(threshold) },
        table,
        roc: thin(points.iter().map(|p| (p.1, 1.0 - p.2)).collect()),
        det: thin(points.iter().map(|p| (p.1, p.2)).collect()),
        histogram_edges: edges,
        genuine_histogram: genuine,
        impostor_histogram: impostor,
        worst_false_matches: scores.tail.iter().take_while(|c| c.score >= threshold).take(WORST).map(pair).collect(),
        worst_false_non_matches: scores.genuine.iter().take_while(|c| c.score < threshold).take(WORST).map(pair).collect(),
        held_out: inputs.held_out,
        groups: inputs.groups,
        identification: inputs.identification,
    }
}

fn row(scores: &ScoreSet, threshold: f32) -> Row {
    Row { threshold, fmr: scores.fmr(threshold), fnmr: scores.fnmr(threshold) }
}

/// Keeps points that move at least 0.2% of a decade or 0.1 percentage point.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut kept: Vec<(f64, f64)> = Vec::new();
    for p in points {
        let far = kept.last().is_none_or(|q| {
            let dx = if p.0 > 0.0 && q.0 > 0.0 { (p.0.log10() - q.0.log10()).abs() } else { f64::from(p.0 != q.0) };
            dx > 0.002 || (p.1 - q.1).abs() > 0.001
        });
        if far {
            kept.push(p);
        }
    }
    kept
}

fn histograms(scores: &ScoreSet) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let join = BINS / HISTOGRAM_BINS;
    let coarse = |fine: &[u64]| {
        let total = fine.iter().sum::<u64>().max(1) as f64;
        fine.chunks(join).map(|c| c.iter().sum::<u64>() as f64 / total).collect::<Vec<f64>>()
    };
    let edges = (0..HISTOGRAM_BINS).map(|i| bin_edge(i * join)).collect();
    (edges, coarse(&scores.genuine_histogram), coarse(&scores.impostor_histogram))
}

impl Report {
    /// The smallest FMR worth drawing: one impostor pair in all of them.
    fn fmr_floor(&self) -> f64 {
        let n = self.calibration.impostor_pairs.max(10) as f64;
        10f64.powf((1.0 / n).log10().floor())
    }

    pub fn roc_chart(&self) -> Chart {
        let lowest_tar = self.roc.iter().filter(|p| p.0 >= self.fmr_floor()).map(|p| p.1).fold(1.0, f64::min);
        let y_min = ((lowest_tar - 0.02).max(0.0) * 20.0).floor() / 20.0;
        Chart::new("ROC", Axis::log("false match rate", self.fmr_floor(), 1.0), Axis::linear("true match rate", y_min, 1.0))
            .line(&self.model, self.roc.clone())
            .mark(self.operating.fmr.max(self.fmr_floor()), &format!("threshold {:.3}", self.operating.threshold))
    }

    pub fn det_chart(&self) -> Chart {
        let floor = 1.0 / self.calibration.genuine_pairs.max(10) as f64;
        Chart::new("DET", Axis::log("false match rate", self.fmr_floor(), 1.0), Axis::log("false non-match rate", 10f64.powf(floor.log10().floor()), 1.0))
            .line(&self.model, self.det.clone())
            .mark(self.operating.fmr.max(self.fmr_floor()), &format!("threshold {:.3}", self.operating.threshold))
    }

    pub fn histogram_chart(&self) -> Chart {
        let step = |values: &[f64]| -> Vec<(f64, f64)> {
            let width = 2.0 / values.len() as f64;
            self.histogram_edges
                .iter()
                .zip(values)
                .flat_map(|(&e, &v)| [(f64::from(e), v), (f64::from(e) + width, v)])
                .collect()
        };
        let top = self.genuine_histogram.iter().chain(&self.impostor_histogram).copied().fold(0.0, f64::max);
        let lowest = self.histogram_edges.iter().zip(self.genuine_histogram.iter().zip(&self.impostor_histogram)).find(|(_, (g, i))| **g > 0.0 || **i > 0.0);
        let x_min = lowest.map_or(-1.0, |(e, _)| (f64::from(*e) * 10.0).floor() / 10.0);
        Chart::new("Score distributions", Axis::linear("similarity", x_min, 1.0), Axis::linear("fraction of pairs", 0.0, (top * 1.1).max(1e-3)))
            .line("genuine (same person)", step(&self.genuine_histogram))
            .line("impostor (different people)", step(&self.impostor_histogram))
            .mark(f64::from(self.operating.threshold), &format!("threshold {:.3}", self.operating.threshold))
    }

    pub fn cmc_chart(&self) -> Option<Chart> {
        let id = self.identification.as_ref()?;
        let lowest = id.cmc.first().copied().unwrap_or(0.0);
        let y_min = ((lowest - 0.02).max(0.0) * 20.0).floor() / 20.0;
        let points = id.cmc.iter().enumerate().map(|(r, &v)| ((r + 1) as f64, v)).collect();
        Some(Chart::new("CMC", Axis::linear("rank", 1.0, id.cmc.len() as f64), Axis::linear("identification rate", y_min, 1.0)).line(&self.model, points))
    }
}
