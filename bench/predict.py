"""Benchmark: ``mlfer predict`` on the CPU, stage by stage, and its peak memory.

Speed: the Recognizer's three stages timed apart on real photos (the four labelled ones of
``../shared/data/faces`` and ``multi_face.jpg``, repeated): MediaPipe detection (both
models, :class:`mlfer.faces.FaceDetector`), alignment (:func:`mlfer.faces.align_face`) and
classification (:meth:`mlfer.inference.recognizer.Recognizer.classify`: resize, normalise, forward,
sigmoid) at batch sizes 1, 8, 32 and 64, for ResNet50 and ResNet18 svml-rgcn models at
224 x 224 with random weights (timing does not depend on them), in PyTorch; then the same
classification stage under onnxruntime (``Recognizer(engine="onnx")``, the CPU's default: the
model's ONNX export, :mod:`mlfer.inference.engine`), as a ratio to PyTorch at the same batch size.

Memory: ``mlfer predict`` run as a child process over 200 and over 2,000 generated photos
(copies of the same photos, randomly cropped and brightened, saved as JPEG), its peak
resident set size read by a fresh helper process with ``os.wait4`` (``ru_maxrss``). The output must
stay under 2 GiB and within 10% of the 200-image peak: rows are written as they come.

Run ``python bench/predict.py --write`` for docs/benchmarks.md (section "Prediction");
``--smoke`` runs a tiny version in seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike
from PIL import Image, ImageEnhance

from benchdoc import ROOT, machine, write_section
from mlfer.core.config import ModelConfig, RunConfig, TrainConfig
from mlfer.data.images import read_image
from mlfer.faces import FaceDetector, align_face
from mlfer.inference.recognizer import Recognizer
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.model import MultiLabelModel, build_model

#: The photos of ``../shared/data/faces`` timed: four labelled single faces and five people.
PHOTOS: tuple[str, ...] = (
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "multi_face.jpg",
)
DATA = ROOT.parent / "shared" / "data" / "faces"
#: Peak memory allowed for ``mlfer predict``, and its allowed growth from the small to the large input.
MEMORY_LIMIT = 2 * 1024**3
GROWTH_LIMIT = 1.10


@dataclass(frozen=True)
class Sizes:
    """What one run measures.

    Args:
        backbones: the trunks timed (ResNet50 is the paper's).
        image_size: side of the aligned faces.
        mfb_k, mfb_o: the head's MFB sizes (RAF-ML's 4 and 1024 in the full run).
        batch_sizes: classification batch sizes tried.
        faces: aligned faces classified per batch size.
        repeats: passes over the photos for detection and alignment.
        memory_images: (small, large) photo counts of the memory runs.
    """

    backbones: tuple[str, ...] = ("resnet50", "resnet18")
    image_size: int = 224
    mfb_k: int = 4
    mfb_o: int = 1024
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64)
    faces: int = 64
    repeats: int = 3
    memory_images: tuple[int, int] = (200, 2000)


SMOKE = Sizes(
    backbones=("resnet18",),
    image_size=64,
    mfb_k=2,
    mfb_o=64,
    batch_sizes=(1, 4),
    faces=8,
    repeats=1,
    memory_images=(2, 4),
)


def make_checkpoint(directory: Path, backbone: str, sizes: Sizes, seed: int = 0) -> tuple[Path, MultiLabelModel]:
    """Save a randomly initialised svml-rgcn model (random relations, word vectors and prototypes)."""
    torch.manual_seed(seed)
    config = ModelConfig(backbone=backbone, head="svml-rgcn", mfb_k=sizes.mfb_k, mfb_o=sizes.mfb_o)
    relations = (torch.rand(2, 6, 6) > 0.5).float()
    model = build_model(config, relations, torch.randn(6, config.word_dim), torch.randn(6, config.out_features))
    save_model(model, RunConfig(model=config, train=TrainConfig(image_size=sizes.image_size)), directory)
    return directory, model.eval()


@dataclass
class Stages:
    """Detection and alignment seconds over ``images`` photos holding ``faces`` faces, and the aligned faces."""

    images: int
    faces: int
    detect_seconds: float
    align_seconds: float
    aligned: list[np.ndarray]


def detect_and_align(
    detector: FaceDetector, photos: list[np.ndarray], size: int, repeats: int, template: ArrayLike | None = None
) -> Stages:
    """Time :meth:`FaceDetector.detect` and :func:`align_face` (onto ``template``, default
    mlfer's) apart over ``repeats`` passes of ``photos``."""
    detector.detect(photos[0])  # warm-up: MediaPipe builds its graphs on first use
    stages = Stages(0, 0, 0.0, 0.0, [])
    for _ in range(repeats):
        for photo in photos:
            start = time.perf_counter()
            faces = detector.detect(photo)
            middle = time.perf_counter()
            aligned = [align_face(photo, face, size, template) for face in faces]
            stages.detect_seconds += middle - start
            stages.align_seconds += time.perf_counter() - middle
            stages.images += 1
            stages.faces += len(faces)
            stages.aligned += aligned
    return stages


def tiled(faces: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` faces, taking ``faces`` in turn."""
    return [faces[index % len(faces)] for index in range(count)]


def classify_seconds(recognizer: Recognizer, faces: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Seconds of :meth:`Recognizer.classify` (the library's own path: preprocessing, the engine,
    sigmoid) over ``faces``, after a one-batch warm-up, and its output."""
    recognizer.classify(faces[: recognizer.batch_size])
    start = time.perf_counter()
    probabilities = recognizer.classify(faces)
    return time.perf_counter() - start, probabilities


def speed_tables(sizes: Sizes, photos: list[np.ndarray], detector: FaceDetector, folder: Path) -> tuple[str, str]:
    """The per-stage table (ms per face, faces/s) and the onnxruntime-against-PyTorch table."""
    stages = detect_and_align(detector, photos, sizes.image_size, sizes.repeats)
    if not stages.faces:
        raise SystemExit("no face found in the photos")
    detect_ms, align_ms = 1000 * stages.detect_seconds / stages.faces, 1000 * stages.align_seconds / stages.faces
    faces = tiled(stages.aligned, sizes.faces)
    seen = f"{stages.images} photos, {stages.faces} faces"
    lines = [
        "| Stage | Setting | ms per face | Faces/s |",
        "|---|---|---:|---:|",
        f"| detection | MediaPipe short + full range, {seen} | {detect_ms:.1f} | {1000 / detect_ms:.1f} |",
        f"| alignment | eyes + mouth to {sizes.image_size} x {sizes.image_size}, {seen} | {align_ms:.2f} | "
        f"{1000 / align_ms:.0f} |",
    ]
    onnx_lines = [
        "| Model | Batch | PyTorch faces/s | onnxruntime faces/s | onnxruntime / PyTorch | max abs difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backbone in sizes.backbones:
        _, model = make_checkpoint(folder / backbone, backbone, sizes)
        best = (float("inf"), 0, np.zeros(0))
        for batch in sizes.batch_sizes:
            recognizer = Recognizer(model, detector, batch_size=batch, image_size=sizes.image_size, engine="torch")
            seconds, probabilities = classify_seconds(recognizer, faces)
            classify_ms = 1000 * seconds / len(faces)
            lines.append(
                f"| classification | {backbone} svml-rgcn, batch {batch}, {len(faces)} faces | {classify_ms:.1f} | "
                f"{1000 / classify_ms:.2f} |"
            )
            print(lines[-1], flush=True)
            best = min(best, (seconds, batch, probabilities), key=lambda item: item[0])
        seconds, batch, probabilities = best
        total_ms = detect_ms + align_ms + 1000 * seconds / len(faces)
        lines.append(
            f"| **predict** | {backbone}, best batch {batch}: detection + alignment + classification | "
            f"{total_ms:.1f} | {1000 / total_ms:.2f} |"
        )
        recognizer = Recognizer(model, detector, batch_size=batch, image_size=sizes.image_size, engine="onnx")
        onnx_time, onnx_probabilities = classify_seconds(recognizer, faces)
        difference = float(np.abs(onnx_probabilities - probabilities).max())
        onnx_lines.append(
            f"| {backbone} svml-rgcn | {batch} | {len(faces) / seconds:.2f} | {len(faces) / onnx_time:.2f} | "
            f"{seconds / onnx_time:.2f} | {difference:.1e} |"
        )
        print(onnx_lines[-1], flush=True)
    return "\n".join(lines), "\n".join(onnx_lines)


def shipped_speed(sizes: Sizes, photos: list[np.ndarray], detector: FaceDetector) -> tuple[str, float]:
    """The packaged model's stages (its 48 x 48 grey faces, aligned onto its template) and its
    best end-to-end rate in faces per second."""
    model = load_model()
    preprocessing = model.preprocessing
    stages = detect_and_align(detector, photos, preprocessing.image_size, sizes.repeats, preprocessing.template)
    detect_ms, align_ms = 1000 * stages.detect_seconds / stages.faces, 1000 * stages.align_seconds / stages.faces
    faces = tiled(stages.aligned, max(sizes.faces, 256))
    lines = [
        "| Stage | Setting | ms per face | Faces/s |",
        "|---|---|---:|---:|",
        f"| detection | MediaPipe short + full range, {stages.images} photos, {stages.faces} faces | "
        f"{detect_ms:.1f} | {1000 / detect_ms:.1f} |",
        f"| alignment | onto the model's template, 48 x 48 | {align_ms:.2f} | {1000 / align_ms:.0f} |",
    ]
    best_ms = float("inf")
    for batch in sizes.batch_sizes:
        seconds, _ = classify_seconds(Recognizer(model, detector, batch_size=batch), faces)
        classify_ms = 1000 * seconds / len(faces)
        best_ms = min(best_ms, classify_ms)
        lines.append(
            f"| classification | batch {batch}, {len(faces)} faces | {classify_ms:.2f} | {1000 / classify_ms:.0f} |"
        )
    total_ms = detect_ms + align_ms + best_ms
    lines.append(
        f"| **predict** | detection + alignment + classification (best batch) | {total_ms:.1f} | "
        f"{1000 / total_ms:.1f} |"
    )
    return "\n".join(lines), 1000 / total_ms


def photo_variants(photos: list[Image.Image], folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG copies of ``photos`` in turn, each cropped by up to 6% a side and brightened by 0.85-1.15."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        width, height = photo.size
        left, top, right, bottom = rng.uniform(0.0, 0.06, 4) * (width, height, width, height)
        crop = photo.crop((round(left), round(top), round(width - right), round(height - bottom)))
        path = folder / f"{index:05d}.jpg"
        ImageEnhance.Brightness(crop).enhance(rng.uniform(0.85, 1.15)).save(path, quality=90)
        paths.append(path)
    return paths


#: Run by a fresh interpreter: start the command in ``argv[2:]``, wait for it, write its ``ru_maxrss``
#: (KiB) to ``argv[1]``. Linux carries the high-water RSS of the process that forks across
#: ``exec``, so the child of this benchmark (which holds models) would report at least its
#: parent's RSS; the small helper keeps that floor low.
HELPER = """import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_memory(checkpoint: Path | None, folder: Path, out: Path) -> tuple[int, float, int]:
    """Run ``mlfer predict`` over ``folder`` (with ``checkpoint``, or the packaged model) from a
    fresh helper process: its peak RSS in bytes (``ru_maxrss``), its seconds, and the number of
    faces in its CSV."""
    model = [] if checkpoint is None else ["--checkpoint", str(checkpoint)]
    command = [sys.executable, "-m", "mlfer", "predict", *model, str(folder), "--out", str(out)]
    log, rss = out.with_suffix(".log"), out.with_suffix(".rss")
    start = time.perf_counter()
    with log.open("w") as handle:
        returncode = subprocess.run(
            [sys.executable, "-c", HELPER, str(rss), *command], stdout=handle, stderr=handle
        ).returncode
    seconds = time.perf_counter() - start
    if returncode:
        raise SystemExit(f"mlfer predict failed ({returncode}):\n{log.read_text()}")
    faces = sum(line.split(",")[3] == "True" for line in out.read_text().splitlines()[1:])
    return int(rss.read_text()) * 1024, seconds, faces


def memory_table(
    sizes: Sizes, photos: list[Image.Image], models: list[tuple[str, Path | None]], folder: Path
) -> tuple[str, bool]:
    """Peak memory of ``mlfer predict``: each of ``models`` (name, checkpoint) over the small input,
    the last also over the large one; it passes when every peak is under :data:`MEMORY_LIMIT`
    and the large peak is within :data:`GROWTH_LIMIT` of the small one."""
    small, large = sizes.memory_images
    paths = photo_variants(photos, folder / "large", large)
    (folder / "small").mkdir()
    for path in paths[:small]:
        os.link(path, folder / "small" / path.name)
    runs = [(name, checkpoint, "small", small) for name, checkpoint in models] + [(*models[-1], "large", large)]
    lines = ["| Model | Photos | Faces | Peak RSS (MiB) | Seconds | Photos/s |", "|---|---:|---:|---:|---:|---:|"]
    peaks = []
    for number, (name, checkpoint, inputs, count) in enumerate(runs):
        peak, seconds, faces = peak_memory(checkpoint, folder / inputs, folder / f"{number}.csv")
        peaks.append(peak)
        lines.append(f"| {name} | {count:,} | {faces:,} | {peak / 2**20:.0f} | {seconds:.0f} | {count / seconds:.2f} |")
        print(lines[-1], flush=True)
    ratio = peaks[-1] / peaks[-2]
    passed = max(peaks) < MEMORY_LIMIT and ratio <= GROWTH_LIMIT
    verdict = (
        f"{runs[-1][0]}: peak over {large:,} photos / peak over {small:,}: **{ratio:.3f}** (limit "
        f"{GROWTH_LIMIT:.2f}); largest peak {max(peaks) / 2**30:.2f} GiB (limit {MEMORY_LIMIT / 2**30:.0f} GiB): "
        f"{'passes' if passed else 'FAILS'}."
    )
    print(verdict)
    return "\n".join(lines) + "\n\n" + verdict, passed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its tables and, with ``--write``, put them in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="ResNet18 at 64 x 64 on a few faces, for the tests")
    parser.add_argument(
        "--data", type=Path, default=DATA, help="the shared faces folder (default ../shared/data/faces)"
    )
    parser.add_argument(
        "--memory-images",
        type=int,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="photos of the two memory runs (default 200 2000)",
    )
    parser.add_argument(
        "--light-size",
        type=int,
        default=64,
        help="image size of the ResNet18 model run over both inputs (default 64: detection-bound)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--shipped", action="store_true", help="the packaged FER+ model instead (section 'Prediction, packaged model')"
    )
    parser.add_argument("--write", action="store_true", help="write the tables to docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = SMOKE if args.smoke else Sizes()
    if args.memory_images:
        sizes = replace(sizes, memory_images=tuple(args.memory_images))
    missing = [name for name in PHOTOS if not (args.data / name).is_file()]
    if missing:
        raise SystemExit(f"{args.data} lacks {', '.join(missing)} (see ../shared/data/README.md)")
    photos = [read_image(args.data / name) for name in PHOTOS]
    print(machine(), flush=True)
    if args.shipped:
        return shipped_benchmark(sizes, photos, args.write and not args.smoke)
    with tempfile.TemporaryDirectory() as temporary, FaceDetector() as detector:
        folder = Path(temporary)
        stages, onnx = speed_tables(sizes, [np.asarray(photo) for photo in photos], detector, folder)
        light = ("resnet18", args.light_size)
        models = [light] if args.smoke else [(sizes.backbones[0], sizes.image_size), light]
        checkpoints = [
            (
                f"{backbone} svml-rgcn, {size} x {size}",
                make_checkpoint(folder / f"memory-{backbone}", backbone, replace(sizes, image_size=size))[0],
            )
            for backbone, size in models
        ]
        memory, passed = memory_table(sizes, photos, checkpoints, folder / "memory")
    print(stages, onnx, sep="\n\n")
    if args.write and not args.smoke:
        write_section(
            "Prediction",
            "\n\n".join(
                [
                    "Rates depend on what else runs on the machine: the load average above (one minute, read "
                    "when the section was written) says how busy it was. The ratios (onnxruntime / PyTorch, "
                    "memory growth) were measured in the same run.",
                    stages,
                    onnx,
                    "Peak memory of `mlfer predict` (CSV output, default batch 32) as a child process over generated "
                    "photos (the same five, randomly cropped and brightened, JPEG), its `ru_maxrss` read by a fresh "
                    "helper process (`os.wait4`). The growth is "
                    "measured with a ResNet18 at a small input size, where detection dominates, so that 2,000 photos "
                    "fit in minutes on this machine; the paper's ResNet50 at 224 x 224 gives the size of the peak. "
                    "Of that peak, importing the library `mlfer predict` runs (torch) alone takes about 1.1 GiB "
                    "(`/usr/bin/time -v`, measured apart: torch's "
                    "CUDA build maps cuBLAS, NVRTC and nvJitLink even on the CPU):",
                    memory,
                ]
            ),
        )
    return 0 if passed else 1


#: What the packaged model must reach: end-to-end faces per second on two CPU cores.
SHIPPED_TARGET = 30.0


def shipped_benchmark(sizes: Sizes, photos: list[Image.Image], write: bool) -> int:
    """Speed and memory of ``mlfer predict`` with the packaged model; passes at :data:`SHIPPED_TARGET`
    faces/s and flat memory."""
    with tempfile.TemporaryDirectory() as temporary, FaceDetector() as detector:
        stages, rate = shipped_speed(sizes, [np.asarray(photo) for photo in photos], detector)
        print(stages, flush=True)
        memory, flat = memory_table(sizes, photos, [("packaged FER+ model, 48 x 48 grey", None)], Path(temporary))
    passed = "passes" if rate >= SHIPPED_TARGET else "FAILS"
    verdict = f"End to end {rate:.1f} faces/s (target {SHIPPED_TARGET:.0f}): {passed}."
    print(verdict)
    if write:
        write_section(
            "Prediction, packaged model",
            "\n\n".join(
                [
                    "`mlfer predict` without `--checkpoint`: the packaged FER+ model (ResNet18, small stem, "
                    "48 x 48 grey), stage by stage as in the section above, then its peak memory over 200 and "
                    "2,000 generated photos.",
                    stages,
                    verdict,
                    memory,
                ]
            ),
        )
    return 0 if flat and rate >= SHIPPED_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
