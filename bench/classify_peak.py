"""Benchmark: the packaged model's classification as a fraction of this CPU's peak, per path.

The peak, three ways: the FMA peak from the core count, the widest vector unit the CPU reports
(AVX-512: 16 float32 lanes, AVX2: 8), two FMA units a core (an assumption for server cores,
said in the table) and the clock of ``/proc/cpuinfo``; and measured, a 4096 x 4096 float32 GEMM
through torch (oneDNN/MKL) and through numpy's BLAS. The classifier's work per face is counted by
``torch.utils.flop_counter`` on the folded classifier (backbone and ``W_C``).

Paths, each on the same aligned FER+ PublicTest faces at batch 32, all cores: eager PyTorch in
float32, PyTorch channels-last with bfloat16 autocast (AMX/AVX-512 BF16 where the CPU has them),
onnxruntime float32 (``mlfer predict``'s engine), and onnxruntime int8 (static quantisation,
QDQ, per channel, calibrated on FER+ Training faces). Each path's probabilities are compared
with onnxruntime float32's: the share of faces with the same top expression, the mean absolute
change, and the average precision on PublicTest's labelled faces; a path is fit to serve only
within the tolerance of #25 (97 %, 0.01, 0.002).

    python bench/classify_peak.py --ferplus ../shared/data/ferplus --write
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from torch.utils.flop_counter import FlopCounterMode

from benchdoc import best_seconds, machine, write_section
from mlfer.data import load_dataset
from mlfer.data.images import read_image
from mlfer.evaluation.metrics import compute_metrics
from mlfer.inference.engine import OnnxEngine
from mlfer.inference.export import FoldedClassifier, export_onnx
from mlfer.models.checkpoint import load_model

TARGET_SAME_TOP, TARGET_MEAN_CHANGE, TARGET_AP = 0.97, 0.01, 0.002
BATCH = 32
#: Side of the square GEMMs timed, and the Training faces the int8 path is calibrated on.
GEMM_SIDE, CALIBRATION = 4096, 512


def fma_peak() -> tuple[float, str]:
    """GFLOP/s of cores x lanes x 2 FMA units x 2 flops x clock, and how it was read."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)[1].split()) if "flags" in text else set()
    lanes, unit = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    clock = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    ghz = float(clock[1]) / 1000 if clock else float("nan")
    cores = torch.get_num_threads()
    return (
        cores * lanes * 2 * 2 * ghz,
        f"{cores} cores x {lanes} float32 lanes ({unit}) x 2 FMA units x 2 x {ghz:.2f} GHz",
    )


def gemm_gflops(side: int = GEMM_SIDE) -> dict[str, float]:
    """Measured ``side`` x ``side`` float32 GEMM rates (and bfloat16 through torch, for reference)."""
    a = torch.randn(side, side)
    rates = {"torch float32 GEMM (oneDNN/MKL)": 2 * side**3 / best_seconds(lambda: a @ a, 5) / 1e9}
    half = a.bfloat16()
    rates["torch bfloat16 GEMM"] = 2 * side**3 / best_seconds(lambda: half @ half, 5) / 1e9
    n = a.numpy()
    rates["numpy float32 GEMM (its BLAS)"] = 2 * side**3 / best_seconds(lambda: n @ n, 3) / 1e9
    return rates


