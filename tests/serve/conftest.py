"""One ``mlfer serve`` process for all of tests/serve (its settings in serving.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving import ARGUMENTS, TOKEN, Server

from mlfer.serve.client import launch, stop


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server, shared by every test of the session; the token comes from the environment."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, url = launch(ARGUMENTS, log, TOKEN)
    try:
        yield Server(url, TOKEN, process.pid, log)
    finally:
        stop(process)
