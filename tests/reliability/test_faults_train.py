"""SIGKILL at random moments of ``mlfer train``: on feature vectors, and while it builds the
feature cache of images. After each kill every output is whole, and ``--resume`` completes
(to the result of an uninterrupted run, for the deterministic feature run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from builders import SMALL, write_features
from faults import (
    CLEAR_ERROR,
    SOAK,
    Command,
    cut_in_half,
    flip_last_byte,
    kill_series,
    kills,
    record,
    run_cli,
)
from mlfer.runtime.hashing import file_sha256, tensor_sha256
from mlfer.train.state import STATE_FILE


def verify_state(path: Path) -> None:
    """A resume state's JSON must name a tensor file whose SHA-256 it records."""
    if path.name == STATE_FILE:
        record = json.loads(path.read_text())
        assert file_sha256(path.parent / record["tensors"]) == record["sha256"], f"{path} names a changed tensor file"


def verify_cache_entry(path: Path) -> None:
    """A feature-cache entry must hold the tensor its metadata checksum describes."""
    if path.suffix == ".safetensors" and path.parent.name == "cache":
        with safe_open(str(path), framework="pt") as handle:
            assert handle.metadata()["sha256"] == tensor_sha256(handle.get_tensor("features")), f"{path} is corrupt"


def train_args(dataset: str, out: Path, *settings: str) -> list[str]:
    args = ["train", "--dataset", dataset, "--quiet", "--out", str(out)]
    for item in settings:
        args += ["--set", item]
    return args


def test_train_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    npz = write_features(tmp_path / "features.npz", rows=120)
    settings = [*SMALL, "train.epochs=30"]

    def args(out: Path) -> list[str]:
        return [*train_args(f"features:{npz}", out, *settings), "--model", "svml-rgcn", "--deterministic"]

    reference = run_cli(args(tmp_path / "reference"), tmp_path / "scratch")
    reference.check_finished()
    out = tmp_path / "out"
    command = Command("mlfer train", args(out), [*args(out), "--resume"], [out], verify=verify_state)
    kill_series(command, reference.seconds, kills(10, soak=60), tmp_path / "scratch", seed=1, fresh=SOAK)
    resumed = json.loads((out / "metrics.json").read_text())
    whole = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert resumed["runs"]["split-seed0"] == pytest.approx(whole["runs"]["split-seed0"], abs=1e-5)


def test_feature_cache_build_killed_at_random_moments(tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    def args(out: Path) -> list[str]:
        return [
            *train_args("synthetic:40", out, "model.backbone=resnet18", "train.image_size=32", "train.epochs=2"),
            "--model",
            "baseline",
            "--cache",
            str(cache),
        ]

    reference = run_cli(args(tmp_path / "reference"), tmp_path / "scratch")
    reference.check_finished()
    entries = sorted(path.name for path in cache.iterdir())
    assert len(entries) == 2  # plain and flipped features
    out = tmp_path / "out"
    command = Command("feature cache", args(out), [*args(out), "--resume"], [out, cache], verify=verify_cache_entry)
    command.reset()
    # A run killed in the build leaves no entry, so each rerun builds again until one gets past it.
    kill_series(command, reference.seconds, kills(10, soak=60), tmp_path / "scratch", seed=2, fresh=SOAK)
    assert sorted(path.name for path in cache.iterdir() if not path.name.startswith(".")) == entries


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_cache_entry_is_rebuilt_not_used(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"

    def args(out: Path) -> list[str]:
        return [
            *train_args(
                "synthetic:24",
                out,
                "model.backbone=resnet18",
                "train.image_size=32",
                "train.epochs=1",
                "train.flip=false",
            ),
            "--model",
            "baseline",
            "--cache",
            str(cache),
        ]

    run_cli(args(tmp_path / "first"), tmp_path / "scratch").check_finished()
    (entry,) = cache.iterdir()
    (flip_last_byte if damage == "flip" else cut_in_half)(entry)
    again = run_cli(args(tmp_path / "again"), tmp_path / "scratch")
    again.check_finished()
    assert f"feature cache entry {entry}" in again.stderr and "rebuilding it" in again.stderr
    record("damaged cache entry", CLEAR_ERROR, "rebuilt with a warning")
    verify_cache_entry(entry)
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())["mean"]
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["mean"] == pytest.approx(first, abs=1e-6)