def publictest_faces(
    spec: str, limit: int | None, calibration: int = CALIBRATION
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """PublicTest's labels and RGB faces, and Training faces for calibration."""
    data = load_dataset(spec)
    split = np.asarray(data.split)

    def faces(rows: np.ndarray) -> np.ndarray:
        if data.paths is not None:
            return np.stack([np.asarray(read_image(data.paths[row]).convert("RGB")) for row in rows])
        grey = data.images[rows]
        return np.stack([grey] * 3, axis=-1) if grey.ndim == 3 else grey

    test = np.flatnonzero(split == "test")[:limit]
    train = np.random.default_rng(0).choice(np.flatnonzero(split == "train"), calibration, replace=False)
    return np.asarray(data.labels)[test], faces(test), list(faces(train))


class _Calibration(CalibrationDataReader):
    def __init__(self, batches: list[np.ndarray], name: str) -> None:
        self.items = iter([{name: batch} for batch in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ferplus", required=True, metavar="DIR", help="the FER+ folder (../shared/data/ferplus)")
    parser.add_argument("--faces", type=int, help="PublicTest faces used (default all)")
    parser.add_argument("--write", action="store_true", help="write the section to docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="exit 1 unless mlfer predict's path is fit to serve")
    parser.add_argument("--smoke", action="store_true", help="64 faces, a small GEMM: that the script runs")
    args = parser.parse_args(argv)
    side, count = (256, 64) if args.smoke else (GEMM_SIDE, CALIBRATION)
    if args.smoke:
        args.faces = 64
    print(machine(), flush=True)
    model = load_model(thresholds="default")
    preprocessing = model.preprocessing
    labels, test, calibration = publictest_faces(f"ferplus:{args.ferplus}?test=valid", args.faces, count)
    inputs = preprocessing.array(test)
    folded = FoldedClassifier(model).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        folded(torch.from_numpy(inputs[:1]))
    flops = counter.get_total_flops()
    peak, how = fma_peak()
    gemm = gemm_gflops(side)
    with tempfile.TemporaryDirectory() as temporary:
        fp32 = export_onnx(model, Path(temporary) / "fp32.onnx")
        int8 = Path(temporary) / "int8.onnx"
        name = onnxruntime.InferenceSession(str(fp32)).get_inputs()[0].name
        batches = [preprocessing.array(calibration[start : start + BATCH]) for start in range(0, count, BATCH)]
        quantize_static(
            str(fp32),
            str(int8),
            _Calibration(batches, name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        channels_last = load_model(thresholds="default").to(memory_format=torch.channels_last)
        paths: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "onnxruntime float32 (mlfer predict's engine)": OnnxEngine(fp32, torch.get_num_threads()),
            "PyTorch float32, eager": lambda batch: _torch(model, batch),
            "PyTorch bfloat16 autocast, channels-last": lambda batch: _torch(channels_last, batch, bf16=True),
            "onnxruntime int8 (static, QDQ, per channel)": OnnxEngine(int8, torch.get_num_threads()),
        }
        body, passed = report(paths, inputs, labels, flops, peak, how, gemm, side)
    print(body)
    if args.write and not args.smoke:
        write_section("Classification against the CPU's peak", body)
    return 1 if args.check and not passed else 0


def _torch(model: torch.nn.Module, batch: np.ndarray, bf16: bool = False) -> np.ndarray:
    tensor = torch.from_numpy(batch)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if bf16:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(model(tensor)).float().numpy()


def _run(path: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds per face at batch 32 (best of three passes over 512 faces) and all the probabilities."""
    timed = inputs[: 16 * BATCH]
    path(timed[:BATCH])

    def work() -> None:
        for start in range(0, len(timed), BATCH):
            path(timed[start : start + BATCH])

    seconds = best_seconds(work, 3) / len(timed)
    return seconds, np.concatenate([path(inputs[start : start + BATCH]) for start in range(0, len(inputs), BATCH)])


def report(
    paths: dict[str, Callable[[np.ndarray], np.ndarray]],
    inputs: np.ndarray,
    labels: np.ndarray,
    flops: int,
    peak: float,
    how: str,
    gemm: dict[str, float],
    side: int = GEMM_SIDE,
) -> tuple[str, bool]:
    """The section (the peaks, then one row per path) and whether ``mlfer predict``'s path, the
    first, is fit to serve."""
    float_gemm = gemm["torch float32 GEMM (oneDNN/MKL)"]
    lines = [
        f"The packaged model's folded classifier does **{flops / 1e6:.1f} MFLOP per face** (48 x 48 grey, "
        "`torch.utils.flop_counter`). Peaks of this machine:",
        "",
        "| peak | GFLOP/s |",
        "|---|---:|",
        f"| FMA peak, {how} (the clock is the one `/proc/cpuinfo` reports; turbo unknown) | {peak:.0f} |",
        *(f"| {name}, {side} x {side} | {rate:.0f} |" for name, rate in gemm.items()),
        "",
        f"Classification of {len(inputs):,} FER+ PublicTest faces at batch {BATCH}, all cores; answers against "
        "onnxruntime float32:",
        "",
        "| path | ms per face | GFLOP/s | of float32 GEMM | of FMA peak | same top expression | mean abs change | "
        "PublicTest AP | fit to serve |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    reference: np.ndarray | None = None
    reference_ap = 0.0
    fastest_fit = ("", float("inf"))
    fits = []
    for name, path in paths.items():
        seconds, probabilities = _run(path, inputs)
        ap = compute_metrics(labels, probabilities)["average_precision"]
        if reference is None:
            reference, reference_ap = probabilities, ap
        same = float((probabilities.argmax(axis=1) == reference.argmax(axis=1)).mean())
        change = float(np.abs(probabilities - reference).mean())
        fit = same >= TARGET_SAME_TOP and change <= TARGET_MEAN_CHANGE and abs(ap - reference_ap) <= TARGET_AP
        rate = flops / seconds / 1e9
        lines.append(
            f"| {name} | {1000 * seconds:.2f} | {rate:.0f} | {rate / float_gemm:.0%} | {rate / peak:.0%} | "
            f"{same:.1%} | {change:.4f} | {ap:.4f} | {'yes' if fit else 'no'} |"
        )
        print(lines[-1], flush=True)
        fits.append(fit)
        if fit and seconds < fastest_fit[1]:
            fastest_fit = (name, seconds)
    lines += [
        "",
        f"Fastest path within the tolerance on this CPU, classification alone: **{fastest_fit[0]}**. "
        "`mlfer predict` runs onnxruntime float32 with one thread beside detection on two cores (its faces "
        "wait on detection, about 4.6 ms a face, whatever the classifier), and without importing torch "
        "(3 s of start-up): see the section on the two checkouts.",
    ]
    return "\n".join(lines), fits[0]


if __name__ == "__main__":
    sys.exit(main())
