//! The round history: how every label was obtained, kept across runs in one folder
//! (`--history DIR`), so the auto-label certificate knows which labels are unbiased evidence.
//!
//! Layout, one pair of files per round, written when a `plan` or `select` run has written
//! everything else:
//! - `round-0001.json`: the round's auto-label figures ([`RoundFigures`]),
//!   which the next round compares its own with to explain a coverage drop, and the pool's
//!   fingerprint (item count and a hash of the sorted ids);
//! - `round-0001.csv`: the round's picks, `id,reason,propensity` in batch order.
//!
//! The CSV is the commit point: it is renamed into place last, so a run killed at any moment
//! leaves the history as it was (a JSON without its CSV is ignored and later overwritten) or
//! with the whole new round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::output::csv::write_csv;
use crate::round::coverage::RoundFigures;
use crate::round::select::{Selection, AUDIT_REASON, PROMOTED_REASON};
use crate::store::atomic::write_atomic;

/// One pick of an earlier round.
#[derive(Debug, Clone, PartialEq)]
pub struct PickRecord {
    /// Round that picked it (1-based).
    pub round: u32,
    /// Pool index of the item.
    pub item: usize,
    /// Why it was picked (`audit` for audits).
    pub reason: String,
    /// Probability that it was drawn (1 for the strategy's own picks).
    pub propensity: f64,
}

/// A round's auto-label figures, kept so the next round can say why its coverage changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (1-based).
    pub round: u32,
    /// Items in the pool.
    pub n_items: usize,
    /// blake3 of the pool's sorted ids: a round file from another pool is refused.
    pub pool_hash: String,
    /// Its auto-label figures (absent when the round did not auto-label).
    pub figures: Option<RoundFigures>,
}

/// Everything the history folder holds.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The folder.
    pub dir: PathBuf,
    /// Every recorded pick, oldest round first.
    pub picks: Vec<PickRecord>,
    /// Every committed round's figures, oldest first.
    pub rounds: Vec<RoundRecord>,
}

