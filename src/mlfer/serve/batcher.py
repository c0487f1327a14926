"""One thread that classifies the faces of concurrent requests together, as TorchServe and Triton do.

Requests :meth:`Batcher.submit` their aligned faces and get a future; the thread takes the first
waiting request, then more until ``max_batch`` faces are gathered or ``max_wait`` seconds have
passed, runs one ``classify`` call on them all and hands each request its own rows back.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

#: Classifies aligned RGB faces: F faces -> F x 6 probabilities.
Classify = Callable[[list[np.ndarray]], np.ndarray]


@dataclass
class _Job:
    faces: list[np.ndarray]
    future: Future[np.ndarray] = field(default_factory=Future)


class Batcher:
    """Gathers faces from many threads into batches for one classifier thread.

    Args:
        classify: the classifier (:meth:`Recognizer.classify`); only the batcher's thread calls it.
        max_batch: the most faces gathered for one call (one request's faces are never split,
            so a request with more faces is classified alone).
        max_wait: seconds to wait for more faces once the first has arrived.
        on_batch: called with the size of each batch (for the metrics).
    """

    def __init__(
        self,
        classify: Classify,
        max_batch: int = 32,
        max_wait: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._classify = classify
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._carried: _Job | None = None
        self._thread = threading.Thread(target=self._run, name="mlfer-batcher", daemon=True)
        self._thread.start()

    def submit(self, faces: list[np.ndarray]) -> Future[np.ndarray]:
        """Queue aligned faces; the future gives their probabilities (F x 6, RAF order)."""
        job = _Job(list(faces))
        if not self._thread.is_alive():
            job.future.set_exception(RuntimeError("the batcher is closed"))
        else:
            self._jobs.put(job)
        return job.future

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            jobs = self._gather()
            if jobs is None:
                return
            # A request given up meanwhile (its future cancelled) is left out; the others can no longer be cancelled.
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if jobs:
                self._answer(jobs)

    def _gather(self) -> list[_Job] | None:
        """The next batch: the first waiting job, then those that fit within ``max_batch`` faces
        and arrive within ``max_wait``; ``None`` once closed and drained."""
        first = self._carried if self._carried is not None else self._jobs.get()
        self._carried = None
        if first is None:
            return None
        jobs, count = [first], len(first.faces)
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:  # closing: answer this batch; the marker, put back, stops the thread after it
                self._jobs.put(None)
                break
            if count + len(job.faces) > self.max_batch:
                self._carried = job
                break
            jobs.append(job)
            count += len(job.faces)
        return jobs

    def _answer(self, jobs: list[_Job]) -> None:
        faces = [face for job in jobs for face in job.faces]
        try:
            probabilities = self._classify(faces)
        except Exception as error:  # every waiting request learns of it; the thread carries on
            for job in jobs:
                job.future.set_exception(error)
            return
        if self._on_batch is not None:
            self._on_batch(len(faces))
        start = 0
        for job in jobs:
            job.future.set_result(probabilities[start : start + len(job.faces)])
            start += len(job.faces)
