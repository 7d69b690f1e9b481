//! Seeded synthetic dataset generator in labelwise's input schema.
//!
//! ```text
//! cargo run --release --example synth -- --rows 1000000 --dim 384 --out /tmp/synth.parquet
//! ```
//!
//! What it writes (see `--help` for every flag):
//! - `FILE`: Parquet (zstd), one row per item, in shuffled order, with columns
//!   `id` (utf8, `synth-0000000`…, the number is the row index), `text` (utf8,
//!   `cluster 12 item 345`, copies end in ` (copy 1)`), `embedding`
//!   (fixed_size_list<float32, D>, L2-normalised), `label` (utf8, = `true_label` on a seeded share
//!   of rows, null elsewhere), `true_label` (utf8, `class-07`), `split` (`train` ~80% / `test`
//!   ~20%), `true_cluster` (int32) and `true_rare` (bool).
//! - `<FILE stem>.dups.csv` next to it: `id_a,id_b`, every pair inside each injected
//!   near-duplicate group, `id_a` before `id_b` in row order, sorted by row.
//!
//! The data: `K` main clusters with Zipf(1) sizes (cluster 0 is the largest). Each cluster is a
//! centre plus a 16-dim latent subspace (offset norm ~0.5) plus isotropic noise (norm ~0.3); the
//! main centres share a common direction (cosine ~0.36 between centres, like real sentence
//! embeddings). `R` rare clusters are small and centred orthogonally to that common direction, so
//! they sit far from everything else; each rare cluster has its own class. The main clusters'
//! class is `cluster mod C`. Near-duplicates are copies of a row plus noise of norm 0.01,
//! renormalised (groups of 2–4 rows; cosine within a group ≈ 0.9999).
//!
//! Streaming: every value is a pure function of (seed, row), so batches of 8,192 rows are generated
//! independently (in parallel with rayon) and written one at a time; memory is O(N) small
//! integers plus a few batches, never N×D floats. The same arguments give a byte-identical file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{BooleanBuilder, Int32Builder, StringBuilder};
use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use clap::Parser;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

const BATCH_ROWS: usize = 8192;
const LATENT_DIM: usize = 16;
const LATENT_SPREAD: f64 = 0.5;
const NOISE_NORM: f64 = 0.3;
const DUP_NOISE_NORM: f64 = 0.01;
/// Weight of the shared direction in the main cluster centres (the rest is a random direction).
const SHARED_WEIGHT: f64 = 0.6;

// Stream tags, so that no two uses of the seed share a random stream.
const TAG_CENTRES: u64 = 1;
const TAG_PERM: u64 = 2;
const TAG_DUPS: u64 = 3;
const TAG_BASE_ROW: u64 = 4;
const TAG_COPY_ROW: u64 = 5;
const TAG_OUT_ROW: u64 = 6;

/// Writes a seeded synthetic embedding dataset in labelwise's input schema (Parquet, zstd),
/// plus `<FILE stem>.dups.csv` listing the injected near-duplicate pairs.
///
/// Columns: id (utf8, `synth-<row>`), text, embedding (fixed_size_list<float32, D>, unit norm),
/// label (utf8, null = unlabeled), true_label (utf8), split (train ~80% / test ~20%),
/// true_cluster (int32; rare clusters are numbered after the main ones), true_rare (bool).
/// Rows are shuffled; the same arguments give a byte-identical file. The side file has columns
/// id_a,id_b: every pair within each injected group (2 to 4 rows, cosine ~0.9999), id_a before
/// id_b in row order.
#[derive(Parser, Debug)]
#[command(name = "synth")]
struct Args {
    /// Number of rows to write (near-duplicate copies included).
    #[arg(long)]
    rows: usize,
    /// Embedding dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Output Parquet file. The duplicate pairs go to `<FILE stem>.dups.csv` in the same directory.
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same arguments and seed give a byte-identical file.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of classes shared by the main clusters (class = cluster mod C). Each rare cluster
    /// adds a class of its own.
    #[arg(long, default_value_t = 20)]
    classes: usize,
    /// Share of rows whose `label` is set (to `true_label`); the rest are null (unlabeled).
    #[arg(long, default_value_t = 0.05)]
    labeled_share: f64,
    /// Share of rows that are injected near-duplicate copies of another row.
    #[arg(long, default_value_t = 0.01)]
    dup_share: f64,
    /// Number of rare clusters: small, far from the rest, one class each.
    /// Default: 5 when --rows >= 2000, else 0.
    #[arg(long)]
    rare_clusters: Option<usize>,
    /// Number of main clusters (Zipf(1) sizes). Default: rows/50, clamped to 1..=200.
    #[arg(long)]
    clusters: Option<usize>,
    /// Rows in each rare cluster. Default: rows/2000, clamped to 3..=50.
    #[arg(long)]
    rare_size: Option<usize>,
    /// Do not print the summary line.
    #[arg(long)]
    quiet: bool,
}

