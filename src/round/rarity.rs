//! Rarity and under-representation scores: which items sit in the tail of the pool.
//!
//! Labels bought in the tail are worth the most and are exactly what random or uncertainty
//! sampling starves, so every item gets a score in `[0, 1]` (higher = rarer) and the reasons
//! behind it, which a person can check.
//!
//! ## Components (each rank-normalised to `[0, 1]` over all items)
//! - `knn`: mean cosine distance to the item's `neighbors` nearest items (absolute sparseness;
//!   alone it reaches AUROC 0.967+ for clinc150's out-of-scope rows).
//! - `lof`: that distance divided by the mean of the same distance over those neighbours (a
//!   LOF-like ratio), so an item that is merely in a uniformly sparse region is not over-counted.
//! - `small`: the item's k-means cluster is small (share of items in clusters at least as big).
//! - `far`: the cluster's centroid is far from its nearest other centroids.
//! - `coverage` (only when some item is labeled): the cluster holds fewer labels than its size
//!   predicts at the pool's overall labeled rate.
//! - `class` (only when predictions are given): the predicted class has few labels.
//!
//! The score is the weighted mean of the active components (a component that is constant over
//! the pool, e.g. coverage with no labels, carries no information and is left out). The default
//! weights were picked on measurements (examples/rarity_eval.rs, figures in BENCHMARKS.md): the
//! absolute kNN distance carries most of the weight because diluting it cost out-of-scope AUROC.
//!
//! Determinism: every loop is over items writing its own slot, sums run in index order, k-means
//! takes the seed; output is bit-identical for any number of rayon threads.

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;
use crate::index::kmeans::{self, KMeans};
use crate::round::rows::{self, PoolRows};

/// Reason bit: the item's kNN distance is in the top `flag_quantile` of the pool and larger
/// than its neighbours' (sparse, not just in a sparse region).
pub const SPARSE_NEIGHBOURHOOD: u8 = 1;
/// Reason bit: the item's cluster holds at most half as many items as the median cluster.
pub const SMALL_CLUSTER: u8 = 1 << 1;
/// Reason bit: the item's cluster centroid is among the most isolated centroids.
pub const FAR_CLUSTER: u8 = 1 << 2;
/// Reason bit: some items are labeled, but none in this item's cluster.
pub const UNLABELED_CLUSTER: u8 = 1 << 3;
/// Reason bit: the item is predicted into a class with few labels.
pub const RARE_CLASS: u8 = 1 << 4;

/// Reason bits and their names, in the order they are listed in outputs.
pub const REASONS: [(u8, &str); 5] = [
    (SPARSE_NEIGHBOURHOOD, "sparse-neighbourhood"),
    (SMALL_CLUSTER, "small-cluster"),
    (FAR_CLUSTER, "far-cluster"),
    (UNLABELED_CLUSTER, "unlabeled-cluster"),
    (RARE_CLASS, "rare-class"),
];

/// Names of the reason bits set in `flags`, for CSV/JSON outputs and reports.
pub fn reason_names(flags: u8) -> Vec<&'static str> {
    REASONS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// Knobs of the rarity score; all are exposed as CLI flags so users can re-weight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RarityParams {
    /// Neighbours whose distances define sparseness (clipped to the graph's k). 10 is what
    /// cleanlab's outlier score and the peers' 0.967 AUROC use.
    pub neighbors: usize,
    /// Number of k-means clusters; `None` = `kmeans::default_k(n)` = round(√(n/2)), the classic
    /// rule of thumb, clipped to [1, 1000].
    pub clusters: Option<usize>,
    /// Lloyd iterations for the k-means.
    pub kmeans_iter: usize,
    /// Weight of the absolute kNN distance.
    pub w_knn: f32,
    /// Weight of the LOF-like relative kNN distance.
    pub w_lof: f32,
    /// Weight of the distance to the item's own k-means centroid (absolute, cluster-level view
    /// of sparseness; it lifts out-of-scope AUROC above kNN distance alone).
    pub w_centroid: f32,
    /// Weight of cluster smallness.
    pub w_small: f32,
    /// Weight of cluster isolation (centroid far from the other centroids).
    pub w_far: f32,
    /// Weight of label coverage of the cluster (used only when some item is labeled).
    pub w_coverage: f32,
    /// Weight of the rarity of the predicted class (used only with predictions).
    pub w_class: f32,
    /// Share of the pool above which a component counts as a reason (0.9 = top 10%).
    pub flag_quantile: f32,
}

