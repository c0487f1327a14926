"""A small client of ``mlfer serve`` on the standard library alone (the tests and bench/serve.py use it).

``Client("http://127.0.0.1:8000", token).predict([("photo.jpg", data)]).json()`` returns the rows.
One client keeps one connection open (HTTP keep-alive); give each thread its own.
:func:`launch` starts a server in a child process and waits until it answers.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class Reply:
    """An answer: its status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Client:
    """Talks to one server.

    Args:
        url: the server's address, ``http://HOST:PORT``.
        token: sent as ``Authorization: Bearer TOKEN`` when given.
        timeout: seconds to wait for an answer.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"expected http://HOST:PORT, got {url!r}")
        self.token = token
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def get(self, path: str) -> Reply:
        """``GET path``."""
        return self.request("GET", path)

    def predict(self, files: list[tuple[str, bytes]], raw: bool = False, **options: str | float) -> Reply:
        """``POST /predict`` with photos ``(name, bytes)``: as the multipart field ``file``, or,
        with ``raw``, the one photo as the body; ``options``: ``thresholds``, ``min_score``."""
        if raw:
            ((name, body),) = files
            query = urlencode({**options, "name": name})
            return self.request("POST", f"/predict?{query}", body, {"Content-Type": "application/octet-stream"})
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(name)}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
            for name, data in files
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        path = "/predict" + (f"?{urlencode(options)}" if options else "")
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        """Send one request on the kept connection (opening it again once if the server closed it)."""
        headers = dict(headers or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        reused = self._connection.sock is not None
        try:
            return self._send(method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            self._connection.close()
            return self._send(method, path, body, headers)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        self._connection.request(method, path, body=body or None, headers=headers)
        response = self._connection.getresponse()
        data = response.read()
        return Reply(response.status, {name.lower(): value for name, value in response.getheaders()}, data)


def _quoted(name: str) -> str:
    """A file name fit for a quoted multipart header, as browsers write it."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def launch(
    arguments: Sequence[str], log: Path, token: str | None = None, timeout: float = 120.0
) -> tuple[subprocess.Popen, str]:
    """Start ``mlfer serve ARGUMENTS`` (``--port 0``: any free port) in a child process whose output
    goes to ``log``, with ``token`` in its environment; return it and its address once ``/health``
    answers 200.

    Raises:
        RuntimeError: when the server exits or does not answer within ``timeout`` seconds (with its log).
    """
    from mlfer.serve.settings import TOKEN_VARIABLE

    environment = {**os.environ, **({TOKEN_VARIABLE: token} if token is not None else {})}
    with log.open("w") as handle:
        command = [sys.executable, "-m", "mlfer", "serve", *arguments]
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=environment)
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"mlfer serve: (http://[^/\s]+)/", log.read_text())
        url = found.group(1) if found else None
        if url is not None:
            try:
                if Client(url, token, timeout=5).get("/health").status == 200:
                    return process, url
            except OSError:
                pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(
        f"mlfer serve did not answer /health within {timeout:g} s (exit {process.returncode}):\n" + log.read_text()
    )


def stop(process: subprocess.Popen) -> None:
    """Stop a server started by :func:`launch` as Ctrl+C would, then for good."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
