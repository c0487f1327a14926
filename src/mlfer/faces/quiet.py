"""Keeps MediaPipe's C++ log lines out of the user's terminal unless asked for.

MediaPipe's graphs write straight to file descriptor 2, from C++ and from their own threads:
TFLite's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` when a graph is made,
absl's ``WARNING: All log messages before absl::InitializeLog() is called ...`` and
``W0000 ... Feedback manager requires a model with a single signature ...`` when a graph
starts, on its first ``process()``. Python's :mod:`logging` never sees them, and neither
``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL`` stops them (tried with mediapipe 0.10.21:
absl's log is not glog's, and TFLite's minimal logging reads neither). So :func:`library_output`
points file descriptor 2 at a temporary file while a graph is made and while it first runs,
then writes back every captured line except the known library lines: absl lines of level
INFO or WARNING and TFLite's ``INFO:`` lines. Errors (``E``/``F`` lines), Python warnings
and anything else written meanwhile reach stderr as before, only a little later.

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
from typing import Any, TypeVar

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

_lock = threading.RLock()
_depth = 0
T = TypeVar("T")


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


class QuietGraph:
    """A MediaPipe solution whose first ``process()`` (when its graph starts and logs) runs under
    :func:`library_output`; later calls go straight through.

    Args:
        graph: the MediaPipe solution (``FaceDetection``), with ``process`` and ``close``.
    """

    def __init__(self, graph: Any) -> None:
        self._graph = graph
        self._started = False

    def process(self, image: Any) -> Any:
        """The graph's ``process(image)``."""
        if self._started:
            return self._graph.process(image)
        with library_output():
            result = self._graph.process(image)
        self._started = True
        return result

    def close(self) -> None:
        """Close the graph."""
        self._graph.close()


def quiet_graphs(make: Callable[[], list[T]]) -> list[QuietGraph]:
    """The graphs ``make()`` returns, made under :func:`library_output` and wrapped in :class:`QuietGraph`."""
    with library_output():
        graphs = make()
    return [QuietGraph(graph) for graph in graphs]
