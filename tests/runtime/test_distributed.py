"""Scale out on the CPU (gloo): torchrun training equals one process, and distributed
evaluation, feature extraction and prediction equal single-process results exactly.

Most multi-process tests start two ranks as children of the suite's fork server
(``faults.fork_server``: it imported torch and mlfer once, so they start in milliseconds, and a
plain fork of this process is unsafe once it has run an ONNX export or MediaPipe); one test
goes through ``python -m torch.distributed.run``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch import nn

from builders import SMALL, write_features
from faults import fork_server
from mlfer.cli import main
from mlfer.core.config import ModelConfig, TrainConfig
from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.models.backbones import build_backbone
from mlfer.models.checkpoint import load_model
from mlfer.runtime import distributed
from mlfer.train import features, gpu, loop
from mlfer.train.cache import FeatureCache
from mlfer.train.evaluation import evaluate_model, evaluation_rows
from mlfer.train.gpu import Accelerated, training_module
from mlfer.train.loop import multilabel_metrics
from mlfer.train.resident import ResidentBatches, decode_images

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
RESNET18 = ModelConfig(backbone="resnet18", head="baseline")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: the models are tiny and two ranks share two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(index: int, port: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(
        RANK=str(index),
        LOCAL_RANK=str(index),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    function(*args)


def on_two_ranks(function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` in two processes that torchrun's variables make ranks 0 and 1."""
    fork_server()  # started with its modules imported, before torch.multiprocessing uses it
    mp.start_processes(_rank_main, args=(free_port(), function, args), nprocs=WORLD, start_method="forkserver")


def _cli(argv: list[str]) -> None:
    assert main(argv) == 0


def _in_group(function: Callable[..., Any], *args: Any) -> None:
    with distributed.process_group("cpu"):
        function(*args)


def train_args(npz: Path, out: Path, *extra: str) -> list[str]:
    args = ["train", "--dataset", f"features:{npz}", "--model", "sml-rgcn", "--quiet", "--out", str(out)]
    for item in [*SMALL, "train.epochs=3", "train.batch_size=21", "train.device=cpu", *extra]:
        args += ["--set", item]
    return args


def read_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def assert_same_weights(first: Path, second: Path, atol: float) -> None:
    one, two = read_weights(first), read_weights(second)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=atol, msg=key)


# ----- sharding arithmetic (one process, ranks simulated) -----------------------------


def _as_rank(monkeypatch: pytest.MonkeyPatch, number: int, world: int) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: number)
    monkeypatch.setattr(distributed, "world_size", lambda: world)


@pytest.mark.parametrize(
    ("count", "batch_size", "world"), [(0, 4, 2), (5, 4, 2), (64, 16, 3), (101, 10, 4), (7, 10, 3)]
)
def test_ordered_shards_are_whole_batches_in_input_order(
    monkeypatch: pytest.MonkeyPatch, count: int, batch_size: int, world: int
) -> None:
    rows = []
    for number in range(world):
        _as_rank(monkeypatch, number, world)
        shard = distributed.ordered_shard(count, batch_size)
        assert all(end % batch_size == 0 or end == count for end in (shard.start, shard.stop))
        rows += list(distributed.OrderedShardSampler(count, batch_size))
    assert rows == list(range(count))