impl Default for RarityParams {
    fn default() -> Self {
        RarityParams {
            neighbors: 10,
            clusters: None,
            kmeans_iter: 25,
            w_knn: 0.58,
            w_lof: 0.1,
            w_centroid: 0.28,
            w_small: 0.02,
            w_far: 0.02,
            w_coverage: 0.3,
            w_class: 0.3,
            flag_quantile: 0.9,
        }
    }
}

impl RarityParams {
    /// Rejects values that would make the score meaningless, with a message naming the parameter.
    pub fn validate(&self) -> Result<()> {
        if self.neighbors == 0 {
            return Err(Error::Usage("rarity: neighbors must be ≥ 1".into()));
        }
        if self.clusters == Some(0) {
            return Err(Error::Usage("rarity: clusters must be ≥ 1".into()));
        }
        if self.kmeans_iter == 0 {
            return Err(Error::Usage(
                "rarity: k-means iterations must be ≥ 1".into(),
            ));
        }
        let w = [
            ("w_knn", self.w_knn),
            ("w_lof", self.w_lof),
            ("w_centroid", self.w_centroid),
            ("w_small", self.w_small),
            ("w_far", self.w_far),
            ("w_coverage", self.w_coverage),
            ("w_class", self.w_class),
        ];
        for (name, v) in w {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Usage(format!(
                    "rarity: {name} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if w.iter().all(|(_, v)| *v == 0.0) {
            return Err(Error::Usage(
                "rarity: at least one component weight must be > 0".into(),
            ));
        }
        if !(self.flag_quantile > 0.0 && self.flag_quantile < 1.0) {
            return Err(Error::Usage(format!(
                "rarity: flag quantile must be in (0, 1), got {}",
                self.flag_quantile
            )));
        }
        Ok(())
    }
}

/// Per-item rarity with the clusters and reasons behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rarity {
    /// Score in `[0, 1]`, higher = rarer.
    pub rarity: Vec<f32>,
    /// k-means cluster of every item (the clusters reported in the summary).
    pub cluster: Vec<u32>,
    /// Reason bits per item ([`REASONS`]; [`reason_names`] turns them into text).
    pub reasons: Vec<u8>,
    /// Mean cosine distance to the item's nearest neighbours (the raw sparseness), kept because
    /// selection and reports reuse it.
    pub knn_distance: Vec<f32>,
    /// What a person needs to judge the scores: clusters, distribution, weights.
    pub summary: RaritySummary,
}

/// Pool-level description of the scores, written to summary.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaritySummary {
    /// Number of k-means clusters used.
    pub clusters: usize,
    /// Items per cluster.
    pub cluster_sizes: Vec<usize>,
    /// Labeled items per cluster.
    pub cluster_labeled: Vec<usize>,
    /// Isolation of each cluster: 1 − mean cosine of its centroid to its nearest other centroids.
    pub cluster_isolation: Vec<f32>,
    /// Neighbours used for sparseness.
    pub neighbors: usize,
    /// Weights actually used, normalised to sum 1 (inactive components get 0).
    pub weights: ComponentWeights,
    /// Quantiles of the score: p1, p5, p10, p25, p50, p75, p90, p95, p99.
    pub quantiles: Vec<(f32, f32)>,
    /// Counts of scores in ten equal bins over [0, 1].
    pub histogram: Vec<usize>,
    /// Items carrying each reason.
    pub reason_counts: Vec<(String, usize)>,
}

