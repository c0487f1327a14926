"""Keeps MediaPipe's C++ log lines out of the user's terminal unless asked for.

MediaPipe's graphs write straight to file descriptor 2, from C++ and from their own threads:
TFLite's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` when a graph is made,
then, some milliseconds later when its inference calculator opens, absl's ``WARNING: All log
messages before absl::InitializeLog() is called ...`` and ``W0000 ... Feedback manager requires
a model with a single signature ...``. Python's :mod:`logging` never sees them, and neither
``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL`` stops them (tried with mediapipe 0.10.21:
absl's log is not glog's, and TFLite's minimal logging reads neither). So :func:`quiet_graphs`
makes the graphs and runs each once on a blank picture under :func:`library_output`, which
points descriptor 2 at a temporary file for the block and then writes back every captured line
except the library's chatter (:data:`NOISE`: absl lines of level INFO or WARNING, TFLite's
``INFO:`` lines). Errors (``E``/``F`` lines), Python warnings and anything else written
meanwhile reach stderr as before, only a little later.

``MLFER_VERBOSE=1`` (the commands' ``--verbose``) leaves descriptor 2 alone.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import numpy as np

#: The environment variable that lets the library lines through (``1``, ``true``, ``yes``, ``on``).
VERBOSE_VARIABLE = "MLFER_VERBOSE"

#: Lines dropped from what the libraries write while :func:`library_output` holds descriptor 2.
NOISE = re.compile(
    rb"^(?:"
    rb"[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]*\] "  # absl / glog INFO and WARNING
    rb"|INFO: "  # TFLite's minimal logging, INFO level
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb")"
)

#: The picture each graph first runs on, while its start-up lines are held back.
WARM_UP = np.zeros((64, 64, 3), dtype=np.uint8)

_lock = threading.RLock()
_depth = 0


class Graph(Protocol):
    """What :func:`quiet_graphs` needs of a MediaPipe solution."""

    def process(self, image: np.ndarray) -> Any:
        """Run the graph on an RGB picture."""


T = TypeVar("T", bound=Graph)


def verbose() -> bool:
    """Whether ``$MLFER_VERBOSE`` asks for the library lines."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def set_verbose(on: bool) -> None:
    """Set ``$MLFER_VERBOSE`` for this process and the processes it starts (``--verbose``)."""
    if on:
        os.environ[VERBOSE_VARIABLE] = "1"


def filter_noise(captured: bytes) -> bytes:
    """``captured`` without the library lines (:data:`NOISE`)."""
    return b"".join(line for line in captured.splitlines(keepends=True) if not NOISE.match(line))


@contextmanager
def library_output() -> Iterator[None]:
    """Hold descriptor 2 in a temporary file for the block, then pass on all but :data:`NOISE`.

    Re-entrant and serialised across threads (descriptor 2 is one per process); does nothing
    when :func:`verbose` or when descriptor 2 is not open.
    """
    global _depth
    if verbose():
        yield
        return
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        _depth = 1
        try:
            with tempfile.TemporaryFile() as capture:
                sys.stderr.flush()
                os.dup2(capture.fileno(), 2)
                try:
                    yield
                finally:
                    sys.stderr.flush()
                    os.dup2(saved, 2)
                    capture.seek(0)
                    kept = filter_noise(capture.read())
                    if kept:
                        os.write(2, kept)
        finally:
            _depth = 0
            os.close(saved)


def quiet_graphs(make: Callable[[], list[T]]) -> list[T]:
    """The MediaPipe graphs ``make()`` returns, made and started under :func:`library_output`.

    A graph logs from its own threads some milliseconds after it is made, when its inference
    calculator opens; each graph therefore runs once on :data:`WARM_UP` (a blank picture, no
    face) inside the block, so that those lines are written before descriptor 2 is given back.
    """
    with library_output():
        graphs = make()
        for graph in graphs:
            graph.process(WARM_UP)
    return graphs
