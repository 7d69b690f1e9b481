//! `labelwise rules`: the analysis on a pool small enough to check by hand, and each bad rules
//! file refused with exit 2, one line naming the file and the rule, and nothing written.

use crate::common::{emb, i64_col, ids, opt_str_col, read_csv, read_parquet, str_col, Workdir};
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;

/// Eight items: sports items near (1, 0), business near (0, 1); six labeled.
fn pool(wd: &Workdir) -> String {
    let text = [
        "Goal! The striker scores",
        "Stocks fall on Wall Street",
        "The striker signs, shares rise",
        "Football: a late goal",
        "New chip from Intel",
        "GOALKEEPER injured",
        "Shares of the club",
        "Weather today",
    ];
    let source = [
        "espn", "reuters", "espn", "espn", "wired", "espn", "reuters", "bbc",
    ];
    let year = [2001, 2005, 2010, 2003, 2008, 1999, 2004, 2006];
    let label = [
        Some("Sports"),
        Some("Business"),
        Some("Business"),
        Some("Sports"),
        None,
        None,
        Some("Sports"),
        Some("World"),
    ];
    let vectors = [
        [1.0, 0.05],
        [0.05, 1.0],
        [0.7, 0.7],
        [1.0, 0.05],
        [0.3, -1.0],
        [1.0, 0.05],
        [0.05, 1.0],
        [-1.0, 0.2],
    ];
    let p = wd.parquet(
        "pool.parquet",
        vec![
            ("id", ids("i", 8)),
            ("embedding", emb(&vectors.map(|v| v.to_vec()))),
            ("label", opt_str_col(&label)),
            ("text", str_col(&text)),
            ("source", str_col(&source)),
            ("year", i64_col(&year.map(Some))),
        ],
    );
    p.to_str().unwrap().to_string()
}

const GOOD: &str = r#"
[[rule]]
name = "sports_kw"
label = "Sports"
keywords = ["goal", "striker", "football"]

[[rule]]
name = "business_kw"
label = "Business"
keywords = ["shares", "wall street", "stocks"]

[[rule]]
name = "espn"
label = "Sports"
when = { column = "source", equals = "espn" }

[[rule]]
name = "modern_tech"
label = "Sci/Tech"
when.all = [{ column = "year", ge = 2005 }, { regex = '\bchip\b' }]

[[rule]]
name = "near_i1"
label = "Business"
similar_to = ["i1"]
min_cosine = 0.9
"#;

fn rows_by_rule(rows: &[Vec<String>], rule: &str) -> Vec<String> {
    rows.iter().find(|r| r[0] == rule).unwrap().clone()
}

