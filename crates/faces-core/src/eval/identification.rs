//! Comparing the samples of a labelled data set, and the open-set
//! identification protocol on it.
//!
//! [`all_pairs`] scores every pair of embedded samples in parallel (genuine
//! when both are the same subject). [`identification`] enrols each subject's
//! first sample, probes with the rest (mated probes), and probes with every
//! subject that has a single sample (non-mated probes, who must come back
//! unknown): rank-1 accuracy, the CMC curve, and the false-negative
//! identification rate (FNIR) at fixed false-positive identification rates
//! (FPIR), as in NIST's FRVT identification reports.

use rayon::prelude::*;
use serde::Serialize;

use super::calibrate::Comparison;

/// Embedded samples of a data set: unit-length rows of one matrix, each with its subject index.
#[derive(Debug, Clone)]
pub struct Samples {
    pub dim: usize,
    /// `dim` values per sample.
    pub matrix: Vec<f32>,
    pub subject_of: Vec<u32>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.subject_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subject_of.is_empty()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.matrix[i * self.dim..(i + 1) * self.dim]
    }

    fn similarity(&self, i: usize, j: usize) -> f32 {
        dot(self.row(i), self.row(j))
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums so the loop vectorises.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Folds every pair (i < j) of samples in parallel: `add` sees each
/// comparison on some worker's accumulator, `merge` joins them.
pub fn all_pairs<A: Send>(
    samples: &Samples,
    init: impl Fn() -> A + Sync + Send,
    add: impl Fn(&mut A, Comparison) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
) -> A {
    let n = samples.len();
    (0..n)
        .into_par_iter()
        .fold(&init, |mut acc, i| {
            for j in i + 1..n {
                let same = samples.subject_of[i] == samples.subject_of[j];
                add(&mut acc, Comparison { score: samples.similarity(i, j), same, a: i as u32, b: j as u32 });
            }
            acc
        })
        .reduce(&init, &merge)
}

/// Ranks of the CMC curve.
pub const CMC_RANKS: usize = 20;
/// FPIRs at which FNIR is reported.
pub const FPIRS: [f64; 3] = [0.001, 0.01, 0.1];

/// FNIR at one FPIR.
#[derive(Debug, Clone, Serialize)]
pub struct FnirAt {
    pub fpir: f64,
    pub threshold: f32,
    pub fnir: f64,
}

/// The outcome of the identification protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    pub enrolled_subjects: usize,
    pub mated_probes: usize,
    pub non_mated_probes: usize,
    pub rank1: f64,
    /// Fraction of mated probes whose subject is within the top r, r = 1..=20.
    pub cmc: Vec<f64>,
    /// Empty when there are no non-mated probes.
    pub fnir_at_fpir: Vec<FnirAt>,
    /// At the report's threshold: FPIR (non-mated probes given a name) and
    /// FNIR (mated probes not given their own name).
    pub threshold: f32,
    pub fpir: f64,
    pub fnir: f64,
}

