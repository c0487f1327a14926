"""Reading image files of any mode into RGB, with errors that name the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mlfer.core.errors import MlferError

#: Images above this many pixels are refused as possible decompression bombs.
MAX_PIXELS = 80_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"})


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


def read_image(path: str | Path) -> Image.Image:
    """Decode an image file to RGB, honouring EXIF orientation.

    Raises:
        MlferError: naming the file, when it is missing, empty, truncated, not an image,
            or larger than :data:`MAX_PIXELS` (a decompression bomb).
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
                image = ImageOps.exif_transpose(opened)
                return to_rgb(image)
    except MlferError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MlferError(f"cannot read the image ({error})", path=path) from error
