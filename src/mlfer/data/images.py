"""Reading image files of any mode into RGB, with errors that name the file.

The reader is a fault boundary: whatever goes wrong while decoding or orienting one file (an
``OSError`` from a decoder, a ``struct.error`` from a damaged TIFF header...) becomes an
:class:`MlferError` naming it. A broken EXIF orientation is not a broken image: the pixels
decoded whole, so the image is returned as stored (EXIF is metadata a camera wrote, and
refusing the photo would lose a face that is often upright anyway).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from mlfer.core.errors import MlferError

#: Images above this many pixels are refused as possible decompression bombs.
MAX_PIXELS = 80_000_000
#: Image methods that undo each EXIF orientation (2-8; 1 is upright), as ``ImageOps.exif_transpose``.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"})
#: A folder holding a file of this name holds mlfer's own pictures (``mlfer predict --annotate``):
#: it is left out when a folder around it is read as input.
OUTPUT_MARK = ".mlfer-output"


def image_files(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The files under ``folder`` (recursively) whose suffix is one of ``suffixes``, sorted;
    broken links too (so that they are reported as unreadable). Folders below ``folder``
    that hold :data:`OUTPUT_MARK` are left out, with everything under them."""
    suffixes = frozenset(suffixes)
    marked = {mark.parent for mark in folder.rglob(OUTPUT_MARK) if mark.parent != folder}
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in suffixes and (path.is_file() or path.is_symlink()) and marked.isdisjoint(path.parents)
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (grey, RGBA, CMYK, palette, 16-bit) to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = max(float(array.max()), 1.0)
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8))
    elif image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        low, high = float(array.min()), float(array.max())
        image = Image.fromarray(((array - low) * (255.0 / max(high - low, 1e-12))).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def orientation(image: Image.Image) -> int:
    """The image's EXIF orientation (1-8; XMP's where Pillow finds one), 1 when it is absent or
    cannot be read (a damaged EXIF block raises anything from ``struct.error`` to ``TypeError``)."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: the pixels are still the photo, as stored
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (:func:`orientation`); as stored otherwise.

    Unlike ``ImageOps.exif_transpose`` it does not rewrite the EXIF block, which fails on
    damaged tags after the pixels are turned.
    """
    method = _UPRIGHT.get(orientation(image))
    return image if method is None else image.transpose(method)


def read_image(path: str | Path) -> Image.Image:
    """Decode an image file to RGB, honouring EXIF orientation (a damaged one: as stored).

    Raises:
        MlferError: naming the file, when it is missing, empty, truncated, not an image,
            larger than :data:`MAX_PIXELS` (a decompression bomb), or when decoding it fails
            in any other way (every exception of the decoders becomes this error).
    """
    path = Path(path)
    if not path.is_file():
        raise MlferError("no such image file", path=path)
    if path.stat().st_size == 0:
        raise MlferError("the image file is empty", path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise MlferError(f"image of {width} x {height} pixels refused (over {MAX_PIXELS})", path=path)
                opened.load()
                return to_rgb(upright(opened))
    except MlferError:
        raise
    except Exception as error:  # the fault boundary of one file: any decoder failure names it
        raise MlferError(f"cannot read the image ({type(error).__name__}: {error})", path=path) from error
