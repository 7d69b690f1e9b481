//! Input loading and validation, end to end: each test writes its own small Parquet files and
//! runs the real binary (`labelwise inspect`) on them.
//!
//! Faults must exit 2 with exactly one stderr line `error: FILE: column 'C', row R: message`
//! (rows 0-based within the file) and write nothing; valid variants must exit 0 and report the
//! right figures in `inspect --json`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{json, Value};

// ---- helpers ---------------------------------------------------------------------------------

/// Asserts a clean input fault: exit 2, nothing on stdout, exactly one stderr line that starts
/// with `error: FILE[: column 'C'][, row R]: ` and contains `needle` (case-insensitive).
fn assert_fault(o: &Output, file: &Path, column: Option<&str>, row: Option<u64>, needle: &str) {
    assert_eq!(o.code, 2, "expected exit 2:\n{o:#?}");
    assert_eq!(o.stdout, "", "nothing may be written on a fault:\n{o:#?}");
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "expected one stderr line:\n{o:#?}");
    let line = lines[0];
    let prefix = format!(
        "error: {}{}{}: ",
        file.display(),
        column
            .map(|c| format!(": column '{c}'"))
            .unwrap_or_default(),
        row.map(|r| format!(", row {r}")).unwrap_or_default()
    );
    assert!(
        line.starts_with(&prefix),
        "stderr line should start with {prefix:?}, got {line:?}"
    );
    assert!(
        line.to_lowercase().contains(&needle.to_lowercase()),
        "stderr line should mention {needle:?}, got {line:?}"
    );
    assert!(!line.contains("panicked"), "{line}");
}

/// Runs `inspect` on `data` (plus extra flags) and returns the output.
fn inspect(wd: &Workdir, data: &[&Path], extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> = vec!["inspect".into()];
    args.extend(data.iter().map(|p| p.as_os_str().to_owned()));
    args.extend(extra.iter().map(Into::into));
    wd.run(&args)
}

/// Runs `inspect --json`, asserts success with an empty stderr, returns the report.
fn inspect_json(wd: &Workdir, data: &[&Path], extra: &[&str]) -> Value {
    let mut flags = vec!["--json"];
    flags.extend_from_slice(extra);
    let o = inspect(wd, data, &flags);
    assert_eq!(o.code, 0, "expected exit 0:\n{o:#?}");
    assert_eq!(
        o.stderr, "",
        "a successful run prints nothing on stderr:\n{o:#?}"
    );
    o.json()
}

/// Asserts the four headline figures of a report.
fn assert_figures(r: &Value, rows: u64, dim: u64, labeled: u64, classes: u64) {
    assert_eq!(r["rows"], json!(rows), "rows in {r:#}");
    assert_eq!(r["dimension"], json!(dim), "dimension in {r:#}");
    assert_eq!(r["labeled"], json!(labeled), "labeled in {r:#}");
    assert_eq!(r["classes"], json!(classes), "classes in {r:#}");
    let share = r["labeled_share"].as_f64().expect("labeled_share");
    assert!((share - labeled as f64 / rows as f64).abs() < 1e-9, "{r:#}");
}

/// The files in the work dir after a run, to prove a failing run left nothing behind.
fn listing(wd: &Workdir) -> Vec<PathBuf> {
    listing_of(wd.root())
}

/// Every path under `dir`, sorted.
fn listing_of(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// The files of a finished `plan` run on a small valid pool, made once per test binary: the
/// previous run a failing `plan` or `dedup` must leave untouched. Kept in memory, so the
/// folder it ran in is removed like every other test's (a static is never dropped).
fn previous_run() -> &'static [(String, Vec<u8>)] {
    static RUN: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let wd = Workdir::new();
        let s = clustered(60, 3, 8, 0.3, 7);
        let labeled: Vec<bool> = (0..60).map(|i| i % 4 == 0).collect();
        let data = write_pool(&wd, "pool.parquet", &s, &labeled);
        ok(
            &wd,
            &["plan", data.to_str().unwrap(), "--out", "out", "--no-cache"],
        );
        dir_files(&wd.root().join("out"))
    })
}

