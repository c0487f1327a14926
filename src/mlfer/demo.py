"""``mlfer demo``: the whole method on generated faces, offline, in minutes on a CPU.

1. A basic-expression set of synthetic faces (one expression each) trains a ResNet18 trunk
   as a six-way classifier: the paper's "ResNet50 trained on RAF-Basic", scaled down.
2. A multi-label set of synthetic blended faces (label sets drawn in RAF-ML's proportions)
   goes through that frozen trunk once; the baseline and the SVML-RGCN heads train on the
   cached features with the same split and seed, the paper's 80-epoch schedule, and the
   visual prototypes of the basic set (eq. 5).
3. The comparison table, the label graph and the training curves are written to ``OUT``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlfer.ablation import compare_models
from mlfer.fileio import atomic_path
from mlfer.metrics import METRIC_NAMES
from mlfer.report import heading
from mlfer.train.config import make_config
from mlfer.train.pretrain import BACKBONE_FILE, PRETRAIN_DEFAULTS, pretrain_backbone
from mlfer.train.runs import TrainingResults

DEMO_MODELS: tuple[str, ...] = ("baseline", "svml-rgcn")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo (the defaults finish in a few minutes on a 2-core CPU).

    Args:
        faces: multi-label synthetic faces (80% train, 20% test).
        basic_faces: single-label faces for pre-training the trunk and the prototypes.
        size: side of the generated images and of the backbone input, in pixels.
        pretrain_epochs: epochs of trunk pre-training.
        seed: seed of the faces, splits and training.
    """

    faces: int = 2000
    basic_faces: int = 1500
    size: int = 64
    pretrain_epochs: int = 6
    seed: int = 0

    @property
    def basic_spec(self) -> str:
        return f"synthetic:{self.basic_faces}?single_label=1&size={self.size}&seed={self.seed + 1}"

    @property
    def faces_spec(self) -> str:
        return f"synthetic:{self.faces}?size={self.size}&seed={self.seed}"


def pretrained_trunk(settings: DemoSettings, out_dir: Path, progress: bool) -> Path:
    """Pre-train the ResNet18 trunk on the basic set (reused when already in ``out_dir``)."""
    weights = out_dir / BACKBONE_FILE
    if weights.is_file():
        return weights
    overrides = {
        **PRETRAIN_DEFAULTS,
        "model.backbone": "resnet18",
        "train.image_size": settings.size,
        "train.epochs": settings.pretrain_epochs,
        "train.lr_step": max(1, settings.pretrain_epochs - 2),
        "train.lr_backbone": 1e-3,
        "train.seed": settings.seed,
    }
    config = make_config(None, overrides, dataset=settings.basic_spec)
    result = pretrain_backbone(config, out_dir, resume=(out_dir / "config.yaml").is_file(), progress=progress)
    print(f"backbone pre-trained on {settings.basic_faces} basic faces: test accuracy {result.accuracy:.3f}")
    return result.weights


def run_demo(out_dir: str | Path, settings: DemoSettings = DemoSettings(), progress: bool = True) -> pd.DataFrame:
    """Run the demo into ``out_dir`` (a rerun reuses what is finished) and return the comparison."""
    out_dir = Path(out_dir)
    weights = pretrained_trunk(settings, out_dir / "backbone", progress)
    overrides = {
        "model.backbone": "resnet18",
        "model.backbone_weights": str(weights),
        "train.image_size": settings.size,
        "train.seed": settings.seed,
        "train.save_every": 10,
    }
    config = make_config("raf-ml", overrides, dataset=settings.faces_spec, prototypes=settings.basic_spec)
    frame, results = compare_models(config, out_dir, DEMO_MODELS, (settings.seed,), resume=True,
                                    cache_dir=out_dir / "cache", progress=progress)
    with atomic_path(out_dir / "graph.png") as temporary:
        shutil.copyfile(out_dir / "svml-rgcn" / "graph.png", temporary)
    plot_curves(results, out_dir / "curves.png")
    return frame


def plot_curves(results: dict[str, TrainingResults], path: Path) -> None:
    """Training curves: losses and the test metrics per epoch, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["train_loss", "test_loss", "average_precision", "macro_f1", "ranking_loss", "macro_auc"]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 2.8))
    for model, result in results.items():
        history = result.history()
        for axis, column in zip(axes, panels):
            axis.plot(history["epoch"], history[column], label=model)
    for axis, column in zip(axes, panels):
        axis.set_title(heading(column) if column in METRIC_NAMES else column.replace("_", " "), fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
