"""to_tflite: signature, parity per quantisation mode, the int8 mask fix, the op check."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from export_helpers import decisive_classifier, keras_reference, named_tensor_types, tensor_types
from tiny_models import random_features

from tf_tinybert.export import UnsupportedOpsError, check_builtin_ops, operator_names, to_tflite
from tf_tinybert.export.outliers import MASK_SCOPE, STATISTICS_SCOPE
from tf_tinybert.export.serving import classifier_probabilities
from tf_tinybert.export.verify import check_signature, tflite_probabilities

L = 16


@pytest.fixture(scope="module")
def model():
    return decisive_classifier()


@pytest.fixture(scope="module")
def features():
    return random_features(batch_size=24, sequence_length=L, seed=7)


@pytest.fixture(scope="module")
def calibration():
    return [random_features(batch_size=16, sequence_length=L + 4, seed=11)]


@pytest.fixture(scope="module")
def fp32_model(model):
    return to_tflite(model, "fp32", sequence_length=L)


def test_fp32_matches_keras_in_litert(model, features, fp32_model):
    expected = keras_reference(model, features)
    received = tflite_probabilities(fp32_model, features)
    assert received.dtype == np.float32
    np.testing.assert_allclose(received, expected, atol=1e-5)
    assert len(set(expected.argmax(-1))) == 2  # both classes occur: the check can fail


def test_signature_has_mediapipe_tensor_names(fp32_model):
    interpreter_inputs = check_signature(fp32_model, sequence_length=L, num_classes=2)
    tensors = {entry["name"]: entry["tensor"] for entry in interpreter_inputs["inputs"]}
    assert tensors == {
        "input_word_ids": "serving_default_input_word_ids:0",
        "input_mask": "serving_default_input_mask:0",
        "input_type_ids": "serving_default_input_type_ids:0",
    }
    assert interpreter_inputs["output"]["shape"] == [1, 2]
    with pytest.raises(ValueError, match="int32 \\[1, 20\\]"):
        check_signature(fp32_model, sequence_length=20, num_classes=2)


@pytest.fixture(scope="module")
def wide_model():
    # Layers wide enough (32 x 32 kernels) for the converter to quantise their weights.
    model = decisive_classifier(hidden_dim=32, intermediate_dim=64, vocabulary_size=300)
    return model, len(to_tflite(model, "fp32", sequence_length=L))


@pytest.mark.parametrize("quantization, max_diff", [("fp16", 0.01), ("dynamic", 0.1)])
def test_float_quantised_modes_stay_close(quantization, max_diff, wide_model):
    model, fp32_size = wide_model
    ids = random_features(batch_size=24, sequence_length=L, seed=7, vocabulary_size=300)
    content = to_tflite(model, quantization, sequence_length=L)
    assert len(content) < 0.7 * fp32_size
    expected = keras_reference(model, ids)
    received = tflite_probabilities(content, ids)
    assert 0 < np.abs(received - expected).max() < max_diff
    assert np.mean(received.argmax(-1) == expected.argmax(-1)) >= 0.9


def test_int8_needs_representative_data(model):
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite(model, "int8", sequence_length=L)


def _max_activation_range(content):
    """Largest calibrated range (scale x 255) of any int8 tensor in the graph."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    ranges = [
        float(np.max(t.quantization.scale)) * 255
        for t in model.subgraphs[0].tensors
        if t.type == schema.TensorType.INT8 and t.quantization is not None
        and t.quantization.scale is not None
    ]
    return max(ranges)


def test_int8_clipped_mask_removes_the_huge_range(model, features, calibration):
    # Integer-only graphs: by default the scores stay float (INT8_FLOAT_OPS).
    keras_masked = to_tflite(model, "int8", L, calibration, attention_mask_value=None,
                             float_ops=())
    clipped = to_tflite(model, "int8", L, calibration, float_ops=())
    # Keras' -1e9 mask value sets the scale of the pre-softmax scores (and, through the
    # select, of the QK^T matmul): every real score then rounds to the same level.
    assert _max_activation_range(keras_masked) > 1e8
    assert _max_activation_range(clipped) < 1e4
    expected = keras_reference(model, features)
    received = tflite_probabilities(clipped, features)
    assert np.mean(received.argmax(-1) == expected.argmax(-1)) >= 0.75
    assert np.abs(received - expected).max() < np.abs(
        tflite_probabilities(keras_masked, features) - expected).max()


def test_int8_io_gives_int8_output(model, features, calibration):
    content = to_tflite(model, "int8", L, calibration, int8_io=True)
    interpreter_output = check_signature(content, L, 2)["output"]
    assert interpreter_output["dtype"] == "int8"
    received = tflite_probabilities(content, features)  # dequantised
    np.testing.assert_allclose(received.sum(-1), 1.0, atol=0.02)
    assert "FULLY_CONNECTED" in operator_names(content)


