"""Student presets and builders."""

import numpy as np
import pytest
from tiny_models import random_features, tiny_classifier

from tf_tinybert.config import load_student, shipped_names
from tf_tinybert.keras_hub_bert import forward_with_intermediates
from tf_tinybert.models import build_student, student_from_teacher


def _bert_param_count(vocab, hidden, layers, intermediate, max_len, classes, segments=2):
    embeddings = (vocab + max_len + segments) * hidden + 2 * hidden
    attention = 4 * (hidden * hidden + hidden)
    feedforward = hidden * intermediate + intermediate + intermediate * hidden + hidden
    layer = attention + feedforward + 2 * 2 * hidden
    pooler = hidden * hidden + hidden
    return embeddings + layers * layer + pooler + hidden * classes + classes


@pytest.mark.parametrize("name", shipped_names("students"))
def test_presets_have_the_documented_shapes(name):
    preset = load_student(name).backbone_config()
    student = build_student(name, num_classes=2, vocabulary_size=1000, max_sequence_length=64)
    backbone = student.backbone
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads,
            backbone.intermediate_dim) == (preset["num_layers"], preset["hidden_dim"],
                                           preset["num_heads"], preset["intermediate_dim"])
    expected = _bert_param_count(1000, preset["hidden_dim"], preset["num_layers"],
                                 preset["intermediate_dim"], 64, 2)
    assert student.count_params() == expected


def test_tinybert4_matches_the_papers_size():
    # The paper reports 14.5M parameters for TinyBERT-4 with BERT's 30,522-token vocabulary.
    student = build_student("tinybert_4l_312h", num_classes=2)
    assert 14.0e6 < student.count_params() < 14.9e6


def test_build_student_from_a_dict_and_bad_names():
    student = build_student({"num_layers": 1, "hidden_dim": 8, "num_heads": 2,
                             "intermediate_dim": 16}, num_classes=3, vocabulary_size=50,
                            max_sequence_length=16)
    assert student.num_classes == 3 and student.backbone.vocabulary_size == 50
    with pytest.raises(ValueError, match="Unknown student preset 'tinybert_5l'"):
        build_student("tinybert_5l", num_classes=2)


def test_build_student_takes_the_presets_dropout_unless_given(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text("name: wide\nnum_layers: 1\nhidden_dim: 8\nnum_heads: 2\n"
                    "intermediate_dim: 16\ndropout: 0.25\n", encoding="utf-8")
    kwargs = dict(num_classes=2, vocabulary_size=50, max_sequence_length=16)
    assert build_student(str(path), **kwargs).backbone.dropout == 0.25
    assert build_student(str(path), dropout=0.0, **kwargs).backbone.dropout == 0.0
    assert build_student({"num_layers": 1, "hidden_dim": 8, "num_heads": 2,
                          "intermediate_dim": 16}, **kwargs).backbone.dropout == 0.1
    with pytest.raises(ValueError, match="Unknown student config keys \\['hidden'\\]"):
        build_student({"hidden": 8}, num_classes=2)


def test_student_from_teacher_copies_the_chosen_layers():
    teacher = tiny_classifier(num_layers=4, hidden_dim=8, seed=5, dropout=0.0)
    student = student_from_teacher(teacher, layers=[2, 4])
    assert student.backbone.num_layers == 2
    features = random_features(seed=5)
    t_out = forward_with_intermediates(teacher, features)
    s_out = forward_with_intermediates(student, features)
    np.testing.assert_allclose(s_out["hidden_states"][0], t_out["hidden_states"][0], atol=1e-6)
    # Student layer 1 is teacher layer 2: the same function of its input.
    layer = student.backbone.transformer_layers[0]
    np.testing.assert_allclose(
        layer(t_out["hidden_states"][1], padding_mask=features["padding_mask"]),
        t_out["hidden_states"][2], atol=1e-5)
    np.testing.assert_array_equal(student.output_dense.kernel.numpy(),
                                  teacher.output_dense.kernel.numpy())
    with pytest.raises(ValueError, match="1..4"):
        student_from_teacher(teacher, layers=[0, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        student_from_teacher(teacher, layers=[3, 2])

