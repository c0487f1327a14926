"""Progress: a tqdm bar on a terminal, one line per outermost loop anywhere else."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

from mlfer.runtime.progress import show_progress


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_outermost_loop_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    seen = []
    for epoch in show_progress(range(1, 4), "split-seed0", initial=0, unit="epoch"):
        for batch in show_progress(range(5), "batches", unit="batch", leave=False):
            seen.append((epoch, batch))
    for _ in show_progress(iter(range(2)), "features", unit="batch"):  # no len(): a count without total
        pass
    assert len(seen) == 15
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "\r" not in "".join(lines)
    assert lines[0].startswith("split-seed0: 3/3 epochs in ") and lines[0].endswith(" s")
    assert lines[1].startswith("features: 2 batches in ")


def test_a_resumed_loop_counts_from_where_it_was(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(show_progress(range(8, 11), "run", initial=7, unit="epoch")) == [8, 9, 10]
    assert capsys.readouterr().err.startswith("run: 10/10 epochs in ")


def test_a_loop_left_early_prints_nothing_and_does_not_nest_the_next(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in show_progress(range(5), "stopped"):
        break
    list(show_progress(range(2), "next", unit="image"))
    assert [line.split(" in ")[0] for line in capsys.readouterr().err.splitlines()] == ["next: 2/2 images"]


def test_on_a_terminal_it_is_a_tqdm_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", Terminal())
    bar = show_progress(range(3), "batches", unit="batch", leave=False)
    assert isinstance(bar, tqdm) and bar.total == 3 and bar.desc == "batches"
    assert list(bar) == [0, 1, 2]


def test_disabled_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    items = range(3)
    assert show_progress(items, "quiet", disable=True) is items
    assert capsys.readouterr().err == ""