@pytest.mark.parametrize(("count", "batch_size", "world"), [(50, 32, 2), (33, 32, 2), (65, 32, 3), (31, 32, 4)])
def test_global_batches_are_shared_evenly_and_a_batch_smaller_than_the_world_is_skipped(
    monkeypatch: pytest.MonkeyPatch, count: int, batch_size: int, world: int
) -> None:
    shares = []
    for number in range(world):
        _as_rank(monkeypatch, number, world)
        sampler = distributed.GlobalBatchSampler(count, batch_size, torch.Generator().manual_seed(3))
        shares.append(list(sampler))
        assert len(shares[-1]) == len(sampler)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(3)).tolist()
    batches = [order[start : start + batch_size] for start in range(0, count, batch_size)]
    kept = [batch for batch in batches if len(batch) >= world]
    assert len(kept) == len(shares[0])
    for step, batch in enumerate(kept):
        parts = [shares[number][step] for number in range(world)]
        assert sum(parts, []) == batch
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_each_process_takes_its_share_of_the_same_shuffled_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feature batches (frozen mode) and resident images: the shares of the processes, put
    together, are the global batches of one process; a last batch of 1 row is skipped."""
    count, batch_size, world = 23, 11, 2
    inputs = torch.arange(count, dtype=torch.float32)[:, None].repeat(1, 3)
    images = torch.arange(count, dtype=torch.uint8)[:, None, None, None].repeat(1, 3, 2, 2)
    labels = torch.arange(count, dtype=torch.float32)[:, None]

    def passes() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        rows = loop.FeatureBatches(inputs, labels, None, batch_size, torch.Generator().manual_seed(5))
        sharded = distributed.ShardedBatches(rows, count, batch_size)
        resident = ResidentBatches(images, labels, batch_size, torch.Generator().manual_seed(5))
        features, faces = [targets for _, targets in sharded], [targets for _, targets in resident]
        assert len(sharded) == len(features) and len(resident) == len(faces)
        return features, faces

    whole_features, whole_images = passes()
    assert [len(batch) for batch in whole_features] == [11, 11, 1]  # one process keeps the last row
    assert all(torch.equal(one, two) for one, two in zip(whole_features, whole_images, strict=True))
    shares = []
    for number in range(world):
        _as_rank(monkeypatch, number, world)
        shares.append(passes())
    for kind in range(2):
        assert len(shares[0][kind]) == len(shares[1][kind]) == 2
        together = [torch.cat([shares[0][kind][step], shares[1][kind][step]]) for step in range(2)]
        assert all(torch.equal(part, whole) for part, whole in zip(together, whole_features[:2], strict=True))
        assert [len(shares[number][kind][0]) for number in range(world)] == [6, 5]


def test_the_image_loaders_give_each_process_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finetuning from files: the training loader yields this process's share of each global
    batch of the shared permutation, the test loader its block of whole batches."""
    data = load_dataset("synthetic:10?size=32")
    data.split = np.array(["train"] * 7 + ["test"] * 3)
    partition = data.partitions()[0]
    config = TrainConfig(batch_size=4, flip=False, image_size=32, workers=0)
    monkeypatch.setattr(features, "EVAL_BATCH_SIZE", 2)
    rows = {}
    for number in range(WORLD):
        _as_rank(monkeypatch, number, WORLD)
        monkeypatch.setattr(features, "world_size", lambda: WORLD)
        train, test = features.image_batches(data, partition, config, torch.Generator().manual_seed(1))
        rows[number] = ([batch[2].tolist() for batch in train.loader], [batch[2].tolist() for batch in test.loader])
    generator = torch.Generator().manual_seed(1)
    torch.empty((), dtype=torch.int64).random_(generator=generator)  # the DataLoader's draw for worker seeds
    order = torch.randperm(7, generator=generator).tolist()
    assert rows[0][0] == [order[0:2], order[4:6]] and rows[1][0] == [order[2:4], order[6:7]]
    assert rows[0][1] == [[0, 1]] and rows[1][1] == [[2]]


# ----- collectives in two forked processes -------------------------------------------


