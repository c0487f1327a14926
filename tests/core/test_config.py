"""Run configs: presets carry the paper's settings, overrides are typed and checked, YAML round trip."""

import pytest

from mlfer.core.config import PRESETS, load_config, make_config, parse_overrides, save_config
from mlfer.core.errors import MlferError


def test_presets_hold_the_papers_settings():
    raf_ml = make_config("raf-ml")
    assert (raf_ml.model.t1, raf_ml.model.t2, raf_ml.model.mfb_k, raf_ml.model.mfb_o) == (0.15, 0.4, 4, 1024)
    assert (raf_ml.train.lr_head, raf_ml.train.lr_backbone) == (2e-4, 2e-6)
    compound = make_config("raf-compound")
    assert (compound.model.mfb_k, compound.model.mfb_o) == (5, 2000)
    jaffe = make_config("jaffe")
    assert (jaffe.model.t1, jaffe.model.t2, jaffe.model.mfb_k, jaffe.model.mfb_o) == (1e-6, 0.45, 5, 1000)
    assert (jaffe.train.lr_head, jaffe.train.lr_backbone) == (5e-4, 1e-4)
    for config in (raf_ml, compound, jaffe):
        train = config.train
        assert (train.epochs, train.batch_size, train.lr_step, train.lr_gamma, train.weight_decay) == (
            80,
            32,
            20,
            0.1,
            2e-4,
        )
        assert train.flip and config.model.layer_widths() == [2048, 2048]
    assert set(PRESETS) == {"raf-ml", "raf-compound", "jaffe"}


def test_overrides_are_typed():
    config = make_config(
        "jaffe",
        [
            "model.t1=1e-6",
            "train.flip=false",
            "model.graph_widths=1024,2048",
            "train.epochs=3",
            "model.backbone_weights=none",
            "dataset=synthetic:50",
        ],
    )
    assert config.model.t1 == 1e-6 and isinstance(config.model.t1, float)
    assert config.train.flip is False and config.train.epochs == 3
    assert config.model.graph_widths == [1024, 2048]
    assert config.model.backbone_weights is None and config.dataset == "synthetic:50"


@pytest.mark.parametrize(
    "item, message",
    [
        ("model.nonsense=1", "model.nonsense"),
        ("optim.lr=1", "optim.lr"),
        ("train.epochs=many", "train.epochs"),
        ("train.flip=3", "train.flip"),
        ("no-equals-sign", "key=value"),
    ],
)
def test_bad_overrides_name_the_setting(item, message):
    with pytest.raises(MlferError, match=message):
        make_config(None, [item])


def test_unknown_preset():
    with pytest.raises(MlferError, match="raf-ml"):
        make_config("affectnet")


def test_yaml_round_trip(tmp_path):
    config = make_config("raf-compound", parse_overrides(["model.head=vml-rgcn", "train.seed=7"]))
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(MlferError, match="bad.yaml"):
        load_config(tmp_path / "bad.yaml")
