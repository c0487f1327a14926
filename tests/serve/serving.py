"""Starting ``mlfer serve`` for the tests: a free loopback port, small limits, a token from the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlfer.serve.client import Client
from mlfer.serve.settings import TOKEN_VARIABLE

TOKEN = "test-token-26"
#: Small limits, so that the 413 and 503 paths are reached with little data.
MAX_UPLOAD_MB = 1
QUEUE_SIZE = 4
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Server:
    """A running server: its address, token and log file."""

    url: str
    token: str
    log: Path

    def client(self, token: str | None = TOKEN) -> Client:
        """A client with the right token (or another, or none)."""
        return Client(self.url, token)


def start_server(log: Path) -> tuple[subprocess.Popen, Server]:
    """``mlfer serve --port 0`` with the packaged model and :data:`TOKEN` from the environment,
    once ``/health`` answers; its output goes to ``log``."""
    command = [sys.executable, "-m", "mlfer", "serve", "--port", "0", "--max-upload-mb", str(MAX_UPLOAD_MB)]
    command += ["--queue-size", str(QUEUE_SIZE), "--log-level", "warning"]
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, TOKEN_VARIABLE: TOKEN}
        )
    try:
        return process, Server(_wait_until_healthy(process, log), TOKEN, log)
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen) -> None:
    """Stop the server as Ctrl+C would, then for good."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_healthy(process: subprocess.Popen, log: Path) -> str:
    """The server's address once ``/health`` answers 200."""
    deadline = time.monotonic() + START_TIMEOUT_S
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlfer serve exited with {process.returncode}:\n{log.read_text()}")
        if url is None:
            found = re.search(r"mlfer serve: (http://[\d.]+:\d+)/", log.read_text())
            url = found.group(1) if found else None
        if url is not None:
            try:
                if Client(url, TOKEN, timeout=5).get("/health").status == 200:
                    return url
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"mlfer serve did not answer /health within {START_TIMEOUT_S} s:\n{log.read_text()}")
