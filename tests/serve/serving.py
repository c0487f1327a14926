"""The server of the tests: a free loopback port, small limits, a token from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlfer.serve.client import Client

TOKEN = "test-token-26"
#: Small limits, so that the 413 and 503 paths are reached with little data.
MAX_UPLOAD_MB = 1
QUEUE_SIZE = 4
#: ``mlfer serve``'s arguments in the tests (the packaged model).
ARGUMENTS = (
    "--port",
    "0",
    "--max-upload-mb",
    str(MAX_UPLOAD_MB),
    "--queue-size",
    str(QUEUE_SIZE),
    "--log-level",
    "warning",
)


@dataclass(frozen=True)
class Server:
    """A running server: its address, token, process id and log file."""

    url: str
    token: str
    pid: int
    log: Path

    def client(self, token: str | None = TOKEN) -> Client:
        """A client with the right token (or another, or none)."""
        return Client(self.url, token)
