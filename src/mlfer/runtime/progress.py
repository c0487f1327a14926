"""Progress of long work: a tqdm bar on a terminal, one line per stage anywhere else.

Bars redrawn into a file or a pipe write a line per update (``mlfer demo`` wrote about 1,900
lines into a log), so when stderr is not a terminal each outermost loop prints one line as
it ends (``features: 38/38 batches in 12 s``) and the loops nested inside it print nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: How many loops of :func:`show_progress` are running (nested ones print nothing off a terminal).
_depth = 0
_PLURALS = {"batch": "batches"}


def _on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _plural(unit: str) -> str:
    """``batch`` -> ``batches``, ``epoch`` -> ``epochs``."""
    return _PLURALS.get(unit, unit + "s")


def _stage(items: Iterable[T], desc: str, total: int | None, initial: int, unit: str) -> Iterator[T]:
    """``items``, then one line ``DESC: DONE/TOTAL UNITs in S s`` on stderr unless nested in another loop."""
    global _depth
    outermost = _depth == 0
    _depth += 1
    start, done = time.monotonic(), initial
    try:
        for item in items:
            yield item
            done += 1
    finally:
        _depth -= 1
    if outermost:
        count = f"{done}/{total}" if total is not None else f"{done}"
        print(f"{desc}: {count} {_plural(unit)} in {time.monotonic() - start:.0f} s", file=sys.stderr)


def show_progress(
    items: Iterable[T],
    desc: str,
    *,
    total: int | None = None,
    initial: int = 0,
    unit: str = "step",
    leave: bool = True,
    disable: bool = False,
) -> Iterable[T]:
    """``items`` with their progress shown on stderr: a tqdm bar on a terminal, else one line
    when the loop ends (none for a loop nested in another).

    Args:
        items: what to loop over.
        desc: the stage's name, first on its bar or line.
        total: the number of items (taken from ``len(items)`` where it has one).
        initial: items done before (a resumed run).
        unit: what one item is (``batch``, ``epoch``, ``image``).
        leave: keep the bar on the terminal once done (tqdm's ``leave``).
        disable: show nothing.
    """
    if disable:
        return items
    if total is None and isinstance(items, Sized):
        total = initial + len(items)
    if _on_terminal():
        return tqdm(items, desc=desc, total=total, initial=initial, unit=unit, leave=leave)
    return _stage(items, desc, total, initial, unit)