/// Every file and folder under `dir` (relative path, bytes; `None` for folders), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut v: Vec<(PathBuf, Option<Vec<u8>>)> = listing_of(dir)
        .into_iter()
        .map(|p| {
            let bytes = p.is_file().then(|| std::fs::read(&p).expect("read"));
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect();
    v.sort();
    v
}

/// Runs `inspect` on `data`, checking that the work dir is unchanged afterwards; then `plan`
/// and `dedup` on the same input into an `--out` holding a previous run, which must fail the
/// same way (exit 2, the same one stderr line) and leave that folder byte-for-byte as it was
/// and nothing else written. Returns `inspect`'s output.
fn inspect_fault(wd: &Workdir, data: &[&Path], extra: &[&str]) -> Output {
    fault_as(wd, data, extra, None)
}

/// [`inspect_fault`] with every command run as user and group `uid` when given.
fn fault_as(wd: &Workdir, data: &[&Path], extra: &[&str], uid: Option<u32>) -> Output {
    let before = listing(wd);
    let mut args: Vec<std::ffi::OsString> = vec!["inspect".into()];
    args.extend(data.iter().map(|p| p.as_os_str().to_owned()));
    args.extend(extra.iter().map(Into::into));
    let o = wd.run_as(&args, uid);
    assert_eq!(listing(wd), before, "a failing run must not write files");
    assert_nothing_written(&wd.root().join("out"));

    let out = wd.root().join("previous-run");
    std::fs::create_dir_all(&out).unwrap();
    for (name, bytes) in previous_run() {
        std::fs::write(out.join(name), bytes).unwrap();
    }
    let before_out = snapshot(&out);
    assert!(
        before_out
            .iter()
            .any(|(p, _)| p == Path::new("summary.json")),
        "the previous run is complete: {before_out:?}"
    );
    let before = listing(wd);
    for command in ["plan", "dedup"] {
        let mut args: Vec<std::ffi::OsString> = vec![command.into()];
        args.extend(data.iter().map(|p| p.as_os_str().to_owned()));
        args.extend(extra.iter().map(Into::into));
        args.extend(["--out".into(), out.clone().into_os_string()]);
        args.push("--quiet".into());
        let c = wd.run_as(&args, uid);
        assert_eq!(c.code, 2, "{command}: expected exit 2:\n{c:#?}");
        assert_eq!(
            c.stderr, o.stderr,
            "{command} and inspect report the fault alike"
        );
        assert_eq!(c.stdout, "", "{command}: nothing on stdout:\n{c:#?}");
        assert!(
            snapshot(&out) == before_out,
            "{command} changed the previous run in --out"
        );
        assert_eq!(listing(wd), before, "{command} wrote files");
    }
    std::fs::remove_dir_all(&out).unwrap();
    o
}

/// `n` rows of `v{i}` ids and FixedSizeList<f32> embeddings of dimension `d`.
fn pool(n: usize, d: usize) -> Vec<(&'static str, arrow_array::ArrayRef)> {
    vec![("id", ids("v", n)), ("embedding", emb(&vectors(n, d)))]
}

/// Embedding rows with `row` replaced by `bad`.
fn with_row(n: usize, d: usize, row: usize, bad: Vec<f64>) -> Vec<Vec<f64>> {
    let mut v = vectors(n, d);
    v[row] = bad;
    v
}

// ---- faults ----------------------------------------------------------------------------------

#[test]
fn fault_zero_vector() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "zero.parquet",
        vec![
            ("id", ids("v", 8)),
            ("embedding", emb(&with_row(8, 4, 5, vec![0.0; 4]))),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), Some(5), "zero vector");
}

#[test]
fn fault_nan() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "nan.parquet",
        vec![
            ("id", ids("v", 8)),
            (
                "embedding",
                emb(&with_row(8, 4, 3, vec![1.0, f64::NAN, 0.5, 0.5])),
            ),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), Some(3), "NaN");

    // Row numbers stay file-relative across row groups (and after another file).
    let a = wd.parquet("a.parquet", pool(5, 4));
    let g = wd.parquet_groups(
        "groups.parquet",
        vec![
            ("id", ids("g", 90)),
            (
                "embedding",
                emb(&with_row(90, 4, 77, vec![0.5, 0.5, f64::NAN, 0.5])),
            ),
        ],
        16,
    );
    let o = inspect_fault(&wd, &[&a, &g], &[]);
    assert_fault(&o, &g, Some("embedding"), Some(77), "NaN");
}

