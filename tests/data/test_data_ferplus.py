"""FER+ (``ferplus:DIR``): small trees written in FER+'s real line formats, and the shared copy."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.data.ferplus import decode_pixels, is_face, multi_labels, named_rows, read_votes
from mlfer.data.torch_dataset import ImageDataset, UnreadableImageWarning
from mlfer.data.transforms import eval_transform
from mlfer.train.resident import decode_images

HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}

#: (Usage, name, votes neutral..NF). The names skip 0000002 after the empty-name row, as the
#: real file's do, so a join by row number would pair the wrong votes and faces.
ROWS = [
    ("Training", "fer0000000.png", "4,0,0,1,3,2,0,0,0,0"),  # anger 3, disgust 2: two labels
    ("Training", "fer0000001.png", "6,0,1,1,0,0,0,0,2,0"),  # neutral: no basic label
    ("Training", "", "0,0,0,0,0,0,0,0,0,10"),  # not a face: no name
    ("Training", "fer0000003.png", "0,8,2,0,0,0,0,0,0,0"),  # happiness + surprise
    ("Training", "fer0000004.png", "0,0,0,0,4,0,0,0,0,6"),  # "not a face" by 6 of 10
    ("PublicTest", "fer0000005.png", "5,0,0,5,0,0,0,0,0,0"),  # sadness
    ("PrivateTest", "fer0000006.png", "0,0,7,0,0,0,3,0,0,0"),  # surprise + fear
]


def _face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def _layout(root: Path, rows=ROWS, *, new_labels: bool = True, label_csv: bool = False) -> Path:
    """FER+'s training layout: split folders of ferNNNNNNN.png (face = _face(row number)),
    fer2013new.csv and, with ``label_csv``, each folder's label.csv."""
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    for number, (usage, name, votes) in enumerate(rows):
        if name:
            Image.fromarray(_face(number)).save(root / FOLDERS[usage] / name, compress_level=0)
            if label_csv:
                with (root / FOLDERS[usage] / "label.csv").open("a") as handle:
                    handle.write(f'{name},"(0, 0, 48, 48)",{votes}\n')
    if new_labels:
        (root / "fer2013new.csv").write_text("\n".join([HEADER, *(",".join(row) for row in rows)]) + "\n")
    return root


