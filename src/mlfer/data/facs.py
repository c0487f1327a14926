"""Facial action units (FACS) of the six basic expressions, and cartoon faces sketched from them.

A face's shape is a vector of named parameters in *face units* (half the face width is 1,
y pointing down, origin at the centre of the head). Every action unit adds a signed
displacement to some parameters, so the units of blended expressions add up (a lip-corner
pull and a lip-corner depressor partly cancel), and every active unit also draws its own
marks (wrinkles, furrows, folds, teeth) so it stays visible in a blend. Everything is
computed for a batch of N faces at once; :class:`Sketch` holds the result as primitives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlfer.core.expressions import EXPRESSIONS

ACTION_UNITS: tuple[str, ...] = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU12",
    "AU15",
    "AU16",
    "AU20",
    "AU23",
    "AU26",
)

#: EMFACS prototypes of the basic expressions (Friesen & Ekman, 1983), as unit intensities;
#: surprise's "5B" (slight upper-lid raise, FACS intensity B) is 0.5.
PROTOTYPES: dict[str, dict[str, float]] = {
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.5, "AU26": 1.0},
    "fear": {"AU1": 1.0, "AU2": 1.0, "AU4": 1.0, "AU5": 1.0, "AU7": 1.0, "AU20": 1.0, "AU26": 1.0},
    "disgust": {"AU9": 1.0, "AU15": 1.0, "AU16": 1.0},
    "happiness": {"AU6": 1.0, "AU12": 1.0},
    "sadness": {"AU1": 1.0, "AU4": 1.0, "AU15": 1.0},
    "anger": {"AU4": 1.0, "AU5": 1.0, "AU7": 1.0, "AU23": 1.0},
}

#: Face parameters: (neutral value, identity jitter half-range, lower bound), in face units.
PARAMETERS: dict[str, tuple[float, float, float]] = {
    "eye_x": (0.40, 0.04, 0.30),  # |x| of the eye centres
    "eye_y": (-0.10, 0.04, -0.20),  # y of the eye centres
    "eye_w": (0.19, 0.02, 0.14),  # eye half-width
    "upper_lid": (0.085, 0.012, 0.03),  # upper lid height above the eye centre
    "lower_lid": (0.055, 0.008, 0.015),  # lower lid depth below the eye centre
    "brow_gap": (0.24, 0.02, 0.15),  # brow base height above the eyes
    "brow_inner": (0.0, 0.0, -1.0),  # vertical shift of the brows' inner ends
    "brow_mid": (0.0, 0.0, -1.0),  # vertical shift of the brows' middles
    "brow_outer": (0.0, 0.0, -1.0),  # vertical shift of the brows' outer ends
    "brow_inner_x": (0.15, 0.02, 0.06),  # |x| of the brows' inner ends
    "nose_y": (0.24, 0.03, 0.15),  # y of the nose's base
    "nostril_y": (0.0, 0.0, -1.0),  # vertical shift of the nostrils
    "nostril_w": (0.0, 0.01, -0.02),  # extra nostril flare
    "mouth_y": (0.52, 0.03, 0.42),  # y where the lips meet, at the centre
    "mouth_w": (0.30, 0.03, 0.16),  # mouth half-width
    "corner_y": (0.0, 0.01, -1.0),  # vertical shift of the lip corners (negative = up)
    "upper_lip": (0.05, 0.012, 0.012),  # upper lip thickness
    "lower_lip": (0.065, 0.012, 0.015),  # lower lip thickness
    "mouth_open": (0.0, 0.0, 0.0),  # gap between the lips (jaw drop)
    "lip_depress": (0.0, 0.0, 0.0),  # lower lip pulled down at the centre
    "chin": (0.0, 0.0, 0.0),  # jaw lowered: extra length of the lower face
}

#: Signed displacement d_u of each unit at full intensity (its FACS appearance change).
DISPLACEMENTS: dict[str, dict[str, float]] = {
    "AU1": {"brow_inner": -0.13, "brow_mid": -0.05},  # inner brow raiser
    "AU2": {"brow_outer": -0.13, "brow_mid": -0.07},  # outer brow raiser
    "AU4": {"brow_inner": 0.10, "brow_mid": 0.08, "brow_outer": 0.05, "brow_inner_x": -0.06},  # lowerer
    "AU5": {"upper_lid": 0.07},  # upper lid raiser
    "AU6": {"lower_lid": -0.02, "upper_lid": -0.01},  # cheek raiser
    "AU7": {"lower_lid": -0.03, "upper_lid": -0.02},  # lid tightener
    "AU9": {"nostril_y": -0.04, "nostril_w": 0.03},  # nose wrinkler
    "AU12": {"corner_y": -0.12, "mouth_w": 0.05},  # lip corner puller
    "AU15": {"corner_y": 0.12},  # lip corner depressor
    "AU16": {"lip_depress": 0.07},  # lower lip depressor
    "AU20": {"mouth_w": 0.10, "corner_y": 0.02},  # lip stretcher
    "AU23": {"upper_lip": -0.035, "lower_lip": -0.04, "mouth_w": -0.05},  # lip tightener
    "AU26": {"mouth_open": 0.2, "chin": 0.10},  # jaw drop
}

PARAMETER_NAMES: tuple[str, ...] = tuple(PARAMETERS)
#: Margin around a unit's drawn points in its region boxes, in face units.
MARK_MARGIN = 0.03

_NEUTRAL = np.array([value[0] for value in PARAMETERS.values()])
_JITTER = np.array([value[1] for value in PARAMETERS.values()])
_LOWER = np.array([value[2] for value in PARAMETERS.values()])
_PROTOTYPE_MATRIX = np.array([[PROTOTYPES[e].get(u, 0.0) for u in ACTION_UNITS] for e in EXPRESSIONS])
_DISPLACEMENT_MATRIX = np.array([[DISPLACEMENTS[u].get(p, 0.0) for p in PARAMETER_NAMES] for u in ACTION_UNITS])
_SCLERA = np.array([240.0, 238.0, 232.0])
_PUPIL = np.array([20.0, 16.0, 14.0])
_MOUTH = np.array([70.0, 22.0, 28.0])
_TEETH = np.array([236.0, 232.0, 220.0])
_OUTLINE = np.linspace(0, 2 * np.pi, 48, endpoint=False)
_JAW = np.flatnonzero(np.sin(_OUTLINE) > 0.6)
_CROWN = np.linspace(np.pi - 0.15, 2 * np.pi + 0.15, 28)
_BROW_T = np.linspace(0, 1, 9)
_EYE_T = np.linspace(-1, 1, 13)
_MOUTH_T = np.linspace(-1, 1, 17)


def unit_intensities(labels: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    r"""Action-unit intensities of (blended) expressions.

    .. math::
        a_u = \max_e \; y_e \, s_e \, p_{e,u}

    where :math:`p_{e,u}` is unit u's intensity in expression e's EMFACS prototype: a unit
    shared by two present expressions is drawn once, at the stronger intensity.

    Args:
        labels: (N, 6) 0/1 labels in RAF order.
        strengths: (N, 6) intensity of each expression, in (0, 1].

    Returns:
        (N, 13) intensities in the order of :data:`ACTION_UNITS`.
    """
    weighted = (np.asarray(labels, float) * strengths)[:, :, None] * _PROTOTYPE_MATRIX[None]
    return weighted.max(axis=1)


def face_geometry(intensities: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    r"""Face parameters from unit intensities and identity.

    .. math::
        g = \max\big(g_0 + j \odot \delta + \textstyle\sum_u a_u d_u,\; g_{\min}\big)

    with neutral values :math:`g_0`, identity draws :math:`j \in [-1, 1]` scaled by the
    jitter ranges :math:`\delta`, and unit displacements :math:`d_u` summed with their sign.

    Args:
        intensities: (N, 13) unit intensities from :func:`unit_intensities`.
        jitter: (N, P) identity draws in [-1, 1], one per entry of :data:`PARAMETERS`.

    Returns:
        (N, P) parameters in the order of :data:`PARAMETER_NAMES`.
    """
    return np.maximum(_NEUTRAL + jitter * _JITTER + intensities @ _DISPLACEMENT_MATRIX, _LOWER)


@dataclass
class Look:
    """Identities of N faces (expression-free): RGB colours (N, 3) and head shape (N,).

    Args:
        skin, hair, iris, lips, shirt: colours.
        height: half-height of the head over its half-width.
        taper: narrowing of the jaw (0 = plain ellipse).
        hair_style: 0 bald, 1 short, 2 long.
        hairline: |y| of the hairline; volume: hair outline over the head outline.
        brow: brow thickness; gaze: horizontal iris offset in [-1, 1].
    """

    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    shirt: np.ndarray
    height: np.ndarray
    taper: np.ndarray
    hair_style: np.ndarray
    hairline: np.ndarray
    volume: np.ndarray
    brow: np.ndarray
    gaze: np.ndarray


@dataclass
class Shape:
    """A filled polygon (``width`` None) or a polyline, drawn on the faces where ``present``.

    Args:
        points: (N, K, 2) vertices in face units.
        colour: (N, 3) RGB.
        present: (N,) bool.
        width: (N,) line width in face units, or None for a polygon.
    """

    points: np.ndarray
    colour: np.ndarray
    present: np.ndarray
    width: np.ndarray | None = None


class Sketch:
    """The primitives of N faces in drawing order, and the points each action unit drew."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.shapes: list[Shape] = []
        self.marks: dict[str, list[np.ndarray]] = {unit: [] for unit in ACTION_UNITS}

    def _present(self, present: np.ndarray | None) -> np.ndarray:
        return np.ones(self.count, bool) if present is None else np.asarray(present).reshape(-1) > 0

    def polygon(self, points: np.ndarray, colour: np.ndarray, present: np.ndarray | None = None) -> None:
        """Add a filled polygon (N, K, 2)."""
        self.shapes.append(Shape(points, np.broadcast_to(colour, (self.count, 3)), self._present(present)))

    def line(
        self, points: np.ndarray, colour: np.ndarray, width: float | np.ndarray, present: np.ndarray | None = None
    ) -> None:
        """Add a polyline (N, K, 2), ``width`` face units wide."""
        width = np.broadcast_to(np.asarray(width, float).reshape(-1), (self.count,))
        self.shapes.append(Shape(points, np.broadcast_to(colour, (self.count, 3)), self._present(present), width))

    def mark(self, unit: str, *points: np.ndarray) -> None:
        """Record points (N, K, 2) that ``unit`` moved or drew."""
        self.marks[unit].extend(points)

    def unit_boxes(self, intensities: np.ndarray) -> np.ndarray:
        """(N, 13, 2, 4) face-unit boxes x0, y0, x1, y1 of each unit's marks, per face half.

        Points are split at x = 0 (points across the midline clipped to it) and boxed with a
        margin of :data:`MARK_MARGIN`; NaN where the unit is inactive or drew nothing there.
        """
        boxes = np.full((self.count, len(ACTION_UNITS), 2, 4), np.nan)
        for u, unit in enumerate(ACTION_UNITS):
            if not self.marks[unit]:
                continue
            points = np.concatenate(self.marks[unit], axis=1)
            for side, (low, high) in enumerate(((-np.inf, 0.0), (0.0, np.inf))):
                drawn = np.any(points[..., 0] < 0 if side == 0 else points[..., 0] > 0, axis=1)
                half = np.stack([np.clip(points[..., 0], low, high), points[..., 1]], axis=-1)
                box = np.concatenate([half.min(axis=1) - MARK_MARGIN, half.max(axis=1) + MARK_MARGIN], axis=1)
                boxes[:, u, side] = np.where((drawn & (intensities[:, u] > 0))[:, None], box, np.nan)
        return boxes