def test_int8_keeps_attention_and_layernorm_statistics_in_float(model, features, calibration):
    default = to_tflite(model, "int8", L, calibration)
    integer_only = to_tflite(model, "int8", L, calibration, float_ops=())
    for op_name in ("BATCH_MATMUL", "SOFTMAX", "RSQRT", "GELU"):
        assert set(tensor_types(default, op_name)) == {"FLOAT32"}, op_name
    # The attention mask is an ADD of a float bias (no SELECT_V2, which XNNPACK refuses),
    # kept in float by its name scope, so the scores reach the softmax unquantised.
    assert "SELECT_V2" not in operator_names(default)
    mask = named_tensor_types(default, MASK_SCOPE)
    assert mask.count("FLOAT32") >= model.backbone.num_layers and "INT8" not in mask
    for op_name in ("BATCH_MATMUL", "RSQRT"):
        assert set(tensor_types(integer_only, op_name)) == {"INT8"}, op_name
    # The last softmax feeds the float output in both; the attention ones differ.
    assert "INT8" in tensor_types(integer_only, "SOFTMAX")
    for content in (default, integer_only):
        assert set(tensor_types(content, "FULLY_CONNECTED")) == {"INT8"}
        assert set(tensor_types(content, "FULLY_CONNECTED", input_index=1)) == {"INT8"}
    # The split LayerNorm's per-row statistics and the normalisation by them, whatever the
    # op (MUL, ADD, SUB as well as MEAN and RSQRT), by their name scope.
    statistics = named_tensor_types(default, STATISTICS_SCOPE)
    assert len(statistics) > 10 and set(statistics) == {"FLOAT32"}
    assert "INT8" in named_tensor_types(integer_only, STATISTICS_SCOPE)
    expected = keras_reference(model, features)
    received = tflite_probabilities(default, features)
    assert np.mean(received.argmax(-1) == expected.argmax(-1)) >= 0.9


@pytest.mark.parametrize("float_ops, message", [
    (["SOFTMAX", "LAYER_NORM"], "Unknown TFLite builtin operators.*LAYER_NORM"),
    ("SOFTMAX", "list of TFLite builtin operator names"),
])
def test_unknown_float_ops_are_refused(model, calibration, float_ops, message):
    with pytest.raises(ValueError, match=message):
        to_tflite(model, "int8", L, calibration, float_ops=float_ops)


def test_clipped_mask_forward_matches_keras(model, features):
    expected = keras_reference(model, features)
    received = np.asarray(classifier_probabilities(
        model, features["token_ids"], features["padding_mask"], features["segment_ids"],
        attention_mask_value=-30.0,
    ))
    np.testing.assert_allclose(received, expected, atol=1e-5)


def test_flex_op_fails_the_builtin_check():
    class ErfModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            return tf.math.erf(x)

    module = ErfModule()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS
    ]
    content = converter.convert()
    assert operator_names(content) == ["CUSTOM:FlexErf"]
    with pytest.raises(UnsupportedOpsError, match="FlexErf"):
        check_builtin_ops(content)


def test_model_needing_a_tf_op_fails_to_export():
    model = decisive_classifier()
    model.backbone.pooled_dense.activation = tf.math.atan  # no TFLite kernel
    with pytest.raises(UnsupportedOpsError, match="Atan"):
        to_tflite(model, "fp32", sequence_length=L)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sequence_length": 33}, "max_sequence_length"),
        ({"quantization": "int4"}, "one of"),
        ({"int8_io": True}, "int8' only"),
    ],
)
def test_bad_arguments_are_refused(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        to_tflite(model, **{"sequence_length": L, **kwargs})


def test_non_bert_model_is_refused():
    inputs = keras.Input((L,), dtype="int32")
    other = keras.Model(inputs, keras.layers.Dense(2)(keras.ops.cast(inputs, "float32")))
    with pytest.raises(ValueError, match="BertTextClassifier"):
        to_tflite(other, "fp32", sequence_length=L)


def test_softmax_head_is_not_softmaxed_twice(model, features):
    import keras_hub

    probabilities_head = keras_hub.models.BertTextClassifier(
        model.backbone, num_classes=2, activation="softmax", preprocessor=None
    )
    probabilities_head.output_dense.set_weights(model.output_dense.get_weights())
    expected = keras_reference(model, features)  # softmax of the logits head
    received = np.asarray(classifier_probabilities(
        probabilities_head, features["token_ids"], features["padding_mask"],
        features["segment_ids"],
    ))
    np.testing.assert_allclose(received, expected, atol=1e-6)
