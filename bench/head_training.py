"""Benchmark: training the svml-rgcn head on cached features at RAF-ML size, against the
memory-traffic bound of its Adam steps.

Every step updates all P head parameters with Adam, which at least reads the weight, the
gradient and two moments and writes three of them: 7 x 4 bytes per parameter. The bound is
the best time of ``Tensor.copy_`` of a 7 * 4 * P-byte buffer, measured in the same run.
The step times are the real engine's (:func:`mlfer.train.fitting.train_on_features`, run for
``1 + k`` epochs): the time between consecutive optimiser steps, read by a global step
hook, after a first warm-up epoch; their median is a typical step, their mean includes each
epoch's test pass and the busy machine's stalls.

Run ``python bench/head_training.py --write`` for docs/benchmarks.md (section "Head
training"); ``--full`` also times the whole 80-epoch schedule with ``mlfer train``;
``--smoke`` runs a tiny version in seconds.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile

from benchdoc import copy_seconds, machine, write_section
from mlfer.cli import main as mlfer_main
from mlfer.core.config import RunConfig, make_config
from mlfer.core.errors import MlferError
from mlfer.models.model import count_parameters
from mlfer.models.word_vectors import LABEL_WORDS
from mlfer.train.fitting import FeatureSet, train_on_features
from mlfer.train.loop import enable_huge_pages
from mlfer.train.run_model import build_run_model, with_word_vectors

#: Rows and dimensions: RAF-ML's training and test split, ResNet50 features, 300-d GloVe.
FULL_SIZE = {"train_rows": 3926, "test_rows": 982, "dim": 2048, "word_dim": 300, "mfb_o": 1024, "epochs": 3}
SMOKE_SIZE = {"train_rows": 96, "test_rows": 32, "dim": 32, "word_dim": 8, "mfb_o": 16, "epochs": 1}
#: The paper's schedule (section 4.2).
SCHEDULE_EPOCHS = 80
NOTES = """The engine's step (`mlfer.train.loop`): the classifier W_C generated once (MFB, two R-GCN
layers), the batch's logits, BCE, `zero_grad(set_to_none=True)`, backward, and
`torch.optim.Adam(fused=True)` with the paper's L2 weight decay 2e-4 (not AdamW). The
graph layers see six nodes, so every weight matrix meets a 6-row input: the matrix products
are skinny and, like Adam, bound by memory traffic rather than arithmetic.

