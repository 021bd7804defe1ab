//! Naming faces: search the gallery for a face's closest subjects and decide
//! who it is, or `unknown` when the best match is too weak or too close to
//! the runner-up.

use serde::Serialize;

use crate::embed::{Confidence, Embedding};
use crate::gallery::Index;
use crate::Face;

/// The name given to a face that matches nobody well enough.
pub const UNKNOWN: &str = "unknown";

/// How a decision is made.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Best similarity needed to name a face.
    pub threshold: f32,
    /// Least lead of the best subject over the runner-up needed to name a face.
    pub min_margin: f32,
    /// Candidates reported per face.
    pub top_k: usize,
    pub confidence: Option<Confidence>,
}

/// A subject and its similarity to the face (its closest template).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub similarity: f32,
}

/// Why a face got the name it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Match,
    BelowThreshold,
    /// The runner-up is within `min_margin` of the best subject.
    Ambiguous,
    EmptyGallery,
}

/// Who a face is.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    /// The decided subject, or [`UNKNOWN`].
    pub name: String,
    /// Similarity to the best candidate (even when the face is unknown).
    pub similarity: Option<f32>,
    /// Estimated probability that the best candidate is the same person.
    pub confidence: Option<f32>,
    /// Lead of the best candidate over the runner-up.
    pub margin: Option<f32>,
    pub decision: Decision,
    pub candidates: Vec<Candidate>,
}

/// A face and who it is: one face of `faces identify --json` and of the
/// service's `/v1/identify`.
#[derive(Debug, Clone, Serialize)]
pub struct NamedFace {
    #[serde(flatten)]
    pub face: Face,
    #[serde(flatten)]
    pub id: Identification,
}

/// A gallery's templates in memory with their subjects' names and
/// pseudonymous ids; loaded once, shared by threads.
pub struct Searcher {
    pub index: Index,
    pub names: Vec<String>,
    pub ids: Vec<String>,
}

impl Searcher {
    /// From [`Gallery::index`](crate::gallery::Gallery::index)'s output.
    pub fn new(index: Index, subjects: Vec<(String, String)>) -> Searcher {
        let (names, ids) = subjects.into_iter().unzip();
        Searcher { index, names, ids }
    }

    /// The pseudonymous id of the subject called `name`.
    pub fn id_of(&self, name: &str) -> Option<&str> {
        self.names.iter().position(|n| n == name).map(|i| self.ids[i].as_str())
    }

    pub fn identify(&self, embedding: &Embedding, policy: &Policy) -> Identification {
        let hits = self.index.search(&embedding.0, policy.top_k.max(2));
        let candidates: Vec<Candidate> = hits
            .iter()
            .map(|h| Candidate { name: self.names[h.subject as usize].clone(), similarity: h.similarity })
            .collect();
        let best = candidates.first().map(|c| c.similarity);
        let margin = match (best, candidates.get(1)) {
            (Some(b), Some(second)) => Some(b - second.similarity),
            _ => None,
        };
        let decision = match (best, margin) {
            (None, _) => Decision::EmptyGallery,
            (Some(b), _) if b < policy.threshold => Decision::BelowThreshold,
            (Some(_), Some(m)) if m < policy.min_margin => Decision::Ambiguous,
            _ => Decision::Match,
        };
        let name = match decision {
            Decision::Match => candidates[0].name.clone(),
            _ => UNKNOWN.to_string(),
        };
        Identification {
            name,
            similarity: best,
            confidence: best.and_then(|b| policy.confidence.map(|c| c.probability(b))),
            margin,
            decision,
            candidates: candidates.into_iter().take(policy.top_k).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searcher() -> Searcher {
        let mut index = Index::new(16);
        let unit = |i: usize| -> Vec<f32> { (0..16).map(|j| if j == i { 1.0 } else { 0.0 }).collect() };
        index.push(0, &unit(0));
        index.push(1, &unit(1));
        Searcher::new(index, vec![("ann".into(), "a1".into()), ("bob".into(), "b2".into())])
    }

    fn probe(a: f32, b: f32) -> Embedding {
        let mut v = vec![0.0; 16];
        v[0] = a;
        v[1] = b;
        v[2] = (1.0 - a * a - b * b).max(0.0).sqrt();
        Embedding(v)
    }

    #[test]
    fn names_the_best_subject_or_says_why_not() {
        let s = searcher();
        let policy = Policy { threshold: 0.5, min_margin: 0.1, top_k: 1, confidence: None };
        let id = s.identify(&probe(0.8, 0.3), &policy);
        assert_eq!((id.name.as_str(), id.decision), ("ann", Decision::Match));
        assert_eq!(id.candidates.len(), 1, "top-k respected, margin still from the runner-up");
        assert!((id.margin.unwrap() - 0.5).abs() < 1e-3);
        assert_eq!(s.identify(&probe(0.4, 0.1), &policy).decision, Decision::BelowThreshold);
        let close = s.identify(&probe(0.62, 0.58), &policy);
        assert_eq!((close.name.as_str(), close.decision), (UNKNOWN, Decision::Ambiguous));
        let empty = Searcher::new(Index::new(16), vec![]);
        assert_eq!(empty.identify(&probe(1.0, 0.0), &policy).decision, Decision::EmptyGallery);
    }
}
