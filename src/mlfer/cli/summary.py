"""``mlfer summary``: the parameter count of a model, module by module, for a preset and overrides."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="print a model's parameter count per module",
        description="Print the trainable parameters of a model built from a preset and --set overrides "
        "(e.g. the SVML-RGCN head of the RAF-ML preset with 300-d word vectors: "
        "mlfer summary --preset raf-ml --set model.word_dim=300).",
    )
    parser.add_argument("--preset", help="start from the paper's settings for a dataset: raf-ml, raf-compound or jaffe")
    parser.add_argument("--model", help="head: baseline, svml-rgcn, svml-gcn, sml-rgcn, vml-rgcn")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. model.word_dim=300 (repeatable)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlfer.core.config import make_config
    from mlfer.models.model import build_model, count_parameters  # torch is imported only when the command runs

    overrides = list(args.overrides) + ([f"model.head={args.model}"] if args.model else [])
    config = make_config(args.preset, overrides)
    model = build_model(config.model, load_backbone_weights=False)
    print(f"{config.model.head} on {config.model.backbone} (D = {config.model.out_features})")
    for name, module in model.head.named_children():
        if count_parameters(module):
            print(f"  head.{name:<12} {count_parameters(module):>12,}")
    print(f"  {'head total':<17} {count_parameters(model.head):>12,}")
    print(f"  {'backbone':<17} {count_parameters(model.backbone):>12,}")
    return 0
