"""Grad-CAM: the maths against a hook-based reference, and the Fig. 7 figure.

Whether the maps of a trained network fall on the action units of synthetic faces is
measured by ``bench/gradcam_localisation.py`` (its ``--check``; a smoke test in tests/bench).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from builders import IMAGE_SIZE, NO_FACE, make_checkpoint
from mlfer.cli import main
from mlfer.core.config import ModelConfig
from mlfer.core.errors import MlferError
from mlfer.inference.explain import (
    FIGURE_FORMATS,
    Explanation,
    draw_explanations,
    figure_title,
    grad_cam,
    row_label,
    training_data,
)
from mlfer.models.checkpoint import load_model
from mlfer.models.model import build_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("explain")
    return make_checkpoint(folder / "baseline", head="baseline"), make_checkpoint(folder / "svml", seed=1)


def _reference_grad_cam(model: torch.nn.Module, image: torch.Tensor, index: int, layer: str) -> np.ndarray:
    """Grad-CAM the textbook way: a forward hook on the block, backward from one logit of one image."""
    stored = {}
    block = getattr(model.backbone.body, layer)
    hook = block.register_forward_hook(lambda module, inputs, output: stored.update(a=output))
    try:
        logits = model(image[None])
    finally:
        hook.remove()
    activations = stored["a"]
    (gradients,) = torch.autograd.grad(logits[0, index], activations)
    cam = F.relu((gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0].detach()
    return (cam / cam.max() if cam.max() > 0 else cam).numpy()


@pytest.mark.parametrize(
    ("head", "layer"),
    [("baseline", "layer4"), ("svml-rgcn", "layer4"), ("baseline", "layer3"), ("svml-rgcn", "layer1")],
)
def test_grad_cam_matches_a_hook_based_reference(checkpoints: tuple[Path, Path], head: str, layer: str) -> None:
    model = load_model(checkpoints[head != "baseline"])
    images = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    maps, probabilities = grad_cam(model, images, layer)
    assert maps.shape == (2, 6, IMAGE_SIZE, IMAGE_SIZE) and maps.min() >= 0 and maps.max() <= 1
    with torch.no_grad():
        np.testing.assert_allclose(probabilities, torch.sigmoid(model(images)).numpy(), atol=1e-5)
    for sample in range(2):
        for index in range(6):
            np.testing.assert_allclose(
                maps[sample, index], _reference_grad_cam(model, images[sample], index, layer), atol=1e-4
            )


def test_grad_cam_needs_a_convolutional_backbone() -> None:
    model = build_model(ModelConfig(backbone="identity", feature_dim=8, head="baseline"))
    with pytest.raises(MlferError, match="convolutional backbone"):
        grad_cam(model, torch.zeros(1, 8))


def test_grad_cam_names_an_unknown_layer(checkpoints: tuple[Path, Path]) -> None:
    with pytest.raises(MlferError, match="layer must be one of layer1, layer2, layer3, layer4, not 'fc'"):
        grad_cam(load_model(checkpoints[0]), torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE), "fc")


def test_explain_draws_one_row_per_checkpoint(
    checkpoints: tuple[Path, Path], shared_data: Path, tmp_path: Path
) -> None:
    photo = str(shared_data / "faces" / "0-f1-su-ph.jpg")
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert main(["explain", "--checkpoint", str(checkpoints[1]), photo, "--out", str(one)]) == 0
    both = ["--checkpoint", str(checkpoints[0]), "--checkpoint", str(checkpoints[1])]
    assert main(["explain", *both, photo, "--out", str(two), "--layer", "layer3"]) == 0
    with Image.open(one) as first, Image.open(two) as second:
        assert first.width == second.width and first.width > 3 * first.height
        assert 1.8 < second.height / first.height < 2.2


def test_explain_errors_name_the_image(
    checkpoints: tuple[Path, Path], shared_data: Path, tmp_path: Path, capsys
) -> None:
    out = str(tmp_path / "x.png")
    no_face = shared_data / "faces" / NO_FACE
    assert main(["explain", "--checkpoint", str(checkpoints[0]), str(no_face), "--out", out]) == 2
    assert f"{no_face}: no face found in the image" in capsys.readouterr().err
    group = shared_data / "faces" / "multi_face.jpg"
    assert main(["explain", "--checkpoint", str(checkpoints[0]), str(group), "--face", "9", "--out", out]) == 2
    assert "field '--face': the image has" in capsys.readouterr().err
    assert not Path(out).exists()


@pytest.mark.parametrize("name", ["x.txt", "x.pgf", "x", "x.raw"])
def test_explain_refuses_a_figure_suffix_before_the_work(
    checkpoints: tuple[Path, Path], tmp_path: Path, capsys, monkeypatch, name: str
) -> None:
    def no_work(*args, **kwargs):
        raise AssertionError("the photo was read before --out was checked")

    monkeypatch.setattr("mlfer.data.images.read_image", no_work)
    out = tmp_path / name
    assert main(["explain", "--checkpoint", str(checkpoints[0]), str(tmp_path / "any.jpg"), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"{out}: cannot draw the figure as" in error[0] and ".png" in error[0]
    assert not out.exists()


def test_explain_refuses_a_folder_in_the_way_before_the_work(
    checkpoints: tuple[Path, Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("mlfer.data.images.read_image", lambda *args: pytest.fail("the photo was read"))
    (tmp_path / "figure.pdf").mkdir()
    args = ["explain", "--checkpoint", str(checkpoints[0]), str(tmp_path / "any.jpg"), "--out"]
    assert main([*args, str(tmp_path / "figure.pdf")]) == 2
    assert "figure.pdf: is a folder, not a file" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", FIGURE_FORMATS)
def test_every_accepted_figure_suffix_is_drawn(tmp_path: Path, suffix: str) -> None:
    face = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    explanation = Explanation("x", face, np.zeros((6, IMAGE_SIZE, IMAGE_SIZE)), np.zeros(6), np.full(6, 0.5))
    draw_explanations([explanation], tmp_path / f"figure.{suffix}")
    assert (tmp_path / f"figure.{suffix}").stat().st_size > 0


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("synthetic:300?size=48&seed=3", "synthetic cartoon faces"),
        ("synthetic:2000", "synthetic cartoon faces"),
        ("ferplus:../shared/data/ferplus?test=valid&keep_unlabelled=true", "FER+"),
        ("raf-ml:/data/RAF-ML", "RAF-ML"),
        ("features:/tmp/run/features.npz", "face features (features.npz)"),
        ("no-such-kind:x", "no-such-kind:x"),
    ],
)
def test_training_data_in_words(spec: str, words: str) -> None:
    assert training_data(spec) == words


def test_rows_say_each_name_once_and_the_title_the_training_data() -> None:
    assert row_label("baseline", "baseline") == "baseline"
    assert row_label("ferplus-svml-rgcn", "svml-rgcn") == "ferplus-svml-rgcn"
    assert row_label("run3", "svml-rgcn") == "run3\n(svml-rgcn)"
    face = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)

    def row(label: str, trained_on: str) -> Explanation:
        return Explanation(label, face, np.zeros((6, IMAGE_SIZE, IMAGE_SIZE)), np.zeros(6), np.full(6, 0.5), trained_on)

    synthetic = "synthetic cartoon faces"
    assert figure_title([row("a", synthetic)]) == f"model trained on {synthetic}"
    assert figure_title([row("a", synthetic), row("b", synthetic)]) == f"models trained on {synthetic}"
    assert figure_title([row("a\n(svml-rgcn)", synthetic), row("b", "FER+")]) == (
        f"a: trained on {synthetic}\nb: trained on FER+"
    )
    assert figure_title([row("a", "")]) == ""


def test_explain_labels_rows_by_folder_and_says_what_the_models_learnt_from(
    checkpoints: tuple[Path, Path], shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[Explanation] = []
    monkeypatch.setattr("mlfer.inference.explain.draw_explanations", lambda rows, path: drawn.extend(rows))
    photo = str(shared_data / "faces" / "0-f1-su-ph.jpg")
    both = ["--checkpoint", str(checkpoints[0]), "--checkpoint", str(checkpoints[1])]
    assert main(["explain", *both, photo, "--out", str(tmp_path / "x.png")]) == 0
    assert [row.label for row in drawn] == ["baseline", "svml\n(svml-rgcn)"]  # the builder's folders
    assert {row.trained_on for row in drawn} == {"synthetic cartoon faces"}  # RunConfig's default
    assert figure_title(drawn) == "models trained on synthetic cartoon faces"
