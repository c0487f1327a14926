"""Run configuration: model and training settings, the paper's presets, ``--set`` overrides, YAML."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlfer.core.architectures import BACKBONES, IN_CHANNELS, STEMS, TRUNK_DIMS
from mlfer.core.errors import MlferError
from mlfer.core.fileio import write_text_atomic
from mlfer.core.framing import MAX_FACE_SIZE, MIN_FACE_SIZE
from mlfer.core.messages import clipped, short
from mlfer.core.safe_yaml import YAML_ERRORS, load_yaml, yaml_problem

MODES: tuple[str, ...] = ("frozen", "finetune")
#: Section 4.2: the learning rate is divided by 10 every 20 epochs.
PAPER_LR_STEP = 20
#: ``train.amp``: no autocast, bfloat16 autocast, or bfloat16 where the device computes it
#: natively (see :mod:`mlfer.train.gpu`).
AMP_MODES: tuple[str, ...] = ("none", "bf16", "auto")
#: Settings that config files of earlier versions may hold, and what replaced them.
RETIRED_SETTINGS: dict[str, str] = {"train.save_every": "resume states follow train.save_minutes"}
#: Defaults changed since earlier versions, with the earlier value: a config file without the
#: setting reads with the earlier value, and a run folder that holds it keeps it on --resume.
CHANGED_DEFAULTS: dict[str, Any] = {"train.lr_step": 20, "train.scale_features": False}
#: Least and greatest value of every size and count setting: what a run could ever mean (the
#: paper's values lie far inside). Model folders are shared between people, so a folder asking
#: for more is refused before anything is allocated.
BOUNDS: dict[str, tuple[int, int]] = {
    "model.feature_dim": (1, 16384),
    "model.mfb_k": (1, 64),
    "model.mfb_o": (1, 16384),
    "model.graph_widths": (1, 16384),
    "model.word_dim": (1, 4096),
    "train.epochs": (1, 10000),
    "train.batch_size": (1, 65536),
    "train.lr_step": (1, 10000),
    "train.image_size": (MIN_FACE_SIZE, MAX_FACE_SIZE),
    "train.seed": (0, 2**32 - 1),
    "train.workers": (0, 256),
}
#: Greatest random reframing of a training face (``train.rotate`` in degrees; ``rescale`` and
#: ``shift`` as fractions): beyond these a face is no longer a face in its frame.
REFRAMING_LIMITS: dict[str, float] = {"rotate": 45.0, "rescale": 0.5, "shift": 0.3}
#: Largest MFB joint size k * o (eq. 6; the paper's largest is 5 x 2000).
MAX_MFB_JOINT = 65536


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model's modules (weights come from the checkpoint).

    Args:
        backbone: ``resnet50`` (the paper), ``resnet18`` (light), or ``identity`` for
            precomputed feature vectors of size ``feature_dim``.
        backbone_weights: ``None`` (random), ``"imagenet"`` (torchvision's file), or a
            local ``.safetensors``/``.pth`` file of the trunk.
        feature_dim: D for the identity backbone.
        stem: ``standard`` (torchvision's ResNet) or ``small`` (3 x 3 stride-1 first convolution,
            for 48-64 px faces); see :data:`STEMS`.
        in_channels: 3 (RGB faces) or 1 (grey faces, read as luminance).
        head: a registered head (``mlfer.models`` checks the name when it builds the model).
        t1, t2: negative and positive relation thresholds (eq. 4); ``t2`` is also the
            SVML-GCN binarisation threshold (eq. 13).
        p: SVML-GCN re-weighting (eq. 14).
        mfb_k, mfb_o, mfb_dropout: MFB factor count, output size and dropout (eq. 6).
        graph_widths: output width of each graph layer (1-3 layers); the last must be D.
            Empty means two layers of width D (the paper).
        word_vectors: ``None`` for the packaged GloVe 6B 50-d vectors, or a GloVe text file.
        word_dim: dimension of the word vectors (set when they are loaded).
        negative_slope: LeakyReLU slope between graph layers (as ML-GCN).
    """

    backbone: str = "resnet50"
    backbone_weights: str | None = None
    feature_dim: int | None = None
    stem: str = "standard"
    in_channels: int = 3
    head: str = "svml-rgcn"
    t1: float = 0.15
    t2: float = 0.4
    p: float = 0.2
    mfb_k: int = 4
    mfb_o: int = 1024
    mfb_dropout: float = 0.1
    graph_widths: list[int] = field(default_factory=list)
    word_vectors: str | None = None
    word_dim: int = 50
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        check_bounds(self, "model.")
        if not 0 <= self.mfb_dropout <= 1:
            raise MlferError(f"must lie in [0, 1], got {self.mfb_dropout}", field="model.mfb_dropout")
        if self.mfb_k * self.mfb_o > MAX_MFB_JOINT:
            raise MlferError(
                f"mfb_k x mfb_o = {self.mfb_k * self.mfb_o} is more than {MAX_MFB_JOINT}", field="model.mfb_o"
            )
        if self.backbone not in BACKBONES:
            raise MlferError(
                f"unknown backbone {short(self.backbone)}; choose from {', '.join(BACKBONES)}", field="model.backbone"
            )
        if self.stem not in STEMS:
            raise MlferError(f"unknown stem {short(self.stem)}; choose from {', '.join(STEMS)}", field="model.stem")
        if self.in_channels not in IN_CHANNELS:
            raise MlferError(f"must be 1 (grey) or 3 (RGB), got {short(self.in_channels)}", field="model.in_channels")
        if self.backbone == "identity" and not self.feature_dim:
            raise MlferError(
                "the identity backbone needs feature_dim (the size of the feature vectors)", field="model.feature_dim"
            )
        widths = self.layer_widths()
        if not 1 <= len(widths) <= 3 or widths[-1] != self.out_features:
            raise MlferError(
                f"graph_widths must be 1-3 layer widths ending in D = {self.out_features}, got {widths}",
                field="model.graph_widths",
            )

    @property
    def out_features(self) -> int:
        """D, the size of the backbone's feature vector."""
        if self.backbone == "identity":
            return int(self.feature_dim or 0)  # __post_init__ refuses identity without feature_dim
        return TRUNK_DIMS[self.backbone]

    def layer_widths(self) -> list[int]:
        """Widths of the graph layers (default: two layers of width D)."""
        return list(self.graph_widths) or [self.out_features, self.out_features]


