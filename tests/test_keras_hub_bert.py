"""The keras-hub adapter: parity with keras-hub's own graph, so an upgrade shows up here first."""

import keras
import keras_hub
import numpy as np
import pytest
from tiny_models import make_pre_layer_norm, random_features, tiny_classifier

from tf_tinybert.keras_hub_bert import (
    bert_backbone,
    bert_parts,
    forward_with_intermediates,
    normalize_first,
)

LAYOUTS = ["post_ln", "pre_ln"]


def _classifier(layout, seed=0, **kwargs):
    """A tiny classifier with stddev-0.5 kernels, so that every block moves the stream."""
    model = tiny_classifier(seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if len(weight.shape) >= 2:
            weight.assign(rng.normal(0.0, 0.5, size=weight.shape).astype("float32"))
    return make_pre_layer_norm(model) if layout == "pre_ln" else model


def _functional_intermediates(backbone, features):
    """keras-hub's own graph, cut at the embedding LayerNorm and at every transformer layer."""
    names = ["embeddings_layer_norm"] + [f"transformer_layer_{i}"
                                         for i in range(backbone.num_layers)]
    cut = keras.Model(backbone.input, [backbone.get_layer(name).output for name in names])
    return [np.asarray(x) for x in cut(features, training=False)]


def _softmax(x, axis=-1):
    x = x - x.max(axis, keepdims=True)
    return np.exp(x) / np.exp(x).sum(axis, keepdims=True)


def _layer_norm(x, layer):
    gamma, beta = (w.numpy() for w in layer.weights)
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hidden_states_and_logits_equal_keras_hubs_own_graph(layout):
    model = _classifier(layout, num_layers=3, hidden_dim=16, num_heads=4, seed=3)
    features = random_features(batch_size=4, sequence_length=10, seed=3)
    out = forward_with_intermediates(model, features)
    expected = _functional_intermediates(model.backbone, features)
    assert len(out["hidden_states"]) == 4 and len(out["attention_scores"]) == 3
    for received, wanted in zip(out["hidden_states"], expected):
        np.testing.assert_allclose(received, wanted, atol=1e-5)
    np.testing.assert_allclose(out["logits"], model(features, training=False), atol=1e-5)


def test_pre_layer_norm_is_a_different_function_of_the_same_weights():
    # Guards the parity test above: the pre-LN model really is pre-LN.
    features = random_features(batch_size=4, sequence_length=10, seed=3)
    post = forward_with_intermediates(_classifier("post_ln", seed=3), features)
    pre = forward_with_intermediates(_classifier("pre_ln", seed=3), features)
    np.testing.assert_allclose(pre["hidden_states"][0], post["hidden_states"][0], atol=1e-6)
    for index in (1, 2):
        difference = np.asarray(pre["hidden_states"][index] - post["hidden_states"][index])
        assert np.abs(difference).max() > 0.5


@pytest.mark.parametrize("layout", LAYOUTS)
def test_attention_scores_are_pre_softmax_dot_products(layout):
    model = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=4, seed=4)
    if layout == "pre_ln":
        make_pre_layer_norm(model)
    # Larger query/key weights make BERT-initialised scores far from uniform. The attention layer is
    # reached through keras-hub's private attribute on purpose: this test checks the
    # adapter against keras-hub's objects, not against the adapter's own description.
    for layer in model.backbone.transformer_layers:
        attention = layer._self_attention_layer
        for dense in (attention.query_dense, attention.key_dense):
            dense.kernel.assign(dense.kernel * 50.0)
    features = random_features(batch_size=3, sequence_length=9, seed=4)
    mask = features["padding_mask"].astype(bool)
    out = forward_with_intermediates(model, features)
    for index, layer in enumerate(model.backbone.transformer_layers):
        x = np.asarray(out["hidden_states"][index])
        if layout == "pre_ln":
            x_in = _layer_norm(x, layer._self_attention_layer_norm)
        else:
            x_in = x
        attention = layer._self_attention_layer
        q = np.einsum("bth,hnd->btnd", x_in, attention.query_dense.kernel.numpy())
        q += attention.query_dense.bias.numpy()
        k = np.einsum("bth,hnd->btnd", x_in, attention.key_dense.kernel.numpy())
        k += attention.key_dense.bias.numpy()
        expected = np.einsum("bqnd,bknd->bnqk", q, k) / np.sqrt(q.shape[-1])
        scores = np.asarray(out["attention_scores"][index])
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
        assert np.abs(scores).max() > 1.0  # not trivially tiny
        # Softmax over real keys gives the probabilities Keras' layer itself returns.
        probabilities = _softmax(np.where(mask[:, None, None, :], scores, -np.inf))
        _, keras_probabilities = layer(x, padding_mask=features["padding_mask"],
                                       return_attention_scores=True)
        np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)


