"""Expansion bombs: small inputs that expand to gigabytes when read or printed.

YAML alias bombs (nested anchors, in ``--set`` values and in a model's ``config.yaml``), zip
bombs beside the arrays of a ``features:`` .npz and of an LDL ``.mat`` file, a GloVe .gz
holding one endless line, a PNG that inflates to 14000 x 14000 pixels. Allowed: the right
result or an MlferError naming the file or setting, in a short message, while the peak
memory grows by at most :data:`faults.MEMORY_BOUND`.
"""

from __future__ import annotations

import gzip
import io
import itertools
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import check_case, examples, within_memory
from mlfer.core.config import load_config, make_config, save_config
from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.data.images import read_image
from mlfer.models.word_vectors import load_glove

TARGET = "expansion bombs"
FUZZ = settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: For the bombs that take seconds to make (hundreds of MB to compress).
FEW = settings(max_examples=examples(4), deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Longest message allowed for a refused bomb.
SHORT = 400


def alias_bomb(depth: int, width: int, flow: bool) -> str:
    """A YAML value of ``depth`` nested lists, each holding the previous one ``width`` times
    (``width ** depth`` leaves), in flow style (one line) or block style (one list per line)."""
    names = [f"l{level}" for level in range(depth)]
    lists = [f"&{names[0]} [{', '.join(['lol'] * width)}]"]
    lists += [f"&{name} [{', '.join([f'*{previous}'] * width)}]" for previous, name in itertools.pairwise(names)]
    if flow:
        return "[" + ", ".join(lists) + "]"
    return "".join(f"\n  - {item}" for item in lists)


@FUZZ
@given(
    depth=st.integers(2, 10),
    width=st.integers(2, 12),
    key=st.sampled_from(("model.head", "train.epochs", "model.graph_widths", "dataset", "model.t1", "nonsense")),
)
def test_alias_bombs_in_set_are_refused_in_a_short_message(depth, width, key):
    outcome = check_case(
        TARGET, within_memory(lambda: make_config(None, [f"{key}={alias_bomb(depth, width, True)}"])), []
    )
    assert isinstance(outcome, MlferError) and "alias" in str(outcome) and len(str(outcome)) < SHORT, outcome


@FUZZ
@given(
    depth=st.integers(2, 10),
    width=st.integers(2, 12),
    where=st.sampled_from(("model:\n  head:", "model:\n  graph_widths:", "dataset:", "extra:")),
    flow=st.booleans(),
)
def test_alias_bombs_in_a_config_file_are_refused_naming_the_file(depth, width, where, flow):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        save_config(make_config("raf-ml"), path)
        text = path.read_text().replace("dataset:", "old_dataset:").replace("  head:", "  old_head:")
        text = text.replace("  graph_widths:", "  old_widths:") if "graph_widths" in where else text
        path.write_text(f"{text}\n{where} {alias_bomb(depth, width, flow)}\n")
        outcome = check_case(TARGET, within_memory(lambda: load_config(path)), [path])
    assert isinstance(outcome, MlferError) and len(str(outcome)) < SHORT, outcome


def _zeros_member(archive: zipfile.ZipFile, name: str, megabytes: int, npy: bool) -> None:
    """A member of ``megabytes`` MB of zeros (an .npy array when ``npy``), deflated to about 1/1000."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as member:
        if npy:
            header = io.BytesIO()
            shape = (megabytes << 20,)
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
            member.write(header.getvalue())
        for _ in range(megabytes):
            member.write(bytes(1 << 20))


@FEW
@given(
    names=st.lists(
        st.sampled_from(("bomb.npy", "extra.npy", "features2.npy", "label.npy", "notes.txt", "x")),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    megabytes=st.integers(150, 300),
    npy=st.booleans(),
)
def test_zip_bombs_beside_the_features_are_never_inflated(names, megabytes, npy):
    rng = np.random.default_rng(megabytes)
    features, labels = rng.normal(size=(12, 5)).astype(np.float32), np.eye(6, dtype=np.uint8)[np.arange(12) % 6]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.npz"
        np.savez(path, features=features, labels=labels)
        with zipfile.ZipFile(path, "a") as archive:
            for name in names:
                _zeros_member(archive, name, megabytes // len(names), npy)
        outcome = check_case(TARGET, within_memory(lambda: load_dataset(f"features:{path}")), [path])
    np.testing.assert_array_equal(outcome.features, features)


def test_a_compressed_variable_beside_the_ldl_matrices_is_never_read(tmp_path):
    path = tmp_path / "bomb.mat"
    rng = np.random.default_rng(0)
    contents = {"features": rng.normal(size=(12, 5)), "labels": rng.dirichlet(np.ones(6), 12)}
    scipy.io.savemat(path, {**contents, "bomb": np.zeros((150 << 20) // 8)}, do_compression=True)
    assert path.stat().st_size < 2_000_000
    spec = f"ldl:{path}?columns=SUR,FEA,DIS,HAP,SAD,ANG"
    outcome = check_case(TARGET, within_memory(lambda: load_dataset(spec)), [path])
    np.testing.assert_allclose(outcome.features, contents["features"].astype(np.float32))


@FEW
@given(megabytes=st.integers(150, 300), words_first=st.booleans())
def test_a_glove_file_of_one_endless_line_is_refused(megabytes, words_first):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "glove.txt.gz"
        with gzip.open(path, "wb", compresslevel=1) as handle:
            if words_first:
                handle.write(b"the 0.1 0.2\n")
            for _ in range(megabytes):
                handle.write(b"a" * (1 << 20))
        outcome = check_case(TARGET, within_memory(lambda: load_glove(path)), [path])
    assert isinstance(outcome, MlferError) and outcome.line == 1 + words_first, outcome


def _png_bomb(side: int) -> bytes:
    """A grey PNG of ``side`` x ``side`` black pixels: a few hundred kB that inflate to side² bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the pixels
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_a_png_that_inflates_to_196_megapixels_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bomb(14000))
    assert path.stat().st_size < 1_000_000
    outcome = check_case(TARGET, within_memory(lambda: read_image(path)), [path], isolated=True)
    assert isinstance(outcome, MlferError), outcome