@dataclass(frozen=True)
class Reframing:
    """Random changes of a face's framing for training: each image is rotated by up to
    ``rotate`` degrees, scaled by a factor within ``1 +- rescale`` and shifted by up to ``shift``
    of its side, independently (applied by :func:`mlfer.data.transforms.train_transform`).
    It teaches a model the spread between how a dataset cropped its faces and how
    :func:`mlfer.faces.align_face` frames a detected one; all zero: no change."""

    rotate: float = 0.0
    rescale: float = 0.0
    shift: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.rotate or self.rescale or self.shift)


@dataclass
class TrainConfig:
    """Optimisation settings (section 4.2: Adam, weight decay 2e-4, batch 32, 80 epochs, lr / 10 every 20).

    Args:
        mode: ``frozen`` (cached backbone features, head only) or ``finetune`` (end to end).
        lr_head, lr_backbone: initial learning rates of the classifier branch and of the backbone.
        lr_step, lr_gamma: step decay: multiply by ``lr_gamma`` every ``lr_step`` epochs.
            ``None`` (the default): every 20 epochs in finetune mode (the paper's), never in
            frozen mode, where a head on a few hundred rows takes too few steps before a
            decay (on JAFFE the paper's schedule left the baseline head short of a logistic
            regression on the same features; docs/benchmarks.md).
        scale_features: frozen mode: scale the features with the training rows' statistics,
            kept in the model (:class:`~mlfer.models.model.FeatureScaler`: standardised for the
            baseline, divided by their root mean square, not centred, for the bias-free graph
            heads), so that every later input is read the same way.
        rotate, rescale, shift: finetune mode: random reframing of each training face, by up to
            ``rotate`` degrees, a scale within ``1 +- rescale`` and a shift of up to ``shift`` of
            its side (:class:`Reframing`; 0: none, the paper's).
        image_size: side of the square face image fed to the backbone.
        seed: random seed; ``deterministic`` asks torch for deterministic kernels.
        save_minutes: least wall time between the resume states written to ``last/`` at the
            end of an epoch (0: after every epoch); the state after the last epoch is always
            written. A kill loses at most this much work plus one epoch.
        amp: ``none``, ``bf16`` for bfloat16 autocast in training and evaluation, or ``auto``:
            bf16 where the device computes it natively (a CPU with AMX or AVX-512 BF16, a GPU
            that supports it), else none. The FER+ recipe uses ``auto``: half the wall time on
            an AMX Xeon at the same metrics (docs/benchmarks.md).
        channels_last: feed images to the backbone in channels-last (NHWC) layout.
        compile: ``torch.compile`` the trained module.
        sync_batchnorm: under torchrun on GPUs, BatchNorm statistics over the global batch.
        workers: DataLoader worker processes (None: all CPU cores but one, at most 8).
        resident: finetune mode: decode the faces once into a uint8 tensor on the device
            and shuffle, flip and normalise them there (:mod:`mlfer.train.resident`).
        soft_targets: λ in [0, 1]: train on ``(1 - λ) * labels + λ * distribution``, the
            dataset's label distribution (FER+'s vote shares) blended into the 0/1 labels
            (:func:`mlfer.train.targets.training_targets`); 0: the labels alone. Evaluation
            always uses the labels.
        init_from: a model folder (``mlfer train --out``, the packaged model) whose weights
            start the run's whole model (backbone, feature scaler, head and its graph buffers)
            before training: a warm start; ``None``: a fresh model.
    """

    mode: str = "frozen"
    epochs: int = 80
    batch_size: int = 32
    lr_head: float = 2e-4
    lr_backbone: float = 2e-6
    weight_decay: float = 2e-4
    lr_step: int | None = None
    lr_gamma: float = 0.1
    flip: bool = True
    rotate: float = 0.0
    rescale: float = 0.0
    shift: float = 0.0
    scale_features: bool = True
    image_size: int = 224
    seed: int = 0
    deterministic: bool = False
    save_minutes: float = 1.0
    device: str = "auto"
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_batchnorm: bool = False
    workers: int | None = None
    resident: bool = False
    soft_targets: float = 0.0
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_bounds(self, "train.")
        if self.mode not in MODES:
            raise MlferError(f"unknown mode {short(self.mode)}; choose from {', '.join(MODES)}", field="train.mode")
        if self.amp not in AMP_MODES:
            raise MlferError(f"unknown amp {short(self.amp)}; choose from {', '.join(AMP_MODES)}", field="train.amp")
        if not self.save_minutes >= 0:
            raise MlferError("must be 0 or more", field="train.save_minutes")
        if not 0 <= self.soft_targets <= 1:
            raise MlferError(f"must lie in [0, 1], got {self.soft_targets}", field="train.soft_targets")
        for name, most in REFRAMING_LIMITS.items():
            if not 0 <= getattr(self, name) <= most:
                raise MlferError(f"must lie between 0 and {most}, got {getattr(self, name)}", field=f"train.{name}")

    def reframing(self) -> Reframing:
        """The random reframing of training faces these settings ask for."""
        return Reframing(self.rotate, self.rescale, self.shift)

    def decay_every(self) -> int:
        """Epochs between learning-rate decays: ``lr_step``, or its mode's default (see above)."""
        if self.lr_step is not None:
            return self.lr_step
        return PAPER_LR_STEP if self.mode == "finetune" else self.epochs


