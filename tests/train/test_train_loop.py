"""The training loop's one process setting: importing the loop changes nothing, the training
commands turn PyTorch's huge-page allocations on before they load anything."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from mlfer.cli import main
from mlfer.train import loop
from mlfer.train.loop import enable_huge_pages

VARIABLE = "THP_MEM_ALLOC_ENABLE"


def test_importing_the_loop_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's body, run afresh (as a copy beside the imported one), sets nothing."""
    monkeypatch.delenv(VARIABLE, raising=False)
    spec = importlib.util.spec_from_file_location("loop_copy", loop.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # its dataclasses look themselves up there
    spec.loader.exec_module(copy)
    assert VARIABLE not in os.environ


def test_huge_pages_are_enabled_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    enable_huge_pages()
    assert os.environ[VARIABLE] == "1"
    monkeypatch.setenv(VARIABLE, "0")
    enable_huge_pages()
    assert os.environ[VARIABLE] == "0"


@pytest.mark.parametrize(
    "command", [["train", "--model", "baseline"], ["ablate"], ["pretrain-backbone"]], ids=lambda c: c[0]
)
def test_training_commands_enable_huge_pages_before_reading_the_data(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert main([*command, "--dataset", "no-such-kind:x", "--out", str(tmp_path / "out")]) == 2
    assert os.environ.get(VARIABLE) == "1"
