"""Running the application with uvicorn: one process, or several sharing one listening socket."""

from __future__ import annotations

import os
import socket
import sys

import uvicorn

from mlfer.core.errors import MlferError
from mlfer.serve.settings import SETTINGS_VARIABLE, ServeSettings

#: Hosts that only this machine reaches.
LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Seconds given to requests in flight when the server is stopped.
GRACE_S = 5


def serve(settings: ServeSettings) -> None:
    """Listen on ``settings.host:port``, load the model, print the address, and serve until stopped.

    With several processes, uvicorn binds the port and starts them, each loading the model from
    the settings left in :data:`SETTINGS_VARIABLE` (and prints the address itself).

    Raises:
        MlferError: when the address cannot be bound.
    """
    if settings.token is None and settings.host not in LOOPBACK:
        print(
            f"mlfer serve: warning: listening on {settings.host} without a token: anyone who reaches it may use it",
            file=sys.stderr,
        )
    if settings.processes > 1:
        os.environ[SETTINGS_VARIABLE] = settings.to_json()
        uvicorn.run(
            "mlfer.serve.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.processes,
            log_level=settings.log_level,
            timeout_graceful_shutdown=GRACE_S,
        )
        return
    from mlfer.serve.app import create_app

    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level, timeout_graceful_shutdown=GRACE_S)
    print(f"mlfer serve: http://{_url_host(host)}:{port}/", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise MlferError(f"cannot listen on {host}:{port} ({error.strerror or error})", field="--port") from error
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
