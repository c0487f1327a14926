"""``mlfer demo``: pre-train a trunk on synthetic basic faces, compare baseline and SVML-RGCN on blended ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.experiments.settings import DemoSettings

DEFAULTS = DemoSettings()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole method offline on synthetic blended-expression faces (about 5 minutes on 2 CPU cores)",
        description="Generate synthetic faces, pre-train a ResNet18 trunk on single-expression faces, train the "
        "baseline and SVML-RGCN heads on blended faces with the paper's schedule, print the comparison and write "
        "OUT/table.md, OUT/graph.png (the label graph), OUT/curves.png (training curves) and OUT/face.png (a "
        "synthetic face showing surprise, happiness and anger, for mlfer explain). A rerun with the same OUT "
        "reuses what is finished.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("mlfer-demo"), metavar="DIR", help="output folder (default: mlfer-demo)"
    )
    parser.add_argument("--faces", type=int, default=DEFAULTS.faces, help="blended faces, 80%% train / 20%% test")
    parser.add_argument(
        "--basic-faces",
        type=int,
        default=DEFAULTS.basic_faces,
        help="single-expression faces for pre-training the trunk, 80%% train / 20%% test",
    )
    parser.add_argument(
        "--prototype-faces",
        type=int,
        default=DEFAULTS.prototype_faces,
        help="further single-expression faces for the visual prototypes",
    )
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help="image side in pixels")
    parser.add_argument("--pretrain-epochs", type=int, default=DEFAULTS.pretrain_epochs)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the comparison table."""
    from mlfer.evaluation.report import comparison_text
    from mlfer.experiments.demo import run_demo
    from mlfer.train.loop import enable_huge_pages

    enable_huge_pages()
    settings = DemoSettings(
        faces=args.faces,
        basic_faces=args.basic_faces,
        prototype_faces=args.prototype_faces,
        size=args.size,
        pretrain_epochs=args.pretrain_epochs,
        seed=args.seed,
    )
    frame = run_demo(args.out, settings, progress=not args.quiet)
    print(comparison_text(frame))
    print(
        f"wrote {args.out / 'table.md'}, {args.out / 'graph.png'}, {args.out / 'curves.png'}, {args.out / 'face.png'}"
    )
    return 0
