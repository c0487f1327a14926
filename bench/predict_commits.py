"""Benchmark: ``mlfer predict`` with the packaged model, this checkout against an earlier one, run
alternately on the same folder of real photos, end to end and stage by stage, with their answers
compared.

End to end: ``python -m mlfer predict FOLDER --out T.csv`` in a fresh process (start-up, JPEG
decoding, detection, alignment, classification and writing the table), each checkout's own code
(``PYTHONPATH=SRC``), ``--rounds`` times each, alternately, after one warm-up run each (which
also makes the ONNX export of this checkout's engine, kept in the cache; its cost is printed).
Faces per second is the faces of the table over the median wall time.

Stage by stage: each checkout's library in a child process times reading the photos
(``read_image``), detection (``FaceDetector.detect``), alignment (``align_face`` onto the model's
template) and classification (``Recognizer.classify`` at batch 32: preprocessing, the network,
sigmoid), each over all photos, and, with ``--ferplus DIR``, the average precision of
``Recognizer.classify`` on FER+ PublicTest's labelled faces (the rows ``mlfer evaluate`` reads).

Answers: the two tables' rows are matched by input and face; the share of faces whose top
expression is the same and the mean absolute change of the six probabilities.

    git worktree add /tmp/before 63a2bd3
    python bench/predict_commits.py --before /tmp/before/src --ferplus ../shared/data/ferplus --write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchdoc import ROOT, machine, write_section
from mlfer.core.expressions import EXPRESSIONS
from predict import DATA, PHOTOS, photo_variants

#: What the issue asks of the new checkout against the old one.
TARGET_SPEEDUP, TARGET_SAME_TOP, TARGET_MEAN_CHANGE, TARGET_AP = 1.8, 0.97, 0.01, 0.002

#: Run by each checkout's interpreter: argv = photos folder, ferplus spec or "", output JSON.
STAGES = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import mlfer
from mlfer.data.images import read_image
from mlfer.faces import FaceDetector, align_face
from mlfer.inference.recognizer import Recognizer

folder, ferplus, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
model = mlfer.load()
recognizer = Recognizer(model)
template = model.preprocessing.template
size = model.preprocessing.image_size
paths = sorted(folder.glob("*.jpg"))
timing = {}
start = time.perf_counter()
photos = [np.asarray(read_image(path)) for path in paths]
timing["read"] = time.perf_counter() - start
with FaceDetector() as detector:
    detector.detect(photos[0])
    start = time.perf_counter()
    faces = [detector.detect(photo) for photo in photos]
    timing["detect"] = time.perf_counter() - start
start = time.perf_counter()
aligned = [align_face(photo, face, size, template) for photo, found in zip(photos, faces) for face in found]
timing["align"] = time.perf_counter() - start
recognizer.classify(aligned[:32])
start = time.perf_counter()
recognizer.classify(aligned)
timing["classify"] = time.perf_counter() - start
result = {"faces": len(aligned), "seconds": timing, "module": mlfer.__file__}
if ferplus:
    from mlfer.data import load_dataset
    from mlfer.evaluation.metrics import compute_metrics
    data = load_dataset(ferplus)
    rows = np.flatnonzero(np.asarray(data.split) == "test")
    labels = np.asarray(data.labels)[rows]
    if data.paths is not None:
        images = [np.asarray(read_image(data.paths[row]).convert("RGB")) for row in rows]
    else:
        grey = data.images[rows]
        images = list(np.stack([grey] * 3, axis=-1) if grey.ndim == 3 else grey)
    scores = recognizer.classify(images)
    result["ap"] = compute_metrics(labels, scores)["average_precision"]
    result["ap_faces"] = int(labels.any(axis=1).sum())
Path(out).write_text(json.dumps(result))
"""


