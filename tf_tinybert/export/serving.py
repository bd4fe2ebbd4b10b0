"""The serving graph: a SavedModel with the signature MediaPipe's TextClassifier expects.

MediaPipe Tasks and Model Maker name a BERT classifier's inputs `input_word_ids`,
`input_mask` and `input_type_ids` (int32, [1, L], or [1, -1] for a dynamic-length export
that runs each text at its own length) and read softmax probabilities from its
output, which we name `probability`. A regression head (`num_classes == 1`, STS-B) serves
its raw float32 `score` [1, 1] instead (no softmax). `save_serving_model` wraps a keras-hub
`BertTextClassifier` in that signature; `classifier_probabilities` is the forward pass
it serves, either Keras' own or one whose attention mask is clipped for int8 (see
`attention_mask_value`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS
from tf_tinybert.export.outliers import split_forward
from tf_tinybert.keras_hub_bert import forward_with_intermediates
from tf_tinybert.runtime.contract import (
    INPUT_MASK,
    INPUT_NAMES,
    INPUT_TYPE_IDS,
    INPUT_WORD_IDS,
    OUTPUT_NAME,
    SCORE_NAME,
)

# The model feature each serving input carries, in INPUT_NAMES order.
INPUT_FEATURES = {INPUT_WORD_IDS: TOKEN_IDS, INPUT_MASK: PADDING_MASK, INPUT_TYPE_IDS: SEGMENT_IDS}

_BACKBONE_LAYERS = (
    "token_embedding",
    "position_embedding",
    "segment_embedding",
    "embeddings_add",
    "embeddings_layer_norm",
    "transformer_layers",
    "pooled_dense",
)


def check_classifier(model) -> None:
    """Raises ValueError unless `model` is a keras-hub BertTextClassifier-like classifier.

    "Like" means: a Keras model with a `backbone` that has BertBackbone's named layers
    (keras-nlp's classes are the same) and an `output_dense` head: at least two classes,
    or one unit with no activation (a regression head, see `is_regression`).

    Example:
    ```python
    check_classifier(keras_hub.models.BertTextClassifier(backbone, num_classes=2,
                                                         preprocessor=None))
    ```
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Expected a keras-hub BertTextClassifier (a keras.Model). "
            f"Received: model of type {type(model).__name__}."
        )
    backbone = getattr(model, "backbone", None)
    missing = [name for name in _BACKBONE_LAYERS if not hasattr(backbone, name)]
    if backbone is None or missing or not hasattr(model, "output_dense"):
        what = "no `backbone`" if backbone is None else f"backbone lacks {missing}"
        if backbone is not None and not missing:
            what = "no `output_dense` classification head"
        raise ValueError(
            "Expected a keras-hub BertTextClassifier-like student (a BertBackbone with "
            f"{list(_BACKBONE_LAYERS)} and an `output_dense` head). Received: "
            f"{type(model).__name__} named {model.name!r} with {what}."
        )
    num_classes = model.output_dense.units
    activation = keras.activations.serialize(model.output_dense.activation)
    if num_classes == 1 and _activation_name(activation) != "linear":
        raise ValueError(
            "Expected a regression head (1 output unit) to output its raw value (activation "
            f"None). Received: activation={activation!r} in layer "
            f"{model.output_dense.name!r}."
        )
    if _activation_name(activation) not in ("linear", "softmax"):
        raise ValueError(
            "Expected the classifier head to output logits (activation None) or "
            f"probabilities (activation 'softmax'). Received: activation={activation!r} "
            f"in layer {model.output_dense.name!r}."
        )


def is_regression(model) -> bool:
    """True for a regression head (one output unit, e.g. STS-B), which serves a `score`.

    Example:
    ```python
    is_regression(keras_hub.models.BertTextClassifier(backbone, num_classes=1,
                                                      preprocessor=None))  # True
    ```
    """
    return int(model.output_dense.units) == 1


def output_name(model) -> str:
    """The serving output's name: SCORE_NAME for a regression head, else OUTPUT_NAME.

    Example:
    ```python
    output_name(student)  # 'probability'
    ```
    """
    return SCORE_NAME if is_regression(model) else OUTPUT_NAME


def _activation_name(serialized) -> str:
    if isinstance(serialized, dict):
        return serialized.get("config", {}).get("name", serialized.get("class_name", ""))
    return str(serialized)


