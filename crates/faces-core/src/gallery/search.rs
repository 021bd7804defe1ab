//! Exact top-k search over a gallery's templates, in memory.
//!
//! Templates sit in one contiguous row-major matrix twice: as `f32` (exact)
//! and as IEEE half floats (coarse, half the bytes). A search streams the
//! coarse matrix, whose dot products are within `COARSE_ERROR` of the exact
//! ones, keeps the best k distinct subjects, then re-scores in `f32` every row
//! that could still belong to the top k. Memory bandwidth is what limits a
//! million-template scan, so halving the bytes halves the time, while the
//! answer stays exactly the `f32` one (see [`Index::search`]).

use half::f16;

/// One candidate subject for a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the subject in the owner's subject list.
    pub subject: u32,
    /// Cosine similarity of the probe to the subject's closest template.
    pub similarity: f32,
}

/// Templates of unit embeddings, each owned by one subject.
#[derive(Debug, Default)]
pub struct Index {
    dim: usize,
    exact: Vec<f32>,
    /// Half floats, each row zero-padded to `stride` (a multiple of 16) for SIMD.
    coarse: Vec<u16>,
    stride: usize,
    owners: Vec<u32>,
}

/// Rows scanned per block: the scores of one block stay in L1 cache.
const BLOCK: usize = 1024;

