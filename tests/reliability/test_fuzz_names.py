"""File names that do not decode: random bytes in the names of the photos given to ``mlfer
predict`` (every table format) and ``mlfer align`` (its report).

Allowed: the run finishes with exit status 0, and every name comes out once, readable and
unambiguous: :func:`mlfer.core.fileio.printable` writes undecodable bytes as ``\\xNN`` and
doubles backslashes, so the original bytes can be read back from the output.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from builders import make_checkpoint
from faults import check_case, examples
from mlfer.cli import main
from mlfer.core.fileio import printable

TARGET = "undecodable names"
FUZZ = settings(max_examples=examples(8), deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Bytes of a file name: anything but "/" and NUL, with the odd ones (invalid UTF-8, a
#: backslash, quotes, separators, controls, a newline) made likely.
name_bytes = st.lists(
    st.one_of(
        st.sampled_from(b"\xff\xfe\xe9\xc3\x80\\\"',;|\n\r\t \x1b"),
        st.integers(1, 255).filter(lambda byte: byte != ord("/")),
    ),
    min_size=1,
    max_size=24,
).map(bytes)
names = st.lists(name_bytes.map(lambda stem: stem + b".jpg"), min_size=1, max_size=4, unique=True).filter(
    lambda found: all(name not in (b".jpg",) for name in found)
)


def unescape(text: str) -> bytes:
    """The bytes :func:`printable` was given (inverse of its escaping)."""
    if "\\" not in text:
        return text.encode("utf-8")
    out, rest = b"", text
    for part in re.split(r"(\\\\|\\x[0-9a-f]{2})", rest):
        if part == "\\\\":
            out += b"\\"
        elif re.fullmatch(r"\\x[0-9a-f]{2}", part):
            out += bytes([int(part[2:], 16)])
        else:
            out += part.encode("utf-8")
    return out


@settings(max_examples=examples(300), deadline=None)
@given(raw=st.binary(max_size=40))
def test_printable_names_encode_and_read_back(raw):
    text = os.fsdecode(raw)
    shown = check_case(TARGET, lambda: printable(text), [])
    shown.encode("utf-8")  # never a UnicodeEncodeError
    assert unescape(shown) == raw


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> Path:
    return shared_data / "faces" / "0-f1-su-ph.jpg"


def _fill(folder: Path, files: list[bytes], photo: Path) -> list[bytes]:
    """Copies of ``photo`` (the first) and of a small face-less image under the raw names."""
    folder.mkdir()
    Image.new("RGB", (48, 48), (90, 120, 60)).save(folder / "blank.png")
    paths = []
    for number, name in enumerate(files):
        path = os.path.join(os.fsencode(folder), name)
        shutil.copy(photo if number == 0 else folder / "blank.png", path)
        paths.append(path)
    (folder / "blank.png").unlink()
    return paths


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, dtype=str)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=path.suffix == ".jsonl", dtype=False)


@FUZZ
@given(files=names, suffix=st.sampled_from((".csv", ".json", ".jsonl", ".parquet")))
def test_fuzz_names_given_to_predict(checkpoint, photo, files, suffix):
    with tempfile.TemporaryDirectory() as scratch:
        paths = _fill(Path(scratch) / "in", files, photo)
        out = Path(scratch) / f"faces{suffix}"
        args = ["predict", "--checkpoint", str(checkpoint), str(Path(scratch) / "in"), "--out", str(out)]
        assert check_case(TARGET, lambda: main(args), []) == 0
        table = _read(out)
    assert sorted(unescape(text) for text in table["input"]) == sorted(paths)
    assert (table["error"].fillna("") == "").all()


@FUZZ
@given(files=names)
def test_fuzz_names_in_the_align_report(photo, files):
    with tempfile.TemporaryDirectory() as scratch:
        paths = _fill(Path(scratch) / "in", files, photo)
        dst = Path(scratch) / "out"
        assert check_case(TARGET, lambda: main(["align", str(Path(scratch) / "in"), str(dst)]), []) == 0
        with (dst / "align_report.csv").open(newline="", encoding="utf-8") as handle:
            reported = [row["path"] for row in csv.DictReader(handle)]
        aligned = [name for name in os.listdir(os.fsencode(dst)) if name != b"align_report.csv"]
    face_less = [os.path.basename(path) for path in paths[1:]]
    assert sorted(unescape(text) for text in reported) == sorted(face_less)
    # pathlib's stem, as align names its outputs: "..jpg" is "." + ".jpg" there (os.path.splitext keeps it whole)
    assert aligned == [os.fsencode(Path(os.fsdecode(os.path.basename(paths[0]))).stem) + b".png"]
