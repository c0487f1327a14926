"""bench/serve.py's smoke version, against the tests' server, so that the benchmark cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from serving import Server

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_bench_serve_smoke(
    server: Server, shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH / "serve.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_serve", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    arguments = ["--smoke", "--data", str(shared_data / "faces"), "--url", server.url, "--pid", str(server.pid)]
    assert bench.main([*arguments, "--token", server.token]) in (0, 1)  # a shared machine may miss the targets
    output = capsys.readouterr().out
    for clients in bench.SMOKE.clients:
        assert f"\n| {clients} | {bench.SMOKE.requests} | " in output
    assert "200: " in output and "mlfer predict's pipeline: " in output
    assert "ratio **" in output and "MiB after 6 requests" in output
