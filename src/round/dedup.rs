//! Near-duplicate pairs and groups, read off the neighbour graph, so that each group of
//! near-copies is labeled once.
//!
//! Pairs: every pair with cosine ≥ T, not only those inside each item's top-k. An item whose
//! k-th neighbour is still ≥ T ("saturated") may have more partners than the graph holds; a pair
//! can only be missing from the graph if *both* its items are saturated (an unsaturated item's
//! row lists every item above its k-th cosine), so the extension is an exact GEMM of the
//! saturated items against each other, not against all items. With an exact graph the pair set
//! is complete; with a partitioned graph it inherits that graph's (high) recall.
//!
//! Reported cosines are recomputed from the embeddings with f32 products accumulated in f64 in
//! index order: the value does not depend on the route or on GEMM blocking, and the ≥ T test
//! is made on it (candidates are gathered with a small slack below T so that GEMM rounding
//! cannot hide a pair).
//!
//! Grouping ([`Grouping`]): `Star` is the recommended default. Connected components chain at low
//! thresholds (a→b→c with a and c far apart: clinc150 at T=0.90 has a 115-item component), and a
//! label given to a chain's representative is then propagated to items that are not near-copies
//! of it. Star guarantees that every member of a group has cosine ≥ T with its representative.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use std::borrow::Cow;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;
use crate::round::rows::{PoolRows, RowLookup};

/// Candidate slack below the threshold, covering f32 GEMM rounding (|error| ≪ 1e-4 at d=384).
const SLACK: f32 = 1e-4;

/// Two items whose cosine is at least the threshold; `a < b` in input order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DupPair {
    /// The earlier item (input order).
    pub a: u32,
    /// The later item.
    pub b: u32,
    /// Cosine recomputed from the embeddings in f64 (dot over the product of norms), kept in
    /// f64 so that a pair reported at `T` reads as ≥ `T` in any consumer (an f32 rounding of a
    /// value just above 0.9 can read as 0.89999998).
    pub cosine: f64,
}

/// How duplicate pairs form groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Connected components of the pair graph (transitive: chains at low thresholds).
    Connected,
    /// Stars: each group is a representative plus the members with cosine ≥ T to it, chosen
    /// greedily — the item with the most near-duplicates still ungrouped becomes a
    /// representative and takes them all (recommended: no chains, linear in the pairs).
    Star,
}

/// Duplicate groups over all n items.
#[derive(Debug, Clone, PartialEq)]
pub struct DupGroups {
    /// Group id per item: the smallest member index of its group (a singleton's own index).
    pub group: Vec<i64>,
    /// True for the item that stands for its group, the only member a batch may hold. `Star`:
    /// the hub, the item that had the most still-ungrouped near-duplicates when its star was
    /// formed (ties: lowest index). `Connected`: the member with the highest mean cosine to the
    /// rest of the component (ties: lowest index). Singletons stand for themselves (true).
    pub representative: Vec<bool>,
    /// Size of each item's group (1 for singletons).
    pub group_size: Vec<u32>,
    /// Number of groups with at least two members.
    pub n_groups_with_duplicates: usize,
}

/// Dot product of two rows, f32 products summed in f64 in index order.
fn dot64(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Every pair of items with cosine ≥ `threshold`, each once with `a < b`, sorted by `(a, b)`.
///
/// Uses the graph's edges and, for saturated items, an exact search among them (see the module
/// docs). That search costs O(s²·d) for s saturated items: negligible at the usual thresholds
/// (0.90–0.98), but at low thresholds on large pools nearly every item saturates and it
/// approaches brute force (the output itself then grows quadratically as well). If `graph` does not describe `emb` (different item count), all items are treated as
/// saturated, which is exact and O(n²·d).
pub fn find_pairs(emb: ArrayView2<f32>, graph: &NeighborGraph, threshold: f64) -> Vec<DupPair> {
    let n = emb.nrows();
    if n < 2 || !threshold.is_finite() {
        return Vec::new();
    }
    let emb = emb.as_standard_layout();
    let emb = emb.view();
    let lo = threshold as f32 - SLACK;
    let k = graph.k;
    let usable = k > 0 && graph.len() == n;
    let mut cand: Vec<(u32, u32)> = Vec::new();
    let saturated: Vec<u32> = if usable {
        cand = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let (nb, cs) = graph.row(i);
                nb.iter()
                    .zip(cs)
                    .filter(move |(_, &c)| c >= lo)
                    .map(move |(&j, _)| {
                        let i = i as u32;
                        (i.min(j), i.max(j))
                    })
            })
            .collect();
        (0..n as u32)
            .filter(|&i| graph.row(i as usize).1[k - 1] >= lo)
            .collect()
    } else {
        (0..n as u32).collect()
    };
    if saturated.len() >= 2 {
        cand.extend(pairs_among(emb, &saturated, lo));
    }
    cand.par_sort_unstable();
    cand.dedup();
    cand.into_par_iter()
        .filter_map(|(a, b)| {
            let c = cosine64(emb.row(a as usize), emb.row(b as usize));
            (a != b && c >= threshold).then_some(DupPair { a, b, cosine: c })
        })
        .collect()
}

