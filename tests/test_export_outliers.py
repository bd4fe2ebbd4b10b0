"""The int8 serving graph that holds outlier channels apart: exact in float, small int8 ranges."""

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from export_helpers import decisive_classifier, keras_reference
from tiny_models import make_pre_layer_norm, random_features

from tf_tinybert.export import to_tflite
from tf_tinybert.export.outliers import SplitStreamForward, find_outlier_channels
from tf_tinybert.export.serving import classifier_probabilities
from tf_tinybert.export.verify import tflite_probabilities
from tf_tinybert.keras_hub_bert import bert_parts

L = 16
HIDDEN = 32
OUTLIER = 5


@pytest.fixture(scope="module")
def model():
    # A trained BERT's outliers, in miniature: the first feed-forward block writes channel
    # OUTLIER at ~50x the size of the others on some tokens.
    model = decisive_classifier(hidden_dim=HIDDEN, intermediate_dim=64, vocabulary_size=300)
    dense = bert_parts(model).layers[0].feedforward_output
    kernel, bias = dense.get_weights()
    kernel[:, OUTLIER] *= 50.0
    dense.set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def features():
    return random_features(batch_size=24, sequence_length=L, seed=7, vocabulary_size=300)


@pytest.fixture(scope="module")
def calibration():
    return [random_features(batch_size=32, sequence_length=L, seed=11, vocabulary_size=300)]


def test_finds_the_planted_outlier(model, calibration):
    channels = find_outlier_channels(model, calibration[0], count=2)
    assert OUTLIER in channels and len(channels) == 2
    assert find_outlier_channels(model, calibration[0], count=0) == []


def test_split_graph_equals_keras_in_float(model, features):
    expected = keras_reference(model, features)
    for channels in ([OUTLIER], [0, OUTLIER, 17, 31], []):
        received = np.asarray(classifier_probabilities(
            model, features["token_ids"], features["padding_mask"], features["segment_ids"],
            attention_mask_value=-30.0, outlier_channels=channels,
        ))
        np.testing.assert_allclose(received, expected, atol=1e-4)
    assert len(set(expected.argmax(-1))) == 2


