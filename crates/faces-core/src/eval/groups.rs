//! The bias report: error rates broken down by groups of subjects that the
//! user labels (a CSV with a `subject` column and any attribute columns: age
//! band, sex, skin tone, data source...). Attributes are never inferred from
//! faces. At one threshold, each group's FNMR is measured on its genuine
//! pairs and its FMR on impostor pairs whose two subjects both belong to it
//! (the demographic FMR of NIST's FRVT reports), each with a bootstrap
//! interval; then the ratio of the worst group to the best.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::calibrate::{Comparison, Rate, Rng};
use crate::{Error, Result};

/// Fewest genuine pairs for a group's FNMR to mean anything.
pub const MIN_GENUINE: u64 = 30;

/// Each subject's group for each attribute, as the user labelled them.
#[derive(Debug, Clone, Default)]
pub struct GroupLabels {
    pub attributes: Vec<String>,
    /// subject -> one value per attribute (empty cell: no group).
    pub by_subject: HashMap<String, Vec<Option<String>>>,
}

impl GroupLabels {
    /// Reads a CSV whose header has a `subject` column and one or more attribute columns.
    pub fn read(path: &Path) -> Result<GroupLabels> {
        let bad = |why: String| Error::Invalid(format!("{}: {why}", path.display()));
        let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
        let header: Vec<String> = reader.headers().map_err(|e| bad(e.to_string()))?.iter().map(|h| h.trim().to_string()).collect();
        let subject_col = header
            .iter()
            .position(|h| h == "subject")
            .ok_or_else(|| bad("no `subject` column; the header must be `subject,ATTRIBUTE[,ATTRIBUTE...]`".into()))?;
        let attributes: Vec<String> = header.iter().enumerate().filter(|(i, _)| *i != subject_col).map(|(_, h)| h.clone()).collect();
        if attributes.is_empty() {
            return Err(bad("no attribute columns besides `subject`".into()));
        }
        let mut by_subject = HashMap::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(format!("line {}: {e}", line + 2)))?;
            let cell = |i: usize| record.get(i).map(str::trim).filter(|v| !v.is_empty()).map(String::from);
            let subject = cell(subject_col).ok_or_else(|| bad(format!("line {}: empty subject", line + 2)))?;
            let values = (0..header.len()).filter(|&i| i != subject_col).map(cell).collect();
            if by_subject.insert(subject.clone(), values).is_some() {
                return Err(bad(format!("line {}: subject {subject:?} labelled twice", line + 2)));
            }
        }
        Ok(GroupLabels { attributes, by_subject })
    }
}

/// Counts per attribute and group at one threshold; fed comparisons, merged across workers.
#[derive(Debug, Clone)]
pub struct GroupCounter {
    threshold: f32,
    /// [attribute][subject] -> group index.
    membership: Vec<Vec<Option<u16>>>,
    /// [attribute][group] names.
    names: Vec<Vec<String>>,
    /// [attribute][group] -> (false non-matches, genuine, false matches, impostors).
    counts: Vec<Vec<[u64; 4]>>,
    /// [attribute][group] -> subjects labelled with it.
    subjects: Vec<Vec<u64>>,
    /// [attribute] -> (false matches, impostor pairs) across two different groups.
    cross: Vec<[u64; 2]>,
}

impl GroupCounter {
    /// `subjects[i]` is the name of subject index i as used in comparisons' `subject_of`.
    pub fn new(labels: &GroupLabels, subjects: &[String], threshold: f32) -> GroupCounter {
        let attributes = labels.attributes.len();
        let mut names: Vec<Vec<String>> = vec![Vec::new(); attributes];
        let mut membership = vec![vec![None; subjects.len()]; attributes];
        let mut counted = vec![Vec::new(); attributes];
        for (s, subject) in subjects.iter().enumerate() {
            let Some(values) = labels.by_subject.get(subject) else { continue };
            for (a, value) in values.iter().enumerate() {
                let Some(value) = value else { continue };
                let g = names[a].iter().position(|n| n == value).unwrap_or_else(|| {
                    names[a].push(value.clone());
                    counted[a].push(0);
                    names[a].len() - 1
                });
                counted[a][g] += 1;
                membership[a][s] = Some(g as u16);
            }
        }
        let counts = names.iter().map(|n| vec![[0; 4]; n.len()]).collect();
        GroupCounter { threshold, membership, names, counts, subjects: counted, cross: vec![[0; 2]; attributes] }
    }