Each step's gradients are fresh tensors as large as the head (114 MB). The kernel used to
fault them in 4 kB pages one at a time, about half the time of the backward pass; the
training commands and the benchmarks start with `mlfer.train.loop.enable_huge_pages()`,
which sets `THP_MEM_ALLOC_ENABLE=1` (unless it is already set) so that PyTorch's CPU
allocator backs allocations of 2 MB and more with transparent huge pages (PyTorch reads the
variable once, at the process's first tensor allocation). The page faults per step above
show it; `THP_MEM_ALLOC_ENABLE=0 python bench/head_training.py`
times the engine without it (in this project's runs at the same load: 306 ms against 247 ms a
step, 1.60 against 1.32 times the bound). Tried and left out: `torch.compile` of the head
(no gain beyond this machine's noise, 30 s of compiling).

Threads: on a shared machine OpenMP's spinning threads stall one another (a 2-thread step
took 3 to 5 times longer than a 1-thread step at load 10). Start Python with
`OMP_WAIT_POLICY=PASSIVE` (or `OMP_NUM_THREADS=1` when the machine is busy); neither can be
changed once torch is imported.

The bound follows the issue's yardstick: the time to copy as many bytes as Adam must move
(7 x 4 x P). A copy of B bytes reads B and writes B, so by bytes moved it is a generous
bound: against a copy of 3.5 x 4 x P bytes (the same traffic as Adam's) the median step is
about 2.5 times the bound. Adam alone (`aten::_fused_adam_` above, about 19 ms a step) runs
at that traffic's speed; the rest is the skinny matrix products and their gradients.

The whole schedule with `mlfer train` takes longer than the steps' mean predicts (the run
folder, the final evaluation and model, resume states). Resume states were written after
every epoch (342 MB, about 1 s each) until they were limited to one a minute
(`train.save_minutes`); the measured time stayed at 10.5 min in both runs, so most of the
gap is elsewhere: a profile of 6 epochs of `mlfer train` spent 41.8 of 46.3 s in the
epochs (7.0 s each, 57 ms a step), which predicts 9.4 min for 80; the rest of the
difference was not found."""


@dataclass
class Sizes:
    """The benchmark's data and model sizes.

    Args:
        train_rows, test_rows: feature vectors to train and test on.
        dim: their dimension D (also the graph layers' width).
        word_dim: dimension of the random label word vectors.
        mfb_o: MFB output size (the RAF-ML preset's 1024 at full size).
        epochs: epochs timed beyond the first.
    """

    train_rows: int
    test_rows: int
    dim: int
    word_dim: int
    mfb_o: int
    epochs: int


def random_labels(rows: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 labels (rows, 6): one label per row plus each other one with probability 0.2,
    so every class has single-label rows for its visual prototype (eq. 5)."""
    labels = (rng.random((rows, len(LABEL_WORDS))) < 0.2).astype(np.float32)
    labels[np.arange(rows), rng.integers(0, len(LABEL_WORDS), rows)] = 1.0
    labels[: len(LABEL_WORDS)] = np.eye(len(LABEL_WORDS), dtype=np.float32)
    return labels


def feature_sets(sizes: Sizes, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """Random non-negative features (as after ResNet's ReLU and pooling), with flipped copies."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    train = FeatureSet(
        torch.rand(sizes.train_rows, sizes.dim, generator=generator),
        random_labels(sizes.train_rows, rng),
        torch.rand(sizes.train_rows, sizes.dim, generator=generator),
    )
    test = FeatureSet(torch.rand(sizes.test_rows, sizes.dim, generator=generator), random_labels(sizes.test_rows, rng))
    return train, test


def write_word_vectors(path: Path, dim: int, seed: int = 0) -> Path:
    """A GloVe-format text file of random ``dim``-d vectors for the six label words."""
    rng = np.random.default_rng(seed)
    lines = [word + " " + " ".join(f"{value:.5f}" for value in rng.standard_normal(dim)) for word in LABEL_WORDS]
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_config(sizes: Sizes, vectors: Path, epochs: int) -> RunConfig:
    """The RAF-ML preset on ``sizes.dim``-d feature vectors with the given word vectors and MFB size."""
    return make_config(
        "raf-ml",
        {
            "model.backbone": "identity",
            "model.feature_dim": sizes.dim,
            "model.word_vectors": str(vectors),
            "model.mfb_o": sizes.mfb_o,
            "train.epochs": epochs,
            "train.device": "cpu",
        },
    )


def head_parameters(config: RunConfig, train: FeatureSet) -> int:
    """P, the trainable parameters of the head the config builds."""
    config, vectors = with_word_vectors(config)
    model, _ = build_run_model(config, train.labels, vectors, lambda: (train.features, train.labels))
    return count_parameters(model.head)


def step_seconds(config: RunConfig, train: FeatureSet, test: FeatureSet) -> tuple[np.ndarray, float, int]:
    """The time between consecutive optimiser steps of one in-memory :func:`train_on_features`
    run (each a forward, backward and Adam step; an epoch's first also holds the epoch's
    test pass), from a global step hook; the run's wall-clock time; its minor page faults."""
    stamps: list[float] = []
    handle = register_optimizer_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    try:
        train_on_features(config, train, test, seed=0)
    finally:
        handle.remove()
    seconds = time.perf_counter() - start
    return np.diff(stamps), seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def where_time_goes(config: RunConfig, train: FeatureSet, test: FeatureSet, rows: int = 8) -> str:
    """A markdown table of the operators taking the most CPU time over a one-epoch run."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        train_on_features(config, train, test, seed=0)
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    lines = ["| Operator | Calls | Self CPU (ms) | Share |", "|---|---|---|---|"]
    for event in events[:rows]:
        lines.append(
            f"| `{event.key}` | {event.count} | {event.self_cpu_time_total / 1e3:.0f} | "
            f"{event.self_cpu_time_total / total:.0%} |"
        )
    return "\n".join(lines)


def full_schedule_seconds(sizes: Sizes, vectors: Path, folder: Path, epochs: int) -> float:
    """Wall-clock time of ``mlfer train`` (svml-rgcn, RAF-ML preset, ``epochs`` epochs) on a
    ``features:`` npz of the benchmark's sizes, with its run folder and resume states at the default interval."""
    train, test = feature_sets(sizes)
    npz = folder / "features.npz"
    np.savez(
        npz,
        features=torch.cat([train.features, test.features]).numpy(),
        labels=np.concatenate([train.labels, test.labels]),
        split=np.array(["train"] * len(train.labels) + ["test"] * len(test.labels)),
    )
    command = [
        "train",
        "--model",
        "svml-rgcn",
        "--dataset",
        f"features:{npz}",
        "--preset",
        "raf-ml",
        "--set",
        f"model.word_vectors={vectors}",
        "--set",
        f"model.mfb_o={sizes.mfb_o}",
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "train.device=cpu",
        "--cache",
        str(folder / "cache"),
        "--out",
        str(folder / "run"),
        "--quiet",
    ]
    start = time.perf_counter()
    if mlfer_main(command) != 0:
        raise MlferError("mlfer train failed", field="--full")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its table and, with ``--write``, put it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, help="epochs timed after the warm-up one (default 3, 369 steps)")
    parser.add_argument("--profile", action="store_true", help="also profile one epoch: where the time goes")
    parser.add_argument("--full", action="store_true", help="also run the whole 80-epoch schedule with mlfer train")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    enable_huge_pages()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = Sizes(**(SMOKE_SIZE if args.smoke else FULL_SIZE))
    sizes.epochs = args.epochs or sizes.epochs
    print(machine())
    train, test = feature_sets(sizes)
    steps_per_epoch = math.ceil(sizes.train_rows / 32)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        vectors = write_word_vectors(folder / "words.txt", sizes.word_dim)
        parameters = head_parameters(bench_config(sizes, vectors, 1), train)
        bound = copy_seconds(7 * 4 * parameters)
        steps, total, faults = step_seconds(bench_config(sizes, vectors, 1 + sizes.epochs), train, test)
        bound = min(bound, copy_seconds(7 * 4 * parameters))
        timed = steps[steps_per_epoch - 1 :]  # after the first epoch (warm-up)
        median, mean = float(np.median(timed)), float(np.mean(timed))
        estimate = total + (SCHEDULE_EPOCHS - 1 - sizes.epochs) * steps_per_epoch * mean
        rows = [
            ("head parameters P", f"{parameters / 1e6:.2f} M"),
            ("steps timed", f"{len(timed)} ({sizes.epochs} epochs of {steps_per_epoch}, after one warm-up epoch)"),
            ("training step (engine), median", f"{median * 1e3:.1f} ms"),
            ("training step (engine), mean with each epoch's test pass", f"{mean * 1e3:.1f} ms"),
            ("bound: copy of 7 x 4 x P bytes, best of 10", f"{bound * 1e3:.1f} ms"),
            ("median step / bound", f"{median / bound:.2f}"),
            ("mean step / bound", f"{mean / bound:.2f}"),
            ("minor page faults per step", f"{faults / (len(steps) + 1):.0f}"),
            (f"{SCHEDULE_EPOCHS}-epoch schedule, extrapolated from the mean", f"{estimate / 60:.1f} min"),
        ]
        print(*(f"{name}: {value}" for name, value in rows), sep="\n", flush=True)
        if args.full:
            epochs = 1 if args.smoke else SCHEDULE_EPOCHS
            full = full_schedule_seconds(sizes, vectors, folder, epochs)
            rows.append((f"`mlfer train`, {epochs} epochs, measured", f"{full / 60:.1f} min"))
        table = "\n".join(["| Quantity | Value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])
        print(table)
        profile_table = where_time_goes(bench_config(sizes, vectors, 1), train, test) if args.profile else ""
        if profile_table:
            print(profile_table)
    if args.write and not args.smoke:
        body = table + (
            "\n\nWhere a one-epoch run spends its CPU time (torch.profiler):\n\n" + profile_table
            if profile_table
            else ""
        )
        write_section("Head training", body + "\n\n" + NOTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
