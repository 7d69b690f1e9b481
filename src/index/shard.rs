//! The partitioned route cut into pieces that run apart, for a cluster (`labelwise.distributed`
//! runs them as Ray tasks over Parquet shards): the map and reduce halves of a Lloyd step over
//! shards, and the search of one group of lists given its members and the *halo* (the lists
//! its items probe).
//!
//! The kernels are the single-process route's ([`crate::index::partitioned`]): the same
//! list-by-list GEMMs and the same strict order (higher cosine, then lower index). A group's
//! rows are passed in increasing global order, so local indices order like global ones and a
//! row's neighbours among the rows it probes are exactly those the single-process search finds
//! for the same centroids. The single-process route's neighbour-of-neighbour refinement reads
//! other rows' lists, so it is a second pass ([`Refine`]) over the searched lists: given the
//! same centroids, the refined lists are bit-identical to the single-process ones. The
//! near-duplicate pairs are taken from the refined lists as `round::dedup` takes them from the
//! single process's graph: each refinement task's list edges ([`threshold_pairs`]), and the
//! saturated rows compared exactly with each other in tiles ([`tile_pairs`]).

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::kmeans::bucket_by;
pub use crate::index::kmeans::{centroid_sums, centroids_from_sums, CentroidSums};
use crate::index::partitioned::{Lists, REFINE_EXPAND};
use crate::index::topk::{dot, exact_topk, topk_push};

/// Candidate slack below a pair threshold, covering f32 GEMM rounding (as `round::dedup`).
const SLACK: f32 = 1e-4;

/// One group of lists to search: its own rows (the owners) and the halo rows they probe.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// Unit rows, owners and halo together, in increasing global order.
    pub emb: ArrayView2<'a, f32>,
    /// Global index of every row, strictly increasing.
    pub ids: &'a [u32],
    /// Home list (nearest centroid) of every row: the list it is a member of.
    pub home: &'a [u32],
    /// Whether each row is an owner (its neighbours are computed here).
    pub owner: &'a [bool],
    /// Probed lists of every row, `p` per row (nearest first; the first is its home).
    pub probes: &'a [u32],
    /// Lists each row probes.
    pub p: usize,
    /// Lists in the whole partition.
    pub nlist: usize,
}

/// A near-duplicate pair found on the cluster: `a < b` global indices, `cosine` recomputed in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupPair {
    /// The earlier item.
    pub a: u32,
    /// The later item.
    pub b: u32,
    /// Dot over the product of norms, f32 products summed in f64 in index order.
    pub cosine: f64,
}

/// What one group computed for its owners.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResult {
    /// Global index of each owner, increasing.
    pub rows: Vec<u32>,
    /// Neighbours per owner (row-major `rows.len() × k`, global indices, best first).
    pub neighbors: Vec<u32>,
    /// The matching cosines.
    pub cosines: Vec<f32>,
}

