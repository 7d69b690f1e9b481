//! Who is at fault, and the exit code that says so: 2 for the user's flags or input (one
//! `error:` line naming the flag or the file), 1 for our own failures. A panic inside a
//! third-party Parquet decoder on bad bytes is the input's fault; a panic in our code is ours.

use std::process::{Command, Stdio};

use crate::common::{clustered, emb, ids, unit_vectors, write_pool, Workdir};
use labelwise::error::{catch_panic, PanicOrigin};
use labelwise::index::graph::GraphParams;
use labelwise::model::cv::cross_validate;
use labelwise::model::NearestCentroid;
use labelwise::round::rarity::RarityParams;
use labelwise::round::select::SelectParams;
use labelwise::Error;
use ndarray::Array2;

/// Asserts one `error:` line on stderr and returns it.
fn one_error_line(o: &crate::common::Output) -> String {
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "one stderr line:\n{o:#?}");
    assert!(lines[0].starts_with("error: "), "{o:#?}");
    assert!(!lines[0].contains("panicked"), "{o:#?}");
    lines[0].to_string()
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    let wd = Workdir::new();
    let s = clustered(60, 3, 8, 0.1, 7);
    let data = write_pool(&wd, "pool.parquet", &s, &[true; 60]);
    let data = data.to_str().unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        ("select", &["--batch", "0"], "--batch must be at least 1"),
        ("dedup", &["--k", "0"], "--k must be at least 1"),
        ("dedup", &["--probes", "0"], "--probes must be at least 1"),
        ("score", &["--rarity-w-knn=-1"], "--rarity-w-knn must be"),
        ("select", &["--w-density=-0.5"], "--w-density must be"),
        (
            "budget",
            &["--annotators", "0"],
            "--annotators must be at least 1",
        ),
    ];
    for (i, (cmd, flags, want)) in cases.iter().enumerate() {
        let out = format!("out{i}");
        let mut args = vec![*cmd, data, "--out", &out, "--no-cache"];
        args.extend_from_slice(flags);
        let o = wd.run(&args);
        assert_eq!(o.code, 2, "{args:?}:\n{o:#?}");
        let line = one_error_line(&o);
        assert!(line.contains(want), "{args:?}: wants {want:?}: {line}");
        assert!(!line.contains("internal"), "{line}");
    }
}

#[test]
fn simulate_rounds_flag_is_named() {
    let wd = Workdir::new();
    let s = clustered(60, 3, 8, 0.1, 8);
    let data = write_pool(&wd, "pool.parquet", &s, &[true; 60]);
    let o = wd.run([
        "simulate",
        data.to_str().unwrap(),
        "--out",
        "sim",
        "--no-cache",
        "--rounds",
        "0",
    ]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(one_error_line(&o).contains("--rounds must be at least 1"));
}

/// An error that is not the user's (here stdout cannot be written) exits 1 with one line.
#[test]
fn internal_failure_exits_1_with_one_line() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("no /dev/full: skipped");
        return;
    };
    let wd = Workdir::new();
    let data = wd.parquet(
        "pool.parquet",
        vec![("id", ids("x", 6)), ("embedding", emb(&unit_vectors(6, 4)))],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_labelwise"))
        .args(["inspect", data.to_str().unwrap(), "--json"])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .env_remove("RUST_BACKTRACE")
        .env_remove("LABELWISE_BACKTRACE")
        .output()
        .unwrap();
    let o = crate::common::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(one_error_line(&o).starts_with("error: internal error: "));
}

/// Shapes that disagree between our own arrays are our bug: `Internal`, exit code 1.
#[test]
fn shape_mismatch_is_internal() {
    let x = Array2::<f32>::ones((4, 3));
    let Err(err) = cross_validate(&NearestCentroid::default(), x.view(), &[0, 1, 0], 2, 2, 0)
    else {
        panic!("3 labels for 4 rows must fail");
    };
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert_eq!(Error::Usage("x".into()).exit_code(), 2);
}

/// Library parameter checks name the parameter, never a flag.
#[test]
fn library_messages_name_parameters_not_flags() {
    let errs = [
        SelectParams {
            batch: 0,
            ..SelectParams::default()
        }
        .validate(),
        SelectParams {
            w_rarity: -1.0,
            ..SelectParams::default()
        }
        .validate(),
        RarityParams {
            neighbors: 0,
            ..RarityParams::default()
        }
        .validate(),
        GraphParams {
            k: 0,
            ..GraphParams::default()
        }
        .validate(10),
    ];
    for r in errs {
        let e = r.expect_err("invalid parameters");
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        assert!(!e.to_string().contains("--"), "{e}");
    }
}

/// A pool file found by fuzzing on which parquet's decoder divides by zero: the panic starts
/// in a dependency, so it is the input's fault.
#[test]
fn decoder_panic_on_bad_bytes_exits_2_naming_the_file() {
    let wd = Workdir::new();
    let data = wd.file(
        "pool.parquet",
        include_bytes!("data/fuzz-load-crash-fc86b1fe.bin"),
    );
    let o = wd.run(["inspect", data.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{o:#?}");
    let line = one_error_line(&o);
    assert!(line.contains("pool.parquet"), "{line}");
    assert!(line.contains("corrupt Parquet data"), "{line}");
}

/// Damaged copies of a valid pool (truncated, bytes flipped in the data pages): each is
/// rejected as the input's fault (exit 2, one line naming the file) or, when the damage lands
/// where nothing checks it, read; never an internal error.
#[test]
fn damaged_parquet_is_an_input_error_never_internal() {
    let wd = Workdir::new();
    let s = clustered(200, 3, 8, 0.1, 9);
    let good = write_pool(&wd, "good.parquet", &s, &[true; 200]);
    let bytes = std::fs::read(&good).unwrap();
    let mut variants: Vec<Vec<u8>> = vec![bytes[..bytes.len() / 2].to_vec()];
    // Flip bytes through the data pages (after the 4-byte magic, before the footer).
    let body = bytes.len() - 400;
    for i in 0..24 {
        let mut b = bytes.clone();
        let at = 4 + i * (body / 24);
        b[at] ^= 0x5a;
        variants.push(b);
    }
    let mut rejected = 0;
    for (i, b) in variants.iter().enumerate() {
        let path = wd.file(&format!("bad{i}.parquet"), b);
        let o = wd.run(["inspect", path.to_str().unwrap()]);
        assert!(o.code == 0 || o.code == 2, "variant {i}: {o:#?}");
        if o.code == 2 {
            rejected += 1;
            let line = one_error_line(&o);
            assert!(line.contains(&format!("bad{i}.parquet")), "{line}");
        }
    }
    assert!(rejected > 0, "some damage must be detected");
}

/// A panic in our own code is told apart from a dependency's by where it started.
#[test]
fn our_own_panic_is_not_blamed_on_the_input() {
    let caught = catch_panic(|| -> u32 { panic!("a bug of ours") }).unwrap_err();
    assert_eq!(caught.origin, PanicOrigin::Labelwise, "{caught:?}");
    assert!(
        caught
            .location
            .as_deref()
            .unwrap()
            .starts_with("tests/it/errors.rs:"),
        "{caught:?}"
    );
}