@dataclass
class RunConfig:
    """A whole run: what to train on, which model, how.

    Args:
        dataset: dataset spec (``raf-ml:DIR``, ``features:FILE.npz``, ``synthetic:2000``...).
        prototypes: dataset spec of single-label basic-expression images for the visual
            prototypes (eq. 5); ``None`` uses the single-label images of the training split.
        folds: K for seeded K-fold cross-validation where the dataset has no split or folds.
        preset: the preset the run started from, recorded for reference.
    """

    dataset: str = "synthetic:2000"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prototypes: str | None = None
    folds: int = 5
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.train.resident and self.train.reframing():
            raise MlferError(
                "resident images are only flipped; reframing (train.rotate, rescale, shift) needs the data loader",
                field="train.resident",
            )
        if self.train.resident and self.model.in_channels != 3:
            raise MlferError(
                "resident images are RGB; a grey model (model.in_channels=1) trains through the data loader",
                field="train.resident",
            )


#: The paper's settings per dataset (section 4.2); everything else keeps the defaults above.
PRESETS: dict[str, dict[str, Any]] = {
    "raf-ml": {
        "model.t1": 0.15,
        "model.t2": 0.4,
        "model.mfb_k": 4,
        "model.mfb_o": 1024,
        "train.lr_head": 2e-4,
        "train.lr_backbone": 2e-6,
    },
    "raf-compound": {
        "model.t1": 0.15,
        "model.t2": 0.4,
        "model.mfb_k": 5,
        "model.mfb_o": 2000,
        "train.lr_head": 2e-4,
        "train.lr_backbone": 2e-6,
    },
    "jaffe": {
        "model.t1": 1e-6,
        "model.t2": 0.45,
        "model.mfb_k": 5,
        "model.mfb_o": 1000,
        "train.lr_head": 5e-4,
        "train.lr_backbone": 1e-4,
    },
}