#[test]
fn fault_positive_infinity() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "inf.parquet",
        vec![
            ("id", ids("v", 8)),
            (
                "embedding",
                emb_as(
                    Layout::FixedSizeList,
                    Float::F64,
                    &with_row(8, 4, 6, vec![1.0, 2.0, 3.0, f64::INFINITY]),
                ),
            ),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), Some(6), "inf");
}

#[test]
fn fault_ragged_embedding() {
    let wd = Workdir::new();
    let mut rows = vectors(10, 6);
    rows[7].truncate(5);
    let f = wd.parquet(
        "ragged.parquet",
        vec![
            ("id", ids("v", 10)),
            ("embedding", emb_as(Layout::List, Float::F32, &rows)),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), Some(7), "ragged");
}

#[test]
fn fault_null_embedding() {
    // A null list in the middle of the file and on its first row, in both list layouts.
    for (layout, row) in [
        (Layout::List, 4),
        (Layout::List, 0),
        (Layout::FixedSizeList, 2),
        (Layout::LargeList, 9),
    ] {
        let wd = Workdir::new();
        let mut rows: Vec<Option<Vec<Option<f64>>>> = vectors(10, 4)
            .into_iter()
            .map(|r| Some(r.into_iter().map(Some).collect()))
            .collect();
        rows[row] = None;
        let f = wd.parquet(
            "null_emb.parquet",
            vec![
                ("id", ids("v", 10)),
                ("embedding", embedding_col(layout, Float::F32, &rows)),
            ],
        );
        let o = inspect_fault(&wd, &[&f], &[]);
        assert_fault(
            &o,
            &f,
            Some("embedding"),
            Some(row as u64),
            "null embedding",
        );
    }
}

#[test]
fn fault_null_element() {
    for layout in [Layout::FixedSizeList, Layout::List] {
        let wd = Workdir::new();
        let mut rows: Vec<Option<Vec<Option<f64>>>> = vectors(10, 5)
            .into_iter()
            .map(|r| Some(r.into_iter().map(Some).collect()))
            .collect();
        rows[8].as_mut().unwrap()[2] = None;
        let f = wd.parquet(
            "null_elem.parquet",
            vec![
                ("id", ids("v", 10)),
                ("embedding", embedding_col(layout, Float::F32, &rows)),
            ],
        );
        let o = inspect_fault(&wd, &[&f], &[]);
        assert_fault(&o, &f, Some("embedding"), Some(8), "null element");
    }
}

#[test]
fn fault_null_id() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "null_id.parquet",
        vec![
            (
                "id",
                opt_str_col(&[Some("a"), Some("b"), Some("c"), None, Some("e")]),
            ),
            ("embedding", emb(&vectors(5, 4))),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("id"), Some(3), "null id");
}

#[test]
fn fault_duplicate_id_within_file() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "dup.parquet",
        vec![
            ("id", str_col(&["a", "b", "c", "d", "b", "c"])),
            ("embedding", emb(&vectors(6, 4))),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("id"), Some(4), "duplicate id 'b'");
    assert!(o.stderr.contains("row 1"), "names the first row: {o:#?}");
}

#[test]
fn fault_duplicate_id_across_files() {
    let wd = Workdir::new();
    let a = wd.parquet(
        "a.parquet",
        vec![("id", ids("x", 6)), ("embedding", emb(&vectors(6, 4)))],
    );
    let b = wd.parquet(
        "b.parquet",
        vec![
            ("id", str_col(&["y0", "y1", "x4", "y3"])),
            ("embedding", emb(&vectors(4, 4))),
        ],
    );
    let o = inspect_fault(&wd, &[&a, &b], &[]);
    assert_fault(&o, &b, Some("id"), Some(2), "duplicate id 'x4'");
    let line = o.stderr_lines()[0];
    let tail = &line[format!("error: {}", b.display()).len()..];
    assert!(
        tail.contains(&a.display().to_string()) && tail.contains("row 4"),
        "mentions the first occurrence (a.parquet, row 4): {line}"
    );
}

#[test]
fn fault_missing_id_column() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "no_id.parquet",
        vec![("key", ids("v", 4)), ("embedding", emb(&vectors(4, 4)))],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("id"), None, "missing column");
}

#[test]
fn fault_missing_embedding_column() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "no_emb.parquet",
        vec![("id", ids("v", 4)), ("vector", emb(&vectors(4, 4)))],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), None, "missing column");
}

