"""Reader for JAFFE (``jaffe:DIR``) as downloaded: images named like ``KM.NE1.17.tiff`` and the
semantic ratings, a table inside the archive's ``README_FIRST.txt`` (older archive: ``A_README_FIRST.txt``).

The table's header names ``N HAP SAD SUR ANG DIS FEA PIC`` (other columns are ignored), its
rows hold mean ratings on a 1-5 scale and ``PIC`` like ``KM-NE1``, and it ends where the
second table, "Semantic Ratings Data (Fear Excluded)", begins. Image ``KM.NE1.17.tiff`` takes
the row of PIC ``KM-NE1``; an expression is a label when its rating is >= 3 (the paper's
rule). Rows and images that match nothing are each named in an :class:`UnmatchedWarning` and
left out: the table and the images of the real archives do not match one to one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
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
#: How many folder levels below DIR the images and the ratings file are looked for.
SEARCH_DEPTH = 2
_IMAGE_NAME = re.compile(r"^([A-Za-z]+)\.([A-Za-z]+[0-9]*)\.[0-9]+$")


class UnmatchedWarning(UserWarning):
    """A JAFFE image without a ratings row, or a ratings row without an image (left out)."""


def pic_of(file_name: str) -> str | None:
    """The ratings key of an image file name (``KM.NE1.17.tiff`` -> ``KM-NE1``), or None."""
    match = _IMAGE_NAME.match(Path(file_name).stem)
    return None if match is None else f"{match[1]}-{match[2]}".upper()


def _column_names(fields: list[str]) -> list[str]:
    """Header fields as column names: ``#N`` -> ``N``; a lone ``#`` stays a (row-number) column."""
    return [name if name == "#" else name.lstrip("#").upper() for name in fields]


def _is_header(fields: list[str]) -> bool:
    return {PIC_COLUMN, *RATING_COLUMNS} <= set(_column_names(fields))


def _is_row(fields: list[str]) -> bool:
    """A table row starts with a number (its row number, or the first rating)."""
    try:
        float(fields[0])
    except ValueError:
        return False
    return True


def _ends_table(fields: list[str]) -> bool:
    """The second table's title ("... (Fear Excluded)") or any other header naming PIC."""
    return "FEAR EXCLUDED" in " ".join(fields).upper() or PIC_COLUMN in _column_names(fields)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name != "__MACOSX"


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(path for path in folder.iterdir() if _visible(path))
    except OSError as error:
        raise MlferError(f"cannot list the folder ({error})", path=folder) from error


def _shallowest(root: Path, found: Callable[[Path], list[Path]]) -> list[Path]:
    """What ``found`` gives in ``root``, else in its sub-folders, and so on to :data:`SEARCH_DEPTH` levels."""
    level = [root]
    for _ in range(SEARCH_DEPTH + 1):
        hits = [hit for folder in level for hit in found(folder)]
        if hits:
            return hits
        level = [path for folder in level for path in _entries(folder) if path.is_dir()]
    return []


def _image_files(folder: Path) -> list[Path]:
    return [path for path in _entries(folder) if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]


def _ratings_files(folder: Path) -> list[Path]:
    return [
        path
        for path in _entries(folder)
        if path.suffix.lower() == ".txt" and path.is_file() and any(_is_header(fields) for _, fields in text_rows(path))
    ]


def _one(root: Path, found: list[Path], what: str, option: str) -> Path:
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)} ({', '.join(str(path.relative_to(root)) for path in found)})"
        raise MlferError(f"{problem} {what} in the folder or {SEARCH_DEPTH} levels below it; give {option}", path=root)
    return found[0]


def find_ratings_file(root: Path) -> Path:
    """The one ``.txt`` file with a ratings header (``... HAP SAD SUR ANG DIS FEA PIC``), searched
    in ``root`` first, then in its sub-folders (``README_FIRST.txt``, ``jaffedbase/A_README_FIRST.txt``)."""
    what = f"JAFFE ratings files (.txt with a header {' '.join(RATING_COLUMNS)} {PIC_COLUMN})"
    return _one(root, _shallowest(root, _ratings_files), what, "ratings=FILE")


