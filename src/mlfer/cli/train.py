"""``mlfer train``: train a head (or the whole model) on every partition and seed of a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlfer.core.config import BOUNDS, PRESETS, RunConfig, make_config, parse_overrides

if TYPE_CHECKING:
    from mlfer.data import LabelledData


def seed_list(text: str) -> list[int]:
    """argparse type of ``--seeds``: comma-separated integers such as ``0,1,2``."""
    try:
        seeds = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    least, most = BOUNDS["train.seed"]
    if not all(least <= seed <= most for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds must lie between {least} and {most}")
    return seeds


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments shared by ``train`` and ``ablate``: data, preset, overrides, seeds, output."""
    parser.add_argument(
        "--dataset", required=True, metavar="SPEC", help="dataset spec, e.g. raf-ml:DIR or features:FILE.npz"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="the paper's settings for a dataset")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. train.epochs=20 or model.t1=0.2 (repeatable)",
    )
    parser.add_argument(
        "--prototypes",
        metavar="SPEC",
        help="single-label images for the visual prototypes (default: single-label training rows)",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="one seed (default: train.seed, 0)")
    seeds.add_argument("--seeds", type=seed_list, help="one run per seed and partition, e.g. 0,1,2")
    parser.add_argument("--folds", type=int, help="K-fold cross-validation where the dataset has no split (default 5)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower)")
    parser.add_argument(
        "--cache", type=Path, metavar="DIR", help="feature cache folder (default: ~/.cache/mlfer/features)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue the unfinished runs in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset (each partition and seed) and evaluate it on the test rows",
        description="Train on every partition (the official split, or each fold) and seed; write the config, "
        "models, graph, per-epoch history, metrics (mean and std over runs) and environment to --out. "
        "See docs/training.md.",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="HEAD",
        help="the classifier head: svml-rgcn (the paper's), baseline, svml-gcn, sml-rgcn, vml-rgcn, "
        "or another registered one",
    )
    add_run_arguments(parser)
    parser.set_defaults(handler=run)


def resolve_config(args: argparse.Namespace, data: LabelledData, head: str) -> RunConfig:
    """The run config of ``add_run_arguments``'s options for one head."""
    from mlfer.train.run_model import data_overrides

    overrides = {**data_overrides(data), "model.head": head, **parse_overrides(args.set)}
    if args.deterministic:
        overrides["train.deterministic"] = True
    if args.seed is not None:
        overrides["train.seed"] = args.seed
    return make_config(args.preset, overrides, dataset=args.dataset, prototypes=args.prototypes, folds=args.folds)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train every run (under torchrun, every process together), print the summary table."""
    from mlfer.core.fileio import check_destination
    from mlfer.data import load_dataset
    from mlfer.models.heads import head_class  # torch: imported when the command runs
    from mlfer.runtime.distributed import is_main, process_group
    from mlfer.train.loop import enable_huge_pages
    from mlfer.train.run_folder import train_runs

    enable_huge_pages()
    head_class(args.model)  # an unknown head is refused before the data are read
    check_destination(args.out, folder=True)  # and a folder that cannot be written
    data = load_dataset(args.dataset)
    config = resolve_config(args, data, args.model)
    seeds = args.seeds or [config.train.seed]
    with process_group(config.train.device):
        main = is_main()
        results = train_runs(
            config,
            args.out,
            seeds,
            resume=args.resume,
            cache_dir=args.cache,
            data=data,
            progress=not args.quiet and main,
        )
    if not main:
        return 0
    print(results.table().to_string(float_format=lambda value: f"{value:.4f}"))
    print(f"wrote {args.out}")
    return 0