#[test]
fn fault_embedding_wrong_type() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "emb_utf8.parquet",
        vec![
            ("id", ids("v", 3)),
            ("embedding", str_col(&["[1,0]", "[0,1]", "[1,1]"])),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("embedding"), None, "wrong column type");
}

#[test]
fn fault_id_wrong_type() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "id_f64.parquet",
        vec![
            ("id", f64_col(&[1.0, 2.0, 3.0])),
            ("embedding", emb(&vectors(3, 4))),
        ],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("id"), None, "wrong column type");
}

#[test]
fn fault_dimensions_differ_between_files() {
    let wd = Workdir::new();
    let a = wd.parquet(
        "a.parquet",
        vec![("id", ids("a", 5)), ("embedding", emb(&vectors(5, 4)))],
    );
    let b = wd.parquet(
        "b.parquet",
        vec![("id", ids("b", 5)), ("embedding", emb(&vectors(5, 6)))],
    );
    let o = inspect_fault(&wd, &[&a, &b], &[]);
    assert_fault(&o, &b, Some("embedding"), Some(0), "6 dimensions");
    assert!(
        o.stderr.contains(&format!("{} has 4", a.display())),
        "names the other file and its dimension: {o:#?}"
    );
}

#[test]
fn fault_empty_dataset() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "empty.parquet",
        vec![("id", ids("v", 0)), ("embedding", emb(&[]))],
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, None, None, "empty dataset");
}

#[test]
fn fault_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let wd = Workdir::new();
    let readable = wd.parquet("open.parquet", pool(4, 4));
    let f = wd.parquet("locked.parquet", pool(4, 4));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    // As root (CI) mode 000 does not bite: the binary then runs as `nobody`, for whom it does.
    let uid = std::fs::read(&f).is_ok().then_some(NOBODY);
    if uid.is_some() {
        std::fs::set_permissions(wd.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Control: as that user the binary reads a readable file beside it, so the failure
        // below is the file's mode, not an untraversable folder.
        let o = wd.run_as([OsStr::new("inspect"), readable.as_os_str()], uid);
        assert_eq!(
            o.code, 0,
            "nobody cannot run inspect on a readable file:\n{o:#?}"
        );
    }
    let o = fault_as(&wd, &[&f], &[], uid);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fault(&o, &f, None, None, "permission denied");
}

/// User and group id of `nobody`.
const NOBODY: u32 = 65534;

#[test]
fn fault_directory_where_a_file_is_expected() {
    // Unreadable even by root: a folder given as the labels file. (A folder given as data, or
    // named like a part inside one, is read as a folder of parts.)
    let wd = Workdir::new();
    let data = wd.parquet("pool.parquet", pool(4, 4));
    let labels = wd.root().join("labels.csv");
    std::fs::create_dir(&labels).unwrap();
    let o = inspect_fault(&wd, &[&data], &["--labels", labels.to_str().unwrap()]);
    // The labels reader reports the OS error ("Is a directory"), so only the file and the
    // cause are checked here, not the column/row shape.
    assert_eq!(o.code, 2, "{o:#?}");
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "{o:#?}");
    assert!(
        lines[0].starts_with(&format!("error: {}", labels.display()))
            && lines[0].contains("Is a directory"),
        "{}",
        lines[0]
    );
}

#[test]
fn fault_unreadable_part_in_folder() {
    // A part that cannot be opened even by root: a dangling symlink named like a part.
    let wd = Workdir::new();
    wd.parquet("pool/part-0.parquet", pool(4, 4));
    let broken = wd.path("pool/part-1.parquet");
    std::os::unix::fs::symlink(wd.root().join("gone.parquet"), &broken).unwrap();
    let o = inspect_fault(&wd, &[&wd.root().join("pool")], &[]);
    assert_fault(&o, &broken, None, None, "no such file");
}

#[test]
fn fault_truncated_parquet() {
    let wd = Workdir::new();
    let f = wd.parquet("cut.parquet", pool(50, 8));
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, None, None, "truncated");
}

#[test]
fn fault_not_parquet() {
    let wd = Workdir::new();
    let f = wd.file(
        "data.parquet",
        "id,embedding\na,\"[1,0,0,0]\"\nb,\"[0,1,0,0]\"\n",
    );
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, None, None, "not a Parquet file");
}

