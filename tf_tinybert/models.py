"""Student presets and builders, and reading intermediates out of keras-hub BERT models.

Layer numbering follows the TinyBERT paper throughout tf_tinybert: layer 0 is the embedding
output and layers 1..N are the outputs of the N transformer layers.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

_BACKBONE_KEYS = (
    "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "dropout", "num_segments",
    "vocabulary_size", "max_sequence_length",
)


def build_student(
    name_or_config: str | dict,
    num_classes: int,
    vocabulary_size: int = 30522,
    max_sequence_length: int = 128,
    dropout: float | None = None,
) -> keras_hub.models.BertTextClassifier:
    """Build a randomly initialised student `BertTextClassifier` (no preprocessor).

    Args:
        name_or_config: a student preset (a name or path that `tf_tinybert.config.load_student`
            reads: `configs/students/*.yaml`) or a dict of `BertBackbone` arguments
            (`num_layers`, `hidden_dim`, `num_heads`, `intermediate_dim`, ...). Only the shape
            is read from a preset; `init: from_teacher` is `student_from_teacher`'s business.
        num_classes: number of output classes; 1 builds a regression head.
        vocabulary_size: size of the teacher's vocabulary (the student shares its tokenizer).
        max_sequence_length: longest input the student accepts.
        dropout: dropout rate of the backbone and of the classification head; by default the
            preset's (or the dict's) `dropout`, else 0.1.

    Example:
    ```python
    student = build_student("tinybert_4l_312h", num_classes=2)
    student.count_params()  # about 14.4 million
    ```
    """
    if isinstance(name_or_config, str):
        from tf_tinybert.config import ConfigError, load_student, shipped_names

        try:
            config = load_student(name_or_config).backbone_config()
        except ConfigError as error:
            raise ValueError(
                f"Unknown student preset {name_or_config!r}. Expected one of "
                f"{shipped_names('students')} (configs/students/), a student YAML path or a "
                f"dict of BertBackbone arguments. ({error})"
            ) from error
    elif isinstance(name_or_config, dict):
        config = dict(name_or_config)
    else:
        raise ValueError(
            "Expected `name_or_config` to be a preset name or a dict of BertBackbone arguments. "
            f"Received: {name_or_config!r}"
        )
    unknown = sorted(set(config) - set(_BACKBONE_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown student config keys {unknown}. Expected keys among {list(_BACKBONE_KEYS)}."
        )
    config.setdefault("vocabulary_size", vocabulary_size)
    config.setdefault("max_sequence_length", max_sequence_length)
    if dropout is not None:
        config["dropout"] = dropout
    config.setdefault("dropout", 0.1)
    dropout = config["dropout"]
    if num_classes < 1:
        raise ValueError(f"Expected `num_classes` >= 1. Received: num_classes={num_classes}")
    backbone = keras_hub.models.BertBackbone(**config)
    return keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=num_classes, preprocessor=None, dropout=dropout
    )


def bert_backbone(model, role: str = "model") -> keras_hub.models.BertBackbone:
    """Return the `BertBackbone` of a BERT classifier, or raise a clear error.

    Models made with `keras_nlp` are the same classes and are accepted.

    Example:
    ```python
    backbone = bert_backbone(build_student("bert_4l_128h", num_classes=2))
    backbone.num_layers  # 4
    ```
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, keras_hub.models.BertBackbone) or not hasattr(model, "output_dense"):
        raise ValueError(
            f"The {role} must be a BERT-family keras-hub text classifier "
            "(keras_hub.models.BertTextClassifier, with a BertBackbone). "
            f"Received: {type(model).__name__} with backbone {type(backbone).__name__}."
        )
    activation = keras.activations.serialize(model.activation)
    if activation not in ("linear", None):
        raise ValueError(
            f"The {role} must output logits (activation=None) so that its predictions can be "
            f"distilled. Received: activation={activation!r}."
        )
    return backbone


def student_from_teacher(
    teacher: keras_hub.models.BertTextClassifier,
    layers: list[int],
    num_classes: int | None = None,
) -> keras_hub.models.BertTextClassifier:
    """Make a student by copying the teacher's embeddings and chosen transformer layers.

    A DistilBERT-style start: the student has the teacher's width and `len(layers)` layers,
    layer `i` of the student starting from teacher layer `layers[i]` (numbered from 1, as in
    the TinyBERT paper). The pooler is copied, and the classification head too when the
    number of classes is unchanged.

    Example:
    ```python
    student = student_from_teacher(teacher, layers=[2, 4, 6])  # every other layer of 6
    ```
    """
    backbone = bert_backbone(teacher, "teacher")
    layers = [int(layer) for layer in layers]
    if not layers or any(not 1 <= layer <= backbone.num_layers for layer in layers):
        raise ValueError(
            f"Expected `layers` to be a non-empty list of teacher layer numbers in "
            f"1..{backbone.num_layers}. Received: layers={layers}"
        )
    if any(later <= earlier for earlier, later in zip(layers, layers[1:])):
        raise ValueError(f"Expected `layers` to be strictly increasing. Received: layers={layers}")
    num_classes = teacher.num_classes if num_classes is None else num_classes
    student = build_student(
        {
            "num_layers": len(layers),
            "hidden_dim": backbone.hidden_dim,
            "num_heads": backbone.num_heads,
            "intermediate_dim": backbone.intermediate_dim,
            "num_segments": backbone.num_segments,
            "dropout": backbone.dropout,
        },
        num_classes=num_classes,
        vocabulary_size=backbone.vocabulary_size,
        max_sequence_length=backbone.max_sequence_length,
        dropout=teacher.dropout,
    )
    target = student.backbone
    for name in ("token_embedding", "position_embedding", "segment_embedding",
                 "embeddings_layer_norm", "pooled_dense"):
        target.get_layer(name).set_weights(backbone.get_layer(name).get_weights())
    for index, layer in enumerate(layers):
        target.transformer_layers[index].set_weights(
            backbone.transformer_layers[layer - 1].get_weights()
        )
    if num_classes == teacher.num_classes:
        student.output_dense.set_weights(teacher.output_dense.get_weights())
    return student