/// Cosine in f64: the dot product over the product of norms (rows are unit only up to f32
/// rounding, which matters right at a threshold).
fn cosine64(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    let d = dot64(a, b);
    let na = dot64(a, a).sqrt();
    let nb = dot64(b, b).sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        d / (na * nb)
    }
}

/// Rows per GEMM block when searching among saturated items.
const SAT_BLOCK: usize = 512;

/// Pairs `(a, b)`, `a < b`, among `items` (sorted ascending) whose GEMM cosine is ≥ `lo`.
/// Blocked upper triangle, parallel over row blocks, collected in block order.
fn pairs_among(emb: ArrayView2<f32>, items: &[u32], lo: f32) -> Vec<(u32, u32)> {
    let idx: Vec<usize> = items.iter().map(|&i| i as usize).collect();
    let x = emb.select(Axis(0), &idx);
    let m = items.len();
    let nblocks = m.div_ceil(SAT_BLOCK);
    let per_block: Vec<Vec<(u32, u32)>> = (0..nblocks)
        .into_par_iter()
        .map(|b| {
            let r0 = b * SAT_BLOCK;
            let r1 = (r0 + SAT_BLOCK).min(m);
            let qv = x.slice(s![r0..r1, ..]);
            let mut out = Vec::new();
            let mut sc = Array2::<f32>::zeros((r1 - r0, SAT_BLOCK));
            let mut c0 = r0;
            while c0 < m {
                let c1 = (c0 + SAT_BLOCK).min(m);
                let cv = x.slice(s![c0..c1, ..]);
                let mut o = sc.slice_mut(s![.., 0..c1 - c0]);
                general_mat_mul(1.0, &qv, &cv.t(), 0.0, &mut o);
                for r in 0..r1 - r0 {
                    let gi = r0 + r;
                    for (c, &v) in o.row(r).iter().enumerate() {
                        let gj = c0 + c;
                        if gj > gi && v >= lo {
                            out.push((items[gi], items[gj]));
                        }
                    }
                }
                c0 = c1;
            }
            out
        })
        .collect();
    per_block.concat()
}

/// The pair graph as adjacency lists (CSR), built once so that splitting a component costs
/// only that component's size and edges, never all n items and all pairs.
struct Adjacency {
    offsets: Vec<usize>,
    partners: Vec<u32>,
}

impl Adjacency {
    fn new(n: usize, pairs: &[DupPair]) -> Adjacency {
        let mut deg = vec![0usize; n + 1];
        for p in pairs {
            deg[p.a as usize + 1] += 1;
            deg[p.b as usize + 1] += 1;
        }
        for i in 0..n {
            deg[i + 1] += deg[i];
        }
        let mut fill = deg.clone();
        let mut partners = vec![0u32; deg[n]];
        for p in pairs {
            partners[fill[p.a as usize]] = p.b;
            fill[p.a as usize] += 1;
            partners[fill[p.b as usize]] = p.a;
            fill[p.b as usize] += 1;
        }
        Adjacency {
            offsets: deg,
            partners,
        }
    }

    fn of(&self, x: u32) -> &[u32] {
        &self.partners[self.offsets[x as usize]..self.offsets[x as usize + 1]]
    }

