//! Choosing a threshold from the false-match rate a user can accept.
//!
//! [`ScoreSet`] holds the genuine (same person) and impostor (different
//! people) similarity scores of a calibration set: every genuine score, the
//! impostors' highest scores exactly (the tail, where low false-match rates
//! live) and a fine histogram of all of them. [`calibrate`] picks the lowest
//! threshold whose false-match rate (FMR) is at most the target, measures the
//! false non-match rate (FNMR) there, and gives each a 95% bootstrap interval
//! (resampling the pairs: [`Rate`] and [`threshold_interval`]). It also says
//! when the data cannot support the target: with n impostor pairs the
//! smallest measurable FMR is 1/n, and fewer than 10 expected false matches
//! make the estimate coarse.

use serde::Serialize;

use crate::embed::Confidence;

/// Histogram bins over similarities from -1 to 1 (width 0.0005).
pub const BINS: usize = 4000;
/// Bootstrap replicates for every interval.
pub const REPLICATES: usize = 2000;
/// Impostor scores kept exactly, highest first (the rest only in the histogram).
pub const TAIL: usize = 2_000_000;
/// Expected false matches at the target below which the estimate is called imprecise.
pub const PRECISE_EVENTS: f64 = 10.0;

/// A small, seeded random number generator (SplitMix64), so that every
/// interval is reproducible run to run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// Poisson-distributed count with mean `lambda` (inversion for small
    /// means, a rounded normal above 30).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let (mut k, mut p, mut cdf) = (0u64, (-lambda).exp(), 0.0);
        let u = self.uniform();
        loop {
            cdf += p;
            if u < cdf || k > 1000 {
                return k;
            }
            k += 1;
            p *= lambda / k as f64;
        }
    }

    /// Binomial(n, p): Poisson for rare events (either way), a rounded normal otherwise.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let (mean, spare) = (n as f64 * p, n as f64 * (1.0 - p));
        let k = if mean < 30.0 {
            self.poisson(mean)
        } else if spare < 30.0 {
            n.saturating_sub(self.poisson(spare))
        } else {
            (mean + (mean * (1.0 - p)).sqrt() * self.normal()).round().max(0.0) as u64
        };
        k.min(n)
    }
}