/// The weight each component received (after dropping inactive ones and normalising).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct ComponentWeights {
    /// Absolute kNN distance.
    pub knn: f32,
    /// LOF-like relative kNN distance.
    pub lof: f32,
    /// Distance to the own centroid.
    pub centroid: f32,
    /// Cluster smallness.
    pub small: f32,
    /// Cluster isolation.
    pub far: f32,
    /// Label coverage of the cluster.
    pub coverage: f32,
    /// Rarity of the predicted class.
    pub class: f32,
}

/// Raw (un-normalised) component values per item, exposed so evaluations can measure each one.
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// Mean cosine distance to the nearest `neighbors` items.
    pub knn: Vec<f32>,
    /// `knn` divided by the mean `knn` of those neighbours.
    pub lof: Vec<f32>,
    /// Minus the size of the item's cluster (higher = smaller cluster).
    pub small: Vec<f32>,
    /// Isolation of the item's cluster.
    pub far: Vec<f32>,
    /// Cosine distance of the item to the mean of the other members of its cluster.
    pub centroid: Vec<f32>,
    /// Label deficit of the item's cluster, `None` when no item is labeled.
    pub coverage: Option<Vec<f32>>,
    /// Rarity of the item's predicted class, `None` without predictions or labels.
    pub class: Option<Vec<f32>>,
}

/// Scores every item (see the module docs for the formula).
///
/// `labels`: known class per item; `predicted`: a model's class per item, when one exists.
/// Errors with `Error::Usage` on bad parameters, `Error::Internal` when the graph, labels or
/// predictions do not match the embeddings in length.
pub fn score(
    emb: ArrayView2<f32>,
    graph: &NeighborGraph,
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    params: &RarityParams,
    seed: u64,
) -> Result<Rarity> {
    let km = fit_clusters(&emb, params, seed)?;
    score_with_clusters(&emb, graph, labels, predicted, params, &km)
}

/// The k-means rarity uses. It depends on the embeddings, `params.clusters`,
/// `params.kmeans_iter` and the seed only, never on labels, so callers that score the same pool
/// round after round (`simulate`) fit it once and pass it to [`score_with_clusters`].
pub fn fit_clusters(rows: &dyn PoolRows, params: &RarityParams, seed: u64) -> Result<KMeans> {
    params.validate()?;
    let n = rows.n_rows();
    if n == 0 {
        return Err(Error::Usage("rarity: the pool is empty".into()));
    }
    let k = params
        .clusters
        .unwrap_or_else(|| kmeans::default_k(n))
        .clamp(1, n);
    rows::fit_kmeans(rows, k, params.kmeans_iter, seed)
}

/// [`score`] with a clustering from [`fit_clusters`] on the same embeddings and parameters
/// (the result is identical to `score`'s).
pub fn score_with_clusters(
    rows: &dyn PoolRows,
    graph: &NeighborGraph,
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    params: &RarityParams,
    km: &KMeans,
) -> Result<Rarity> {
    let (comp, km) = components_with_clusters(rows, graph, labels, predicted, params, km)?;
    let n = rows.n_rows();
    let ranks = active_ranks(&comp);
    let w = active_weights(params, &ranks);
    let rarity = weighted_score(&ranks, &w, n);
    let knn_rank = ranks[0].clone().unwrap_or_else(|| vec![0.0; n]);
    let cluster_labeled = labeled_per_cluster(labels, &km.assignment, km.sizes.len());
    let reasons = reason_flags(
        &knn_rank,
        &comp.lof,
        &km,
        &cluster_labeled,
        labels,
        predicted,
        params.flag_quantile,
    );
    let summary = summarize(
        &rarity,
        &reasons,
        &km,
        cluster_labeled,
        km.isolation.clone(),
        params.neighbors.min(graph.k),
        w,
    );
    Ok(Rarity {
        rarity,
        cluster: km.assignment,
        reasons,
        knn_distance: comp.knn,
        summary,
    })
}

