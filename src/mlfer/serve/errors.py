"""Errors answered as JSON: ``{"error": message}`` with an HTTP status (and, for some, more keys)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and a message for the user.

    Args:
        status: the HTTP status (4xx, or 503 when the server is full).
        message: what is wrong and, where possible, how to fix it.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
        extra: more keys for the JSON body (the per-file errors of an upload).
    """

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return JSONResponse({"error": self.message, **self.extra}, status_code=self.status, headers=self.headers)