def make_config(
    preset: str | None = None, overrides: list[str] | tuple[str, ...] | dict[str, Any] = (), **top: Any
) -> RunConfig:
    """A run config from a preset, ``key=value`` overrides (``model.t1=0.2``) and top-level fields."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise MlferError(f"unknown preset {short(preset)}; choose from {', '.join(PRESETS)}", field="preset")
        values.update(PRESETS[preset])
        values["preset"] = preset
    values.update({key: value for key, value in top.items() if value is not None})
    values.update(parse_overrides(overrides) if isinstance(overrides, list | tuple) else overrides)
    return config_from_flat(values)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["model.t1=0.2", "train.flip=false"]`` -> ``{"model.t1": 0.2, "train.flip": False}`` (YAML values)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise MlferError(f"expected key=value, got {short(item)}", field="--set")
        try:
            parsed[key.strip()] = load_yaml(text) if text.strip() else None
        except YAML_ERRORS as error:
            raise MlferError(
                f"cannot parse the value of {short(item)}: {yaml_problem(error)}", field="--set"
            ) from error
    return parsed


def check_bounds(settings: Any, prefix: str) -> None:
    """Refuse a size or count of ``settings`` (a config section) outside :data:`BOUNDS`."""
    for key, (least, most) in BOUNDS.items():
        section, _, name = key.rpartition(".")
        if section + "." != prefix:
            continue
        value = getattr(settings, name)
        for number in value if isinstance(value, list) else [] if value is None else [value]:
            if not least <= number <= most:
                raise MlferError(f"must lie between {least} and {most}, got {short(number)}", field=key)


def keep_earlier_defaults(config: RunConfig, saved: RunConfig) -> RunConfig:
    """``config`` with each setting of :data:`CHANGED_DEFAULTS` taken from ``saved`` (a run being
    resumed) where ``config`` holds today's default and ``saved`` the earlier one."""
    today = RunConfig()
    for key, earlier in CHANGED_DEFAULTS.items():
        section, name = key.split(".")
        mine = getattr(config, section)
        if (
            getattr(mine, name) == getattr(getattr(today, section), name)
            and getattr(getattr(saved, section), name) == earlier
        ):
            config = dataclasses.replace(config, **{section: dataclasses.replace(mine, **{name: earlier})})
    return config


