"""Fuzzed image files for ``read_image``: damaged encodings of every suffix, random bytes,
empty files, headers declaring huge sizes, odd modes and EXIF orientations.

Each case runs in a forked child (image decoders are native code). Allowed: an RGB image of
the right size (the right pixels, for a lossless file left whole) or an MlferError naming
the file.
"""

from __future__ import annotations

import io
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from faults import CLEAR_ERROR, CRASH, HANG, RESULT, SOAK, check_case, examples, mutated, record, run_cli
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


#: Formats whose EXIF block is fuzzed, by suffix (TIFF: the file's own header and first IFD).
EXIF_FORMATS = {".jpg": "JPEG", ".webp": "WEBP", ".tiff": "TIFF", ".png": "PNG"}
#: Cases of the EXIF fuzz: a few dozen in CI, over 2,000 in the soak.
EXIF_CASES = settings(max_examples=2400 if SOAK else 40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _exif_block(orientation: int) -> bytes:
    """EXIF with an orientation, text, an Exif IFD (a date, a rational) and a GPS IFD."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Maker"
    exif[0x0110] = "Model X"
    exif.get_ifd(0x8769).update({0x9003: "2020:01:01 10:00:00", 0x920A: 4.5})
    exif.get_ifd(0x8825).update({1: "N", 2: (1.0, 2.0, 3.5)})
    return exif.tobytes()


def _with_exif(suffix: str, orientation: int, seed: int) -> tuple[bytes, tuple[int, int]]:
    """A 24 x 16 picture holding :func:`_exif_block`, and the byte span of its EXIF (TIFF: the
    header and first IFD, where the orientation is)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    block = _exif_block(orientation)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=EXIF_FORMATS[suffix], exif=block)
    data = buffer.getvalue()
    if suffix == ".tiff":
        order = "<" if data[:2] == b"II" else ">"
        first = struct.unpack(order + "I", data[4:8])[0]
        entries = struct.unpack(order + "H", data[first : first + 2])[0]
        return data, (0, first + 2 + 12 * entries + 4)
    start = data.find(block[6:])  # the TIFF structure after "Exif\0\0" (PNG and WebP store it bare)
    assert start >= 0, suffix
    return data, (start, start + len(block) - 6)


def _fix_png_crc(data: bytearray) -> None:
    """Recompute the eXIf chunk's CRC, so that the damage reaches the EXIF parser."""
    at = bytes(data).find(b"eXIf")
    if at >= 4:
        length = struct.unpack(">I", data[at - 4 : at])[0]
        data[at + 4 + length : at + 8 + length] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 4 + length])))