/// The components rank-normalised to `[0, 1]`, in [`ComponentWeights`] order; `None` for a
/// component that is absent or constant over the pool, since it carries no information.
fn active_ranks(comp: &Components) -> Vec<Option<Vec<f32>>> {
    [
        Some(&comp.knn),
        Some(&comp.lof),
        Some(&comp.centroid),
        Some(&comp.small),
        Some(&comp.far),
        comp.coverage.as_ref(),
        comp.class.as_ref(),
    ]
    .into_iter()
    .map(|c| c.filter(|v| !is_constant(v)).map(|v| rank01(v)))
    .collect()
}

/// The user's weights with inactive components zeroed, normalised to sum 1, so the score
/// stays in `[0, 1]` whichever components are active.
fn active_weights(params: &RarityParams, ranks: &[Option<Vec<f32>>]) -> [f32; 7] {
    let raw_w = [
        params.w_knn,
        params.w_lof,
        params.w_centroid,
        params.w_small,
        params.w_far,
        params.w_coverage,
        params.w_class,
    ];
    let mut w = [0f32; 7];
    for (i, r) in ranks.iter().enumerate() {
        if r.is_some() {
            w[i] = raw_w[i];
        }
    }
    let total: f32 = w.iter().sum();
    if total > 0.0 {
        w.iter_mut().for_each(|x| *x /= total);
    }
    w
}

/// The weighted mean of the active ranks per item, clamped to `[0, 1]`. Components are added
/// one after another in a fixed order, each item into its own slot: thread-count independent.
fn weighted_score(ranks: &[Option<Vec<f32>>], w: &[f32; 7], n: usize) -> Vec<f32> {
    let mut rarity = vec![0f32; n];
    for (r, &wi) in ranks.iter().zip(w) {
        if let (Some(r), true) = (r, wi > 0.0) {
            rarity
                .par_iter_mut()
                .zip(r.par_iter())
                .for_each(|(s, &v)| *s += wi * v);
        }
    }
    rarity.iter_mut().for_each(|s| *s = s.clamp(0.0, 1.0));
    rarity
}

/// Labeled items per cluster: the coverage component and the unlabeled-cluster reason.
fn labeled_per_cluster(labels: &[Option<u32>], assignment: &[u32], k: usize) -> Vec<usize> {
    let mut lab = vec![0usize; k];
    for (l, &c) in labels.iter().zip(assignment) {
        if l.is_some() {
            lab[c as usize] += 1;
        }
    }
    lab
}

/// The reason bits of every item ([`REASONS`]): the checkable facts behind a high score, each
/// a threshold on a component or on the clustering.
fn reason_flags(
    knn_rank: &[f32],
    lof: &[f32],
    km: &Clusters,
    cluster_labeled: &[usize],
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    q: f32,
) -> Vec<u8> {
    let k = km.sizes.len();
    let mut sorted_sizes = km.sizes.clone();
    sorted_sizes.sort_unstable();
    let median_size = sorted_sizes[k / 2] as f64;
    let isolation = &km.isolation;
    let iso_cut = quantile_sorted(&sorted_copy(isolation), q);
    let any_label = labels.iter().any(|l| l.is_some());
    let class_counts = class_counts(labels);
    let rare_cut = rare_class_cut(&class_counts);
    (0..knn_rank.len())
        .into_par_iter()
        .map(|i| {
            let c = km.assignment[i] as usize;
            let mut f = 0u8;
            if knn_rank[i] >= q && lof[i] > 1.0 {
                f |= SPARSE_NEIGHBOURHOOD;
            }
            if k > 1 && (km.sizes[c] as f64) <= 0.5 * median_size {
                f |= SMALL_CLUSTER;
            }
            if k > 1 && isolation[c] >= iso_cut && isolation[c] > 0.0 {
                f |= FAR_CLUSTER;
            }
            if any_label && cluster_labeled[c] == 0 {
                f |= UNLABELED_CLUSTER;
            }
            if let Some(p) = predicted.and_then(|p| p[i]) {
                let cnt = class_counts.get(p as usize).copied().unwrap_or(0);
                if any_label && (cnt as f64) < rare_cut {
                    f |= RARE_CLASS;
                }
            }
            f
        })
        .collect()
}

