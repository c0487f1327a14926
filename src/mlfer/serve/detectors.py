"""Recognizers lent to worker threads, one caller at a time, by minimum detection score.

A MediaPipe graph serves one caller at a time, and its minimum score is fixed when it is made,
so each worker thread borrows a :class:`Recognizer` (sharing the one model and engine:
:meth:`Recognizer.with_detector`) with a detector of the score the request asks for. Idle ones
are kept up to a bound, the oldest closed first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mlfer.faces.detect import FaceDetector
from mlfer.inference.recognizer import Recognizer


class RecognizerPool:
    """Lends twins of ``recognizer``, each with its own face detector.

    Args:
        recognizer: the server's recognizer, whose model and engine the twins share.
        max_idle: idle recognizers kept for reuse.
    """

    def __init__(self, recognizer: Recognizer, max_idle: int = 4) -> None:
        self.recognizer = recognizer
        self.max_idle = max_idle
        self._idle: list[tuple[float, Recognizer]] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self, min_score: float) -> Iterator[Recognizer]:
        """A recognizer whose detector drops faces scoring under ``min_score``, for this thread alone.

        Raises:
            MlferError: when ``min_score`` lies outside ``(0, 1]`` (the detector's message).
        """
        recognizer = self._take(min_score)
        try:
            yield recognizer
        finally:
            self._give_back(min_score, recognizer)

    def close(self) -> None:
        """Close the idle detectors."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, recognizer in idle:
            recognizer.detector.close()

    def _take(self, min_score: float) -> Recognizer:
        with self._lock:
            for index, (score, recognizer) in enumerate(self._idle):
                if score == min_score:
                    del self._idle[index]
                    return recognizer
        return self.recognizer.with_detector(FaceDetector(min_score))

    def _give_back(self, min_score: float, recognizer: Recognizer) -> None:
        with self._lock:
            self._idle.append((min_score, recognizer))
            surplus = self._idle[: max(len(self._idle) - self.max_idle, 0)]
            del self._idle[: len(surplus)]
        for _, old in surplus:
            old.detector.close()
