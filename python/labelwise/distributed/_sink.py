"""The shuffle's writer: Ray Data rows written as Parquet partitioned by home list.

Ray Data's own ``write_parquet(partition_cols=...)`` hands each block to pyarrow's
``write_dataset`` with its default ``max_partitions`` of 1,024, so a pool of more than about
1,050,000 rows (√n lists) fails there ("Fragment would be written into 1732 partitions"). This
sink is that write with the cap set to the number of lists, into the stage store (a shared
folder or object storage), and it reports every file it wrote: the driver records them as the
shuffle's manifest, so no later stage lists folders (a LIST request per list on object
storage) and files a failed attempt left behind are never read. Imported only where Ray is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow.dataset as pads
from ray.data import Datasink
from ray.data.block import BlockAccessor
from ray.data.datasource.datasink import WriteResult

from ._store import Store

#: One written file: (home list, path inside the store, rows, bytes).
Written = tuple[int, str, int, int]


class ListsDatasink(Datasink[list[Written]]):
    """Writes every block under ``folder/home=L/`` (hive layout, as ``write_parquet`` does);
    file names carry the write task's index, so a retried task overwrites its own files.
    After the write, :attr:`written` holds every file the successful tasks wrote."""

    def __init__(self, store: Store, folder: str, nlist: int) -> None:
        self.store = store
        self.folder = folder
        self.nlist = nlist
        self.written: list[Written] = []

    def write(self, blocks: Iterable[Any], ctx: Any) -> list[Written]:
        written: list[Written] = []

        def visit(f: Any) -> None:
            home = next(int(p[5:]) for p in f.path.split("/") if p.startswith("home="))
            size = f.size if f.size is not None else self.store.size(f.path)
            written.append((home, f.path, int(f.metadata.num_rows), int(size)))

        for j, block in enumerate(blocks):
            table = BlockAccessor.for_block(block).to_arrow()
            if table.num_rows == 0:
                continue
            pads.write_dataset(
                table,
                self.folder,
                format="parquet",
                partitioning=["home"],
                partitioning_flavor="hive",
                basename_template=f"part-{ctx.task_idx:05d}-{j:05d}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
                max_partitions=max(self.nlist, 1),
                filesystem=self.store.filesystem,
                file_visitor=visit,
            )
        return written

    def on_write_complete(self, write_result: WriteResult[list[Written]]) -> None:
        self.written = sorted({w for ws in write_result.write_returns for w in ws})