/// Label count under which a class counts as rare: half the median count of the classes that
/// have labels (at least 1); 0 when nothing is labeled.
fn rare_class_cut(class_counts: &[usize]) -> f64 {
    let mut seen: Vec<usize> = class_counts.iter().copied().filter(|&c| c > 0).collect();
    seen.sort_unstable();
    if seen.is_empty() {
        0.0
    } else {
        (0.5 * seen[seen.len() / 2] as f64).max(1.0)
    }
}

/// The clustering rarity uses, with its per-cluster isolation.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// Cluster of every item.
    pub assignment: Vec<u32>,
    /// Items per cluster.
    pub sizes: Vec<usize>,
    /// 1 − mean cosine of each centroid to its (up to 3) nearest other centroids.
    pub isolation: Vec<f32>,
}

/// Computes the raw components and the clustering (public so evaluations can measure each
/// component on its own; `score` is what callers normally want).
pub fn components(
    emb: ArrayView2<f32>,
    graph: &NeighborGraph,
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    params: &RarityParams,
    seed: u64,
) -> Result<(Components, Clusters)> {
    let km = fit_clusters(&emb, params, seed)?;
    components_with_clusters(&emb, graph, labels, predicted, params, &km)
}

/// [`components`] with a clustering from [`fit_clusters`].
pub fn components_with_clusters(
    rows: &dyn PoolRows,
    graph: &NeighborGraph,
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    params: &RarityParams,
    km: &KMeans,
) -> Result<(Components, Clusters)> {
    params.validate()?;
    let n = rows.n_rows();
    check_lengths(n, graph, labels, predicted, km)?;

    let m = params.neighbors.min(graph.k);
    let knn = knn_distance(graph, m, n);
    let lof = lof_ratio(graph, m, &knn);

    let isolation = centroid_isolation(km.centroids.view(), &km.sizes);
    let small: Vec<f32> = km
        .assignment
        .iter()
        .map(|&c| -(km.sizes[c as usize] as f32))
        .collect();
    let far: Vec<f32> = km
        .assignment
        .iter()
        .map(|&c| isolation[c as usize])
        .collect();
    let centroid = rows.centroid_distance(km)?;

    let n_labeled = labels.iter().filter(|l| l.is_some()).count();
    let coverage = (n_labeled > 0).then(|| coverage_deficit(labels, km, n_labeled));
    let class = match predicted {
        Some(p) if n_labeled > 0 => Some(predicted_class_rarity(labels, p)),
        _ => None,
    };

    Ok((
        Components {
            knn,
            lof,
            small,
            far,
            centroid,
            coverage,
            class,
        },
        Clusters {
            assignment: km.assignment.clone(),
            sizes: km.sizes.clone(),
            isolation,
        },
    ))
}

