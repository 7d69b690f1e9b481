//! Applying a labels file to the pool: the majority label of each item the file names goes on
//! top of the label column, and [`LabelMerge`] says what happened (summary.json `label_merge`,
//! `inspect`, report.html).

use std::path::PathBuf;

use serde::Serialize;

use super::{Annotations, Format, Skipped};
use crate::error::{Error, Result};

/// What merging `--labels FILE` did, so users see ids that matched nothing, ties and
/// disagreements; nothing the file holds is dropped without being counted here.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelMerge {
    /// The labels file that was merged.
    pub file: PathBuf,
    /// The export format it was detected as.
    pub format: Format,
    /// Where the item ids were read, e.g. `data.lw_id`, `meta.lw_id`, `id`.
    pub id_field: String,
    /// The label control or question read (Label Studio `from_name`, Argilla question); absent
    /// for formats without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Records read from the file: tasks, rows or lines.
    pub rows: u64,
    /// Labels read (one per annotator and item, after skipping).
    pub votes: u64,
    /// Distinct item ids in the file.
    pub items: u64,
    /// Items in the data given the file's label (their majority label).
    pub applied: u64,
    /// Of those, items whose label column held a different label, now replaced.
    pub overridden: u64,
    /// Distinct ids in the file that are not in the data (ignored).
    pub unknown_ids: u64,
    /// Up to five of those ids, to make the mismatch easy to diagnose.
    pub unknown_examples: Vec<String>,
    /// Annotations or rows with an empty or null label (ignored; `skipped.no_label`).
    pub empty_labels: u64,
    /// Items in the file without any label.
    pub without_votes: u64,
    /// Items with exactly one label.
    pub single_annotator: u64,
    /// Items with two labels or more: each is unanimous, a majority with disagreement, or a tie.
    pub multi_annotator: u64,
    /// Multi-annotator items where every label agreed.
    pub unanimous: u64,
    /// Multi-annotator items settled by a strict majority over dissenting labels.
    pub majority_with_disagreement: u64,
    /// Items whose most frequent labels tie: the file gives them no label (the label column's
    /// value, if any, stays).
    pub ties: u64,
    /// Up to five tied item ids.
    pub tie_examples: Vec<String>,
    /// Annotations left out while reading, by reason (cancelled, not submitted, rejected, …).
    pub skipped: Skipped,
}

/// Merges `annotations` (majority per item) into `labels`, the pool's label per row, finding
/// rows with `row_of`. A file none of whose ids are in the data is an error: it is an export of
/// another project, or its ids are not where labelwise looks.
pub fn apply(
    annotations: &Annotations,
    row_of: impl Fn(&str) -> Option<usize>,
    labels: &mut [Option<String>],
) -> Result<LabelMerge> {
    let merged = annotations.merge();
    let r = merged.report;
    let mut m = LabelMerge {
        file: r.file,
        format: r.format,
        id_field: r.id_field,
        control: r.control,
        rows: r.records,
        votes: r.votes,
        items: r.items,
        applied: 0,
        overridden: 0,
        unknown_ids: 0,
        unknown_examples: Vec::new(),
        empty_labels: r.skipped.no_label,
        without_votes: r.without_votes,
        single_annotator: r.single_annotator,
        multi_annotator: r.multi_annotator,
        unanimous: r.unanimous,
        majority_with_disagreement: r.majority_with_disagreement,
        ties: r.ties,
        tie_examples: r.tie_examples,
        skipped: r.skipped,
    };
    for item in merged.labels {
        let Some(row) = row_of(&item.id) else {
            m.unknown_ids += 1;
            if m.unknown_examples.len() < 5 {
                m.unknown_examples.push(item.id);
            }
            continue;
        };
        let Some(label) = item.label else { continue };
        let slot = &mut labels[row];
        if slot.as_ref().is_some_and(|old| old != &label) {
            m.overridden += 1;
        }
        *slot = Some(label);
        m.applied += 1;
    }
    if m.items > 0 && m.unknown_ids == m.items {
        return Err(Error::input(
            &m.file,
            Some(&m.id_field),
            None,
            format!(
                "item '{}' is not in the data, nor is any of the file's {} item ids: an export \
                 of another project?",
                m.unknown_examples[0], m.items
            ),
        ));
    }
    Ok(m)
}