#[test]
fn fault_path_does_not_exist() {
    let wd = Workdir::new();
    let f = wd.root().join("nowhere").join("pool.parquet");
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, None, None, "no such file");
}

#[test]
fn fault_labels_csv_without_label_header() {
    let wd = Workdir::new();
    let data = wd.parquet("pool.parquet", pool(4, 4));
    let labels = wd.file("labels.csv", "id,class\nv0,cat\nv1,dog\n");
    let o = inspect_fault(&wd, &[&data], &["--labels", labels.to_str().unwrap()]);
    assert_fault(&o, &labels, Some("label"), None, "missing column");
}

// ---- valid variants --------------------------------------------------------------------------

/// 12 rows of dimension `d`, labels cat×5, dog×3, owl×1, 3 unlabeled, in the given layout.
fn labeled_pool(wd: &Workdir, layout: Layout, float: Float, d: usize) -> PathBuf {
    let labels = [
        Some("cat"),
        Some("dog"),
        None,
        Some("cat"),
        Some("owl"),
        Some("cat"),
        None,
        Some("dog"),
        Some("cat"),
        None,
        Some("dog"),
        Some("cat"),
    ];
    wd.parquet(
        "pool.parquet",
        vec![
            ("id", ids("v", 12)),
            ("embedding", emb_as(layout, float, &vectors(12, d))),
            ("label", opt_str_col(&labels)),
        ],
    )
}

fn assert_labeled_pool(r: &Value, d: u64) {
    assert_figures(r, 12, d, 9, 3);
    assert_eq!(r["largest_classes"][0], json!(["cat", 5]), "{r:#}");
    assert_eq!(r["smallest_classes"][0], json!(["owl", 1]), "{r:#}");
    assert_eq!(r["carried_columns"], json!([]), "{r:#}");
}

#[test]
fn valid_f64_embeddings() {
    let wd = Workdir::new();
    let f = labeled_pool(&wd, Layout::FixedSizeList, Float::F64, 5);
    assert_labeled_pool(&inspect_json(&wd, &[&f], &[]), 5);
}

#[test]
fn valid_f16_embeddings() {
    let wd = Workdir::new();
    let f = labeled_pool(&wd, Layout::FixedSizeList, Float::F16, 8);
    assert_labeled_pool(&inspect_json(&wd, &[&f], &[]), 8);
}

#[test]
fn valid_list_embeddings() {
    let wd = Workdir::new();
    let f = labeled_pool(&wd, Layout::List, Float::F32, 6);
    assert_labeled_pool(&inspect_json(&wd, &[&f], &[]), 6);
}

#[test]
fn valid_large_list_embeddings() {
    let wd = Workdir::new();
    let f = labeled_pool(&wd, Layout::LargeList, Float::F64, 7);
    assert_labeled_pool(&inspect_json(&wd, &[&f], &[]), 7);
}

#[test]
fn valid_integer_ids_and_labels() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "ints.parquet",
        vec![
            (
                "id",
                i64_col(&(0..10).map(|i| Some(1000 + i * 7)).collect::<Vec<_>>()),
            ),
            ("embedding", emb(&vectors(10, 4))),
            (
                "label",
                i64_col(&[
                    Some(3),
                    Some(3),
                    None,
                    Some(-1),
                    Some(3),
                    None,
                    Some(42),
                    Some(-1),
                    None,
                    Some(3),
                ]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 10, 4, 7, 3);
    assert_eq!(r["largest_classes"][0], json!(["3", 4]), "{r:#}");
    assert_eq!(r["smallest_classes"][0], json!(["42", 1]), "{r:#}");
}

#[test]
fn valid_dictionary_labels() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "dict.parquet",
        vec![
            ("id", ids("v", 8)),
            ("embedding", emb(&vectors(8, 4))),
            (
                "label",
                dict_col(&[
                    Some("spam"),
                    None,
                    Some("ham"),
                    Some("spam"),
                    Some("spam"),
                    None,
                    Some("ham"),
                    Some("eggs"),
                ]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 8, 4, 6, 3);
    assert_eq!(
        r["largest_classes"],
        json!([["spam", 3], ["ham", 2], ["eggs", 1]]),
        "{r:#}"
    );
}

#[test]
fn valid_boolean_labels() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "bool.parquet",
        vec![
            ("id", ids("v", 6)),
            ("embedding", emb(&vectors(6, 4))),
            (
                "label",
                bool_col(&[Some(true), Some(false), None, Some(true), Some(true), None]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 6, 4, 4, 2);
    assert_eq!(
        r["largest_classes"],
        json!([["true", 3], ["false", 1]]),
        "{r:#}"
    );
}

#[test]
fn valid_no_label_column() {
    let wd = Workdir::new();
    let f = wd.parquet("nolabel.parquet", pool(9, 4));
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 9, 4, 0, 0);
    let problems = r["problems"].to_string();
    assert!(problems.contains("no labels"), "{r:#}");
}

#[test]
fn valid_extra_columns_carried() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "extra.parquet",
        vec![
            ("text", str_col(&["a", "b", "c", "d"])),
            ("id", ids("v", 4)),
            ("embedding", emb(&vectors(4, 4))),
            ("label", opt_str_col(&[Some("x"), None, Some("y"), None])),
            ("score", f64_col(&[0.1, 0.2, 0.3, 0.4])),
            ("uri", str_col(&["s3://a", "s3://b", "s3://c", "s3://d"])),
        ],
    );
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 4, 4, 2, 2);
    assert_eq!(
        r["carried_columns"],
        json!(["text", "score", "uri"]),
        "{r:#}"
    );
}

