"""Type stubs for the compiled half of the package (python/src/lib.rs)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

__version__: str

class InputError(ValueError):
    """Bad input or a bad parameter: the CLI's one-line message (its exit code 2)."""

def parameters(command: str) -> list[dict[str, Any]]: ...
def run(
    command: str,
    argv: list[str],
    data: Any | None = None,
    source_name: str = "<table>",
    write_out: bool = False,
    progress: Callable[[str], Any] | None = None,
    threads: int | None = None,
    tables: list[str] = ...,
    rule_functions: list[tuple[str, Callable[[pa.RecordBatch, int], list[str | None]]]] = ...,
) -> tuple[dict[str, pa.Table], str]: ...
def export(argv: list[str]) -> tuple[Path, int]: ...

# The sharded kernels `labelwise.distributed` runs on Ray workers (index::shard). Matrices and
# id arrays travel as little-endian bytes (numpy `tobytes()` / `frombuffer`).
def expand_paths(paths: list[str | Path]) -> list[Path]: ...
def normalized_embeddings(
    data: Any, source_name: str, id_col: str, embedding_col: str
) -> tuple[bytes, int, int]: ...
def kmeans_sample_rows(pool_rows: int, k: int, seed: int) -> bytes | None: ...
def kmeans_fit(
    sample: bytes, dim: int, pool_rows: int, k: int, iters: int, seed: int, threads: int | None
) -> bytes: ...
def kmeans_refine_steps(pool_rows: int, k: int) -> int: ...
def centroid_sums(
    rows: bytes, centroids: bytes, dim: int, threads: int | None
) -> tuple[bytes, bytes]: ...
def centroids_from_sums(sums: bytes, counts: bytes, previous: bytes, dim: int) -> bytes: ...
def assign_top(
    rows: bytes, centroids: bytes, dim: int, p: int, threads: int | None
) -> tuple[bytes, int]: ...
def search_group(
    rows: Any,
    lists: list[int],
    nlist: int,
    k: int,
    threads: int | None = None,
) -> tuple[bytes, bytes, bytes]: ...
def refine_group(
    rows: bytes,
    dim: int,
    ids: bytes,
    searched_rows: bytes,
    neighbors: bytes,
    cosines: bytes,
    k: int,
    owners: bytes,
    threshold: float | None = None,
    threads: int | None = None,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]: ...
def tile_pairs(
    first_rows: bytes,
    first_ids: bytes,
    second_rows: bytes,
    second_ids: bytes,
    dim: int,
    threshold: float,
    threads: int | None = None,
) -> tuple[bytes, bytes, bytes]: ...
class PoolGraph:
    """An n × k neighbour graph filled group by group; ``cache_graph`` or ``plan_rows`` takes it."""

    def __init__(self, n: int, k: int) -> None: ...
    def put(self, rows: bytes, neighbors: bytes, cosines: bytes) -> None: ...
    def missing(self) -> int: ...

def cache_graph(argv: list[str], graph: PoolGraph) -> tuple[str, float, int]: ...
def plan_rows(
    argv: list[str],
    provider: Any,
    n: int,
    dim: int,
    graph: PoolGraph,
    pairs: list[Any],  # record batches a, b, cosine; emptied once read
    pool_key: str | None = ...,
    write_out: bool = ...,
    progress: Any = ...,
    threads: int | None = ...,
    tables: list[str] = ...,
) -> tuple[dict[str, Any], str]: ...
def rows_predict(
    spec_json: str, train: bytes, y: bytes, n_classes: int, rows: bytes, dim: int, threads: int | None
) -> bytes: ...
def rows_nearest_centroids(rows: bytes, centroids: bytes, dim: int, threads: int | None) -> bytes: ...
def rows_cluster_sums(rows: bytes, assignment: bytes, k: int, start: bytes | None, dim: int) -> bytes: ...
def rows_centroid_distance(
    rows: bytes, assignment: bytes, centroids: bytes, sizes: bytes, sums: bytes, dim: int
) -> bytes: ...
def rows_top_k(
    rows: bytes, queries: bytes, self_ids: bytes, k: int, dim: int, threads: int | None
) -> tuple[bytes, bytes]: ...
def items_part(argv: list[str], data: Any, source_name: str, own: pa.RecordBatch, path: Path) -> int: ...
def carried_rows(argv: list[str], data: Any, source_name: str, rows: bytes) -> pa.RecordBatch: ...
