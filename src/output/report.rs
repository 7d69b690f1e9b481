//! `report.html`: one self-contained page a person reads before a labeling round.
//!
//! No scripts, fonts or network requests: charts are inline SVG, styles are inline CSS, so the
//! file opens anywhere (including air-gapped review machines) and renders identically each time.

use std::fmt::Write as _;

use crate::data::label_formats::LabelMerge;
use crate::rules::analysis::RulesSummary;

/// Everything the page shows; plain data assembled by the `plan` command.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// Input files, for the header.
    pub inputs: Vec<String>,
    /// Items in the pool.
    pub items: usize,
    /// Embedding width.
    pub dimension: usize,
    /// What `--labels FILE` brought in: labels applied, ties, disagreements, unknown ids.
    pub label_merge: Option<LabelMerge>,
    /// (route, count) in display order.
    pub routes: Vec<(String, usize)>,
    /// The batch for humans, in rank order.
    pub batch: Vec<BatchRow>,
    /// Auto-labeling, when a model could be fitted.
    pub autolabel: Option<AutolabelView>,
    /// Near-duplicate figures.
    pub duplicates: Option<DuplicatesView>,
    /// Rarity scores of every item, for the histogram.
    pub rarity: Vec<f32>,
    /// Budget figures and projection.
    pub budget: Option<BudgetView>,
    /// The rules' analysis, when the round ran with `--rules`.
    pub rules: Option<RulesSummary>,
    /// Free-text notes (e.g. cold start, warnings).
    pub notes: Vec<String>,
    /// Stage timings in seconds.
    pub timings: Vec<(String, f64)>,
}

/// One row of the batch table.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// 1-based position in the batch, best first.
    pub rank: usize,
    /// Item id as given in the input.
    pub id: String,
    /// Selection score the batch was ranked by.
    pub score: f32,
    /// Why the item was picked, in words for the labeler.
    pub reasons: String,
    /// A short preview of the first text-like carried column, if any.
    pub preview: String,
}

/// Auto-label figures for the page.
#[derive(Debug, Clone)]
pub struct AutolabelView {
    /// Precision the auto-labels were certified against, in 0–1.
    pub target_precision: f64,
    /// Items auto-labeled by the model.
    pub auto_labeled: usize,
    /// Items labeled by copying from a labeled near-duplicate.
    pub duplicate_labeled: usize,
    /// Cross-validated precision above the threshold and its one-sided 95% lower bound.
    pub estimated_precision: Option<f64>,
    /// Certified lower confidence bound on precision, in 0–1.
    pub precision_lower_bound: Option<f64>,
    /// Score at or above which items were auto-labeled.
    pub threshold: Option<f64>,
    /// Why nothing was auto-labeled, when that is the case.
    pub note: Option<String>,
}

/// Near-duplicate figures for the page.
#[derive(Debug, Clone)]
pub struct DuplicatesView {
    /// Cosine similarity at or above which two items count as duplicates.
    pub threshold: f32,
    /// Duplicate pairs found.
    pub pairs: usize,
    /// Groups with more than one member.
    pub groups_with_duplicates: usize,
    /// Items that belong to such a group.
    pub items_in_groups: usize,
    /// Labels saved: items that need no label of their own because a twin gets one.
    pub labels_saved: usize,
}

/// Budget figures for the page.
#[derive(Debug, Clone)]
pub struct BudgetView {
    /// Currency the costs are shown in.
    pub currency: String,
    /// Items still left for humans to label.
    pub human_items: usize,
    /// Labeling hours for those items.
    pub hours: f64,
    /// Labeling cost for those items, in `currency`.
    pub cost: f64,
    /// (labels added, projected accuracy, projected auto-label coverage) points.
    pub projection: Vec<(usize, f64, f64)>,
    /// Plain-language budget lines printed at the top of the section.
    pub summary_lines: Vec<String>,
    /// The cost to finish the pool, shown first on the page.
    pub finish: Option<FinishView>,
}

