"""Where the stage outputs live: a folder every node reaches. That is a shared mount (or one
machine's disk for a local cluster), or a folder in any filesystem pyarrow writes
(``s3://bucket/labelwise-work/``), so a cluster with no shared disk keeps its stages in object
storage. Every stage reads and writes its files through a :class:`Store`, one code path for
both: a local folder is pyarrow's ``LocalFileSystem``, its matrices memory-mapped.

Writes are atomic either way: on object storage a whole-object upload appears only once it is
complete (a task killed mid-write leaves nothing), elsewhere a temporary name is moved into
place. So a file that exists is whole, and the content-addressed names make it a finished
stage output. (The shuffle's files are the exception: Ray Data writes them, and only those the
manifest in its ``_SUCCESS`` lists are read.)
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from .. import InputError
from ._inputs import uri

#: Filesystems (pyarrow's ``type_name``) whose uploads appear whole or not at all.
ATOMIC_UPLOADS = ("s3", "gcs")
#: Ranged reads of a matrix in object storage merge across gaps up to this many bytes: one
#: request for nearby rows, where each request costs far more than the bytes between them.
COALESCE_GAP = 1 << 20
#: Parquet files in object storage up to this size are read in one request.
WHOLE_READ = 64 << 20
#: Bytes read for a ``.npy`` header (numpy pads it to a multiple of 64; ours are < 200).
NPY_HEAD = 4096


@dataclass(frozen=True)
class Store:
    """A folder for stage outputs, local or in a pyarrow filesystem; paths are strings inside
    ``filesystem``. Pickled to the tasks with their arguments."""

    filesystem: Any
    root: str
    #: How messages name the store's files (``s3``); empty for a local folder.
    scheme: str = ""

    @property
    def local(self) -> bool:
        """Whether the folder is on a local (or mounted) disk."""
        return not self.scheme

    def path(self, *parts: str) -> str:
        """``parts`` joined under the root."""
        return "/".join([self.root.rstrip("/"), *parts])

    def name(self, path: str) -> str:
        """``path`` as messages and stage records name it."""
        return uri(self.scheme, path)

    def exists(self, path: str) -> bool:
        return bool(self.filesystem.get_file_info(path).type != pafs.FileType.NotFound)

    def size(self, path: str) -> int:
        return int(self.filesystem.get_file_info(path).size or 0)

    def write(self, path: str, write: Callable[[Any], Any]) -> int:
        """Calls ``write(file)`` on a binary output stream that becomes ``path`` only once it
        is complete; returns the bytes written."""
        folder, base = path.rsplit("/", 1)
        self.filesystem.create_dir(folder, recursive=True)
        atomic = self.filesystem.type_name in ATOMIC_UPLOADS
        target = path if atomic else f"{folder}/.{base}.{os.getpid()}.tmp"
        with self.filesystem.open_output_stream(target, compression=None) as f:
            write(f)
            size = int(f.tell())
        if not atomic:
            self.filesystem.move(target, path)
        return size

    def upload(self, local: str, path: str) -> int:
        """Copies the local file ``local`` to ``path``, atomically."""
        with open(local, "rb") as src:
            return self.write(path, lambda f: shutil.copyfileobj(src, f, 1 << 22))

    def write_bytes(self, path: str, data: bytes) -> int:
        return self.write(path, lambda f: f.write(data))

    def read_bytes(self, path: str) -> bytes:
        with self.filesystem.open_input_file(path) as f:
            return bytes(f.read())

    def parquet(self, path: str) -> pq.ParquetFile:
        """One of the store's Parquet files, read where it is. From object storage a file up to
        :data:`WHOLE_READ` bytes is fetched in one request after its size (rather than the
        footer, then each column)."""
        if self.local:
            return pq.ParquetFile(path, memory_map=True)
        f = self.filesystem.open_input_file(path)
        if f.size() <= WHOLE_READ:
            return pq.ParquetFile(pa.BufferReader(f.read_at(f.size(), 0)))
        return pq.ParquetFile(f)

    def read_table(self, path: str, columns: list[str] | None = None) -> pa.Table:
        return self.parquet(path).read(columns=columns)

    def save_npy(self, path: str, array: np.ndarray) -> int:
        """``array`` as a ``.npy`` file, atomically."""
        return self.write(path, lambda f: np.save(f, array, allow_pickle=False))

    def _open_npy(self, path: str) -> tuple[Any, tuple[int, ...], np.dtype[Any], int]:
        """(open file, shape, dtype, offset of the data) of a ``.npy`` file: a memory map for a
        local one, ranged reads for one in object storage."""
        f = pa.memory_map(path) if self.local else self.filesystem.open_input_file(path)
        head = io.BytesIO(bytes(f.read_at(min(f.size(), NPY_HEAD), 0)))  # one request, not four
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
        if fortran:
            raise RuntimeError(f"{self.name(path)}: a Fortran-ordered matrix")
        return f, shape, dtype, int(head.tell())

    def load_npy(self, path: str) -> np.ndarray:
        """A whole ``.npy`` file (read-only; memory-mapped when local)."""
        f, shape, dtype, offset = self._open_npy(path)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return np.frombuffer(f.read_at(nbytes, offset), dtype=dtype).reshape(shape)

    def npy_rows(self, path: str, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (increasing) of a 2-d ``.npy`` file, reading only those: from
        object storage, one ranged read per run of rows closer than :data:`COALESCE_GAP`."""
        f, shape, dtype, offset = self._open_npy(path)
        rows = rows.astype(np.int64)
        if rows.size > 1 and np.any(np.diff(rows) < 0):  # in order, then put back
            order = np.argsort(rows, kind="stable")
            back = np.empty_like(order)
            back[order] = np.arange(order.size)
            return self.npy_rows(path, rows[order])[back]
        if self.local:
            whole = f.read_at(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, offset)
            return np.asarray(np.frombuffer(whole, dtype=dtype).reshape(shape)[rows])
        width = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        out = np.empty((rows.size, *shape[1:]), dtype=dtype)
        if rows.size == 0:
            return out
        gap_rows = max(1, COALESCE_GAP // max(width, 1))
        cuts = np.flatnonzero(np.diff(rows) > gap_rows) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [rows.size]])):
            first, last = int(rows[lo]), int(rows[hi - 1])
            block = np.frombuffer(f.read_at((last - first + 1) * width, offset + first * width), dtype=dtype)
            out[lo:hi] = block.reshape(-1, *shape[1:])[rows[lo:hi] - first]
        return out

    def folders(self, folder: str) -> list[str]:
        """The folders directly in ``folder``, sorted (none when it does not exist)."""
        sel = pafs.FileSelector(folder, allow_not_found=True)
        return sorted(i.path for i in self.filesystem.get_file_info(sel) if i.type == pafs.FileType.Directory)

    def remove_folder(self, folder: str) -> None:
        """``folder`` and everything in it, when it exists."""
        if self.exists(folder):
            self.filesystem.delete_dir(folder)

    def move_out(self, path: str, local: str) -> None:
        """Moves the store's file ``path`` to the driver's local path ``local`` (a download
        when the store is not local)."""
        if self.local:
            shutil.move(path, local)
            return
        pafs.copy_files(path, os.path.abspath(local), source_filesystem=self.filesystem,
                        destination_filesystem=pafs.LocalFileSystem())
        self.filesystem.delete_file(path)