def _xy(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """Stack broadcast coordinates into points (..., K, 2)."""
    return np.stack(np.broadcast_arrays(x, y), axis=-1)


def _ellipse(cx: np.ndarray | float, cy: np.ndarray | float, rx: float, ry: float, count: int = 24) -> np.ndarray:
    """Polygon (N, count, 2) of ellipses with centres (cx, cy), each (N, 1) or scalar."""
    theta = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return _xy(cx + rx * np.cos(theta), cy + ry * np.sin(theta))


def _bezier(start: np.ndarray, control: np.ndarray, end: np.ndarray, count: int = 9) -> np.ndarray:
    """Quadratic Bezier through points (N, 2) -> (N, count, 2)."""
    t = np.linspace(0, 1, count)[None, :, None]
    return (1 - t) ** 2 * start[:, None] + 2 * t * (1 - t) * control[:, None] + t**2 * end[:, None]


def mix(first: np.ndarray, second: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
    """Linear blend of colours (N, 3); ``weight`` (N, 1) = 1 gives ``second``."""
    return first + (second - first) * weight


def head_outline(look: Look, chin: np.ndarray) -> np.ndarray:
    """(N, 48, 2) egg-shaped head outline: narrower below y = 0, its chin lowered by ``chin``."""
    lower = np.maximum(np.sin(_OUTLINE), 0)
    x = np.cos(_OUTLINE) * (1 - look.taper[:, None] * lower)
    y = np.sin(_OUTLINE) * look.height[:, None] + chin * lower**4
    return _xy(x, y)


def _head(sketch: Sketch, look: Look, g: dict[str, np.ndarray]) -> None:
    h, volume = look.height[:, None], look.volume[:, None]
    outer = _xy(volume * np.cos(_CROWN), volume * h * np.sin(_CROWN))
    hang = _xy(np.array([1.2, -1.2]), h + 0.4)
    sketch.polygon(np.concatenate([outer, hang], axis=1), look.hair, look.hair_style == 2)
    sketch.polygon(_ellipse(0, h + 1.45, 2.0, 0.7), look.shirt)
    neck = _xy(np.array([-0.42, 0.42, 0.5, -0.5]), h * np.array([0.4, 0.4, 1, 1]) + [0, 0, 1.2, 1.2])
    sketch.polygon(neck, look.skin * 0.85)
    for side in (-1, 1):
        sketch.polygon(_ellipse(side * 0.98, g["eye_y"] + 0.1, 0.11, 0.2, 16), look.skin * 0.92)
    sketch.polygon(head_outline(look, g["chin"]), look.skin)
    inner = 0.99 * _xy(np.cos(_CROWN[::-1]), h * np.sin(_CROWN[::-1]))
    inner[..., 1] = np.maximum(inner[..., 1], -look.hairline[:, None])
    sketch.polygon(np.concatenate([outer, inner], axis=1), look.hair, look.hair_style > 0)


def _brows(sketch: Sketch, look: Look, g: dict[str, np.ndarray], a: dict[str, np.ndarray]) -> None:
    crease = look.skin * 0.6
    t = _BROW_T
    base = g["eye_y"] - g["brow_gap"]
    y_in, y_mid, y_out = base + g["brow_inner"], base - 0.05 + g["brow_mid"], base + 0.01 + g["brow_outer"]
    y = y_in * (1 - t) * (1 - 2 * t) + y_mid * 4 * t * (1 - t) + y_out * t * (2 * t - 1)
    half = look.brow[:, None] * (1 - 0.5 * t) / 2
    for side in (-1, 1):
        x = side * (g["brow_inner_x"] + 0.46 * t)
        curve, top, bottom = _xy(x, y), _xy(x, y - half), _xy(x, y + half)
        sketch.polygon(np.concatenate([top, bottom[:, ::-1]], axis=1), look.hair * 0.8)
        sketch.mark("AU1", top[:, t <= 0.6], bottom[:, t <= 0.6])
        sketch.mark("AU2", top[:, t >= 0.4], bottom[:, t >= 0.4])
        for k in (0, 1):
            inner = _xy(side * np.array([0.02, 0.12, 0.22]), curve[:, :1, 1] - 0.1 - 0.06 * k + [-0.01, 0, 0.02])
            sketch.line(inner, mix(look.skin, crease, 0.9 * a["AU1"]), 0.025, a["AU1"])
            outer = curve[:, 4:] - [0, 0.1 + 0.06 * k]
            sketch.line(outer, mix(look.skin, crease, 0.9 * a["AU2"]), 0.025, a["AU2"])
            sketch.mark("AU1", inner)
            sketch.mark("AU2", outer)
        furrow = _xy(side * np.array([0.05, 0.035, 0.045]), curve[:, :1, 1] + [-0.03, 0.05, 0.12])
        sketch.line(furrow, mix(look.skin, crease, a["AU4"]), 0.03, a["AU4"])
        sketch.mark("AU4", top, bottom, furrow)


def _eyes(sketch: Sketch, look: Look, g: dict[str, np.ndarray], a: dict[str, np.ndarray]) -> None:
    crease = look.skin * 0.6
    t = _EYE_T
    bulge = (1 - t**2) ** 0.6
    cy, w, up, down = g["eye_y"], g["eye_w"], g["upper_lid"], g["lower_lid"]
    for side in (-1, 1):
        cx = side * g["eye_x"]
        upper = _xy(cx + t * w, cy - up * bulge)
        lower = _xy(cx + t * w, cy + down * bulge)
        sketch.polygon(np.concatenate([upper, lower[:, ::-1]], axis=1), _SCLERA)
        for radius, colour in ((0.075, look.iris), (0.035, _PUPIL)):
            disc = _ellipse(cx + 0.3 * look.gaze[:, None] * w, cy + 0.01, radius, radius, 20)
            along = np.clip((disc[..., 0] - cx) / w, -1, 1)
            lid = (1 - along**2) ** 0.6
            sketch.polygon(_xy(cx + along * w, np.clip(disc[..., 1], cy - up * lid, cy + down * lid)), colour)
        sketch.line(upper, look.hair * 0.5, 0.03)
        sketch.line(lower, crease, 0.015)
        sketch.mark("AU5", upper)
        tension = lower[:, 2:-2] + [0, 0.035]
        sketch.line(tension, mix(look.skin, crease, a["AU7"]), 0.02, a["AU7"])
        sketch.mark("AU7", upper, lower, tension)
        u = np.linspace(-1, 1, 9)
        cheek = _xy(cx + 1.1 * u * w, cy + down + 0.1 - 0.04 * (1 - u**2))
        sketch.line(cheek, mix(look.skin, crease, a["AU6"]), 0.025, a["AU6"])
        sketch.mark("AU6", upper, lower, cheek)
        for dy in (-0.04, 0.0, 0.04):
            foot = _xy(cx + side * (w + np.array([0.03, 0.12])), cy + dy * np.array([1, 2.2]))
            sketch.line(foot, mix(look.skin, crease, a["AU6"]), 0.02, a["AU6"])
            sketch.mark("AU6", foot)


def _nose(sketch: Sketch, look: Look, g: dict[str, np.ndarray], a: dict[str, np.ndarray]) -> None:
    crease = look.skin * 0.6
    base, flare = g["nose_y"] + g["nostril_y"], g["nostril_w"]
    tip = _xy(np.array([-0.06, 0, 0.06]), base + [0, 0.03, 0])
    sketch.line(tip, crease, 0.02)
    sketch.mark("AU9", tip)
    for side in (-1, 1):
        nostril = _ellipse(side * (0.06 + flare / 2), base + 0.01, 0.028, 0.016, 12)
        sketch.polygon(nostril, look.skin * 0.45)
        sketch.mark("AU9", nostril)
        wing = _bezier(
            _xy(side * 0.06, base - 0.07)[:, 0],
            _xy(side * (0.15 + flare), base - 0.02)[:, 0],
            _xy(side * 0.07, base + 0.03)[:, 0],
        )
        sketch.line(wing, crease, 0.02)
        sketch.mark("AU9", wing)
    for k in range(3):
        wrinkle = _xy(np.array([-0.1, 0.0, 0.1]), g["eye_y"] + 0.05 + 0.045 * k + [0.02, 0, 0.02])
        sketch.line(wrinkle, mix(look.skin, crease, a["AU9"]), 0.022, a["AU9"])
        sketch.mark("AU9", wrinkle)


def _mouth(sketch: Sketch, look: Look, g: dict[str, np.ndarray], a: dict[str, np.ndarray]) -> None:
    crease = look.skin * 0.6
    t = _MOUTH_T
    closed = 1 - t**2
    x = t * g["mouth_w"]
    middle = g["mouth_y"] + g["corner_y"] * t**2
    gap = g["mouth_open"] * closed**0.8
    inner_top = middle - 0.3 * gap
    inner_bottom = middle + 0.7 * gap + g["lip_depress"] * closed
    outer_top = inner_top - g["upper_lip"] * np.sqrt(closed) * (1 - 0.3 * np.exp(-((t / 0.15) ** 2)))
    outer_bottom = inner_bottom + g["lower_lip"] * np.sqrt(closed)
    lips = np.concatenate([_xy(x, outer_top), _xy(x, outer_bottom)[:, ::-1]], axis=1)
    sketch.polygon(lips, look.lips)
    opened = g["mouth_open"] + g["lip_depress"] > 0.01
    mouth = np.concatenate([_xy(x, inner_top), _xy(x, inner_bottom)[:, ::-1]], axis=1)
    sketch.polygon(mouth, _MOUTH, opened)
    upper_teeth = np.minimum(inner_top + 0.05 * np.sqrt(closed), inner_bottom)
    sketch.polygon(np.concatenate([_xy(x, inner_top), _xy(x, upper_teeth)[:, ::-1]], axis=1), _TEETH, opened)
    lower_teeth = np.maximum(inner_bottom - 0.035 * np.sqrt(closed), inner_top)
    sketch.polygon(
        np.concatenate([_xy(x, lower_teeth), _xy(x, inner_bottom)[:, ::-1]], axis=1),
        _TEETH * 0.96,
        opened & (a["AU16"] > 0),
    )
    sketch.line(_xy(x, inner_top), look.lips * 0.55, 0.018 + 0.02 * a["AU23"])
    for side in (-1, 1):
        cx, cy = side * g["mouth_w"], g["mouth_y"] + g["corner_y"]
        wing = _xy(side * (0.15 + g["nostril_w"]), g["nose_y"] + g["nostril_y"] + 0.01)[:, 0]
        end = _xy(cx + side * 0.05, cy + 0.06)[:, 0]
        bend = _xy(side * (g["mouth_w"] + 0.1), (wing[:, 1:] + end[:, 1:]) / 2 - 0.02)[:, 0]
        fold = _bezier(wing, bend, end)
        sketch.line(fold, mix(look.skin, crease, a["AU12"]), 0.025, a["AU12"])
        depressor = _xy(cx + side * np.array([0.02, 0.04]), cy + [0.02, 0.1])
        sketch.line(depressor, mix(look.skin, crease, a["AU15"]), 0.02, a["AU15"])
        stretch = _xy(cx + side * np.array([0.04, 0.1]), cy + [0, 0.01])
        sketch.line(stretch, mix(look.skin, crease, a["AU20"]), 0.02, a["AU20"])
        sketch.mark("AU12", fold)
        sketch.mark("AU15", depressor)
        sketch.mark("AU20", stretch)
    for unit in ("AU12", "AU15", "AU20", "AU23"):
        sketch.mark(unit, lips)
    sketch.mark("AU16", _xy(x, outer_bottom)[:, np.abs(t) < 0.8])
    sketch.mark("AU26", lips, mouth, head_outline(look, g["chin"])[:, _JAW])


def sketch_faces(look: Look, geometry: np.ndarray, intensities: np.ndarray) -> Sketch:
    """Primitives of N faces with identities ``look``, shapes ``geometry`` (N, P) and unit
    ``intensities`` (N, 13): hair, neck, ears, head, brows, eyes, nose, mouth."""
    g = {name: geometry[:, [p]] for p, name in enumerate(PARAMETER_NAMES)}
    a = {unit: intensities[:, [u]] for u, unit in enumerate(ACTION_UNITS)}
    sketch = Sketch(len(geometry))
    _head(sketch, look, g)
    _brows(sketch, look, g, a)
    _eyes(sketch, look, g, a)
    _nose(sketch, look, g, a)
    _mouth(sketch, look, g, a)
    return sketch
