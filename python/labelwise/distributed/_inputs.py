"""Where the pool's Parquet files live: local paths (read as the CLI reads them) or any
filesystem pyarrow reads (``s3://``, ``gs://``, ``hdfs://``, ``abfs://`` URIs, or a
``pyarrow.fs.FileSystem`` given with paths inside it).

Pools at 10^8 items sit in object storage; the cluster's tasks read their shards from there
directly, and the driver reads only the columns it needs (the ids and labels on the map route),
so nothing has to be copied to a mounted disk first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import InputError, _labelwise


@dataclass(frozen=True)
class Inputs:
    """The pool's files, in the order the CLI would read them."""

    #: The ``pyarrow.fs.FileSystem`` holding ``files``; ``None`` for local paths.
    filesystem: Any
    #: Paths of the Parquet files (inside ``filesystem`` when there is one).
    files: list[str]
    #: The scheme shown in messages (``s3``), empty for local paths.
    scheme: str = ""

    @property
    def remote(self) -> bool:
        """Whether the files are read through a pyarrow filesystem rather than local paths."""
        return self.filesystem is not None

    def name(self, path: str) -> str:
        """How messages and outputs name ``path``: its URI for a remote file."""
        return uri(self.scheme, path)

    def open(self, path: str) -> pq.ParquetFile:
        """One of the files as a ``ParquetFile`` (see :func:`open_parquet`)."""
        return open_parquet(self.filesystem, path, self.name(path))

    def stat(self, path: str) -> tuple[int, int]:
        """(size, modification time in ns; 0 where the filesystem keeps none) of ``path``."""
        if self.filesystem is None:
            st = os.stat(path)
            return st.st_size, st.st_mtime_ns
        info = self.filesystem.get_file_info(path)
        return int(info.size or 0), int(info.mtime_ns or 0)

    def identity(self, path: str) -> str:
        """What names ``path`` across runs (its absolute path, or its URI)."""
        return os.path.abspath(path) if self.filesystem is None else self.name(path)

    def stream(self, columns: Sequence[str] | None) -> pa.RecordBatchReader:
        """Every file's rows in order, ``columns`` only (all when ``None``), read a batch at a
        time: the driver's pool for the wheel when the files are not local."""
        first = self.open(self.files[0]).schema_arrow
        names = [c for c in first.names if columns is None or c in columns]
        schema = pa.schema([first.field(c) for c in names])

        def batches() -> Iterator[pa.RecordBatch]:
            for path in self.files:
                f = self.open(path)
                theirs = f.schema_arrow
                for field in schema:
                    if field.name not in theirs.names:
                        raise InputError(f"{self.name(path)}: column '{field.name}' not found")
                    if not theirs.field(field.name).type.equals(field.type):
                        raise InputError(
                            f"{self.name(path)}: column '{field.name}' is {theirs.field(field.name).type}, "
                            f"not {field.type} as in {self.name(self.files[0])}"
                        )
                yield from f.iter_batches(columns=names)

        return pa.RecordBatchReader.from_batches(schema, batches())


def uri(scheme: str, path: str) -> str:
    """``path`` as messages name it: with its scheme when it is not local."""
    return f"{scheme}://{path}" if scheme else path


def open_parquet(filesystem: Any, path: str, name: str) -> pq.ParquetFile:
    """``path`` (local when ``filesystem`` is ``None``) as a ``ParquetFile``; a file that is not
    Parquet is the CLI's error, naming the file ``name``."""
    try:
        if filesystem is None:
            return pq.ParquetFile(path)
        return pq.ParquetFile(filesystem.open_input_file(path))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{name}: not a Parquet file, or truncated ({e})") from None


def resolve(paths: Sequence[str], filesystem: Any = None) -> Inputs:
    """The Parquet files ``paths`` name: files, or folders walked as the CLI walks them (sorted,
    ``.parquet``/``.pq``, names starting with ``.`` or ``_`` skipped). Paths are URIs, or paths
    inside ``filesystem`` when one is given; local paths go through the CLI's own walk."""
    if filesystem is None and not any("://" in p for p in paths):
        return Inputs(None, [str(p) for p in _labelwise.expand_paths(list(paths))])
    fs, inside = filesystem, list(paths)
    scheme = getattr(fs, "type_name", "") or "fs"
    if fs is None:
        from pyarrow import fs as pafs

        resolved = []
        for p in paths:
            try:
                resolved.append(pafs.FileSystem.from_uri(p))
            except (pa.ArrowInvalid, OSError) as e:
                raise InputError(f"{p}: cannot read: {e}") from None
        fs, inside = resolved[0][0], [r[1] for r in resolved]
        if any(type(r[0]) is not type(fs) for r in resolved):
            raise InputError(f"{paths[0]}: every input must be on the same filesystem")
        scheme = paths[0].split("://", 1)[0]  # as the user wrote it (gs://, not pyarrow's gcs)
    inputs = Inputs(fs, [], scheme)
    for p in inside:
        inputs.files.extend(_expand(inputs, p))
    if not inputs.files:
        raise InputError("no input files given")
    return inputs


def _expand(inputs: Inputs, path: str) -> list[str]:
    """``path``'s Parquet files inside the filesystem: the file itself, or a folder's walk."""
    from pyarrow import fs as pafs

    fs = inputs.filesystem
    try:
        info = fs.get_file_info(path)
        listing = [] if info.type != pafs.FileType.Directory else fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except OSError as e:  # the store unreachable, access denied...
        raise InputError(f"{inputs.name(path)}: cannot read: {e}") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{inputs.name(path)}: cannot read: not found")
    if info.type != pafs.FileType.Directory:
        return [path]
    found = []
    for entry in listing:
        rel = entry.path[len(path.rstrip("/")) + 1:] if entry.path.startswith(path.rstrip("/") + "/") else entry.base_name
        hidden = any(part.startswith((".", "_")) for part in rel.split("/"))
        if entry.type == pafs.FileType.File and not hidden and entry.base_name.endswith((".parquet", ".pq")):
            found.append(entry.path)
    if not found:
        raise InputError(f"{inputs.name(path)}: directory holds no .parquet files")
    return sorted(found, key=lambda p: p.split("/"))
