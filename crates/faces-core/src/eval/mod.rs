//! Measuring recognition: the LFW pairs protocol (10 folds, the threshold
//! chosen on nine and tested on the tenth), true-accept rate at a fixed
//! false-accept rate and ROC curves (here); thresholds from a target
//! false-match rate with bootstrap intervals ([`calibrate`]); error rates by
//! user-labelled group ([`groups`]); open-set identification on a data set
//! ([`identification`]); and the figures of an evaluation report ([`report`],
//! drawn with [`plot`]).

pub mod calibrate;
pub mod groups;
pub mod identification;
pub mod plot;
pub mod report;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

/// One labelled pair of images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub same: bool,
    pub fold: usize,
}

/// Reads an LFW pairs file (`pairs.txt`: a `folds n` header, then per fold n
/// matched lines `name i j` and n mismatched lines `name1 i name2 j`;
/// `pairsDevTrain.txt` / `pairsDevTest.txt`: an `n` header and one fold).
/// `images` is the folder holding one sub-folder per person.
pub fn read_lfw_pairs(file: &Path, images: &Path) -> Result<Vec<Pair>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let bad = |line: usize, why: &str| Error::Invalid(format!("{}:{line}: {why}", file.display()));
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(1, "empty pairs file"))?;
    let numbers: Vec<usize> = header.split_whitespace().map(str::parse).collect::<std::result::Result<_, _>>().map_err(|_| bad(1, "header must be `folds pairs` or `pairs`"))?;
    let (folds, per_half) = match numbers[..] {
        [n] => (1, n),
        [f, n] => (f, n),
        _ => return Err(bad(1, "header must be `folds pairs` or `pairs`")),
    };
    let path = |name: &str, i: &str, line: usize| -> Result<PathBuf> {
        let i: u32 = i.parse().map_err(|_| bad(line, "image number is not a number"))?;
        Ok(images.join(name).join(format!("{name}_{i:04}.jpg")))
    };
    let mut pairs = Vec::with_capacity(folds * per_half * 2);
    for (index, (n, line)) in lines.enumerate() {
        let fold = index / (2 * per_half);
        let f: Vec<&str> = line.split_whitespace().collect();
        let pair = match f[..] {
            [name, i, j] => Pair { a: path(name, i, n + 1)?, b: path(name, j, n + 1)?, same: true, fold },
            [n1, i, n2, j] => Pair { a: path(n1, i, n + 1)?, b: path(n2, j, n + 1)?, same: false, fold },
            _ => return Err(bad(n + 1, "expected `name i j` or `name1 i name2 j`")),
        };
        pairs.push(pair);
    }
    if pairs.len() != folds * per_half * 2 {
        return Err(bad(0, &format!("header promises {} pairs, file has {}", folds * per_half * 2, pairs.len())));
    }
    Ok(pairs)
}

/// Accuracy of the threshold chosen on the other folds, for one fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    pub fold: usize,
    pub threshold: f32,
    pub accuracy: f64,
}

/// The outcome of the pairs protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub folds: Vec<FoldResult>,
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
    /// True-accept rate at a false-accept rate of 1e-3 over all pairs, and its threshold.
    pub tar_at_far_1e3: f64,
    pub threshold_at_far_1e3: f32,
    pub auc: f64,
    /// Each pair's score as the protocol used it (for a fusion: from the model fitted without its fold).
    #[serde(skip)]
    pub scores: Vec<f32>,
}

/// Runs the k-fold protocol on similarity scores (higher = more alike).
pub fn cross_validate(scores: &[f32], pairs: &[Pair]) -> Verification {
    k_fold(pairs, |_| Box::new(|i| scores[i]))
}

/// The k-fold protocol for a score fusion: for each fold a logistic regression
/// over the models' scores is fitted on the other folds, then the threshold.
/// `scores[m][i]` is model m's score for pair i.
pub fn cross_validate_fusion(scores: &[Vec<f32>], pairs: &[Pair]) -> Verification {
    k_fold(pairs, |train| {
        let fusion = Fusion::fit(scores, train, pairs);
        let columns: Vec<Vec<f32>> = scores.to_vec();
        Box::new(move |i| fusion.score(&columns.iter().map(|c| c[i]).collect::<Vec<_>>()))
    })
}