/// The pool fingerprint a history belongs to: item count and blake3 of the sorted ids.
pub fn pool_fingerprint(ids: &[String]) -> (usize, String) {
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut h = blake3::Hasher::new();
    for id in sorted {
        h.update(&(id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    }
    (ids.len(), h.finalize().to_hex().to_string())
}

fn round_path(dir: &Path, round: u32, ext: &str) -> PathBuf {
    dir.join(format!("round-{round:04}.{ext}"))
}

impl History {
    /// Reads the history in `dir` (a missing or empty folder is an empty history) and checks
    /// it against the pool's `ids`: every round must come from this pool and name only its ids.
    pub fn load(dir: &Path, ids: &[String]) -> Result<History> {
        let mut history = History {
            dir: dir.to_path_buf(),
            ..History::default()
        };
        if !dir.exists() {
            return Ok(history);
        }
        let (n_items, pool_hash) = pool_fingerprint(ids);
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        for round in 1.. {
            let csv = round_path(dir, round, "csv");
            if !csv.exists() {
                break;
            }
            let json = round_path(dir, round, "json");
            let record = read_record(&json)?;
            if record.round != round || record.n_items != n_items || record.pool_hash != pool_hash {
                return Err(Error::input(
                    &json,
                    None,
                    None,
                    format!(
                        "round {} of a pool of {} items, not of this pool ({n_items} items, \
                         other ids): use a new --history folder for a new pool",
                        record.round, record.n_items
                    ),
                ));
            }
            history.picks.extend(read_picks(&csv, round, &index)?);
            history.rounds.push(record);
        }
        Ok(history)
    }

    /// (labels, certified coverage) of every recorded round that auto-labeled: what the
    /// budget's coverage projection extrapolates.
    pub fn measured_coverage(&self) -> Vec<(f64, f64)> {
        self.rounds
            .iter()
            .filter_map(|r| r.figures.as_ref())
            .map(|f| (f.n_labeled as f64, f.coverage))
            .collect()
    }

    /// The round a new run records: one past the last committed.
    pub fn next_round(&self) -> u32 {
        self.rounds.len() as u32 + 1
    }

    /// Per item, whether its last recorded pick was an audit (`None`: the history never picked
    /// it). A later pick of the same item overrides an earlier one.
    fn last_pick_was_audit(&self, n: usize) -> Vec<Option<bool>> {
        let mut last = vec![None; n];
        for p in &self.picks {
            last[p.item] = Some(p.reason == AUDIT_REASON);
        }
        last
    }

    /// Which labeled items are certificate evidence: audits, and labels the history has no
    /// pick for (the user's own labels, taken to be a random sample of the pool). The
    /// strategy's picks (promoted audits among them) train the model but are not evidence.
    pub fn evidence(&self, labels: &[Option<u32>]) -> Vec<bool> {
        let last = self.last_pick_was_audit(labels.len());
        labels
            .iter()
            .zip(last)
            .map(|(l, audit)| l.is_some() && audit.unwrap_or(true))
            .collect()
    }

    /// Which labeled items were audits (their last recorded pick): the batch is chosen as if
    /// they were not labeled ([`crate::round::Round::audited`]).
    pub fn audited(&self, labels: &[Option<u32>]) -> Vec<bool> {
        let last = self.last_pick_was_audit(labels.len());
        labels
            .iter()
            .zip(last)
            .map(|(l, audit)| l.is_some() && audit == Some(true))
            .collect()
    }

    /// Commits a new round: its figures, then its picks (the commit point).
    pub fn record(
        &self,
        record: &RoundRecord,
        selection: &Selection,
        ids: &[String],
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let json = round_path(&self.dir, record.round, "json");
        write_atomic(&json, |w| {
            serde_json::to_writer_pretty(&mut *w, record)
                .map_err(|e| Error::io(&json, std::io::Error::other(e)))
        })?;
        let csv_path = round_path(&self.dir, record.round, "csv");
        write_atomic(&csv_path, |w| {
            let picks = selection.picked.iter().enumerate().map(|(k, &i)| {
                [
                    ids[i as usize].clone(),
                    selection.reasons[k].clone(),
                    selection.propensity[k].to_string(),
                ]
            });
            // Promoted audits: the strategy's picks from now on, no longer evidence.
            let promoted = selection.promoted.iter().map(|&i| {
                [
                    ids[i as usize].clone(),
                    PROMOTED_REASON.to_string(),
                    "1".to_string(),
                ]
            });
            let rows = picks.chain(promoted);
            write_csv(w, &csv_path, ["id", "reason", "propensity"], rows)
        })?;
        Ok(())
    }
}

fn read_record(path: &Path) -> Result<RoundRecord> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, None, None, format!("round figures unreadable: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::input(path, None, None, format!("not a round record: {e}")))
}

fn read_picks(path: &Path, round: u32, index: &HashMap<&str, usize>) -> Result<Vec<PickRecord>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::input(path, None, None, format!("unreadable: {e}")))?;
    let header_ok = reader
        .headers()
        .is_ok_and(|h| h.iter().collect::<Vec<_>>() == ["id", "reason", "propensity"]);
    if !header_ok {
        return Err(Error::input(
            path,
            None,
            Some(0),
            "expected the header id,reason,propensity",
        ));
    }
    let mut picks = Vec::new();
    for (k, row) in reader.records().enumerate() {
        let row_no = Some(k as u64 + 1);
        let row = row.map_err(|e| Error::input(path, None, row_no, format!("bad row: {e}")))?;
        let id = row.get(0).unwrap_or_default();
        let item = *index.get(id).ok_or_else(|| {
            Error::input(
                path,
                Some("id"),
                row_no,
                format!("id '{id}' is not in the data"),
            )
        })?;
        let propensity: f64 = row
            .get(2)
            .and_then(|p| p.parse().ok())
            .filter(|p: &f64| *p > 0.0 && *p <= 1.0)
            .ok_or_else(|| {
                Error::input(
                    path,
                    Some("propensity"),
                    row_no,
                    "must be a number in (0, 1]",
                )
            })?;
        picks.push(PickRecord {
            round,
            item,
            reason: row.get(1).unwrap_or_default().to_string(),
            propensity,
        });
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("item{i}")).collect()
    }

    fn record(round: u32, ids: &[String]) -> RoundRecord {
        let (n_items, pool_hash) = pool_fingerprint(ids);
        RoundRecord {
            round,
            n_items,
            pool_hash,
            figures: None,
        }
    }

    fn selection(picked: Vec<u32>, audits: usize) -> Selection {
        let n = picked.len();
        Selection {
            reasons: (0..n)
                .map(|k| {
                    if k >= n - audits {
                        AUDIT_REASON
                    } else {
                        "uncertain"
                    }
                    .to_string()
                })
                .collect(),
            propensity: (0..n)
                .map(|k| if k >= n - audits { 0.01 } else { 1.0 })
                .collect(),
            score: vec![0.0; n],
            picked,
            priority: Vec::new(),
            n_audits: audits,
            strategy_used: crate::round::select::Strategy::Hybrid,
            promoted: Vec::new(),
        }
    }

    #[test]
    fn rounds_round_trip_and_mark_audits_as_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids(10);
        let h = History::load(dir.path(), &ids).unwrap();
        assert_eq!(h.next_round(), 1);
        h.record(&record(1, &ids), &selection(vec![1, 2, 3], 1), &ids)
            .unwrap();
        let h = History::load(dir.path(), &ids).unwrap();
        assert_eq!(h.next_round(), 2);
        assert_eq!(h.picks.len(), 3);
        let mut labels = vec![None; 10];
        for i in [0, 1, 3] {
            labels[i] = Some(0);
        }
        // 0: the user's own label (evidence); 1: the strategy's pick (not); 3: an audit.
        let ev = h.evidence(&labels);
        assert_eq!(&ev[..4], &[true, false, false, true]);
    }

    #[test]
    fn a_promoted_audit_is_no_longer_evidence_nor_hidden_from_the_strategy() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids(10);
        let h = History::load(dir.path(), &ids).unwrap();
        // Round 1 audits 3 and 4; round 2's strategy picks 3 again (promoted: not in the batch).
        h.record(&record(1, &ids), &selection(vec![1, 3, 4], 2), &ids)
            .unwrap();
        let mut round2 = selection(vec![5], 0);
        round2.promoted = vec![3];
        h.record(&record(2, &ids), &round2, &ids).unwrap();
        let h = History::load(dir.path(), &ids).unwrap();
        let mut labels = vec![None; 10];
        for i in [1, 3, 4, 5] {
            labels[i] = Some(0);
        }
        assert_eq!(
            &h.evidence(&labels)[1..6],
            &[false, false, false, true, false]
        );
        assert_eq!(
            &h.audited(&labels)[1..6],
            &[false, false, false, true, false]
        );
    }

    #[test]
    fn a_round_without_its_picks_file_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids(5);
        let h = History::load(dir.path(), &ids).unwrap();
        h.record(&record(1, &ids), &selection(vec![0], 0), &ids)
            .unwrap();
        // A killed run of round 2 that wrote only its figures.
        std::fs::write(dir.path().join("round-0002.json"), "{}").unwrap();
        let h = History::load(dir.path(), &ids).unwrap();
        assert_eq!(h.next_round(), 2);
    }

    #[test]
    fn unknown_ids_and_other_pools_are_input_errors_naming_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids(5);
        let h = History::load(dir.path(), &ids).unwrap();
        h.record(&record(1, &ids), &selection(vec![0, 1], 0), &ids)
            .unwrap();
        std::fs::write(
            dir.path().join("round-0001.csv"),
            "id,reason,propensity\nitem0,uncertain,1\nnope,audit,0.1\n",
        )
        .unwrap();
        let e = History::load(dir.path(), &ids).unwrap_err().to_string();
        assert!(
            e.contains("round-0001.csv") && e.contains("row 2") && e.contains("nope"),
            "{e}"
        );
        let other = super::tests::ids(6);
        let e = History::load(dir.path(), &other).unwrap_err().to_string();
        assert!(
            e.contains("round-0001.json") && e.contains("not of this pool"),
            "{e}"
        );
    }
}