/// Runs the protocol: samples in data-set order; each subject's first is enrolled.
pub fn identification(samples: &Samples, threshold: f32) -> Identification {
    let subjects = samples.subject_of.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
    let mut count = vec![0usize; subjects];
    for &s in &samples.subject_of {
        count[s as usize] += 1;
    }
    let mut enrolled_of = vec![usize::MAX; subjects];
    let mut gallery = Vec::new();
    for (i, &s) in samples.subject_of.iter().enumerate() {
        if count[s as usize] >= 2 && enrolled_of[s as usize] == usize::MAX {
            enrolled_of[s as usize] = i;
            gallery.push(i);
        }
    }
    let probes: Vec<usize> = (0..samples.len()).filter(|&i| enrolled_of[samples.subject_of[i] as usize] != i).collect();
    // Per probe: the best score, whether it is the probe's own subject, and the own subject's rank.
    let results: Vec<(f32, bool, Option<usize>, bool)> = probes
        .par_iter()
        .map(|&p| {
            let own = samples.subject_of[p];
            let scores: Vec<(f32, u32)> = gallery.iter().map(|&g| (samples.similarity(p, g), samples.subject_of[g])).collect();
            let best = scores.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0));
            let mated = count[own as usize] >= 2;
            let rank = mated.then(|| {
                let own_score = scores.iter().find(|s| s.1 == own).map_or(f32::NEG_INFINITY, |s| s.0);
                scores.iter().filter(|s| s.0 > own_score).count()
            });
            let (top, top_is_own) = best.map_or((f32::NEG_INFINITY, false), |b| (b.0, b.1 == own));
            (top, top_is_own, rank, mated)
        })
        .collect();
    let mated: Vec<&(f32, bool, Option<usize>, bool)> = results.iter().filter(|r| r.3).collect();
    let mut non_mated: Vec<f32> = results.iter().filter(|r| !r.3).map(|r| r.0).collect();
    non_mated.sort_by(|a, b| b.total_cmp(a));
    let m = mated.len().max(1) as f64;
    let cmc: Vec<f64> = (0..CMC_RANKS).map(|r| mated.iter().filter(|x| x.2.is_some_and(|rank| rank <= r)).count() as f64 / m).collect();
    // A mated probe is missed unless its own subject is the best candidate at or above the threshold.
    let fnir_at = |t: f32| mated.iter().filter(|x| !(x.1 && x.0 >= t)).count() as f64 / m;
    let fpir_at = |t: f32| non_mated.iter().filter(|&&s| s >= t).count() as f64 / non_mated.len().max(1) as f64;
    let fnir_at_fpir = if non_mated.is_empty() {
        Vec::new()
    } else {
        FPIRS
            .iter()
            .map(|&fpir| {
                let allowed = (fpir * non_mated.len() as f64).floor() as usize;
                let threshold = non_mated.get(allowed).map_or(f32::NEG_INFINITY, |&s| super::calibrate::next_up(s));
                FnirAt { fpir, threshold, fnir: fnir_at(threshold) }
            })
            .collect()
    };
    Identification {
        enrolled_subjects: gallery.len(),
        mated_probes: mated.len(),
        non_mated_probes: non_mated.len(),
        rank1: cmc.first().copied().unwrap_or(0.0),
        cmc,
        fnir_at_fpir,
        threshold,
        fpir: if non_mated.is_empty() { f64::NAN } else { fpir_at(threshold) },
        fnir: fnir_at(threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: [f32; 2]) -> [f32; 2] {
        let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
        [v[0] / n, v[1] / n]
    }

    #[test]
    fn every_pair_once_and_the_protocol_on_a_toy_set() {
        // Subjects 0 and 1 have two samples each; subject 2 one (a non-mated probe).
        let rows = [unit([1.0, 0.0]), unit([0.0, 1.0]), unit([0.95, 0.1]), unit([0.2, 1.0]), unit([0.7, 0.7])];
        let samples = Samples { dim: 2, matrix: rows.iter().flatten().copied().collect(), subject_of: vec![0, 1, 0, 1, 2] };
        let pairs: Vec<Comparison> = all_pairs(&samples, Vec::new, |v, c| v.push(c), |mut a, b| {
            a.extend(b);
            a
        });
        assert_eq!(pairs.len(), 10);
        assert_eq!(pairs.iter().filter(|c| c.same).count(), 2);
        let id = identification(&samples, 0.9);
        assert_eq!((id.enrolled_subjects, id.mated_probes, id.non_mated_probes), (2, 2, 1));
        assert_eq!(id.rank1, 1.0);
        // The stranger's best similarity is ~0.71 < 0.9: no false positive.
        assert_eq!((id.fpir, id.fnir), (0.0, 0.0));
        assert_eq!(id.fnir_at_fpir.len(), 3);
    }
}
