"""A model folder sealed as a whole: one record of what the model expects, and the SHA-256 of
every file that changes its answers.

Like timm's pretrained config and torchvision's ``Weights.meta``, ``manifest.json`` holds a
model's preprocessing (face size, channels, mean, std, alignment template, thresholds,
expression order) and provenance (what it was trained on, by which mlfer), and the digests of
``config.yaml``, ``model.safetensors``, ``thresholds.json``, ``framing.json`` and ``graph.json``.
:func:`seal` writes it whole; :func:`read_package` reads it back whole, checks every value and
every digest, and refuses a folder whose files changed since, naming the file. After an
intended edit (thresholds tuned by hand, say) ``mlfer seal DIR`` seals the folder anew.

Folders written before manifests (no ``manifest.json``) load as before: their weights carry
their own checksum (:mod:`mlfer.models.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from mlfer.core.config import RunConfig, load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import write_text_atomic
from mlfer.core.jsonfile import read_json
from mlfer.core.messages import short
from mlfer.core.version import __version__
from mlfer.evaluation.thresholds import THRESHOLDS_FILE
from mlfer.models.preprocessing import FRAMING_FILE, Preprocessing
from mlfer.runtime.hashing import file_sha256

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
GRAPH_FILE = "graph.json"
#: The files of a model folder that change its answers, all covered by the manifest.
SEALED_FILES: tuple[str, ...] = (CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE, FRAMING_FILE, GRAPH_FILE)
FORMAT = "mlfer-model"
FORMAT_VERSION = 1
#: Provenance entries and the longest text each may hold.
PROVENANCE_KEYS: tuple[str, ...] = (
    "mlfer",
    "sealed",
    "dataset",
    "prototypes",
    "backbone_weights",
    "word_vectors",
    "init_from",
)
MAX_PROVENANCE_TEXT = 1000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RESEAL = (
    "if the change was meant, seal the folder anew (mlfer seal DIR); to load it as it is, --trust-unverified-weights"
)


@dataclass(frozen=True)
class Package:
    """What ``manifest.json`` records of a model folder.

    Args:
        preprocessing: the model's input and thresholds (the tuned ones where ``tuned``).
        tuned: whether the folder's ``thresholds.json`` gave the thresholds (else 0.5 each).
        provenance: where the model came from (:data:`PROVENANCE_KEYS`; paths as the user
            named them, made relative where they were absolute).
        files: SHA-256 of each sealed file present, by name.
    """

    preprocessing: Preprocessing
    tuned: bool
    provenance: dict[str, str | None]
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON values."""
        p = self.preprocessing
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "expressions": list(EXPRESSIONS),
            "preprocessing": {
                "image_size": p.image_size,
                "channels": p.channels,
                "mean": list(p.mean or ()),
                "std": list(p.std or ()),
                "template": None if p.template is None else [list(point) for point in p.template],
                "thresholds": list(p.thresholds) if self.tuned else None,
            },
            "provenance": self.provenance,
            "files": dict(sorted(self.files.items())),
        }

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> Package:
        """A manifest read back, each value checked; a wrong one is named with ``path``."""
        try:
            _keys(data, ("format", "version", "expressions", "preprocessing", "provenance", "files"), "")
            if data["format"] != FORMAT or data["version"] != FORMAT_VERSION:
                raise MlferError(f"not a manifest this mlfer reads ({FORMAT} {FORMAT_VERSION})", field="format")
            if data["expressions"] != list(EXPRESSIONS):
                raise MlferError(f"expected the order {list(EXPRESSIONS)}", field="expressions")
            given = data["preprocessing"]
            _keys(given, ("image_size", "channels", "mean", "std", "template", "thresholds"), "preprocessing.")
            for name in ("image_size", "channels"):
                if isinstance(given[name], bool) or not isinstance(given[name], int):
                    raise MlferError(f"must be an integer, got {short(given[name])}", field=f"preprocessing.{name}")
            tuned = given["thresholds"] is not None
            preprocessing = Preprocessing(**{key: value for key, value in given.items() if value is not None})
            return cls(preprocessing, tuned, _provenance(data["provenance"]), _digests(data["files"]))
        except MlferError as error:
            raise MlferError(str(error).removeprefix(f"{error.field}: "), path=path, field=error.field) from None
        except (TypeError, ValueError) as error:
            raise MlferError(f"not a valid manifest ({error})", path=path) from None


