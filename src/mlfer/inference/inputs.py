"""Input discovery: paths, folders, glob patterns, videos, PIL images and arrays -> frames to analyse.

Folders contribute their image and video files (by suffix), sorted, leaving out folders of
mlfer's own pictures (:data:`~mlfer.data.images.OUTPUT_MARK`); a glob pattern the files it
matches. Nothing is decoded until a frame is asked for, and anything that cannot be read becomes
a :class:`Frame` with ``error`` set, so that the other inputs still run.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.data.images import IMAGE_SUFFIXES, image_files, read_image, to_rgb
from mlfer.faces.detect import check_rgb
from mlfer.inference.video import VIDEO_SUFFIXES, is_video, iter_frames


@dataclass
class Frame:
    """One picture to analyse: a still image or one frame of a video.

    Args:
        input: the file path, or ``<image N>`` for the N-th in-memory input.
        frame: the video frame number (0 for still images).
        image: RGB uint8 H x W x 3, or ``None`` when reading failed.
        error: why reading failed (empty otherwise).
    """

    input: str
    frame: int
    image: np.ndarray | None
    error: str = ""


#: One input: a file, folder or glob pattern, a PIL image, an RGB uint8 array, or a frame already
#: made (as :func:`iter_sources` yields them).
Input = str | Path | Image.Image | np.ndarray | Frame


def iter_inputs(inputs: Input | Iterable[Input], every: int = 1) -> Iterator[Frame]:
    """Expand inputs into frames, lazily: files, folders (recursive), globs, videos, arrays.

    Folders contribute their image and video files (by suffix), sorted; a glob pattern
    contributes the files it matches. Anything that cannot be read becomes a frame with
    ``error`` set.

    Args:
        inputs: one input or an iterable of them (paths, PIL images, RGB uint8 arrays, or
            the sources of :func:`iter_sources`).
        every: keep one video frame in ``every``.
    """
    if every < 1:
        raise MlferError(f"must be at least 1, got {every}", field="every")
    for source in iter_sources(inputs):
        if isinstance(source, Frame):
            yield source
        else:
            yield from _file_frames(source, every)


def iter_sources(inputs: Input | Iterable[Input]) -> Iterator[Path | Frame]:
    """Expand inputs into sources, in order, decoding nothing: the files to read (a still
    image or a whole video each), and frames already made (in-memory images, and inputs
    that cannot be read). Under torchrun, ``mlfer predict`` shares the sources out."""
    if isinstance(inputs, str | Path | Image.Image | np.ndarray | Frame):
        inputs = [inputs]
    for number, item in enumerate(inputs):
        if isinstance(item, Frame):
            yield item
        elif isinstance(item, Image.Image):
            yield Frame(f"<image {number}>", 0, np.asarray(to_rgb(item)))
        elif isinstance(item, np.ndarray):
            yield _array_frame(item, f"<image {number}>")
        elif isinstance(item, str | Path):
            yield from _path_sources(item)
        else:
            raise MlferError(
                f"cannot read a {type(item).__name__}; pass paths, PIL images or RGB arrays", field="inputs"
            )


def _array_frame(array: np.ndarray, name: str) -> Frame:
    try:
        return Frame(name, 0, check_rgb(array))
    except MlferError as error:
        return Frame(name, 0, None, str(error))


def _path_sources(item: str | Path) -> Iterator[Path | Frame]:
    path = Path(item)
    if path.is_dir():
        files = image_files(path, IMAGE_SUFFIXES | VIDEO_SUFFIXES)  # broken links give error rows
        if not files:
            yield Frame(str(path), 0, None, str(MlferError("the folder holds no image or video file", path=path)))
        yield from files
    elif path.exists():
        yield path
    elif glob.has_magic(str(item)):
        matches = sorted(Path(match) for match in glob.glob(str(item), recursive=True))
        if not matches:
            yield Frame(str(item), 0, None, str(MlferError("no file matches the pattern", path=item)))
        for match in matches:
            yield from _path_sources(match)
    else:
        yield Frame(str(path), 0, None, str(MlferError("no such file or folder", path=path)))


def _file_frames(path: Path, every: int) -> Iterator[Frame]:
    if not is_video(path):
        try:
            yield Frame(str(path), 0, np.asarray(read_image(path)))
        except MlferError as error:
            yield Frame(str(path), 0, None, str(error))
        return
    next_frame = 0
    try:
        for number, rgb in iter_frames(path, every):
            yield Frame(str(path), number, rgb)
            next_frame = number + every
    except MlferError as error:
        yield Frame(str(path), next_frame, None, str(error))
