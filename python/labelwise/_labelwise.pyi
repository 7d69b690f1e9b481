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
) -> tuple[dict[str, pa.Table], str]: ...
def export(argv: list[str]) -> tuple[Path, int]: ...