#[test]
fn valid_folder_of_parts() {
    let wd = Workdir::new();
    let root = wd.path("pool");
    std::fs::create_dir_all(&root).unwrap();
    let part = |name: &str, prefix: &str, n: usize, label: &str| {
        wd.parquet(
            name,
            vec![
                ("id", ids(prefix, n)),
                ("embedding", emb(&vectors(n, 4))),
                ("label", opt_str_col(&vec![Some(label); n])),
            ],
        )
    };
    let p0 = part("pool/part-00000.parquet", "a", 5, "cat");
    let p1 = part("pool/sub/deeper/part-00001.parquet", "b", 7, "dog");
    let p2 = part("pool/sub/part-00002.parquet", "c", 3, "owl");
    // Markers and hidden files that a reader must skip, even when named *.parquet.
    wd.file("pool/_SUCCESS", "");
    wd.file("pool/.hidden", "not parquet at all");
    wd.file("pool/.part-00000.parquet.crc", "crc garbage");
    wd.file("pool/_temporary.parquet", "half-written garbage");
    wd.file("pool/sub/.hidden.parquet", "garbage");
    let r = inspect_json(&wd, &[&root], &[]);
    assert_figures(&r, 15, 4, 15, 3);
    let mut files: Vec<String> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    files.sort();
    let mut want: Vec<String> = [&p0, &p1, &p2]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    want.sort();
    assert_eq!(files, want, "{r:#}");
    assert_eq!(
        r["largest_classes"],
        json!([["dog", 7], ["cat", 5], ["owl", 3]]),
        "{r:#}"
    );
}