/// A rate measured as `events` out of `trials`, with a 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub events: u64,
    pub trials: u64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Rate {
    /// The percentile bootstrap of resampled pairs, which for a count is
    /// Binomial(trials, events/trials). With no events the bootstrap collapses
    /// to zero, so the upper end is the exact one-sided 95% bound, 3/trials
    /// (the rule of three).
    pub fn measure(events: u64, trials: u64, rng: &mut Rng) -> Rate {
        if trials == 0 {
            return Rate { events, trials, value: f64::NAN, low: f64::NAN, high: f64::NAN };
        }
        let n = trials as f64;
        let p = events as f64 / n;
        let mut draws: Vec<f64> = (0..REPLICATES).map(|_| rng.binomial(trials, p) as f64 / n).collect();
        let (low, high) = percentiles(&mut draws);
        let high = if events == 0 { (3.0 / n).min(1.0) } else { high };
        Rate { events, trials, value: p, low, high }
    }

    /// Whether `x` lies within the interval.
    pub fn covers(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The 2.5th and 97.5th percentiles.
fn percentiles(draws: &mut [f64]) -> (f64, f64) {
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    (at(0.025), at(0.975))
}

/// One comparison of two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub score: f32,
    pub same: bool,
    pub a: u32,
    pub b: u32,
}

/// The scores of a calibration set. Build one with [`ScoreSet::add`] (and
/// [`ScoreSet::merge`] from parallel workers), then [`ScoreSet::finish`].
#[derive(Debug, Clone)]
pub struct ScoreSet {
    /// Every genuine comparison, by ascending score once finished.
    pub genuine: Vec<Comparison>,
    /// The highest impostor comparisons, by descending score once finished.
    pub tail: Vec<Comparison>,
    /// All impostor comparisons.
    pub impostors: u64,
    pub impostor_histogram: Vec<u64>,
    pub genuine_histogram: Vec<u64>,
    finished: bool,
}

impl Default for ScoreSet {
    fn default() -> Self {
        ScoreSet {
            genuine: Vec::new(),
            tail: Vec::new(),
            impostors: 0,
            impostor_histogram: vec![0; BINS],
            genuine_histogram: vec![0; BINS],
            finished: false,
        }
    }
}

/// The histogram bin of a similarity.
pub fn bin_of(score: f32) -> usize {
    (((score + 1.0) / 2.0 * BINS as f32).floor().max(0.0) as usize).min(BINS - 1)
}

/// The lowest similarity in bin `i`.
pub fn bin_edge(i: usize) -> f32 {
    -1.0 + 2.0 * i as f32 / BINS as f32
}

impl ScoreSet {
    pub fn from_comparisons(comparisons: impl IntoIterator<Item = Comparison>) -> ScoreSet {
        let mut set = ScoreSet::default();
        for c in comparisons {
            set.add(c);
        }
        set.finish()
    }

    pub fn add(&mut self, c: Comparison) {
        if c.same {
            self.genuine_histogram[bin_of(c.score)] += 1;
            self.genuine.push(c);
        } else {
            self.impostor_histogram[bin_of(c.score)] += 1;
            self.impostors += 1;
            self.tail.push(c);
            if self.tail.len() >= 2 * TAIL {
                self.trim_tail();
            }
        }
    }

    pub fn merge(mut self, other: ScoreSet) -> ScoreSet {
        self.genuine.extend(other.genuine);
        self.tail.extend(other.tail);
        self.impostors += other.impostors;
        for (a, b) in self.impostor_histogram.iter_mut().zip(other.impostor_histogram) {
            *a += b;
        }
        for (a, b) in self.genuine_histogram.iter_mut().zip(other.genuine_histogram) {
            *a += b;
        }
        if self.tail.len() >= 2 * TAIL {
            self.trim_tail();
        }
        self
    }

    fn trim_tail(&mut self) {
        if self.tail.len() > TAIL {
            self.tail.select_nth_unstable_by(TAIL - 1, |x, y| y.score.total_cmp(&x.score));
            self.tail.truncate(TAIL);
        }
    }

    /// Sorts what it holds; call once all comparisons are in.
    pub fn finish(mut self) -> ScoreSet {
        self.trim_tail();
        self.tail.sort_by(|x, y| y.score.total_cmp(&x.score));
        self.genuine.sort_by(|x, y| x.score.total_cmp(&y.score));
        self.finished = true;
        self
    }

    /// Whether every impostor score is held exactly.
    pub fn tail_is_complete(&self) -> bool {
        self.tail.len() as u64 == self.impostors
    }

    /// Impostor comparisons scoring `threshold` or more: exact within the
    /// tail, else counted from the histogram from `threshold`'s bin up.
    pub fn false_matches(&self, threshold: f32) -> u64 {
        debug_assert!(self.finished);
        let in_tail = self.tail.partition_point(|c| c.score >= threshold) as u64;
        let below_tail = self.tail.last().is_some_and(|c| threshold < c.score);
        if self.tail_is_complete() || !below_tail {
            return in_tail;
        }
        self.impostor_histogram[bin_of(threshold)..].iter().sum()
    }

    /// Genuine comparisons scoring below `threshold` (exact).
    pub fn false_non_matches(&self, threshold: f32) -> u64 {
        self.genuine.partition_point(|c| c.score < threshold) as u64
    }

    pub fn fmr(&self, threshold: f32) -> f64 {
        self.false_matches(threshold) as f64 / self.impostors.max(1) as f64
    }

    pub fn fnmr(&self, threshold: f32) -> f64 {
        self.false_non_matches(threshold) as f64 / self.genuine.len().max(1) as f64
    }

    /// The lowest threshold with FMR at most `target`: just above the
    /// (k+1)-th highest impostor score, k = floor(target x impostors).
    pub fn threshold_at(&self, target: f64) -> f32 {
        let allowed = (target * self.impostors as f64).floor() as usize;
        self.tail.get(allowed).map_or(f32::NEG_INFINITY, |c| next_up(c.score))
    }

    /// (threshold, FMR, FNMR) at every histogram edge and at the tail's
    /// scores (thinned to about 300 per decade of FMR), by rising threshold.
    pub fn operating_points(&self) -> Vec<(f32, f64, f64)> {
        let mut thresholds: Vec<f32> = (0..BINS).map(bin_edge).collect();
        let mut next_fmr = 1.0;
        for c in &self.tail {
            let fmr = self.fmr(c.score);
            if fmr <= next_fmr {
                thresholds.push(c.score);
                next_fmr = fmr * 0.992;
            }
        }
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        thresholds.into_iter().map(|t| (t, self.fmr(t), self.fnmr(t))).collect()
    }
}

/// The next representable float above `x`.
pub fn next_up(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    f32::from_bits(if x > 0.0 { x.to_bits() + 1 } else { x.to_bits() - 1 })
}

/// Whether the data can measure the target false-match rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// At least [`PRECISE_EVENTS`] false matches are expected at the target.
    Supported,
    /// Between 1 and 10 are expected: the threshold and its rate are coarse.
    Imprecise,
    /// Fewer than one: the target is below the smallest rate the data can show.
    Unsupported,
}

