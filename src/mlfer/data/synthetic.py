"""Synthetic faces showing blended basic expressions (the offline ``synthetic:N`` dataset).

Label sets follow RAF-ML's co-occurrence (a committed table of label-set frequencies);
each face is drawn from the EMFACS action units of its expressions (:mod:`mlfer.data.facs`)
with a random identity, pose, background, lighting and noise, so that a model has to learn
the expression rather than the layout.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from mlfer.data.dataset import LabelledData
from mlfer.data.facs import (
    ACTION_UNITS,
    PARAMETER_NAMES,
    PARAMETERS,
    PROTOTYPES,
    Look,
    Sketch,
    face_geometry,
    head_outline,
    sketch_faces,
    unit_intensities,
)

#: Distinct RAF-ML label sets (binarised at >= 1/6) and their image counts.
LABEL_TABLE = Path(__file__).resolve().parents[1] / "resources" / "raf_ml_cooccurrence.csv"
#: Share of ``synthetic_dataset`` rows in the test split.
TEST_FRACTION = 0.2
#: Side of the grid backgrounds are computed on before being resized to the image.
BACKGROUND_SIZE = 48
#: Faces are drawn at this multiple of the image size, then reduced (anti-aliasing).
SUPERSAMPLE = 2
#: Faces rendered per vectorised batch.
CHUNK = 128
#: Random streams of a seed: faces (identity, pose, background), label sets, train/test split.
FACE_STREAM, LABEL_STREAM, SPLIT_STREAM = 0, 1, 2
_SKIN = np.array([(255, 224, 196), (234, 192, 160), (198, 140, 100), (141, 92, 58), (88, 58, 38)], float)
_HAIR = np.array([(20, 16, 14), (70, 44, 28), (120, 80, 40), (200, 170, 110), (150, 60, 30), (160, 160, 160)], float)
_IRIS = np.array([(60, 40, 25), (90, 60, 30), (60, 100, 150), (70, 110, 70), (30, 25, 20)], float)


@dataclass
class SyntheticFaces:
    """Generated faces with their labels and where each action unit was drawn.

    Args:
        images: (N, size, size, 3) uint8 RGB.
        labels: (N, 6) uint8 0/1 labels in RAF order.
        regions: (N, 13, 2, 4) float32 pixel boxes (x0, y0, x1, y1) of each action unit of
            :data:`mlfer.data.facs.ACTION_UNITS` on the face's two halves; NaN where not drawn.
        outlines: (N, K, 2) float32 pixel vertices (x, y) of each face: the head outline, cut
            at the hairline.
    """

    images: np.ndarray
    labels: np.ndarray
    regions: np.ndarray
    outlines: np.ndarray

    def expression_masks(self, index: int) -> np.ndarray:
        """(6, size, size) bool: the boxes of the units drawn for each present expression."""
        size = self.images.shape[1]
        masks = np.zeros((NUM_EXPRESSIONS, size, size), dtype=bool)
        for e, name in enumerate(EXPRESSIONS):
            if not self.labels[index, e]:
                continue
            for unit in PROTOTYPES[name]:
                for box in self.regions[index, ACTION_UNITS.index(unit)]:
                    if not np.isnan(box[0]):
                        _fill_box(masks[e], box)
        return masks

    def face_mask(self, index: int) -> np.ndarray:
        """(size, size) bool: the pixels inside face ``index``'s outline (hairline to chin)."""
        size = self.images.shape[1]
        canvas = Image.new("1", (size, size))
        ImageDraw.Draw(canvas).polygon([tuple(point) for point in self.outlines[index].tolist()], fill=1)
        return np.asarray(canvas, dtype=bool)


def _fill_box(mask: np.ndarray, box: np.ndarray) -> None:
    """Set the pixels of ``mask`` that a pixel box (x0, y0, x1, y1) touches, clipped to the image."""
    x0, y0, x1, y1 = box
    left, top = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    mask[top : min(int(np.ceil(y1)), mask.shape[0]), left : min(int(np.ceil(x1)), mask.shape[1])] = True


