"""Student builders and the intermediates read out of keras-hub BERT models."""

import keras
import numpy as np
import pytest
from tiny_models import random_features, tiny_classifier

from tf_tinybert.config import load_student, shipped_names
from tf_tinybert.models import (
    bert_backbone,
    build_student,
    forward_with_intermediates,
    student_from_teacher,
)


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


def test_intermediates_reproduce_the_models_own_outputs():
    model = tiny_classifier(num_layers=3, hidden_dim=16, num_heads=4, seed=3)
    features = random_features(batch_size=4, sequence_length=10, seed=3)
    out = forward_with_intermediates(model, features)
    backbone = model.backbone
    assert len(out["hidden_states"]) == 4 and len(out["attention_scores"]) == 3
    np.testing.assert_allclose(out["hidden_states"][-1],
                               backbone(features)["sequence_output"], atol=1e-6)
    np.testing.assert_allclose(out["logits"], model(features), atol=1e-6)
    for index, layer in enumerate(backbone.transformer_layers):
        expected = layer(out["hidden_states"][index], padding_mask=features["padding_mask"])
        np.testing.assert_allclose(out["hidden_states"][index + 1], expected, atol=1e-5)


def test_attention_scores_are_pre_softmax_dot_products():
    model = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=4, seed=4)
    # Larger query/key weights make the scores far from uniform.
    for layer in model.backbone.transformer_layers:
        attention = layer._self_attention_layer
        for dense in (attention.query_dense, attention.key_dense):
            dense.kernel.assign(dense.kernel * 50.0)
    features = random_features(batch_size=3, sequence_length=9, seed=4)
    mask = features["padding_mask"].astype(bool)
    out = forward_with_intermediates(model, features)
    for index, layer in enumerate(model.backbone.transformer_layers):
        x = np.asarray(out["hidden_states"][index])
        attention = layer._self_attention_layer
        q = np.einsum("bth,hnd->btnd", x, attention.query_dense.kernel.numpy())
        q += attention.query_dense.bias.numpy()
        k = np.einsum("bth,hnd->btnd", x, attention.key_dense.kernel.numpy())
        k += attention.key_dense.bias.numpy()
        expected = np.einsum("bqnd,bknd->bnqk", q, k) / np.sqrt(q.shape[-1])
        scores = np.asarray(out["attention_scores"][index])
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
        # Softmax over real keys gives the probabilities Keras' layer itself returns.
        masked = np.where(mask[:, None, None, :], scores, -np.inf)
        probabilities = np.exp(masked - masked.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        _, keras_probabilities = layer(x, padding_mask=features["padding_mask"],
                                       return_attention_scores=True)
        np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)
        assert np.abs(scores).max() > 1.0  # not trivially tiny


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


def test_non_bert_models_are_refused_by_name():
    inputs = keras.Input((4,))
    other = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="teacher must be a BERT-family keras-hub"):
        bert_backbone(other, "teacher")