def run_predict(src: Path, folder: Path, out: Path) -> float:
    """Seconds of ``mlfer predict FOLDER`` in a fresh process with the code of ``src``."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    environment.pop("MLFER_ENGINE", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlfer", "predict", str(folder), "--out", str(out)],
        env=environment,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"mlfer predict ({src}) failed:\n{done.stderr[-3000:]}")
    return seconds


def run_stages(src: Path, folder: Path, ferplus: str, out: Path) -> dict:
    """The stage timings (and PublicTest AP) of the library in ``src``."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    environment.pop("MLFER_ENGINE", None)
    done = subprocess.run(
        [sys.executable, "-c", STAGES, str(folder), ferplus, str(out)], env=environment, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"stages ({src}) failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def faces_of(table: Path) -> pd.DataFrame:
    """The detected faces of a predict table, indexed by input and face."""
    frame = pd.read_csv(table, keep_default_na=False)
    return frame[frame["face_detected"].astype(str) == "True"].set_index(["input", "face_id"])


def compare(before: Path, after: Path) -> dict[str, float]:
    """Faces in each table, faces in both, same top expression, mean and largest probability change."""
    old, new = faces_of(before), faces_of(after)
    both = old.index.intersection(new.index)
    a = old.loc[both, list(EXPRESSIONS)].to_numpy(float)
    b = new.loc[both, list(EXPRESSIONS)].to_numpy(float)
    return {
        "before": len(old),
        "after": len(new),
        "both": len(both),
        "same_top": float((a.argmax(axis=1) == b.argmax(axis=1)).mean()),
        "mean_change": float(np.abs(a - b).mean()),
        "max_change": float(np.abs(a - b).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, metavar="SRC", help="the earlier checkout's src/")
    parser.add_argument("--photos", type=int, default=300, help="photos in the folder (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each checkout (default 3)")
    parser.add_argument("--ferplus", metavar="DIR", help="FER+ folder: PublicTest AP of each checkout")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared faces folder")
    parser.add_argument("--write", action="store_true", help="write the section to docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every target is met")
    parser.add_argument("--smoke", action="store_true", help="6 photos, one round: that the script runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.photos, args.rounds = 6, 1
    checkouts = {"before": args.before.resolve(), "this": ROOT / "src"}
    ferplus = f"ferplus:{args.ferplus}?test=valid" if args.ferplus else ""
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        photos = [Image.open(args.data / name).convert("RGB") for name in PHOTOS]
        folder = work / "photos"
        photo_variants(photos, folder, args.photos)
        first = {name: run_predict(src, folder, work / f"{name}-warm.csv") for name, src in checkouts.items()}
        print("warm-up runs (this one makes its ONNX export if the cache lacks it):", first, flush=True)
        seconds: dict[str, list[float]] = {name: [] for name in checkouts}
        for round_number in range(args.rounds):
            for name, src in checkouts.items():
                seconds[name].append(run_predict(src, folder, work / f"{name}.csv"))
            print(f"round {round_number + 1}:", {name: round(times[-1], 2) for name, times in seconds.items()})
        answers = compare(work / "before.csv", work / "this.csv")
        stages = {name: run_stages(src, folder, ferplus, work / f"{name}.json") for name, src in checkouts.items()}
    body, passed = report(args, seconds, answers, stages)
    print(body)
    if args.write and not args.smoke:
        write_section("Prediction, this checkout against an earlier one", body)
    return 1 if args.check and not passed else 0


def report(
    args: argparse.Namespace, seconds: dict[str, list[float]], answers: dict[str, float], stages: dict[str, dict]
) -> tuple[str, bool]:
    """The section's tables and verdict."""
    faces = answers["after"]
    rate = {name: faces / statistics.median(times) for name, times in seconds.items()}
    speedup = rate["this"] / rate["before"]
    lines = [
        f"`mlfer predict` on {args.photos} photos ({faces} faces; copies of the five photos of "
        "`../shared/data/faces`, randomly cropped and brightened, JPEG), packaged model, default settings, "
        f"each checkout {args.rounds} times, alternately, after a warm-up run each:",
        "",
        "| checkout | wall seconds (median; each run) | faces/s |",
        "|---|---:|---:|",
    ]
    for name, times in seconds.items():
        runs = ", ".join(f"{value:.1f}" for value in times)
        lines.append(f"| {name} | {statistics.median(times):.1f} ({runs}) | {rate[name]:.1f} |")
    lines += [
        "",
        f"**Speed-up: {speedup:.2f}x** (target {TARGET_SPEEDUP}x).",
        "",
        "Stage by stage, ms per face, each checkout's library in one process (reading all photos, then detecting, "
        "aligning and classifying all faces at batch 32):",
        "",
        "| stage | before | this | before / this |",
        "|---|---:|---:|---:|",
    ]
    for stage in ("read", "detect", "align", "classify"):
        before, this = (1000 * stages[name]["seconds"][stage] / stages[name]["faces"] for name in ("before", "this"))
        lines.append(f"| {stage} | {before:.2f} | {this:.2f} | {before / this:.2f} |")
    same = answers["same_top"] >= TARGET_SAME_TOP and answers["mean_change"] <= TARGET_MEAN_CHANGE
    lines += [
        "",
        "Stages are timed one after the other: this checkout classifies in onnxruntime with all cores but one "
        "(here one thread), since in `mlfer predict` detection and decoding run beside it in threads of their own "
        "and its faces wait on detection; its start-up imports no torch (the export is cached).",
        "",
        f"Answers: {answers['before']} faces before, {answers['after']} now, {answers['both']} in both; the top "
        f"expression is the same on **{answers['same_top']:.1%}** of them (target {TARGET_SAME_TOP:.0%}), the mean "
        f"absolute change of a probability is **{answers['mean_change']:.4f}** (target {TARGET_MEAN_CHANGE}), "
        f"the largest {answers['max_change']:.4f}.",
    ]
    passed = speedup >= TARGET_SPEEDUP and same and answers["before"] == answers["after"]
    if "ap" in stages["this"]:
        gap = abs(stages["this"]["ap"] - stages["before"]["ap"])
        lines.append(
            f"FER+ PublicTest average precision through `Recognizer.classify` ({stages['this']['ap_faces']} labelled "
            f"faces): before {stages['before']['ap']:.4f}, this {stages['this']['ap']:.4f} (difference {gap:.4f}, "
            f"target at most {TARGET_AP})."
        )
        passed = passed and gap <= TARGET_AP
    lines += ["", f"Verdict: {'passes' if passed else 'FAILS'}."]
    return "\n".join(lines), passed


if __name__ == "__main__":
    sys.exit(main())