def _collectives(out: Path) -> None:
    rank = distributed.rank()
    # rank 0 has 3 rows, rank 1 none: the gather keeps rank order and drops the padding
    rows = torch.arange(6.0).view(3, 2) if rank == 0 else None
    gathered = distributed.gather_rows(rows)
    uneven = distributed.gather_rows(torch.full((rank + 1, 2), float(rank)))
    total = distributed.sum_across(torch.tensor([1.0, rank]))
    # a global batch of 5 rows split 3 + 2: the DDP gradient must be the 5-row gradient
    torch.manual_seed(0)
    model = nn.Linear(4, 6)
    inputs, targets = torch.randn(5, 4), (torch.rand(5, 6) < 0.5).float()
    share = distributed.rank_share(5)
    wrapped = distributed.wrap_data_parallel(model, torch.device("cpu"))
    loss = loop.bce_loss(wrapped(inputs[share]), targets[share])
    distributed.global_batch_loss(loss, len(targets[share])).backward()
    try:
        distributed.agree(rank, "a value")
        disagreed = ""
    except MlferError as error:
        disagreed = str(error)
    if rank == 0:
        torch.save(
            {"gathered": gathered, "uneven": uneven, "total": total, "grad": model.weight.grad, "disagreed": disagreed},
            out,
        )


def test_gather_sum_and_the_global_batch_gradient_across_two_processes(tmp_path: Path) -> None:
    on_two_ranks(_in_group, _collectives, tmp_path / "out.pt")
    result = torch.load(tmp_path / "out.pt")
    assert torch.equal(result["gathered"], torch.arange(6.0).view(3, 2))
    assert torch.equal(result["uneven"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))
    assert torch.equal(result["total"], torch.tensor([2.0, 1.0]))
    torch.manual_seed(0)
    model = nn.Linear(4, 6)
    inputs, targets = torch.randn(5, 4), (torch.rand(5, 6) < 0.5).float()
    loop.bce_loss(model(inputs), targets).backward()
    torch.testing.assert_close(result["grad"], model.weight.grad, rtol=0, atol=1e-7)
    assert "a value" in result["disagreed"] and "different values" in result["disagreed"]


