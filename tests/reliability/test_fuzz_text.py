"""Fuzzed settings and text files: ``--set`` overrides, run config YAML, GloVe word vectors.

Allowed: the right value or an MlferError naming the option (overrides) or the file and
line (files). A non-finite number must be refused where a finite one is needed.
"""

from __future__ import annotations

import gzip
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import BAD_TOKENS, check_case, examples, mutated
from mlfer.core.config import BOUNDS, RunConfig, config_to_dict, load_config, make_config
from mlfer.core.errors import MlferError
from mlfer.models.heads import head_class
from mlfer.models.word_vectors import LABEL_WORDS, load_glove

FUZZ = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOAT_KEYS = (
    "model.t1",
    "model.t2",
    "model.p",
    "model.mfb_dropout",
    "train.lr_head",
    "train.weight_decay",
    "train.lr_gamma",
)
INT_KEYS = ("train.epochs", "train.batch_size", "train.seed", "model.mfb_k", "model.mfb_o", "folds")
OTHER_KEYS = (
    "model.head",
    "model.backbone",
    "train.flip",
    "train.mode",
    "model.graph_widths",
    "dataset",
    "model.word_vectors",
    "prototypes",
    "",
    " ",
    "model",
    "model.",
    ".t1",
    "x.y.z",
    "model.t1.x",
    "MODEL.T1",
)
#: Values YAML reads in surprising ways: dates, anchors, tags, deep nesting, special floats.
YAML_ODDITIES = (
    "2020-99-99",
    "2001-12-14t21:59:43.10-99:00",
    "[" * 300,
    "{" * 300,
    "&a [*a]",
    "*b",
    "!!binary x",
    "!!python/object:os.system",
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "9" * 400,
    "0x1F",
    "0o17",
    "1_000",
    "yes",
    "~",
    "null",
    "{a: 1}",
    "[1, 2]",
    "- a",
    "'unclosed",
    '"\\x"',
    "\x00",
    "a: b: c",
    "?",
    "|",
    "1e-6",
    "1E-06",
    "1.5",
    "-3",
    "3",
    "0",
)

values = st.one_of(
    st.sampled_from(YAML_ODDITIES), st.text(max_size=12), st.integers(-(10**20), 10**20).map(str), st.floats().map(repr)
)
items = st.one_of(
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(FLOAT_KEYS + INT_KEYS + OTHER_KEYS), values),
    st.text(max_size=15),
)


@FUZZ
@given(overrides=st.lists(items, min_size=1, max_size=3))
def test_fuzz_set_overrides(overrides):
    outcome = check_case("--set overrides", lambda: make_config(overrides=overrides), [])
    if isinstance(outcome, RunConfig):
        for name in ("t1", "t2", "p", "mfb_dropout"):
            assert np.isfinite(getattr(outcome.model, name)), f"model.{name} accepted a non-finite value"
        for name in ("lr_head", "lr_backbone", "weight_decay", "lr_gamma"):
            assert np.isfinite(getattr(outcome.train, name)), f"train.{name} accepted a non-finite value"


@FUZZ
@given(key=st.sampled_from(FLOAT_KEYS), value=st.floats(allow_nan=True, allow_infinity=True))
def test_float_setting_is_read_exactly_or_refused_when_not_finite(key, value):
    outcome = check_case("--set overrides", lambda: make_config(overrides=[f"{key}={value!r}"]), [])
    section, name = key.split(".")
    if np.isfinite(value) and (key != "model.mfb_dropout" or 0 <= value <= 1):  # a dropout is a probability
        assert getattr(getattr(outcome, section), name) == value
    else:
        assert isinstance(outcome, MlferError) and outcome.field == key


@FUZZ
@given(key=st.sampled_from(INT_KEYS), value=st.one_of(st.integers(-5, 10**6), st.integers(-(10**30), 10**30)))
def test_int_setting_is_read_exactly_or_refused_out_of_bounds(key, value):
    outcome = check_case("--set overrides", lambda: make_config(overrides=[f"{key}={value}"]), [])
    section, _, name = key.rpartition(".")
    holder = getattr(outcome, section) if section and isinstance(outcome, RunConfig) else outcome
    least, most = BOUNDS.get(key, (-math.inf, math.inf))
    if least <= value <= most:
        assert getattr(holder, name) == value
    else:
        assert isinstance(outcome, MlferError) and outcome.field == key and len(str(outcome)) < 300