/// For each fold: `fit` sees the training pairs and returns a scorer; the
/// threshold is chosen on the training pairs and tested on the fold. TAR at
/// FAR and AUC use the out-of-fold scores of every pair.
fn k_fold<'a>(pairs: &[Pair], fit: impl Fn(&[usize]) -> Box<dyn Fn(usize) -> f32 + 'a>) -> Verification {
    let folds = pairs.iter().map(|p| p.fold).max().map_or(0, |f| f + 1);
    let mut results = Vec::new();
    let mut out_of_fold = vec![0.0f32; pairs.len()];
    for fold in 0..folds {
        let (train, test): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&i| pairs[i].fold != fold);
        // One fold (View 1 files): choose and test on the same pairs.
        let train = if train.is_empty() { test.clone() } else { train };
        let score = fit(&train);
        let pick = |idx: &[usize]| idx.iter().map(|&i| (score(i), pairs[i].same)).collect::<Vec<_>>();
        let threshold = best_threshold(&pick(&train));
        for &i in &test {
            out_of_fold[i] = score(i);
        }
        results.push(FoldResult { fold, threshold, accuracy: accuracy(&pick(&test), threshold) });
    }
    let n = results.len().max(1) as f64;
    let mean = results.iter().map(|r| r.accuracy).sum::<f64>() / n;
    let var = results.iter().map(|r| (r.accuracy - mean).powi(2)).sum::<f64>() / n;
    let all: Vec<(f32, bool)> = out_of_fold.iter().copied().zip(pairs.iter().map(|p| p.same)).collect();
    let (tar, threshold) = tar_at_far(&all, 1e-3);
    Verification {
        folds: results,
        mean_accuracy: mean,
        std_accuracy: var.sqrt(),
        tar_at_far_1e3: tar,
        threshold_at_far_1e3: threshold,
        auc: auc(&all),
        scores: out_of_fold,
    }
}

/// A logistic-regression fusion of several models' similarities:
/// `score = bias + sum(weights[m] * similarity[m])`, the log-odds of "same person".
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fusion {
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl Fusion {
    /// Fits by Newton's method (a small ridge keeps it stable on separable data).
    pub fn fit(scores: &[Vec<f32>], rows: &[usize], pairs: &[Pair]) -> Fusion {
        let k = scores.len() + 1;
        let features = |i: usize| -> Vec<f64> { std::iter::once(1.0).chain(scores.iter().map(|c| f64::from(c[i]))).collect() };
        let mut beta = vec![0.0f64; k];
        for _ in 0..25 {
            let mut gradient = vec![0.0f64; k];
            let mut hessian = vec![vec![0.0f64; k]; k];
            for &i in rows {
                let x = features(i);
                let p = 1.0 / (1.0 + (-dot(&beta, &x)).exp());
                let y = if pairs[i].same { 1.0 } else { 0.0 };
                for a in 0..k {
                    gradient[a] += (p - y) * x[a];
                    for b in 0..k {
                        hessian[a][b] += p * (1.0 - p) * x[a] * x[b];
                    }
                }
            }
            for a in 1..k {
                gradient[a] += 1e-3 * beta[a];
                hessian[a][a] += 1e-3;
            }
            let Some(step) = solve(hessian, gradient) else { break };
            beta.iter_mut().zip(&step).for_each(|(b, s)| *b -= s);
            if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-9 {
                break;
            }
        }
        Fusion { bias: beta[0], weights: beta[1..].to_vec() }
    }

    pub fn score(&self, similarities: &[f32]) -> f32 {
        (self.bias + self.weights.iter().zip(similarities).map(|(w, s)| w * f64::from(*s)).sum::<f64>()) as f32
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (offset, r) in rest.iter_mut().enumerate() {
            let f = r[col] / pivot_row[col];
            r.iter_mut().zip(pivot_row).skip(col).for_each(|(x, p)| *x -= f * p);
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        x[row] = (b[row] - (row + 1..n).map(|c| a[row][c] * x[c]).sum::<f64>()) / a[row][row];
    }
    Some(x)
}

/// Fraction of pairs decided correctly when "same" means score >= threshold.
pub fn accuracy(scored: &[(f32, bool)], threshold: f32) -> f64 {
    let right = scored.iter().filter(|&&(s, same)| (s >= threshold) == same).count();
    right as f64 / scored.len().max(1) as f64
}

/// The threshold with the best accuracy: midway between two adjacent scores.
pub fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold below everything: all called "same".
    let mut correct = sorted.iter().filter(|s| s.1).count() as i64;
    let (mut best, mut best_threshold) = (correct, sorted.first().map_or(0.0, |s| s.0 - 1e-3));
    for i in 0..sorted.len() {
        // Moving the threshold above sorted[i] calls it "different".
        correct += if sorted[i].1 { -1 } else { 1 };
        let next = sorted.get(i + 1).map_or(sorted[i].0 + 1e-3, |s| s.0);
        if correct > best && next > sorted[i].0 {
            best = correct;
            best_threshold = (sorted[i].0 + next) / 2.0;
        }
    }
    best_threshold
}

/// True-accept rate at the lowest threshold whose false-accept rate is at most `far`.
pub fn tar_at_far(scored: &[(f32, bool)], far: f64) -> (f64, f32) {
    let mut impostors: Vec<f32> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    impostors.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * impostors.len() as f64).floor() as usize;
    // Accept strictly above the (allowed+1)-th highest impostor score.
    let threshold = impostors.get(allowed).map_or(f32::NEG_INFINITY, |&s| calibrate::next_up(s));
    let genuine: Vec<f32> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let accepted = genuine.iter().filter(|&&s| s >= threshold).count();
    (accepted as f64 / genuine.len().max(1) as f64, threshold)
}