#[test]
fn valid_unnormalized_embeddings() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "raw.parquet",
        vec![
            ("id", ids("v", 3)),
            (
                "embedding",
                emb(&[
                    vec![3.0, 4.0, 0.0, 0.0],
                    vec![0.0, 1.0, 0.0, 0.0],
                    vec![0.0, 0.0, 6.0, 8.0],
                ]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 3, 4, 0, 0);
    let norms = &r["norms"];
    let close = |k: &str, want: f64| {
        let got = norms[k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "norms.{k} = {got}, want {want}");
    };
    close("min", 1.0);
    close("max", 10.0);
    close("mean", 16.0 / 3.0);
    assert!(r["problems"].to_string().contains("not unit-norm"), "{r:#}");

    // Unit-norm input: no such problem.
    let g = wd.parquet(
        "unit.parquet",
        vec![("id", ids("u", 6)), ("embedding", emb(&unit_vectors(6, 4)))],
    );
    let r = inspect_json(&wd, &[&g], &[]);
    assert!(!r["problems"].to_string().contains("unit-norm"), "{r:#}");
    assert!((r["norms"]["max"].as_f64().unwrap() - 1.0).abs() < 1e-6);
}

/// Pool v0..v9: v0 cat, v1 dog, v2 cat, the rest unlabeled.
fn pool_for_merge(wd: &Workdir) -> PathBuf {
    let mut labels = vec![None; 10];
    labels[0] = Some("cat");
    labels[1] = Some("dog");
    labels[2] = Some("cat");
    wd.parquet(
        "pool.parquet",
        vec![
            ("id", ids("v", 10)),
            ("embedding", emb(&vectors(10, 4))),
            ("label", opt_str_col(&labels)),
        ],
    )
}

/// After merging: v1 dog→cat (override), v2 cat→cat (same), v5 → owl, v7 → dog (added),
/// zz1 and zz2 unknown.
fn assert_merged(r: &Value, labels_file: &Path) {
    assert_figures(r, 10, 4, 5, 3);
    assert_eq!(
        r["largest_classes"],
        json!([["cat", 3], ["dog", 1], ["owl", 1]]),
        "{r:#}"
    );
    let m = &r["label_merge"];
    assert_eq!(m["file"], json!(labels_file.display().to_string()), "{r:#}");
    assert_eq!(m["rows"], json!(6), "{r:#}");
    assert_eq!(m["applied"], json!(4), "{r:#}");
    assert_eq!(m["overridden"], json!(1), "{r:#}");
    assert_eq!(m["unknown_ids"], json!(2), "{r:#}");
    assert_eq!(m["unknown_examples"], json!(["zz1", "zz2"]), "{r:#}");
    assert!(r["problems"].to_string().contains("zz1"), "{r:#}");
}

#[test]
fn valid_labels_csv_merge() {
    let wd = Workdir::new();
    let data = pool_for_merge(&wd);
    let labels = wd.file(
        "round1.csv",
        "id,label\nv1,cat\nzz1,dog\nv2,cat\nv5,owl\nzz2,cat\nv7,dog\n",
    );
    let r = inspect_json(&wd, &[&data], &["--labels", labels.to_str().unwrap()]);
    assert_merged(&r, &labels);
}

#[test]
fn valid_labels_parquet_merge() {
    let wd = Workdir::new();
    let data = pool_for_merge(&wd);
    let labels = wd.parquet(
        "round1.parquet",
        vec![
            ("id", str_col(&["v1", "zz1", "v2", "v5", "zz2", "v7"])),
            (
                "label",
                str_col(&["cat", "dog", "cat", "owl", "cat", "dog"]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&data], &["--labels", labels.to_str().unwrap()]);
    assert_merged(&r, &labels);
}

#[test]
fn valid_labels_merge_onto_unlabeled_integer_ids() {
    // No label column in the data, integer ids; the CSV names them in decimal.
    let wd = Workdir::new();
    let data = wd.parquet(
        "pool.parquet",
        vec![
            (
                "id",
                i64_col(&(0..5).map(|i| Some(i * 10)).collect::<Vec<_>>()),
            ),
            ("embedding", emb(&vectors(5, 4))),
        ],
    );
    let labels = wd.file("l.csv", "id,label\n10,a\n40,b\n99,c\n");
    let r = inspect_json(&wd, &[&data], &["--labels", labels.to_str().unwrap()]);
    assert_figures(&r, 5, 4, 2, 2);
    assert_eq!(r["label_merge"]["unknown_ids"], json!(1), "{r:#}");
    assert_eq!(r["label_merge"]["unknown_examples"], json!(["99"]), "{r:#}");
}

#[test]
fn valid_label_col_flag() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "two_labels.parquet",
        vec![
            ("id", ids("v", 6)),
            ("embedding", emb(&vectors(6, 4))),
            (
                "label",
                opt_str_col(&[Some("a"), Some("a"), Some("a"), None, None, None]),
            ),
            (
                "gold",
                opt_str_col(&[Some("x"), Some("y"), Some("z"), Some("x"), None, None]),
            ),
        ],
    );
    let r = inspect_json(&wd, &[&f], &["--label-col", "gold"]);
    assert_figures(&r, 6, 4, 4, 3);
    assert_eq!(r["largest_classes"][0], json!(["x", 2]), "{r:#}");
    // The unused `label` column is an ordinary carried column now.
    assert_eq!(r["carried_columns"], json!(["label"]), "{r:#}");

    let r = inspect_json(&wd, &[&f], &[]);
    assert_figures(&r, 6, 4, 3, 1);
    assert_eq!(r["carried_columns"], json!(["gold"]), "{r:#}");
}

#[test]
fn valid_renamed_id_and_embedding_columns() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "renamed.parquet",
        vec![
            ("item_id", ids("v", 5)),
            ("vec", emb(&vectors(5, 4))),
            (
                "label",
                opt_str_col(&[Some("a"), None, None, None, Some("b")]),
            ),
        ],
    );
    let r = inspect_json(
        &wd,
        &[&f],
        &["--id-col", "item_id", "--embedding-col", "vec"],
    );
    assert_figures(&r, 5, 4, 2, 2);
    assert_eq!(r["carried_columns"], json!([]), "{r:#}");

    // Without the flags the default names are missing.
    let o = inspect_fault(&wd, &[&f], &[]);
    assert_fault(&o, &f, Some("id"), None, "missing column");
}

