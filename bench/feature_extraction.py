"""Benchmark: ResNet50 feature extraction for the cache, images per second through the
engine's :func:`mlfer.train.features.extract_features` (JPEG files decoded by its
DataLoader, 224 x 224, batches of 64, inference mode), against the machine's own bound.

The bound is the rate of a large fp32 ``torch.mm`` measured in the same run, divided by the
floating-point operations of one 224 x 224 image through the ResNet50 trunk as counted by
``torch.utils.flop_counter`` (8.2 GFLOP: the "4.1 GFLOPs" usually quoted for ResNet50 are
multiply-adds, two operations each). Each layout and precision is compared with the fp32
features of the same images by cosine similarity (the worst row).

Run ``python bench/feature_extraction.py --write`` for docs/benchmarks.md (section
"Feature extraction"); ``--smoke`` runs a tiny version in seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchdoc import best_seconds, machine, write_section
from mlfer.data.dataset import LabelledData
from mlfer.data.images import read_image
from mlfer.data.synthetic import synthetic_dataset
from mlfer.data.transforms import eval_transform
from mlfer.models.backbones import ResNetTrunk
from mlfer.train.features import extract_features
from mlfer.train.loop import enable_huge_pages

#: (name, amp, channels_last, fold) of each way of running the trunk: the first is the
#: reference (and the engine before), the third the engine's default.
MODES: tuple[tuple[str, str, bool, bool], ...] = (
    ("fp32, NCHW", "none", False, False),
    ("fp32, channels-last", "none", True, False),
    ("fp32, channels-last, BatchNorm folded (default)", "none", True, True),
    ("bf16 autocast, channels-last, BatchNorm folded", "bf16", True, True),
)


NOTES = """The engine's extraction (`mlfer.train.features.extract_features`, which fills the feature
cache) runs in inference mode on batches of 64 from a DataLoader that decodes the JPEG files
in worker processes, and by default feeds channels-last inputs to the trunk with its
BatchNorm layers folded into the convolutions (`fold_batchnorm`, `torch.fx`): the same fp32
arithmetic in another order, so the features match to cosine 1.00000 above. bfloat16
autocast (`amp="bf16"`) stays a switch, off by default: this CPU has no bfloat16 units
(AVX2), so it is several times slower here, and its features drift further from fp32 than
cosine 0.999. The trunk is randomly initialised (no pretrained weights offline), with its
BatchNorm statistics averaged over the benchmark's faces so that activations are normalised
as in a trained network; weights do not change the speed."""


def face_files(folder: Path, rows: int, distinct: int, seed: int = 0) -> LabelledData:
    """``rows`` rows of JPEG files of ``distinct`` synthetic faces (repeated in turn)."""
    faces = synthetic_dataset(distinct, seed=seed)
    paths = []
    for index, pixels in enumerate(faces.images):
        path = folder / f"face{index:03d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    chosen = np.arange(rows) % distinct
    return LabelledData(
        spec="bench-faces",
        labels=faces.labels[chosen],
        ids=[str(row) for row in range(rows)],
        paths=[paths[index] for index in chosen],
    )


def calibrated_trunk(name: str, data: LabelledData, size: int) -> nn.Module:
    """A randomly initialised trunk whose BatchNorm statistics are averaged over ``data``, so
    that its activations are normalised as in a trained network."""
    trunk = ResNetTrunk(name)
    for layer in trunk.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = None  # cumulative average over the calibration batches
    transform = eval_transform(size)
    images = torch.stack([transform(read_image(path)) for path in data.paths[:16]])
    with torch.no_grad():
        trunk.train()(images)
    return trunk.eval()


def matmul_flops_per_second(size: int, repeats: int = 3) -> float:
    """fp32 ``torch.mm`` rate of two size x size matrices (2 size^3 operations), best of ``repeats``."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_seconds(lambda: torch.mm(left, right), repeats)


def image_flops(trunk: nn.Module, size: int) -> float:
    """Floating-point operations of one size x size image through ``trunk``."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        trunk(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its table and, with ``--write``, put it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="ResNet18 on a few 64 x 64 images, for the tests")
    parser.add_argument("--images", type=int, default=64, help="images per timed pass (default 64, one batch)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="passes per fp32 mode, interleaved; best kept (default 3)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    enable_huge_pages()
    if args.threads:
        torch.set_num_threads(args.threads)
    name, size, rows, rounds = ("resnet18", 64, 8, 1) if args.smoke else ("resnet50", 224, args.images, args.rounds)
    side = 512 if args.smoke else 2048
    device = torch.device("cpu")
    print(machine())
    with tempfile.TemporaryDirectory() as temporary:
        data = face_files(Path(temporary), rows, distinct=min(rows, 32))
        trunk = calibrated_trunk(name, data, size)
        flops = image_flops(trunk, size)
        transform = eval_transform(size)
        extract_features(trunk, data, transform, device)  # warm-up
        seconds = {mode[0]: math.inf for mode in MODES}
        features: dict[str, torch.Tensor] = {}
        matmul = 0.0
        for number in range(rounds):
            matmul = max(matmul, matmul_flops_per_second(side))
            for mode, amp, channels_last, fold in MODES:
                if amp != "none" and number:
                    continue  # bfloat16 without hardware support is slow: one pass
                start = time.perf_counter()
                features[mode] = extract_features(
                    trunk, data, transform, device, amp=amp, channels_last=channels_last, fold=fold
                )
                seconds[mode] = min(seconds[mode], time.perf_counter() - start)
    bound = matmul / flops
    reference = features[MODES[0][0]]
    lines = ["| Mode | Images/s | Share of bound | Worst cosine to fp32 NCHW |", "|---|---|---|---|"]
    for mode, *_ in MODES:
        rate = rows / seconds[mode]
        cosine = float(F.cosine_similarity(features[mode], reference, dim=1).min())
        lines.append(f"| {mode} | {rate:.2f} | {rate / bound:.0%} | {cosine:.5f} |")
        print(lines[-1], flush=True)
    bound_line = (
        f"Bound: fp32 `torch.mm` of {side} x {side} matrices at {matmul / 1e9:.0f} GFLOP/s / "
        f"{flops / 1e9:.2f} GFLOP per {size} x {size} image ({name} trunk, `torch.utils.flop_counter`) "
        f"= {bound:.2f} images/s. Each mode: best of {rounds} interleaved passes over {rows} JPEG files "
        f"(bf16: one pass), DataLoader start included."
    )
    print(bound_line)
    default = next(mode for mode in MODES if "(default)" in mode[0])[0]
    verdict = f"The default reaches {rows / seconds[default] / bound:.0%} of the bound (the aim: 60%)."
    print(verdict)
    if args.write and not args.smoke:
        write_section("Feature extraction", "\n\n".join([bound_line, "\n".join(lines), verdict, NOTES]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