# ----- training: torchrun equals one process -----------------------------------------


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 rows (192 train, 48 test): batch 21 gives two processes shares of 11 and 10 rows,
    and the last batch of 3 rows shares of 2 and 1."""
    return write_features(tmp_path_factory.mktemp("data") / "features.npz")


@pytest.fixture(scope="module")
def single(npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    _cli(train_args(npz, out))
    return out


def test_torchrun_training_gives_the_weights_of_one_process(npz: Path, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(WORLD),
        "--master-port",
        str(free_port()),
        "-m",
        "mlfer",
        *train_args(npz, out),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("wrote ") == 1  # only rank 0 prints the table
    assert_same_weights(single / "runs" / "split-seed0", out / "runs" / "split-seed0", atol=1e-5)
    assert sorted(path.name for path in out.rglob("*")) == sorted(path.name for path in single.rglob("*"))
    ours, theirs = json.loads((out / "metrics.json").read_text()), json.loads((single / "metrics.json").read_text())
    assert ours["mean"] == pytest.approx(theirs["mean"], abs=1e-5)


class Interrupted(Exception):
    """Raised to stop a run right after it saved a given epoch."""


def test_a_run_interrupted_on_one_process_resumes_on_two(
    npz: Path, single: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    save_state = loop.save_state

    def save_then_stop(run_dir: Path, epoch: int, *args: Any) -> None:
        save_state(run_dir, epoch, *args)
        if epoch == 2:
            raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(loop, "save_state", save_then_stop)
        with pytest.raises(Interrupted):
            main(train_args(npz, out))
    assert (out / "runs" / "split-seed0" / "last").is_dir()
    on_two_ranks(_cli, [*train_args(npz, out), "--resume"])
    assert_same_weights(single / "runs" / "split-seed0", out / "runs" / "split-seed0", atol=1e-5)
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2, 3]


def test_a_batch_smaller_than_the_world_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_rank(monkeypatch, 0, 4)
    with pytest.raises(MlferError, match="train.batch_size: a batch of 3 cannot be shared by 4 processes"):
        distributed.check_global_batch(3)
    distributed.check_global_batch(4)


# ----- evaluation, extraction and prediction: exactly one process's results -----------


def test_distributed_evaluate_equals_one_process_exactly(single: Path, tmp_path: Path) -> None:
    """5,000 rows: rank 0 evaluates one chunk of 4,096, rank 1 the other 904."""
    many = write_features(tmp_path / "many.npz", rows=5000, split=False, seed=1)
    args = [
        "evaluate",
        "--checkpoint",
        str(single / "runs" / "split-seed0"),
        "--dataset",
        f"features:{many}",
        "--device",
        "cpu",
    ]
    _cli([*args, "--out", str(tmp_path / "one.json")])
    on_two_ranks(_cli, [*args, "--out", str(tmp_path / "two.json")])
    assert (tmp_path / "two.json").read_text() == (tmp_path / "one.json").read_text()


def resnet18() -> nn.Module:
    """A randomly initialised ResNet18 trunk, the same in every process."""
    torch.manual_seed(0)
    return build_backbone(RESNET18)


def _extract(spec: str, cache_dir: Path, out: Path) -> None:
    values = features.backbone_features(
        resnet18(),
        load_dataset(spec),
        RESNET18,
        32,
        seed=0,
        flip=False,
        cache=FeatureCache(cache_dir),
        device=torch.device("cpu"),
    )
    torch.save(values, out.with_name(f"{out.stem}{distributed.rank()}.pt"))


def test_sharded_feature_extraction_fills_one_cache_entry_with_one_process_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(features, "EVAL_BATCH_SIZE", 8)  # 20 images: batches of 8, 8, 4 over two ranks
    spec = "synthetic:20?size=32"
    on_two_ranks(_in_group, _extract, spec, tmp_path / "shared", tmp_path / "two.pt")
    expected = features.extract_features(
        resnet18(), load_dataset(spec), features.eval_transform(32), torch.device("cpu")
    )
    for number in range(WORLD):
        assert torch.equal(torch.load(tmp_path / f"two{number}.pt"), expected)
    assert len(list((tmp_path / "shared").glob("*.safetensors"))) == 1
    _extract(spec, tmp_path / "shared", tmp_path / "again.pt")  # a hit in one process
    assert torch.equal(torch.load(tmp_path / "again0.pt"), expected)


def test_distributed_predict_writes_the_file_of_one_process(shared_data: Path, tmp_path: Path) -> None:
    from builders import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "checkpoint")
    args = [
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(shared_data / "faces"),
        "--every",
        "24",
        "--batch-size",
        "1",
    ]
    on_two_ranks(_cli, [*args, "--out", str(tmp_path / "two.csv")])
    _cli([*args, "--out", str(tmp_path / "one.csv")])
    one, two = (tmp_path / "one.csv").read_text(), (tmp_path / "two.csv").read_text()
    assert len(one.splitlines()) > 8
    assert two == one
    assert not list(tmp_path.glob(".two.csv.part*"))


# ----- finetuning on two processes, device-resident images, GPU switches on the CPU ----


def test_resident_batches_hold_the_loader_batches(tmp_path: Path) -> None:
    data = load_dataset("synthetic:12?size=32")
    images, rows = decode_images(data, 32, torch.device("cpu"), 0, shared=True)
    assert images.dtype == torch.uint8 and images.shape == (12, 3, 32, 32) and list(rows) == list(range(12))
    labels = torch.as_tensor(data.labels, dtype=torch.float32)
    ordered = list(ResidentBatches(images, labels, 5))
    loader = features.image_loader(data, features.eval_transform(32), 5, workers=0)
    for (resident, targets), (expected, expected_targets, _) in zip(ordered, loader, strict=True):
        assert torch.equal(resident, expected) and torch.equal(targets, expected_targets)
    flipped = ResidentBatches(images, labels, 12, torch.Generator().manual_seed(0), flip=True)
    batch, targets = next(iter(flipped))
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(12, generator=generator)
    coins = torch.rand(12, generator=generator) < 0.5
    plain = next(iter(features.image_loader(data, features.eval_transform(32), 12, workers=0)))[0][order]
    expected = torch.where(coins[order][:, None, None, None], plain.flip(-1), plain)
    assert torch.equal(batch, expected) and torch.equal(targets, labels[order])
    assert 0 < int(coins.sum()) < 12


def test_finetuning_on_two_processes_reports_the_metrics_of_its_saved_model(tmp_path: Path) -> None:
    """Device-resident images with flips; the per-epoch evaluation (80 test rows: 64 on rank 0,
    16 on rank 1, with rank 0's BatchNorm statistics) equals one process evaluating the saved model."""
    spec = "synthetic:400?size=32"
    out = tmp_path / "out"
    args = [
        "train",
        "--dataset",
        spec,
        "--model",
        "baseline",
        "--quiet",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
    ]
    for item in [
        "train.mode=finetune",
        "model.backbone=resnet18",
        "train.image_size=32",
        "train.epochs=1",
        "train.batch_size=32",
        "train.workers=0",
        "train.resident=true",
    ]:
        args += ["--set", item]
    on_two_ranks(_cli, args)
    history = pd.read_csv(out / "history.csv")
    data = load_dataset(spec)
    model = load_model(out / "runs" / "split-seed0")
    evaluation = evaluate_model(model, evaluation_rows(data), 32, torch.device("cpu"))
    assert evaluation.loss == history["test_loss"].iloc[-1]
    assert multilabel_metrics(evaluation) == pytest.approx(history[list(METRIC_NAMES)].iloc[-1].to_dict(), abs=0)


def test_gpu_switches_run_on_the_cpu() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6))
    images = torch.randn(2, 3, 8, 8)
    config = TrainConfig(amp="bf16", channels_last=True)
    wrapped = training_module(model, config, torch.device("cpu"))
    assert isinstance(wrapped, Accelerated)
    logits = wrapped(images)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, model(images), rtol=0.05, atol=0.05)
    assert training_module(model, TrainConfig(), torch.device("cpu")) is model
    compiled = training_module(model, TrainConfig(compile=True), torch.device("cpu"))
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)
    with pytest.raises(MlferError, match="train.amp"):
        TrainConfig(amp="fp8")