/// The outcome of a calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub target_fmr: f64,
    pub threshold: f32,
    /// 95% bootstrap interval of the threshold chosen for the target.
    pub threshold_low: f32,
    pub threshold_high: f32,
    pub fmr: Rate,
    pub fnmr: Rate,
    pub genuine_pairs: u64,
    pub impostor_pairs: u64,
    pub support: Support,
    /// What the user must know about the support, in words; empty when supported.
    pub warning: String,
}

/// Picks the threshold for `target` FMR on `scores` and measures both error rates there.
pub fn calibrate(scores: &ScoreSet, target: f64, rng: &mut Rng) -> Calibration {
    let n = scores.impostors;
    let expected = target * n as f64;
    let (support, warning) = if expected < 1.0 {
        let need = (1.0 / target).ceil();
        (
            Support::Unsupported,
            format!(
                "only {n} impostor pairs: the smallest false-match rate they can measure is 1/{n} = {:.1e}, so FMR={target:.0e} \
                 cannot be measured; it needs at least {need:.0} impostor pairs (better {:.0}). The threshold given only \
                 separates every impostor pair seen, with a measured FMR of 0 (95% bound {:.1e})",
                1.0 / n.max(1) as f64,
                PRECISE_EVENTS * need,
                3.0 / n.max(1) as f64
            ),
        )
    } else if expected < PRECISE_EVENTS {
        (
            Support::Imprecise,
            format!(
                "only {expected:.1} false matches are expected at FMR={target:.0e} among {n} impostor pairs: the threshold \
                 is coarse (see its interval); {:.0} pairs would give 10",
                PRECISE_EVENTS / target
            ),
        )
    } else {
        (Support::Supported, String::new())
    };
    let threshold = scores.threshold_at(target);
    let (threshold_low, threshold_high) = threshold_interval(scores, target, rng);
    Calibration {
        target_fmr: target,
        threshold,
        threshold_low,
        threshold_high,
        fmr: Rate::measure(scores.false_matches(threshold), n, rng),
        fnmr: Rate::measure(scores.false_non_matches(threshold), scores.genuine.len() as u64, rng),
        genuine_pairs: scores.genuine.len() as u64,
        impostor_pairs: n,
        support,
        warning,
    }
}

/// 95% bootstrap interval of the threshold for `target`: each replicate gives
/// every impostor pair a Poisson(1) weight (the Poisson bootstrap) and takes
/// the threshold above the (k+1)-th highest weighted score. Only the tail is
/// walked: the total stays n to within 1/sqrt(n), which moves k by less than
/// the interval's own width.
pub fn threshold_interval(scores: &ScoreSet, target: f64, rng: &mut Rng) -> (f32, f32) {
    let allowed = (target * scores.impostors as f64).floor() as u64;
    let mut draws: Vec<f64> = (0..REPLICATES)
        .map(|_| {
            let mut seen = 0u64;
            for c in &scores.tail {
                seen += rng.poisson(1.0);
                if seen > allowed {
                    return f64::from(next_up(c.score));
                }
            }
            f64::NEG_INFINITY
        })
        .collect();
    let (low, high) = percentiles(&mut draws);
    (low as f32, high as f32)
}

/// A logistic map from similarity to the probability of "same person" for
/// even prior odds (the meaning of [`Confidence`]), fitted by Newton's method
/// on the fine histograms. Each class weighs half of all the pairs (a
/// genuine pair (g+i)/2g, an impostor pair (g+i)/2i), so that a data set
/// with far more impostor than genuine pairs still gives the even-odds
/// probability, and a balanced one (LFW's pairs) gives the plain
/// maximum-likelihood fit.
pub fn fit_confidence(scores: &ScoreSet) -> Confidence {
    let (g, i) = (scores.genuine.len().max(1) as f64, scores.impostors.max(1) as f64);
    let (wg, wi) = ((g + i) / (2.0 * g), (g + i) / (2.0 * i));
    let cells: Vec<(f64, f64, f64)> = (0..BINS)
        .map(|b| (f64::from(bin_edge(b)) + 1.0 / BINS as f64, scores.genuine_histogram[b] as f64 * wg, scores.impostor_histogram[b] as f64 * wi))
        .filter(|c| c.1 + c.2 > 0.0)
        .collect();
    let (mut a, mut k) = (0.0f64, 0.0f64);
    for _ in 0..50 {
        // Gradient and Hessian of the weighted log-likelihood, with a small ridge on the slope.
        let (mut ga, mut gk, mut haa, mut hak, mut hkk) = (0.0, -1e-4 * k, 0.0, 0.0, 1e-4);
        for &(x, wg, wi) in &cells {
            let p = 1.0 / (1.0 + (-(a + k * x)).exp());
            let (r, h) = (wg * (1.0 - p) - wi * p, (wg + wi) * p * (1.0 - p));
            ga += r;
            gk += r * x;
            haa += h;
            hak += h * x;
            hkk += h * x * x;
        }
        let det = haa * hkk - hak * hak;
        if det.abs() < 1e-18 {
            break;
        }
        let (da, dk) = ((hkk * ga - hak * gk) / det, (haa * gk - hak * ga) / det);
        a += da;
        k += dk;
        if da.abs() + dk.abs() < 1e-9 {
            break;
        }
    }
    Confidence { intercept: a as f32, slope: k as f32 }
}

