"""Run configs: presets carry the paper's settings, overrides are typed and checked, YAML round trip."""

import dataclasses
import itertools
import tracemalloc

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
        train = dataclasses.replace(config.train, mode="finetune")  # the paper trains end to end
        assert (train.epochs, train.batch_size, train.decay_every(), train.lr_gamma, train.weight_decay) == (
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


def test_resident_images_refuse_reframing():
    with pytest.raises(MlferError, match="data loader") as caught:
        make_config(None, ["train.resident=true", "train.rotate=10"])
    assert caught.value.field == "train.resident"
    assert make_config(None, ["train.rotate=10", "train.shift=0.05"]).train.reframing()


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


@pytest.mark.parametrize(
    "item, field",
    [
        ("model.mfb_o=500000", "model.mfb_o"),
        ("model.mfb_o=1000000000", "model.mfb_o"),
        ("model.mfb_k=-1", "model.mfb_k"),
        ("model.mfb_o=16384", "model.mfb_o"),  # within its own bound, but k * o = 5 x 16384 is not
        ("model.graph_widths=1000000000,2048", "model.graph_widths"),
        ("model.graph_widths=-5,2048", "model.graph_widths"),
        ("model.word_dim=-3", "model.word_dim"),
        ("model.word_dim=0", "model.word_dim"),
        ("model.mfb_dropout=1.5", "model.mfb_dropout"),
        ("train.epochs=1" + "0" * 400, "train.epochs"),
        ("train.epochs=1000000", "train.epochs"),
        ("train.batch_size=100000000", "train.batch_size"),
        ("train.lr_step=1000000000", "train.lr_step"),
        ("train.image_size=100000", "train.image_size"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=4294967296", "train.seed"),
        ("train.workers=100000", "train.workers"),
        ("train.rotate=-5", "train.rotate"),
        ("train.rescale=0.9", "train.rescale"),
        ("train.shift=1", "train.shift"),
    ],
)
def test_sizes_and_counts_are_bounded(item, field):
    with pytest.raises(MlferError) as caught:
        make_config("raf-compound", [item])
    assert caught.value.field == field and len(str(caught.value)) < 300, str(caught.value)[:500]


def test_bounded_sizes_name_the_field_and_file_of_a_config(tmp_path):
    save_config(make_config("raf-ml"), tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text.replace("mfb_o: 1024", "mfb_o: 500000"))
    with pytest.raises(MlferError, match="config.yaml.*model.mfb_o"):
        load_config(tmp_path / "config.yaml")


def test_the_largest_bounded_values_are_accepted():
    config = make_config(
        None,
        ["model.mfb_k=8", "model.mfb_o=8192", "model.word_dim=4096", "train.epochs=10000", "train.seed=4294967295"],
    )
    assert (config.model.mfb_k * config.model.mfb_o, config.train.seed) == (65536, 2**32 - 1)


def _alias_bomb(levels: int = 8) -> str:
    """A YAML value of ``levels`` nested lists, each holding the previous one nine times."""
    names = [chr(ord("a") + level) for level in range(levels)]
    lists = [f"&{names[0]} [{', '.join(['lol'] * 9)}]"]
    lists += [f"&{name} [{', '.join([f'*{previous}'] * 9)}]" for previous, name in itertools.pairwise(names)]
    return "[" + ", ".join(lists) + "]"


@pytest.mark.parametrize("key", ["model.head", "train.epochs", "model.graph_widths", "dataset", "train.flip"])
def test_an_alias_bomb_in_set_is_refused_in_a_short_message(key):
    tracemalloc.start()
    try:
        with pytest.raises(MlferError) as caught:
            make_config(None, [f"{key}={_alias_bomb()}"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "alias" in message and caught.value.field == "--set" and len(message) < 300, message[:500]
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB"


def test_aliases_in_a_config_file_are_refused_naming_the_line(tmp_path):
    save_config(make_config("raf-ml"), tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text + "bomb: " + _alias_bomb() + "\n")
    with pytest.raises(MlferError) as caught:
        load_config(tmp_path / "config.yaml")
    assert "alias" in str(caught.value) and caught.value.line == len(text.splitlines()) + 1
    assert len(str(caught.value)) < 300


def test_long_bad_values_are_quoted_by_a_short_prefix():
    with pytest.raises(MlferError) as caught:
        make_config(None, ["model.mfb_o=" + "x" * 1_000_000])
    assert len(str(caught.value)) < 300 and "xxxx" in str(caught.value)


@pytest.mark.parametrize("value", ["!!python/object:os.system", "'unclosed", "[" * 300, "{a: 1"])
def test_yaml_errors_of_set_are_one_line(value):
    with pytest.raises(MlferError) as caught:
        make_config(None, [f"model.head={value}"])
    assert "\n" not in str(caught.value) and caught.value.field == "--set", str(caught.value)


def test_yaml_errors_of_a_config_file_are_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text("model:\n  head: !!python/object:os.system x\n")
    with pytest.raises(MlferError) as caught:
        load_config(tmp_path / "config.yaml")
    assert "\n" not in str(caught.value) and caught.value.line == 2, str(caught.value)