    /// Adds one comparison; `subject_of[sample]` gives a sample's subject index.
    pub fn add(&mut self, c: &Comparison, subject_of: &[u32]) {
        let (sa, sb) = (subject_of[c.a as usize] as usize, subject_of[c.b as usize] as usize);
        for a in 0..self.membership.len() {
            let (ga, gb) = (self.membership[a][sa], self.membership[a][sb]);
            match (ga, gb) {
                (Some(x), Some(y)) if x == y => {
                    let cell = &mut self.counts[a][x as usize];
                    if c.same {
                        cell[0] += u64::from(c.score < self.threshold);
                        cell[1] += 1;
                    } else {
                        cell[2] += u64::from(c.score >= self.threshold);
                        cell[3] += 1;
                    }
                }
                (Some(_), Some(_)) if !c.same => {
                    self.cross[a][0] += u64::from(c.score >= self.threshold);
                    self.cross[a][1] += 1;
                }
                _ => {}
            }
        }
    }

    pub fn merge(mut self, other: GroupCounter) -> GroupCounter {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                for k in 0..4 {
                    m[k] += t[k];
                }
            }
        }
        for (m, t) in self.cross.iter_mut().zip(other.cross) {
            m[0] += t[0];
            m[1] += t[1];
        }
        self
    }

    /// The report: each attribute's groups with intervals, and worst-to-best ratios.
    pub fn report(&self, labels: &GroupLabels, target_fmr: f64, rng: &mut Rng) -> Vec<AttributeReport> {
        let min_impostors = (1.0 / target_fmr).ceil() as u64;
        labels
            .attributes
            .iter()
            .enumerate()
            .map(|(a, attribute)| {
                let groups: Vec<GroupRates> = self.names[a]
                    .iter()
                    .enumerate()
                    .map(|(g, name)| {
                        let [fnm, genuine, fm, impostors] = self.counts[a][g];
                        let mut notes = Vec::new();
                        if genuine < MIN_GENUINE {
                            notes.push(format!("only {genuine} genuine pairs (fewer than {MIN_GENUINE}): its FNMR says little"));
                        }
                        if impostors < min_impostors {
                            notes.push(format!(
                                "only {impostors} same-group impostor pairs: an FMR near {target_fmr:.0e} needs at least {min_impostors}"
                            ));
                        }
                        GroupRates {
                            group: name.clone(),
                            subjects: self.subjects[a][g],
                            fnmr: Rate::measure(fnm, genuine, rng),
                            fmr: Rate::measure(fm, impostors, rng),
                            too_small: !notes.is_empty(),
                            note: notes.join("; "),
                        }
                    })
                    .collect();
                let ratio = |rate: fn(&GroupRates) -> f64| {
                    let values: Vec<f64> = groups.iter().filter(|g| !g.too_small).map(rate).collect();
                    Ratio::of(&values)
                };
                AttributeReport {
                    attribute: attribute.clone(),
                    fmr_ratio: ratio(|g| g.fmr.value),
                    fnmr_ratio: ratio(|g| g.fnmr.value),
                    cross_group_fmr: Rate::measure(self.cross[a][0], self.cross[a][1], rng),
                    groups,
                }
            })
            .collect()
    }
}

