"""ASGI middleware run before any endpoint: the bearer token, and the upload size cap."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlfer.serve.errors import RequestError


class BearerToken:
    """Answers 401 to any request without ``Authorization: Bearer TOKEN``, except on open paths.

    Args:
        app: the application behind.
        token: the expected token.
        is_open: tells the paths anyone may fetch (the page's own files).
    """

    def __init__(self, app: ASGIApp, token: str, is_open: Callable[[str], bool]) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.is_open = is_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.is_open(scope["path"]):
            given = Headers(scope=scope).get("authorization", "").encode()
            if not hmac.compare_digest(given, self.expected):
                error = RequestError(
                    401,
                    "this server needs a token: send the header 'Authorization: Bearer TOKEN'",
                    headers={"WWW-Authenticate": 'Bearer realm="mlfer"'},
                )
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class UploadTooLargeError(Exception):
    """Raised from ``receive`` once a request body passes the cap (answered 413 by the app)."""


class UploadLimit:
    """Refuses request bodies over ``limit`` bytes: at once by ``Content-Length``, else while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await too_large(self.limit).response()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise UploadTooLargeError
            return message

        await self.app(scope, counted, send)


def too_large(limit: int) -> RequestError:
    """The 413 answer to a body over ``limit`` bytes."""
    return RequestError(413, f"the upload is larger than this server accepts ({limit / 2**20:g} MiB)")