/// Rejects an empty pool and a graph, labels, predictions or clustering whose length does not
/// match the embeddings, before any component indexes into them.
fn check_lengths(
    n: usize,
    graph: &NeighborGraph,
    labels: &[Option<u32>],
    predicted: Option<&[Option<u32>]>,
    km: &KMeans,
) -> Result<()> {
    if n == 0 {
        return Err(Error::Usage("rarity: the pool is empty".into()));
    }
    if graph.len() != n && !(graph.k == 0 && graph.neighbors.is_empty()) {
        return Err(Error::Internal(format!(
            "rarity: the neighbour graph has {} items, the embeddings {n}",
            graph.len()
        )));
    }
    if labels.len() != n {
        return Err(Error::Internal(format!(
            "rarity: {} labels for {n} items",
            labels.len()
        )));
    }
    if let Some(p) = predicted {
        if p.len() != n {
            return Err(Error::Internal(format!(
                "rarity: {} predictions for {n} items",
                p.len()
            )));
        }
    }

    if km.assignment.len() != n {
        return Err(Error::Internal(format!(
            "rarity: the clustering has {} items, the embeddings {n}",
            km.assignment.len()
        )));
    }
    Ok(())
}

/// The `coverage` component: how far the item's cluster falls short of the labels its size
/// predicts at the pool's labeled rate (`n_labeled` > 0).
fn coverage_deficit(labels: &[Option<u32>], km: &KMeans, n_labeled: usize) -> Vec<f32> {
    let n = labels.len();
    let k = km.sizes.len();
    let lab = labeled_per_cluster(labels, &km.assignment, k);
    let rate = n_labeled as f64 / n as f64;
    // Deficit: 1 − labels / expected labels, floored at 0; a tiny size tie-break makes
    // bigger fully unlabeled clusters rank above smaller ones (they hide more classes).
    let deficit: Vec<f32> = (0..k)
        .map(|c| {
            let expected = rate * km.sizes[c] as f64;
            if expected <= 0.0 {
                0.0
            } else {
                (1.0 - lab[c] as f64 / expected).max(0.0) as f32
            }
        })
        .collect();
    km.assignment
        .iter()
        .map(|&c| deficit[c as usize])
        .collect::<Vec<f32>>()
}

/// The `class` component: 1 / (1 + labels of the predicted class), 0 without a prediction.
fn predicted_class_rarity(labels: &[Option<u32>], predicted: &[Option<u32>]) -> Vec<f32> {
    let counts = class_counts(labels);
    predicted
        .iter()
        .map(|pc| match pc {
            Some(c) => 1.0 / (1.0 + counts.get(*c as usize).copied().unwrap_or(0) as f32),
            None => 0.0,
        })
        .collect()
}

/// Mean cosine distance (1 − cos) to the first `m` graph neighbours of every item; 0 when the
/// graph has no neighbours (a one-item pool).
pub fn knn_distance(graph: &NeighborGraph, m: usize, n: usize) -> Vec<f32> {
    if m == 0 {
        return vec![0.0; n];
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (_, cos) = graph.row(i);
            let s: f32 = cos[..m].iter().map(|&c| 1.0 - c.clamp(-1.0, 1.0)).sum();
            s / m as f32
        })
        .collect()
}

/// Density (representativeness): mean cosine to the first `m` graph neighbours. TypiClust's
/// "typicality" computed from the cached graph instead of a per-cluster search.
pub fn density(graph: &NeighborGraph, m: usize, n: usize) -> Vec<f32> {
    knn_distance(graph, m, n)
        .into_iter()
        .map(|d| 1.0 - d)
        .collect()
}

/// LOF-like ratio: an item's kNN distance over the mean kNN distance of its neighbours.
fn lof_ratio(graph: &NeighborGraph, m: usize, knn: &[f32]) -> Vec<f32> {
    let n = knn.len();
    if m == 0 {
        return vec![1.0; n];
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (nb, _) = graph.row(i);
            let s: f32 = nb[..m].iter().map(|&j| knn[j as usize]).sum();
            let mean = s / m as f32;
            (knn[i] + 1e-6) / (mean + 1e-6)
        })
        .collect()
}

