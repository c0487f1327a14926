"""Benchmark: start-up of ``mlfer --help`` and ``mlfer graph``, this checkout against an older one.

Each command runs as a fresh ``python -c`` process calling ``mlfer.cli.main`` with ``PYTHONPATH``
set to the ``src`` folder measured, so two trees run with the same interpreter and packages.
Runs alternate between the trees and commands, so that a change in the machine's load reaches
both alike; the table gives the median wall time and the median CPU time (user + system, from
``getrusage`` of the finished child) of each. ``mlfer graph`` reads 200 generated rows of labels (``.npy``) and
writes ``graph.json`` and ``graph.png``. A last run of each records which of torch,
torchvision, MediaPipe and OpenCV the command imported.

Before the restructure (#13), ``mlfer.cli`` imported every command module, and those imported
torch at the top::

    git worktree add /tmp/old-cli f4b7424
    python bench/startup.py --before /tmp/old-cli/src --write
    git worktree remove /tmp/old-cli

``--smoke`` times this checkout once, without writing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchdoc import ROOT, write_section

#: Modules the light commands must not import.
HEAVY = ("torch", "torchvision", "mediapipe", "cv2")
#: ``mlfer.cli.main`` on the arguments; with ``--probe`` first, it prints the heavy modules it loaded.
RUNNER = f"""
import json, sys
probe = sys.argv[1] == "--probe"
from mlfer.cli import main
try:
    main(sys.argv[2 if probe else 1:])
except SystemExit:
    pass
if probe:
    print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))
"""


def run_once(src: Path, argv: list[str], probe: bool = False) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one command run on the tree ``src``."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-c", RUNNER, *(["--probe"] if probe else []), *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} on {src} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def commands(folder: Path) -> dict[str, list[str]]:
    """The commands timed, with a generated label file in ``folder``."""
    labels = folder / "labels.npy"
    rows = (np.random.default_rng(0).random((200, 6)) < 0.3).astype(np.int64)
    rows[0] = 1  # every label occurs
    np.save(labels, rows)
    graph = ["graph", "--labels", str(labels), "--t1", "0.15", "--t2", "0.4", "--out", str(folder / "graph")]
    return {"mlfer --help": ["--help"], "mlfer graph": graph}


@dataclass
class Timing:
    """Median seconds of one command on one tree, and the heavy modules it imported."""

    tree: str
    command: str
    wall: float
    cpu: float
    heavy: list[str]


def measure(trees: dict[str, Path], runs: int) -> list[Timing]:
    """One timing per tree and command, over ``runs`` alternating runs."""
    with tempfile.TemporaryDirectory() as folder:
        timed = commands(Path(folder))
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(runs):
            for tree, src in trees.items():
                for name, argv in timed.items():
                    wall, cpu, _ = run_once(src, argv)
                    samples.setdefault((tree, name), []).append((wall, cpu))
        timings = []
        for (tree, name), times in samples.items():
            *_, imported = run_once(trees[tree], timed[name], probe=True)[2].strip().splitlines()
            wall = statistics.median(wall for wall, _ in times)
            cpu = statistics.median(cpu for _, cpu in times)
            timings.append(Timing(tree, name, wall, cpu, json.loads(imported)))
    return timings


def table(timings: list[Timing], runs: int) -> str:
    """The timings as a markdown table, each command's trees side by side."""
    lines = [f"| command | tree | median wall s ({runs} runs) | median CPU s | imports |", "|---|---|---|---|---|"]
    for timing in sorted(timings, key=lambda timing: (timing.command, timing.tree != "before")):
        heavy = ", ".join(timing.heavy) or "none of " + ", ".join(HEAVY)
        lines.append(f"| {timing.command} | {timing.tree} | {timing.wall:.2f} | {timing.cpu:.2f} | {heavy} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time the commands, print the table and, with ``--write``, put it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, metavar="SRC", help="the src folder of the older checkout")
    parser.add_argument("--runs", type=int, default=10, help="runs of each command on each tree (default 10)")
    parser.add_argument("--smoke", action="store_true", help="this checkout, one run, no writing")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    trees = {"after": ROOT / "src"}
    if args.before is not None and not args.smoke:
        trees = {"before": args.before, **trees}
    runs = 1 if args.smoke else args.runs
    output = table(measure(trees, runs), runs)
    print(output)
    if args.write and not args.smoke:
        intro = (
            "Start-up of the light commands: each a fresh `python -c` process calling `mlfer.cli.main`, "
            "the trees' runs alternating (see `bench/startup.py`). *before*: "
            f"`{args.before}` (commit f4b7424, before the restructure); *after*: this checkout."
        )
        write_section("Start-up", f"{intro}\n\n{output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