    /// Connected components (size ≥ 2) among `members` (ascending), each sorted, in order of
    /// their smallest member. `mark` is scratch space, all false on entry and on return.
    fn split(&self, members: &[u32], mark: &mut [bool]) -> Vec<Vec<u32>> {
        for &m in members {
            mark[m as usize] = true;
        }
        let mut out = Vec::new();
        let mut stack = Vec::new();
        for &m in members {
            if !mark[m as usize] {
                continue;
            }
            mark[m as usize] = false;
            let mut comp = vec![m];
            stack.push(m);
            while let Some(x) = stack.pop() {
                for &y in self.of(x) {
                    if mark[y as usize] {
                        mark[y as usize] = false;
                        comp.push(y);
                        stack.push(y);
                    }
                }
            }
            if comp.len() >= 2 {
                comp.sort_unstable();
                out.push(comp);
            }
        }
        out
    }
}

/// Greedy star cover of the pair graph: repeatedly the item with the most ungrouped partners
/// (ties: lowest index) becomes a representative and takes those partners, which are ≥ T to it
/// by construction. A lazy max-heap keyed on the live degree makes it O(pairs · log n); stars of
/// a single item (all partners already taken) stay singletons. `emit(members sorted, rep)`.
fn star_cover(adjacency: &Adjacency, involved: &[u32], emit: &mut impl FnMut(&[u32], u32)) {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    let mut degree: HashMap<u32, usize> = involved
        .iter()
        .map(|&x| (x, adjacency.of(x).len()))
        .collect();
    let mut taken: HashMap<u32, bool> = involved.iter().map(|&x| (x, false)).collect();
    let mut heap: BinaryHeap<(usize, Reverse<u32>)> =
        involved.iter().map(|&x| (degree[&x], Reverse(x))).collect();
    while let Some((deg, Reverse(hub))) = heap.pop() {
        if taken[&hub] || deg != degree[&hub] {
            continue; // stale entry
        }
        if deg == 0 {
            continue; // no ungrouped partner left: a singleton
        }
        let mut star: Vec<u32> = adjacency
            .of(hub)
            .iter()
            .copied()
            .filter(|y| !taken[y])
            .collect();
        star.push(hub);
        star.sort_unstable();
        star.dedup();
        for &m in &star {
            taken.insert(m, true);
        }
        // Partners of the new members lose them as ungrouped partners.
        for &m in &star {
            for &y in adjacency.of(m) {
                if !taken[&y] {
                    let d = degree.get_mut(&y).expect("involved");
                    *d -= 1;
                    heap.push((*d, Reverse(y)));
                }
            }
        }
        emit(&star, hub);
    }
}

/// Index (into `members`) of the member with the highest mean cosine to the others (ties:
/// lowest index). Uses `x_i · Σ_j x_j − x_i · x_i`, O(size·d), f64 sums in member order.
fn representative_of(emb: &RowLookup<'_>, members: &[u32]) -> usize {
    let Some(&first) = members.first() else {
        return 0;
    };
    let d = emb.row(first as usize).len();
    let mut sum = vec![0f64; d];
    for &m in members {
        for (s, &v) in sum.iter_mut().zip(emb.row(m as usize).iter()) {
            *s += f64::from(v);
        }
    }
    let mut best = 0usize;
    let mut best_v = f64::NEG_INFINITY;
    for (pos, &m) in members.iter().enumerate() {
        let row = emb.row(m as usize);
        let to_sum: f64 = row.iter().zip(&sum).map(|(&x, &s)| f64::from(x) * s).sum();
        let v = to_sum - dot64(row, row);
        if v > best_v {
            best_v = v;
            best = pos;
        }
    }
    best
}

/// Groups the items from their duplicate `pairs` (as returned by [`find_pairs`] at
/// `threshold`). Pairs naming items ≥ `n` are ignored. `Connected` reads the rows of the paired
/// items, `Star` none (a cluster's pairs are grouped without the whole matrix).
///
/// `Connected`: union-find components. `Star`: within each component the representative takes
/// every member with cosine ≥ `threshold` to it; the remaining members are split into the
/// components of the pairs among them and grouped again the same way, until none is left
/// (a member with no partner left becomes a singleton). Group ids are the smallest member
/// index, so the output is deterministic.
pub fn groups(
    n: usize,
    pairs: &[DupPair],
    rows: &dyn PoolRows,
    grouping: Grouping,
    threshold: f64,
) -> Result<DupGroups> {
    let n = n.min(rows.n_rows());
    // Only a component's representative reads rows (its members' mean cosine); a star's hub is
    // chosen from the pairs alone.
    let mut involved: Vec<usize> = match grouping {
        Grouping::Connected => pairs
            .iter()
            .flat_map(|p| [p.a as usize, p.b as usize])
            .filter(|&i| i < n)
            .collect(),
        Grouping::Star => Vec::new(),
    };
    involved.sort_unstable();
    involved.dedup();
    let emb = RowLookup::new(rows, involved)?;
    Ok(groups_in(n, pairs, &emb, grouping, threshold))
}

