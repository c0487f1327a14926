"""Benchmark: mlfer on one GPU, beside the GPU's own bfloat16 matrix-multiply rate.

Measured in one run (each through the project's real code path):

- the bf16 matmul rate of the device (TFLOP/s), the yardstick;
- end-to-end fine-tuning (:func:`mlfer.train.loop.fit`: forward, BCE, backward, fused Adam,
  plus a 64-image test pass per epoch) of ResNet50 + SVML-RGCN at 224 x 224 on
  device-resident images (:mod:`mlfer.train.resident`), in float32 with every switch off,
  then with ``train.amp=bf16`` and ``train.channels_last``, at batch 32 and at the largest
  batch that fits (doubling from 64 until out of memory), and with ``train.compile``;
- the same fine-tuning fed by the DataLoader from JPEG files (decoding with workers);
- feature extraction (:func:`mlfer.train.features.extract_features`) from JPEG files;
- ``Recognizer.predict`` (face detection, alignment, classification) in faces per second.

Images are synthetic faces (:mod:`mlfer.data.synthetic`), so the benchmark needs no data.
``bash bench/gpu.sh`` is sized to run in under 5 minutes on one GPU (unchecked: no GPU was
available when it was written); ``--smoke`` runs tiny sizes on the CPU (ResNet18 at 32 x 32,
one step each); ``--write`` puts the table in the "GPU" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchdoc import write_section
from mlfer.core.config import ModelConfig, TrainConfig
from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.synthetic import synthetic_dataset
from mlfer.data.transforms import eval_transform
from mlfer.faces import FaceDetector
from mlfer.inference.recognizer import Recognizer
from mlfer.models.model import MultiLabelModel, build_model
from mlfer.train.features import EVAL_BATCH_SIZE, extract_features, image_batches
from mlfer.train.gpu import training_module
from mlfer.train.loop import Batches, fit, make_optimizer, make_scheduler
from mlfer.train.resident import ResidentBatches
from mlfer.train.state import Resumable


@dataclass
class Sizes:
    """The benchmark's sizes.

    Args:
        backbone: ``resnet50`` (the paper's), or ``resnet18`` for the smoke run.
        image_size: side of the face images fed to the model.
        batch: the paper's batch (32), always measured.
        largest: the largest batch tried in the search.
        steps: timed optimiser steps per fine-tuning measurement.
        test: images of the test pass after each epoch.
        jpegs: JPEG files written for the DataLoader, extraction and predict measurements.
        matmul: side of the square bf16 matrices of the yardstick.
        compile: also measure ``train.compile`` (minutes of compilation on the CPU).
        warm_up: run one untimed epoch before each timed fine-tuning (compilation, cuDNN
            autotuning, allocator growth).
    """

    backbone: str
    image_size: int
    batch: int
    largest: int
    steps: int
    test: int
    jpegs: int
    matmul: int
    compile: bool
    warm_up: bool


FULL = Sizes(
    "resnet50",
    image_size=224,
    batch=32,
    largest=2048,
    steps=30,
    test=64,
    jpegs=512,
    matmul=8192,
    compile=True,
    warm_up=True,
)
SMOKE = Sizes(
    "resnet18", image_size=32, batch=4, largest=4, steps=1, test=4, jpegs=4, matmul=128, compile=False, warm_up=False
)
#: Side of the JPEG faces (MediaPipe needs faces larger than the smoke run's 32 pixels).
JPEG_SIZE = 224
#: Rows of the table: what was measured, its setting, value, unit.
Row = tuple[str, str, float, str]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``work()``, device work included."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def matmul_rate(size: int, device: torch.device) -> float:
    """bf16 matrix-multiply rate of the device in TFLOP/s: the best of 5 timings of 10 products."""
    left = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    right = torch.randn(size, size, device=device, dtype=torch.bfloat16)

    def products() -> None:
        for _ in range(10):
            torch.mm(left, right)

    products()
    best = min(timed(products, device) for _ in range(5))
    return 10 * 2 * size**3 / best / 1e12


def build(sizes: Sizes, device: torch.device) -> MultiLabelModel:
    """The backbone + SVML-RGCN with the RAF-ML preset's MFB sizes and random graph inputs."""
    torch.manual_seed(0)
    config = ModelConfig(backbone=sizes.backbone, head="svml-rgcn", mfb_k=4, mfb_o=1024)
    relations = (torch.rand(2, 6, 6) < 0.3).float()
    prototypes = torch.randn(6, config.out_features)
    return build_model(config, relations, torch.randn(6, 50), prototypes).to(device)


def finetune_rate(
    model: MultiLabelModel, config: TrainConfig, train: Batches, test: Batches, device: torch.device, warm_up: bool
) -> float:
    """Training images per second of :func:`fit` over ``config.epochs`` epochs (after one untimed with ``warm_up``)."""
    optimizer = make_optimizer(
        {"head": list(model.head.parameters()), "backbone": list(model.backbone.parameters())},
        {"head": config.lr_head, "backbone": config.lr_backbone},
        config,
    )
    objects = Resumable(model, optimizer, make_scheduler(optimizer, config), torch.Generator().manual_seed(0))
    module = training_module(model, config, device)
    if warm_up:
        fit(module, train, test, replace(config, epochs=1), objects, device)
    seconds = timed(lambda: fit(module, train, test, config, objects, device), device)
    return config.epochs * len(train) * config.batch_size / seconds


def resident(count: int, size: int, batch: int, device: torch.device, train: bool) -> ResidentBatches:
    """Random uint8 faces on the device (decoding is not what this measures)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator).to(device)
    labels = (torch.rand(count, 6, generator=generator) < 0.3).float().to(device)
    return ResidentBatches(images, labels, batch, generator if train else None, flip=train)


def largest_batch(sizes: Sizes, config: TrainConfig, device: torch.device) -> int:
    """The largest batch (doubling from ``2 * sizes.batch``, at most ``sizes.largest``) that trains
    without running out of memory."""
    fits, batch = sizes.batch, 2 * sizes.batch
    test = resident(sizes.test, sizes.image_size, sizes.test, device, train=False)
    while batch <= sizes.largest:
        try:
            finetune_rate(
                build(sizes, device),
                replace(config, batch_size=batch),
                test=test,
                device=device,
                train=resident(batch, sizes.image_size, batch, device, train=True),
                warm_up=False,
            )
        except torch.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        fits, batch = batch, batch * 2
    return fits


def jpeg_dataset(count: int, size: int, folder: Path) -> LabelledData:
    """``count`` synthetic faces written as JPEG files (quality 90), as a dataset of paths."""
    faces = synthetic_dataset(count, seed=0, size=size)
    paths = []
    for number, image in enumerate(faces.images):
        paths.append(folder / f"face_{number:05d}.jpg")
        Image.fromarray(image).save(paths[-1], quality=90)
    return LabelledData(spec=f"jpeg:{folder}", labels=faces.labels, ids=faces.ids, paths=paths)


def finetune_rows(sizes: Sizes, device: torch.device, jpegs: LabelledData) -> list[Row]:
    """Fine-tuning images/s: fp32 and bf16 + channels-last at the paper's batch, the largest
    batch, compiled, and fed from JPEG files."""
    size, small = sizes.image_size, sizes.batch
    plain = TrainConfig(mode="finetune", image_size=size, batch_size=small, epochs=1)
    fast = replace(plain, amp="bf16", channels_last=True)
    test = resident(sizes.test, size, sizes.test, device, train=False)
    rows: list[Row] = []
    for label, config in (("float32, every switch off", plain), ("bf16 + channels-last", fast)):
        train = resident(small * sizes.steps, size, small, device, train=True)
        rate = finetune_rate(build(sizes, device), config, train, test, device, sizes.warm_up)
        rows.append(("fine-tuning", f"{label}, batch {small}, resident", rate, "images/s"))
    batch = largest_batch(sizes, fast, device)
    train = resident(max(small * sizes.steps, batch * min(sizes.steps, 5)), size, batch, device, train=True)
    big = replace(fast, batch_size=batch)
    for label, config in (
        (f"bf16 + channels-last, batch {batch} (largest)", big),
        (f"bf16 + channels-last + compile, batch {batch}", replace(big, compile=True)),
    ):
        if sizes.compile or not config.compile:
            rate = finetune_rate(build(sizes, device), config, train, test, device, sizes.warm_up)
            rows.append(("fine-tuning", f"{label}, resident", rate, "images/s"))
    everything = np.arange(len(jpegs))
    loader_train, loader_test = image_batches(
        jpegs, Partition("bench", everything, everything[: sizes.test]), fast, torch.Generator().manual_seed(0)
    )
    rate = finetune_rate(build(sizes, device), fast, loader_train, loader_test, device, sizes.warm_up)
    rows.append(
        ("fine-tuning", f"bf16 + channels-last, batch {small}, DataLoader from {len(jpegs)} JPEGs", rate, "images/s")
    )
    return rows


def extraction_row(jpegs: LabelledData, sizes: Sizes, device: torch.device) -> Row:
    """Feature extraction images/s from JPEG files (float32, batches of 64, DataLoader workers)."""
    size, backbone = sizes.image_size, build(sizes, device).backbone
    extract_features(backbone, jpegs.subset(np.arange(min(len(jpegs), EVAL_BATCH_SIZE))), eval_transform(size), device)
    seconds = timed(lambda: extract_features(backbone, jpegs, eval_transform(size), device), device)
    return ("feature extraction", f"{sizes.backbone}, float32, {len(jpegs)} JPEGs", len(jpegs) / seconds, "images/s")


def predict_row(jpegs: LabelledData, sizes: Sizes, device: torch.device) -> Row:
    """``Recognizer.predict`` faces/s on the JPEG files (MediaPipe detection on the CPU)."""
    with FaceDetector() as detector:
        recognizer = Recognizer(build(sizes, device), detector, image_size=sizes.image_size)
        recognizer.predict(jpegs.paths[:2])
        found: list[int] = []
        seconds = timed(lambda: found.append(int(recognizer.predict(jpegs.paths)["face_detected"].sum())), device)
    return ("predict", f"detect + align + classify, {len(jpegs)} photos, batch 32", found[0] / seconds, "faces/s")


def table(rows: list[Row], matmul: float, size: int) -> str:
    """The rows as a Markdown table, each rate also per TFLOP/s of the bf16 yardstick."""
    lines = [
        "| measurement | setting | rate | rate per bf16 TFLOP/s |",
        "|---|---|---:|---:|",
        f"| bf16 matmul | the device's own rate, {size} x {size} | {matmul:.3g} TFLOP/s | 1 |",
    ]
    for what, setting, value, unit in rows:
        lines.append(f"| {what} | {setting} | {value:.4g} {unit} | {value / matmul:.4g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, a few steps (CI)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile measurement")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md (section GPU)")
    args = parser.parse_args()
    if args.smoke and args.write:
        parser.error("--smoke measures nothing worth writing to docs/benchmarks.md")
    sizes = SMOKE if args.smoke else replace(FULL, compile=FULL.compile and not args.no_compile)
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; sizes: {sizes}")
    matmul = matmul_rate(sizes.matmul, device)
    with tempfile.TemporaryDirectory() as folder:
        jpegs = jpeg_dataset(sizes.jpegs, JPEG_SIZE, Path(folder))
        rows = finetune_rows(sizes, device, jpegs)
        rows += [extraction_row(jpegs, sizes, device), predict_row(jpegs, sizes, device)]
    text = table(rows, matmul, sizes.matmul)
    print(text)
    if args.write:
        write_section("GPU", f"Measured on {name} by `bash bench/gpu.sh --write`.\n\n{text}")


if __name__ == "__main__":
    main()