@FUZZ
@given(data=st.data())
def test_fuzz_config_yaml(data):
    config = make_config("raf-ml", ["train.epochs=3", "dataset=synthetic:50"])
    valid = yaml.safe_dump(config_to_dict(config), sort_keys=False).encode()
    content, untouched = data.draw(mutated(valid))
    if data.draw(st.booleans()):
        line = data.draw(
            st.sampled_from(("seed: 2020-99-99", "t1: " + "[" * 300, "epochs: .inf", "t1: .nan", "&a [*a]"))
        )
        content = content + b"\n" + line.encode()
        untouched = False
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_bytes(content)
        outcome = check_case("config yaml", lambda: load_config(path), [path])
    if untouched:
        assert config_to_dict(outcome) == config_to_dict(config)


# GloVe text files ------------------------------------------------------------------------


def _glove(words: list[str], dim: int, seed: int) -> tuple[bytes, np.ndarray]:
    """A GloVe text file of random ``dim``-d vectors for ``words``, and the vectors."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(words), dim)).astype(np.float32)
    lines = [word + " " + " ".join(repr(float(value)) for value in row) for word, row in zip(words, vectors)]
    text = "".join(line + "\n" for line in lines)
    return text.encode(), vectors


vocabularies = st.lists(st.sampled_from(("the", "of", "joy", "afraid", "x y", "é", "happy", "sad")), max_size=5).map(
    lambda extra: [*extra, *LABEL_WORDS]
)


@FUZZ
@given(
    words=vocabularies.flatmap(st.permutations),
    dim=st.integers(1, 6),
    seed=st.integers(0, 99),
    compress=st.booleans(),
    data=st.data(),
)
def test_fuzz_glove(words, dim, seed, compress, data):
    valid, vectors = _glove(words, dim, seed)
    if compress:
        valid = gzip.compress(valid, mtime=0)
    content, untouched = data.draw(mutated(valid))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("vectors.txt.gz" if compress else "vectors.txt")
        path.write_bytes(content)
        outcome = check_case("glove", lambda: load_glove(path), [path])
    if isinstance(outcome, np.ndarray):
        assert outcome.shape[0] == len(LABEL_WORDS) and np.isfinite(outcome).all()
    if untouched and " " not in words[0]:  # the first line gives the dimension: its word must be one token
        np.testing.assert_array_equal(outcome, vectors[[words.index(word) for word in LABEL_WORDS]])


@FUZZ
@given(
    dim=st.integers(1, 6),
    seed=st.integers(0, 99),
    word=st.sampled_from(LABEL_WORDS),
    bad=st.sampled_from(
        [token for token in BAD_TOKENS if token.strip() and not re.search(rb"[\r\n]", token)]
        + [b"nan", b"inf", b"-inf"]
    ),
    data=st.data(),
)
def test_glove_bad_value_of_a_label_word_names_its_line(dim, seed, word, bad, data):
    valid, _ = _glove(list(LABEL_WORDS), dim, seed)
    lines = valid.split(b"\n")
    line = LABEL_WORDS.index(word) + 1
    fields = lines[line - 1].split(b" ")
    at = data.draw(st.integers(1, dim))
    fields[at] = bad
    lines[line - 1] = b" ".join(fields)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.txt"
        path.write_bytes(b"\n".join(lines))
        outcome = check_case("glove", lambda: load_glove(path), [path])
    if isinstance(outcome, np.ndarray):  # the token is a finite number, e.g. "2" or "-0"
        assert np.isfinite(outcome).all() and outcome[line - 1][at - 1] == np.float32(float(bad))
    else:
        assert outcome.line == line, outcome


@FUZZ
@given(
    key=st.sampled_from(("model.head", "model.backbone", "train.mode", "train.amp", "model.mfb_o", "train.flip", "x")),
    value=st.sampled_from(("x", "é", "[1, ", "1e")).map(lambda text: text * 300_000),
)
def test_long_values_are_quoted_by_a_short_prefix(key, value):
    def refused() -> object:
        config = make_config(overrides=[f"{key}={value}"])
        head_class(config.model.head)  # a head name is checked when the model is built
        return config

    outcome = check_case("--set overrides", refused, [])
    assert isinstance(outcome, MlferError) and len(str(outcome)) < 300, str(outcome)[:500]
