"""labelwise.distributed on a local Ray cluster of two 1-CPU nodes: the same round as one
machine (recall, pairs, outputs), a worker killed mid-stage, and a driver killed between
stages. Skipped when Ray is not installed (``pip install "ray[data]"``)."""

from __future__ import annotations

import filecmp
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs

ray = pytest.importorskip("ray")

import labelwise  # noqa: E402
from labelwise import distributed  # noqa: E402

from conftest import REPO, strip_run_facts  # noqa: E402

#: The test pool: small enough for CI, large enough for ~170 lists and 8 search groups.
ROWS, DIM = 30_000, 96
#: Flags shared by every run (the lowest threshold; 0.95 is checked by filtering).
FLAGS: dict[str, Any] = {"threshold": 0.90, "seed": 0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two 1-CPU Ray nodes on loopback, started and stopped here; yields the address."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    assert ray.cluster_resources()["CPU"] == 2
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield c.address
    ray.shutdown()
    c.shutdown()


def synth_pool(path: pathlib.Path, rows: int, dim: int) -> pathlib.Path:
    """A seeded synthetic pool from examples/synth.rs (5% labeled, 1% near-copies)."""
    args = ["--rows", str(rows), "--dim", str(dim), "--out", str(path), "--seed", "3", "--quiet"]
    synth = os.environ.get("LABELWISE_SYNTH")  # a built examples/synth binary, if at hand
    cmd = [synth] if synth else ["cargo", "run", "--quiet", "--example", "synth", "--"]
    subprocess.run(cmd + args, cwd=REPO, check=True)
    return path


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return synth_pool(tmp_path_factory.mktemp("pool") / "synth.parquet", ROWS, DIM)


@pytest.fixture(scope="module")
def single(pool: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> labelwise.Result:
    """The single-process partitioned route, in its own cache."""
    d = tmp_path_factory.mktemp("single")
    return labelwise.plan(pool, out=d / "out", index="partitioned", cache=d / "cache", **FLAGS)


@pytest.fixture(scope="module")
def dist(cluster: str, pool: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> distributed.DistributedPlan:
    """The distributed plan, in its own cache."""
    d = tmp_path_factory.mktemp("dist")
    return distributed.plan(pool, out=d / "out", cache=d / "cache", shard_rows=8192, **FLAGS)


def pair_set(t: Any, ids: list[str] | None, at: float) -> set[tuple[str, str]]:
    """Pairs with cosine >= ``at`` as id pairs (row pairs mapped through ``ids``)."""
    cos = t.column("cosine").to_pylist()
    if ids is None:
        a, b = t.column("id_a").to_pylist(), t.column("id_b").to_pylist()
    else:
        a = [ids[i] for i in t.column("a").to_pylist()]
        b = [ids[i] for i in t.column("b").to_pylist()]
    return {(x, y) for x, y, c in zip(a, b, cos) if c >= at}


def test_same_graph_quality_and_pairs_as_one_process(
    dist: distributed.DistributedPlan, single: labelwise.Result, pool: pathlib.Path
) -> None:
    g_single = single.summary["graph"]
    g_dist = dist.result.summary["graph"]
    assert g_dist["cache_hit"], "the driver's plan read the cluster's graph"
    assert g_dist["index"] == g_single["index"] == "partitioned"
    assert abs(g_dist["recall_at_10"] - g_single["recall_at_10"]) <= 0.005, (g_dist, g_single)
    assert g_dist["recall_at_10"] == dist.graph_recall_at_10
    ids = pq.read_table(pool, columns=["id"]).column("id").to_pylist()
    for t in (0.90, 0.95):
        cluster_pairs = pair_set(dist.pairs, ids, t)
        assert cluster_pairs == pair_set(single.pairs, None, t), t
        assert cluster_pairs == pair_set(dist.result.pairs, None, t), t
    # Given the graph, the cluster's pairs (taken after the refinement, saturated rows compared
    # in tiles) are the single-machine plan's, cosines bit for bit.
    mine = sorted(zip((ids[a] for a in dist.pairs.column("a").to_pylist()),
                      (ids[b] for b in dist.pairs.column("b").to_pylist()), dist.pairs.column("cosine").to_pylist()))
    theirs = dist.result.pairs
    assert mine == sorted(zip(theirs.column("id_a").to_pylist(), theirs.column("id_b").to_pylist(),
                              theirs.column("cosine").to_pylist()))
    assert dist.stage("saturated").detail["saturated"] > 0
    assert len(pair_set(dist.pairs, ids, 0.95)) >= 200
    search = dist.stage("search")
    assert search.detail["groups"] >= 4 and search.detail["halo_bytes"] > 0
    assert dist.stage("assign").detail["shuffle_bytes"] > 0


def test_past_the_sample_cap_the_partition_and_every_file_are_one_machines(
    cluster: str, tmp_path: pathlib.Path
) -> None:
    """Above the k-means sample cap both sides fit on a sample and take Lloyd steps over every
    row: the cluster gathers the library's own sample and sums exactly, so its graph, pairs and
    files are the single process's bit for bit (with its own numpy sample and f64 sums they
    were not)."""
    rows = 110_000
    path = synth_pool(tmp_path / "big.parquet", rows, 32)
    steps = labelwise._labelwise.kmeans_refine_steps(rows, round(rows**0.5))
    assert steps > 0
    single = labelwise.plan(path, out=tmp_path / "single", index="partitioned", cache=tmp_path / "c1", **FLAGS)
    dist = distributed.plan(path, out=tmp_path / "dist", cache=tmp_path / "c2", shard_rows=16_384, **FLAGS)
    assert [s.name for s in dist.stages if s.name.startswith("lloyd")] == [f"lloyd{i + 1}" for i in range(steps)]
    assert dist.result.summary["graph"]["recall_at_10"] == single.summary["graph"]["recall_at_10"]
    assert run_files(tmp_path / "dist") == run_files(tmp_path / "single")
    assert dist.result.pairs.num_rows > 0


def test_batch_and_autolabels_are_the_single_machine_ones_given_the_graph(
    dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The single-machine plan on the same graph (read from the same cache) writes the same
    files, byte for byte, as the distributed plan."""
    out = dist.result.summary
    cache = dist.work_dir.parent
    again = labelwise.plan(pool, out=tmp_path / "again", index="partitioned", cache=cache, **FLAGS)
    assert again.summary["graph"]["cache_hit"]
    assert strip_run_facts(again.summary) == strip_run_facts(out)
    assert again.batch.equals(dist.result.batch)
    assert again.autolabels.equals(dist.result.autolabels)
    assert again.items.equals(dist.result.items)
    assert dist.result.batch.num_rows > 0 and dist.result.autolabels.num_rows > 0


def test_output_files_have_the_single_machine_schema(
    dist: distributed.DistributedPlan, single: labelwise.Result
) -> None:
    for name in ("items", "pairs", "autolabels", "batch", "budget"):
        assert getattr(dist.result, name).schema == getattr(single, name).schema, name


def run_files(d: pathlib.Path) -> dict[str, bytes]:
    """The run folder's files (summary.json and report.html hold timings: left out)."""
    return {
        p.name: p.read_bytes()
        for p in sorted(d.iterdir())
        if p.is_file() and p.name not in ("summary.json", "report.html")
    }


def test_the_label_half_as_map_tasks_writes_the_drivers_files(
    cluster: str, dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``label_half="map"``: the driver loads no embeddings and no carried column; every read
    of the embeddings is Ray tasks over the shards (one of them killed mid-prediction and
    retried, one killed writing its part of items.parquet, and retried); items.parquet is a folder of parts
    that reads as the driver route's table, every other file equals the driver route's byte for
    byte (batch.csv's carried text gathered from the shards), and recall@10 measured through
    the shards is the driver's."""
    marker, items_marker = tmp_path / "killed", tmp_path / "killed-items"
    monkeypatch.setenv(distributed.FAULT_ENV, f"predict:1:{marker};items:2:{items_marker}")
    cache = dist.work_dir.parent
    out = tmp_path / "out"
    (out / "items.parquet").mkdir(parents=True)  # an earlier map run's parts are replaced
    (out / "items.parquet" / "part-00099.parquet").write_bytes(b"stale")
    r = distributed.plan(pool, out=out, cache=cache, shard_rows=8192, label_half="map", **FLAGS)
    assert marker.exists() and items_marker.exists(), "the workers were killed"
    assert all(s.resumed for s in r.stages if s.name not in ("merge", "plan")), "graph stages resumed"
    calls = r.stage("plan").detail["calls"]
    want = {"gather", "predict", "nearest_centroids", "centroid_distance", "exact_top_k", "items", "carried_rows"}
    assert want <= set(calls), calls
    ref = cache.parent / "out"
    assert run_files(out) == {k: v for k, v in run_files(ref).items() if k != "items.parquet"}
    parts = sorted(p.name for p in (out / "items.parquet").iterdir())
    assert parts == [f"part-{i:05d}.parquet" for i in range(calls["items"])] and len(parts) == 4
    assert r.result.items is None and r.result.pairs is None and r.result.autolabels is None
    assert r.pairs is None, "the map route's driver keeps no copy of the pairs beside the round's"
    assert pq.read_table(out / "items.parquet").equals(pq.read_table(ref / "items.parquet"))
    assert "text" in pq.read_schema(out / "items.parquet" / "part-00000.parquet").names
    assert r.result.batch.equals(dist.result.batch)
    assert r.result.summary["graph"]["recall_at_10"] == dist.result.summary["graph"]["recall_at_10"]
    assert strip_run_facts(r.result.summary) == strip_run_facts(dist.result.summary)
    # Labeling tools' files read the folder as they read the file.
    tasks = labelwise.export(out, "label-studio", output=str(tmp_path / "map.json"))
    assert tasks.read_bytes() == labelwise.export(ref, "label-studio", output=str(tmp_path / "ref.json")).read_bytes()
    with pytest.raises(ValueError, match="give out="):
        distributed.plan(pool, cache=cache, shard_rows=8192, label_half="map", **FLAGS)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """An S3 endpoint on loopback (moto's server): yields a pyarrow ``S3FileSystem`` on it, which
    the tasks receive pickled with their shards, and the endpoint's URI query."""
    import socket

    moto_server = pytest.importorskip("moto.server")
    from pyarrow import fs

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # The driver's credentials when a URI names the endpoint (the tasks get the filesystem's).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    endpoint = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    yield fs.S3FileSystem(access_key="test", secret_key="test", endpoint_override=f"127.0.0.1:{port}",
                          scheme="http", region="us-east-1", allow_bucket_creation=True), endpoint
    server.stop()


def test_a_pool_in_object_storage_is_read_where_it_is(
    cluster: str, dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path,
    s3: tuple[Any, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool in an S3 bucket: each task reads its shard and the driver the columns it loads
    through pyarrow's filesystem, and every file is the local pool's, on both routes. A folder
    is walked as the CLI walks one (names starting with ``_`` or ``.`` skipped); a missing
    object is the CLI's one-line error, with nothing written."""
    fs, endpoint = s3
    fs.create_dir("pools")
    for name, data in (("part-0.parquet", pool.read_bytes()), ("_SUCCESS", b""), (".part-0.parquet.crc", b"x")):
        with fs.open_output_stream(f"pools/synth/{name}") as f:
            f.write(data)
    cache = dist.work_dir.parent  # the local run's stages: the same rows give the same stage keys
    ref = cache.parent / "out"
    streams: list[Any] = []
    stream = distributed._inputs.Inputs.stream
    monkeypatch.setattr(distributed._inputs.Inputs, "stream",
                        lambda self, columns: streams.append(columns) or stream(self, columns))
    driver = distributed.plan("pools/synth", out=tmp_path / "driver", cache=cache, shard_rows=8192,
                              filesystem=fs, **FLAGS)
    normalise = driver.stage("normalise")
    assert not normalise.resumed and normalise.bytes_read == pool.stat().st_size, "the shards came from S3"
    assert all(s.resumed for s in driver.stages if s.name not in ("normalise", "merge", "plan"))
    assert run_files(tmp_path / "driver") == run_files(ref)
    assert streams == [None], "the driver route fetched the pool once, for the graph's store and the plan"
    mapped = distributed.plan("pools/synth", out=tmp_path / "map", cache=cache, shard_rows=8192,
                              filesystem=fs, label_half="map", **FLAGS)
    assert mapped.stage("normalise").resumed
    assert run_files(tmp_path / "map") == {k: v for k, v in run_files(ref).items() if k != "items.parquet"}
    assert pq.read_table(tmp_path / "map" / "items.parquet").equals(pq.read_table(ref / "items.parquet"))
    assert streams[1:] == [["id", "label"]], "the map route's driver read the ids and labels only"
    with pytest.raises(labelwise.InputError, match=r"^s3://pools/nope: cannot read: not found$"):
        distributed.plan(f"s3://pools/nope?{endpoint}", out=tmp_path / "bad", cache=cache, **FLAGS)
    assert not (tmp_path / "bad").exists()


def test_stage_outputs_in_object_storage_need_no_shared_disk(
    cluster: str, tmp_path: pathlib.Path, s3: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``work_dir`` in an S3 bucket: every stage output (the normalised shards, the shuffle, the
    graphs, items.parquet's parts on their way to ``out``) is written to and read from the
    bucket, a worker killed mid-search is retried, a rerun resumes every stage from the bucket,
    and the files are the local run's. The matrices' row reads from the bucket are ranged."""
    import numpy as np

    from labelwise.distributed._store import open_store

    fs, _ = s3
    fs.create_dir("work")
    fs.create_dir("pools")
    store = open_store("s3://work/lw", fs)
    m = np.arange(2_000 * 8, dtype="<f4").reshape(2_000, 8)
    store.save_npy(store.path("probe.npy"), m)
    rows = np.array([1_999, 3, 4, 900, 5, 0])  # unsorted, with a run and far-apart rows
    assert np.array_equal(store.npy_rows(store.path("probe.npy"), rows), m[rows])
    assert np.array_equal(store.load_npy(store.path("probe.npy")), m)

    # A pool of its own, small: moto answers a request in milliseconds, and the shuffle is
    # a file per (write task, list).
    small = synth_pool(tmp_path / "small.parquet", 8_000, 32)
    with fs.open_output_stream("pools/small/part-0.parquet") as f:  # no shared disk at all
        f.write(small.read_bytes())
    flags = {**FLAGS, "shard_rows": 4096}
    ref = tmp_path / "ref"
    distributed.plan(small, out=ref, cache=tmp_path / "ref-cache", **flags)
    marker = tmp_path / "killed"
    monkeypatch.setenv(distributed.FAULT_ENV, f"search:1:{marker}")
    cache = tmp_path / "cache"  # the driver's own: the graph's cache entry, nothing of the stages
    first = distributed.plan("pools/small", out=tmp_path / "map", cache=cache, work_dir="s3://work/lw", filesystem=fs,
                             label_half="map", **flags)
    assert marker.exists(), "the worker was killed"
    assert first.work_dir == "s3://work/lw"
    assert not any(s.resumed for s in first.stages), "computed afresh, in the bucket"
    assert not (cache / "distributed").exists(), "no stage output on the driver's disk"
    stages = {i.base_name for i in fs.get_file_info(pafs.FileSelector("work/lw/stages"))}
    assert {s.split("-", 1)[0] for s in stages} >= {"fit", "lists", "graph", "refined", "saturated"}, stages
    # The shuffle in a bucket is one object per list (hash-shuffled first), listed in _SUCCESS.
    (lists_dir,) = [s for s in stages if s.startswith("lists-")]
    with fs.open_input_file(f"work/lw/stages/{lists_dir}/_SUCCESS") as f:
        homes = [entry[0] for entry in json.loads(f.read())["files"]]
    assert len(homes) == len(set(homes)) == round(8_000**0.5), "one object per list"
    assert sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector("work/lw"))) == ["normalised", "probe.npy", "stages"]
    assert run_files(tmp_path / "map") == {k: v for k, v in run_files(ref).items() if k != "items.parquet"}
    assert pq.read_table(tmp_path / "map" / "items.parquet").equals(pq.read_table(ref / "items.parquet"))
    monkeypatch.delenv(distributed.FAULT_ENV)
    again = distributed.plan("pools/small", out=tmp_path / "driver", cache=cache, work_dir="s3://work/lw",
                             filesystem=fs, **flags)
    assert all(s.resumed for s in again.stages if s.name not in ("merge", "plan")), "resumed from the bucket"
    assert run_files(tmp_path / "driver") == run_files(ref)


def test_the_map_route_refuses_rules(
    cluster: str, dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Rules' cosine conditions compare every row in one process: the map route says so
    instead of running without them."""
    rules = tmp_path / "rules.toml"
    rules.write_text('text_column = "id"\n\n[[rule]]\nname = "sevens"\nlabel = "c0"\nkeywords = ["7"]\n')
    with pytest.raises(labelwise.InputError, match="label_half='map'"):
        distributed.plan(pool, out=tmp_path / "out", cache=dist.work_dir.parent, shard_rows=8192,
                         label_half="map", rules=str(rules), **FLAGS)
    assert not (tmp_path / "out").exists(), "nothing written"


def test_a_worker_killed_mid_search_is_retried_and_changes_nothing(
    cluster: str, dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv(distributed.FAULT_ENV, f"search:2:{marker}")
    r = distributed.plan(pool, out=tmp_path / "out", cache=tmp_path / "cache", shard_rows=8192, **FLAGS)
    assert marker.exists(), "the worker was killed"
    assert r.stage("search").detail["groups_resumed"] == 0
    ref = dist.work_dir.parent.parent / "out"
    assert run_files(tmp_path / "out") == run_files(ref)
    assert r.pairs.equals(dist.pairs)


def cli_plan(
    address: str, pool: pathlib.Path, d: pathlib.Path, fault: str | None, *more: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(distributed.FAULT_ENV, None)
    if fault:
        env[distributed.FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "labelwise.distributed", "plan", str(pool), "--out", str(d / "out"),
         "--cache", str(d / "cache"), "--threshold", "0.9", "--seed", "0", "--shard-rows", "8192",
         "--address", address, *more],
        capture_output=True, text=True, env=env,
    )


def test_a_rerun_after_the_driver_died_resumes_from_the_finished_stages(
    cluster: str, dist: distributed.DistributedPlan, pool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    died = cli_plan(cluster, pool, tmp_path, "driver:after-assign")
    assert died.returncode == -9, died.stderr
    assert not (tmp_path / "out").exists()
    # Resumed on the map route: its driver hands back no pairs, and the command line reports
    # their count from the summary.
    rerun = cli_plan(cluster, pool, tmp_path, None, "--label-half", "map")
    assert rerun.returncode == 0, rerun.stderr

    lines = [json.loads(line) for line in rerun.stdout.splitlines()]
    stages = {s["name"]: s for s in lines if "name" in s}
    assert lines[-1]["pairs"] == pq.read_metadata(tmp_path / "out" / "duplicate_pairs.parquet").num_rows > 0
    # Lloyd stages run only when the fit sampled (not at this size), as on one machine.
    steps = labelwise._labelwise.kmeans_refine_steps(ROWS, round(ROWS**0.5))
    assert [n for n in stages if n.startswith("lloyd")] == [f"lloyd{i + 1}" for i in range(steps)]
    for name in ("normalise", "fit", *(f"lloyd{i + 1}" for i in range(steps)), "assign"):
        assert stages[name]["resumed"], name
    assert not stages["search"]["resumed"]
    ref = dist.work_dir.parent.parent / "out"
    assert run_files(tmp_path / "out") == {k: v for k, v in run_files(ref).items() if k != "items.parquet"}
    assert filecmp.cmp(tmp_path / "out" / "batch.csv", ref / "batch.csv", shallow=False)


def test_one_group_for_the_whole_pool_has_no_halo(cluster: str, tmp_path: pathlib.Path) -> None:
    """A search group that holds every list (``group_rows`` past the pool) probes nothing
    outside itself, and the round is still the single process's on the same partition."""
    pool = synth_pool(tmp_path / "tiny.parquet", 2_000, 16)
    r = distributed.plan(pool, out=tmp_path / "dist", cache=tmp_path / "dist-cache", group_rows=10**9, **FLAGS)
    assert r.stage("search").detail["groups"] == 1 and r.stage("search").detail["halo_bytes"] == 0
    labelwise.plan(pool, out=tmp_path / "one", index="partitioned", cache=tmp_path / "one-cache", **FLAGS)
    assert run_files(tmp_path / "dist") == run_files(tmp_path / "one")


def test_the_shuffle_writes_more_lists_than_pyarrows_partition_cap(cluster: str, tmp_path: pathlib.Path) -> None:
    """Ray Data's ``write_parquet(partition_cols=...)`` stops at 1,024 partitions per block;
    a pool past ~1,050,000 rows has more lists than that, and the shuffle writes them all."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as pads

    from labelwise.distributed._sink import ListsDatasink
    from labelwise.distributed._store import open_store

    n, lists = 3000, 1500
    t = pa.table({"row": np.arange(n, dtype=np.int64), "home": (np.arange(n) % lists).astype(np.int32)})
    with pytest.raises(Exception, match="1024"):
        ray.data.from_arrow(t).write_parquet(str(tmp_path / "builtin"), partition_cols=["home"])
    sink = ListsDatasink(open_store(str(tmp_path)), str(tmp_path / "lists"), lists)
    ray.data.from_arrow(t).write_datasink(sink)
    assert len(list((tmp_path / "lists").glob("home=*"))) == lists
    # The manifest the driver records is every file written, with its list and rows.
    assert sorted({home for home, _, _, _ in sink.written}) == list(range(lists))
    assert sum(rows for _, _, rows, _ in sink.written) == n
    assert {p for _, p, _, _ in sink.written} == {str(f) for f in (tmp_path / "lists").rglob("*.parquet")}
    back = pads.dataset(tmp_path / "lists", format="parquet", partitioning="hive").to_table()
    rows = back.column("row").to_pylist()
    assert sorted(rows) == list(range(n))
    assert all(h == r % lists for r, h in zip(rows, back.column("home").to_pylist()))


def test_bad_input_is_the_cli_message(cluster: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(labelwise.InputError, match="bad.parquet: not a Parquet file"):
        distributed.plan(bad, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # A store that cannot be reached is named by the URI as written, in one line.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(labelwise.InputError, match=r"^s3://pools/x: cannot read: .*\n?$"):
        distributed.plan("s3://pools/x?endpoint_override=127.0.0.1:1&scheme=http&region=us-east-1", out=tmp_path / "out")
    with pytest.raises(labelwise.InputError, match=r"^bogus://x: cannot read: "):
        distributed.plan("bogus://x", out=tmp_path / "out")
    # So is a work folder that cannot be reached, before any task runs.
    with pytest.raises(labelwise.InputError, match=r"^s3://work/w: cannot write stage outputs there: .*\n?$"):
        distributed.plan(bad, out=tmp_path / "out",
                         work_dir="s3://work/w?endpoint_override=127.0.0.1:1&scheme=http&region=us-east-1")
    with pytest.raises(labelwise.InputError, match=r"^bogus://w: cannot write stage outputs there: "):
        distributed.plan(bad, out=tmp_path / "out", work_dir="bogus://w")
    assert not (tmp_path / "out").exists()
    # A shard the loader refuses (a zero vector) fails in its task with the loader's message.
    import numpy as np
    import pyarrow as pa

    emb = np.ones((40, 8), dtype=np.float32)
    emb[17] = 0.0
    t = labelwise.table(emb, ids=[f"i{i}" for i in range(40)])
    pq.write_table(t, tmp_path / "zero.parquet")
    with pytest.raises(labelwise.InputError, match="zero vector"):
        distributed.plan(tmp_path / "zero.parquet", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "labelwise.distributed", "plan", str(bad), "--out", str(tmp_path / "o2"),
         "--address", cluster], capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "not a Parquet file" in proc.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "labelwise.distributed", "plan", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--target-precision" in helped.stdout
    del pa


def test_the_picks_carried_columns_are_read_from_their_row_groups_only(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard of five row groups with picks in three: only those three are read, and the
    rows are the ones a read of the whole shard gives, in the order asked."""
    import numpy as np
    import pyarrow as pa

    from labelwise.distributed import _tasks

    n = 1000
    emb = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    t = labelwise.table(emb, ids=[f"i{i}" for i in range(n)]).append_column("text", pa.array([f"t{i}" for i in range(n)]))
    path = tmp_path / "pool.parquet"
    pq.write_table(t, path, row_group_size=100)
    shard = _tasks.Shard(0, str(path), (2, 3, 4, 5, 6), 200, 500)  # the pool's rows 200..699
    argv = labelwise._argv("plan", [str(path)], {}) + ["--out", "<no output>"]
    local = np.array([417, 3, 250, 251, 499, 3])
    read: list[list[int]] = []
    whole_read = pq.ParquetFile.read_row_groups

    def recorded(self: pq.ParquetFile, groups: list[int], **kw: Any) -> pa.Table:
        read.append(list(groups))
        return whole_read(self, groups, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", recorded)
    picked = _tasks.shard_carried(shard, argv, "embedding", local)
    assert read == [[2, 4, 6]]
    assert picked.column("text").to_pylist() == [f"t{200 + r}" for r in local]
    whole = _tasks.shard_source(shard, "embedding")
    assert picked.equals(labelwise._labelwise.carried_rows(argv, whole.to_reader(), "whole", local.astype("<u4").tobytes()))
    assert _tasks.shard_carried(shard, argv, "embedding", local[:0]).num_rows == 0


def test_the_pool_graph_is_filled_once_checked_and_handed_over_once(tmp_path: pathlib.Path) -> None:
    import numpy as np

    from labelwise import _labelwise

    g = _labelwise.PoolGraph(4, 2)
    assert g.missing() == 4
    rows = np.array([2, 0], dtype="<u4")
    nb = np.array([[0, 1], [2, 3]], dtype="<u4")
    cs = np.array([[0.9, 0.5], [0.8, 0.1]], dtype="<f4")
    g.put(rows.tobytes(), nb.tobytes(), cs.tobytes())
    assert g.missing() == 2  # rows 1 and 3 were in no group
    with pytest.raises(labelwise.InputError, match="row 7 of a pool of 4"):
        g.put(np.array([7], dtype="<u4").tobytes(), nb[:1].tobytes(), cs[:1].tobytes())
    with pytest.raises(labelwise.InputError, match="1 rows need 2 neighbours"):
        g.put(np.array([1], dtype="<u4").tobytes(), nb.tobytes(), cs.tobytes())
    g.put(np.array([1, 3], dtype="<u4").tobytes(), nb.tobytes(), cs.tobytes())
    assert g.missing() == 0
    with pytest.raises(labelwise.InputError, match="not whole u32 values"):
        g.put(b"abc", b"", b"")
    # The round takes the graph: a second hand-over is refused, even after the first failed.
    argv = [str(tmp_path / "absent.parquet"), "--out", "<no output>", "--cache", str(tmp_path / "c")]
    with pytest.raises(labelwise.InputError, match="absent.parquet"):
        _labelwise.cache_graph(argv, g)
    with pytest.raises(labelwise.InputError, match="already handed over"):
        _labelwise.cache_graph(argv, g)