def test_a_clipped_mask_value_keeps_the_logits():
    model = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=4, seed=6)
    features = random_features(batch_size=4, sequence_length=10, seed=6)
    clipped = forward_with_intermediates(model, features, attention_mask_value=-30.0)
    np.testing.assert_allclose(clipped["logits"], model(features, training=False), atol=1e-5)


def test_parts_name_keras_hubs_sub_layers():
    model = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=4, intermediate_dim=32,
                            seed=7)
    parts = bert_parts(model)
    assert parts.backbone is model.backbone and parts.head is model.output_dense
    assert parts.pooler is model.backbone.get_layer("pooled_dense")
    assert parts.embeddings.layer_norm is model.backbone.get_layer("embeddings_layer_norm")
    assert parts.embeddings.token_table.shape == (model.backbone.vocabulary_size, 16)
    assert parts.embeddings.position_table.shape == (32, 16)
    assert not parts.normalize_first and len(parts.layers) == 2
    for index, layer_parts in enumerate(parts.layers):
        layer = model.backbone.get_layer(f"transformer_layer_{index}")
        attention = layer._self_attention_layer
        assert layer_parts.layer is layer
        assert layer_parts.query is attention.query_dense
        assert layer_parts.key is attention.key_dense
        assert layer_parts.value is attention.value_dense
        assert layer_parts.output is attention.output_dense
        assert layer_parts.attention_layer_norm is layer._self_attention_layer_norm
        assert layer_parts.feedforward_layer_norm is layer._feedforward_layer_norm
        assert layer_parts.feedforward_intermediate.units == 32
        assert layer_parts.feedforward_output.units == 16
        assert layer_parts.head_scale == pytest.approx(1 / np.sqrt(16 / 4))
    assert bert_parts(make_pre_layer_norm(model)).layers[1].normalize_first


def test_mixed_layer_norm_positions_are_refused_by_layer():
    model = tiny_classifier(num_layers=2, seed=8)
    model.backbone.transformer_layers[1].normalize_first = True
    with pytest.raises(ValueError, match="transformer_layer_1': True"):
        normalize_first(model.backbone)
    with pytest.raises(ValueError, match="the same way"):
        forward_with_intermediates(model, random_features(seed=8))


def test_non_bert_models_are_refused_by_name():
    inputs = keras.Input((4,))
    other = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="teacher must be a BERT-family keras-hub"):
        bert_backbone(other, "teacher")


def test_probability_heads_are_refused():
    backbone = tiny_classifier(seed=9).backbone
    model = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2,
                                                preprocessor=None, activation="softmax")
    with pytest.raises(ValueError, match="student must output logits.*'softmax'"):
        bert_backbone(model, "student")


def test_leading_shape_is_constant_with_at_most_one_unknown_dimension():
    import tensorflow as tf

    from tf_tinybert.keras_hub_bert import leading_shape

    assert leading_shape(np.zeros((2, 5, 12, 4)), [48]) == [2, 5, 48]
    seen = {}

    @tf.function(input_signature=[tf.TensorSpec([1, None, 3, 4])])
    def one_unknown(x):
        seen["one"] = leading_shape(x, [12])
        return tf.reshape(x, seen["one"])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3, 4])])
    def two_unknown(x):
        seen["two"] = leading_shape(x, [12])
        return tf.reshape(x, seen["two"])

    x = np.arange(2 * 7 * 12, dtype="float32").reshape(2, 7, 3, 4)
    assert one_unknown(x[:1]).shape == (1, 7, 12)
    assert seen["one"] == [1, -1, 12]  # a constant: TFLite's RESHAPE needs no SHAPE op
    np.testing.assert_array_equal(two_unknown(x), x.reshape(2, 7, 12))
    assert not all(isinstance(size, int) for size in seen["two"])  # read at run time