@pytest.mark.parametrize("native", [True, False])
def test_amp_auto_is_bf16_only_where_the_device_computes_it(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "native_bf16", lambda device: native)
    model = nn.Linear(4, 6)
    wrapped = gpu.training_module(model, TrainConfig(amp="auto"), torch.device("cpu"))
    assert (wrapped.amp == "bf16") if native else wrapped is model  # emulated bf16 is slower than float32


def test_native_bf16_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    flags = tmp_path / "cpuinfo"
    monkeypatch.setattr(gpu, "Path", lambda _: flags)
    for line, native in (
        ("flags : fpu avx2 fma", False),
        ("flags : avx512f avx512_bf16", True),
        ("flags : amx_bf16", True),
    ):
        flags.write_text(line + "\n")
        assert gpu.native_bf16(torch.device("cpu")) is native


def test_gpu_bench_smoke_prints_its_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``bash bench/gpu.sh --smoke`` runs ``bench/gpu_bench.py --smoke``: run it in this process."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    monkeypatch.setattr(sys, "argv", ["bench/gpu_bench.py", "--smoke"])
    import gpu_bench

    gpu_bench.main()
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[0] == "| measurement | setting | rate | rate per bf16 TFLOP/s |"
    measured = {line.split(" | ")[0].removeprefix("| ") for line in table[1:]}
    assert measured == {"bf16 matmul", "fine-tuning", "feature extraction", "predict"}
    rates = [float(line.split(" | ")[2].split()[0]) for line in table[1:]]
    assert all(rate > 0 for rate in rates) and sum("images/s" in line for line in table) == 5
    assert "gpu_bench.py" in (ROOT / "bench" / "gpu.sh").read_text()