/// ROC points (false-accept rate, true-accept rate), one per distinct threshold.
pub fn roc(scored: &[(f32, bool)]) -> Vec<(f64, f64)> {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = sorted.iter().filter(|s| s.1).count().max(1) as f64;
    let negatives = sorted.iter().filter(|s| !s.1).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    for (i, s) in sorted.iter().enumerate() {
        if s.1 {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if sorted.get(i + 1).is_none_or(|n| n.0 != s.0) {
            points.push((fp / negatives, tp / positives));
        }
    }
    points
}

/// Area under the ROC curve.
pub fn auc(scored: &[(f32, bool)]) -> f64 {
    roc(scored).windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum()
}

/// An SVG plot of ROC curves with a logarithmic false-accept axis (1e-4 .. 1).
pub fn roc_svg(curves: &[(String, Vec<(f64, f64)>)]) -> String {
    let mut chart = plot::Chart::new("ROC, LFW", plot::Axis::log("false accept rate", 1e-4, 1.0), plot::Axis::linear("true accept rate", 0.8, 1.0));
    for (name, points) in curves {
        chart = chart.line(name, points.clone());
    }
    chart.svg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_separable_scores() {
        let scored = [(0.1, false), (0.2, false), (0.7, true), (0.9, true)];
        let t = best_threshold(&scored);
        assert!(t > 0.2 && t < 0.7, "{t}");
        assert_eq!(accuracy(&scored, t), 1.0);
    }

    #[test]
    fn tar_at_far_allows_exactly_the_permitted_false_accepts() {
        let mut scored: Vec<(f32, bool)> = (0..1000).map(|i| (i as f32 / 1000.0, false)).collect();
        scored.extend([(0.9995, true), (0.5, true)]);
        let (tar, threshold) = tar_at_far(&scored, 1e-3);
        assert!(threshold > 0.998 && threshold <= 0.999 + 1e-6, "{threshold}");
        assert_eq!(tar, 0.5);
    }

    #[test]
    fn auc_of_perfect_and_random_scores() {
        assert!((auc(&[(0.9, true), (0.1, false)]) - 1.0).abs() < 1e-9);
        assert!((auc(&[(0.5, true), (0.5, false)]) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn fusion_learns_to_trust_the_informative_model() {
        let pairs: Vec<Pair> = (0..200)
            .map(|i| Pair { a: PathBuf::new(), b: PathBuf::new(), same: i % 2 == 0, fold: i % 10 })
            .collect();
        // Model 0 separates the classes with some overlap; model 1 is noise.
        let good: Vec<f32> = (0..200).map(|i| if i % 2 == 0 { 0.6 } else { 0.2 } + ((i * 37) % 11) as f32 * 0.03).collect();
        let noise: Vec<f32> = (0..200).map(|i| ((i * 53) % 17) as f32 / 17.0).collect();
        let rows: Vec<usize> = (0..200).collect();
        let fusion = Fusion::fit(&[good.clone(), noise.clone()], &rows, &pairs);
        assert!(fusion.weights[0] > 5.0 * fusion.weights[1].abs(), "{fusion:?}");
        let fused = cross_validate_fusion(&[good.clone(), noise], &pairs);
        assert!(fused.mean_accuracy >= cross_validate(&good, &pairs).mean_accuracy - 0.02);
    }

    #[test]
    fn reads_both_lfw_pairs_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pairs.txt");
        std::fs::write(&f, "2\t1\nA\t1\t2\nA\t1\tB\t3\nC\t4\t5\nC\t1\tD\t1\n").unwrap();
        let pairs = read_lfw_pairs(&f, Path::new("/lfw")).unwrap();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[1].b, Path::new("/lfw/B/B_0003.jpg"));
        assert_eq!((pairs[0].same, pairs[1].same, pairs[3].fold), (true, false, 1));
        std::fs::write(&f, "1\nA\t1\t2\nA\t1\tB\t3\n").unwrap();
        assert_eq!(read_lfw_pairs(&f, Path::new("/lfw")).unwrap().len(), 2);
    }
}
