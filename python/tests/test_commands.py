"""Every function against the CLI on the same input: same files, same batch, same auto-labels."""

from __future__ import annotations

import csv
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import labelwise

from conftest import REPO, files, run_cli, strip_run_facts, summary_without_run_facts

#: Hand-written keyword rules for Banking77 (the bundled sample is a slice of it).
RULES = str(REPO / "examples" / "banking77_rules.toml")

#: Files whose bytes depend on nothing but the inputs and the seed.
DETERMINISTIC = {
    "items.parquet",
    "duplicate_pairs.parquet",
    "autolabels.parquet",
    "autolabels.csv",
    "batch.csv",
    "budget.csv",
    "report.html",
}

CASES = [
    ("plan", {"batch": 50}, ["--batch", "50"]),
    ("plan", {"batch": 50, "rules": RULES}, ["--batch", "50", "--rules", RULES]),
    ("dedup", {"threshold": 0.9}, ["--threshold", "0.9"]),
    ("score", {}, []),
    ("autolabel", {"target_precision": 0.9, "format": ["csv"]}, ["--target-precision", "0.9", "--format", "csv"]),
    ("select", {"batch": 30, "strategy": "hybrid"}, ["--batch", "30", "--strategy", "hybrid"]),
    ("budget", {"cost_per_label": 0.5}, ["--cost-per-label", "0.5"]),
]


@pytest.mark.parametrize(
    "command,kwargs,flags", CASES, ids=[c[0] + ("-rules" if "rules" in c[1] else "") for c in CASES]
)
def test_command_matches_cli(
    cli: pathlib.Path,
    sample: pathlib.Path,
    tmp_path: pathlib.Path,
    command: str,
    kwargs: dict,
    flags: list[str],
) -> None:
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    run_cli(cli, command, sample, "--out", cli_out, "--cache", tmp_path / "c1", *flags)
    result = getattr(labelwise, command)(sample, out=py_out, cache=tmp_path / "c2", **kwargs)

    assert list(files(cli_out)) == list(files(py_out))
    for name in files(cli_out):
        if name in DETERMINISTIC:
            assert (cli_out / name).read_bytes() == (py_out / name).read_bytes(), name
    assert summary_without_run_facts(cli_out) == summary_without_run_facts(py_out)
    assert strip_run_facts(result.summary) == summary_without_run_facts(py_out)

    # The returned tables hold what the files hold.
    if (cli_out / "items.parquet").exists():
        assert result.items is not None
        assert result.items.equals(pq.read_table(cli_out / "items.parquet"))
    if (cli_out / "autolabels.parquet").exists():
        assert result.autolabels is not None
        assert result.autolabels.equals(pq.read_table(cli_out / "autolabels.parquet"))
    if (cli_out / "duplicate_pairs.parquet").exists():
        assert result.pairs is not None
        assert result.pairs.equals(pq.read_table(cli_out / "duplicate_pairs.parquet"))
    if (cli_out / "batch.csv").exists():
        assert result.batch is not None
        rows = list(csv.DictReader((cli_out / "batch.csv").open()))
        assert result.batch.column("id").to_pylist() == [r["id"] for r in rows]
        assert result.batch.column("rank").to_pylist() == [int(r["rank"]) for r in rows]
        assert [f"{s:.6f}" for s in result.batch.column("score").to_pylist()] == [
            r["score"] for r in rows
        ]
        assert result.batch.column("reasons").to_pylist() == [r["reasons"] for r in rows]
        assert result.batch.column("text").to_pylist() == [r["text"] for r in rows]
    if (cli_out / "budget.csv").exists():
        assert result.budget is not None
        rows = list(csv.DictReader((cli_out / "budget.csv").open()))
        assert result.budget.column("added_labels").to_pylist() == [
            int(r["added_labels"]) for r in rows
        ]
        assert [f"{c:.2f}" for c in result.budget.column("cost").to_pylist()] == [
            r["cost"] for r in rows
        ]


def test_without_out_nothing_is_written(sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    before = sorted(p.name for p in sample.parent.iterdir())
    result = labelwise.plan(sample, no_cache=True, batch=20)
    assert sorted(p.name for p in sample.parent.iterdir()) == before
    assert result.batch is not None and result.batch.num_rows == 20
    assert result.summary["command"] == "plan"
    assert result.summary["select"]["batch"] == 20
    assert isinstance(result.items, pa.Table) and result.items.num_rows == 3000


def test_defaults_are_the_cli_defaults(cli: pathlib.Path, sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    params = labelwise.parameters("plan")
    assert params["batch"].default == "100"
    assert params["target_precision"].default == "0.95"
    assert params["threshold"].default == "0.95"
    assert "hybrid" in params["strategy"].choices
    assert params["no_cache"].takes_value is False
    assert "target_precision" in (labelwise.plan.__doc__ or "")


def test_simulate_matches_cli(cli: pathlib.Path, sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    common = ["--label-col", "true_label", "--batch", "40", "--rounds", "3", "--no-cache"]
    run_cli(cli, "simulate", sample, "--out", cli_out, *common)
    result = labelwise.simulate(
        sample, out=py_out, label_col="true_label", batch=40, rounds=3, no_cache=True
    )
    for name in ("selections.csv", "autolabels.csv", "split.csv"):
        assert (cli_out / name).read_bytes() == (py_out / name).read_bytes(), name
    assert summary_without_run_facts(cli_out) == summary_without_run_facts(py_out)
    sel = list(csv.DictReader((cli_out / "selections.csv").open()))
    assert result.selections is not None
    assert result.selections.column("id").to_pylist() == [r["id"] for r in sel]
    assert result.curve is not None and result.curve.num_rows == len(
        json.loads((cli_out / "summary.json").read_text())["curve"]
    )


@pytest.mark.parametrize("fmt", ["label-studio", "csv", "jsonl"])
def test_export_matches_cli(cli: pathlib.Path, sample: pathlib.Path, tmp_path: pathlib.Path, fmt: str) -> None:
    run = tmp_path / "run"
    labelwise.plan(sample, out=run, no_cache=True, batch=20)
    cli_file = tmp_path / f"cli.{fmt}"
    run_cli(cli, "export", run, "--format", fmt, "--output", cli_file)
    py_file = labelwise.export(run, fmt, output=tmp_path / f"py.{fmt}")
    assert py_file == tmp_path / f"py.{fmt}"
    assert cli_file.read_bytes() == py_file.read_bytes()
    default = labelwise.export(run, fmt)
    assert default.parent == run