/// Everything that is decided before the rows are generated: O(N) small integers plus the
/// cluster centres and latent bases (O(K × 17 × D) floats).
struct Plan {
    n: usize,
    dim: usize,
    seed: u64,
    classes: usize,
    k_main: usize,
    k_rare: usize,
    /// Base-row ranges per cluster: cluster k owns base rows `cluster_start[k]..cluster_start[k+1]`
    /// (main clusters first, then rare ones).
    cluster_start: Vec<usize>,
    /// Number of base (original) rows; logical items `base..n` are copies.
    base: usize,
    /// For copy `j` (logical item `base + j`): the base row it copies.
    copy_src: Vec<u32>,
    /// Near-duplicate groups: (source base row, first copy index, number of copies).
    groups: Vec<(u32, u32, u32)>,
    /// Output row -> logical item.
    perm: Vec<u32>,
    /// Per-row `label` mask and `split` draws, by output row: bit 0 = labeled, bit 1 = test.
    row_flags: Vec<u8>,
    /// Cluster centres, (k_main + k_rare) × dim, unit norm.
    centres: Vec<f32>,
    /// Latent bases, (k_main + k_rare) × latent × dim, unit-norm rows.
    bases: Vec<f32>,
    latent: usize,
    id_width: usize,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rng_for(seed: u64, tag: u64, index: u64) -> Xoshiro256PlusPlus {
    let s = splitmix64(splitmix64(seed ^ tag.wrapping_mul(0xA076_1D64_78BD_642F)) ^ index);
    Xoshiro256PlusPlus::seed_from_u64(s)
}

/// Standard normal by the Marsaglia polar method (deterministic given the RNG stream).
struct Normal {
    spare: Option<f64>,
}

impl Normal {
    fn new() -> Self {
        Normal { spare: None }
    }
    fn sample<R: Rng>(&mut self, rng: &mut R) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        loop {
            let u: f64 = rng.gen::<f64>() * 2.0 - 1.0;
            let v: f64 = rng.gen::<f64>() * 2.0 - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * m);
                return u * m;
            }
        }
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    for x in v.iter_mut() {
        *x = (*x as f64 * inv) as f32;
    }
}