def seal(directory: str | Path, provenance: dict[str, str | None] | None = None) -> Package:
    """Write ``manifest.json`` for a model folder as it is now, and return what it records.

    The preprocessing is read from the folder's files (:meth:`Preprocessing.from_folder`), so
    a bad ``framing.json`` or ``thresholds.json`` is refused here, before it is sealed.
    Provenance is ``provenance``, else the folder's earlier manifest's, else the config's.
    """
    directory = Path(directory)
    config = load_config(directory / CONFIG_FILE)
    tuned = (directory / THRESHOLDS_FILE).is_file()
    if provenance is None:
        provenance = _earlier_provenance(directory) or provenance_of(config)
    package = Package(
        preprocessing=Preprocessing.from_folder(directory, config),
        tuned=tuned,
        provenance={**provenance, "mlfer": __version__, "sealed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        files={name: file_sha256(directory / name) for name in SEALED_FILES if (directory / name).is_file()},
    )
    write_text_atomic(directory / MANIFEST_FILE, json.dumps(package.to_dict(), indent=2) + "\n")
    return package


def read_package(directory: Path, config: RunConfig, trust_unverified: bool = False) -> Package | None:
    """The folder's manifest, checked against its files; ``None`` for a folder without one.

    Refuses a sealed file that is missing, changed, or added since sealing, and a manifest
    whose preprocessing disagrees with the files, naming the file; ``trust_unverified``
    passes all of these (the folder then loads from its files, as one without a manifest).
    """
    path = directory / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        package = Package.from_dict(read_json(path), path)
        _check_files(directory, package.files)
        found = Preprocessing.from_folder(directory, config)
        if found != package.preprocessing or package.tuned != (directory / THRESHOLDS_FILE).is_file():
            raise MlferError(f"its preprocessing differs from the folder's files; {_RESEAL}", path=path)
    except MlferError:
        if trust_unverified:
            return None
        raise
    return package


def check_weights_checksum(path: Path, trust_unverified: bool = False) -> None:
    """Refuse a weights file whose metadata carries no SHA-256 of its tensors, unless
    ``trust_unverified`` (reading only its header: no torch needed)."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            recorded = (handle.metadata() or {}).get("sha256", "")
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the weights ({error})", path=path) from error
    if not _SHA256.fullmatch(recorded) and not trust_unverified:
        raise MlferError(
            "the weights carry no checksum (sha256 in their metadata), so damage cannot be detected; "
            "if you trust this file, load it with trust_unverified=True (--trust-unverified-weights)",
            path=path,
        )


def provenance_of(config: RunConfig) -> dict[str, str | None]:
    """Where a model came from, by its config: dataset specs and files as named, made relative."""
    return {
        "dataset": portable(config.dataset),
        "prototypes": portable(config.prototypes),
        "backbone_weights": portable(config.model.backbone_weights),
        "word_vectors": portable(config.model.word_vectors),
        "init_from": portable(config.train.init_from),
    }


def portable_config(config: RunConfig) -> RunConfig:
    """``config`` with its dataset specs and files named as :func:`provenance_of` names them, for
    a model folder that leaves the machine it was trained on."""
    named = provenance_of(config)
    model = dataclasses.replace(
        config.model, backbone_weights=named["backbone_weights"], word_vectors=named["word_vectors"]
    )
    train = dataclasses.replace(config.train, init_from=named["init_from"])
    return dataclasses.replace(
        config, dataset=str(named["dataset"]), prototypes=named["prototypes"], model=model, train=train
    )


def portable(spec: str | None) -> str | None:
    """A dataset spec (``kind:TARGET?options``) or file with an absolute path made relative to the
    working directory, so that no record names a folder of the machine it was written on."""
    if spec is None:
        return None
    kind, colon, rest = spec.partition(":") if ":" in spec and not spec.startswith("/") else ("", "", spec)
    target, question, options = rest.partition("?")
    if os.path.isabs(target):
        target = os.path.relpath(target)
    return f"{kind}{colon}{target}{question}{options}"


def _check_files(directory: Path, recorded: dict[str, str]) -> None:
    for name in SEALED_FILES:
        path = directory / name
        if name not in recorded:
            if path.exists():
                raise MlferError(f"was added after the folder was sealed ({MANIFEST_FILE}); {_RESEAL}", path=path)
        elif not path.is_file():
            raise MlferError(f"is missing: {MANIFEST_FILE} lists it", path=path)
        elif file_sha256(path) != recorded[name]:
            raise MlferError(f"changed since the folder was sealed (its SHA-256 differs); {_RESEAL}", path=path)


def _earlier_provenance(directory: Path) -> dict[str, str | None] | None:
    try:
        return Package.from_dict(read_json(directory / MANIFEST_FILE), directory / MANIFEST_FILE).provenance
    except MlferError:  # none, or one that cannot be read: provenance comes from the config
        return None


def _keys(data: Any, expected: tuple[str, ...], prefix: str) -> None:
    if not isinstance(data, dict):
        raise MlferError(f"expected an object, got {short(data)}", field=prefix.rstrip(".") or None)
    missing, unknown = sorted(set(expected) - data.keys()), sorted(data.keys() - set(expected))
    if missing or unknown:
        raise MlferError(
            f"missing {missing}, unknown {[short(key) for key in unknown]}", field=prefix.rstrip(".") or None
        )


def _provenance(data: Any) -> dict[str, str | None]:
    if not isinstance(data, dict) or not set(data) <= set(PROVENANCE_KEYS):
        raise MlferError(f"expected an object with keys among {list(PROVENANCE_KEYS)}", field="provenance")
    for key, value in data.items():
        if value is not None and (not isinstance(value, str) or len(value) > MAX_PROVENANCE_TEXT):
            raise MlferError(f"expected a text of at most {MAX_PROVENANCE_TEXT} characters", field=f"provenance.{key}")
    return dict(data)


def _digests(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise MlferError("expected an object of file names and SHA-256 digests", field="files")
    for name, digest in data.items():
        if name not in SEALED_FILES:
            raise MlferError(
                f"{short(name)} is not a file a manifest covers ({', '.join(SEALED_FILES)})", field="files"
            )
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise MlferError(f"expected a SHA-256 in hex, got {short(digest)}", field=f"files.{name}")
    for name in (CONFIG_FILE, MODEL_FILE):
        if name not in data:
            raise MlferError(f"{name} is not covered", field="files")
    return dict(data)
