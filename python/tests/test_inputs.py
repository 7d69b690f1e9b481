"""Arrow inputs (pyarrow, polars, numpy) give the CLI's batch and auto-labels; bad input raises
InputError with the CLI's message and writes nothing."""

from __future__ import annotations

import csv
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import labelwise

from conftest import run_cli


@pytest.fixture(scope="module")
def reference(cli: pathlib.Path, sample: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The CLI's plan on the sample."""
    out = tmp_path_factory.mktemp("reference")
    run_cli(cli, "plan", sample, "--out", out, "--no-cache", "--batch", "40")
    return out


def batch_ids(out: pathlib.Path) -> list[str]:
    return [r["id"] for r in csv.DictReader((out / "batch.csv").open())]


def check_same_round(result: labelwise.Result, reference: pathlib.Path) -> None:
    assert result.batch is not None and result.autolabels is not None
    assert result.batch.column("id").to_pylist() == batch_ids(reference)
    cli_auto = pq.read_table(reference / "autolabels.parquet")
    assert result.autolabels.select(["id", "label", "confidence", "source"]).equals(cli_auto)


def test_pyarrow_table(sample: pathlib.Path, reference: pathlib.Path) -> None:
    table = pq.read_table(sample)
    check_same_round(labelwise.plan(table, batch=40), reference)


def test_pyarrow_record_batch_reader(sample: pathlib.Path, reference: pathlib.Path) -> None:
    table = pq.read_table(sample)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=700))
    check_same_round(labelwise.plan(reader, batch=40), reference)


def test_polars_dataframe(sample: pathlib.Path, reference: pathlib.Path) -> None:
    pl = pytest.importorskip("polars")
    df = pl.read_parquet(sample)
    result = labelwise.plan(df, batch=40)
    check_same_round(result, reference)
    assert result.batch is not None and "text" in result.batch.column_names


def test_numpy_matrix(sample: pathlib.Path, reference: pathlib.Path) -> None:
    table = pq.read_table(sample)
    matrix = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    ids = table.column("id").to_pylist()
    labels = table.column("label").to_pylist()
    result = labelwise.plan(matrix, ids=ids, labels=labels, batch=40)
    check_same_round(result, reference)


def test_numpy_table_is_zero_copy() -> None:
    matrix = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    t = labelwise.table(matrix, ids=list(range(50)))
    values = t.column("embedding").chunk(0).values
    assert values.buffers()[1].address == matrix.ctypes.data


def test_cache_for_arrow_data_only_when_asked(sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    table = pq.read_table(sample)
    first = labelwise.dedup(table, cache=tmp_path / "cache")
    second = labelwise.dedup(table, cache=tmp_path / "cache")
    assert second.summary["graph"]["cache_hit"] is True
    assert first.pairs is not None and first.pairs.equals(second.pairs)


# --- bad input -----------------------------------------------------------------------------


def broken_table(sample: pathlib.Path) -> pa.Table:
    """The sample with row 7's embedding set to zeros."""
    table = pq.read_table(sample)
    emb = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    emb[7] = 0.0
    col = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1])
    i = table.schema.get_field_index("embedding")
    return table.set_column(i, "embedding", col)


def test_bad_table_raises_cli_message(cli: pathlib.Path, sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    table = broken_table(sample)
    path = tmp_path / "broken.parquet"
    pq.write_table(table, path)
    proc = run_cli(cli, "plan", path, "--out", tmp_path / "cli", expect=2)
    cli_message = proc.stderr.strip().removeprefix("error: ")

    out = tmp_path / "py"
    with pytest.raises(labelwise.InputError) as err:
        labelwise.plan(table, out=out)
    assert isinstance(err.value, ValueError)
    assert str(err.value) == cli_message.replace(str(path), "<pyarrow.Table>")
    assert "row 7" in str(err.value) and "zero vector" in str(err.value)
    assert not out.exists()

    # The same file through the package: the very same message.
    with pytest.raises(labelwise.InputError) as err:
        labelwise.plan(path, out=out)
    assert str(err.value) == cli_message
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs,flags",
    [
        ({"batch": 0}, ["--batch", "0"]),
        ({"target_precision": 1.5}, ["--target-precision", "1.5"]),
        ({"threshold": 0.0}, ["--threshold", "0.0"]),
    ],
)
def test_bad_parameter_raises_cli_message(
    cli: pathlib.Path, sample: pathlib.Path, tmp_path: pathlib.Path, kwargs: dict, flags: list[str]
) -> None:
    proc = run_cli(cli, "plan", sample, "--out", tmp_path / "cli", "--no-cache", *flags, expect=2)
    out = tmp_path / "py"
    with pytest.raises(labelwise.InputError) as err:
        labelwise.plan(sample, out=out, no_cache=True, **kwargs)
    assert str(err.value) == proc.stderr.strip().removeprefix("error: ")
    assert not out.exists()


def test_missing_file_and_bad_choice(cli: pathlib.Path, tmp_path: pathlib.Path, sample: pathlib.Path) -> None:
    missing = tmp_path / "nope.parquet"
    proc = run_cli(cli, "score", missing, "--out", tmp_path / "cli", expect=2)
    with pytest.raises(labelwise.InputError) as err:
        labelwise.score(missing, out=tmp_path / "py")
    assert str(err.value) == proc.stderr.strip().removeprefix("error: ")
    assert not (tmp_path / "py").exists()
    with pytest.raises(labelwise.InputError, match="invalid value 'best'"):
        labelwise.select(sample, strategy="best")
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        labelwise.plan(sample, batchsize=3)


def test_numpy_bad_shape_and_missing_ids() -> None:
    with pytest.raises(labelwise.InputError, match="2-D"):
        labelwise.plan(np.zeros(5, dtype=np.float32), ids=list(range(5)))
    with pytest.raises(TypeError, match="ids="):
        labelwise.plan(np.ones((5, 3), dtype=np.float32))
    nan = np.ones((30, 4), dtype=np.float32)
    nan[3, 2] = np.nan
    with pytest.raises(labelwise.InputError, match=r"<numpy.ndarray>: column 'embedding', row 3: non-finite"):
        labelwise.score(nan, ids=[f"r{i}" for i in range(30)])