def find_image_folder(root: Path) -> Path:
    """The one folder holding images named like ``KM.NE1.17.tiff``: ``root`` itself, else a
    sub-folder (``jaffedbase/`` of the older archive, ``jaffe/`` of the newer)."""

    def holds_jaffe(folder: Path) -> list[Path]:
        return [folder] if any(pic_of(path.name) for path in _image_files(folder)) else []

    return _one(root, _shallowest(root, holds_jaffe), "folders of JAFFE images (like KM.NE1.17.tiff)", "images=FOLDER")


def read_ratings(path: Path) -> dict[str, tuple[int, np.ndarray]]:
    """PIC -> (line number, six mean ratings in RAF order) from the first ratings table of a file.

    Text before the header is skipped, and so is any line in the table that does not start
    with a number; the table ends at the second table's title or header.
    """
    header: list[str] | None = None
    ratings: dict[str, tuple[int, np.ndarray]] = {}
    for line, fields in text_rows(path):
        if not _is_row(fields):
            if ratings and _ends_table(fields):
                break
            if not ratings and _is_header(fields):
                header = _column_names(fields)
            continue
        if header is None:
            continue
        if len(fields) == len(header) + 1 and header[0] in RATING_COLUMNS and fields[0].isdigit():
            fields = fields[1:]  # a row number under a header that names none
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
        raise MlferError("the ratings table has a header but no rows", path=path)
    return ratings


def _warn_unmatched(folder: Path, images: list[Path], rated: dict[str, tuple[int, np.ndarray]], source: Path) -> None:
    """One :class:`UnmatchedWarning` per image without a ratings row and per row without an image."""
    pics = {image: pic_of(image.name) for image in images}
    for image, pic in pics.items():
        if pic is None:
            warnings.warn(f"left out {image}: not named like KM.NE1.17.tiff", UnmatchedWarning, stacklevel=3)
        elif pic not in rated:
            warnings.warn(f"left out {image}: no row for PIC {pic} in {source}", UnmatchedWarning, stacklevel=3)
    for pic, (line, _) in rated.items():
        if pic not in pics.values():
            warnings.warn(
                f"left out the row for PIC {pic} ({source}, line {line}): no image {pic.replace('-', '.')}.N.* in"
                f" {folder}",
                UnmatchedWarning,
                stacklevel=3,
            )


def read_jaffe(
    root: Path, ratings: str | None = None, images: str | None = None, threshold: float = JAFFE_THRESHOLD
) -> LabelledData:
    """JAFFE images with labels ``rating >= threshold``, matched to the ratings on PIC.

    Args:
        root: the JAFFE folder as downloaded.
        ratings: the ratings file, relative to ``root`` (default: found by its header, see
            :func:`find_ratings_file`).
        images: the image folder, relative to ``root`` (default: :func:`find_image_folder`).
        threshold: rating (1-5 scale) from which an expression counts as present.
    """
    if images is None:
        folder = find_image_folder(root)
    else:
        folder = root / images
        if not folder.is_dir():
            raise MlferError("no such image folder", path=folder, field="images")
    ratings_file = find_ratings_file(root) if ratings is None else root / ratings
    if not ratings_file.is_file():
        raise MlferError("no such ratings file", path=ratings_file, field="ratings")
    rated = read_ratings(ratings_file)
    files = _image_files(folder)
    _warn_unmatched(folder, files, rated, ratings_file)
    matched = [image for image in files if pic_of(image.name) in rated]
    if not matched:
        raise MlferError(
            f"none of the {len(files)} images in {folder} matches a row of the ratings table"
            " (image KM.NE1.17.tiff takes the row of PIC KM-NE1)",
            path=ratings_file,
        )
    values = np.stack([rated[str(pic_of(image.name))][1] for image in matched])
    return LabelledData(
        spec=f"jaffe:{root}",
        labels=(values >= threshold).astype(np.uint8),
        ids=[image.name for image in matched],
        paths=matched,
    )