@dataclass(frozen=True)
class Matrix:
    """One normalised shard: an f32 ``.npy`` matrix in the store, which the tasks read whole
    or by rows where it is."""

    store: Store
    path: str

    def exists(self) -> bool:
        return self.store.exists(self.path)

    def nbytes(self) -> int:
        """The file's size."""
        return self.store.size(self.path)

    def load(self) -> np.ndarray:
        return self.store.load_npy(self.path)

    def rows(self, local: np.ndarray) -> np.ndarray:
        """The rows ``local`` only."""
        return self.store.npy_rows(self.path, local)


#: The schemes users write for pyarrow's filesystems whose ``type_name`` differs.
_TYPE_NAMES = {"gs": "gcs"}


def open_store(work_dir: str, filesystem: Any = None) -> Store:
    """The store at ``work_dir``: a local path, or a URI (``s3://bucket/work``). With
    ``filesystem`` (the inputs' ``pyarrow.fs.FileSystem``), a URI of its scheme is a folder
    inside it, opened with its credentials and endpoint."""
    if "://" not in work_dir:
        return Store(pafs.LocalFileSystem(), os.path.abspath(work_dir))
    scheme, inside = work_dir.split("://", 1)
    try:
        if filesystem is not None and _TYPE_NAMES.get(scheme, scheme) == getattr(filesystem, "type_name", None):
            fs, inside = filesystem, inside.split("?", 1)[0]
        else:
            fs, inside = pafs.FileSystem.from_uri(work_dir)
        if fs.type_name == "local":
            return Store(fs, os.path.abspath(inside))
        fs.get_file_info(inside)  # an unreachable store fails here, before any task runs
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{work_dir.split('?', 1)[0]}: cannot write stage outputs there: {e}") from None
    return Store(fs, inside.rstrip("/"), scheme)
