"""The six basic expressions in RAF order, RAF-DB's compound classes, and name lookups.

Every label vector, column and table in mlfer uses the order of :data:`EXPRESSIONS`
(RAF-DB's order: surprise, fear, disgust, happiness, sadness, anger).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mlfer.core.errors import MlferError

EXPRESSIONS: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger")
NUM_EXPRESSIONS = len(EXPRESSIONS)

#: RAF-DB basic numbering (1-6 in RAF order); 7 is neutral, which has no basic label.
RAF_BASIC_NEUTRAL = 7

#: RAF-DB compound classes 1-11 and their two basic components.
COMPOUND_CLASSES: dict[int, tuple[str, str, str]] = {
    1: ("happily surprised", "happiness", "surprise"),
    2: ("happily disgusted", "happiness", "disgust"),
    3: ("sadly fearful", "sadness", "fear"),
    4: ("sadly angry", "sadness", "anger"),
    5: ("sadly surprised", "sadness", "surprise"),
    6: ("sadly disgusted", "sadness", "disgust"),
    7: ("fearfully angry", "fear", "anger"),
    8: ("fearfully surprised", "fear", "surprise"),
    9: ("angrily surprised", "anger", "surprise"),
    10: ("angrily disgusted", "anger", "disgust"),
    11: ("disgustedly surprised", "disgust", "surprise"),
}

_COMPOUND_NAMES: dict[frozenset[str], str] = {
    frozenset((first, second)): name for name, first, second in COMPOUND_CLASSES.values()
}

#: JAFFE's rating columns and other names people use for the six expressions.
_SYNONYMS: dict[str, str] = {
    "sur": "surprise",
    "surprised": "surprise",
    "surprise": "surprise",
    "fea": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fear": "fear",
    "dis": "disgust",
    "disgusted": "disgust",
    "disgust": "disgust",
    "hap": "happiness",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "ang": "anger",
    "angry": "anger",
    "anger": "anger",
}


def canonical_name(name: str) -> str:
    """Map a name (``"HAP"``, ``"happy"``, ``"Happiness"``) to its expression in :data:`EXPRESSIONS`."""
    key = name.strip().lower()
    if key not in _SYNONYMS:
        raise MlferError(f"unknown expression {name!r}; expected one of {', '.join(EXPRESSIONS)}")
    return _SYNONYMS[key]


def expression_index(name: str) -> int:
    """Position of an expression (any accepted name) in RAF order."""
    return EXPRESSIONS.index(canonical_name(name))


def raf_basic_label(number: int) -> np.ndarray:
    """0/1 vector for a RAF-DB basic label 1-6 (7 = neutral has none and is rejected)."""
    if not 1 <= number <= NUM_EXPRESSIONS:
        raise MlferError(f"RAF-DB basic label {number} is not one of the six expressions (1-6)")
    vector = np.zeros(NUM_EXPRESSIONS, dtype=np.uint8)
    vector[number - 1] = 1
    return vector


def compound_label(number: int) -> np.ndarray:
    """0/1 vector with the two basic components of RAF-DB compound class 1-11."""
    if number not in COMPOUND_CLASSES:
        raise MlferError(f"RAF-DB compound label {number} is not one of the classes 1-11")
    _, first, second = COMPOUND_CLASSES[number]
    vector = np.zeros(NUM_EXPRESSIONS, dtype=np.uint8)
    vector[[expression_index(first), expression_index(second)]] = 1
    return vector


def compound_name(names: Iterable[str]) -> str:
    """The RAF-DB compound name of a set of expressions (``{"happiness", "surprise"}`` ->
    ``"happily surprised"``); empty unless the set is exactly the two components of one of the
    eleven :data:`COMPOUND_CLASSES`."""
    return _COMPOUND_NAMES.get(frozenset(canonical_name(name) for name in names), "")


def label_names(vector: np.ndarray) -> list[str]:
    """Names of the expressions set in a 0/1 vector, in RAF order."""
    return [name for name, on in zip(EXPRESSIONS, np.asarray(vector).astype(bool)) if on]


def first_non_binary(values: np.ndarray) -> tuple[int, int] | None:
    """Row and column of the first entry of a 2-D array that is neither 0 nor 1 (None if all are)."""
    bad = np.argwhere(~np.isin(values, (0, 1)))
    return None if len(bad) == 0 else (int(bad[0][0]), int(bad[0][1]))