/// [`groups`] with the paired items' rows at hand.
fn groups_in(
    n: usize,
    pairs: &[DupPair],
    emb: &RowLookup<'_>,
    grouping: Grouping,
    threshold: f64,
) -> DupGroups {
    // Copied only when some pair must be dropped: a cluster's pool hands over millions.
    let valid = |p: &DupPair| (p.a as usize) < n && (p.b as usize) < n && p.a != p.b;
    let pairs: Cow<'_, [DupPair]> = if pairs.iter().all(valid) {
        Cow::Borrowed(pairs)
    } else {
        Cow::Owned(pairs.iter().copied().filter(valid).collect())
    };
    let mut out = DupGroups {
        group: (0..n as i64).collect(),
        representative: vec![true; n],
        group_size: vec![1; n],
        n_groups_with_duplicates: 0,
    };
    let finish = |members: &[u32], rep: u32, out: &mut DupGroups| {
        let gid = i64::from(members[0]);
        for &m in members {
            let mi = m as usize;
            out.group[mi] = gid;
            out.representative[mi] = m == rep;
            out.group_size[mi] = members.len() as u32;
        }
        out.n_groups_with_duplicates += 1;
    };
    let _ = threshold;
    let adjacency = Adjacency::new(n, &pairs);
    let mut mark = vec![false; n];
    // The paired items, ascending: marked in one pass (not two entries per pair, sorted).
    let mut paired = vec![false; n];
    for p in pairs.iter() {
        paired[p.a as usize] = true;
        paired[p.b as usize] = true;
    }
    let involved: Vec<u32> = (0..n as u32).filter(|&i| paired[i as usize]).collect();
    drop(paired);
    if grouping == Grouping::Star {
        star_cover(&adjacency, &involved, &mut |star: &[u32], rep: u32| {
            finish(star, rep, &mut out)
        });
        return out;
    }
    for comp in adjacency.split(&involved, &mut mark) {
        let rep = comp[representative_of(emb, &comp)];
        finish(&comp, rep, &mut out);
    }
    out
}

/// Near-duplicate parameters, validated on construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DedupParams {
    /// Cosine at or above which two items are near-duplicates, in (0, 1].
    pub threshold: f64,
    /// How pairs form groups.
    pub grouping: Grouping,
}

impl DedupParams {
    /// Checks the threshold is in (0, 1].
    pub fn new(threshold: f64, grouping: Grouping) -> Result<DedupParams> {
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::Usage(format!(
                "duplicate threshold must be in (0, 1], got {threshold}"
            )));
        }
        Ok(DedupParams {
            threshold,
            grouping,
        })
    }
}

impl Default for DedupParams {
    fn default() -> Self {
        DedupParams {
            threshold: 0.95,
            grouping: Grouping::Star,
        }
    }
}

/// Pairs and groups, computed once and shared by the stages that need them.
#[derive(Debug, Clone)]
pub struct Duplicates {
    /// Cosine similarity at or above which two items count as duplicates.
    pub threshold: f64,
    /// How pairs were joined into groups.
    pub grouping: Grouping,
    /// Every pair at or above the threshold.
    pub pairs: Vec<DupPair>,
    /// The groups the pairs form.
    pub groups: DupGroups,
}

/// summary.json's view of the duplicates.
#[derive(Debug, Serialize)]
pub struct DuplicatesSummary {
    /// Cosine similarity threshold used.
    pub threshold: f64,
    /// Grouping rule used, by name.
    pub grouping: String,
    /// Duplicate pairs found.
    pub pairs: usize,
    /// Groups with more than one member.
    pub groups_with_duplicates: usize,
    /// Items that belong to such a group.
    pub items_in_groups: usize,
    /// Items that need no label of their own: group members other than the representative.
    pub labels_saved: usize,
    /// Members of the biggest group, to spot a threshold set too low.
    pub largest_group: usize,
}

