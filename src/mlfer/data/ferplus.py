"""Reader for FER+ (``ferplus:DIR``): FER2013's 48 x 48 faces, each with ten annotators' votes.

Votes: ``fer2013new.csv`` (``Usage,Image name,neutral,...,NF``, one row per row of FER2013's
``fer2013.csv`` in the same order), looked for in DIR and then beside DIR; without it, each
split folder's ``label.csv`` (``NAME,"(x, y, w, h)",neutral,...,NF``, FER+'s older votes).

Images: the official layout written by FER+'s ``generate_training_data.py``
(``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` of ``ferNNNNNNN.png``, joined to the
votes by name), or, where DIR holds none of those folders, Kaggle's raw ``fer2013.csv``
(``emotion,pixels,Usage``) beside ``fer2013new.csv``, whose pixels are decoded in memory
(its rows pair with ``fer2013new.csv``'s row for row, as FER+ defines them; the Usage
columns must agree).

Faces: rows with an empty name (FER+ found no face there) and faces whose "not a face"
votes are over half of all are left out; a name listed twice keeps its last row (the one
whose image FER+'s script wrote under that name), with a warning naming them.

Vote counts are whole numbers written in digits 0-9, from 0 to :data:`MAX_VOTES`; any other
count (a sign, a Unicode digit, a larger number) is refused, naming its file, line and column.
``fer2013.csv``'s ``emotion`` column (FER2013's own label) is not read.

Labels (RAF order): ``view=multi`` sets an expression on at ``votes >= min_votes``; faces
with none (neutral, contempt, unknown) are left out unless ``keep_unlabelled``.
``view=single`` is FER+'s majority vote: vote counts under ``min_votes`` are dropped (FER+
drops single votes) and a face keeps the class holding over half of the rest; basic
expressions become one-hot rows, neutral faces all-zero rows with ``keep_unlabelled``,
and the others (contempt, unknown, no majority) are left out.

Splits: Training = ``train``, PublicTest (``FER2013Valid``) = ``validation``, PrivateTest
(``FER2013Test``) = ``test``; ``test=valid`` makes PublicTest the test split and leaves
PrivateTest out. The vote shares of the six expressions stay in ``distribution``.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.messages import short
from mlfer.data.dataset import LabelledData

#: FER+'s vote columns, in the order of its files.
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
LABELS_FILE = "fer2013new.csv"
FOLDER_LABELS_FILE = "label.csv"
PIXELS_FILE = "fer2013.csv"
#: FER2013 ``Usage`` -> folder of the official layout.
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
FACE_SIDE = 48
#: Default votes (of 10) from which an expression is on.
MIN_VOTES = 2
#: Most votes one expression of one face may hold (FER+ asked 10 annotators per face).
MAX_VOTES = 100
#: Rows of ``fer2013.csv`` decoded per numpy pass.
_CHUNK = 1024
_BASIC = [VOTE_COLUMNS.index(name) for name in EXPRESSIONS]
_NEUTRAL, _NOT_A_FACE = VOTE_COLUMNS.index("neutral"), VOTE_COLUMNS.index("NF")
#: One vote count: ASCII digits only (``int`` would take any Unicode digit), at most three.
_COUNT = re.compile(r"[ \t]*[0-9]{1,3}[ \t]*")
_COUNTS_ROW = re.compile(rf"{_COUNT.pattern}(?:,{_COUNT.pattern}){{{len(VOTE_COLUMNS) - 1}}}")


@dataclass
class Votes:
    """Rows of FER+ vote files, in file order (empty names and duplicates included).

    Args:
        names: image name per row (``""`` where FER+ found no face).
        usage: FER2013 ``Usage`` per row (``Training``, ``PublicTest``, ``PrivateTest``).
        counts: (N, 10) vote counts in :data:`VOTE_COLUMNS` order.
        where: (file, 1-based line) of each row, for messages.
    """

    names: list[str]
    usage: list[str]
    counts: np.ndarray
    where: list[tuple[Path, int]]


def _refuse_counts(fields: list[str], path: Path, line: int) -> NoReturn:
    """Raise for the first vote count of a row that is not ASCII digits from 0 to MAX_VOTES."""
    for column, field in zip(VOTE_COLUMNS, fields):
        if _COUNT.fullmatch(field) is None or int(field) > MAX_VOTES:
            raise MlferError(
                f"vote count {short(field)} is not a whole number from 0 to {MAX_VOTES} written in digits 0-9"
                f" (each face has about 10 annotators)",
                path=path,
                line=line,
                field=column,
            )
    raise MlferError(f"vote counts {short(','.join(fields))} are not whole numbers", path=path, line=line)


def _vote_counts(rows: list[list[str]], where: list[tuple[Path, int]]) -> np.ndarray:
    """(N, 10) vote counts from their text fields, each checked (ASCII digits, at most
    MAX_VOTES) before one numpy pass; a bad count is named by file, line and column, and so
    is a row with no votes at all."""
    for row, (path, line) in zip(rows, where):
        if _COUNTS_ROW.fullmatch(",".join(row)) is None:
            _refuse_counts(row, path, line)
    counts = np.fromstring(",".join(",".join(row) for row in rows), dtype=np.int64, sep=",")
    counts = counts.reshape(len(rows), len(VOTE_COLUMNS))
    for index in np.flatnonzero((counts > MAX_VOTES).any(axis=1)).tolist():
        _refuse_counts(rows[index], *where[index])
    for index in np.flatnonzero(counts.sum(axis=1) == 0).tolist()[:1]:
        raise MlferError("the row holds no votes", path=where[index][0], line=where[index][1])
    return counts.astype(np.int32)


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record of a CSV file; a record the csv module
    cannot read is named by the line it starts on (where an unclosed quote opens)."""
    start = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for fields in reader:
                if fields:
                    yield start, fields
                start = reader.line_num + 1
    except csv.Error as error:
        raise MlferError(
            f"cannot read the record that starts here ({error}; is a quote left open?)", path=path, line=start
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise MlferError(f"cannot read the file ({error})", path=path) from error


def _unclosed_quote(fields: list[str]) -> str:
    """A hint for a record whose fields hold line breaks: a quote opened on its first line."""
    return "; a quote opened on this line is not closed" if any("\n" in f or "\r" in f for f in fields) else ""


def _vote_rows(path: Path, rows: Iterator[tuple[int, list[str]]], what: str, usage: str | None) -> Votes:
    """Rows of two fields (``what``) then the 10 vote counts: ``Usage,Image name`` where
    ``usage`` is None, else ``name,face box`` in a folder whose rows all have ``usage``."""
    width = 2 + len(VOTE_COLUMNS)
    votes = Votes([], [], np.zeros(0), [])
    counts: list[list[str]] = []
    for line, fields in rows:
        if len(fields) != width:
            raise MlferError(
                f"expected {width} fields ({what}, {len(VOTE_COLUMNS)} vote counts), got {len(fields)}"
                + _unclosed_quote(fields),
                path=path,
                line=line,
            )
        name = fields[0 if usage else 1].strip()
        row_usage = usage or fields[0].strip()
        if row_usage not in FOLDERS:
            raise MlferError(
                f"Usage {row_usage!r} is not one of {', '.join(FOLDERS)}", path=path, line=line, field="Usage"
            )
        if usage and not name:
            raise MlferError("the image name is empty", path=path, line=line)
        counts.append(fields[2:])
        votes.names.append(name)
        votes.usage.append(row_usage)
        votes.where.append((path, line))
    if not counts:
        raise MlferError("the file holds no vote rows", path=path)
    votes.counts = _vote_counts(counts, votes.where)
    return votes


def read_votes(path: Path) -> Votes:
    """Every row of a ``fer2013new.csv`` (header ``Usage,Image name,neutral,...,NF``)."""
    header = ["Usage", "Image name", *VOTE_COLUMNS]
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None or [field.strip().lower() for field in first[1]] != [name.lower() for name in header]:
        raise MlferError(f"expected the header {','.join(header)}", path=path, line=1 if first is None else first[0])
    return _vote_rows(path, rows, "Usage, Image name", None)


def read_folder_votes(path: Path, usage: str) -> Votes:
    """Every row of a split folder's ``label.csv`` (``NAME,"(x, y, w, h)",neutral,...,NF``)."""
    return _vote_rows(path, _csv_rows(path), "name, face box", usage)


def named_rows(votes: Votes) -> np.ndarray:
    """Indices of the named rows, each name's last row only (names listed twice are reported
    in a warning)."""
    rows_of: dict[str, list[int]] = {}
    for row, name in enumerate(votes.names):
        if name:
            rows_of.setdefault(name, []).append(row)
    twice = {name: rows for name, rows in rows_of.items() if len(rows) > 1}
    if twice:
        shown = "; ".join(
            f"{name} (lines {', '.join(str(votes.where[row][1]) for row in rows)})"
            for name, rows in list(twice.items())[:5]
        )
        warnings.warn(
            f"{votes.where[0][0]}: {len(twice)} image names are listed more than once, each keeps its last row"
            f" (whose image FER+'s generate_training_data.py wrote under that name): {shown}",
            stacklevel=3,
        )
    return np.array(sorted(rows[-1] for rows in rows_of.values()), dtype=np.int64)


def is_face(counts: np.ndarray) -> np.ndarray:
    """Whether each row of (N, 10) votes is a face: at most half of them say "not a face"."""
    return 2 * counts[:, _NOT_A_FACE] <= counts.sum(axis=1)


def multi_labels(counts: np.ndarray, min_votes: int) -> np.ndarray:
    """(N, 6) uint8 labels in RAF order: an expression is on at ``votes >= min_votes``."""
    return (counts[:, _BASIC] >= min_votes).astype(np.uint8)


def majority_labels(counts: np.ndarray, min_votes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER+'s majority vote: counts under ``min_votes`` dropped, then the class holding over half
    of the rest. Returns (N, 6) one-hot labels (all zero unless basic), whether the winner is a
    basic expression, and whether it is neutral."""
    counted = np.where(counts >= min_votes, counts, 0)
    top = counted.argmax(axis=1)
    winner = np.where(2 * counted.max(axis=1) > counted.sum(axis=1), top, -1)
    labels = (winner[:, None] == np.array(_BASIC)[None, :]).astype(np.uint8)
    return labels, labels.any(axis=1), winner == _NEUTRAL


def _labels_file(root: Path) -> Path | None:
    return next((folder / LABELS_FILE for folder in (root, root.parent) if (folder / LABELS_FILE).is_file()), None)


def _pixels_one_by_one(text: bytes, path: Path, line: int) -> np.ndarray:
    """One pixels field read token by token (the slow path, for rows the fast path refused):
    loose spacing passes, anything else is an error naming the file, line and token."""
    tokens = text.split()
    if len(tokens) != FACE_SIDE * FACE_SIDE:
        raise MlferError(
            f"pixels holds {len(tokens)} values, not {FACE_SIDE} x {FACE_SIDE} = {FACE_SIDE * FACE_SIDE}",
            path=path,
            line=line,
            field="pixels",
        )
    for token in tokens:
        if not (token.isdigit() and len(token) <= 3 and int(token) <= 255):
            raise MlferError(
                f"pixel value {short(token.decode(errors='replace'))} is not a whole number from 0 to 255",
                path=path,
                line=line,
                field="pixels",
            )
    return np.array([int(token) for token in tokens], dtype=np.uint8)


def decode_pixels(texts: list[bytes], lines: list[int], path: Path) -> np.ndarray:
    """(N, 48, 48) uint8 faces from ``pixels`` fields of 2,304 space-separated integers 0-255.

    Vectorised: each token ends at a space and its value is read from its last three bytes.
    Rows that pass every check (digits only, 1-3 per token, at most 255, 2,304 tokens) are
    taken from that pass; any other row is read token by token, which names the problem.
    """
    size = FACE_SIDE * FACE_SIDE
    blob = np.frombuffer(b" ".join(texts) + b" ", dtype=np.uint8)
    ends = np.flatnonzero(blob == ord(" "))
    length = np.diff(ends, prepend=-1) - 1
    digit = blob - np.uint8(ord("0"))  # any byte but a digit wraps round to 10 or more
    value = digit[ends - 1].astype(np.int16)
    for place, scale in ((2, 10), (3, 100)):
        more = digit[ends - place].astype(np.int16) * scale
        value += np.where(length >= place, more, 0)
    row_end = np.cumsum([len(text) + 1 for text in texts]) - 1
    counts = np.diff(np.searchsorted(ends, row_end, side="right"), prepend=0)
    bad = counts != size
    wrong = np.flatnonzero((length < 1) | (length > 3) | (value > 255))
    bad[np.searchsorted(row_end, ends[wrong])] = True
    if np.count_nonzero(digit <= 9) + len(ends) != len(blob):
        bad[np.searchsorted(row_end, np.flatnonzero((digit > 9) & (blob != ord(" "))))] = True
    faces = np.empty((len(texts), size), dtype=np.uint8)
    faces[~bad] = (value[np.repeat(~bad, counts)] if bad.any() else value).reshape(-1, size)
    for row in np.flatnonzero(bad):
        faces[row] = _pixels_one_by_one(texts[row], path, lines[row])
    return faces.reshape(-1, FACE_SIDE, FACE_SIDE)


def read_pixels(path: Path, votes: Votes, rows: np.ndarray) -> np.ndarray:
    """The faces of vote ``rows`` from Kaggle's ``fer2013.csv``, paired with the votes row for row.

    Raises:
        MlferError: naming the file and line, for a bad header or row, a Usage that differs
            from the votes file's, a row count unlike the votes file's, or bad pixels.
    """
    wanted = {int(row): index for index, row in enumerate(rows)}
    faces = np.empty((len(rows), FACE_SIDE, FACE_SIDE), dtype=np.uint8)
    texts: list[bytes] = []
    lines: list[int] = []
    slots: list[int] = []
    data_row = 0

    def flush() -> None:
        if texts:
            faces[slots] = decode_pixels(texts, lines, path)
            texts.clear()
            lines.clear()
            slots.clear()

    try:
        handle = path.open("rb")
    except OSError as error:
        raise MlferError(f"cannot read the file ({error})", path=path) from error
    with handle:
        header = handle.readline().decode("utf-8-sig", errors="replace").strip()
        if [name.strip().strip('"').lower() for name in header.split(",")] != ["emotion", "pixels", "usage"]:
            raise MlferError(f"expected the header emotion,pixels,Usage, got {header[:60]!r}", path=path, line=1)
        for line, text in enumerate(handle, start=2):
            if text.isspace():
                continue
            fields = text.rstrip(b"\r\n").split(b",")
            if len(fields) != 3:
                raise MlferError(f"expected 3 fields (emotion, pixels, Usage), got {len(fields)}", path=path, line=line)
            if data_row >= len(votes.names):
                raise MlferError(f"more rows than the {len(votes.names)} of {votes.where[0][0]}", path=path, line=line)
            usage = fields[2].strip().strip(b'"').decode(errors="replace")
            if usage != votes.usage[data_row]:
                source, source_line = votes.where[data_row]
                raise MlferError(
                    f"Usage {usage!r} differs from {votes.usage[data_row]!r} at {source}, line {source_line}:"
                    " the two files must list FER2013's rows in the same order",
                    path=path,
                    line=line,
                    field="Usage",
                )
            if data_row in wanted:
                texts.append(fields[1].strip().strip(b'"'))
                lines.append(line)
                slots.append(wanted[data_row])
                if len(texts) == _CHUNK:
                    flush()
            data_row += 1
    flush()
    if data_row != len(votes.names):
        raise MlferError(f"{data_row} rows, but {votes.where[0][0]} has {len(votes.names)}", path=path)
    return faces


def _check_images(root: Path, votes: Votes, rows: np.ndarray) -> None:
    """Every row's image ``root/FOLDER/NAME`` must be there; images that no row names are
    reported in a warning."""
    listed: dict[str, set[str]] = {}
    for usage in sorted({votes.usage[row] for row in rows}):
        folder = root / FOLDERS[usage]
        listed[usage] = {name for name in os.listdir(folder) if name.lower().endswith(".png")}
        named = {votes.names[row] for row in rows if votes.usage[row] == usage}
        unnamed = sorted(listed[usage] - named)
        if unnamed:
            warnings.warn(
                f"{folder}: left out {len(unnamed)} images that no vote row names (first: {unnamed[0]})", stacklevel=3
            )
    for row in rows:
        if votes.names[row] not in listed[votes.usage[row]]:
            path, line = votes.where[row]
            raise MlferError(
                f"image {votes.names[row]} ({votes.usage[row]}) is not in {root / FOLDERS[votes.usage[row]]}",
                path=path,
                line=line,
            )


def _layout_votes(root: Path, labels_file: Path | None, usages: list[str], test: str) -> Votes:
    """The votes of the official layout, after checking that every split folder needed is there."""
    for usage in usages:
        folder = root / FOLDERS[usage]
        if not folder.is_dir():
            hint = (
                f"; place it beside {FOLDERS['Training']}/ and {FOLDERS['PublicTest']}/, or write"
                f" ferplus:{root}?test=valid to test on {FOLDERS['PublicTest']} (PublicTest)"
                if usage == "PrivateTest" and test == "private"
                else ""
            )
            raise MlferError(f"no {FOLDERS[usage]}/ folder (FER2013's {usage} faces){hint}", path=root)
    if labels_file is not None:
        return read_votes(labels_file)
    parts = []
    for usage in usages:
        path = root / FOLDERS[usage] / FOLDER_LABELS_FILE
        if not path.is_file():
            raise MlferError(f"no {LABELS_FILE} in the folder or beside it, and no {FOLDER_LABELS_FILE}", path=path)
        parts.append(read_folder_votes(path, usage))
    return Votes(
        [name for part in parts for name in part.names],
        [usage for part in parts for usage in part.usage],
        np.concatenate([part.counts for part in parts]),
        [where for part in parts for where in part.where],
    )


def read_ferplus(
    root: Path,
    min_votes: int = MIN_VOTES,
    view: str = "multi",
    keep_unlabelled: bool = False,
    test: str = "private",
) -> LabelledData:
    """FER+ faces with multi-labels (or majority single labels) in RAF order; see the module text.

    Args:
        root: the folder holding ``FER2013Train/``... (or ``fer2013.csv``), with
            ``fer2013new.csv`` in it or beside it.
        min_votes: votes (of 10) from which an expression counts.
        view: ``"multi"`` (labels at ``min_votes``) or ``"single"`` (FER+'s majority vote).
        keep_unlabelled: keep faces with no basic expression (all-zero rows): in the
            ``single`` view, the neutral faces.
        test: ``"private"`` (PrivateTest is the test split) or ``"valid"`` (PublicTest is).
    """
    if not 1 <= min_votes <= MAX_VOTES:
        raise MlferError(f"min_votes must be from 1 to {MAX_VOTES}, got {min_votes}", field="min_votes")
    labels_file = _labels_file(root)
    split_of = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
    if test == "valid":
        split_of = {"Training": "train", "PublicTest": "test"}
    pixels_file = None
    if any((root / folder).is_dir() for folder in FOLDERS.values()):
        votes = _layout_votes(root, labels_file, list(split_of), test)
    elif labels_file is not None and (labels_file.parent / PIXELS_FILE).is_file():
        pixels_file = labels_file.parent / PIXELS_FILE
        votes = read_votes(labels_file)
    else:
        raise MlferError(
            f"no FER+ data: expected {', '.join(f'{folder}/' for folder in FOLDERS.values())} (FER+'s layout),"
            f" or {PIXELS_FILE} beside {LABELS_FILE} (in the folder or beside it)",
            path=root,
        )
    rows = np.array([row for row in named_rows(votes) if votes.usage[row] in split_of], dtype=np.int64)
    if pixels_file is None:
        _check_images(root, votes, rows)
    if view == "single":
        labels, basic, neutral = majority_labels(votes.counts[rows], min_votes)
        keep = (basic | neutral) if keep_unlabelled else basic
    else:
        labels = multi_labels(votes.counts[rows], min_votes)
        keep = np.ones(len(rows), dtype=bool) if keep_unlabelled else labels.any(axis=1)
    keep &= is_face(votes.counts[rows])
    rows, labels = rows[keep], labels[keep]
    if len(rows) == 0:
        raise MlferError("no face is left after the label rule", path=labels_file or root)
    counts = votes.counts[rows]
    folders = {usage: root / folder for usage, folder in FOLDERS.items()}
    return LabelledData(
        spec=f"ferplus:{root}",
        labels=labels,
        ids=[votes.names[row] for row in rows],
        paths=None if pixels_file else [folders[votes.usage[row]] / votes.names[row] for row in rows],
        images=None if pixels_file is None else read_pixels(pixels_file, votes, rows),
        split=np.array([split_of[votes.usage[row]] for row in rows]),
        distribution=(counts[:, _BASIC] / counts.sum(axis=1, keepdims=True)).astype(np.float32),
    )