fn random_unit(rng: &mut Xoshiro256PlusPlus, normal: &mut Normal, dim: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..dim).map(|_| normal.sample(rng)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn fail(msg: &str) -> ! {
    eprintln!("synth: error: {msg}");
    std::process::exit(2);
}

impl Plan {
    fn new(a: &Args) -> Plan {
        let n = a.rows;
        let dim = a.dim;
        if n == 0 {
            fail("--rows must be at least 1");
        }
        if n > u32::MAX as usize {
            fail("--rows must be below 2^32");
        }
        if dim < 2 {
            fail("--dim must be at least 2");
        }
        if a.classes == 0 {
            fail("--classes must be at least 1");
        }
        if !(0.0..=1.0).contains(&a.labeled_share) {
            fail("--labeled-share must be in [0, 1]");
        }
        if !(0.0..0.5).contains(&a.dup_share) {
            fail("--dup-share must be in [0, 0.5)");
        }
        let seed = a.seed;

        // Copies, rare clusters, main clusters.
        let n_copies = ((n as f64) * a.dup_share).round() as usize;
        let base = n - n_copies;
        let k_rare = a.rare_clusters.unwrap_or(if n >= 2000 { 5 } else { 0 });
        let rare_size = a.rare_size.unwrap_or((n / 2000).clamp(3, 50));
        let rare_total = k_rare * rare_size;
        if rare_total >= base {
            fail("rare clusters leave no rows for the main clusters: lower --rare-clusters or --rare-size");
        }
        let main_rows = base - rare_total;
        let k_main = a.clusters.unwrap_or((n / 50).clamp(1, 200));
        if k_main == 0 || k_main > main_rows {
            fail("--clusters must be between 1 and the number of main-cluster rows");
        }

        // Zipf(1) sizes, at least 1 each, summing to main_rows.
        let h: f64 = (1..=k_main).map(|k| 1.0 / k as f64).sum();
        let mut sizes: Vec<usize> = (0..k_main)
            .map(|k| (((main_rows as f64) / ((k + 1) as f64 * h)).floor() as usize).max(1))
            .collect();
        let total: usize = sizes.iter().sum();
        if total < main_rows {
            let mut left = main_rows - total;
            let mut k = 0;
            while left > 0 {
                sizes[k % k_main] += 1;
                left -= 1;
                k += 1;
            }
        } else {
            // Only the max(1) bumps can overshoot; take the excess from the largest clusters.
            let mut excess = total - main_rows;
            let mut k = 0;
            while excess > 0 {
                if sizes[k % k_main] > 1 {
                    sizes[k % k_main] -= 1;
                    excess -= 1;
                }
                k += 1;
            }
        }
        sizes.extend(std::iter::repeat_n(rare_size, k_rare));
        let mut cluster_start = Vec::with_capacity(sizes.len() + 1);
        cluster_start.push(0);
        for s in &sizes {
            cluster_start.push(cluster_start.last().unwrap() + s);
        }
        debug_assert_eq!(*cluster_start.last().unwrap(), base);

        // Centres and latent bases.
        let k_all = k_main + k_rare;
        let latent = LATENT_DIM.min(dim);
        let mut rng = rng_for(seed, TAG_CENTRES, 0);
        let mut normal = Normal::new();
        let shared = random_unit(&mut rng, &mut normal, dim);
        let mut centres = Vec::with_capacity(k_all * dim);
        let mut bases = Vec::with_capacity(k_all * latent * dim);
        for k in 0..k_all {
            let mut u = random_unit(&mut rng, &mut normal, dim);
            // Remove the shared component so the mixing weights mean what they say.
            let d: f64 = u.iter().zip(&shared).map(|(a, b)| a * b).sum();
            u.iter_mut().zip(&shared).for_each(|(a, b)| *a -= d * b);
            let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
            u.iter_mut().for_each(|x| *x /= un);
            let w_shared = if k < k_main { SHARED_WEIGHT } else { 0.0 };
            let w_own = (1.0 - w_shared * w_shared).sqrt();
            centres.extend(
                u.iter()
                    .zip(&shared)
                    .map(|(a, b)| (w_own * a + w_shared * b) as f32),
            );
            for _ in 0..latent {
                bases.extend(
                    random_unit(&mut rng, &mut normal, dim)
                        .into_iter()
                        .map(|x| x as f32),
                );
            }
        }

        // Near-duplicate groups: distinct source rows, 1–3 copies each.
        let mut rng = rng_for(seed, TAG_DUPS, 0);
        let mut pool: Vec<u32> = (0..base as u32).collect();
        let mut copy_src = Vec::with_capacity(n_copies);
        let mut groups = Vec::new();
        let mut next_src = 0usize;
        while copy_src.len() < n_copies {
            let r: f64 = rng.gen();
            let want = if r < 0.75 {
                1
            } else if r < 0.93 {
                2
            } else {
                3
            };
            let k = want.min(n_copies - copy_src.len());
            if next_src >= base {
                fail("--dup-share too high: not enough distinct rows to copy");
            }
            // Partial Fisher–Yates: a uniformly chosen unused base row.
            let j = rng.gen_range(next_src..base);
            pool.swap(next_src, j);
            let src = pool[next_src];
            next_src += 1;
            groups.push((src, copy_src.len() as u32, k as u32));
            for _ in 0..k {
                copy_src.push(src);
            }
        }
        drop(pool);

        // Output order: a seeded shuffle of all logical items.
        let mut rng = rng_for(seed, TAG_PERM, 0);
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = rng.gen_range(0..=i);
            perm.swap(i, j);
        }

        // Per-output-row label mask and split.
        let mut rng = rng_for(seed, TAG_OUT_ROW, 0);
        let row_flags: Vec<u8> = (0..n)
            .map(|_| {
                let labeled = rng.gen::<f64>() < a.labeled_share;
                let test = rng.gen::<f64>() < 0.2;
                (labeled as u8) | ((test as u8) << 1)
            })
            .collect();

        let id_width = 7.max((n - 1).to_string().len());
        Plan {
            n,
            dim,
            seed,
            classes: a.classes,
            k_main,
            k_rare,
            cluster_start,
            base,
            copy_src,
            groups,
            perm,
            row_flags,
            centres,
            bases,
            latent,
            id_width,
        }
    }

    fn cluster_of_base(&self, b: usize) -> usize {
        // Largest k with cluster_start[k] <= b.
        self.cluster_start.partition_point(|&s| s <= b) - 1
    }

    fn class_of_cluster(&self, k: usize) -> usize {
        if k < self.k_main {
            k % self.classes
        } else {
            self.classes + (k - self.k_main)
        }
    }

    /// Writes base row `b`'s unit vector into `out`.
    fn base_vector(&self, b: usize, out: &mut [f32]) {
        let k = self.cluster_of_base(b);
        let d = self.dim;
        let mut rng = rng_for(self.seed, TAG_BASE_ROW, b as u64);
        let mut normal = Normal::new();
        out.copy_from_slice(&self.centres[k * d..(k + 1) * d]);
        let z_sd = LATENT_SPREAD / (self.latent as f64).sqrt();
        for l in 0..self.latent {
            let z = (normal.sample(&mut rng) * z_sd) as f32;
            let basis = &self.bases[(k * self.latent + l) * d..(k * self.latent + l + 1) * d];
            out.iter_mut().zip(basis).for_each(|(o, b)| *o += z * b);
        }
        let e_sd = NOISE_NORM / (d as f64).sqrt();
        for o in out.iter_mut() {
            *o += (normal.sample(&mut rng) * e_sd) as f32;
        }
        normalize(out);
    }

    /// Writes logical item `item`'s unit vector into `out`.
    fn item_vector(&self, item: usize, out: &mut [f32]) {
        if item < self.base {
            self.base_vector(item, out);
            return;
        }
        let j = item - self.base;
        self.base_vector(self.copy_src[j] as usize, out);
        let mut rng = rng_for(self.seed, TAG_COPY_ROW, j as u64);
        let mut normal = Normal::new();
        let sd = DUP_NOISE_NORM / (self.dim as f64).sqrt();
        for o in out.iter_mut() {
            *o += (normal.sample(&mut rng) * sd) as f32;
        }
        normalize(out);
    }

    /// (cluster, item index within the cluster, copy number or 0) of a logical item.
    fn describe(&self, item: usize) -> (usize, usize, usize) {
        let (b, copy_no) = if item < self.base {
            (item, 0)
        } else {
            let j = item - self.base;
            let src = self.copy_src[j];
            // Copies of one source are contiguous; number them 1, 2, 3.
            let first = self.copy_src[..j]
                .iter()
                .rev()
                .take_while(|&&s| s == src)
                .count();
            (src as usize, first + 1)
        };
        let k = self.cluster_of_base(b);
        (k, b - self.cluster_start[k], copy_no)
    }

    fn id(&self, row: usize) -> String {
        format!("synth-{:0w$}", row, w = self.id_width)
    }

    fn schema(&self) -> SchemaRef {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, false),
            Field::new(
                "embedding",
                DataType::FixedSizeList(item, self.dim as i32),
                false,
            ),
            Field::new("label", DataType::Utf8, true),
            Field::new("true_label", DataType::Utf8, false),
            Field::new("split", DataType::Utf8, false),
            Field::new("true_cluster", DataType::Int32, false),
            Field::new("true_rare", DataType::Boolean, false),
        ]))
    }

    fn batch(&self, schema: &SchemaRef, start: usize, end: usize) -> RecordBatch {
        let d = self.dim;
        let rows = end - start;
        let mut values = vec![0f32; rows * d];
        values
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(i, out)| self.item_vector(self.perm[start + i] as usize, out));

        let mut id = StringBuilder::with_capacity(rows, rows * (7 + self.id_width));
        let mut text = StringBuilder::with_capacity(rows, rows * 24);
        let mut label = StringBuilder::with_capacity(rows, rows * 8);
        let mut true_label = StringBuilder::with_capacity(rows, rows * 8);
        let mut split = StringBuilder::with_capacity(rows, rows * 5);
        let mut cluster = Int32Builder::with_capacity(rows);
        let mut rare = BooleanBuilder::with_capacity(rows);
        for r in start..end {
            let item = self.perm[r] as usize;
            let (k, idx, copy_no) = self.describe(item);
            let class = format!("class-{:02}", self.class_of_cluster(k));
            id.append_value(self.id(r));
            if copy_no == 0 {
                text.append_value(format!("cluster {k} item {idx}"));
            } else {
                text.append_value(format!("cluster {k} item {idx} (copy {copy_no})"));
            }
            let flags = self.row_flags[r];
            if flags & 1 == 1 {
                label.append_value(&class);
            } else {
                label.append_null();
            }
            true_label.append_value(&class);
            split.append_value(if flags & 2 == 2 { "test" } else { "train" });
            cluster.append_value(k as i32);
            rare.append_value(k >= self.k_main);
        }
        let item_field = Arc::new(Field::new("item", DataType::Float32, true));
        let emb = FixedSizeListArray::try_new(
            item_field,
            d as i32,
            Arc::new(Float32Array::from(values)),
            None,
        )
        .expect("embedding array");
        let cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(text.finish()),
            Arc::new(emb),
            Arc::new(label.finish()),
            Arc::new(true_label.finish()),
            Arc::new(split.finish()),
            Arc::new(cluster.finish()),
            Arc::new(rare.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("record batch")
    }

    /// Every pair inside each injected group, as output rows (a < b), sorted.
    fn dup_pairs(&self) -> Vec<(u32, u32)> {
        let mut inv = vec![0u32; self.n];
        for (r, &item) in self.perm.iter().enumerate() {
            inv[item as usize] = r as u32;
        }
        let mut pairs = Vec::new();
        for &(src, first, k) in &self.groups {
            let mut rows: Vec<u32> = std::iter::once(inv[src as usize])
                .chain((first..first + k).map(|j| inv[self.base + j as usize]))
                .collect();
            rows.sort_unstable();
            for a in 0..rows.len() {
                for b in a + 1..rows.len() {
                    pairs.push((rows[a], rows[b]));
                }
            }
        }
        pairs.sort_unstable();
        pairs
    }
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    p.with_file_name(name)
}

