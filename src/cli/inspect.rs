//! `labelwise inspect DATA`: what is in the pool and what looks wrong, before spending anything.

use clap::Args;
use serde::Serialize;

use crate::cli::InputArgs;
use crate::data::dataset::{self, Dataset, NormStats};
use crate::data::label_formats::LabelMerge;
use crate::error::Result;
use crate::progress::Progress;

/// Flags of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Which embedding and label files to read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Classes listed at each end of the class-count ranking.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top: usize,
}

/// The inspection report; `--json` prints exactly this.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Input files read, in the order given, so the report names its sources.
    pub files: Vec<String>,
    /// Items (rows) across all input files.
    pub rows: usize,
    /// Embedding width every row shares; stages refuse mixed widths.
    pub dimension: usize,
    /// Items that already carry a human label.
    pub labeled: usize,
    /// `labeled / rows` in 0–1, to judge whether training can start.
    pub labeled_share: f64,
    /// Distinct classes among the labels present.
    pub classes: usize,
    /// Largest classes by labeled count, descending.
    pub largest_classes: Vec<(String, usize)>,
    /// Smallest classes by labeled count, ascending.
    pub smallest_classes: Vec<(String, usize)>,
    /// Norms before normalization.
    pub norms: NormStats,
    /// Extra input columns passed through to the output files untouched.
    pub carried_columns: Vec<String>,
    /// How an annotation export was merged into labels, when one was given.
    pub label_merge: Option<LabelMerge>,
    /// Non-fatal problems worth fixing before a labeling round.
    pub problems: Vec<String>,
}

/// Builds the report from a loaded pool.
pub fn report(data: &Dataset, top: usize) -> Report {
    let counts = data.class_counts();
    let mut ranked: Vec<(String, usize)> = data.classes.iter().cloned().zip(counts).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let largest = ranked.iter().take(top).cloned().collect();
    let mut ascending = ranked.clone();
    ascending.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let smallest = ascending.into_iter().take(top).collect();

    let mut problems = data.warnings.clone();
    if (data.norms.min - 1.0).abs() > 1e-3 || (data.norms.max - 1.0).abs() > 1e-3 {
        problems.push(format!(
            "embeddings are not unit-norm (norms {:.4}..{:.4}); labelwise normalizes them, so only direction counts",
            data.norms.min, data.norms.max
        ));
    }
    let labeled = data.labeled_count();
    if labeled == 0 {
        problems.push("no labels: the first round will be a cold-start batch".into());
    }
    let singletons = ranked.iter().filter(|c| c.1 == 1).count();
    if singletons > 0 {
        problems.push(format!(
            "{singletons} class(es) have a single label: no model can be validated on them"
        ));
    }
    if let Some(m) = &data.label_merge {
        if m.ties > 0 {
            problems.push(format!(
                "{} item(s) in {} have tied labels and were left unlabeled (e.g. {})",
                m.ties,
                m.file.display(),
                m.tie_examples.join(", ")
            ));
        }
        if m.unknown_ids > 0 {
            problems.push(format!(
                "{} id(s) in {} are not in the data (e.g. {})",
                m.unknown_ids,
                m.file.display(),
                m.unknown_examples.join(", ")
            ));
        }
    }
    Report {
        files: data.files.iter().map(|f| f.display().to_string()).collect(),
        rows: data.len(),
        dimension: data.dim(),
        labeled,
        labeled_share: labeled as f64 / data.len() as f64,
        classes: data.classes.len(),
        largest_classes: largest,
        smallest_classes: smallest,
        norms: data.norms.clone(),
        carried_columns: data
            .carried
            .iter()
            .map(|c| c.field.name().clone())
            .collect(),
        label_merge: data.label_merge.clone(),
        problems,
    }
}

/// Runs `inspect`: loads, validates, prints.
pub fn run(args: &InspectArgs, progress: Progress) -> Result<()> {
    let spinner = progress.spinner("load");
    let data = dataset::load(&args.input.data, &args.input.load_options(true))?;
    spinner.finish_and_clear();
    let r = report(&data, args.top);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("files       {}", r.files.join(", "));
    println!("rows        {}", r.rows);
    println!("dimension   {}", r.dimension);
    println!(
        "labeled     {} ({:.1}%)",
        r.labeled,
        100.0 * r.labeled_share
    );
    println!("classes     {}", r.classes);
    let fmt = |v: &[(String, usize)]| {
        v.iter()
            .map(|(c, n)| format!("{c} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if r.classes > 0 {
        println!("largest     {}", fmt(&r.largest_classes));
        println!("smallest    {}", fmt(&r.smallest_classes));
    }
    println!(
        "norms       min {:.4}  mean {:.4}  max {:.4} (before normalization)",
        r.norms.min, r.norms.mean, r.norms.max
    );
    if !r.carried_columns.is_empty() {
        println!("carried     {}", r.carried_columns.join(", "));
    }
    if let Some(m) = &r.label_merge {
        println!(
            "labels file {} ({}): {} rows, {} applied ({} overrode a different label), {} unknown ids, {} empty",
            m.file.display(), m.format.as_str(), m.rows, m.applied, m.overridden, m.unknown_ids, m.empty_labels
        );
        println!(
            "annotators  {} items with several: {} unanimous, {} majority over disagreement, {} ties (left unlabeled)",
            m.multi_annotator, m.unanimous, m.majority_with_disagreement, m.ties
        );
    }
    if r.problems.is_empty() {
        println!("problems    none");
    } else {
        for p in &r.problems {
            println!("problem     {p}");
        }
    }
    Ok(())
}