def classifier_probabilities(
    model, token_ids, padding_mask, segment_ids, attention_mask_value: float | None = None,
    outlier_channels: Sequence[int] | None = None,
):
    """Softmax class probabilities [B, C] of a BertTextClassifier, in inference mode.

    For a regression head (`is_regression`) it returns the raw float32 scores [B, 1].

    Args:
        model: a keras-hub BertTextClassifier (see `check_classifier`).
        token_ids, padding_mask, segment_ids: int32 tensors [B, L].
        attention_mask_value: None runs Keras' own forward pass, which masks padded keys
            by replacing their attention scores with -1e9. A float (say -30.0) re-runs
            the backbone layer by layer with that value instead. Full-integer
            quantisation calibrates one range per tensor; a -1e9 in the pre-softmax
            scores stretches that range until every real score rounds to the same step
            and attention turns uniform. A small value keeps the range near the real
            scores while still giving padded keys ~exp(value) of the weight.

    Example:
    ```python
    probs = classifier_probabilities(model, ids, mask, segments, attention_mask_value=-30.0)
    ```
    """
    split = split_forward(model, outlier_channels, attention_mask_value)
    if split is not None:
        outputs = split(token_ids, padding_mask, segment_ids)
    elif attention_mask_value is None:
        outputs = model(
            {TOKEN_IDS: token_ids, SEGMENT_IDS: segment_ids, PADDING_MASK: padding_mask},
            training=False,
        )
    else:
        outputs = _clipped_mask_forward(
            model, token_ids, padding_mask, segment_ids, float(attention_mask_value)
        )
    return _softmax_unless_done(model, outputs)


def _softmax_unless_done(model, outputs):
    if is_regression(model):
        return ops.cast(outputs, "float32")
    activation = _activation_name(keras.activations.serialize(model.output_dense.activation))
    if activation == "softmax":
        return ops.cast(outputs, "float32")
    return ops.softmax(ops.cast(outputs, "float32"), axis=-1)


def _clipped_mask_forward(model, token_ids, padding_mask, segment_ids, mask_value):
    """BertBackbone + head in inference mode, with padded attention keys set to `mask_value`."""
    features = {TOKEN_IDS: token_ids, SEGMENT_IDS: segment_ids, PADDING_MASK: padding_mask}
    return forward_with_intermediates(model, features, attention_mask_value=mask_value)["logits"]


def save_serving_model(
    model, path: str, sequence_length: int | None, attention_mask_value: float | None = None,
    outlier_channels: Sequence[int] | None = None,
) -> None:
    """Writes a SavedModel whose `serving_default` signature MediaPipe's TextClassifier takes.

    Inputs: int32 `input_word_ids`, `input_mask`, `input_type_ids` of shape
    [1, sequence_length]; output: float32 `probability` [1, num_classes] (softmax), or
    float32 `score` [1, 1] for a regression head. `sequence_length=None` leaves the length
    open ([1, None], which the TFLite converter turns into shape_signature [1, -1]): the
    caller then runs each text at its own length, at most the model's
    max_sequence_length (the size of its position embedding; the caller truncates).

    Example:
    ```python
    save_serving_model(model, "/tmp/serving", sequence_length=128)
    save_serving_model(model, "/tmp/serving_dynamic", sequence_length=None)
    ```
    """
    check_classifier(model)
    split = split_forward(model, outlier_channels, attention_mask_value)

    name = output_name(model)

    def serve(input_word_ids, input_mask, input_type_ids):
        if split is not None:
            logits = split(input_word_ids, input_mask, input_type_ids)
            return {name: _softmax_unless_done(model, logits)}
        probability = classifier_probabilities(
            model, input_word_ids, input_mask, input_type_ids, attention_mask_value
        )
        return {name: probability}

    write_serving_archive(model, path, serve, sequence_length)


def write_serving_archive(model, path: str, serve, sequence_length: int | None) -> None:
    """Writes `serve(input_word_ids, input_mask, input_type_ids) -> {name: tensor}` as the
    `serving_default` signature of a SavedModel at `path`, inputs int32 [1, sequence_length]
    named `INPUT_NAMES` (None: any length), tracking `model`'s weights.

    Shared by the classifier export and the token-model exports (`token_export`).

    Example:
    ```python
    write_serving_archive(model, "/tmp/serving", lambda *ids: {"logits": ...}, 128)
    ```
    """
    signature = [tf.TensorSpec([1, sequence_length], tf.int32, name=n) for n in INPUT_NAMES]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.write_out(path, verbose=False)