impl Group<'_> {
    /// Checks the shapes and that `ids` increase and `home`/`probes` are valid lists.
    fn validate(&self) -> Result<Vec<u32>> {
        let n = self.emb.nrows();
        let bad = |m: String| Err(Error::Usage(format!("search group: {m}")));
        if self.ids.len() != n || self.home.len() != n || self.owner.len() != n {
            return bad(format!(
                "{n} rows but {} ids, {} homes, {} owner flags",
                self.ids.len(),
                self.home.len(),
                self.owner.len()
            ));
        }
        if self.ids.windows(2).any(|w| w[0] >= w[1]) {
            return bad("global ids must be strictly increasing".into());
        }
        let owners: Vec<u32> = (0..n as u32).filter(|&i| self.owner[i as usize]).collect();
        if self.p == 0 || self.probes.len() != n * self.p {
            return bad(format!(
                "{n} rows need {} probes each, got {} values",
                self.p,
                self.probes.len()
            ));
        }
        if self
            .home
            .iter()
            .chain(self.probes)
            .any(|&l| l as usize >= self.nlist)
        {
            return bad(format!("a list id is not below {}", self.nlist));
        }
        Ok(owners)
    }

    /// The owners' top-`k` among the members of their probed lists (rows whose probed lists
    /// hold fewer than `k` others: among all the group's rows). Pairs are taken after the
    /// refinement ([`threshold_pairs`], [`tile_pairs`]), as the single process takes them.
    pub fn search(&self, k: usize) -> Result<GroupResult> {
        let owners = self.validate()?;
        if k == 0 || k >= self.emb.nrows() {
            return Err(Error::Usage(format!(
                "search group: k = {k} with {} rows loaded",
                self.emb.nrows()
            )));
        }
        let emb = self.emb.as_standard_layout();
        let emb = emb.view();
        let (m_off, m_ord) = bucket_by(self.home, self.nlist);
        let lists = Lists {
            emb,
            k,
            nlist: self.nlist,
            m_off: &m_off,
            m_ord: &m_ord,
        };
        let mut nb = vec![0u32; owners.len() * k];
        let mut cs = vec![0f32; owners.len() * k];
        let p = self.p;
        let probed: Vec<u32> = owners
            .iter()
            .flat_map(|&u| self.probes_of(u).iter().copied())
            .collect();
        lists.search(&owners, &probed, p, &mut nb, &mut cs)?;
        complete_short(emb, &owners, k, &mut nb, &mut cs);
        Ok(GroupResult {
            rows: owners.iter().map(|&u| self.ids[u as usize]).collect(),
            neighbors: nb.iter().map(|&j| self.ids[j as usize]).collect(),
            cosines: cs,
        })
    }

    /// Probed lists of local row `r`.
    fn probes_of(&self, r: u32) -> &[u32] {
        &self.probes[r as usize * self.p..(r as usize + 1) * self.p]
    }
}

/// The searched rows a refinement task holds, and the unit rows of every item it may compare.
#[derive(Debug, Clone, Copy)]
pub struct Refine<'a> {
    /// Unit rows of the owners and of every candidate, in increasing global order.
    pub emb: ArrayView2<'a, f32>,
    /// Global index of each row of `emb`, strictly increasing.
    pub ids: &'a [u32],
    /// Global indices whose searched neighbour lists are held here, strictly increasing.
    pub rows: &'a [u32],
    /// Their searched neighbours (`rows.len() × k`, global indices).
    pub neighbors: &'a [u32],
    /// The matching cosines.
    pub cosines: &'a [f32],
    /// Neighbours per row.
    pub k: usize,
}

impl Refine<'_> {
    /// The single-process route's neighbour-of-neighbour pass
    /// ([`crate::index::partitioned`]'s `refine_rows`) for the global rows `owners`: each also
    /// considers the lists of its first 8 (`REFINE_EXPAND`) neighbours. Needs the searched lists
    /// of the owners and of those neighbours, and the rows of every candidate; given them the
    /// result is bit-identical to the single-process pass. Returns neighbours and cosines.
    pub fn refine(&self, owners: &[u32]) -> Result<(Vec<u32>, Vec<f32>)> {
        let k = self.k;
        let n = self.rows.len();
        if self.neighbors.len() != n * k
            || self.cosines.len() != n * k
            || self.ids.len() != self.emb.nrows()
        {
            return Err(Error::Usage("refine: shapes do not match".into()));
        }
        let emb = self.emb.as_standard_layout();
        let row_of = |g: u32| -> Result<usize> {
            self.rows
                .binary_search(&g)
                .map_err(|_| Error::Usage(format!("refine: no searched list for item {g}")))
        };
        let emb_of = |g: u32| -> Result<usize> {
            self.ids
                .binary_search(&g)
                .map_err(|_| Error::Usage(format!("refine: no embedding for item {g}")))
        };
        let out: Vec<Result<(Vec<u32>, Vec<f32>)>> = owners
            .par_iter()
            .map(|&i| {
                let r = row_of(i)?;
                let own = &self.neighbors[r * k..(r + 1) * k];
                let mut nb = own.to_vec();
                let mut cs = self.cosines[r * k..(r + 1) * k].to_vec();
                let mut cand: Vec<u32> = Vec::new();
                for &j in own.iter().take(REFINE_EXPAND) {
                    let rj = row_of(j)?;
                    cand.extend(
                        self.neighbors[rj * k..(rj + 1) * k]
                            .iter()
                            .filter(|&&l| l != i),
                    );
                }
                cand.sort_unstable();
                cand.dedup();
                let ri = emb.row(emb_of(i)?);
                let ri = ri
                    .as_slice()
                    .ok_or_else(|| Error::Internal("refine: row layout".into()))?;
                for &c in &cand {
                    if own.contains(&c) {
                        continue;
                    }
                    let rc = emb.row(emb_of(c)?);
                    if let Some(rc) = rc.as_slice() {
                        topk_push(&mut nb, &mut cs, c, dot(ri, rc));
                    }
                }
                Ok((nb, cs))
            })
            .collect();
        let mut nb = Vec::with_capacity(owners.len() * k);
        let mut cs = Vec::with_capacity(owners.len() * k);
        for o in out {
            let (a, b) = o?;
            nb.extend(a);
            cs.extend(b);
        }
        Ok((nb, cs))
    }
}

