"""One ``mlfer serve`` process for all of tests/serve (serving.py starts it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving import Server, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server, shared by every test of the session; stopped at the end."""
    process, running = start_server(tmp_path_factory.mktemp("serve") / "server.log")
    try:
        yield running
    finally:
        stop_server(process)
