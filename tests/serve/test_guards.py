"""The upload cap on bodies without a Content-Length, and the settings handed to worker processes."""

from __future__ import annotations

import asyncio

import pytest

from mlfer.core.errors import MlferError
from mlfer.serve.guards import UploadLimit, UploadTooLargeError
from mlfer.serve.settings import ServeSettings


def read_body(limit: int, chunks: list[bytes]) -> bytes:
    """Run an app that reads the whole body behind :class:`UploadLimit`, fed ``chunks`` (chunked encoding)."""
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages[-1]["more_body"] = False
    received = b""

    async def app(scope, receive, send) -> None:
        nonlocal received
        while True:
            message = await receive()
            received += message["body"]
            if not message["more_body"]:
                return

    async def receive():
        return messages.pop(0)

    async def send(message) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "headers": [(b"transfer-encoding", b"chunked")], "path": "/predict"}
    asyncio.run(UploadLimit(app, limit)(scope, receive, send))
    return received


def test_a_streamed_body_is_cut_once_it_passes_the_cap() -> None:
    assert read_body(10, [b"12345", b"67890"]) == b"1234567890"
    with pytest.raises(UploadTooLargeError):
        read_body(10, [b"12345", b"67890", b"1"])


def test_settings_travel_as_json_and_are_checked() -> None:
    settings = ServeSettings(token="secret", port=0, max_batch=8, thresholds="default")
    assert ServeSettings.from_json(settings.to_json()) == settings
    assert ServeSettings(token="").token is None
    with pytest.raises(MlferError, match="max_batch: must be at least 1"):
        ServeSettings(max_batch=0)
    with pytest.raises(MlferError, match="thresholds: choose one of auto, default, tuned"):
        ServeSettings(thresholds="best")
    with pytest.raises(MlferError, match="unknown settings"):
        ServeSettings.from_json('{"colour": "red"}')