/// The cost to finish the pool, for the page's first chart.
#[derive(Debug, Clone)]
pub struct FinishView {
    /// Currency the costs are shown in.
    pub currency: String,
    /// Human labels until the pool is done.
    pub human_labels: f64,
    /// Verifications (audits) until then.
    pub verifications: f64,
    /// Calendar hours of both.
    pub hours: f64,
    /// Cost of both, in `currency`.
    pub cost: f64,
    /// Rounds until the pool is done.
    pub rounds: usize,
    /// Cumulative cost (since the first label) at the 10th and 90th percentile of the items to
    /// finish: where the projection's interval puts the finish.
    pub finish_cost_interval: (f64, f64),
    /// (round from now, cumulative cost, share of the pool done): measured rounds (≤ 0) and the
    /// projection (> 0).
    pub path: Vec<(i64, f64, f64)>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:70rem;color:#1f2933;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec;padding-bottom:.3rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eef2f6;vertical-align:top}\
th{background:#f5f7fa}.num{text-align:right;font-variant-numeric:tabular-nums}.cards{display:flex;flex-wrap:wrap;gap:1rem}\
.card{border:1px solid #d9e2ec;border-radius:6px;padding:.8rem 1rem;min-width:10rem}.card b{display:block;font-size:1.4rem}\
.muted{color:#627d98;font-size:.85rem}svg text{font-family:inherit;font-size:11px;fill:#334e68}";

const ROUTE_COLORS: [&str; 5] = ["#2f80ed", "#27ae60", "#9b51e0", "#f2994a", "#828282"];

/// Renders the page. Deterministic: the same data gives the same bytes.
pub fn render(data: &ReportData) -> String {
    let mut h = String::new();
    write_header(&mut h, data);
    if let Some(f) = data.budget.as_ref().and_then(|b| b.finish.as_ref()) {
        write_finish(&mut h, f);
    }
    if let Some(m) = &data.label_merge {
        write_label_merge(&mut h, m);
    }
    write_routes(&mut h, &data.routes);
    write_batch(&mut h, &data.batch);
    if let Some(a) = &data.autolabel {
        write_autolabel(&mut h, a);
    }
    if let Some(d) = &data.duplicates {
        write_duplicates(&mut h, d);
    }
    if !data.rarity.is_empty() {
        write_rarity(&mut h, &data.rarity);
    }
    if let Some(b) = &data.budget {
        write_budget(&mut h, b);
    }
    if let Some(r) = &data.rules {
        write_rules(&mut h, r);
    }
    if !data.timings.is_empty() {
        write_timings(&mut h, &data.timings);
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">labelwise {}</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}

/// The document head (inline style, no external requests), the title line naming the inputs,
/// and the free-text notes that qualify everything below them.
fn write_header(h: &mut String, data: &ReportData) {
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>labelwise plan</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>labelwise plan</h1><p class=\"muted\">{} items × {} dimensions from {}</p>",
        data.items,
        data.dimension,
        esc(&data.inputs.join(", "))
    );
    for note in &data.notes {
        let _ = write!(h, "<p>{}</p>", esc(note));
    }
}

/// The labels file's merge: what was applied, and every annotation that did not become a label
/// (ties, unknown ids, skipped answers), so nothing is dropped out of the reader's sight.
fn write_label_merge(h: &mut String, m: &LabelMerge) {
    let _ = write!(
        h,
        "<h2>Labels from {}</h2><p class=\"muted\">{} records read as {}, ids from {}{}</p><div class=\"cards\">",
        esc(&m.file.display().to_string()),
        m.rows,
        m.format.as_str(),
        esc(&m.id_field),
        m.control
            .as_deref()
            .map(|c| format!(", labels from control {}", esc(c)))
            .unwrap_or_default()
    );
    let s = &m.skipped;
    let cards = [
        (m.applied, "labels applied"),
        (m.overridden, "replaced a different label"),
        (m.multi_annotator, "items with several annotators"),
        (m.unanimous, "unanimous"),
        (m.majority_with_disagreement, "majority over disagreement"),
        (m.ties, "ties, left unlabeled"),
        (m.unknown_ids, "ids not in the data"),
        (m.empty_labels, "empty labels"),
        (s.cancelled + s.not_submitted, "cancelled or not submitted"),
        (s.rejected + s.ignored, "rejected or ignored"),
    ];
    for (n, what) in cards {
        let _ = write!(h, "<div class=\"card\"><b>{n}</b>{what}</div>");
    }
    h.push_str("</div>");
    for (what, ids) in [
        ("Ties", &m.tie_examples),
        ("Unknown ids", &m.unknown_examples),
    ] {
        if !ids.is_empty() {
            let _ = write!(h, "<p>{what}, e.g.: {}</p>", esc(&ids.join(", ")));
        }
    }
}

/// "Where every item goes": one card per route and the stacked bar of their shares.
fn write_routes(h: &mut String, routes: &[(String, usize)]) {
    h.push_str("<h2>Where every item goes</h2><div class=\"cards\">");
    for (route, n) in routes {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{n}</b>{}</div>",
            esc(route_label(route))
        );
    }
    h.push_str("</div>");
    h.push_str(&route_bar(routes));
}

/// The batch table, in rank order: what the reader is asked to label next and why.
fn write_batch(h: &mut String, batch: &[BatchRow]) {
    let _ = write!(
        h,
        "<h2>Label next: {} items</h2><table><tr><th class=\"num\">rank</th><th>id</th><th class=\"num\">score</th><th>why</th><th>preview</th></tr>",
        batch.len()
    );
    for row in batch {
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{:.3}</td><td>{}</td><td>{}</td></tr>",
            row.rank,
            esc(&row.id),
            row.score,
            esc(&row.reasons),
            esc(&row.preview)
        );
    }
    h.push_str("</table>");
}

/// Auto-label cards: how many items the model and the near-duplicates labeled, and the
/// precision evidence (estimate, lower bound, threshold) when there is any.
fn write_autolabel(h: &mut String, a: &AutolabelView) {
    h.push_str("<h2>Auto-labels</h2><div class=\"cards\">");
    let _ = write!(
        h,
        "<div class=\"card\"><b>{}</b>auto-labeled by the model</div><div class=\"card\"><b>{}</b>labeled from a near-duplicate</div><div class=\"card\"><b>{:.0}%</b>target precision</div>",
        a.auto_labeled,
        a.duplicate_labeled,
        100.0 * a.target_precision
    );
    if let (Some(p), Some(lb)) = (a.estimated_precision, a.precision_lower_bound) {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{:.1}%</b>estimated precision (95% lower bound {:.1}%)</div>",
            100.0 * p,
            100.0 * lb
        );
    }
    if let Some(t) = a.threshold {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{t:.3}</b>confidence threshold</div>"
        );
    }
    h.push_str("</div>");
    if let Some(note) = &a.note {
        let _ = write!(h, "<p>{}</p>", esc(note));
    }
}

/// Near-duplicate cards: pairs, groups and the labels the groups save.
fn write_duplicates(h: &mut String, d: &DuplicatesView) {
    let _ = write!(
        h,
        "<h2>Near-duplicates (cosine ≥ {:.2})</h2><div class=\"cards\"><div class=\"card\"><b>{}</b>pairs</div><div class=\"card\"><b>{}</b>groups</div><div class=\"card\"><b>{}</b>items in groups</div><div class=\"card\"><b>{}</b>labels saved</div></div>",
        d.threshold, d.pairs, d.groups_with_duplicates, d.items_in_groups, d.labels_saved
    );
}

/// The rarity histogram, so the reader sees how the batch's scores sit in the pool's.
fn write_rarity(h: &mut String, rarity: &[f32]) {
    h.push_str(
        "<h2>Rarity</h2><p class=\"muted\">Share of items per rarity score (higher = rarer).</p>",
    );
    h.push_str(&histogram(rarity, 20));
}

/// Budget cards (items, hours, cost), the projection's summary lines and its chart.
fn write_budget(h: &mut String, b: &BudgetView) {
    let _ = write!(
        h,
        "<h2>Budget</h2><div class=\"cards\"><div class=\"card\"><b>{}</b>items left for humans</div><div class=\"card\"><b>{:.1}</b>hours</div><div class=\"card\"><b>{:.2} {}</b>cost</div></div>",
        b.human_items,
        b.hours,
        b.cost,
        esc(&b.currency)
    );
    for line in &b.summary_lines {
        let _ = write!(h, "<p>{}</p>", esc(line));
    }
    if !b.projection.is_empty() {
        h.push_str(&projection_chart(&b.projection));
    }
}

/// The cost to finish: the figures, then the chart of done share against human cost.
fn write_finish(h: &mut String, f: &FinishView) {
    let cur = esc(&f.currency);
    let _ = write!(
        h,
        "<h2>Cost to finish</h2><div class=\"cards\"><div class=\"card\"><b>{:.0}</b>human labels</div><div class=\"card\"><b>{:.0}</b>verifications</div><div class=\"card\"><b>{:.1}</b>hours</div><div class=\"card\"><b>{:.2} {cur}</b>cost</div><div class=\"card\"><b>{}</b>rounds</div></div>",
        f.human_labels, f.verifications, f.hours, f.cost, f.rounds
    );
    let (lo, hi) = f.finish_cost_interval;
    let _ = write!(
        h,
        "<p class=\"muted\">Done = labeled by a human, auto-labeled at the target precision, or a labeled item's duplicate. The pool is projected done at a total cost between {lo:.2} and {hi:.2} {cur} (80% interval, measured on simulated loops).</p>"
    );
    h.push_str(&finish_chart(&f.path, (lo, hi)));
}

/// Share of the pool done against cumulative human cost: measured rounds (solid, dots), the
/// projection (dashed) and the interval of the finish (a bar at 100%).
fn finish_chart(path: &[(i64, f64, f64)], (lo, hi): (f64, f64)) -> String {
    let (w, hgt, left, bottom) = (800.0, 220.0, 40.0, 24.0);
    let max_x = path.iter().map(|p| p.1).fold(hi, f64::max).max(1e-9);
    let px = |x: f64| left + (w - left - 10.0) * x / max_x;
    let py = |y: f64| 8.0 + (hgt - 8.0) * (1.0 - y.clamp(0.0, 1.0));
    let pts = |keep: &dyn Fn(i64) -> bool| {
        path.iter()
            .filter(|p| keep(p.0))
            .map(|p| format!("{:.1},{:.1}", px(p.1), py(p.2)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = share_chart_frame("cost to finish", (w, hgt, left, bottom), &py);
    let _ = write!(
        s,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#f2994a\" opacity=\"0.5\"/>",
        px(lo),
        py(1.0) - 4.0,
        (px(hi) - px(lo)).max(1.0)
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#2f80ed\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\"{}\"/><polyline fill=\"none\" stroke=\"#1f2933\" stroke-width=\"2\" points=\"{}\"/>",
        pts(&|r| r >= 0),
        pts(&|r| r <= 0)
    );
    for p in path.iter().filter(|p| p.0 <= 0) {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f2933\"/>",
            px(p.1),
            py(p.2)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\">human cost →  ● measured rounds  <tspan fill=\"#2f80ed\">- - projection</tspan>  <tspan fill=\"#f2994a\">▬ 80% interval of the finish</tspan>  (max {max_x:.2})</text></svg>",
        hgt + 18.0
    );
    s
}

/// The stage timings table.
/// The rules' analysis: per rule what `labelwise rules` reports, then the rules that contradict
/// the labels most with the items they contradict.
fn write_rules(h: &mut String, r: &RulesSummary) {
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let _ = write!(
        h,
        "<h2>Rules</h2><p class=\"muted\">{} rules from {}: they fire on {} of the items, overlap on {}, conflict on {}; their majority vote is {} accurate on the {} labeled items it votes on.</p>",
        r.rules,
        esc(&r.file),
        pct(r.coverage),
        pct(r.overlaps),
        pct(r.conflicts),
        r.majority.accuracy.map_or_else(|| "–".to_string(), pct),
        r.majority.voted_labeled,
    );
    h.push_str("<table><tr><th>rule</th><th>label</th><th class=\"num\">coverage</th><th class=\"num\">overlaps</th><th class=\"num\">conflicts</th><th class=\"num\">right / wrong</th><th class=\"num\">accuracy (95% interval)</th></tr>");
    for s in &r.per_rule {
        let accuracy = match (s.accuracy, s.accuracy_low, s.accuracy_high) {
            (Some(a), Some(lo), Some(hi)) => format!("{} ({}–{})", pct(a), pct(lo), pct(hi)),
            _ => "–".to_string(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td></tr>",
            esc(&s.rule),
            esc(&s.label),
            pct(s.coverage),
            pct(s.overlaps),
            pct(s.conflicts),
            s.correct,
            s.incorrect,
            accuracy,
        );
    }
    h.push_str("</table>");
    for d in r.disagree_most.iter().filter(|d| d.incorrect > 0) {
        let examples: Vec<String> = d.examples.iter().map(|e| esc(e)).collect();
        let _ = write!(
            h,
            "<p class=\"muted\">{} ({}) contradicts {} of the {} labels where it fires, e.g. {}.</p>",
            esc(&d.rule),
            esc(&d.label),
            d.incorrect,
            d.labeled_votes,
            examples.join(", "),
        );
    }
}

fn write_timings(h: &mut String, timings: &[(String, f64)]) {
    h.push_str("<h2>Timings</h2><table><tr><th>stage</th><th class=\"num\">seconds</th></tr>");
    for (stage, s) in timings {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{s:.2}</td></tr>",
            esc(stage)
        );
    }
    h.push_str("</table>");
}

fn route_label(route: &str) -> &str {
    match route {
        "labeled" => "already labeled",
        "auto" => "auto-labeled",
        "duplicate" => "labeled from a twin",
        "human" => "need a human",
        other => other,
    }
}

/// A single stacked bar of route shares.
fn route_bar(routes: &[(String, usize)]) -> String {
    let total: usize = routes.iter().map(|r| r.1).sum();
    if total == 0 {
        return String::new();
    }
    let width = 800.0;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"route breakdown\" width=\"100%\" viewBox=\"0 0 {width} 56\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let mut x = 0.0;
    for (i, (route, n)) in routes.iter().enumerate() {
        let w = width * *n as f64 / total as f64;
        let color = ROUTE_COLORS[i % ROUTE_COLORS.len()];
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"28\" fill=\"{color}\"><title>{}: {n}</title></rect>",
            esc(route)
        );
        if w > 60.0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"46\">{} {:.0}%</text>",
                x + 2.0,
                esc(route),
                100.0 * *n as f64 / total as f64
            );
        }
        x += w;
    }
    s.push_str("</svg>");
    s
}

/// Histogram of values in [0, 1].
fn histogram(values: &[f32], bins: usize) -> String {
    let mut counts = vec![0usize; bins];
    for &v in values {
        let b = ((v.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (w, hgt, pad) = (800.0, 180.0, 24.0);
    let bw = w / bins as f64;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"rarity histogram\" width=\"100%\" viewBox=\"0 0 {w} {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        hgt + pad
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = hgt * c as f64 / max as f64;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#2f80ed\"><title>{:.2}–{:.2}: {c}</title></rect>",
            i as f64 * bw + 1.0,
            hgt - bh,
            bw - 2.0,
            i as f64 / bins as f64,
            (i + 1) as f64 / bins as f64
        );
    }
    let _ = write!(
        s,
        "<text x=\"0\" y=\"{}\">0 (common)</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">1 (rare)</text></svg>",
        hgt + 16.0,
        w,
        hgt + 16.0
    );
    s
}

/// The opening of a chart whose y axis is a share (0–100%): the svg element sized
/// (width, plot height, left margin, bottom margin) and its horizontal grid lines with their
/// labels, `py` mapping a share to its y coordinate.
fn share_chart_frame(
    label: &str,
    (w, hgt, left, bottom): (f64, f64, f64, f64),
    py: &dyn Fn(f64) -> f64,
) -> String {
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"{label}\" width=\"100%\" viewBox=\"0 0 {w} {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        hgt + bottom
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eef2f6\"/><text x=\"0\" y=\"{:.1}\">{:.0}%</text>",
            py(tick) + 4.0,
            100.0 * tick,
            y = py(tick)
        );
    }
    s
}