/// One group's error rates.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRates {
    pub group: String,
    pub subjects: u64,
    pub fmr: Rate,
    pub fnmr: Rate,
    /// Too few pairs to say anything at the target: excluded from the ratios.
    pub too_small: bool,
    pub note: String,
}

/// Worst group's rate over the best's, among groups large enough.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Ratio {
    Value(f64),
    /// The best group made no error: the worst is infinitely worse, or all are zero.
    BestIsZero { worst: f64 },
    /// Fewer than two groups large enough to compare.
    TooFewGroups,
}

impl Ratio {
    fn of(values: &[f64]) -> Ratio {
        if values.len() < 2 {
            return Ratio::TooFewGroups;
        }
        let worst = values.iter().copied().fold(f64::MIN, f64::max);
        let best = values.iter().copied().fold(f64::MAX, f64::min);
        if best > 0.0 {
            Ratio::Value(worst / best)
        } else {
            Ratio::BestIsZero { worst }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Ratio::Value(r) => format!("{r:.2}x"),
            Ratio::BestIsZero { worst } if *worst == 0.0 => "no errors in any group".into(),
            Ratio::BestIsZero { worst } => format!("best group made no error; worst {worst:.2e}"),
            Ratio::TooFewGroups => "fewer than two groups large enough".into(),
        }
    }
}

/// One attribute's breakdown.
#[derive(Debug, Clone, Serialize)]
pub struct AttributeReport {
    pub attribute: String,
    pub groups: Vec<GroupRates>,
    pub fmr_ratio: Ratio,
    pub fnmr_ratio: Ratio,
    /// FMR on impostor pairs whose subjects belong to two different groups.
    pub cross_group_fmr: Rate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_counted_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("labels.csv");
        std::fs::write(&csv, "subject,band\nann,young\nbob,young\ncat,old\ndan,old\n").unwrap();
        let labels = GroupLabels::read(&csv).unwrap();
        let subjects: Vec<String> = ["ann", "bob", "cat", "dan"].map(String::from).to_vec();
        // One sample per subject, plus a second of each (samples 4..8).
        let subject_of: Vec<u32> = vec![0, 1, 2, 3, 0, 1, 2, 3];
        let mut counter = GroupCounter::new(&labels, &subjects, 0.5);
        let c = |a: u32, b: u32, score: f32| Comparison { score, same: subject_of[a as usize] == subject_of[b as usize], a, b };
        for comparison in [c(0, 4, 0.9), c(1, 5, 0.3), c(2, 6, 0.8), c(3, 7, 0.7), c(0, 1, 0.6), c(2, 3, 0.1), c(0, 2, 0.2)] {
            counter.add(&comparison, &subject_of);
        }
        let report = counter.report(&labels, 0.1, &mut Rng::new(1));
        let young = &report[0].groups[0];
        assert_eq!((young.group.as_str(), young.fnmr.events, young.fnmr.trials, young.fmr.events, young.fmr.trials), ("young", 1, 2, 1, 1));
        let old = &report[0].groups[1];
        assert_eq!((old.fnmr.events, old.fmr.events, old.fmr.trials), (0, 0, 1));
        assert!(young.too_small && young.note.contains("genuine pairs"));
        assert_eq!(report[0].cross_group_fmr.trials, 1);
        assert!(matches!(report[0].fmr_ratio, Ratio::TooFewGroups));
        assert!(matches!(Ratio::of(&[0.002, 0.001]), Ratio::Value(r) if (r - 2.0).abs() < 1e-9));
    }

    #[test]
    fn labels_need_a_subject_column() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("labels.csv");
        std::fs::write(&csv, "name,band\nann,young\n").unwrap();
        assert!(GroupLabels::read(&csv).unwrap_err().to_string().contains("no `subject` column"));
        std::fs::write(&csv, "subject,band\nann,young\nann,old\n").unwrap();
        assert!(GroupLabels::read(&csv).unwrap_err().to_string().contains("labelled twice"));
    }
}