@st.composite
def exif_damaged(draw: st.DrawFn, data: bytes, span: tuple[int, int], suffix: str) -> bytes:
    """``data`` with its EXIF span damaged: bytes set or bit-flipped, a count or offset field
    set to a huge value, or the span's tail zeroed."""
    damaged = bytearray(data)
    low, high = span
    kind = draw(st.sampled_from(("bytes", "field", "tail")))
    if kind == "bytes":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(low, high - 1))
            damaged[at] = draw(st.sampled_from((0, 0xFF, damaged[at] ^ (1 << draw(st.integers(0, 7))))))
    elif kind == "field":
        at = draw(st.integers(low, high - 4))
        damaged[at : at + 4] = draw(st.sampled_from((b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\xff\xff")))
    else:
        at = draw(st.integers(low + 8, high - 1))
        damaged[at:high] = bytes(high - at)
    if suffix == ".png":
        _fix_png_crc(damaged)
    return bytes(damaged)


@EXIF_CASES
@given(
    suffix=st.sampled_from(sorted(EXIF_FORMATS)),
    orientation=st.sampled_from((1, 3, 6, 8)),
    seed=st.integers(0, 99),
    data=st.data(),
)
def test_fuzz_exif_damage(suffix: str, orientation: int, seed: int, data: st.DataObject) -> None:
    valid, span = _with_exif(suffix, orientation, seed)
    content = data.draw(exif_damaged(valid, span, suffix))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"photo{suffix}"
        path.write_bytes(content)
        outcome = check_case("exif damage", lambda: np.asarray(read_image(path)), [path], isolated=True)
    if isinstance(outcome, np.ndarray) and suffix != ".tiff":  # a TIFF's IFD holds its size too
        assert outcome.shape in ((16, 24, 3), (24, 16, 3))


#: Picture shapes (height, width) at OpenCV's and MediaPipe's edges: 1 px, 65,535 px (PNG's and
#: TIFF's largest side in practice), 32,767 (cv2.remap's limit), aspect ratios over 300.
GEOMETRIES = [(100, 33_000), (33_000, 100), (1, 65_535), (65_535, 2), (1, 1), (2, 700), (300, 1), (32_767, 4)]


def _geometry_cases() -> list[tuple[int, int]]:
    """:data:`GEOMETRIES`, and in the soak 40 more drawn from the same edges."""
    if not SOAK:
        return GEOMETRIES
    rng = np.random.default_rng(24)
    sides = (1, 2, 3, 7, 100, 300, 4096, 32_766, 32_767, 32_768, 40_000, 65_500, 65_535)
    drawn = []
    while len(drawn) < 40:
        height, width = (int(side) for side in rng.choice(sides, 2))
        if height * width <= 8_000_000:  # a few MB each; larger pictures are refused by read_image
            drawn.append((height, width))
    return GEOMETRIES + drawn


@pytest.mark.parametrize("height, width", _geometry_cases())
def test_extreme_geometries(tmp_path: Path, height: int, width: int) -> None:
    """``mlfer predict`` on one picture, in a child of the fork server (MediaPipe does not survive
    a fork of a process that ran it): exit 0 and one row, with no face or an error naming it."""
    suffix = ".jpg" if max(height, width) <= 65_500 and height * width > 1_000_000 else ".png"
    path = tmp_path / f"picture{suffix}"
    Image.new("RGB", (width, height), (120, 90, 80)).save(path)
    out = tmp_path / "faces.csv"
    run = run_cli(["predict", str(path), "--out", str(out)], tmp_path / "run", timeout=120)
    if run.exit_code != 0:
        record("extreme geometries", HANG if run.exit_code is None else CRASH, run.stderr[-300:])
        run.check_finished()
    rows = pd.read_csv(out, keep_default_na=False)
    assert len(rows) == 1 and not rows["face_detected"].iloc[0]
    error = rows["error"].iloc[0]
    assert error == "" or error.startswith(str(path)), error
    record("extreme geometries", CLEAR_ERROR if error else RESULT, f"whole file: {error}" if error else "")


def test_predict_goes_on_past_a_too_wide_and_a_damaged_exif_photo(shared_data: Path, tmp_path: Path) -> None:
    """#24's acceptance: three inputs in the table, exit 0, the normal photo's face classified."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (33_000, 100), (120, 90, 80)).save(photos / "wide.jpg", quality=80)  # 58 KB
    block = bytearray(_exif_block(6))
    make = bytes(block).index(b"\x01\x0f\x00\x02")
    block[make + 1] = 0x1A  # Make's text under XResolution's number: exif_transpose raised TypeError
    Image.new("RGB", (40, 30), (200, 180, 160)).save(photos / "exif.jpg", exif=bytes(block))
    shutil.copy(shared_data / "faces" / "single_face.jpg", photos / "single_face.jpg")
    out = tmp_path / "faces.csv"
    run = run_cli(["predict", str(photos), "--out", str(out), "--annotate", str(tmp_path / "seen")], tmp_path / "run")
    run.check_finished()
    table = pd.read_csv(out, keep_default_na=False)
    assert sorted(Path(name).name for name in table["input"]) == ["exif.jpg", "single_face.jpg", "wide.jpg"]
    face = table[table["input"].str.endswith("single_face.jpg")].iloc[0]
    assert face["face_detected"] and face["error"] == "" and 0.0 <= float(face["happiness"]) <= 1.0
    assert not table[table["input"].str.endswith("wide.jpg")].iloc[0]["face_detected"]
    assert table[table["input"].str.endswith("exif.jpg")].iloc[0]["error"] == ""  # read, as stored or turned
    assert not [path for path in tmp_path.rglob("*") if path.name.endswith(".part")]