def test_split_graph_equals_keras_for_pre_layer_norm_models(features):
    # The model is made pre-LN before it first runs (its graph reads the flag per call).
    model = make_pre_layer_norm(decisive_classifier(seed=3, hidden_dim=HIDDEN,
                                                    intermediate_dim=64, vocabulary_size=300))
    logits = np.asarray(model({k: features[k] for k in ("token_ids", "segment_ids",
                                                        "padding_mask")}, training=False),
                        dtype=np.float64)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    for channels in ([OUTLIER], [0, OUTLIER, 17, 31]):
        received = np.asarray(SplitStreamForward(model, channels)(
            features["token_ids"], features["padding_mask"], features["segment_ids"]))
        probabilities = np.exp(received - received.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    # One LayerNorm for the embeddings, two per encoder layer, all recorded.
    inputs = SplitStreamForward(model, [OUTLIER]).layer_norm_inputs(
        features["token_ids"], features["padding_mask"], features["segment_ids"])
    assert len(inputs) == 1 + 2 * model.backbone.num_layers


def test_rejects_bad_channels(model):
    with pytest.raises(ValueError, match="outlier channels in \\[0, 32\\)"):
        SplitStreamForward(model, [HIDDEN])
    with pytest.raises(ValueError, match="fewer than all"):
        SplitStreamForward(model, range(HIDDEN))
    with pytest.raises(ValueError, match="attention_mask_value"):
        classifier_probabilities(model, None, None, None, outlier_channels=[1])
    with pytest.raises(ValueError, match="outlier_channels=-1"):
        to_tflite(model, "int8", L, [], outlier_channels=-1)


def _ranges_by_width(content):
    """{last dimension: largest calibrated range (scale x 255)} over the int8 tensors."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    ranges = {}
    for tensor in model.subgraphs[0].tensors:
        if tensor.type != schema.TensorType.INT8 or tensor.quantization is None:
            continue
        if tensor.quantization.scale is None or len(tensor.quantization.scale) != 1:
            continue  # per-channel weights
        width = int(tensor.shape[-1]) if len(tensor.shape) else 0
        value = float(tensor.quantization.scale[0]) * 255
        ranges[width] = max(ranges.get(width, 0.0), value)
    return ranges


def test_int8_ordinary_channels_keep_a_small_range(model, features, calibration):
    plain = to_tflite(model, "int8", L, calibration, outlier_channels=0)
    split = to_tflite(model, "int8", L, calibration, outlier_channels=3)
    plain_ranges, split_ranges = _ranges_by_width(plain), _ranges_by_width(split)
    # Without the split, the stream tensors [.., HIDDEN] span the outlier's range; with it,
    # the ordinary channels [.., HIDDEN - 3] are calibrated to a range of their own, many
    # times smaller. (LayerNorm's squared deviations stay float: INT8_FLOAT_OPS.)
    assert split_ranges[HIDDEN] * 8 < plain_ranges[HIDDEN]  # the embedding sum only
    assert split_ranges[HIDDEN - 3] * 8 < plain_ranges[HIDDEN]
    # (Accuracy on a real MiniLM is measured by benchmarks/export_quality.py; this random
    # model with stddev-0.5 weights only shows that the split graph still quantises.)
    expected = keras_reference(model, features)
    agreement = np.mean(tflite_probabilities(split, features).argmax(-1) == expected.argmax(-1))
    assert agreement >= 0.9


@pytest.fixture(scope="module")
def span_model(model):
    # The classifier's backbone (planted outlier included) under a span head.
    from tf_tinybert import token_models

    extractor = token_models.token_model_for(model.backbone, "question_answering")
    kernel, bias = extractor.output_dense.get_weights()
    extractor.output_dense.set_weights([kernel * 50, bias])
    return extractor


def test_split_token_logits_equal_keras_in_float(span_model, features):
    inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    expected = np.asarray(span_model(inputs, training=False))
    real = features["padding_mask"].astype(bool)
    for channels in ([OUTLIER], [0, OUTLIER, 17, 31], []):
        received = np.asarray(SplitStreamForward(span_model, channels).token_logits(
            features["token_ids"], features["padding_mask"], features["segment_ids"]))
        # Padded positions see exp(-30) of a padded key instead of none: compare real ones.
        np.testing.assert_allclose(received[real], expected[real], atol=1e-3)


def test_token_int8_export_holds_the_outlier_apart(span_model, features, calibration):
    from tf_tinybert.export import token_export

    plain = token_export.token_to_tflite(span_model, "int8", L, calibration, outlier_channels=0)
    split = token_export.token_to_tflite(span_model, "int8", L, calibration, outlier_channels=3)
    plain_ranges, split_ranges = _ranges_by_width(plain), _ranges_by_width(split)
    # The ordinary channels get a range of their own up to the span head, which reads
    # both parts. (Span agreement on real SQuAD: benchmarks/results/qa; this random
    # model's span logits are too flat for an argmax to mean anything. The int8 test in
    # test_token_export_runtime.py checks agreement on a tiny model, split included.)
    assert split_ranges[HIDDEN - 3] * 8 < plain_ranges[HIDDEN]
    assert HIDDEN - 3 not in plain_ranges


def test_a_layer_norm_epsilon_that_matters_is_kept(features):
    # BERT's 1e-12 is left out of the split graph (it adds nothing in int8, and XNNPACK
    # refuses its ADD); an epsilon of 0.5, comparable to the variances, changes every
    # output and must stay.
    import keras

    model = decisive_classifier(seed=5, hidden_dim=HIDDEN, intermediate_dim=64,
                                vocabulary_size=300)
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 1 + 2 * model.backbone.num_layers
    before = keras_reference(model, features)
    for layer in norms:
        layer.epsilon = 0.5
    model.make_predict_function(force=True)  # predict() traced the old epsilon
    expected = keras_reference(model, features)
    assert np.abs(expected - before).max() > 1e-3  # the epsilon is felt
    received = np.asarray(classifier_probabilities(
        model, features["token_ids"], features["padding_mask"], features["segment_ids"],
        attention_mask_value=-30.0, outlier_channels=[OUTLIER]))
    np.testing.assert_allclose(received, expected, atol=1e-4)