def read_label_table(path: Path = LABEL_TABLE) -> tuple[np.ndarray, np.ndarray]:
    """Label sets (K, 6) uint8 and their counts (K,) from a CSV with header ``<six expressions>,count``."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = [*EXPRESSIONS, "count"]
    if not rows or [cell.strip() for cell in rows[0]] != header:
        raise MlferError(f"header must be {','.join(header)}", path=path, line=1)
    sets, counts = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise MlferError(f"expected {len(header)} values, got {len(row)}", path=path, line=line)
        for name, cell in zip(header, row):
            if not cell.strip().isdigit() or (name != "count" and int(cell) > 1):
                expected = "a count" if name == "count" else "0 or 1"
                raise MlferError(f"{cell!r} is not {expected}", path=path, line=line, field=name)
        sets.append([int(cell) for cell in row[:-1]])
        counts.append(int(row[-1]))
    if not counts or sum(counts) == 0:
        raise MlferError("the table has no counted label set", path=path)
    return np.array(sets, dtype=np.uint8), np.array(counts, dtype=np.int64)


def sample_label_sets(n: int, rng: np.random.Generator, single_label: bool = False) -> np.ndarray:
    """(n, 6) label sets in RAF-ML's proportions, or one uniform basic expression per row.

    Systematic sampling: set k is drawn floor or ceil of ``n * p_k`` times (unbiased, with
    far less spread than independent draws), then the rows are shuffled.
    """
    if single_label:
        sets, weights = np.eye(NUM_EXPRESSIONS, dtype=np.uint8), np.ones(NUM_EXPRESSIONS)
    else:
        sets, weights = read_label_table()
    cumulative = np.cumsum(weights / weights.sum())
    positions = (rng.random() + np.arange(n)) / n
    chosen = np.minimum(np.searchsorted(cumulative, positions, side="right"), len(sets) - 1)
    return sets[rng.permutation(chosen)]


def _palette(rng: np.random.Generator, palette: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) random points between neighbouring colours of ``palette``."""
    k = rng.integers(len(palette) - 1, size=n)
    return palette[k] + rng.random((n, 1)) * (palette[k + 1] - palette[k])


def sample_looks(rng: np.random.Generator, n: int) -> Look:
    """``n`` random identities: skin, hair, eyes, lips, clothes and head shape."""
    skin = _palette(rng, _SKIN, n)
    return Look(
        skin=skin,
        hair=_palette(rng, _HAIR, n),
        iris=_palette(rng, _IRIS, n),
        lips=np.clip(skin * [0.85, 0.55, 0.55] + [40, 0, 10] + rng.uniform(-15, 15, (n, 3)), 0, 255),
        shirt=rng.uniform(20, 235, (n, 3)),
        height=rng.uniform(1.18, 1.42, n),
        taper=rng.uniform(0.0, 0.25, n),
        hair_style=rng.choice(3, size=n, p=[0.15, 0.45, 0.4]),
        hairline=rng.uniform(0.76, 0.95, n),
        volume=rng.uniform(1.04, 1.15, n),
        brow=rng.uniform(0.05, 0.09, n),
        gaze=rng.uniform(-1, 1, n),
    )


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates scaled to [-1, 1] (float32)."""
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    return np.meshgrid(axis, axis)


def _ramp(rng: np.random.Generator, n: int, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """(n, H, W) linear ramps in [-1, 1] along random directions."""
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    return np.cos(angle) * xx + np.sin(angle) * yy


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> list[Image.Image]:
    """Gradients between two random colours plus up to two sinusoidal textures, computed on a
    coarse grid and resized to ``size`` pixels."""
    xx, yy = _grid(BACKGROUND_SIZE)
    first, second = rng.uniform(0, 255, (2, n, 1, 1, 3)).astype(np.float32)
    images = first + (_ramp(rng, n, xx, yy)[..., None] + 1) / 2 * (second - first)
    waves = rng.integers(0, 3, n)
    for slot in range(2):
        frequency = (rng.uniform(2, 25, (2, n, 1, 1)) * rng.choice([-1, 1], (2, n, 1, 1))).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
        amplitude = rng.uniform(5, 35, (n, 1, 1, 1)) * rng.uniform(0.3, 1, (n, 1, 1, 3))
        amplitude *= (slot < waves)[:, None, None, None]
        images += amplitude.astype(np.float32) * np.sin(frequency[0] * xx + frequency[1] * yy + phase)[..., None]
    coarse = np.clip(images, 0, 255).astype(np.uint8)
    return [Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR) for image in coarse]


def _light_and_noise(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Exposure, a brightness gradient and Gaussian pixel noise on (n, H, W, 3) float32 images."""
    n, size = len(images), images.shape[1]
    exposure = rng.uniform(0.8, 1.15, (n, 1, 1)).astype(np.float32)
    slope = rng.uniform(0, 0.3, (n, 1, 1)).astype(np.float32)
    gain = exposure * (1 + slope * _ramp(rng, n, *_grid(size)))
    noise = rng.standard_normal(images.shape, dtype=np.float32) * rng.uniform(0, 6, (n, 1, 1, 1)).astype(np.float32)
    return np.clip(images * gain[..., None] + noise, 0, 255).astype(np.uint8)