/// 1 − mean cosine of every centroid to its (up to) 3 nearest other non-empty centroids.
fn centroid_isolation(c: ArrayView2<f32>, sizes: &[usize]) -> Vec<f32> {
    let k = c.nrows();
    let sims = c.dot(&c.t());
    (0..k)
        .map(|a| {
            if sizes[a] == 0 {
                return 0.0;
            }
            let mut top = [f32::NEG_INFINITY; 3];
            for b in 0..k {
                if b == a || sizes[b] == 0 {
                    continue;
                }
                let v = sims[[a, b]];
                if v > top[2] {
                    top[2] = v;
                    top.sort_unstable_by(|x, y| y.total_cmp(x));
                }
            }
            let got: Vec<f32> = top.iter().copied().filter(|v| v.is_finite()).collect();
            if got.is_empty() {
                0.0
            } else {
                1.0 - got.iter().sum::<f32>() / got.len() as f32
            }
        })
        .collect()
}

/// Labeled items per class index (grown to the largest index seen).
fn class_counts(labels: &[Option<u32>]) -> Vec<usize> {
    let mut counts = Vec::new();
    for &c in labels.iter().flatten() {
        let c = c as usize;
        if counts.len() <= c {
            counts.resize(c + 1, 0);
        }
        counts[c] += 1;
    }
    counts
}

fn is_constant(v: &[f32]) -> bool {
    v.iter().all(|x| *x == v[0])
}

/// Rank-normalises `v` to `[0, 1]` (0 = smallest, 1 = largest; ties share their mean rank), so
/// components on different scales can be averaged. Deterministic: the sort key is total.
pub fn rank01(v: &[f32]) -> Vec<f32> {
    let n = v.len();
    if n <= 1 {
        return vec![0.5; n];
    }
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.par_sort_unstable_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize]).then(a.cmp(&b)));
    let mut out = vec![0f32; n];
    let denom = (n - 1) as f64;
    let mut s = 0;
    while s < n {
        let mut e = s + 1;
        while e < n && v[idx[e] as usize] == v[idx[s] as usize] {
            e += 1;
        }
        let r = ((s + e - 1) as f64 / 2.0 / denom) as f32;
        for &i in &idx[s..e] {
            out[i as usize] = r;
        }
        s = e;
    }
    out
}

fn sorted_copy(v: &[f32]) -> Vec<f32> {
    let mut s = v.to_vec();
    s.sort_unstable_by(|a, b| a.total_cmp(b));
    s
}

/// Value at quantile `q` of an ascending slice (nearest rank); 0 for an empty slice.
fn quantile_sorted(s: &[f32], q: f32) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    let i = ((s.len() - 1) as f64 * q as f64).round() as usize;
    s[i.min(s.len() - 1)]
}