impl Duplicates {
    /// Finds the pairs on the graph (extended past top-k where needed) and groups them.
    pub fn find(emb: ArrayView2<f32>, graph: &NeighborGraph, params: &DedupParams) -> Duplicates {
        let args = params;
        let pairs = find_pairs(emb, graph, args.threshold);
        let rows = RowLookup::whole(emb);
        let groups = groups_in(emb.nrows(), &pairs, &rows, args.grouping, args.threshold);
        Duplicates {
            threshold: args.threshold,
            grouping: args.grouping,
            pairs,
            groups,
        }
    }

    /// Groups pairs found elsewhere (a cluster's stage, which finds the same pairs as
    /// [`find_pairs`] given the same graph), reading only the paired items' rows.
    pub fn from_pairs(
        pairs: Vec<DupPair>,
        rows: &dyn PoolRows,
        params: &DedupParams,
    ) -> Result<Duplicates> {
        let n = rows.n_rows();
        let groups = groups(n, &pairs, rows, params.grouping, params.threshold)?;
        Ok(Duplicates {
            threshold: params.threshold,
            grouping: params.grouping,
            pairs,
            groups,
        })
    }

    /// Group id per item, −1 for items without a near-duplicate: the form auto-labeling and
    /// selection take.
    pub fn group_or_none(&self) -> Vec<i64> {
        self.groups
            .group
            .iter()
            .zip(&self.groups.group_size)
            .map(|(&g, &size)| if size > 1 { g } else { -1 })
            .collect()
    }