impl Index {
    pub fn new(dim: usize) -> Self {
        Index { dim, stride: dim.div_ceil(16) * 16, ..Default::default() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Every template with its owner, in insertion order.
    pub fn rows(&self) -> impl Iterator<Item = (u32, &[f32])> {
        self.owners.iter().copied().zip(self.exact.chunks_exact(self.dim.max(1)))
    }

    /// Adds a template of `subject`; `embedding` must have `dim` values.
    pub fn push(&mut self, subject: u32, embedding: &[f32]) {
        debug_assert_eq!(embedding.len(), self.dim);
        self.exact.extend_from_slice(embedding);
        self.coarse.extend(embedding.iter().map(|v| f16::from_f32(*v).to_bits()));
        self.coarse.resize(self.coarse.len() + self.stride - self.dim, 0);
        self.owners.push(subject);
    }

    /// Upper bound on |coarse - exact| for unit vectors: half-float rounding
    /// (relative 2^-11 per value, so at most 2^-11 * |x||p| = 2^-11 by
    /// Cauchy-Schwarz), values below half's normal range (absolute 2^-25 each),
    /// and `f32` accumulation in both sums, with room to spare.
    fn coarse_error(&self) -> f32 {
        let d = self.dim as f32;
        2f32.powi(-11) + d * 2f32.powi(-25) + 2.0 * d * 2f32.powi(-23)
    }

    /// The `k` subjects closest to `probe`, best first, with exact `f32` similarities.
    ///
    /// Exactness: let T be the true k-th best subject score and C the k-th best
    /// coarse subject score. Coarse scores are within e of exact ones, so
    /// C <= T + e, and the best template of every true top-k subject has a
    /// coarse score >= T - e >= C - 2e. Re-scoring every row at or above
    /// C - 2e therefore finds every top-k subject with its exact score.
    pub fn search(&self, probe: &[f32], k: usize) -> Vec<Hit> {
        if k == 0 || self.is_empty() || probe.len() != self.dim {
            return Vec::new();
        }
        let margin = 2.0 * self.coarse_error();
        let mut padded = probe.to_vec();
        padded.resize(self.stride, 0.0);
        let mut best = TopSubjects::new(k);
        let mut candidates: Vec<(u32, f32)> = Vec::new();
        let mut scores = vec![0f32; BLOCK];
        let mut cutoff = f32::NEG_INFINITY;
        for start in (0..self.len()).step_by(BLOCK) {
            let rows = BLOCK.min(self.len() - start);
            let matrix = &self.coarse[start * self.stride..(start + rows) * self.stride];
            dot_rows_f16(matrix, &padded, &mut scores[..rows]);
            for (row, &score) in (start..).zip(&scores[..rows]) {
                if score >= cutoff {
                    best.offer(self.owners[row], score);
                    candidates.push((row as u32, score));
                    cutoff = best.floor() - margin;
                }
            }
        }
        let mut exact = TopSubjects::new(k);
        for (row, score) in candidates {
            if score >= cutoff {
                let row = row as usize;
                let template = &self.exact[row * self.dim..(row + 1) * self.dim];
                exact.offer(self.owners[row], dot_f32(template, probe));
            }
        }
        exact.into_sorted()
    }
}

/// The best `k` distinct subjects seen so far.
struct TopSubjects {
    k: usize,
    hits: Vec<Hit>,
}

impl TopSubjects {
    fn new(k: usize) -> Self {
        TopSubjects { k, hits: Vec::with_capacity(k + 1) }
    }

    /// The score a new subject must beat to enter: minus infinity until k are held.
    fn floor(&self) -> f32 {
        if self.hits.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.hits.iter().map(|h| h.similarity).fold(f32::INFINITY, f32::min)
        }
    }

    fn offer(&mut self, subject: u32, similarity: f32) {
        if let Some(hit) = self.hits.iter_mut().find(|h| h.subject == subject) {
            hit.similarity = hit.similarity.max(similarity);
            return;
        }
        if self.hits.len() < self.k {
            self.hits.push(Hit { subject, similarity });
        } else if let Some(worst) = self.hits.iter_mut().min_by(|a, b| a.similarity.total_cmp(&b.similarity)) {
            if similarity > worst.similarity {
                *worst = Hit { subject, similarity };
            }
        }
    }

    fn into_sorted(mut self) -> Vec<Hit> {
        self.hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.subject.cmp(&b.subject)));
        self.hits
    }
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out[i]` = row i of the half-float `matrix` · `probe`; rows are
/// `probe.len()` long, a multiple of 16.
fn dot_rows_f16(matrix: &[u16], probe: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU features the function is compiled for were just checked.
        unsafe { x86::dot_rows_f16(matrix, probe, out) };
        return;
    }
    dot_rows_f16_portable(matrix, probe, out);
}

fn dot_rows_f16_portable(matrix: &[u16], probe: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(probe.len())) {
        *o = row.iter().zip(probe).map(|(h, p)| f16::from_bits(*h).to_f32() * p).sum();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// AVX2 + F16C version of `dot_rows_f16`; rows are a multiple of 16 long.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_rows_f16(matrix: &[u16], probe: &[f32], out: &mut [f32]) {
        let d = probe.len();
        for (o, row) in out.iter_mut().zip(matrix.chunks_exact(d)) {
            let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for i in (0..d).step_by(16) {
                // SAFETY: i + 16 <= d = row.len() = probe.len(); unaligned loads.
                unsafe {
                    let x0 = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(i).cast()));
                    let x1 = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(i + 8).cast()));
                    a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(probe.as_ptr().add(i)), a);
                    b = _mm256_fmadd_ps(x1, _mm256_loadu_ps(probe.as_ptr().add(i + 8)), b);
                }
            }
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds exactly 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(a, b)) };
            *o = lanes.iter().sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random unit vectors.
    pub fn random_units(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn brute_force(templates: &[Vec<f32>], owners: &[u32], probe: &[f32], k: usize) -> Vec<Hit> {
        let mut best: std::collections::BTreeMap<u32, f32> = Default::default();
        for (t, &o) in templates.iter().zip(owners) {
            let s = dot_f32(t, probe);
            let e = best.entry(o).or_insert(f32::NEG_INFINITY);
            *e = e.max(s);
        }
        let mut hits: Vec<Hit> = best.into_iter().map(|(subject, similarity)| Hit { subject, similarity }).collect();
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.subject.cmp(&b.subject)));
        hits.truncate(k);
        hits
    }

    #[test]
    fn search_equals_brute_force_with_several_templates_per_subject() {
        for dim in [128, 192, 20] {
            let templates = random_units(5000, dim, dim as u64);
            let owners: Vec<u32> = (0..5000).map(|i| (i * 7 % 1300) as u32).collect();
            let mut index = Index::new(dim);
            for (t, &o) in templates.iter().zip(&owners) {
                index.push(o, t);
            }
            for (q, probe) in random_units(30, dim, 99).iter().enumerate() {
                // Half the probes are near a template, so near-ties are exercised.
                let probe: Vec<f32> = if q % 2 == 0 { probe.clone() } else { templates[q * 13].clone() };
                assert_eq!(index.search(&probe, 5), brute_force(&templates, &owners, &probe, 5), "dim {dim} probe {q}");
            }
        }
    }

    #[test]
    fn simd_and_portable_scans_agree() {
        let rows: Vec<u16> = random_units(64, 32, 5).concat().iter().map(|v| f16::from_f32(*v).to_bits()).collect();
        let probe = &random_units(1, 32, 6)[0];
        let (mut fast, mut plain) = (vec![0.0; 64], vec![0.0; 64]);
        dot_rows_f16(&rows, probe, &mut fast);
        dot_rows_f16_portable(&rows, probe, &mut plain);
        assert!(fast.iter().zip(&plain).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn small_and_degenerate_searches() {
        let mut index = Index::new(16);
        assert!(index.search(&[0.0; 16], 3).is_empty());
        let units = random_units(2, 16, 1);
        index.push(4, &units[0]);
        index.push(4, &units[1]);
        let hits = index.search(&units[1], 3);
        assert_eq!(hits.len(), 1, "one subject, counted once");
        assert_eq!(hits[0].subject, 4);
        assert!((hits[0].similarity - 1.0).abs() < 1e-5);
        assert!(index.search(&units[1][..8], 3).is_empty(), "wrong probe size");
    }
}
