"""``mlfer info``: the version, and the card of the model that ships with mlfer."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` parser."""
    parser = subparsers.add_parser(
        "info",
        help="print mlfer's version and the card of the packaged FER+ model",
        description="Print mlfer's version, where the packaged model lies, and its model card: data, label rule, "
        "trunk, training commands and time, metrics on FER+ PublicTest, thresholds and known limits "
        "(docs/model-card.md).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the version, the packaged model's folder and its card."""
    from mlfer.core.version import __version__
    from mlfer.models.shipped import model_card, shipped_model_dir

    print(f"mlfer {__version__}\npackaged model: {shipped_model_dir()}\n")
    print(model_card())
    return 0
