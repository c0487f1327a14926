"""``mlfer pretrain-backbone``: train a ResNet trunk as a six-way expression classifier."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.core.config import make_config, parse_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain-backbone`` parser."""
    parser = subparsers.add_parser(
        "pretrain-backbone",
        help="train a backbone on single-label basic-expression images (the paper's RAF-Basic ResNet50)",
        description="Train model.backbone (resnet50 or resnet18) with a linear six-way classifier by cross-entropy "
        "on the single-label rows of a dataset; write DIR/backbone.safetensors for "
        "--set model.backbone_weights=DIR/backbone.safetensors. See docs/training.md.",
    )
    parser.add_argument("--dataset", required=True, metavar="SPEC", help="e.g. raf-basic:DIR, folder:DIR")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. model.backbone=resnet18 or train.epochs=5 (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue the pretraining in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Pretrain and report the test accuracy."""
    from mlfer.train.loop import enable_huge_pages
    from mlfer.train.pretrain import PRETRAIN_DEFAULTS, pretrain_backbone

    enable_huge_pages()
    config = make_config(None, {**PRETRAIN_DEFAULTS, **parse_overrides(args.set)}, dataset=args.dataset)
    result = pretrain_backbone(config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"test accuracy {result.accuracy:.4f}; wrote {result.weights}")
    return 0
