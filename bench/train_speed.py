"""Benchmark: the FER+ recipe's end-to-end training step (docs/reproduce.md, step 3) on a subset,
this checkout against an earlier one, with each checkout's recipe, alternately in one session.

A FER+ folder is made of ``--faces`` random Training faces and ``--test`` PublicTest faces (links to
the shared images, ``fer2013new.csv`` cut to them). Each run is ``mlfer train`` in a fresh
process with its checkout's code (``PYTHONPATH=SRC``) for one epoch, timed end to end, and its
PublicTest metrics are read from ``metrics.json``; ``--seeds`` runs per setting give the seed
noise the metrics are compared against.

    git worktree add /tmp/before 63a2bd3
    python bench/train_speed.py --before /tmp/before/src --ferplus ../shared/data/ferplus --write
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchdoc import ROOT, machine, write_section

#: The recipe of docs/reproduce.md step 3 (svml-rgcn end to end from the random trunk: no
#: pre-trained weights are needed for a timing), one epoch.
RECIPE = [
    "model.backbone=resnet18",
    "model.stem=small",
    "model.in_channels=1",
    "train.image_size=48",
    "train.batch_size=64",
    "train.channels_last=true",
    "model.mfb_o=256",
    "model.graph_widths=256,512",
    "train.rotate=10",
    "train.rescale=0.1",
    "train.shift=0.05",
    "train.mode=finetune",
    "train.epochs=1",
    "train.lr_head=1e-3",
    "train.lr_backbone=1e-4",
]
#: What this checkout's recipe adds (docs/reproduce.md): bfloat16 autocast where the CPU computes it natively.
THIS_RECIPE = ["train.amp=auto"]
TARGET = 0.7


def subset(ferplus: Path, folder: Path, faces: int, test: int, seed: int = 0) -> Path:
    """A FER+ folder of ``faces`` Training and ``test`` PublicTest rows of ``ferplus``."""
    with (ferplus / "fer2013new.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    rng = np.random.default_rng(seed)
    chosen = []
    for usage, count in (("Training", faces), ("PublicTest", test)):
        named = [row for row in body if row[0] == usage and row[1]]
        chosen += [named[index] for index in sorted(rng.choice(len(named), count, replace=False))]
    for usage, source in (("Training", "FER2013Train"), ("PublicTest", "FER2013Valid")):
        (folder / source).mkdir(parents=True)
        for row in chosen:
            if row[0] == usage:
                os.symlink(ferplus / source / row[1], folder / source / row[1])
    with (folder / "fer2013new.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *chosen])
    return folder


def train(src: Path, data: Path, out: Path, settings: list[str], seed: int) -> tuple[float, dict[str, float]]:
    """Seconds of one ``mlfer train`` run with the code of ``src``, and its PublicTest metrics."""
    command = [sys.executable, "-m", "mlfer", "train", "--dataset", f"ferplus:{data}?test=valid"]
    command += ["--model", "svml-rgcn", "--quiet", "--out", str(out)]
    for item in [*settings, f"train.seed={seed}"]:
        command += ["--set", item]
    environment = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"mlfer train ({src}) failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())["mean"]
    return seconds, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, metavar="SRC", help="the earlier checkout's src/")
    parser.add_argument("--ferplus", type=Path, required=True, metavar="DIR", help="the FER+ folder")
    parser.add_argument("--faces", type=int, default=4000, help="Training faces (default 4000)")
    parser.add_argument("--test", type=int, default=1000, help="PublicTest faces evaluated (default 1000)")
    parser.add_argument("--seeds", type=int, default=2, help="runs per checkout (default 2)")
    parser.add_argument("--write", action="store_true", help="write the section to docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the wall-time target is met")
    parser.add_argument("--smoke", action="store_true", help="64 faces, one seed: that the script runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.faces, args.test, args.seeds = 64, 32, 1
    print(machine(), flush=True)
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {"before": [], "this": []}
    settings = {"before": RECIPE, "this": [*RECIPE, *THIS_RECIPE]}
    sources = {"before": args.before.resolve(), "this": ROOT / "src"}
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        data = subset(args.ferplus.resolve(), work / "ferplus", args.faces, args.test)
        for seed in range(args.seeds):
            for name in ("before", "this"):
                runs[name].append(train(sources[name], data, work / f"{name}-{seed}", settings[name], seed))
                print(name, seed, f"{runs[name][-1][0]:.1f} s", round(runs[name][-1][1]["average_precision"], 4))
    body, passed = report(args, runs)
    print(body)
    if args.write and not args.smoke:
        write_section("Training, this checkout against an earlier one", body)
    return 1 if args.check and not passed else 0


def report(args: argparse.Namespace, runs: dict[str, list[tuple[float, dict[str, float]]]]) -> tuple[str, bool]:
    """The section (seconds and PublicTest AP / macro-AUC per run, the ratio, the verdict) and
    whether the target is met."""
    median = {name: statistics.median(seconds for seconds, _ in results) for name, results in runs.items()}
    ratio = median["this"] / median["before"]
    lines = [
        f"`mlfer train` of the FER+ recipe (docs/reproduce.md step 3, svml-rgcn end to end, reframed faces) for "
        f"one epoch of {args.faces:,} random Training faces, evaluated on {args.test:,} PublicTest faces, in a fresh "
        f"process per run, the checkouts alternately, seeds 0-{args.seeds - 1}. This checkout's recipe adds "
        f"`{' '.join(THIS_RECIPE)}`.",
        "",
        "| checkout | seed | seconds | PublicTest AP | macro-AUC |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, results in runs.items():
        for seed, (seconds, metrics) in enumerate(results):
            lines.append(
                f"| {name} | {seed} | {seconds:.1f} | {metrics['average_precision']:.4f} | {metrics['macro_auc']:.4f} |"
            )
    lines += [
        "",
        f"Wall time, this / before (medians): **{ratio:.2f}** (target at most {TARGET}): "
        f"{'passes' if ratio <= TARGET else 'FAILS'}.",
    ]
    return "\n".join(lines), ratio <= TARGET


if __name__ == "__main__":
    sys.exit(main())
