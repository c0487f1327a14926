"""Settings of the experiments, free of torch so that ``mlfer --help`` can show them: the models and
sweep values of the paper's ablations (section 4.3.2), and the sizes and schedules of the demo.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The rows of the paper's Tables 2 and 3, in their order.
ABLATION_MODELS: tuple[str, ...] = ("baseline", "svml-gcn", "sml-rgcn", "vml-rgcn", "svml-rgcn")
#: The values of section 4.3.2 ("Effect of different thresholds", "Effect of R-GCN layers").
PAPER_SWEEPS: dict[str, tuple[float, ...]] = {
    "t1": (1e-6, 0.05, 0.1, 0.15, 0.2, 0.25),
    "t2": (0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    "layers": (1, 2, 3),
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and schedules of the demo (docs/demo.md measures the defaults).

    Args:
        faces: multi-label synthetic faces (80% train, 20% test).
        basic_faces: single-label faces pre-training the trunk (80% train, 20% test).
        prototype_faces: further single-label faces whose features give the visual prototypes.
        size: side of the generated images and of the backbone input, in pixels.
        pretrain_epochs: epochs of trunk pre-training at :data:`mlfer.experiments.demo.PRETRAIN_LR`, the last one
            at a tenth of it.
        seed: seed of the faces, splits and training.
    """

    faces: int = 2000
    basic_faces: int = 6000
    prototype_faces: int = 600
    size: int = 64
    pretrain_epochs: int = 4
    seed: int = 0

    def synthetic_spec(self, count: int, seed: int, single_label: bool) -> str:
        """The ``synthetic:N`` spec of ``count`` faces at the demo's size."""
        options = "single_label=1&" if single_label else ""
        return f"synthetic:{count}?{options}size={self.size}&seed={seed}"

    @property
    def faces_spec(self) -> str:
        return self.synthetic_spec(self.faces, self.seed, single_label=False)

    @property
    def basic_spec(self) -> str:
        return self.synthetic_spec(self.basic_faces, self.seed + 1, single_label=True)

    @property
    def prototype_spec(self) -> str:
        return self.synthetic_spec(self.prototype_faces, self.seed + 2, single_label=True)