/// What one refinement task contributes to the near-duplicate pairs at a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdPairs {
    /// Pairs with cosine ≥ the threshold that the owners' refined lists link, each once,
    /// sorted by `(a, b)`. A pair linked from both ends comes from both ends' tasks; the
    /// driver keeps one.
    pub pairs: Vec<GroupPair>,
    /// Owners whose k-th neighbour is still ≥ the threshold (saturated), increasing: their
    /// partners may not all fit in k, so they are compared exactly among themselves
    /// ([`tile_pairs`]).
    pub saturated: Vec<u32>,
}

/// The single process's near-duplicate pairs (`round::dedup::find_pairs`) cut by owners: the
/// edges of the rows `owners`' refined lists (`neighbors`/`cosines`, `owners.len() × k`) whose
/// cosine is within the f32 slack of `threshold`, kept when the cosine recomputed in f64 is
/// ≥ `threshold`; and which owners are saturated. `emb`/`ids` (increasing) hold the unit rows
/// of the owners and of every item in their lists. Given the same graph, the union of every
/// task's pairs and of the saturated tiles is the single process's set, cosines bit for bit.
pub fn threshold_pairs(
    emb: ArrayView2<f32>,
    ids: &[u32],
    owners: &[u32],
    neighbors: &[u32],
    cosines: &[f32],
    k: usize,
    threshold: f64,
) -> Result<ThresholdPairs> {
    if k == 0
        || neighbors.len() != owners.len() * k
        || cosines.len() != neighbors.len()
        || ids.len() != emb.nrows()
    {
        return Err(Error::Usage("threshold pairs: shapes do not match".into()));
    }
    let lo = threshold as f32 - SLACK;
    let mut cand: Vec<(u32, u32)> = Vec::new();
    let mut saturated = Vec::new();
    for (u, &q) in owners.iter().enumerate() {
        let (nb, cs) = (&neighbors[u * k..(u + 1) * k], &cosines[u * k..(u + 1) * k]);
        cand.extend(
            nb.iter()
                .zip(cs)
                .filter(|(&j, &c)| c >= lo && j != q)
                .map(|(&j, _)| (q.min(j), q.max(j))),
        );
        if cs[k - 1] >= lo {
            saturated.push(q);
        }
    }
    cand.sort_unstable();
    cand.dedup();
    saturated.sort_unstable();
    let emb = emb.as_standard_layout();
    let at = |g: u32| -> Result<usize> {
        ids.binary_search(&g)
            .map_err(|_| Error::Usage(format!("threshold pairs: no embedding for item {g}")))
    };
    let found: Vec<Result<Option<GroupPair>>> = cand
        .par_iter()
        .map(|&(a, b)| {
            let c = cosine64(emb.row(at(a)?), emb.row(at(b)?));
            Ok((c >= threshold).then_some(GroupPair { a, b, cosine: c }))
        })
        .collect();
    let mut pairs = Vec::new();
    for f in found {
        pairs.extend(f?);
    }
    Ok(ThresholdPairs { pairs, saturated })
}

/// Rows of the first block per GEMM in [`tile_pairs`].
const TILE_ROWS: usize = 512;

