"""read_image as a fault boundary (damaged EXIF and TIFF headers), and image_files' listing."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.data.images import OUTPUT_MARK, image_files, read_image
from mlfer.data.torch_dataset import ImageDataset, UnreadableImageWarning, collate_skipping_failures
from mlfer.data.transforms import eval_transform

#: Offset of the low byte of the first IFD0 tag (Make, 0x010F) in Pillow's big-endian EXIF block
#: (``Exif\0\0``, 8-byte TIFF header, 2-byte count, then 12-byte entries: tag, type, count, value).
MAKE_LOW_BYTE = 6 + 8 + 2 + 1


def damaged_exif(tag_low_byte: int, orientation: int = 6) -> bytes:
    """EXIF with the orientation and a Make tag renumbered to ``0x01NN``: a text value under a
    rational or integer tag, which made ``ImageOps.exif_transpose`` raise (TypeError, struct.error)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Maker"
    raw = bytearray(exif.tobytes())
    assert raw[MAKE_LOW_BYTE - 1 : MAKE_LOW_BYTE + 1] == b"\x01\x0f"
    raw[MAKE_LOW_BYTE] = tag_low_byte
    return bytes(raw)


def encoded(fmt: str, exif: bytes, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buffer, format=fmt, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("WEBP", ".webp"), ("PNG", ".png")])
@pytest.mark.parametrize("tag", [0x1A, 0x44, 0x22])  # XResolution (rational), TileOffsets, 0x0122 (short)
def test_damaged_exif_tags_keep_the_readable_orientation(tmp_path: Path, fmt: str, suffix: str, tag: int) -> None:
    path = tmp_path / f"photo{suffix}"
    path.write_bytes(encoded(fmt, damaged_exif(tag)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about the damaged tag
        image = read_image(path)
    assert image.size == (6, 8)  # orientation 6 still read: turned upright


def test_an_unreadable_orientation_gives_the_image_as_stored(tmp_path: Path) -> None:
    exif = bytearray(damaged_exif(0x0F))
    orientation_type = exif.index(b"\x01\x12\x00\x03") + 2
    exif[orientation_type : orientation_type + 2] = b"\x00\x02"  # the orientation written as text
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded("JPEG", bytes(exif)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_image(path).size == (8, 6)


def test_any_decoder_failure_is_an_error_naming_the_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 100, 50)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    for at, value in ((72, 11), (120, 76), (122, 248)):  # an IFD whose values raise TypeError in Pillow
        data[at] = value
    path = tmp_path / "scan.tiff"
    path.write_bytes(bytes(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = read_image(path)
    except MlferError as error:
        assert str(error).startswith(f"{path}: cannot read the image")
    else:
        assert image.mode == "RGB"


def test_training_on_a_folder_reads_photos_with_damaged_exif(tmp_path: Path) -> None:
    for index, name in enumerate(("happy/a.png", "sad/b.png")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 10), (index * 60, 0, 0)).save(tmp_path / name)
    (tmp_path / "sad" / "exif.jpg").write_bytes(encoded("JPEG", damaged_exif(0x1A), (10, 10)))
    dataset = ImageDataset(load_dataset(f"folder:{tmp_path}"), eval_transform(4))
    loader = DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=collate_skipping_failures)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableImageWarning)
        batches = list(loader)
    assert len(batches) == 3 and all(batch is not None for batch in batches)
    assert dataset.failures == {}


def test_image_files_leave_out_folders_of_mlfer_s_own_pictures(tmp_path: Path) -> None:
    for name in ("a.jpg", "sub/b.PNG", "annotated/000000-a.jpg", "annotated/deep/c.jpg", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "annotated" / OUTPUT_MARK).write_text("")
    assert image_files(tmp_path) == [tmp_path / "a.jpg", tmp_path / "sub" / "b.PNG"]
    # The marked folder itself, named as the input, is read.
    assert len(image_files(tmp_path / "annotated")) == 2
    assert np.array_equal(image_files(tmp_path, {".txt"}), [tmp_path / "notes.txt"])
