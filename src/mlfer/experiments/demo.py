"""``mlfer demo``: the whole method on generated faces, offline, in minutes on a CPU.

1. A basic-expression set of synthetic faces (one expression each) trains a ResNet18 trunk
   as a six-way classifier: the paper's "ResNet50 trained on RAF-Basic", scaled down.
2. A multi-label set of synthetic blended faces (label sets drawn in RAF-ML's proportions)
   goes through that frozen trunk once; the baseline and the SVML-RGCN heads train on the
   cached features with the same split and seed, the paper's 80-epoch schedule, and the
   visual prototypes (eq. 5) of a further, held-out set of basic faces.
3. The comparison table, the label graph and the training curves are written to ``OUT``, with
   a face for ``mlfer explain`` (the paper's Fig. 7): drawn afresh, labelled surprise, happiness
   and anger.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mlfer.core.config import PAPER_LR_STEP, make_config
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.data.synthetic import render_faces
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.evaluation.report import heading
from mlfer.experiments.ablation import compare_models
from mlfer.experiments.settings import DemoSettings
from mlfer.runtime.reproduce import intra_op_threads
from mlfer.train.fitting import METRICS_FILE, is_finished
from mlfer.train.pretrain import BACKBONE_FILE, PRETRAIN_DEFAULTS, pretrain_backbone
from mlfer.train.run_folder import TrainingResults

DEMO_MODELS: tuple[str, ...] = ("baseline", "svml-rgcn")
#: The heads train as section 4.2 has it: on the trunk's features as they are, lr / 10 every 20
#: epochs (frozen mode's own defaults scale the features and keep the rate; docs/training.md).
PAPER_HEAD_SCHEDULE = {"train.scale_features": False, "train.lr_step": PAPER_LR_STEP}
#: Adam learning rate of the trunk and its new classifier, trained from scratch.
PRETRAIN_LR = 1e-3
#: The labels of the face the demo saves for ``mlfer explain``: a blend like the paper's Fig. 7.
EXPLAIN_LABELS: tuple[str, ...] = ("surprise", "happiness", "anger")
#: That face's seed is the demo's seed plus this: the blended, basic and prototype faces take seed,
#: seed + 1 and seed + 2, so none of the faces the models learnt from is this one.
EXPLAIN_SEED_OFFSET = 3
#: What ``run_demo`` writes into its folder (besides ``backbone/`` and ``cache/``).
DEMO_OUTPUTS: tuple[str, ...] = ("table.md", "table.csv", "graph.png", "curves.png", "face.png", *DEMO_MODELS)


def pretrained_trunk(settings: DemoSettings, out_dir: Path, progress: bool) -> Path:
    """Pre-train the ResNet18 trunk on the basic set (read back when finished in ``out_dir``)."""
    if not is_finished(out_dir):
        epochs = settings.pretrain_epochs
        overrides = {
            **PRETRAIN_DEFAULTS,
            "model.backbone": "resnet18",
            "train.image_size": settings.size,
            "train.epochs": epochs,
            "train.lr_step": max(1, epochs - 1),
            "train.lr_head": PRETRAIN_LR,
            "train.lr_backbone": PRETRAIN_LR,
            "train.seed": settings.seed,
        }
        config = make_config(None, overrides, dataset=settings.basic_spec)
        pretrain_backbone(config, out_dir, resume=(out_dir / "config.yaml").is_file(), progress=progress)
    accuracy = json.loads((out_dir / METRICS_FILE).read_text())["accuracy"]
    print(f"backbone pre-trained on {settings.basic_faces} basic faces: test accuracy {accuracy:.3f}")
    return out_dir / BACKBONE_FILE


def run_demo(out_dir: str | Path, settings: DemoSettings = DemoSettings(), progress: bool = True) -> pd.DataFrame:
    """Run the demo into ``out_dir`` (a rerun reuses what is finished) and return the comparison."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    weights = pretrained_trunk(settings, out_dir / "backbone", progress)
    overrides = {
        "model.backbone": "resnet18",
        "model.backbone_weights": str(weights),
        "train.image_size": settings.size,
        "train.seed": settings.seed,
        **PAPER_HEAD_SCHEDULE,
    }
    config = make_config("raf-ml", overrides, dataset=settings.faces_spec, prototypes=settings.prototype_spec)
    heads_start = time.perf_counter()
    with intra_op_threads(1):  # the heads' six-row steps lose to thread contention (docs/demo.md)
        frame, results = compare_models(
            config, out_dir, DEMO_MODELS, (settings.seed,), resume=True, cache_dir=out_dir / "cache", progress=progress
        )
    finish = time.perf_counter()
    print(f"pre-training {heads_start - start:.0f} s, features and heads {finish - heads_start:.0f} s")
    with atomic_path(out_dir / "graph.png") as temporary:
        shutil.copyfile(out_dir / "svml-rgcn" / "graph.png", temporary)
    plot_curves(results, out_dir / "curves.png")
    save_explain_face(settings, out_dir / "face.png")
    return frame


def save_explain_face(settings: DemoSettings, path: Path) -> Path:
    """Save the face of README's ``mlfer explain`` example: one synthetic face of the demo's size
    showing :data:`EXPLAIN_LABELS`, drawn with the seed ``settings.seed + EXPLAIN_SEED_OFFSET``."""
    labels = np.array([[name in EXPLAIN_LABELS for name in EXPRESSIONS]], dtype=np.uint8)
    face = render_faces(labels, seed=settings.seed + EXPLAIN_SEED_OFFSET, size=settings.size)
    with atomic_path(path) as temporary:
        Image.fromarray(face.images[0]).save(temporary, format="PNG")
    return path


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
