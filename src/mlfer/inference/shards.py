"""One output file from several processes (``torchrun ... -m mlfer predict``): each process
writes its chunks of rows to a part file beside the output (one JSON line per chunk), and
process 0 passes them all, in rank order (which is input order) and in the same chunks,
to the ordinary writer, so the file is the one a single process would write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mlfer.core.fileio import atomic_path
from mlfer.runtime.distributed import barrier, on_main, rank, world_size

Rows = list[dict[str, Any]]
T = TypeVar("T")


def part_path(path: Path, number: int) -> Path:
    """The part file of process ``number`` for the output ``path`` (hidden, beside it)."""
    return path.with_name(f".{path.name}.part{number}.jsonl")


def write_merged(chunks: Iterable[Rows], path: Path, write: Callable[[Iterable[Rows]], T]) -> T | None:
    """``write(chunks)`` with one process; under torchrun, ``write`` of every process's
    chunks in rank order, on process 0 (None on the others). The part files go at the end.

    Args:
        chunks: this process's rows, in its input order (JSON values only).
        path: the output file the parts are named after.
        write: writes chunks of rows to ``path``.
    """
    if world_size() == 1:
        return write(chunks)
    with atomic_path(part_path(path, rank())) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(rows) + "\n" for rows in chunks)
    barrier()
    try:
        return on_main(lambda: write(_read_parts(path, world_size())))
    finally:
        part_path(path, rank()).unlink(missing_ok=True)


def _read_parts(path: Path, count: int) -> Iterator[Rows]:
    for number in range(count):
        with part_path(path, number).open(encoding="utf-8") as handle:
            yield from (json.loads(line) for line in handle)