def _raw(root: Path, faces: list[np.ndarray], rows=ROWS) -> Path:
    """Kaggle's fer2013.csv (emotion,pixels,Usage) beside a fer2013new.csv of the same rows."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["emotion,pixels,Usage"]
    lines += [f"3,{' '.join(map(str, face.ravel()))},{usage}" for face, (usage, _, _) in zip(faces, rows)]
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    (root / "fer2013new.csv").write_text("\n".join([HEADER, *(",".join(row) for row in rows)]) + "\n")
    return root


def _load(spec: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_dataset(spec)


def test_layout_labels_splits_and_vote_shares(tmp_path):
    root = _layout(tmp_path)
    data = _load(f"ferplus:{root}")
    assert data.ids == ["fer0000000.png", "fer0000003.png", "fer0000005.png", "fer0000006.png"]
    # RAF order: surprise, fear, disgust, happiness, sadness, anger
    np.testing.assert_array_equal(
        data.labels, [[0, 0, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 0]]
    )
    assert list(data.split) == ["train", "train", "validation", "test"]
    assert data.paths == [
        root / "FER2013Train" / "fer0000000.png",
        root / "FER2013Train" / "fer0000003.png",
        root / "FER2013Valid" / "fer0000005.png",
        root / "FER2013Test" / "fer0000006.png",
    ]
    np.testing.assert_allclose(data.distribution[0], [0, 0, 0.2, 0, 0.1, 0.3])
    np.testing.assert_allclose(data.distribution.sum(axis=1), [0.6, 1.0, 0.5, 1.0])
    (partition,) = data.partitions()
    assert list(partition.train) == [0, 1] and list(partition.validation) == [2] and list(partition.test) == [3]
    assert data.subset(np.array([3])).distribution.shape == (1, 6)


def test_join_is_by_name_whatever_the_row_order(tmp_path):
    root = _layout(tmp_path / "a")
    shuffled = [ROWS[index] for index in (6, 3, 0, 5, 2, 1, 4)]
    (root / "fer2013new.csv").write_text("\n".join([HEADER, *(",".join(row) for row in shuffled)]) + "\n")
    data = _load(f"ferplus:{root}")
    assert data.ids == ["fer0000006.png", "fer0000003.png", "fer0000000.png", "fer0000005.png"]
    assert [path.name for path in data.paths] == data.ids
    np.testing.assert_array_equal(data.labels[0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(Image.open(data.paths[2])), _face(0))


def test_options_keep_unlabelled_min_votes_and_test_on_valid(tmp_path):
    root = _layout(tmp_path)
    kept = _load(f"ferplus:{root}?keep_unlabelled=1")
    assert kept.ids == ["fer0000000.png", "fer0000001.png", "fer0000003.png", "fer0000005.png", "fer0000006.png"]
    assert not kept.labels[1].any()  # neutral, unknown: all zero; the "not a face" row stays out
    strict = _load(f"ferplus:{root}?min_votes=3")
    np.testing.assert_array_equal(strict.labels[0], [0, 0, 0, 0, 0, 1])  # disgust had 2 votes
    valid = _load(f"ferplus:{root}?test=valid")
    assert valid.ids[-1] == "fer0000005.png" and list(valid.split) == ["train", "train", "test"]
    assert len(valid.partitions()[0].validation) == 0


def test_a_missing_split_folder_is_named_with_the_way_out(tmp_path):
    root = _layout(tmp_path)
    shutil.rmtree(root / "FER2013Test")
    with pytest.raises(MlferError, match=r"no FER2013Test/ folder .*\?test=valid"):
        load_dataset(f"ferplus:{root}")
    assert _load(f"ferplus:{root}?test=valid").split[-1] == "test"
    shutil.rmtree(root / "FER2013Valid")
    with pytest.raises(MlferError, match="no FER2013Valid/ folder"):
        load_dataset(f"ferplus:{root}?test=valid")


def test_labels_beside_the_folder_and_label_csv_fallback(tmp_path):
    _layout(tmp_path / "data", new_labels=False, label_csv=True)
    old = _load(f"ferplus:{tmp_path / 'data'}")
    assert old.ids == ["fer0000000.png", "fer0000003.png", "fer0000005.png", "fer0000006.png"]
    assert list(old.split) == ["train", "train", "validation", "test"]
    # fer2013new.csv beside the folder wins over label.csv
    newer = [
        (usage, name, "0,0,0,0,0,0,0,10,0,0" if name == "fer0000003.png" else votes) for usage, name, votes in ROWS
    ]
    (tmp_path / "fer2013new.csv").write_text("\n".join([HEADER, *(",".join(row) for row in newer)]) + "\n")
    new = _load(f"ferplus:{tmp_path / 'data'}")
    assert "fer0000003.png" not in new.ids  # contempt only: no basic label


def test_duplicate_names_keep_the_last_row_with_a_warning(tmp_path):
    rows = [*ROWS, ("Training", "fer0000000.png", "0,0,0,0,0,0,0,0,0,10"), ("Training", "fer0000003.png", ROWS[3][2])]
    root = _layout(tmp_path, rows)
    with pytest.warns(
        UserWarning, match=r"2 image names .* fer0000000.png \(lines 2, 9\); fer0000003.png \(lines 5, 10\)"
    ):
        data = load_dataset(f"ferplus:{root}")
    assert data.ids == ["fer0000005.png", "fer0000006.png", "fer0000003.png"]  # 0000000's last row: not a face


def test_single_view_is_fers_majority_vote(tmp_path):
    rows = [
        ("Training", "fer0000000.png", "0,6,4,0,0,0,0,0,0,0"),  # happiness 6/10
        ("Training", "fer0000001.png", "1,0,5,1,1,1,1,0,0,0"),  # surprise: 5/5 once single votes drop
        ("Training", "fer0000002.png", "4,4,0,0,0,0,0,0,2,0"),  # no majority
        ("Training", "fer0000003.png", "7,0,3,0,0,0,0,0,0,0"),  # neutral
        ("PublicTest", "fer0000004.png", "0,0,0,0,0,0,0,9,1,0"),  # contempt
        ("PrivateTest", "fer0000005.png", "2,0,0,0,0,0,8,0,0,0"),  # fear
    ]
    root = _layout(tmp_path, rows)
    data = _load(f"ferplus:{root}?view=single")
    assert data.ids == ["fer0000000.png", "fer0000001.png", "fer0000005.png"]
    np.testing.assert_array_equal(data.labels, [[0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]])
    with_neutral = _load(f"ferplus:{root}?view=single&keep_unlabelled=1")
    assert with_neutral.ids == ["fer0000000.png", "fer0000001.png", "fer0000003.png", "fer0000005.png"]
    assert not with_neutral.labels[2].any()


@pytest.mark.parametrize(
    "row, message, field",
    [
        ("Training,fer0000009.png,1,2,3", "expected 12 fields", None),
        ("Training,fer0000009.png,1,2,x,0,0,0,0,0,0,0", "'x' is not a whole number from 0 to 100", "surprise"),
        ("Training,fer0000009.png,1,2,,0,0,0,0,0,0,0", "'' is not a whole number", "surprise"),
        ("Training,fer0000009.png,1,-2,3,0,0,0,0,0,0,0", "'-2' is not a whole number", "happiness"),
        ("Training,fer0000009.png,0,0,0,0,0,0,0,0,0,0", "no votes", None),
        ("Train,fer0000009.png,1,2,3,0,0,0,0,0,0,0", "Usage 'Train'", "Usage"),
    ],
)
def test_a_bad_vote_row_names_file_and_line(tmp_path, row, message, field):
    root = _layout(tmp_path)
    path = root / "fer2013new.csv"
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), len(ROWS) + 2, field)


WIDE_OR_FOREIGN = [
    "3221225472",  # 2**31 + 2**30: was a negative count after a 32-bit cast, kept as happiness
    "4294967296",  # 2**32: was 0, and the row dropped without a word
    "99999999999999999999",  # past int64: was -1
    "101",  # over MAX_VOTES
    "9" * 5000,  # past Python's integer digit limit
    "\u0663",  # Arabic-Indic three: int() takes it, the fast parse did not
    "\uff13",  # fullwidth three
    "+3",
    "3.0",
]


@pytest.mark.parametrize("count", WIDE_OR_FOREIGN)
def test_a_vote_count_out_of_bounds_or_not_ascii_names_line_and_column(tmp_path, count):
    rows = [*ROWS[:3], ("Training", "fer0000003.png", f"0,8,2,0,0,0,0,0,{count},0"), *ROWS[4:]]
    root = _layout(tmp_path, rows)
    with pytest.raises(MlferError, match="is not a whole number from 0 to 100 written in digits 0-9") as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(root / "fer2013new.csv"), 5, "unknown")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


@pytest.mark.parametrize("count", ["4294967296", "\u0663", "101"])
def test_label_csv_vote_counts_are_checked_alike(tmp_path, count):
    root = _layout(tmp_path, new_labels=False, label_csv=True)
    label_csv = root / "FER2013Train" / "label.csv"
    lines = label_csv.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + f",{count}"
    label_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(MlferError, match="not a whole number from 0 to 100") as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(label_csv), 2, "NF")


def test_the_largest_vote_count_is_read_and_min_votes_is_bounded_alike(tmp_path):
    rows = [("Training", "fer0000000.png", "0,100,0,0,0,0,0,0,0,0"), *ROWS[5:]]
    data = _load(f"ferplus:{_layout(tmp_path, rows)}?min_votes=100")
    assert data.ids == ["fer0000000.png"] and data.labels[0].tolist() == [0, 0, 0, 1, 0, 0]
    with pytest.raises(MlferError, match="min_votes must be from 1 to 100, got 101"):
        load_dataset(f"ferplus:{tmp_path}?min_votes=101")


@pytest.mark.parametrize("rows_after", [50, 20000])  # a short file, and one past the csv field size limit
def test_an_unclosed_quote_is_named_by_the_line_it_opens_on(tmp_path, rows_after):
    rows = [*ROWS[:3], ("Training", '"fer0000003.png', ROWS[3][2]), *ROWS[4:]]
    rows += [("Training", "", ROWS[2][2])] * rows_after  # no name, so no image to write
    root = _layout(tmp_path, rows)
    with pytest.raises(MlferError, match="quote") as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line) == (str(root / "fer2013new.csv"), 5)


def test_bad_header_missing_image_and_unnamed_image(tmp_path):
    root = _layout(tmp_path / "a")
    path = root / "fer2013new.csv"
    path.write_text(path.read_text().replace("neutral,", "neutral;"))
    with pytest.raises(MlferError, match="expected the header") as caught:
        load_dataset(f"ferplus:{root}")
    assert caught.value.line == 1
    root = _layout(tmp_path / "b")
    (root / "FER2013Valid" / "fer0000005.png").unlink()
    with pytest.raises(MlferError, match=r"fer0000005.png \(PublicTest\) is not in .*FER2013Valid") as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line) == (str(root / "fer2013new.csv"), 7)
    root = _layout(tmp_path / "c")
    Image.fromarray(_face(9)).save(root / "FER2013Train" / "fer0000099.png")
    with pytest.warns(UserWarning, match=r"FER2013Train: left out 1 images that no vote row names \(first: fer0000099"):
        assert len(load_dataset(f"ferplus:{root}")) == 4
    label_csv = _layout(tmp_path / "d", new_labels=False, label_csv=True) / "FER2013Train" / "label.csv"
    label_csv.write_text(label_csv.read_text() + 'fer0000099.png,"(0, 0, 48, 48)",1,2\n')
    with pytest.raises(MlferError, match="expected 12 fields") as caught:
        load_dataset(f"ferplus:{tmp_path / 'd'}")
    assert (caught.value.path, caught.value.line) == (str(label_csv), 5)


def test_bad_options(tmp_path):
    root = _layout(tmp_path)
    for option, message in [("view=both", "expected multi or single"), ("test=public", "expected private or valid")]:
        with pytest.raises(MlferError, match=message):
            load_dataset(f"ferplus:{root}?{option}")
    with pytest.raises(MlferError, match="min_votes must be from 1 to 100"):
        load_dataset(f"ferplus:{root}?min_votes=0")
    with pytest.raises(MlferError, match="no face is left"):
        load_dataset(f"ferplus:{root}?min_votes=11")
    with pytest.raises(MlferError, match="no FER\\+ data"):
        load_dataset(f"ferplus:{tmp_path / 'FER2013Train'}")


def test_a_corrupt_png_is_skipped_in_training_and_named(tmp_path):
    root = _layout(tmp_path)
    (root / "FER2013Train" / "fer0000003.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = _load(f"ferplus:{root}")
    dataset = ImageDataset(data, eval_transform(32))
    with pytest.warns(UnreadableImageWarning, match="fer0000003.png"):
        samples = [dataset[row] for row in range(len(data))]
    assert samples[1] is None and all(sample is not None for sample in samples[:1] + samples[2:])
    assert dataset.failures == {1: str(root / "FER2013Train" / "fer0000003.png")}


def test_raw_csv_is_decoded_in_memory_like_the_pngs(tmp_path):
    faces = [_face(number) for number in range(len(ROWS))]
    faces[0][0, :4] = [0, 9, 10, 255]  # one-, two- and three-digit values
    raw = _load(f"ferplus:{_raw(tmp_path / 'raw', faces)}")
    layout = _load(f"ferplus:{_layout(tmp_path / 'layout')}")
    assert raw.paths is None and raw.images.shape == (4, 48, 48) and raw.images.dtype == np.uint8
    assert raw.ids == layout.ids and list(raw.split) == list(layout.split)
    np.testing.assert_array_equal(raw.labels, layout.labels)
    np.testing.assert_array_equal(raw.images[0], faces[0])
    np.testing.assert_array_equal(raw.images[1:], [np.asarray(Image.open(path)) for path in layout.paths[1:]])


def test_grey_in_memory_faces_feed_both_image_loaders(tmp_path):
    faces = [_face(number) for number in range(len(ROWS))]
    data = _load(f"ferplus:{_raw(tmp_path, faces)}")
    sample, labels, row = ImageDataset(data, eval_transform(24))[2]
    assert sample.shape == (3, 24, 24) and row == 2
    torch.testing.assert_close(labels, torch.tensor(data.labels[2], dtype=torch.float32))
    resident, rows = decode_images(data, 48, torch.device("cpu"), 0, shared=False)
    assert list(rows) == [0, 1, 2, 3] and resident.shape == (4, 3, 48, 48)
    for channel in range(3):
        np.testing.assert_array_equal(resident[:, channel].numpy(), data.images)


@pytest.mark.parametrize(
    "pixels, message",
    [
        ("1 2 3", "holds 3 values, not 48 x 48 = 2304"),
        (" ".join(["7"] * 2305), "holds 2305 values"),
        (" ".join(["7"] * 2303 + ["256"]), "pixel value '256' is not a whole number from 0 to 255"),
        (" ".join(["7"] * 2303 + ["1.5"]), "pixel value '1.5'"),
        (" ".join(["-7"] * 2304), "pixel value '-7'"),
        (" ".join(["7"] * 2303 + ["9" * 5000]), r"pixel value '9999.*' is not a whole number"),  # past int()'s limit
        (" ".join(["7"] * 2303 + ["\u0663"]), "pixel value '\u0663'"),
    ],
)
def test_a_bad_pixels_row_names_file_and_line(tmp_path, pixels, message):
    root = _raw(tmp_path, [_face(number) for number in range(len(ROWS))])
    path = root / "fer2013.csv"
    lines = path.read_text().splitlines()
    lines[4] = f"3,{pixels},Training"  # fer0000003.png's row
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 5, "pixels")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_decode_pixels_takes_loose_spacing_by_the_slow_path():
    face = _face(3)
    tidy = " ".join(map(str, face.ravel())).encode()
    loose = b"  " + b"\t".join(tidy.split(b" ")) + b" "
    np.testing.assert_array_equal(decode_pixels([tidy, loose, tidy], [2, 3, 4], Path("fer2013.csv")), [face] * 3)


def test_raw_csv_must_pair_with_the_votes_row_for_row(tmp_path):
    faces = [_face(number) for number in range(len(ROWS))]
    root = _raw(tmp_path, faces)
    path = root / "fer2013.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(MlferError, match=r"6 rows, but .*fer2013new.csv has 7"):
        load_dataset(f"ferplus:{root}")
    path.write_text("\n".join([*lines, lines[-1]]) + "\n")
    with pytest.raises(MlferError, match="more rows than the 7") as caught:
        load_dataset(f"ferplus:{root}")
    assert caught.value.line == 9
    path.write_text("\n".join([*lines[:3], lines[3].replace("Training", "PublicTest"), *lines[4:]]) + "\n")
    with pytest.raises(MlferError, match="Usage 'PublicTest' differs from 'Training'") as caught:
        load_dataset(f"ferplus:{root}")
    assert (caught.value.line, caught.value.field) == (4, "Usage")
    path.write_text("emotion,Usage,pixels\n")
    with pytest.raises(MlferError, match="expected the header emotion,pixels,Usage"):
        load_dataset(f"ferplus:{root}")


def test_raw_csv_written_from_shared_pngs_matches_the_layout(shared_data, tmp_path):
    ferplus = shared_data / "ferplus"
    if not (ferplus / "FER2013Train").is_dir():
        pytest.skip(f"{ferplus} holds no FER+ layout")
    lines = (ferplus / "fer2013new.csv").read_text().splitlines()
    picked = [line for line in lines[1:60] if line.split(",")[1]][:8]
    picked += [line for line in lines if line.startswith("PublicTest,")][:4]
    rows = [(line.split(",")[0], line.split(",")[1], ",".join(line.split(",")[2:])) for line in picked]
    for usage, name, _ in rows:
        (tmp_path / "layout" / FOLDERS[usage]).mkdir(parents=True, exist_ok=True)
        shutil.copy(ferplus / FOLDERS[usage] / name, tmp_path / "layout" / FOLDERS[usage] / name)
    (tmp_path / "layout" / "fer2013new.csv").write_text("\n".join([HEADER, *picked]) + "\n")
    faces = [np.asarray(Image.open(ferplus / FOLDERS[usage] / name)) for usage, name, _ in rows]
    raw = _load(f"ferplus:{_raw(tmp_path / 'raw', faces, rows)}?test=valid&keep_unlabelled=1")
    layout = _load(f"ferplus:{tmp_path / 'layout'}?test=valid&keep_unlabelled=1")
    assert raw.ids == layout.ids == [name for _, name, _ in rows]
    np.testing.assert_array_equal(raw.labels, layout.labels)
    np.testing.assert_array_equal(raw.images, [np.asarray(Image.open(path).convert("L")) for path in layout.paths])


def test_shared_ferplus_counts(shared_data):
    ferplus = shared_data / "ferplus"
    if not (ferplus / "fer2013new.csv").is_file():
        pytest.skip(f"{ferplus / 'fer2013new.csv'} is absent")
    with pytest.warns(UserWarning, match="4 image names are listed more than once"):
        votes = read_votes(ferplus / "fer2013new.csv")
        rows = named_rows(votes)
    assert len(votes.names) == 35887 and len(rows) == 35710
    labels = multi_labels(votes.counts[rows[is_face(votes.counts[rows])]], 2)
    cardinality = labels.sum(axis=1)
    assert ((cardinality >= 1).sum(), (cardinality >= 2).sum()) == (29159, 6090)
    assert labels.sum() / (cardinality >= 1).sum() == pytest.approx(1.233, abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(f"ferplus:{ferplus}?test=valid")
    counts = {part: data.labels[data.split == part].sum(axis=1) for part in ("train", "test")}
    assert {part: (len(c), int((c >= 2).sum())) for part, c in counts.items()} == {
        "train": (23457, 4876),
        "test": (2805, 595),
    }