def _embed(backbone, features, training):
    tokens = backbone.token_embedding(features["token_ids"])
    positions = backbone.position_embedding(tokens)
    segments = backbone.segment_embedding(features["segment_ids"])
    x = backbone.embeddings_add((tokens, positions, segments))
    x = backbone.embeddings_layer_norm(x)
    return backbone.embeddings_dropout(x, training=training)


def _encoder_layer(layer, x, attention_mask, training, attention_mask_value=None):
    """One keras-hub `TransformerEncoder` forward that also returns pre-softmax scores.

    Mirrors `TransformerEncoder.call` using the layer's own sub-layers (so weights are
    shared), because Keras' MultiHeadAttention only exposes post-softmax probabilities and
    TinyBERT distils the scores before the softmax. A test checks that the output equals
    the layer's own call.
    """
    attention = layer._self_attention_layer
    residual = x
    if layer.normalize_first:
        x = layer._self_attention_layer_norm(x)
    query = attention.query_dense(x)  # [batch, query, heads, head_dim]
    key = attention.key_dense(x)
    value = attention.value_dense(x)
    query = ops.multiply(query, ops.cast(attention._inverse_sqrt_key_dim, query.dtype))
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
    if attention_mask_value is None:
        probabilities = attention._masked_softmax(scores, attention_mask)
    else:
        keep = ops.greater(attention_mask, 0)[:, None, :, :]  # [batch, 1, 1, key]
        clipped = ops.where(keep, scores, ops.cast(attention_mask_value, scores.dtype))
        probabilities = ops.softmax(clipped, axis=-1)
    probabilities = attention._dropout_layer(probabilities, training=training)
    context = ops.einsum("bhqk,bkhd->bqhd", probabilities, value)
    x = attention.output_dense(context)
    x = layer._self_attention_dropout(x, training=training)
    x = x + residual
    if not layer.normalize_first:
        x = layer._self_attention_layer_norm(x)
    residual = x
    if layer.normalize_first:
        x = layer._feedforward_layer_norm(x)
    x = layer._feedforward_intermediate_dense(x)
    x = layer._feedforward_output_dense(x)
    x = layer._feedforward_dropout(x, training=training)
    x = x + residual
    if not layer.normalize_first:
        x = layer._feedforward_layer_norm(x)
    return x, scores


def forward_with_intermediates(model, features: dict, training: bool = False,
                               attention_mask_value: float | None = None) -> dict:
    """Run a BERT classifier once, returning its logits and every intermediate.

    Returns a dict with:
    - `"logits"`: [batch, num_classes], the classifier's output;
    - `"hidden_states"`: a list of num_layers + 1 tensors [batch, seq, hidden]: the embedding
      output (layer 0, after the embedding LayerNorm) and each transformer layer's output;
    - `"attention_scores"`: a list of num_layers tensors [batch, heads, seq, seq] holding the
      scaled dot products QK^T / sqrt(d) *before* the softmax and before any masking (the
      TinyBERT target); padded positions hold unmasked values and must be masked by the loss.

    `attention_mask_value` replaces Keras' -1e9 for padded keys before the softmax (the same
    probabilities for any value far below the real scores); full-integer TFLite export uses a
    small one so that the mask does not swamp the calibrated ranges.

    Example:
    ```python
    outputs = forward_with_intermediates(student, features)
    len(outputs["hidden_states"])  # student.backbone.num_layers + 1
    ```
    """
    backbone = bert_backbone(model)
    padding_mask = ops.cast(features["padding_mask"], "int32")
    attention_mask = ops.expand_dims(padding_mask, axis=1)  # [batch, 1, key]
    x = _embed(backbone, features, training)
    hidden_states = [x]
    attention_scores = []
    for layer in backbone.transformer_layers:
        x, scores = _encoder_layer(layer, x, attention_mask, training, attention_mask_value)
        hidden_states.append(x)
        attention_scores.append(scores)
    pooled = backbone.pooled_dense(x[:, backbone.cls_token_index, :])
    pooled = model.output_dropout(pooled, training=training)
    logits = model.output_dense(pooled)
    return {"logits": logits, "hidden_states": hidden_states, "attention_scores": attention_scores}
