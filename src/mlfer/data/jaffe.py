"""Reader for JAFFE (``jaffe:DIR``): images named like ``KM.NE1.17.tiff`` and the semantic-ratings file.

The ratings file is a text table with a header naming ``HAP SAD SUR ANG DIS FEA PIC``
(other columns such as ``N`` are ignored), mean ratings on a 1-5 scale, and ``PIC`` like
``KM-NE1``. Image ``KM.NE1.17.tiff`` takes the ratings of PIC ``KM-NE1``; an expression is
a label when its rating is >= 3 (the paper's rule).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, expression_index
from mlfer.data.dataset import LabelledData
from mlfer.data.images import IMAGE_SUFFIXES
from mlfer.data.tables import text_rows

RATING_COLUMNS = ("HAP", "SAD", "SUR", "ANG", "DIS", "FEA")
PIC_COLUMN = "PIC"
JAFFE_THRESHOLD = 3.0
_IMAGE_NAME = re.compile(r"^([A-Za-z]+)\.([A-Za-z]+[0-9]*)\.[0-9]+$")


def pic_of(file_name: str) -> str | None:
    """The ratings key of an image file name (``KM.NE1.17.tiff`` -> ``KM-NE1``), or None."""
    match = _IMAGE_NAME.match(Path(file_name).stem)
    return None if match is None else f"{match[1]}-{match[2]}".upper()


def _column_names(fields: list[str]) -> list[str]:
    """Header fields as column names: ``#N`` -> ``N``; a lone ``#`` stays a (row-number) column."""
    return [name if name == "#" else name.lstrip("#").upper() for name in fields]


def _is_header(fields: list[str]) -> bool:
    return {PIC_COLUMN, *RATING_COLUMNS} <= set(_column_names(fields))


def find_ratings_file(root: Path) -> Path:
    """The one ``.txt`` file in ``root`` with a ratings header (``... PIC``)."""
    found = [
        path
        for path in sorted(root.glob("*.txt"))
        if path.is_file() and any(_is_header(fields) for _, fields in text_rows(path))
    ]
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)} ({', '.join(path.name for path in found)})"
        raise MlferError(
            f"{problem} JAFFE ratings files (.txt with a header {' '.join(RATING_COLUMNS)} {PIC_COLUMN});"
            " give ratings=FILE",
            path=root,
        )
    return found[0]


def read_ratings(path: Path) -> dict[str, tuple[int, np.ndarray]]:
    """PIC -> (line number, six mean ratings in RAF order) from a JAFFE ratings file."""
    header: list[str] | None = None
    ratings: dict[str, tuple[int, np.ndarray]] = {}
    for line, fields in text_rows(path):
        if header is None:
            header = _column_names(fields) if _is_header(fields) else None
            continue
        if fields[0].startswith("#"):
            continue
        if len(fields) != len(header):
            raise MlferError(f"expected {len(header)} fields like the header, got {len(fields)}", path=path, line=line)
        row = dict(zip(header, fields))
        values = np.empty(len(EXPRESSIONS))
        for column in RATING_COLUMNS:
            try:
                values[expression_index(column)] = float(row[column])
            except ValueError:
                raise MlferError(
                    f"rating {row[column]!r} is not a number", path=path, line=line, field=column
                ) from None
            if not np.isfinite(values[expression_index(column)]):
                raise MlferError(f"rating {row[column]!r} is not a finite number", path=path, line=line, field=column)
        pic = row[PIC_COLUMN].upper()
        if pic in ratings:
            raise MlferError(
                f"PIC {pic} is rated twice (also line {ratings[pic][0]})", path=path, line=line, field=PIC_COLUMN
            )
        ratings[pic] = (line, values)
    if header is None:
        raise MlferError(f"no header line naming {' '.join(RATING_COLUMNS)} {PIC_COLUMN}", path=path)
    if not ratings:
        raise MlferError("the ratings file has a header but no ratings", path=path)
    return ratings


def read_jaffe(root: Path, ratings: str | None = None, threshold: float = JAFFE_THRESHOLD) -> LabelledData:
    """JAFFE images with labels ``rating >= threshold``, matched to the ratings on PIC.

    Args:
        root: folder holding the images (not searched recursively) and, by default, the ratings file.
        ratings: the ratings file, relative to ``root`` (default: found by its header).
        threshold: rating (1-5 scale) from which an expression counts as present.
    """
    ratings_file = find_ratings_file(root) if ratings is None else root / ratings
    if not ratings_file.is_file():
        raise MlferError("no such ratings file", path=ratings_file)
    rated = read_ratings(ratings_file)
    images = sorted(path for path in root.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not images:
        raise MlferError("no JAFFE images (like KM.NE1.17.tiff) in the folder", path=root)
    for image in images:
        if pic_of(image.name) is None:
            raise MlferError("image name is not like KM.NE1.17.tiff, so it matches no ratings row", path=image)
    unrated = [image.name for image in images if pic_of(image.name) not in rated]
    if unrated:
        raise MlferError(f"{len(unrated)} images have no ratings row: {', '.join(unrated[:5])}", path=ratings_file)
    pictured = {pic_of(image.name) for image in images}
    unused = [(line, pic) for pic, (line, _) in rated.items() if pic not in pictured]
    if unused:
        line, _ = unused[0]
        names = ", ".join(pic for _, pic in unused[:5])
        raise MlferError(f"{len(unused)} ratings rows have no image in {root}: {names}", path=ratings_file, line=line)
    values = np.stack([rated[pic_of(image.name)][1] for image in images])
    return LabelledData(
        spec=f"jaffe:{root}",
        labels=(values >= threshold).astype(np.uint8),
        ids=[image.name for image in images],
        paths=images,
    )
