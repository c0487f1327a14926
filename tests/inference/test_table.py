"""The output table: rows of results, and write_rows streaming them to CSV, JSON, JSON lines and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.faces import Face
from mlfer.inference import COLUMNS, Frame, Result, output_format, rows_to_frame, write_rows

FACE = Face((10.123, 20.0, 30.0, 40.0), 0.98765, (20.0, 30.0), (35.0, 30.0), (27.0, 45.0))
THRESHOLDS = np.full(len(EXPRESSIONS), 0.5)


def rows() -> list[dict]:
    probabilities = np.array([[0.9, 0.1, 0.2, 0.7, 0.05, 0.4]])
    found = Result(Frame("a.jpg", 0, np.zeros((4, 4, 3), np.uint8)), [FACE], probabilities, THRESHOLDS)
    problem = "b.jpg: cannot read"
    unread = Result(Frame("b.jpg", 0, None, problem), [], np.zeros((0, 6)), THRESHOLDS, problem)
    return found.rows() + unread.rows()


def test_rows_follow_the_columns() -> None:
    face, error = rows()
    assert list(face) == list(COLUMNS) and face["predicted"] == "surprise|happiness"
    assert face["compound"] == "happily surprised" and error["compound"] == ""
    assert (face["x"], face["score"], face["face_id"]) == (10.12, 0.9877, 0)
    assert error["face_detected"] is False and error["face_id"] is None and error["error"] == "b.jpg: cannot read"
    assert list(rows_to_frame(rows()).dtypes.astype(str))[:4] == ["string", "int64", "Int64", "bool"]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_every_format_reads_back_as_the_same_table(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"table{suffix}"
    counts = write_rows(iter([rows()[:1], rows()[1:]]), path, output_format(path))
    assert counts == {"rows": 2, "faces": 1, "errors": 1}
    readers = {
        ".csv": lambda: pd.read_csv(path, keep_default_na=False, na_values=[""]),
        ".json": lambda: pd.DataFrame(json.loads(path.read_text())),
        ".jsonl": lambda: pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()]),
        ".parquet": lambda: pd.read_parquet(path),
    }
    table = rows_to_frame(readers[suffix]().fillna({"predicted": "", "compound": "", "error": ""}).to_dict("records"))
    pd.testing.assert_frame_equal(table, rows_to_frame(rows()))


def test_compound_column_names_a_compound_set() -> None:
    probabilities = np.array([[0.9, 0.1, 0.2, 0.7, 0.05, 0.5], [0.1, 0.6, 0.2, 0.1, 0.7, 0.1], [0.1] * 6])
    faces = Result(Frame("a.jpg", 0, None), [FACE] * 3, probabilities, THRESHOLDS).rows()
    assert [(row["predicted"], row["compound"]) for row in faces] == [
        ("surprise|happiness|anger", ""),
        ("fear|sadness", "sadly fearful"),
        ("", ""),
    ]


def test_empty_json_is_an_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    assert write_rows(iter([]), path, "json") == {"rows": 0, "faces": 0, "errors": 0}
    assert json.loads(path.read_text()) == []


def test_output_format_follows_the_suffix() -> None:
    assert output_format(Path("OUT.PARQUET")) == "parquet" and output_format(Path("x.ndjson")) == "jsonl"
    with pytest.raises(MlferError, match="unknown output format"):
        output_format(Path("table.xlsx"))
