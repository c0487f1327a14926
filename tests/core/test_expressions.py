import numpy as np
import pytest

from mlfer.core.errors import MlferError
from mlfer.core.expressions import (
    COMPOUND_CLASSES,
    EXPRESSIONS,
    canonical_name,
    compound_label,
    compound_name,
    expression_index,
    label_names,
    raf_basic_label,
)


def test_raf_order():
    assert EXPRESSIONS == ("surprise", "fear", "disgust", "happiness", "sadness", "anger")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("HAP", "happiness"),
        ("SAD", "sadness"),
        ("SUR", "surprise"),
        ("ANG", "anger"),
        ("DIS", "disgust"),
        ("FEA", "fear"),
        ("happy", "happiness"),
        ("Angry", "anger"),
    ],
)
def test_names(name, expected):
    assert canonical_name(name) == expected


def test_unknown_name_is_named():
    with pytest.raises(MlferError, match="'neutral'"):
        canonical_name("neutral")


def test_compound_classes_have_two_labels():
    assert len(COMPOUND_CLASSES) == 11
    for number in COMPOUND_CLASSES:
        assert compound_label(number).sum() == 2
    assert label_names(compound_label(1)) == ["surprise", "happiness"]
    assert label_names(compound_label(10)) == ["disgust", "anger"]


def test_compound_name_of_exactly_two_components():
    assert compound_name(["happiness", "surprise"]) == "happily surprised"
    assert compound_name(["ANG", "disgusted"]) == "angrily disgusted"
    for names in ([], ["happiness"], ["happiness", "sadness"], ["happiness", "surprise", "fear"]):
        assert compound_name(names) == "", names
    assert all(compound_name(label_names(compound_label(n))) == COMPOUND_CLASSES[n][0] for n in COMPOUND_CLASSES)


def test_basic_labels():
    assert label_names(raf_basic_label(4)) == ["happiness"]
    assert expression_index("angry") == 5
    with pytest.raises(MlferError):
        raf_basic_label(7)
    np.testing.assert_array_equal(raf_basic_label(1), [1, 0, 0, 0, 0, 0])
