"""The prediction service behind ``POST /predict``: read, detect and align in worker threads, classify in batches.

Each uploaded photo is written to a temporary folder (removed when the request ends) and read by
mlfer's image reader, so that its rows, and its errors, are those of ``mlfer predict`` on the same
file; the aligned faces of all requests meet in the :class:`~mlfer.serve.batcher.Batcher`.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.version import __version__
from mlfer.evaluation.thresholds import choose_thresholds
from mlfer.faces.detect import FaceDetector
from mlfer.inference.inputs import Frame, iter_inputs
from mlfer.inference.recognizer import Recognizer
from mlfer.inference.table import Result
from mlfer.inference.video import is_video
from mlfer.models.package import CONFIG_FILE
from mlfer.models.shipped import shipped_model_dir
from mlfer.serve.batcher import Batcher
from mlfer.serve.detectors import RecognizerPool
from mlfer.serve.errors import RequestError
from mlfer.serve.metrics import ServeMetrics
from mlfer.serve.settings import ServeSettings

#: File-name suffixes kept for the temporary copy of an upload (the reader and the video check look at them).
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name it was sent with, and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Options:
    """A request's options, as ``mlfer predict``'s: the thresholds of ``predicted``, the minimum face score."""

    thresholds: np.ndarray
    min_score: float


class PredictionService:
    """The loaded model, its worker threads and batcher, and the admission count of requests.

    Admission (:meth:`admit`) is counted on the event loop's thread alone, so it needs no lock.
    """

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.directory = shipped_model_dir() if settings.checkpoint is None else Path(settings.checkpoint)
        # As mlfer predict opens it: the folder's export, shared with predict's in the cache.
        self.classifier = Recognizer.from_folder(
            self.directory,
            FaceDetector(settings.min_score),
            device=settings.device,
            thresholds=settings.thresholds,
            trust_unverified=settings.trust_unverified,
            batch_size=settings.max_batch,
        )
        self.config = load_config(self.directory / CONFIG_FILE).model
        self.pool = RecognizerPool(self.classifier, max_idle=2 * settings.threads)
        self.executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="mlfer-detect")
        self.batcher = Batcher(
            self.classifier.classify, settings.max_batch, settings.max_wait_ms / 1000, metrics.batch_faces.observe
        )
        self.admitted = 0

    def describe(self) -> dict[str, Any]:
        """What ``/health`` says: the model's folder name, head and backbone, and mlfer's version."""
        return {
            "status": "ok",
            "model": self.directory.name,
            "head": self.config.head,
            "backbone": self.config.backbone,
            "version": __version__,
        }

    def options(self, query: dict[str, str]) -> Options:
        """A request's options from its query (``thresholds``, ``min_score``), the server's by default.

        Raises:
            RequestError: 400, naming the option.
        """
        text = query.get("min_score", str(self.settings.min_score))
        try:
            min_score = float(text)
        except ValueError:
            raise RequestError(400, f"min_score: expected a number in (0, 1], got {text!r}") from None
        try:
            thresholds = choose_thresholds(query.get("thresholds", self.settings.thresholds), self.directory)
        except MlferError as error:  # naming the option, or the missing thresholds.json
            raise RequestError(400, str(error).replace(str(self.directory), self.directory.name)) from None
        return Options(thresholds, min_score)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``queue_size`` places while a request is read, detected and classified.

        Raises:
            RequestError: 503 with ``Retry-After`` when every place is taken.
        """
        if self.admitted >= self.settings.queue_size:
            raise RequestError(503, "the server is busy; try again shortly", headers={"Retry-After": "1"})
        self.admitted += 1
        self.metrics.queue.set(self.admitted)
        try:
            yield
        finally:
            self.admitted -= 1
            self.metrics.queue.set(self.admitted)

    async def predict(self, uploads: list[Upload], options: Options) -> list[dict[str, Any]]:
        """The rows of ``mlfer predict`` for the uploaded photos, in upload order.

        Raises:
            RequestError: 415 for a video, 422 when a file cannot be read (the reader's message),
                400 for an option the detector refuses.
        """
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory(prefix="mlfer-serve-") as folder:
            jobs = [
                loop.run_in_executor(self.executor, self._detect, Path(folder), number, upload, options.min_score)
                for number, upload in enumerate(uploads)
            ]
            outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        results: list[Result] = []
        for outcome in outcomes:
            if isinstance(outcome, MlferError):  # an option the detector refuses
                raise RequestError(400, str(outcome)) from outcome
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        errors = [{"input": result.frame.input, "error": result.error} for result in results if result.error]
        if errors:
            raise RequestError(422, errors[0]["error"], extra={"errors": errors})
        faces = [face for result in results for face in result.aligned]
        probabilities = np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        if faces:
            probabilities = await asyncio.wrap_future(self.batcher.submit(faces))
        rows: list[dict[str, Any]] = []
        start = 0
        for result in results:
            result.probabilities = probabilities[start : start + len(result.faces)]
            result.thresholds = options.thresholds
            start += len(result.faces)
            rows.extend(result.rows())
        return rows

    def close(self) -> None:
        """Stop the batcher and the worker threads, and close the detectors."""
        self.executor.shutdown(wait=True)
        self.batcher.close()
        self.pool.close()
        self.classifier.detector.close()

    def _detect(self, folder: Path, number: int, upload: Upload, min_score: float) -> Result:
        """Read one upload as ``mlfer predict`` reads a file, then detect and align its faces (a worker thread)."""
        suffix = Path(upload.name).suffix
        path = folder / f"{number}{suffix if _SUFFIX.fullmatch(suffix) else ''}"
        if is_video(path):
            raise RequestError(415, f"{upload.name}: videos are not served; send photos, or run mlfer predict on it")
        path.write_bytes(upload.data)
        try:
            frame = next(iter_inputs(path))
        finally:
            path.unlink()
        frame = Frame(upload.name, frame.frame, frame.image, frame.error.replace(str(path), upload.name))
        with self.pool.borrow(min_score) as recognizer:
            return recognizer.detect(frame)
