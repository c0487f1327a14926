"""Reading video files frame by frame with OpenCV, as RGB uint8 arrays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from mlfer.core.errors import MlferError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv"})


def is_video(path: str | Path) -> bool:
    """True when the file name has one of :data:`VIDEO_SUFFIXES`."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def iter_frames(path: str | Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_number, rgb)`` for frames 0, every, 2 * every, ... of a video.

    Frames are decoded one at a time, so memory stays flat on long videos.

    Args:
        path: the video file.
        every: keep one frame in ``every`` (frame numbers count all frames from 0).

    Raises:
        MlferError: when ``every`` is below 1, or the file is missing, cannot be opened,
            or holds no frame.
    """
    if every < 1:
        raise MlferError(f"must be at least 1, got {every}", field="every")
    path = Path(path)
    if not path.is_file():
        raise MlferError("no such video file", path=path)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MlferError("cannot open the video", path=path)
        number = 0
        while capture.grab():
            if number % every == 0:
                ok, frame = capture.retrieve()
                if not ok:
                    raise MlferError(f"cannot decode frame {number}", path=path)
                yield number, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            number += 1
        if number == 0:
            raise MlferError("the video holds no readable frame", path=path)
    finally:
        capture.release()
