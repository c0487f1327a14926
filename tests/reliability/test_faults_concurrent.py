"""Concurrent runs on one folder: two ``mlfer train --resume`` started at random moments of
each other, and runs started while the holder of the folder is killed.

Allowed for each run: it finishes (exit 0), or it is refused at once with exit status 2 and
"in use by process N" while the other holds the folder. A killed run's lock never blocks the
next. After each pair a last ``--resume`` finishes, and its metrics equal those of an
uninterrupted run.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from builders import SMALL, write_features
from faults import CLEAR_ERROR, CRASH, RESULT, Command, Run, check_outputs, kills, record, run_cli

TARGET = "concurrent runs"
EPOCHS = 30


def train_args(npz: Path, out: Path) -> list[str]:
    args = ["train", "--dataset", f"features:{npz}", "--model", "svml-rgcn", "--deterministic", "--quiet"]
    for item in [*SMALL, f"train.epochs={EPOCHS}"]:
        args += ["--set", item]
    return [*args, "--out", str(out), "--resume"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    """The features, the metrics of an uninterrupted run and its duration (of a second run: the
    first starts the fork server)."""
    folder = tmp_path_factory.mktemp("reference")
    npz = write_features(folder / "features.npz")
    for name in ("warm-up", "out"):
        run = run_cli(train_args(npz, folder / name), folder / "scratch")
        run.check_finished()
    return npz, json.loads((folder / "out" / "metrics.json").read_text()), run.seconds


def _check(run: Run) -> str:
    """Record one run of a pair: finished, or refused because the folder was in use."""
    if run.exit_code == 0:
        record(TARGET, RESULT)
        return "finished"
    line = run.error_line()
    if run.exit_code == 2 and "in use by process" in line:
        record(TARGET, CLEAR_ERROR, f"whole file: {line}")
        return "refused"
    record(TARGET, CRASH, line or run.stderr[-300:])
    pytest.fail(f"mlfer {' '.join(run.argv)} ended with {run.exit_code}:\n{run.stderr[-3000:]}")


def _in_parallel(first: list[str], second: list[str], delay: float, scratch: Path) -> tuple[Run, Run]:
    """Start ``first``, then ``second`` ``delay`` seconds later; both runs once they end."""
    runs: dict[str, Run] = {}
    thread = threading.Thread(target=lambda: runs.setdefault("first", run_cli(first, scratch / "first")))
    thread.start()
    thread.join(delay)
    runs["second"] = run_cli(second, scratch / "second")
    thread.join()
    return runs["first"], runs["second"]


def test_two_resumes_at_random_moments(reference, tmp_path) -> None:
    npz, metrics, seconds = reference
    generator = random.Random(5)
    outcomes, pairs = [], kills(6)
    for number in range(pairs):
        out = tmp_path / f"out{number}"
        args = train_args(npz, out)
        delay = seconds * 1.2 * generator.uniform(number, number + 1) / pairs  # one in each slice of the run
        first, second = _in_parallel(args, args, delay, tmp_path / "scratch")
        outcomes.append((_check(first), _check(second)))
        assert "finished" in outcomes[-1], outcomes[-1]
        assert not check_outputs(out).broken
        run_cli(args, tmp_path / "scratch").check_finished()  # a last resume finishes the work
        assert json.loads((out / "metrics.json").read_text()) == metrics
    assert ("finished", "refused") in outcomes, f"no run was refused: {outcomes}"


def test_a_killed_holder_does_not_block_the_next_run(reference, tmp_path) -> None:
    npz, metrics, seconds = reference
    generator = random.Random(6)
    for number in range(kills(4)):
        out = tmp_path / f"out{number}"
        args = train_args(npz, out)
        killed = run_cli(args, tmp_path / "scratch", kill_after=seconds * generator.uniform(0.2, 0.9))
        Command(TARGET, args, args, [out]).check("a kill")
        assert killed.killed or killed.exit_code == 0
        after = run_cli(args, tmp_path / "scratch")
        assert _check(after) == "finished"
        assert json.loads((out / "metrics.json").read_text()) == metrics
