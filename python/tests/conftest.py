"""Shared fixtures: the CLI built with cargo, the bundled sample copied per session, and a
helper to run the CLI and to compare its files with the package's."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "datasets" / "banking77_sample.parquet"


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The `labelwise` binary, built with cargo from this checkout (a no-op when fresh)."""
    subprocess.run(
        ["cargo", "build", "--quiet", "--bin", "labelwise"], cwd=REPO, check=True
    )
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    binary = target / "debug" / "labelwise"
    assert binary.exists(), binary
    return binary


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The bundled sample (3,000 banking77 queries, 10% labeled), copied so caches stay out of
    the repository."""
    d = tmp_path_factory.mktemp("sample")
    path = d / "banking77_sample.parquet"
    shutil.copy(SAMPLE, path)
    return path


def run_cli(cli: pathlib.Path, *args: Any, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Runs the CLI quietly; asserts its exit code."""
    proc = subprocess.run(
        [str(cli), "--quiet", *map(str, args)], capture_output=True, text=True
    )
    assert proc.returncode == expect, proc.stderr
    return proc


def summary_without_run_facts(path: pathlib.Path) -> dict[str, Any]:
    """summary.json minus what measures the run itself (timings, cache hit and note)."""
    s = json.loads((path / "summary.json").read_text())
    return strip_run_facts(s)


def strip_run_facts(s: dict[str, Any]) -> dict[str, Any]:
    """A summary minus timings and cache facts (they differ between any two runs)."""
    s = dict(s)
    s.pop("timings", None)
    if "graph" in s:
        s["graph"] = {
            k: v for k, v in s["graph"].items() if k not in ("cache_hit", "cache_note")
        }
    if "simulate" in s or "curve" in s:
        s.pop("mean_select_seconds", None)
        s["curve"] = [
            {k: v for k, v in row.items() if k != "select_seconds"} for row in s.get("curve", [])
        ]
    return s


def files(d: pathlib.Path) -> Iterator[str]:
    """Names of the files in a run folder."""
    return iter(sorted(p.name for p in d.iterdir() if p.is_file()))
