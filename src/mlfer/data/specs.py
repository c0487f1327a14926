"""Dataset spec strings (``KIND:TARGET?option=value&...``) and :func:`load_dataset`, which reads them.

One spec string names a dataset everywhere in mlfer (command line, configs, checkpoints):
``raf-ml:DIR``, ``raf-basic:DIR``, ``raf-compound:DIR``, ``jaffe:DIR``, ``ferplus:DIR``, ``features:FILE.npz``,
``ldl:FILE.mat``, ``csv:FILE``, ``folder:DIR`` or ``synthetic[:N]``. Options follow a ``?``
in URL-query style (``ldl:jaffe.mat?preset=jaffe``); values may be %-escaped. docs/formats.md
describes every kind and option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.data.dataset import LabelledData
from mlfer.data.ferplus import read_ferplus
from mlfer.data.folder import read_folder
from mlfer.data.jaffe import read_jaffe
from mlfer.data.ldl import read_ldl
from mlfer.data.raf import read_raf_basic, read_raf_compound, read_raf_ml
from mlfer.data.tables import read_csv, read_features

#: Rows of ``synthetic`` when the spec gives no count.
SYNTHETIC_DEFAULT_SIZE = 2000
#: Largest side of synthetic faces (they are drawn in chunks of 128 at twice this side).
SYNTHETIC_MAX_SIZE = 512
#: Most memory the images of one ``synthetic`` dataset may take (N x size x size x 3 bytes).
SYNTHETIC_MAX_BYTES = 8 << 30


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("negative")
    return value


def _fold_count(text: str) -> int:
    value = int(text)
    if value < 2:
        raise ValueError("fewer than 2 folds")
    return value


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(","))


def _flag(text: str) -> bool:
    if text.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError("expected 1/0, true/false or yes/no")
    return text.lower() in ("1", "true", "yes")


def _one_of(*choices: str) -> Callable[[str], str]:
    def choose(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected {' or '.join(choices)}")
        return text

    return choose


def _read_synthetic(target: str, seed: int = 0, single_label: bool = False, size: int = 128) -> LabelledData:
    """Faces generated in memory by :mod:`mlfer.data.synthetic` (``synthetic[:N]``); with
    ``single_label=1`` each face shows one basic expression (for prototypes and pretraining);
    ``size`` is the side of the square images in pixels."""
    from mlfer.data.synthetic import synthetic_dataset

    if target and (not target.isdigit() or int(target) < 1):
        raise MlferError(f"synthetic:N needs a positive row count, got {target[:20]!r}", field="synthetic")
    if not 32 <= size <= SYNTHETIC_MAX_SIZE:
        raise MlferError(f"synthetic faces need a size from 32 to {SYNTHETIC_MAX_SIZE} pixels", field="size")
    count = int(target) if target else SYNTHETIC_DEFAULT_SIZE
    if count * size * size * 3 > SYNTHETIC_MAX_BYTES:
        raise MlferError(
            f"{count} faces of {size} x {size} pixels would take more than {SYNTHETIC_MAX_BYTES >> 30} GiB",
            field="synthetic",
        )
    return synthetic_dataset(count, seed, size=size, single_label=single_label)


@dataclass(frozen=True)
class DatasetKind:
    """How one spec kind is read.

    Args:
        read: reader called as ``read(target, **options)``.
        target: ``"folder"``, ``"file"`` (checked to exist, passed as a Path) or ``"count"`` (text).
        options: option name -> converter from its text (raising ValueError when bad).
        default_folds: seeded folds given to the rows unless ``folds=`` says otherwise.
        presets: preset name -> option texts it stands for (explicit options win).
    """

    read: Callable[..., LabelledData]
    target: str
    options: Mapping[str, Callable[[str], object]] = field(default_factory=dict)
    default_folds: int | None = None
    presets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


KINDS: dict[str, DatasetKind] = {
    "raf-ml": DatasetKind(
        read_raf_ml,
        "folder",
        {"labels": str, "distribution": str, "multilabel": str, "partition": str, "images": str, "binarize": _number},
    ),
    "raf-basic": DatasetKind(read_raf_basic, "folder", {"images": str}),
    "raf-compound": DatasetKind(read_raf_compound, "folder", {"images": str}),
    "jaffe": DatasetKind(read_jaffe, "folder", {"ratings": str, "images": str, "threshold": _number}, default_folds=5),
    "ldl": DatasetKind(
        read_ldl,
        "file",
        {"columns": _names, "offset": _number, "threshold": _number},
        presets={"jaffe": {"columns": "HAP,SAD,SUR,ANG,DIS,FEA", "offset": "1", "threshold": "3", "folds": "5"}},
    ),
    "features": DatasetKind(read_features, "file"),
    "csv": DatasetKind(read_csv, "file"),
    "folder": DatasetKind(read_folder, "folder"),
    "synthetic": DatasetKind(_read_synthetic, "count", {"seed": _count, "single_label": _flag, "size": _count}),
    "ferplus": DatasetKind(
        read_ferplus,
        "folder",
        {
            "min_votes": _count,
            "view": _one_of("multi", "single"),
            "keep_unlabelled": _flag,
            "test": _one_of("private", "valid"),
        },
    ),
}

#: Options every kind accepts: ``folds=K`` gives rows without an official split K seeded folds.
COMMON_OPTIONS: dict[str, Callable[[str], object]] = {"folds": _fold_count}


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``KIND:TARGET?a=1&b=2`` into its kind, target and option texts (presets expanded)."""
    head, _, query = spec.partition("?")
    kind_name, _, target = head.partition(":")
    kind_name = kind_name.strip().lower()
    if kind_name not in KINDS:
        raise MlferError(
            f"unknown dataset kind {kind_name!r} in {spec!r}; valid kinds: {', '.join(KINDS)}"
            " (write KIND:PATH, e.g. raf-ml:/data/RAF-ML)",
            field="dataset",
        )
    kind = KINDS[kind_name]
    valid = [*kind.options, *COMMON_OPTIONS, *(["preset"] if kind.presets else [])]
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, equals, value = item.partition("=")
        if not equals:
            raise MlferError(f"option {item!r} in {spec!r} needs a value (name=value)", field=key)
        if key not in valid:
            raise MlferError(f"unknown option {key!r} for {kind_name}; valid options: {', '.join(valid)}", field=key)
        if key in options:
            raise MlferError(f"option {key!r} is given twice in {spec!r}", field=key)
        options[key] = unquote(value)
    if "preset" in options:
        preset = options.pop("preset")
        if preset not in kind.presets:
            raise MlferError(
                f"unknown preset {preset!r} for {kind_name}; valid presets: {', '.join(kind.presets)}",
                field="preset",
            )
        options = {**kind.presets[preset], **options}
    return kind_name, target, options


