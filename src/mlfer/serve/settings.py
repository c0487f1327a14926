"""The server's settings (``mlfer serve``'s options), torch-free and passed to worker processes as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from mlfer.core.errors import MlferError

#: The environment variable ``mlfer serve`` reads its token from when ``--token`` is not given.
TOKEN_VARIABLE = "MLFER_SERVE_TOKEN"
#: The environment variable that hands the settings to uvicorn's worker processes.
SETTINGS_VARIABLE = "MLFER_SERVE_SETTINGS"
#: Where ``--thresholds`` and the ``thresholds`` option come from (as in ``mlfer predict``).
THRESHOLD_KINDS = ("auto", "default", "tuned")


@dataclass(frozen=True)
class ServeSettings:
    """What ``mlfer serve`` runs and how much it accepts.

    Args:
        checkpoint: the model folder; ``None``: the packaged model.
        host, port: where to listen (port 0: any free port).
        token: the bearer token every request but the page's files must carry; ``None``: none.
        thresholds: the requests' default thresholds (auto, default or tuned).
        min_score: the requests' default minimum detection score.
        max_batch: faces per forward pass, gathered across requests.
        max_wait_ms: how long the batcher waits for more faces once it has one.
        queue_size: requests admitted at once (being read, detected or classified); more get 503.
        max_upload_mb: the largest request body, in MiB; larger ones get 413.
        max_files: photos per request.
        threads: worker threads that read photos and detect and align faces.
        processes: server processes, each with its own model (uvicorn's workers).
        device: where the model runs (cpu, cuda, auto).
        trust_unverified: load weights without a checksum.
        log_level: uvicorn's log level.
    """

    checkpoint: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    thresholds: str = "auto"
    min_score: float = 0.5
    max_batch: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 64
    max_upload_mb: float = 20.0
    max_files: int = 32
    threads: int = 2
    processes: int = 1
    device: str = "cpu"
    trust_unverified: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("max_batch", "queue_size", "max_files", "threads", "processes"):
            if getattr(self, name) < 1:
                raise MlferError(f"must be at least 1, got {getattr(self, name)}", field=name)
        for name in ("max_wait_ms", "max_upload_mb"):
            if not getattr(self, name) >= 0:
                raise MlferError(f"must be at least 0, got {getattr(self, name)}", field=name)
        if not 0 <= self.port <= 65535:
            raise MlferError(f"must lie in [0, 65535], got {self.port}", field="port")
        if self.thresholds not in THRESHOLD_KINDS:
            raise MlferError(f"choose one of {', '.join(THRESHOLD_KINDS)}, got {self.thresholds!r}", field="thresholds")
        if self.token == "":
            object.__setattr__(self, "token", None)

    @property
    def max_upload_bytes(self) -> int:
        """The largest request body, in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    def to_json(self) -> str:
        """The settings as JSON (the token included: keep it out of logs)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """Settings written by :meth:`to_json`; unknown keys are refused."""
        values = json.loads(text)
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise MlferError(f"unknown settings {sorted(unknown)}", field=SETTINGS_VARIABLE)
        return cls(**values)

    @classmethod
    def from_environment(cls) -> ServeSettings:
        """The settings :func:`mlfer.serve.server.serve` left for its worker processes."""
        text = os.environ.get(SETTINGS_VARIABLE)
        if text is None:
            raise MlferError("not set; start the server with mlfer serve", field=SETTINGS_VARIABLE)
        return cls.from_json(text)