def config_from_flat(values: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from dotted keys, checking each key and converting each value to its field's type."""
    sections: dict[str, dict[str, Any]] = {"": {}, "model": {}, "train": {}}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        if section not in sections:
            raise MlferError("unknown setting; settings start with model. or train.", field=clipped(key))
        sections[section][name] = value
    model = _build(ModelConfig, sections["model"], "model.")
    train = _build(TrainConfig, sections["train"], "train.")
    return _build(RunConfig, {**sections[""], "model": model, "train": train}, "")


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain nested dict (for YAML/JSON)."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Inverse of :func:`config_to_dict`, with the same checks as overrides; settings of
    :data:`RETIRED_SETTINGS` (written by earlier versions) are dropped with a warning."""
    flat = {str(key): value for key, value in data.items() if key not in ("model", "train")}
    for section in ("model", "train"):
        settings = data.get(section) or {}
        if not isinstance(settings, dict):
            raise MlferError(f"expected a mapping of settings, got {short(settings)}", field=section)
        flat.update({f"{section}.{key}": value for key, value in settings.items()})
    if any(key.startswith("train.") for key in flat):  # a whole config file, not a few overrides
        for key, earlier in CHANGED_DEFAULTS.items():
            flat.setdefault(key, earlier)
    for key in RETIRED_SETTINGS.keys() & flat.keys():
        warnings.warn(f"{key} is no longer used ({RETIRED_SETTINGS[key]}); ignored", stacklevel=2)
        del flat[key]
    return config_from_flat(flat)


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config(path: str | Path) -> RunConfig:
    """Read a config written by :func:`save_config`."""
    path = Path(path)
    if not path.is_file():
        raise MlferError("config file not found", path=path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (*YAML_ERRORS, OSError) as error:
        mark = getattr(error, "problem_mark", None)
        problem = yaml_problem(error) if mark is None else yaml_problem(error).rpartition(" (line ")[0]
        raise MlferError(
            f"not valid YAML: {problem}", path=path, line=None if mark is None else mark.line + 1
        ) from error
    if not isinstance(data, dict):
        raise MlferError("expected a mapping of settings", path=path)
    try:
        return config_from_dict(data)
    except MlferError as error:
        raise MlferError(str(error).removeprefix(f"{error.field}: "), path=path, field=error.field) from None


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {item.name for item in dataclasses.fields(cls)}
    converted = {}
    for name, value in values.items():
        if name not in known:
            raise MlferError(
                f"unknown setting; known: {', '.join(sorted(prefix + k for k in known))}", field=clipped(prefix + name)
            )
        converted[name] = value if name in ("model", "train") else _convert(value, hints[name], prefix + name)
    return cls(**converted)


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML value to a field type (int, float, bool, str, optional, list of int)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None or (type(None) in options and str(value).lower() == "none"):
        if type(None) in options:
            return None
        raise MlferError("a value is required", field=key)
    for option in options:
        if option is type(None):
            continue
        if typing.get_origin(option) is list:
            items = value if isinstance(value, list) else str(value).split(",")
            try:
                return [int(item) for item in items if str(item).strip()]
            except (TypeError, ValueError, OverflowError):
                break
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and not isinstance(value, bool):
            try:
                number = float(value)  # YAML reads "1e-6" (no dot) as a string
            except (TypeError, ValueError, OverflowError):
                continue
            if not math.isfinite(number):
                raise MlferError(f"{short(value)} is not a finite number", field=key)
            return number
        if option is str:
            return str(value)
    raise MlferError(f"{short(value)} is not a valid {getattr(hint, '__name__', hint)}", field=key)
