"""MiniLM-v2's self-attention relation loss: the maths against numpy, and in the Distiller
with a 4-head student of a 12-head teacher."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

import tf_tinybert as tt
from tf_tinybert import losses
from tf_tinybert.keras_hub_bert import forward_with_intermediates


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _np_relation_kl(student, teacher, mask, heads):
    """Loop-based MiniLM-v2 relation KL, averaged over (relation head, real query) rows."""
    total, rows = 0.0, 0
    for b in range(mask.shape[0]):
        length = int(mask[b].sum())
        for r in range(heads):
            relations = []
            for x in (teacher, student):
                size = x.shape[-1] // heads
                part = x[b, :length, r * size:(r + 1) * size].astype("float64")
                relations.append(_np_log_softmax(part @ part.T / np.sqrt(size)))
            log_t, log_s = relations
            total += (np.exp(log_t) * (log_t - log_s)).sum()
            rows += length
    return total / rows


def _mask(lengths, width):
    return (np.arange(width)[None, :] < np.asarray(lengths)[:, None]).astype("int32")


def test_relation_kl_matches_numpy_for_different_widths_and_ignores_padding():
    rng = np.random.default_rng(0)
    student = rng.normal(size=(3, 7, 8)).astype("float32")
    teacher = rng.normal(size=(3, 7, 24)).astype("float32")
    mask = _mask([7, 4, 1], 7)
    # Whatever sits at padded positions must not matter.
    student[1, 4:] = 1e4
    teacher[2, 1:] = -1e4
    for heads in (1, 2, 4, 8):
        expected = _np_relation_kl(student, teacher, mask, heads)
        got = float(losses.relation_kl(student, teacher, mask, heads))
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert float(losses.relation_kl(teacher, teacher, mask, 4)) == pytest.approx(0.0, abs=1e-6)


def test_relation_kl_is_the_same_for_any_padding_length_and_uses_the_normalizer():
    rng = np.random.default_rng(1)
    student = rng.normal(size=(2, 5, 6)).astype("float32")
    teacher = rng.normal(size=(2, 5, 12)).astype("float32")
    mask = _mask([5, 3], 5)
    short = float(losses.relation_kl(student, teacher, mask, 3))
    pad = [(0, 0), (0, 9), (0, 0)]
    long = float(losses.relation_kl(np.pad(student, pad), np.pad(teacher, pad),
                                    np.pad(mask, [(0, 0), (0, 9)]), 3))
    assert short == pytest.approx(long, rel=1e-6)
    rows = float(losses.relation_entry_count(mask, 3))
    assert rows == 3 * 8
    halved = float(losses.relation_kl(student, teacher, mask, 3, normalizer=2 * rows))
    assert halved == pytest.approx(short / 2, rel=1e-6)


def test_relation_heads_that_divide_no_width_is_a_named_error():
    x = np.zeros((1, 3, 8), "float32")
    y = np.zeros((1, 3, 24), "float32")
    with pytest.raises(losses.RelationHeadsError, match="does not divide the student's 8"):
        losses.relation_kl(x, y, np.ones((1, 3)), 3)
    with pytest.raises(losses.RelationHeadsError, match="common divisors: \\[1, 2, 4, 8\\]"):
        losses.check_relation_heads(5, {"student": 8, "teacher": 24})
    with pytest.raises(losses.RelationHeadsError, match="positive integer"):
        losses.check_relation_heads(0, {"student": 8, "teacher": 24})


def _models():
    # A 12-head teacher (hidden 24) and a 4-head student (hidden 8): TinyBERT's attention
    # loss cannot compare them, the relation loss can.
    teacher = tiny_classifier(num_layers=3, hidden_dim=24, num_heads=12, intermediate_dim=32,
                              seed=1, dropout=0.0)
    student = tiny_classifier(num_layers=2, hidden_dim=8, num_heads=4, intermediate_dim=16,
                              seed=2, dropout=0.0)
    return teacher, student


def test_projections_are_the_query_key_value_denses_of_one_forward_pass():
    teacher, _ = _models()
    features = random_features(2, 6, seed=3)
    out = forward_with_intermediates(teacher, features, return_projections=True)
    layer = teacher.backbone.transformer_layers[1]._self_attention_layer
    x = np.asarray(out["hidden_states"][1])  # post-LN: the layer's input
    for index, dense in enumerate((layer.query_dense, layer.key_dense, layer.value_dense)):
        kernel, bias = dense.get_weights()
        expected = np.einsum("bld,dhk->blhk", x, kernel) + bias
        np.testing.assert_allclose(np.asarray(out["projections"][1][index]),
                                   expected.reshape(2, 6, 24), rtol=1e-5, atol=1e-5)
    assert "projections" not in forward_with_intermediates(teacher, features)


@pytest.mark.parametrize("relation_layers, pairs", [("last", [(2, 3)]), (2, [(2, 2)]),
                                                    ("layer_map", [(1, 1), (2, 3)])])
def test_distiller_reports_the_relation_loss_of_a_4_head_student_of_a_12_head_teacher(
        relation_layers, pairs):
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    distiller.compile(optimizer="adamw", stage="general",
                      loss_weights={"attention": 0, "relation": 2.0},
                      relation_layers=relation_layers)
    assert distiller.relation_heads == 4  # gcd(4, 12)
    assert distiller.relation_pairs == pairs
    features = random_features(4, 9, seed=5)
    result = distiller.evaluate(tf.data.Dataset.from_tensor_slices(features).batch(4),
                                return_dict=True, verbose=0)
    s = forward_with_intermediates(student, features, return_projections=True)
    t = forward_with_intermediates(teacher, features, return_projections=True)
    mask = features["padding_mask"]
    expected = sum(_np_relation_kl(np.asarray(s["projections"][m - 1][i]),
                                   np.asarray(t["projections"][g - 1][i]), mask, 4)
                   for m, g in pairs for i in range(3))
    # Random tiny models have near-uniform relations: a KL of about 1e-4, computed in float32.
    assert result["relation_loss"] == pytest.approx(expected, rel=1e-3, abs=1e-9)
    assert set(result) == {"embedding_loss", "hidden_loss", "relation_loss", "loss"}
    assert result["loss"] == pytest.approx(result["embedding_loss"] + result["hidden_loss"]
                                           + 2.0 * result["relation_loss"], rel=1e-5)


def test_relation_loss_alone_trains_the_student_and_goes_down():
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), stage="general",
                      loss_weights={"embedding": 0, "hidden": 0, "attention": 0, "relation": 1},
                      relation_heads=2)
    features = random_features(8, 9, seed=6)
    data = tf.data.Dataset.from_tensor_slices(features).batch(8)
    student_before = [w.copy() for w in student.get_weights()]
    first = distiller.evaluate(data, return_dict=True, verbose=0)["relation_loss"]
    distiller.fit(data.repeat(30), verbose=0)
    assert distiller.evaluate(data, return_dict=True, verbose=0)["relation_loss"] < first / 2
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights())]
    assert sum(changed) > len(changed) // 2


def test_distiller_refuses_relation_heads_that_divide_neither_width_and_bad_layers():
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    with pytest.raises(losses.RelationHeadsError, match="relation_heads=3"):
        distiller.compile(stage="general", loss_weights={"attention": 0, "relation": 1},
                          relation_heads=3)
    with pytest.raises(ValueError, match="relation_layers=4"):
        distiller.compile(stage="general", loss_weights={"attention": 0, "relation": 1},
                          relation_layers=4)
    # TinyBERT's attention loss still names the head mismatch.
    with pytest.raises(ValueError, match="num_heads"):
        distiller.compile(stage="general", loss_weights={"relation": 1})


def test_recipe_config_takes_relation_weight_heads_and_layers():
    from tf_tinybert.config import ConfigError, load_recipe

    config = load_recipe("configs/recipes/quickstart.yaml", [
        "distill.intermediate.loss_weights.relation=1", "distill.intermediate.relation_layers=3",
        "distill.general.relation_heads=4"])
    assert config.distill.intermediate.loss_weights.relation == 1.0
    assert config.distill.intermediate.relation_layers == 3
    assert config.distill.general.relation_heads == 4
    assert config.distill.general.loss_weights.relation == 0.0
    with pytest.raises(ConfigError, match="relation_layers"):
        load_recipe("configs/recipes/quickstart.yaml", ["distill.general.relation_layers=first"])