/// One tile of the exact search among saturated items (the single process's, cut into tiles
/// so that no task holds them all): every `(a, b)`, `a` from block `first`, `b` from block
/// `second`, `a < b`, whose GEMM cosine is within the f32 slack of `threshold` and whose cosine
/// recomputed in f64 is ≥ `threshold`, sorted by `(a, b)`. A block is `(unit rows, global
/// ids)`; a diagonal tile passes the same block twice.
pub fn tile_pairs(
    first: (ArrayView2<f32>, &[u32]),
    second: (ArrayView2<f32>, &[u32]),
    threshold: f64,
) -> Result<Vec<GroupPair>> {
    let ((xa, ia), (xb, ib)) = (first, second);
    if xa.nrows() != ia.len() || xb.nrows() != ib.len() || xa.ncols() != xb.ncols() {
        return Err(Error::Usage(format!(
            "saturated tile: {} × {} rows for {} ids against {} × {} rows for {} ids",
            xa.nrows(),
            xa.ncols(),
            ia.len(),
            xb.nrows(),
            xb.ncols(),
            ib.len()
        )));
    }
    let (xa, xb) = (xa.as_standard_layout(), xb.as_standard_layout());
    let lo = threshold as f32 - SLACK;
    let per_chunk: Vec<Vec<GroupPair>> = (0..xa.nrows().div_ceil(TILE_ROWS))
        .into_par_iter()
        .map(|c| {
            let (r0, r1) = (c * TILE_ROWS, ((c + 1) * TILE_ROWS).min(xa.nrows()));
            let mut sc = Array2::<f32>::zeros((r1 - r0, xb.nrows()));
            general_mat_mul(1.0, &xa.slice(s![r0..r1, ..]), &xb.t(), 0.0, &mut sc);
            let mut out = Vec::new();
            for (r, row) in sc.outer_iter().enumerate() {
                let a = ia[r0 + r];
                for (j, &v) in row.iter().enumerate() {
                    if ib[j] > a && v >= lo {
                        let cosine = cosine64(xa.row(r0 + r), xb.row(j));
                        if cosine >= threshold {
                            out.push(GroupPair {
                                a,
                                b: ib[j],
                                cosine,
                            });
                        }
                    }
                }
            }
            out
        })
        .collect();
    let mut pairs = per_chunk.concat();
    pairs.sort_unstable_by_key(|p| (p.a, p.b));
    Ok(pairs)
}

/// Owners whose probed lists held fewer than `k` others are searched exactly among all rows.
fn complete_short(emb: ArrayView2<f32>, owners: &[u32], k: usize, nb: &mut [u32], cs: &mut [f32]) {
    let short: Vec<usize> = (0..owners.len())
        .filter(|&u| nb[u * k + k - 1] == u32::MAX)
        .collect();
    if short.is_empty() {
        return;
    }
    let rows: Vec<usize> = short.iter().map(|&u| owners[u] as usize).collect();
    let qv = emb.select(Axis(0), &rows);
    let self_ids: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
    let mut snb = vec![0u32; short.len() * k];
    let mut scs = vec![0f32; short.len() * k];
    exact_topk(emb, qv.view(), &self_ids, k, &mut snb, &mut scs, None);
    for (s, &u) in short.iter().enumerate() {
        nb[u * k..(u + 1) * k].copy_from_slice(&snb[s * k..(s + 1) * k]);
        cs[u * k..(u + 1) * k].copy_from_slice(&scs[s * k..(s + 1) * k]);
    }
}

