"""The shuffle's writer: Ray Data rows written as Parquet partitioned by home list.

Ray Data's own ``write_parquet(partition_cols=...)`` hands each block to pyarrow's
``write_dataset`` with its default ``max_partitions`` of 1,024, so a pool of more than about
1,050,000 rows (√n lists) fails there ("Fragment would be written into 1732 partitions"). This
sink is that write with the cap set to the number of lists. Imported only where Ray is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow.dataset as pads
from ray.data import Datasink
from ray.data.block import BlockAccessor


class ListsDatasink(Datasink[None]):
    """Writes every block under ``path/home=L/`` (hive layout, as ``write_parquet`` does); file
    names carry the write task's index, so a retried task overwrites its own files."""

    def __init__(self, path: str, nlist: int) -> None:
        self.path = path
        self.nlist = nlist

    def write(self, blocks: Iterable[Any], ctx: Any) -> None:
        for j, block in enumerate(blocks):
            table = BlockAccessor.for_block(block).to_arrow()
            if table.num_rows == 0:
                continue
            pads.write_dataset(
                table,
                self.path,
                format="parquet",
                partitioning=["home"],
                partitioning_flavor="hive",
                basename_template=f"part-{ctx.task_idx:05d}-{j:05d}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
                max_partitions=max(self.nlist, 1),
            )