def _to_pixels(points: np.ndarray, matrices: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Face-unit points (n, ..., 2) to pixels with per-face matrices (n, 2, 2) and centres (n, 2)."""
    flat = points.reshape(len(points), -1, 2)
    pixels = np.einsum("nkd,ned->nke", flat, matrices) + centres[:, None]
    return pixels.reshape(points.shape)


def _draw(
    canvases: list[Image.Image], sketch: Sketch, matrices: np.ndarray, centres: np.ndarray, scales: np.ndarray
) -> None:
    """Draw every shape of ``sketch`` on the canvas of each face where it is present."""
    prepared = []
    for shape in sketch.shapes:
        points = _to_pixels(shape.points, matrices, centres).reshape(len(canvases), -1).tolist()
        colours = np.clip(shape.colour, 0, 255).astype(int).tolist()
        widths = None if shape.width is None else np.maximum(1, np.round(shape.width * scales)).astype(int).tolist()
        prepared.append((points, colours, widths, shape.present.tolist()))
    for i, canvas in enumerate(canvases):
        draw = ImageDraw.Draw(canvas)
        for points, colours, widths, present in prepared:
            if not present[i]:
                continue
            if widths is None:
                draw.polygon(points[i], fill=tuple(colours[i]))
            else:
                draw.line(points[i], fill=tuple(colours[i]), width=widths[i], joint="curve")


def _render(rng: np.random.Generator, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, size, size, 3), unit regions (n, 13, 2, 4) and face outlines (n, K, 2) of
    faces showing ``labels``."""
    n, big = len(labels), SUPERSAMPLE * size
    intensities = unit_intensities(labels, rng.uniform(0.7, 1.0, labels.shape))
    geometry = face_geometry(intensities, rng.uniform(-1, 1, (n, len(PARAMETERS))))
    looks = sample_looks(rng, n)
    sketch = sketch_faces(looks, geometry, intensities)
    centres = big * (0.5 + rng.uniform(-0.05, 0.05, (n, 2)))
    scales = big * rng.uniform(0.25, 0.30, n)
    angles = np.deg2rad(rng.uniform(-6, 6, n))
    cos, sin = np.cos(angles), np.sin(angles)
    matrices = scales[:, None, None] * np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    canvases = _backgrounds(rng, n, big)
    _draw(canvases, sketch, matrices, centres, scales)
    reduced = np.stack([np.asarray(canvas.reduce(SUPERSAMPLE), np.float32) for canvas in canvases])
    boxes = sketch.unit_boxes(intensities)
    corners = _to_pixels(boxes[..., [[0, 1], [2, 1], [2, 3], [0, 3]]], matrices, centres)
    regions = np.concatenate([corners.min(axis=-2), corners.max(axis=-2)], axis=-1) / SUPERSAMPLE
    outline = head_outline(looks, geometry[:, [PARAMETER_NAMES.index("chin")]])
    outline[..., 1] = np.maximum(outline[..., 1], -looks.hairline[:, None])
    outlines = _to_pixels(outline, matrices, centres) / SUPERSAMPLE
    return _light_and_noise(rng, reduced), np.clip(regions, 0, size).astype(np.float32), outlines.astype(np.float32)


def render_faces(labels: np.ndarray, seed: int = 0, size: int = 128) -> SyntheticFaces:
    """Draw one face per row of ``labels`` (N, 6) in RAF order.

    Identities, poses, backgrounds, lighting and noise depend on ``seed``, N and ``size``
    but not on the labels: the same seed and N show the same people with other expressions.

    Args:
        labels: (N, 6) 0/1 label sets (a row of zeros gives a neutral face).
        seed: random seed for everything but the labels.
        size: side of the square images, in pixels (drawn at :data:`SUPERSAMPLE` times that).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != NUM_EXPRESSIONS or len(labels) < 1:
        raise MlferError(f"labels must be N x {NUM_EXPRESSIONS} with N >= 1, got {labels.shape}", field="labels")
    if not np.isin(labels, (0, 1)).all():
        raise MlferError("labels must be 0 or 1", field="labels")
    if size < 32:
        raise MlferError(f"faces must be at least 32 pixels wide, got {size}", field="size")
    labels = labels.astype(np.uint8)
    rng = seeded_rng(seed, FACE_STREAM)
    chunks = [_render(rng, labels[start : start + CHUNK], size) for start in range(0, len(labels), CHUNK)]
    images, regions, outlines = (np.concatenate(parts) for parts in zip(*chunks))
    return SyntheticFaces(images=images, labels=labels, regions=regions, outlines=outlines)


def generate_faces(n: int, seed: int = 0, size: int = 128, single_label: bool = False) -> SyntheticFaces:
    """Sample ``n`` label sets (:func:`sample_label_sets`) and draw them (:func:`render_faces`).

    The same arguments give identical arrays.

    Args:
        n: number of faces.
        seed: random seed for the labels and the faces.
        size: side of the square images, in pixels.
        single_label: one uniformly chosen basic expression per face (for visual prototypes
            and backbone pre-training) instead of RAF-ML's label sets.
    """
    if n < 1:
        raise MlferError(f"the number of faces must be at least 1, got {n}", field="n")
    labels = sample_label_sets(n, seeded_rng(seed, LABEL_STREAM), single_label)
    return render_faces(labels, seed=seed, size=size)


def seeded_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent random streams of one seed (:data:`FACE_STREAM`, :data:`LABEL_STREAM`,
    :data:`SPLIT_STREAM`)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MlferError(f"the seed must be a non-negative integer, got {seed!r}", field="seed")
    return np.random.default_rng([int(seed), stream])


def synthetic_dataset(n: int = 2000, seed: int = 0, size: int = 128, single_label: bool = False) -> LabelledData:
    """``synthetic:N`` as a dataset: images in memory, a seeded 80/20 train/test ``split``."""
    faces = generate_faces(n, seed=seed, size=size, single_label=single_label)
    split = np.full(n, "train")
    split[seeded_rng(seed, SPLIT_STREAM).permutation(n)[: round(TEST_FRACTION * n)]] = "test"
    return LabelledData(
        spec=f"synthetic:{n}",
        labels=faces.labels,
        ids=[f"synthetic_{i:06d}" for i in range(n)],
        images=faces.images,
        split=split,
    )