    /// Figures for summary.json and the report.
    pub fn summary(&self) -> DuplicatesSummary {
        // A group's id is its smallest member, so each group is counted once, at that member.
        let g = &self.groups;
        let multi: Vec<usize> = (0..g.group.len())
            .filter(|&i| g.group[i] == i as i64 && g.group_size[i] > 1)
            .map(|i| g.group_size[i] as usize)
            .collect();
        DuplicatesSummary {
            threshold: self.threshold,
            grouping: format!("{:?}", self.grouping).to_lowercase(),
            pairs: self.pairs.len(),
            groups_with_duplicates: multi.len(),
            items_in_groups: multi.iter().sum(),
            labels_saved: multi.iter().map(|s| s - 1).sum(),
            largest_group: multi.iter().copied().max().unwrap_or(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans::tests::{clustered, rand_distr_free::normal};
    use crate::index::{build, GraphParams, IndexKind};
    use indicatif::ProgressBar;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn brute_pairs(x: ArrayView2<f32>, t: f64) -> Vec<(u32, u32)> {
        let n = x.nrows();
        let mut v = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if cosine64(x.row(a), x.row(b)) >= t {
                    v.push((a as u32, b as u32));
                }
            }
        }
        v
    }

    fn unit(mut v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn fifty_copies_give_all_pairs() {
        let d = 32;
        let mut x = clustered(400, d, 8, 1.0, 3);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let base = x.row(10).to_owned();
        // 50 near-copies of item 10 scattered over the input (10 itself is one of them).
        let slots: Vec<usize> = (0..50).map(|i| 10 + i * 7).collect();
        for &s in &slots {
            let v: Vec<f32> = base.iter().map(|&b| b + 0.002 * normal(&mut rng)).collect();
            x.row_mut(s).assign(&ndarray::Array1::from(unit(v)));
        }
        let p = GraphParams {
            k: 16,
            index: IndexKind::Exact,
            ..Default::default()
        };
        let (g, _) = build(x.view(), &p, &ProgressBar::hidden()).unwrap();
        let pairs = find_pairs(x.view(), &g, 0.95);
        let got: Vec<(u32, u32)> = pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(got, brute_pairs(x.view(), 0.95));
        let copies = pairs
            .iter()
            .filter(|p| slots.contains(&(p.a as usize)) && slots.contains(&(p.b as usize)))
            .count();
        assert_eq!(copies, 1225);
        assert!(pairs
            .windows(2)
            .all(|w| (w[0].a, w[0].b) < (w[1].a, w[1].b)));
        for grouping in [Grouping::Connected, Grouping::Star] {
            let gr = groups(x.nrows(), &pairs, &x, grouping, 0.95).unwrap();
            assert_eq!(gr.group[slots[49]], 10);
            assert_eq!(gr.group_size[10], 50);
            assert_eq!(slots.iter().filter(|&&s| gr.representative[s]).count(), 1);
        }
        // same pairs from a graph for other data → full fallback, still exact
        let empty = NeighborGraph {
            k: 0,
            neighbors: vec![],
            cosines: vec![],
        };
        assert_eq!(find_pairs(x.view(), &empty, 0.95), pairs);
    }

    #[test]
    fn star_breaks_chains() {
        // A chain on a circle arc: neighbours at cos ≈ 0.995, ends far apart.
        let steps = 9;
        let mut x = Array2::<f32>::zeros((steps, 2));
        for i in 0..steps {
            let a = i as f32 * 0.1;
            x[[i, 0]] = a.cos();
            x[[i, 1]] = a.sin();
        }
        let t = 0.99; // cos(0.1) = 0.995 ≥ t, cos(0.2) = 0.980 < t
        let g = build(
            x.view(),
            &GraphParams {
                k: 2,
                index: IndexKind::Exact,
                ..Default::default()
            },
            &ProgressBar::hidden(),
        )
        .unwrap()
        .0;
        let pairs = find_pairs(x.view(), &g, t);
        assert_eq!(pairs.len(), steps - 1);
        let c = groups(steps, &pairs, &x, Grouping::Connected, t).unwrap();
        assert!(c.group.iter().all(|&gid| gid == 0));
        assert_eq!(c.n_groups_with_duplicates, 1);
        assert!(c.representative[4]); // the middle of the chain
        assert_eq!(c.representative.iter().filter(|&&r| r).count(), 1);
        let st = groups(steps, &pairs, &x, Grouping::Star, t).unwrap();
        // {3,4,5} around 4, then {0,1,2} and {6,7,8} around 1 and 7.
        assert_eq!(st.group, vec![0, 0, 0, 3, 3, 3, 6, 6, 6]);
        assert_eq!(st.n_groups_with_duplicates, 3);
        let paired = |a: usize, b: usize| {
            pairs
                .iter()
                .any(|p| (p.a as usize, p.b as usize) == (a.min(b), a.max(b)) && p.cosine >= t)
        };
        let d = Duplicates {
            threshold: t,
            grouping: Grouping::Star,
            pairs: pairs.clone(),
            groups: st.clone(),
        };
        let s = d.summary();
        assert_eq!(
            (s.groups_with_duplicates, s.items_in_groups, s.labels_saved),
            (3, 9, 6)
        );
        assert_eq!((s.pairs, s.largest_group), (steps - 1, 3));
        for i in 0..steps {
            assert_eq!(st.representative[i], [1, 4, 7].contains(&i));
            // Every member is a near-duplicate of its star's hub.
            let hub = [1, 4, 7][i / 3];
            assert!(i == hub || paired(i, hub), "{i} not paired with {hub}");
        }
    }

    #[test]
    fn identical_pair_and_singletons() {
        let x = Array2::from_shape_vec((3, 2), vec![0.6f32, 0.8, 0.6, 0.8, 1.0, 0.0]).unwrap();
        let g = build(x.view(), &GraphParams::default(), &ProgressBar::hidden())
            .unwrap()
            .0;
        let pairs = find_pairs(x.view(), &g, 0.98);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].a, pairs[0].b), (0, 1));
        let gr = groups(3, &pairs, &x, Grouping::Star, 0.98).unwrap();
        assert_eq!(gr.group, vec![0, 0, 2]);
        assert_eq!(gr.representative, vec![true, false, true]);
        assert_eq!(gr.n_groups_with_duplicates, 1);
        let d = Duplicates {
            threshold: 0.98,
            grouping: Grouping::Star,
            pairs: pairs.clone(),
            groups: gr,
        };
        let s = d.summary();
        assert_eq!((s.groups_with_duplicates, s.items_in_groups), (1, 2));
        assert_eq!((s.labels_saved, s.largest_group), (1, 2));
        assert!(find_pairs(x.slice(s![0..1, ..]), &g, 0.9).is_empty());
    }
}
