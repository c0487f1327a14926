"""Shared fixtures: the real data in ../shared/data, skipped with a reason where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlfer.train.loop import enable_huge_pages

# The suite trains in-process, as the training commands do: huge pages before the first tensor.
enable_huge_pages()
# Most tests classify with small models of their own, each of which onnxruntime would first need
# exported (seconds each): they run in PyTorch, and tests/inference/test_engine.py checks that
# onnxruntime, what users get on the CPU, gives the same probabilities.
os.environ["MLFER_ENGINE"] = "torch"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data beside the project (see ../shared/data/README.md)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it lies beside the project checkout)")
    return SHARED_DATA
