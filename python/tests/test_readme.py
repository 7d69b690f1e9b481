"""The README's Python quick start runs as written, and its other promises hold."""

from __future__ import annotations

import pathlib
import shutil

import pyarrow.parquet as pq
import pytest

import labelwise

from conftest import REPO, SAMPLE


def test_readme_quick_start_runs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python quick start", 1)[1].split("\n## ", 1)[0]
    assert "pip install ./python" in section
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) == 3
    (tmp_path / "datasets").mkdir()
    shutil.copy(SAMPLE, tmp_path / "datasets" / "banking77_sample.parquet")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    for name in ("report.html", "batch.csv", "items.parquet", "autolabels.parquet", "budget.csv", "summary.json"):
        assert (tmp_path / "round1" / name).exists(), name


def test_pandas_through_pyarrow(sample: pathlib.Path) -> None:
    pytest.importorskip("pandas")
    df = pq.read_table(sample).to_pandas()
    from_pandas = labelwise.select(df, batch=10)
    from_arrow = labelwise.select(pq.read_table(sample), batch=10)
    assert from_pandas.batch is not None and from_arrow.batch is not None
    assert from_pandas.batch.column("id").equals(from_arrow.batch.column("id"))


def test_arrow_data_is_not_cached_without_cache_dir(sample: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = labelwise.score(pq.read_table(sample))
    assert list(tmp_path.iterdir()) == []
    assert r.summary["graph"]["cache_hit"] is False
