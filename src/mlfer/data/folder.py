"""Reader for a folder of single-label images (``folder:DIR``): one sub-folder per expression."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, expression_index
from mlfer.data.dataset import LabelledData
from mlfer.data.images import IMAGE_SUFFIXES


def read_folder(root: Path) -> LabelledData:
    """Images under ``root/<expression>/`` (any accepted name, e.g. ``happy/``), one label each.

    Sub-folders are searched recursively for files with an image suffix; hidden entries and
    loose files directly in ``root`` are ignored.

    Args:
        root: the folder holding one sub-folder per expression.
    """
    paths: list[Path] = []
    classes: list[int] = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        try:
            index = expression_index(folder.name)
        except MlferError:
            raise MlferError(
                f"sub-folder {folder.name!r} is not an expression; expected one of {', '.join(EXPRESSIONS)}",
                path=folder,
            ) from None
        images = sorted(
            path
            for path in folder.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES
            and path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        )
        paths += images
        classes += [index] * len(images)
    if not paths:
        raise MlferError(f"no images in expression sub-folders ({', '.join(EXPRESSIONS)})", path=root)
    labels = np.zeros((len(paths), len(EXPRESSIONS)), dtype=np.uint8)
    labels[np.arange(len(paths)), classes] = 1
    return LabelledData(
        spec=f"folder:{root}",
        labels=labels,
        ids=[path.relative_to(root).as_posix() for path in paths],
        paths=paths,
    )