/// One fold of the held-out check: the threshold chosen on the other folds,
/// its FMR interval there, and the FMR measured on this fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldCheck {
    pub fold: usize,
    pub threshold: f32,
    pub calibration_fmr: Rate,
    pub held_out_fmr: Rate,
    pub held_out_fnmr: Rate,
    /// Whether the held-out FMR lies within the calibration interval.
    pub within_interval: bool,
    /// Whether the held-out FMR's own interval contains the target: the fold
    /// is consistent with the rate asked for, allowing for its own sampling noise.
    pub covers_target: bool,
}

/// The held-out check over every fold (LFW View 2: ten).
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub folds: Vec<FoldCheck>,
    pub within_interval: usize,
    pub covering_target: usize,
    /// Every fold's held-out false matches and impostor pairs pooled.
    pub pooled_fmr: Rate,
    pub pooled_fnmr: Rate,
}

/// For each fold: calibrates on the other folds, then measures on this one.
/// `fold_of[i]` is comparison i's fold.
pub fn held_out(comparisons: &[Comparison], fold_of: &[usize], target: f64, rng: &mut Rng) -> HeldOut {
    let folds = fold_of.iter().max().map_or(0, |f| f + 1);
    let mut checks = Vec::new();
    let (mut fm, mut imp, mut fnm, mut gen) = (0, 0, 0, 0);
    for fold in 0..folds {
        let pick = |inside: bool| comparisons.iter().zip(fold_of).filter(move |(_, &f)| (f == fold) == inside).map(|(c, _)| *c);
        let train = ScoreSet::from_comparisons(pick(false));
        let test = ScoreSet::from_comparisons(pick(true));
        let c = calibrate(&train, target, rng);
        let held_fmr = Rate::measure(test.false_matches(c.threshold), test.impostors, rng);
        let held_fnmr = Rate::measure(test.false_non_matches(c.threshold), test.genuine.len() as u64, rng);
        (fm, imp, fnm, gen) = (fm + held_fmr.events, imp + held_fmr.trials, fnm + held_fnmr.events, gen + held_fnmr.trials);
        checks.push(FoldCheck {
            fold,
            threshold: c.threshold,
            within_interval: c.fmr.covers(held_fmr.value),
            covers_target: held_fmr.covers(target),
            calibration_fmr: c.fmr,
            held_out_fmr: held_fmr,
            held_out_fnmr: held_fnmr,
        });
    }
    HeldOut {
        within_interval: checks.iter().filter(|c| c.within_interval).count(),
        covering_target: checks.iter().filter(|c| c.covers_target).count(),
        folds: checks,
        pooled_fmr: Rate::measure(fm, imp, rng),
        pooled_fnmr: Rate::measure(fnm, gen, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparisons(genuine: &[f32], impostor: &[f32]) -> Vec<Comparison> {
        let c = |score: f32, same: bool| Comparison { score, same, a: 0, b: 1 };
        genuine.iter().map(|&s| c(s, true)).chain(impostor.iter().map(|&s| c(s, false))).collect()
    }

    #[test]
    fn threshold_allows_exactly_the_permitted_false_matches() {
        let impostor: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0 - 0.5).collect();
        let genuine: Vec<f32> = (0..1000).map(|i| 0.3 + i as f32 / 2000.0).collect();
        let set = ScoreSet::from_comparisons(comparisons(&genuine, &impostor));
        let c = calibrate(&set, 1e-3, &mut Rng::new(1));
        assert_eq!(c.fmr.events, 10, "{c:?}");
        assert!(c.threshold > 0.4989 && c.threshold <= 0.4991, "{}", c.threshold);
        assert_eq!(c.support, Support::Supported);
        assert!(c.fmr.low < 1e-3 && c.fmr.high > 1e-3, "{:?}", c.fmr);
        assert!(c.threshold_low <= c.threshold && c.threshold <= c.threshold_high);
        // Genuine scores below ~0.499: (0.499 - 0.3) * 2000 of 1000.
        assert!((c.fnmr.value - 0.398).abs() < 0.002, "{:?}", c.fnmr);
    }

    #[test]
    fn a_target_the_data_cannot_measure_is_said_so() {
        let impostor: Vec<f32> = (0..300).map(|i| i as f32 / 600.0).collect();
        let set = ScoreSet::from_comparisons(comparisons(&[0.9, 0.8], &impostor));
        let c = calibrate(&set, 1e-6, &mut Rng::new(1));
        assert_eq!(c.support, Support::Unsupported);
        assert!(c.warning.contains("only 300 impostor pairs") && c.warning.contains("1000000"), "{}", c.warning);
        assert_eq!(c.fmr.events, 0);
        assert!((c.fmr.high - 0.01).abs() < 1e-12, "rule of three: {:?}", c.fmr);
        assert_eq!(calibrate(&set, 1e-2, &mut Rng::new(1)).support, Support::Imprecise);
    }

    #[test]
    fn the_histogram_counts_below_the_tail() {
        let mut set = ScoreSet::default();
        for i in 0..(TAIL as u64 + 10) {
            set.add(Comparison { score: (i % 1000) as f32 / 1000.0 - 0.5, same: false, a: 0, b: 1 });
        }
        let set = set.finish();
        assert!(!set.tail_is_complete());
        assert_eq!(set.false_matches(-0.6), set.impostors);
    }

    #[test]
    fn bootstrapped_rates_cover_their_binomial_spread() {
        let mut rng = Rng::new(7);
        let r = Rate::measure(100, 10_000, &mut rng);
        // Binomial sd = sqrt(100 * 0.99) / 10000 ~ 0.000995: about +-0.00195.
        assert!((r.low - 0.0080).abs() < 0.0004 && (r.high - 0.0120).abs() < 0.0004, "{r:?}");
        let mut poisson: Vec<f64> = (0..20_000).map(|_| rng.poisson(4.0) as f64).collect();
        let mean = poisson.iter().sum::<f64>() / poisson.len() as f64;
        assert!((mean - 4.0).abs() < 0.05, "{mean}");
        let (lo, hi) = percentiles(&mut poisson);
        assert_eq!((lo, hi), (1.0, 8.0));
    }

    #[test]
    fn the_confidence_map_is_even_odds_where_the_classes_cross() {
        // Genuine ~ U(0.4, 0.9), impostor ~ U(-0.1, 0.5), ten times as many impostors.
        let mut rng = Rng::new(11);
        let genuine: Vec<f32> = (0..2000).map(|_| 0.4 + 0.5 * rng.uniform() as f32).collect();
        let impostor: Vec<f32> = (0..20_000).map(|_| -0.1 + 0.6 * rng.uniform() as f32).collect();
        let c = fit_confidence(&ScoreSet::from_comparisons(comparisons(&genuine, &impostor)));
        assert!((c.probability(0.45) - 0.5).abs() < 0.1, "{c:?} {}", c.probability(0.45));
        assert!(c.probability(0.8) > 0.95 && c.probability(0.1) < 0.05, "{c:?}");
    }

    #[test]
    fn held_out_folds_count_their_coverage() {
        // Ten folds of the same distribution: nearly every held-out interval
        // covers the target; the calibration interval (27,000 training
        // impostors) is narrower than one fold's noise (3,000), so fewer
        // held-out FMRs fall inside it, but some do.
        let mut rng = Rng::new(3);
        let mut all = Vec::new();
        let mut folds = Vec::new();
        for fold in 0..10 {
            for _ in 0..3000 {
                all.push(Comparison { score: rng.uniform() as f32, same: false, a: 0, b: 1 });
                folds.push(fold);
            }
            for _ in 0..300 {
                all.push(Comparison { score: 0.5 + rng.uniform() as f32, same: true, a: 0, b: 1 });
                folds.push(fold);
            }
        }
        let h = held_out(&all, &folds, 1e-2, &mut Rng::new(5));
        assert_eq!(h.folds.len(), 10);
        assert!(h.covering_target >= 8, "{h:?}");
        assert!((1..=9).contains(&h.within_interval), "{h:?}");
        assert!(h.pooled_fmr.covers(1e-2), "{:?}", h.pooled_fmr);
    }
}