#[test]
fn valid_text_report() {
    let wd = Workdir::new();
    let f = labeled_pool(&wd, Layout::FixedSizeList, Float::F32, 4);
    let o = inspect(&wd, &[&f], &[]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(o.stderr, "", "{o:#?}");
    assert!(o.stdout.contains("rows        12\n"), "{o:#?}");
    assert!(o.stdout.contains("dimension   4\n"), "{o:#?}");
    assert!(o.stdout.contains("labeled     9 (75.0%)\n"), "{o:#?}");
    assert!(o.stdout.contains("classes     3\n"), "{o:#?}");
}

// ---- CLI basics ------------------------------------------------------------------------------

#[test]
fn cli_version() {
    let (code, stdout, stderr) = run(["--version"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("labelwise {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn cli_inspect_help_documents_every_flag() {
    let (code, stdout, stderr) = run(["inspect", "--help"]);
    assert_eq!(code, 0, "{stderr}");
    for flag in [
        "--json",
        "--top",
        "--id-col",
        "--embedding-col",
        "--label-col",
        "--labels",
        "--threads",
        "--quiet",
        "--help",
        "--version",
    ] {
        // The flag's own line carries its description (one line per flag).
        let line = stdout
            .lines()
            .find(|l| {
                l.split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                    .any(|w| w == flag)
            })
            .unwrap_or_else(|| panic!("{flag} not in inspect --help:\n{stdout}"));
        let words_after = line
            .split_whitespace()
            .filter(|w| !w.starts_with('-') && !w.starts_with('<'))
            .count();
        assert!(
            words_after >= 2,
            "{flag} has no one-line description: {line:?}\n{stdout}"
        );
    }
    assert!(stdout.contains("<DATA>"), "{stdout}");
}

#[test]
fn cli_unknown_flag_exits_2() {
    let (code, stdout, stderr) = run(["inspect", "x.parquet", "--no-such-flag"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn cli_missing_data_exits_2() {
    let (code, _, stderr) = run(["inspect"]);
    assert_eq!(code, 2, "{stderr}");
}

// ---- library-level checks on the normalized matrix ---------------------------------------------

/// Rows at the edges of f32 range must normalize to finite unit vectors, not inf/NaN.
/// (`inspect` only reports norms, so this reads the matrix through the library.)
#[test]
fn extreme_norms_normalize_to_unit_vectors() {
    let wd = Workdir::new();
    let f = wd.parquet(
        "extreme.parquet",
        vec![
            ("id", ids("v", 4)),
            (
                "embedding",
                emb(&[
                    vec![1e-40, 0.0, 0.0, 0.0], // subnormal in f32: 1/norm overflows f32
                    vec![3e38, 3e38, 0.0, 0.0], // norm beyond f32::MAX
                    vec![0.0, 3.0, 4.0, 0.0],
                    vec![1e-30, 0.0, 0.0, -1e-30],
                ]),
            ),
        ],
    );
    let data =
        labelwise::data::dataset::load(&[f], &labelwise::data::dataset::LoadOptions::default())
            .expect("valid input");
    let want: [[f32; 4]; 4] = [
        [1.0, 0.0, 0.0, 0.0],
        [
            std::f32::consts::FRAC_1_SQRT_2,
            std::f32::consts::FRAC_1_SQRT_2,
            0.0,
            0.0,
        ],
        [0.0, 0.6, 0.8, 0.0],
        [
            std::f32::consts::FRAC_1_SQRT_2,
            0.0,
            0.0,
            -std::f32::consts::FRAC_1_SQRT_2,
        ],
    ];
    for (i, row) in data.embeddings.rows().into_iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            assert!(
                (x - want[i][j]).abs() < 1e-5,
                "row {i}: got {row:?}, want {:?}",
                want[i]
            );
        }
    }
}