fn summarize(
    rarity: &[f32],
    reasons: &[u8],
    km: &Clusters,
    cluster_labeled: Vec<usize>,
    isolation: Vec<f32>,
    neighbors: usize,
    w: [f32; 7],
) -> RaritySummary {
    let sorted = sorted_copy(rarity);
    let quantiles = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
        .iter()
        .map(|&q| (q, quantile_sorted(&sorted, q)))
        .collect();
    let mut histogram = vec![0usize; 10];
    for &r in rarity {
        histogram[((r * 10.0) as usize).min(9)] += 1;
    }
    let reason_counts = REASONS
        .iter()
        .map(|&(bit, name)| {
            (
                name.to_string(),
                reasons.iter().filter(|&&f| f & bit != 0).count(),
            )
        })
        .collect();
    RaritySummary {
        clusters: km.sizes.len(),
        cluster_sizes: km.sizes.clone(),
        cluster_labeled,
        cluster_isolation: isolation,
        neighbors,
        weights: ComponentWeights {
            knn: w[0],
            lof: w[1],
            centroid: w[2],
            small: w[3],
            far: w[4],
            coverage: w[5],
            class: w[6],
        },
        quantiles,
        histogram,
        reason_counts,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// `per` points around each of `centres` unit directions (noise `sd`), rows normalised.
    pub(crate) fn blobs(centres: &[Vec<f32>], per: &[usize], sd: f32, seed: u64) -> Array2<f32> {
        let d = centres[0].len();
        let n: usize = per.iter().sum();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut x = Array2::<f32>::zeros((n, d));
        let mut r = 0;
        for (c, &m) in centres.iter().zip(per) {
            for _ in 0..m {
                let mut row = x.row_mut(r);
                for j in 0..d {
                    row[j] = c[j] + sd * (rng.gen::<f32>() - 0.5);
                }
                let nrm = row.dot(&row).sqrt();
                row /= nrm;
                r += 1;
            }
        }
        x
    }

    /// Exact kNN graph by brute force (tests only).
    pub(crate) fn exact_graph(x: ArrayView2<f32>, k: usize) -> NeighborGraph {
        let n = x.nrows();
        let s = x.dot(&x.t());
        let mut neighbors = Vec::new();
        let mut cosines = Vec::new();
        for i in 0..n {
            let mut idx: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            idx.sort_by(|&a, &b| s[[i, b]].total_cmp(&s[[i, a]]).then(a.cmp(&b)));
            for &j in idx.iter().take(k) {
                neighbors.push(j as u32);
                cosines.push(s[[i, j]]);
            }
        }
        NeighborGraph {
            k,
            neighbors,
            cosines,
        }
    }

    pub(crate) fn unit(d: usize, j: usize) -> Vec<f32> {
        let mut v = vec![0.0; d];
        v[j] = 1.0;
        v
    }

    #[test]
    fn injected_outlier_is_rarest() {
        let d = 8;
        let mut x = blobs(&[unit(d, 0), unit(d, 1), unit(d, 2)], &[60, 60, 60], 0.3, 1);
        // Replace the last row by a point far from every blob.
        let mut row = x.row_mut(179);
        row.fill(0.0);
        row[5] = 0.6;
        row[6] = -0.8;
        let g = exact_graph(x.view(), 10);
        let labels = vec![None; 180];
        let r = score(x.view(), &g, &labels, None, &RarityParams::default(), 0).unwrap();
        let best = (0..180)
            .max_by(|&a, &b| r.rarity[a].total_cmp(&r.rarity[b]))
            .unwrap();
        assert_eq!(best, 179);
        assert!(r.rarity.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(r.reasons[179] & SPARSE_NEIGHBOURHOOD != 0);
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let d = 8;
        let x = blobs(&[unit(d, 0), unit(d, 1), unit(d, 3)], &[70, 50, 20], 0.4, 2);
        let g = exact_graph(x.view(), 8);
        let mut labels = vec![None; 140];
        labels[0] = Some(0);
        labels[80] = Some(1);
        let pred: Vec<Option<u32>> = (0..140).map(|i| Some((i % 2) as u32)).collect();
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| {
                    score(
                        x.view(),
                        &g,
                        &labels,
                        Some(&pred),
                        &RarityParams::default(),
                        7,
                    )
                    .unwrap()
                })
        };
        let a = run(1);
        let b = run(2);
        let c = run(4);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(a.summary.weights.coverage > 0.0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let x = blobs(&[unit(4, 0)], &[10], 0.2, 3);
        let g = exact_graph(x.view(), 3);
        let p = RarityParams {
            w_knn: -1.0,
            ..RarityParams::default()
        };
        assert!(score(x.view(), &g, &[None; 10], None, &p, 0).is_err());
        assert!(score(x.view(), &g, &[None; 9], None, &RarityParams::default(), 0).is_err());
        let p = RarityParams {
            clusters: Some(1000),
            ..RarityParams::default()
        };
        assert!(score(x.view(), &g, &[None; 10], None, &p, 0).is_ok());
    }

    #[test]
    fn rank01_ties_share_rank() {
        assert_eq!(
            rank01(&[3.0, 1.0, 3.0, 2.0]),
            vec![5.0 / 6.0, 0.0, 5.0 / 6.0, 1.0 / 3.0]
        );
    }
}