#[test]
fn analysis_by_hand() {
    let wd = Workdir::new();
    let data = pool(&wd);
    wd.file("rules.toml", GOOD);
    let o = wd.run([
        "rules",
        &data,
        "--rules",
        "rules.toml",
        "--out",
        "out",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{o:#?}");
    let (header, rows) = read_csv(&wd.path("out/rules.csv"));
    assert_eq!(
        header.join(","),
        "rule,label,fired,coverage,overlaps,conflicts,correct,incorrect,accuracy,accuracy_low,accuracy_high"
    );
    // fired, coverage, overlaps, conflicts, correct, incorrect, accuracy (see `pool`).
    let want: [(&str, [&str; 8]); 5] = [
        (
            "sports_kw",
            [
                "Sports",
                "3",
                "0.375",
                "0.375",
                "0.125",
                "2",
                "1",
                "0.6666666666666666",
            ],
        ),
        (
            "business_kw",
            [
                "Business",
                "3",
                "0.375",
                "0.375",
                "0.125",
                "2",
                "1",
                "0.6666666666666666",
            ],
        ),
        (
            "espn",
            [
                "Sports",
                "4",
                "0.5",
                "0.375",
                "0.125",
                "2",
                "1",
                "0.6666666666666666",
            ],
        ),
        (
            "modern_tech",
            ["Sci/Tech", "1", "0.125", "0", "0", "0", "0", ""],
        ),
        (
            "near_i1",
            ["Business", "2", "0.25", "0.25", "0", "1", "1", "0.5"],
        ),
    ];
    for (rule, fields) in want {
        let row = rows_by_rule(&rows, rule);
        assert_eq!(&row[1..9], &fields, "{rule}: {row:?}");
    }
    // 2 of 3: two-sided 95% Clopper–Pearson (0.0943, 0.9916).
    let row = rows_by_rule(&rows, "sports_kw");
    let (lo, hi): (f64, f64) = (row[9].parse().unwrap(), row[10].parse().unwrap());
    assert!(
        (lo - 0.0943).abs() < 1e-3 && (hi - 0.9916).abs() < 1e-3,
        "{row:?}"
    );
    assert_eq!(rows_by_rule(&rows, "modern_tech")[9], "");

    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wd.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["command"], "rules");
    let r = &s["rules"];
    assert_eq!(
        (r["coverage"].as_f64(), r["overlaps"].as_f64()),
        (Some(0.875), Some(0.625))
    );
    assert_eq!(r["conflicts"], 0.125);
    let m = &r["majority"];
    // Majority on the labeled: i0 right, i1 right, i2 wrong (Sports 2 : Business 1), i3 right,
    // i6 wrong, i7 no vote.
    assert_eq!(
        (m["labeled"].as_u64(), m["voted_labeled"].as_u64()),
        (Some(6), Some(5))
    );
    assert_eq!(
        (m["correct"].as_u64(), m["accuracy"].as_f64()),
        (Some(3), Some(0.6))
    );
    assert_eq!(m["accuracy_all_labeled"], 0.5);
    assert_eq!(
        (m["labeled_items"].as_u64(), m["no_votes"].as_u64()),
        (Some(7), Some(1))
    );
    // All four disagreeing rules are wrong once; the least accurate comes first.
    let worst: Vec<&str> = r["disagree_most"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(worst, ["near_i1", "sports_kw", "business_kw", "espn"]);
    assert_eq!(r["disagree_most"][0]["examples"], serde_json::json!(["i6"]));

    let votes = read_parquet(&wd.path("out/rule_votes.parquet"));
    let col = |name: &str| votes.column_by_name(name).unwrap().clone();
    let majority: Vec<Option<String>> = col("majority_label")
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect();
    let want = [
        "Sports", "Business", "Sports", "Sports", "Sci/Tech", "Sports", "Business",
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(majority[i].as_deref(), Some(*w), "item {i}");
    }
    assert_eq!(majority[7], None);
    let names = col("rules");
    let fired: Vec<&str> = names.as_string::<i32>().iter().flatten().collect();
    assert_eq!(fired[2], "sports_kw;business_kw;espn");
    assert_eq!(fired[5], "espn", "GOALKEEPER is not the word goal");
    assert_eq!(col("votes").as_primitive::<Int32Type>().value(2), 3);

    let (header, rows) = read_csv(&wd.path("out/rule_disagreements.csv"));
    assert_eq!(
        header.join(","),
        "rule,rule_label,incorrect,labeled_votes,id,label,text,source,year"
    );
    assert_eq!(
        rows[0][..6],
        ["near_i1", "Business", "1", "2", "i6", "Sports"]
    );
    assert_eq!(rows[0][6], "Shares of the club");
}

#[test]
fn outputs_do_not_depend_on_threads() {
    let wd = Workdir::new();
    let data = pool(&wd);
    wd.file("rules.toml", GOOD);
    for (threads, out) in [("1", "a"), ("2", "b")] {
        let o = wd.run([
            "rules",
            &data,
            "--rules",
            "rules.toml",
            "--out",
            out,
            "-q",
            "--threads",
            threads,
        ]);
        assert_eq!(o.code, 0, "{o:#?}");
    }
    for f in ["rules.csv", "rule_votes.parquet", "rule_disagreements.csv"] {
        let a = std::fs::read(wd.path(&format!("a/{f}"))).unwrap();
        let b = std::fs::read(wd.path(&format!("b/{f}"))).unwrap();
        assert!(a == b, "{f} differs between thread counts");
    }
}

#[test]
fn bad_rules_files_exit_2_with_one_line_and_write_nothing() {
    let wd = Workdir::new();
    let data = pool(&wd);
    let head = "[[rule]]\nname = \"r1\"\nlabel = \"Sports\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{head}when = {{ column = \"sauce\", equals = \"x\" }}"),
            "rule 'r1': unknown column 'sauce' (columns rules can read: text, source, year)",
        ),
        (
            format!("{head}regex = \"(unclosed\""),
            "rule 'r1': invalid regex '(unclosed'",
        ),
        (
            "[[rule]]\nname = \"r1\"\nlabel = 7\nkeywords = [\"goal\"]".into(),
            "rule 'r1': label must be a string, got integer 7",
        ),
        (
            format!("{head}similar_to = [\"i1\", \"nope\"]\nmin_cosine = 0.5"),
            "rule 'r1': unknown example id 'nope' in similar_to",
        ),
        (
            format!("{head}keywords = [\"cricket\"]"),
            "rule 'r1': fires on none of the 8 items",
        ),
        (
            format!("{head}when = {{ column = \"year\", gt = 2020 }}"),
            "rule 'r1': fires on none of the 8 items",
        ),
        (
            format!("{head}keywords = [\"goal\"]\ncolumn = \"year\""),
            "rule 'r1': column 'year' holds Int64; keywords and regex need a string column",
        ),
        (
            format!("{head}when = {{ column = \"year\", equals = \"2001\" }}"),
            "rule 'r1': column 'year' holds Int64; cannot compare it with string \"2001\"",
        ),
        (
            format!("{head}centroid = \"Sci/Tech\"\nmin_cosine = 0.5"),
            "rule 'r1': class 'Sci/Tech' has no labeled items",
        ),
        (format!("{head}keywords = [\"goal\""), "line 4:"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = format!("bad{i}.toml");
        wd.file(&file, text);
        let out = format!("out{i}");
        let o = wd.run(["rules", &data, "--rules", &file, "--out", &out, "-q"]);
        assert_eq!(o.code, 2, "{text}:\n{o:#?}");
        let lines = o.stderr_lines();
        assert_eq!(lines.len(), 1, "{o:#?}");
        let wanted = format!("error: {file}: {want}");
        assert!(
            lines[0].starts_with(&wanted),
            "wants {wanted:?}, got {:?}",
            lines[0]
        );
        wd.assert_no_output(&wd.root().join(&out));
    }
    let o = wd.run([
        "rules",
        &data,
        "--rules",
        "missing.toml",
        "--out",
        "o",
        "-q",
    ]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(
        o.stderr
            .starts_with("error: missing.toml: cannot read the rules file"),
        "{o:#?}"
    );
}

#[test]
fn centroid_one_of_not_and_any_fire_where_expected() {
    let wd = Workdir::new();
    let data = pool(&wd);
    // The Sports centroid (labeled i0, i3, i6) points at about (0.88, 0.47): cosine ≥ 0.8 for
    // the sports items and the mixed i2, not for business, tech or weather.
    wd.file(
        "rules.toml",
        r#"
        [[rule]]
        name = "sporty"
        label = "Sports"
        centroid = "Sports"
        min_cosine = 0.8

        [[rule]]
        name = "wires"
        label = "World"
        when.all = [
          { column = "source", one_of = ["reuters", "bbc"] },
          { not = { keywords = ["stocks"] } },
        ]

        [[rule]]
        name = "old_or_tech"
        label = "Sci/Tech"
        when.any = [{ column = "year", lt = 2000 }, { keywords = ["intel"], case_sensitive = true }]
        "#,
    );
    let o = wd.run([
        "rules",
        &data,
        "--rules",
        "rules.toml",
        "--out",
        "out",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{o:#?}");
    let votes = read_parquet(&wd.path("out/rule_votes.parquet"));
    let names = votes.column_by_name("rules").unwrap().clone();
    let fired: Vec<&str> = names.as_string::<i32>().iter().flatten().collect();
    // i4 "New chip from Intel": `intel` is case-sensitive here, so it does not match "Intel".
    assert_eq!(
        fired,
        [
            "sporty",
            "",
            "sporty",
            "sporty",
            "",
            "sporty;old_or_tech",
            "wires",
            "wires"
        ]
    );
}

/// A pool the embeddings alone cannot certify: three classes whose vectors overlap (noise as
/// large as the signal), and a text column where two classes' items often name their class
/// ("alpha …", "bravo …"). 2,400 items, a seeded random 35% labeled (no history: every label
/// is evidence). Returns the data path and every item's true class.
fn rule_pool(wd: &Workdir) -> (String, Vec<usize>) {
    let n = 2400;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let names = ["alpha", "bravo", "charlie"];
    let (mut vectors, mut text, mut label, mut truth) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let class = i % 3;
        let v: Vec<f64> = (0..8)
            .map(|d| {
                let signal = if d == class { 1.0 } else { 0.0 };
                let normal =
                    (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
                signal + 0.9 * normal
            })
            .collect();
        vectors.push(v);
        let named = class < 2 && uniform() < 0.6;
        text.push(if named {
            format!("{} request number {i}", names[class])
        } else {
            format!("request number {i}")
        });
        label.push((uniform() < 0.35).then_some(names[class]));
        truth.push(class);
    }
    let p = wd.parquet(
        "rule_pool.parquet",
        vec![
            ("id", ids("r", n)),
            ("embedding", emb(&vectors)),
            ("label", opt_str_col(&label)),
            ("text", str_col(&text)),
        ],
    );
    (p.to_str().unwrap().to_string(), truth)
}

const ROUND_RULES: &str = r#"
[[rule]]
name = "says_alpha"
label = "alpha"
keywords = ["alpha"]

[[rule]]
name = "says_bravo"
label = "bravo"
keywords = ["bravo"]
"#;

/// Auto-labels per source, and how many of each are right.
fn autolabels_by_source(path: &std::path::Path, truth: &[usize]) -> Vec<(String, usize, usize)> {
    let b = read_parquet(path);
    let (id, label, source) = (
        b.column_by_name("id").unwrap().as_string::<i32>(),
        b.column_by_name("label").unwrap().as_string::<i32>(),
        b.column_by_name("source").unwrap().as_string::<i32>(),
    );
    let names = ["alpha", "bravo", "charlie"];
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    for k in 0..b.num_rows() {
        let row: usize = id.value(k).trim_start_matches('r').parse().unwrap();
        let right = usize::from(names[truth[row]] == label.value(k));
        match out.iter_mut().find(|(s, _, _)| s == source.value(k)) {
            Some(cell) => (cell.1, cell.2) = (cell.1 + 1, cell.2 + right),
            None => out.push((source.value(k).to_string(), 1, right)),
        }
    }
    out
}

#[test]
fn rules_in_the_round_label_what_the_embeddings_cannot_and_stay_precise() {
    let wd = Workdir::new();
    let (data, truth) = rule_pool(&wd);
    wd.file("rules.toml", ROUND_RULES);
    let plan = |out: &str, rules: bool| {
        let mut args = vec!["plan", &data, "--out", out, "--batch", "20", "-q"];
        if rules {
            args.extend(["--rules", "rules.toml"]);
        }
        let o = wd.run(args);
        assert_eq!(o.code, 0, "{o:#?}");
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(wd.path(&format!("{out}/summary.json"))).unwrap(),
        )
        .unwrap();
        s["autolabel"].clone()
    };
    let without = plan("without", false);
    let with = plan("with", true);
    let auto = |a: &serde_json::Value| a["counts"]["auto"].as_u64().unwrap();
    // The overlapping vectors alone certify little; the rules, combined with the model and
    // certified on the same labels, certify more.
    assert!(
        auto(&with) >= auto(&without) + 100,
        "with rules {} vs without {}: {with:#}",
        auto(&with),
        auto(&without)
    );
    assert!(
        with["model"].as_str().unwrap().ends_with("+rules"),
        "{with:#}"
    );
    assert_eq!(with["rules"]["rules"], 2);
    assert!(without.get("rules").is_none());
    let sources = autolabels_by_source(&wd.path("with/autolabels.parquet"), &truth);
    let rules = sources
        .iter()
        .find(|(s, _, _)| s == "rules")
        .expect("source rules");
    assert_eq!(rules.1 as u64, with["rules"]["n_auto"].as_u64().unwrap());
    for (source, n, right) in &sources {
        let precision = *right as f64 / *n as f64;
        assert!(precision >= 0.95, "{source}: {right}/{n}");
    }
    // summary.json and the report carry the rules' analysis on the round's labels.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wd.path("with/summary.json")).unwrap())
            .unwrap();
    let per_rule = summary["rules"]["per_rule"].as_array().unwrap();
    assert_eq!(per_rule.len(), 2);
    assert_eq!(per_rule[0]["rule"], "says_alpha");
    assert_eq!(per_rule[0]["accuracy"], 1.0, "{per_rule:?}");
    assert!(
        summary["rules"]["majority"]["voted_labeled"]
            .as_u64()
            .unwrap()
            > 100
    );
    let report = std::fs::read_to_string(wd.path("with/report.html")).unwrap();
    assert!(report.contains("<h2>Rules</h2>") && report.contains("says_bravo"));
    assert!(!std::fs::read_to_string(wd.path("without/report.html"))
        .unwrap()
        .contains("<h2>Rules</h2>"));
    // items.parquet names the rules that fired on each item.
    let items = read_parquet(&wd.path("with/items.parquet"));
    let (id, reasons) = (
        items.column_by_name("id").unwrap().as_string::<i32>(),
        items.column_by_name("reasons").unwrap().as_string::<i32>(),
    );
    let text_of = |k: usize| -> usize { id.value(k).trim_start_matches('r').parse().unwrap() };
    let fired = (0..items.num_rows())
        .filter(|&k| reasons.value(k).contains("rule:says_alpha"))
        .count();
    assert!(fired > 100, "{fired}");
    for k in 0..items.num_rows() {
        if reasons.value(k).contains("rule:says_bravo") {
            assert_eq!(truth[text_of(k)], 1, "{}", reasons.value(k));
        }
    }
}

#[test]
fn a_bad_rules_file_stops_a_plan_before_anything_is_written() {
    let wd = Workdir::new();
    let data = pool(&wd);
    let cases = [
        ("syntax.toml", "[[rule]\nname = 1", "syntax.toml"),
        (
            "column.toml",
            "[[rule]]\nname = \"x\"\nlabel = \"Sports\"\nwhen = { column = \"sauce\", equals = \"espn\" }",
            "rule 'x': unknown column 'sauce'",
        ),
        (
            "never.toml",
            "[[rule]]\nname = \"never\"\nlabel = \"Sports\"\nkeywords = [\"cricket\"]",
            "rule 'never': fires on none of the 8 items",
        ),
    ];
    for (file, text, want) in cases {
        wd.file(file, text);
        let out = wd.path(&format!("out-{file}"));
        let o = wd.run([
            "plan",
            &data,
            "--rules",
            file,
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert_eq!(o.code, 2, "{file}: {o:#?}");
        let lines = o.stderr_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(want), "{file}: {lines:?}");
        wd.assert_no_output(&out);
    }
}

/// `id,rule,label` rows standing for the rules that fired per item in a `rules` run's
/// rule_votes.parquet (`label_of` gives each rule's label): the votes a rules file cast,
/// handed over as if another tool had computed them.
fn votes_csv(rule_votes: &std::path::Path, label_of: &[(&str, &str)]) -> String {
    let b = read_parquet(rule_votes);
    let (id, fired) = (
        b.column_by_name("id").unwrap().as_string::<i32>(),
        b.column_by_name("rules").unwrap().as_string::<i32>(),
    );
    // Rule by rule: a votes file's rules come in the order they first appear.
    let mut csv = String::from("id,rule,label\n");
    for (rule, label) in label_of {
        for k in 0..b.num_rows() {
            if fired.value(k).split(';').any(|r| r == *rule) {
                csv.push_str(&format!("{},{rule},{label}\n", id.value(k)));
            }
        }
    }
    csv
}

#[test]
fn rule_votes_analyse_exactly_as_the_rules_they_stand_for() {
    let wd = Workdir::new();
    let data = pool(&wd);
    wd.file("rules.toml", GOOD);
    let o = wd.run([
        "rules",
        &data,
        "--rules",
        "rules.toml",
        "--out",
        "toml",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{o:#?}");
    let labels = [
        ("sports_kw", "Sports"),
        ("business_kw", "Business"),
        ("espn", "Sports"),
        ("modern_tech", "Sci/Tech"),
        ("near_i1", "Business"),
    ];
    wd.file(
        "votes.csv",
        votes_csv(&wd.path("toml/rule_votes.parquet"), &labels),
    );
    let o = wd.run([
        "rules",
        &data,
        "--rule-votes",
        "votes.csv",
        "--out",
        "votes",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{o:#?}");
    for f in ["rules.csv", "rule_votes.parquet", "rule_disagreements.csv"] {
        let a = std::fs::read(wd.path(&format!("toml/{f}"))).unwrap();
        let b = std::fs::read(wd.path(&format!("votes/{f}"))).unwrap();
        assert!(a == b, "{f} differs between the rules file and its votes");
    }
    // Half from the file, half as votes: the same table again.
    let file_half: String = GOOD
        .split("[[rule]]")
        .take(3)
        .collect::<Vec<_>>()
        .join("[[rule]]");
    wd.file("half.toml", file_half);
    let rest: String = std::fs::read_to_string(wd.path("votes.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(",sports_kw,") && !l.contains(",business_kw,"))
        .map(|l| format!("{l}\n"))
        .collect();
    wd.file("rest.csv", rest);
    let args = ["--rules", "half.toml", "--rule-votes", "rest.csv"];
    let o = wd.run(
        ["rules", &data, "--out", "mixed", "-q"]
            .into_iter()
            .chain(args),
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(
        std::fs::read(wd.path("toml/rules.csv")).unwrap(),
        std::fs::read(wd.path("mixed/rules.csv")).unwrap()
    );
}

#[test]
fn a_round_with_rule_votes_is_the_round_with_the_rules_file() {
    let wd = Workdir::new();
    let (data, _) = rule_pool(&wd);
    wd.file("rules.toml", ROUND_RULES);
    let o = wd.run(["rules", &data, "--rules", "rules.toml", "--out", "a", "-q"]);
    assert_eq!(o.code, 0, "{o:#?}");
    let labels = [("says_alpha", "alpha"), ("says_bravo", "bravo")];
    wd.file(
        "votes.csv",
        votes_csv(&wd.path("a/rule_votes.parquet"), &labels),
    );
    for (out, flag, file) in [
        ("toml", "--rules", "rules.toml"),
        ("votes", "--rule-votes", "votes.csv"),
    ] {
        let o = wd.run(["autolabel", &data, flag, file, "--out", out, "-q"]);
        assert_eq!(o.code, 0, "{o:#?}");
    }
    for f in ["items.parquet", "autolabels.parquet"] {
        let a = std::fs::read(wd.path(&format!("toml/{f}"))).unwrap();
        let b = std::fs::read(wd.path(&format!("votes/{f}"))).unwrap();
        assert!(a == b, "{f} differs between the rules file and its votes");
    }
    let summary = |out: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(wd.path(&format!("{out}/summary.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (a, b) = (summary("toml"), summary("votes"));
    assert!(
        a["autolabel"]["rules"]["n_auto"].as_u64().unwrap() > 0,
        "{a:#}"
    );
    assert_eq!(a["autolabel"], b["autolabel"]);
    assert_eq!(a["rules"]["per_rule"], b["rules"]["per_rule"]);
    assert_eq!(b["rules"]["file"], "votes.csv");
}

#[test]
fn bad_rule_votes_exit_2_naming_file_row_and_column_and_write_nothing() {
    let wd = Workdir::new();
    let data = pool(&wd);
    wd.file("rules.toml", GOOD);
    let cases = [
        (
            "id,rule,label\ni0,kw,Sports\nnope,kw,Sports\n",
            "column 'id', row 1: unknown id 'nope'",
        ),
        (
            "id,rule,label\ni0,kw,Sports\ni1,kw,\n",
            "column 'label', row 1: empty label",
        ),
        (
            "id,rule,label\ni0,espn,Sports\n",
            "column 'rule', row 0: rule 'espn' is also a rule of the rules file",
        ),
        (
            "id,rule,label\ni0,kw,Sports\ni0,kw,World\n",
            "column 'id', row 1: rule 'kw' votes twice on id 'i0'",
        ),
        (
            "id,rule,label\ni0,bad name,Sports\n",
            "column 'rule', row 0: 'bad name': name must be",
        ),
        ("id,label\ni0,Sports\n", "column 'rule': missing column"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = format!("votes{i}.csv");
        wd.file(&file, text);
        for (command, out) in [("rules", format!("r{i}")), ("plan", format!("p{i}"))] {
            let args = [
                "--rules",
                "rules.toml",
                "--rule-votes",
                &file,
                "--out",
                &out,
                "-q",
            ];
            let o = wd.run([command, &data].into_iter().chain(args));
            assert_eq!(o.code, 2, "{command} {text}: {o:#?}");
            let lines = o.stderr_lines();
            assert_eq!(lines.len(), 1, "{o:#?}");
            let wanted = format!("error: {file}: {want}");
            assert!(
                lines[0].starts_with(&wanted),
                "wants {wanted:?}, got {:?}",
                lines[0]
            );
            wd.assert_no_output(&wd.root().join(&out));
        }
    }
    let o = wd.run(["rules", &data, "--out", "none", "-q"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(
        o.stderr.contains("--rules FILE or --rule-votes FILE"),
        "{o:#?}"
    );
}