/// Cosine in f64 as `round::dedup` computes it: f32 products summed in f64 in index order, over
/// the product of the norms.
fn cosine64(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    let dot = |x: ArrayView1<f32>, y: ArrayView1<f32>| -> f64 {
        x.iter()
            .zip(y.iter())
            .map(|(&u, &v)| f64::from(u) * f64::from(v))
            .sum()
    };
    let d = dot(a, b);
    let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        d / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans::{self, tests::clustered};

    /// A pool with near-copies: clustered rows, then every 50th row copied with tiny noise.
    fn pool() -> Array2<f32> {
        let base = clustered(3000, 24, 20, 0.8, 9);
        let mut rows: Vec<f32> = base.iter().copied().collect();
        for i in (0..3000).step_by(50) {
            let mut r: Vec<f32> = base.row(i).iter().map(|v| v + 0.001).collect();
            let nn = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.iter_mut().for_each(|v| *v /= nn);
            rows.extend(r);
        }
        Array2::from_shape_vec((rows.len() / 24, 24), rows).unwrap()
    }

    /// Runs the lists `owned` as one group: owners plus the members of every list they probe.
    fn run_group(
        x: ArrayView2<f32>,
        top: &kmeans::TopCentroids,
        nlist: usize,
        owned: &[u32],
    ) -> GroupResult {
        let p = top.p;
        let home: Vec<u32> = (0..x.nrows()).map(|i| top.ids[i * p]).collect();
        let owner: Vec<bool> = home.iter().map(|h| owned.contains(h)).collect();
        let mut need = vec![false; nlist];
        for i in (0..x.nrows()).filter(|&i| owner[i]) {
            for &l in &top.ids[i * p..(i + 1) * p] {
                need[l as usize] = true;
            }
        }
        let rows: Vec<usize> = (0..x.nrows())
            .filter(|&i| owner[i] || need[home[i] as usize])
            .collect();
        let probes: Vec<u32> = rows
            .iter()
            .flat_map(|&i| top.ids[i * p..(i + 1) * p].to_vec())
            .collect();
        let emb = x.select(Axis(0), &rows);
        let ids: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
        let h: Vec<u32> = rows.iter().map(|&i| home[i]).collect();
        let o: Vec<bool> = rows.iter().map(|&i| owner[i]).collect();
        let g = Group {
            emb: emb.view(),
            ids: &ids,
            home: &h,
            owner: &o,
            probes: &probes,
            p,
            nlist,
        };
        g.search(8).unwrap()
    }

    #[test]
    fn groups_with_halos_give_the_whole_search() {
        let x = pool();
        let n = x.nrows();
        let nlist = 40;
        let km = kmeans::fit(x.view(), nlist, 10, 3).unwrap();
        let top = kmeans::assign_top(x.view(), km.centroids.view(), 6).unwrap();
        let all: Vec<u32> = (0..nlist as u32).collect();
        let whole = run_group(x.view(), &top, nlist, &all);
        assert_eq!(whole.rows, (0..n as u32).collect::<Vec<_>>());
        // Three groups of adjacent lists, each with its halo, merged by row.
        let mut rows = Vec::new();
        let mut nb = Vec::new();
        let mut cs = Vec::new();
        for part in all.chunks(14) {
            let r = run_group(x.view(), &top, nlist, part);
            rows.extend(r.rows);
            nb.extend(r.neighbors);
            cs.extend(r.cosines);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&u| rows[u]);
        let nb: Vec<u32> = order
            .iter()
            .flat_map(|&u| nb[u * 8..u * 8 + 8].to_vec())
            .collect();
        let cs: Vec<f32> = order
            .iter()
            .flat_map(|&u| cs[u * 8..u * 8 + 8].to_vec())
            .collect();
        assert_eq!(nb, whole.neighbors, "groups see what one process sees");
        assert_eq!(cs, whole.cosines);
        // Recall of the search alone against exact top-8.
        let graph = crate::index::graph::NeighborGraph {
            k: 8,
            neighbors: nb,
            cosines: cs,
        };
        let r = crate::index::graph::recall_at_10(x.view(), &graph, 500, 1);
        assert!(r > 0.97, "recall {r}");
    }

    /// The cluster's pairs from refined lists cut into `groups` of owners: each group's edge
    /// pairs, then the saturated owners compared exactly in tiles of `tile` rows; one of each.
    fn cluster_pairs(
        x: ArrayView2<f32>,
        groups: &[Vec<u32>],
        (nb, cs): (&[u32], &[f32]),
        t: f64,
        tile: usize,
    ) -> (Vec<(u32, u32, f64)>, usize) {
        let ids: Vec<u32> = (0..x.nrows() as u32).collect();
        let mut pairs = Vec::new();
        let mut sat = Vec::new();
        for owners in groups {
            let (gnb, gcs): (Vec<u32>, Vec<f32>) = owners
                .iter()
                .flat_map(|&i| (0..8).map(move |c| i as usize * 8 + c))
                .map(|e| (nb[e], cs[e]))
                .unzip();
            let r = threshold_pairs(x, &ids, owners, &gnb, &gcs, 8, t).unwrap();
            pairs.extend(r.pairs);
            sat.extend(r.saturated);
        }
        sat.sort_unstable();
        // tile = 0: the edge pairs alone.
        let blocks: Vec<(Array2<f32>, &[u32])> = sat
            .chunks(tile.max(1))
            .filter(|_| tile > 0)
            .map(|b| {
                let rows: Vec<usize> = b.iter().map(|&i| i as usize).collect();
                (x.select(Axis(0), &rows), b)
            })
            .collect();
        for (i, a) in blocks.iter().enumerate() {
            for b in &blocks[i..] {
                pairs.extend(tile_pairs((a.0.view(), a.1), (b.0.view(), b.1), t).unwrap());
            }
        }
        let mut out: Vec<(u32, u32, f64)> = pairs.iter().map(|p| (p.a, p.b, p.cosine)).collect();
        out.sort_by_key(|p| (p.0, p.1));
        out.dedup();
        (out, sat.len())
    }

    #[test]
    fn groups_then_refinement_are_the_single_process_route_bit_for_bit() {
        use crate::index::graph::{GraphParams, IndexKind};
        use crate::index::partitioned::{partition_lists, PARTITION_ITERS};
        let x = pool();
        let n = x.nrows();
        let params = GraphParams {
            k: 8,
            index: IndexKind::Partitioned,
            probes: 6,
            seed: 3,
        };
        let hidden = indicatif::ProgressBar::hidden();
        let (single, _) = crate::index::build::build(x.view(), &params, &hidden).unwrap();
        // The same centroids as the single process (same fit, same seed), then groups.
        let nlist = partition_lists(n);
        let km = kmeans::fit(x.view(), nlist, PARTITION_ITERS, 3).unwrap();
        let top = kmeans::assign_top(x.view(), km.centroids.view(), 6).unwrap();
        let all: Vec<u32> = (0..nlist as u32).collect();
        let mut nb = vec![0u32; n * 8];
        let mut cs = vec![0f32; n * 8];
        let mut owners_of = Vec::new();
        for part in all.chunks(nlist / 3 + 1) {
            let r = run_group(x.view(), &top, nlist, part);
            for (u, &row) in r.rows.iter().enumerate() {
                let i = row as usize;
                nb[i * 8..i * 8 + 8].copy_from_slice(&r.neighbors[u * 8..u * 8 + 8]);
                cs[i * 8..i * 8 + 8].copy_from_slice(&r.cosines[u * 8..u * 8 + 8]);
            }
            owners_of.push(r.rows);
        }
        let ids: Vec<u32> = (0..n as u32).collect();
        let refine = Refine {
            emb: x.view(),
            ids: &ids,
            rows: &ids,
            neighbors: &nb,
            cosines: &cs,
            k: 8,
        };
        let mut rnb = vec![0u32; n * 8];
        let mut rcs = vec![0f32; n * 8];
        for owners in &owners_of {
            let (gnb, gcs) = refine.refine(owners).unwrap();
            for (u, &row) in owners.iter().enumerate() {
                let i = row as usize;
                rnb[i * 8..i * 8 + 8].copy_from_slice(&gnb[u * 8..u * 8 + 8]);
                rcs[i * 8..i * 8 + 8].copy_from_slice(&gcs[u * 8..u * 8 + 8]);
            }
        }
        assert_eq!(rnb, single.neighbors);
        assert_eq!(rcs, single.cosines);
        // The pairs come from the refined lists as the single process's do: the same set and
        // cosines at a threshold nobody saturates (the near-copies: every brute-force pair),
        // and at one half the items saturate (their 8th cosine's median), where saturated
        // items pair beyond their lists.
        let mut kth: Vec<f32> = rcs.chunks(8).map(|c| c[7]).collect();
        kth.sort_by(f32::total_cmp);
        let half = f64::from(kth[n / 2]);
        for (t, tile) in [(0.99, 64), (half, 300)] {
            let (got, nsat) = cluster_pairs(x.view(), &owners_of, (&rnb, &rcs), t, tile);
            let want: Vec<(u32, u32, f64)> = crate::round::dedup::find_pairs(x.view(), &single, t)
                .iter()
                .map(|p| (p.a, p.b, p.cosine))
                .collect();
            assert_eq!(got, want, "pairs at T = {t}");
            let (edges_only, _) = cluster_pairs(x.view(), &owners_of, (&rnb, &rcs), t, 0);
            if t > 0.95 {
                assert_eq!(nsat, 0);
                let brute: Vec<(u32, u32)> = (0..n)
                    .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                    .filter(|&(a, b)| cosine64(x.row(a), x.row(b)) >= t)
                    .map(|(a, b)| (a as u32, b as u32))
                    .collect();
                assert_eq!(got.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(), brute);
                assert!(brute.len() >= 60);
            } else {
                assert!(nsat > 2 * tile, "{nsat} saturated: several tiles");
                assert!(
                    got.len() > edges_only.len(),
                    "the tiles add pairs beyond the lists"
                );
            }
        }
        // A refinement missing a neighbour's list says so.
        let short = Refine {
            rows: &ids[1..],
            neighbors: &nb[8..],
            cosines: &cs[8..],
            ..refine
        };
        assert!(short.refine(&[0]).is_err());
    }

    #[test]
    fn lloyd_over_shards_is_lloyd_over_the_whole_bit_for_bit() {
        let x = clustered(2000, 16, 8, 0.6, 2);
        // Centroids fitted on a few rows, so a step over all of them moves them.
        let km = kmeans::fit(x.slice(ndarray::s![..64, ..]), 8, 1, 5).unwrap();
        let c = km.centroids.view();
        let whole = centroid_sums(x.view(), c).unwrap();
        let part =
            |r: std::ops::Range<usize>| centroid_sums(x.slice(ndarray::s![r, ..]), c).unwrap();
        // Any split, added in any order, gives the whole data's sums exactly.
        let (a, b, d) = (part(0..700), part(700..1313), part(1313..2000));
        // Added as the driver adds them (numpy int64: wrapping).
        let add = |x: &CentroidSums, y: &CentroidSums| CentroidSums {
            sums: x
                .sums
                .iter()
                .zip(&y.sums)
                .map(|(u, v)| u.wrapping_add(*v))
                .collect(),
            counts: x.counts.iter().zip(&y.counts).map(|(u, v)| u + v).collect(),
        };
        let forward = add(&add(&a, &b), &d);
        let backward = add(&add(&d, &b), &a);
        assert_eq!(forward, whole);
        assert_eq!(backward, whole);
        assert_eq!(whole.counts.iter().sum::<u64>(), 2000);
        let c1 = centroids_from_sums(&backward, c).unwrap();
        assert_eq!(c1, centroids_from_sums(&whole, c).unwrap());
        assert_ne!(
            c1, km.centroids,
            "a step over all rows moves centroids fitted on 64"
        );
        for r in c1.outer_iter() {
            assert!((r.dot(&r) - 1.0).abs() < 1e-5);
        }
        assert_eq!(
            kmeans::refine_centroids(x.view(), km.centroids.clone(), 1).unwrap(),
            c1
        );
        assert!(centroids_from_sums(&a, km.centroids.slice(ndarray::s![..3, ..])).is_err());
    }

    #[test]
    fn bad_groups_are_errors() {
        let x = clustered(50, 4, 2, 0.5, 1);
        let ids: Vec<u32> = (0..50).rev().collect();
        let home = vec![0u32; 50];
        let owner = vec![true; 50];
        let probes = vec![0u32; 50];
        let g = Group {
            emb: x.view(),
            ids: &ids,
            home: &home,
            owner: &owner,
            probes: &probes,
            p: 1,
            nlist: 1,
        };
        assert!(g.search(4).is_err(), "decreasing ids");
        let ids: Vec<u32> = (0..50).collect();
        let g = Group { ids: &ids, ..g };
        assert!(g.search(4).is_ok());
        assert!(g.search(50).is_err(), "k ≥ rows");
        let g = Group { nlist: 0, ..g };
        assert!(g.search(4).is_err(), "list out of range");
        let one = ids[..3].to_vec();
        assert!(threshold_pairs(x.view(), &one, &one, &[0; 8], &[0.0; 8], 4, 0.9).is_err());
        let t = tile_pairs((x.view(), &ids), (x.view(), &ids[1..]), 0.9);
        assert!(t.is_err(), "ids do not match rows");
    }
}
