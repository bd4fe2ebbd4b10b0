"""Layer mappings g(m) from student layers to teacher layers."""

import pytest

from tf_tinybert.layer_map import resolve_layer_map


@pytest.mark.parametrize(
    "strategy, student, teacher, expected",
    [
        ("uniform", 4, 12, [3, 6, 9, 12]),
        ("uniform", 6, 12, [2, 4, 6, 8, 10, 12]),
        ("uniform", 4, 6, [1, 3, 4, 6]),
        ("uniform", 3, 3, [1, 2, 3]),
        ("last", 4, 12, [9, 10, 11, 12]),
    ],
)
def test_named_strategies(strategy, student, teacher, expected):
    assert resolve_layer_map(strategy, student, teacher) == expected


def test_explicit_map_is_returned():
    assert resolve_layer_map([2, 5, 6], 3, 6) == [2, 5, 6]


@pytest.mark.parametrize(
    "layer_map, message",
    [
        ([1, 2, 7], "teacher has layers 1..6"),
        ([0, 2, 3], "teacher has layers 1..6"),
        ([3, 2, 4], "strictly increasing"),
        ([1, 2], "one teacher layer per student layer"),
        ([1, 2, 3, 4], "one teacher layer per student layer"),
        ("every_other", "Expected `layer_map` to be one of"),
    ],
)
def test_bad_maps_name_the_problem(layer_map, message):
    with pytest.raises(ValueError, match=message):
        resolve_layer_map(layer_map, 3, 6)


def test_student_deeper_than_teacher_is_refused():
    with pytest.raises(ValueError, match="more transformer layers"):
        resolve_layer_map("uniform", 8, 6)