def _convert(kind_name: str, options: dict[str, str]) -> dict[str, object]:
    converters = {**KINDS[kind_name].options, **COMMON_OPTIONS}
    values: dict[str, object] = {}
    for key, text in options.items():
        try:
            values[key] = converters[key](text)
        except ValueError as error:
            raise MlferError(f"bad value {text!r} for option {key!r} of {kind_name} ({error})", field=key) from None
    return values


def _check_target(kind_name: str, target: str) -> Path | str:
    expected = KINDS[kind_name].target
    if expected == "count":
        return target
    if not target:
        raise MlferError(f"{kind_name} needs a {expected}: write {kind_name}:PATH", field="dataset")
    path = Path(target).expanduser()
    if expected == "folder" and not path.is_dir():
        raise MlferError(f"no such folder (the {kind_name} dataset root)", path=path)
    if expected == "file" and not path.is_file():
        raise MlferError(f"no such file (the {kind_name} dataset)", path=path)
    return path


def _require_images(data: LabelledData) -> None:
    """Fail early, naming them, when image files listed by a dataset are absent."""
    if data.paths is None:
        return
    missing = [path for path in data.paths if not path.is_file()]
    if missing:
        shown = ", ".join(str(path) for path in missing[:3])
        raise MlferError(
            f"{len(missing)} of {len(data.paths)} image files of {data.spec} are missing (first: {shown})",
            path=missing[0],
        )


def _with_folds(data: LabelledData, folds: int, seed: int, source: Path | str) -> LabelledData:
    """Give every row a fold number 0..K-1 from a seeded shuffled K-fold split (``source``: the target read)."""
    if data.split is not None:
        raise MlferError(f"{data.spec} has an official train/test split; folds={folds} does not apply", field="folds")
    if len(data) < folds:
        path = source if isinstance(source, Path) else None
        raise MlferError(f"{data.spec} has {len(data)} rows, too few for {folds} folds", path=path, field="folds")
    fold_of_row = np.empty(len(data), dtype=np.int64)
    for number, partition in enumerate(data.partitions(folds=folds, seed=seed)):
        fold_of_row[partition.test] = number
    data.folds = fold_of_row
    return data


def load_dataset(spec: str, *, folds_seed: int = 0) -> LabelledData:
    """Read the dataset a spec string names (see docs/formats.md).

    Args:
        spec: ``KIND:TARGET?option=value&...``, e.g. ``jaffe:/data/jaffe`` or ``synthetic:200``.
        folds_seed: seed of the shuffled K-fold split for kinds evaluated by cross-validation
            (JAFFE, ``preset=jaffe``, any ``folds=K``).

    Raises:
        MlferError: for an unknown kind or option, a bad option value, or bad dataset files.
    """
    kind_name, target, options = parse_spec(spec)
    values = _convert(kind_name, options)
    folds = values.pop("folds", KINDS[kind_name].default_folds)
    source = _check_target(kind_name, target)
    data = KINDS[kind_name].read(source, **values)
    data.spec = spec
    _require_images(data)
    if folds is not None:
        if data.folds is not None:
            raise MlferError(f"{spec} already has a folds column; drop folds={folds}", field="folds")
        data = _with_folds(data, int(str(folds)), folds_seed, source)
    return data
