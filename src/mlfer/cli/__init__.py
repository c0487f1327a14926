"""The ``mlfer`` command: one sub-command per module in :mod:`mlfer.cli`.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``handler`` (a function of the parsed arguments returning an exit status) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import warnings
from pathlib import Path
from typing import TextIO

from mlfer.core.errors import MlferError

#: Command modules, in the order ``mlfer --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "mlfer.cli.demo",
    "mlfer.cli.train",
    "mlfer.cli.evaluate",
    "mlfer.cli.ablate",
    "mlfer.cli.pretrain_backbone",
    "mlfer.cli.predict",
    "mlfer.cli.explain",
    "mlfer.cli.export",
    "mlfer.cli.seal",
    "mlfer.cli.serve",
    "mlfer.cli.align",
    "mlfer.cli.graph",
    "mlfer.cli.summary",
    "mlfer.cli.info",
)


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint DIR``, for the commands that run one model (default: the packaged one)."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="model folder (mlfer train); default: the FER+ model that ships with mlfer (mlfer info)",
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-unverified-weights``, for the commands that load a model folder."""
    parser.add_argument(
        "--trust-unverified-weights",
        action="store_true",
        help="load a model.safetensors that carries no checksum (written by other tools), or a model folder whose "
        "files differ from its manifest.json; damage to them then goes undetected",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to generate docs/cli.md)."""
    parser = argparse.ArgumentParser(
        prog="mlfer", description="Multi-label facial expression recognition with SVML-RGCN."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def plain_warnings(command: str) -> None:
    """Print each warning as one line, ``mlfer COMMAND: warning: MESSAGE``, like the errors:
    no source path or code line (the warning filters, ``-W`` included, still apply)."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"mlfer {command}: warning: {' '.join(str(message).split())}", file=file or sys.stderr)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input ends with a one-line message and exit status 2, and
    warnings are printed as one line each."""
    for stream in (sys.stdout, sys.stderr):  # a file name that does not decode is printed escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        plain_warnings(args.command)
        try:
            return int(args.handler(args) or 0)
        except MlferError as error:
            print(f"mlfer {args.command}: error: {error}", file=sys.stderr)
            return 2