/// Line chart of projected accuracy and auto-label coverage against labels added.
fn projection_chart(points: &[(usize, f64, f64)]) -> String {
    let (w, hgt, left, bottom) = (800.0, 220.0, 40.0, 24.0);
    let max_x = points.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let px = |x: usize| left + (w - left - 10.0) * x as f64 / max_x;
    let py = |y: f64| 8.0 + (hgt - 8.0) * (1.0 - y.clamp(0.0, 1.0));
    let line = |pick: &dyn Fn(&(usize, f64, f64)) -> f64| {
        points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(pick(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = share_chart_frame("budget projection", (w, hgt, left, bottom), &py);
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#2f80ed\" stroke-width=\"2\" points=\"{}\"/><polyline fill=\"none\" stroke=\"#27ae60\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\"{}\"/>",
        line(&|p| p.1),
        line(&|p| p.2)
    );
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\">labels added →  <tspan fill=\"#2f80ed\">— accuracy</tspan>  <tspan fill=\"#27ae60\">- - auto-label coverage</tspan>  (max +{})</text></svg>",
        hgt + 18.0,
        max_x as usize
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_text_and_has_no_external_references() {
        let data = ReportData {
            items: 3,
            dimension: 4,
            routes: vec![("human".into(), 2), ("labeled".into(), 1)],
            batch: vec![BatchRow {
                rank: 1,
                id: "<script>alert(1)</script>".into(),
                score: 0.5,
                reasons: "uncertain".into(),
                preview: "a & b".into(),
            }],
            rarity: vec![0.1, 0.9, 0.5],
            ..Default::default()
        };
        let html = render(&data);
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("a &amp; b"));
        for forbidden in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        assert_eq!(html, render(&data));
    }
}
