"""Fuzzed image files for ``read_image``: damaged encodings of every suffix, random bytes,
empty files, headers declaring huge sizes, odd modes and EXIF orientations.

Each case runs in a forked child (image decoders are native code). Allowed: an RGB image of
the right size (the right pixels, for a lossless file left whole) or an MlferError naming
the file.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from faults import check_case, examples, mutated
from mlfer.core.errors import MlferError
from mlfer.data.images import IMAGE_SUFFIXES, read_image

FUZZ = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Formats PIL writes, by suffix; the lossless ones keep RGB pixels exactly.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP", ".tiff": "TIFF", ".gif": "GIF", ".webp": "WEBP", ".ppm": "PPM"}
LOSSLESS = {".png", ".bmp", ".tiff", ".ppm"}
MODES = ("RGB", "L", "RGBA", "P", "CMYK", "I;16", "1", "LA")


def _encode(
    size: tuple[int, int], mode: str, suffix: str, seed: int, orientation: int | None
) -> tuple[bytes, Image.Image]:
    """A random image of ``size`` in ``mode``, encoded for ``suffix`` (RGB where the format needs it)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    else:
        image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    options = {}
    if orientation is not None and suffix in (".jpg", ".png", ".tiff", ".webp"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    try:
        image.save(buffer, format=FORMATS[suffix], **options)
    except (OSError, ValueError, KeyError):  # a mode the format cannot hold: store it as RGB
        image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=FORMATS[suffix], **options)
    return buffer.getvalue(), image


def _read_back(path: Path) -> np.ndarray | MlferError:
    """``read_image`` of ``path`` in a forked child, as an RGB array or the MlferError."""
    outcome = check_case("read_image", lambda: np.asarray(read_image(path)), [path], isolated=True)
    if isinstance(outcome, np.ndarray):
        assert outcome.dtype == np.uint8 and outcome.ndim == 3 and outcome.shape[2] == 3
    return outcome


@FUZZ
@given(
    width=st.integers(1, 24),
    height=st.integers(1, 24),
    mode=st.sampled_from(MODES),
    suffix=st.sampled_from(sorted(FORMATS)),
    seed=st.integers(0, 99),
    orientation=st.one_of(st.none(), st.sampled_from((1, 3, 6, 8, 0, 9, 255))),
    data=st.data(),
)
def test_fuzz_image_files(width, height, mode, suffix, seed, orientation, data):
    valid, image = _encode((width, height), mode, suffix, seed, orientation)
    content, untouched = data.draw(mutated(valid))
    name = data.draw(
        st.sampled_from(
            (f"face{suffix}", f"face{suffix.upper()}", "face" + data.draw(st.sampled_from(sorted(IMAGE_SUFFIXES))))
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        outcome = _read_back(path)
    if untouched and Path(name).suffix.lower() == suffix:
        assert isinstance(outcome, np.ndarray), outcome
        with Image.open(io.BytesIO(valid)) as saved:
            stored = saved.getexif().get(0x0112, 1)  # the orientation the writer kept, if any
        turned = stored in (5, 6, 7, 8)
        if suffix != ".tiff" or not turned:  # Pillow turns only RGB TIFFs upright (docs/reliability.md)
            assert outcome.shape[:2] == ((width, height) if turned else (height, width))
        if suffix in LOSSLESS and mode == "RGB" and stored == 1:
            np.testing.assert_array_equal(outcome, np.asarray(image))


@FUZZ
@given(content=st.binary(max_size=2000), suffix=st.sampled_from(sorted(IMAGE_SUFFIXES)))
def test_random_bytes_with_an_image_suffix(content, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"photo{suffix}"
        path.write_bytes(content)
        _read_back(path)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels but holds 100 bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + _png_chunk(b"IEND", b"")
    )


def _bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP whose header declares ``width`` x ``height`` but holds 64 bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + b"\0" * 64


def _gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose screen and image declare ``width`` x ``height`` with one tiny LZW block."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b",\0\0\0\0"
        + struct.pack("<HH", width, height)
        + b"\0\x02\x02D\x01\0;"
    )


@pytest.mark.parametrize(
    "name, content",
    [
        ("huge.png", _png_claiming(100_000, 100_000)),
        ("wide.png", _png_claiming(2**31 - 1, 1)),
        ("zero.png", _png_claiming(0, 0)),
        ("huge.bmp", _bmp_claiming(100_000, 100_000)),
        ("negative.bmp", _bmp_claiming(-5, -(2**31))),
        ("huge.gif", _gif_claiming(65535, 65535)),
        ("empty.jpg", b""),
        ("text.png", b"not an image at all\n"),
    ],
)
def test_declared_sizes_and_non_images_are_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    outcome = _read_back(path)
    assert isinstance(outcome, MlferError), f"{name} was read as an image of shape {outcome.shape}"


def test_truncated_real_photos_are_refused_or_read(shared_data):
    photo = (shared_data / "faces" / "0-f1-su-ph.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        for cut in np.linspace(0, len(photo) - 1, 12).astype(int):
            path = Path(folder) / f"cut{cut}.jpg"
            path.write_bytes(photo[:cut])
            outcome = _read_back(path)
            assert isinstance(outcome, MlferError) or outcome.shape == (512, 512, 3)