fn dups_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synth".into());
    out.with_file_name(format!("{stem}.dups.csv"))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let plan = Plan::new(args);
    let schema = plan.schema();

    // Duplicate pairs side file.
    let pairs = plan.dup_pairs();
    let dpath = dups_path(&args.out);
    let dtmp = tmp_path(&dpath);
    {
        let mut w = BufWriter::new(File::create(&dtmp)?);
        writeln!(w, "id_a,id_b")?;
        for &(a, b) in &pairs {
            writeln!(w, "{},{}", plan.id(a as usize), plan.id(b as usize))?;
        }
        w.flush()?;
    }

    let params = serde_json::json!({
        "generator": "labelwise examples/synth.rs",
        "rows": plan.n,
        "dim": plan.dim,
        "seed": plan.seed,
        "classes": plan.classes,
        "main_clusters": plan.k_main,
        "rare_clusters": plan.k_rare,
        "labeled_share": args.labeled_share,
        "dup_share": args.dup_share,
        "latent_dim": plan.latent,
        "latent_spread": LATENT_SPREAD,
        "noise_norm": NOISE_NORM,
        "dup_noise_norm": DUP_NOISE_NORM,
    });
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("label"), true)
        .set_column_dictionary_enabled(ColumnPath::from("true_label"), true)
        .set_column_dictionary_enabled(ColumnPath::from("split"), true)
        .set_column_dictionary_enabled(ColumnPath::from("true_cluster"), true)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "labelwise.synth".to_string(),
            params.to_string(),
        )]))
        .build();
    let ptmp = tmp_path(&args.out);
    let file = File::create(&ptmp)?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        Some(props),
    )?;

    // Generate batches on a producer thread (rows in parallel with rayon), write on this one.
    let n = plan.n;
    let n_batches = n.div_ceil(BATCH_ROWS);
    let write_result = std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
        let (tx, rx) = sync_channel::<RecordBatch>(2);
        let plan = &plan;
        let schema = &schema;
        s.spawn(move || {
            for b in 0..n_batches {
                let start = b * BATCH_ROWS;
                let end = (start + BATCH_ROWS).min(n);
                if tx.send(plan.batch(schema, start, end)).is_err() {
                    return;
                }
            }
        });
        for batch in rx {
            writer.write(&batch)?;
        }
        Ok(())
    });
    write_result?;
    writer.close()?;
    std::fs::rename(&ptmp, &args.out)?;
    std::fs::rename(&dtmp, &dpath)?;

    let labeled = plan.row_flags.iter().filter(|&&f| f & 1 == 1).count();
    if !args.quiet {
        let size = std::fs::metadata(&args.out)?.len();
        println!(
            "synth: {} rows x {} dim -> {} ({:.1} MB) | clusters {} main + {} rare, classes {} | dup groups {}, dup pairs {} -> {} | labeled {} ({:.2}%) | seed {} | {:.1} s",
            plan.n,
            plan.dim,
            args.out.display(),
            size as f64 / 1e6,
            plan.k_main,
            plan.k_rare,
            plan.classes.min(plan.k_main) + plan.k_rare,
            plan.groups.len(),
            pairs.len(),
            dpath.display(),
            labeled,
            100.0 * labeled as f64 / plan.n as f64,
            plan.seed,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("synth: error: {e}");
        std::process::exit(1);
    }
}
