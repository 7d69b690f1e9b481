#!/usr/bin/env python3
"""Checks that `labelwise rules` computes what Snorkel computes (issue 18).

On agnews with labels hidden but for a random 5% (seeded), the keyword/regex rules of a TOML
rules file are translated into Snorkel labeling functions; Snorkel's LFAnalysis (coverage,
overlaps, conflicts on every item; correct, incorrect, empirical accuracy on the labeled items)
and MajorityLabelVoter (accuracy on the labeled items, labels on every item) are compared with
`labelwise rules` on the same pool. Every count must be equal and every share equal to 1e-12.

    python3 benches/rules_snorkel.py [--data agnews.parquet] [--rules examples/agnews_rules.toml]
        [--share 0.05] [--seed 0] [--bin target/release/labelwise] [--out benches/results/rules_snorkel.md]

Installs snorkel from PyPI into .venv (gitignored) on first use and re-runs itself there.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
VPY = os.path.join(VENV, "bin", "python")


def ensure_venv():
    """Re-executes this script in .venv with snorkel installed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(VPY):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    probe = subprocess.run([VPY, "-c", "import snorkel, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([VPY, "-m", "pip", "install", "-q", "snorkel", "pyarrow"], check=True)
    os.execv(VPY, [VPY, *sys.argv])


def keywords_pattern(words, word_boundary):
    """The pattern labelwise builds for a keyword list (src/rules/file.rs keywords_pattern)."""
    is_word = lambda c: c.isalnum() or c == "_"
    alts = []
    for w in words:
        start = word_boundary and is_word(w[0])
        end = word_boundary and is_word(w[-1])
        alts.append(("\\b" if start else "") + re.escape(w) + ("\\b" if end else ""))
    return "(?:" + "|".join(alts) + ")"


def rule_patterns(path):
    """(name, label, compiled regex, column) per rule; only keyword and regex rules translate."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    text_col = doc.get("text_column", "text")
    out = []
    for r in doc["rule"]:
        cond = r.get("when") or {k: v for k, v in r.items() if k not in ("name", "label")}
        flags = 0 if cond.get("case_sensitive", False) else re.IGNORECASE
        if "keywords" in cond:
            pat = keywords_pattern(cond["keywords"], cond.get("word_boundary", True))
        elif "regex" in cond:
            pat = cond["regex"]
        else:
            sys.exit(f"rule {r['name']}: only keywords/regex rules translate to Python")
        out.append((r["name"], r["label"], re.compile(pat, flags), cond.get("column", text_col)))
    return out


def hide_labels(data, share, seed, path):
    """Writes `data` with labels kept on a seeded random `share` of rows; returns the table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(data)
    n = t.num_rows
    keep = np.zeros(n, dtype=bool)
    keep[np.random.default_rng(seed).choice(n, size=round(share * n), replace=False)] = True
    labels = t.column("label").to_pylist()
    hidden = pa.array([l if k else None for l, k in zip(labels, keep)], type=pa.string())
    t = t.set_column(t.schema.get_field_index("label"), "label", hidden)
    pq.write_table(t, path)
    return t, np.array(labels, dtype=object), keep


def snorkel_side(table, rules, gold, keep):
    """Snorkel's LFAnalysis and MajorityLabelVoter on the rules."""
    import numpy as np
    import pandas as pd
    from snorkel.labeling import LFAnalysis, PandasLFApplier, labeling_function
    from snorkel.labeling.model import MajorityLabelVoter

    classes = sorted(set(gold[keep]) | {r[1] for r in rules})
    index = {c: i for i, c in enumerate(classes)}

    def make_lf(name, label, rx, col):
        @labeling_function(name=name)
        def lf(x):
            v = x[col]
            return index[label] if isinstance(v, str) and rx.search(v) else -1

        return lf

    lfs = [make_lf(*r) for r in rules]
    df = pd.DataFrame({c: table.column(c).to_pylist() for c in {r[3] for r in rules}})
    L = PandasLFApplier(lfs=lfs).apply(df=df, progress_bar=False)
    all_items = LFAnalysis(L=L, lfs=lfs).lf_summary()
    y_dev = np.array([index[g] for g in gold[keep]])
    dev = LFAnalysis(L=L[keep], lfs=lfs).lf_summary(Y=y_dev)
    mv = MajorityLabelVoter(cardinality=len(classes))
    acc = mv.score(L=L[keep], Y=y_dev, tie_break_policy="abstain")["accuracy"]
    pred = mv.predict(L=L, tie_break_policy="abstain")
    return classes, L, all_items, dev, acc, pred


def labelwise_side(binary, pool, rules_file, out):
    import json

    import pyarrow.parquet as pq

    subprocess.run(
        [binary, "rules", pool, "--rules", rules_file, "--out", out, "--quiet"], check=True
    )
    summary = json.load(open(os.path.join(out, "summary.json")))
    votes = pq.read_table(os.path.join(out, "rule_votes.parquet")).to_pylist()
    return summary, votes


def compare(rules, snork, lw):
    """Rows of (quantity, labelwise, snorkel, equal) and whether all are equal."""
    classes, L, all_items, dev, acc, pred = snork
    summary, votes = lw
    rows = []

    def check(what, ours, theirs, exact):
        ok = ours == theirs if exact else abs(ours - theirs) <= 1e-12
        rows.append((what, ours, theirs, ok))

    per_rule = {r["rule"]: r for r in summary["rules"]["per_rule"]}
    for name, *_ in rules:
        ours, s, d = per_rule[name], all_items.loc[name], dev.loc[name]
        check(f"{name} coverage", ours["coverage"], float(s["Coverage"]), False)
        check(f"{name} overlaps", ours["overlaps"], float(s["Overlaps"]), False)
        check(f"{name} conflicts", ours["conflicts"], float(s["Conflicts"]), False)
        check(f"{name} correct", ours["correct"], int(d["Correct"]), True)
        check(f"{name} incorrect", ours["incorrect"], int(d["Incorrect"]), True)
        check(f"{name} emp. accuracy", ours["accuracy"], float(d["Emp. Acc."]), False)
    check("majority accuracy (labeled)", summary["rules"]["majority"]["accuracy"], float(acc), False)
    names = [r[0] for r in rules]
    fired = [set(v["rules"].split(";")) - {""} for v in votes]
    l_equal = all(
        (L[i, j] != -1) == (names[j] in fired[i]) for i in range(len(votes)) for j in range(len(names))
    )
    check("votes matrix L (every item × rule)", l_equal, True, True)
    ours_pred = [v["majority_label"] for v in votes]
    theirs_pred = [classes[p] if p != -1 else None for p in pred]
    check("majority label (every item)", ours_pred == theirs_pred, True, True)
    return rows, all(r[3] for r in rows)


def main():
    ensure_venv()
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/datasets/agnews.parquet")
    ap.add_argument("--rules", default=os.path.join(ROOT, "examples", "agnews_rules.toml"))
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "results", "rules_snorkel.md"))
    a = ap.parse_args()
    binary = a.bin or next(
        p
        for p in (os.path.join(ROOT, "target", d, "labelwise") for d in ("release", "debug"))
        if os.path.exists(p)
    )
    import snorkel

    rules = rule_patterns(a.rules)
    with tempfile.TemporaryDirectory() as tmp:
        pool = os.path.join(tmp, "pool.parquet")
        table, gold, keep = hide_labels(a.data, a.share, a.seed, pool)
        snork = snorkel_side(table, rules, gold, keep)
        lw = labelwise_side(binary, pool, a.rules, os.path.join(tmp, "out"))
    rows, ok = compare(rules, snork, lw)
    lines = [
        "# `labelwise rules` vs Snorkel (issue 18)",
        "",
        f"Produced by `python3 benches/rules_snorkel.py` (snorkel {snorkel.__version__}): "
        f"`{os.path.relpath(a.data, ROOT) if a.data.startswith(ROOT) else a.data}`, "
        f"{len(keep)} items, labels kept on {int(keep.sum())} ({a.share:.0%}, seed {a.seed}), "
        f"rules `{os.path.relpath(a.rules, ROOT)}` ({len(rules)} rules). Shares must agree to "
        "1e-12, counts exactly.",
        "",
        "| quantity | labelwise | Snorkel | equal |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {w} | {o} | {t} | {'yes' if e else '**NO**'} |" for w, o, t, e in rows]
    lines += ["", f"**{'All equal' if ok else 'MISMATCH'}**: {sum(r[3] for r in rows)} of {len(rows)} checks."]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
