"""Everything tf_tinybert knows about keras-hub's BertBackbone/TransformerEncoder internals.

Written against keras-hub 0.32.0 (Keras 3.15). keras-hub's `TransformerEncoder` keeps its
sub-layers in private attributes (`_self_attention_layer`, `_feedforward_*`, ...), and
Keras' `MultiHeadAttention` returns post-softmax probabilities only, while TinyBERT distils
the scores before the softmax. So the encoder is re-derived here, once, from the layers'
own sub-layers (weights shared), and nowhere else in tf_tinybert:

- `bert_backbone(model, role)` checks that a model is a BERT classifier with a logits head;
- `bert_parts(model)` is a read-only description of a classifier's pieces (embedding
  tables, per-layer query/key/value/output projections, LayerNorms, feed-forward Dense
  layers, head scale, pooler, head) and of its LayerNorm position, decided once by
  `normalize_first(backbone)`, for code that re-derives the forward in raw TF
  (`tf_tinybert.export.outliers`);
- `forward_with_intermediates(model, features)` runs the classifier once and returns its
  logits, hidden states and pre-softmax attention scores.

A keras-hub upgrade that renames or reorders these internals is a change to this file
alone, guarded by its parity test (tests/test_keras_hub_bert.py: hidden states equal the
functional graph's own `transformer_layer_{i}` outputs, logits equal `model(features)`).

Layer numbering follows the TinyBERT paper throughout tf_tinybert: layer 0 is the embedding
output and layers 1..N are the outputs of the N transformer layers.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import keras_hub
from keras import ops

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS


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


def normalize_first(backbone: keras_hub.models.BertBackbone) -> bool:
    """Whether the backbone's encoder layers are pre-LayerNorm (True) or post-LayerNorm.

    The single place tf_tinybert decides the LayerNorm position; a backbone whose layers
    disagree is refused, naming them.

    Example:
    ```python
    normalize_first(student.backbone)  # False: BertBackbone builds post-LN layers
    ```
    """
    flags = {layer.name: bool(layer.normalize_first) for layer in backbone.transformer_layers}
    if len(set(flags.values())) > 1:
        raise ValueError(
            "Expected every transformer layer of the BertBackbone to place its LayerNorms "
            f"the same way. Received normalize_first per layer: {flags}."
        )
    return next(iter(flags.values()), False)


@dataclasses.dataclass(frozen=True)
class EmbeddingParts:
    """The embedding block of a BertBackbone: three lookups, a sum, a LayerNorm, dropout.

    Example:
    ```python
    parts = bert_parts(model).embeddings
    parts.token_table.shape  # (vocabulary_size, hidden_dim)
    ```
    """

    token: keras.layers.Layer
    position: keras.layers.Layer
    segment: keras.layers.Layer
    add: keras.layers.Layer
    layer_norm: keras.layers.LayerNormalization
    dropout: keras.layers.Dropout

    @property
    def token_table(self):
        """[vocabulary_size, hidden] token embedding variable."""
        return self.token.embeddings

    @property
    def position_table(self):
        """[max_sequence_length, hidden] position embedding variable."""
        return self.position.position_embeddings

    @property
    def segment_table(self):
        """[num_segments, hidden] segment embedding variable."""
        return self.segment.embeddings


@dataclasses.dataclass(frozen=True)
class EncoderLayerParts:
    """One keras-hub `TransformerEncoder`'s sub-layers, by role (weights are the layer's own).

    `query`, `key`, `value` map [B, L, hidden] to [B, L, heads, head_dim] and `output` maps
    back (Keras `EinsumDense`: `.kernel` [hidden, heads, head_dim] / [heads, head_dim,
    hidden], `.bias`); `feedforward_intermediate` (with its activation) and
    `feedforward_output` are `Dense`; `head_scale` is 1/sqrt(head_dim), applied to the
    queries. With `normalize_first` the LayerNorms normalise each block's input
    (pre-LN); without, each block's residual sum (post-LN, BERT's layout).

    Example:
    ```python
    parts = bert_parts(model).layers[0]
    parts.query.kernel.shape  # (hidden_dim, num_heads, head_dim)
    ```
    """

    layer: keras.layers.Layer
    query: keras.layers.Layer
    key: keras.layers.Layer
    value: keras.layers.Layer
    output: keras.layers.Layer
    attention_layer_norm: keras.layers.LayerNormalization
    feedforward_intermediate: keras.layers.Dense
    feedforward_output: keras.layers.Dense
    feedforward_layer_norm: keras.layers.LayerNormalization
    head_scale: float
    normalize_first: bool
    attention_dropout: keras.layers.Dropout
    attention_output_dropout: keras.layers.Dropout
    feedforward_dropout: keras.layers.Dropout


@dataclasses.dataclass(frozen=True)
class BertParts:
    """A BERT classifier described by role: embeddings, encoder layers, pooler and head.

    Example:
    ```python
    parts = bert_parts(model)
    parts.normalize_first, len(parts.layers), parts.head.units  # (False, 4, 2)
    ```
    """

    backbone: keras_hub.models.BertBackbone
    embeddings: EmbeddingParts
    layers: tuple[EncoderLayerParts, ...]
    normalize_first: bool
    cls_token_index: int
    pooler: keras.layers.Dense
    head_dropout: keras.layers.Dropout
    head: keras.layers.Dense


def _encoder_layer_parts(layer, pre_layer_norm: bool) -> EncoderLayerParts:
    attention = layer._self_attention_layer
    return EncoderLayerParts(
        layer=layer,
        query=attention.query_dense,
        key=attention.key_dense,
        value=attention.value_dense,
        output=attention.output_dense,
        attention_layer_norm=layer._self_attention_layer_norm,
        feedforward_intermediate=layer._feedforward_intermediate_dense,
        feedforward_output=layer._feedforward_output_dense,
        feedforward_layer_norm=layer._feedforward_layer_norm,
        head_scale=1.0 / math.sqrt(float(attention.key_dim)),
        normalize_first=pre_layer_norm,
        attention_dropout=attention._dropout_layer,
        attention_output_dropout=layer._self_attention_dropout,
        feedforward_dropout=layer._feedforward_dropout,
    )


def _backbone_parts(backbone):
    pre_layer_norm = normalize_first(backbone)
    embeddings = EmbeddingParts(
        token=backbone.token_embedding,
        position=backbone.position_embedding,
        segment=backbone.segment_embedding,
        add=backbone.embeddings_add,
        layer_norm=backbone.embeddings_layer_norm,
        dropout=backbone.embeddings_dropout,
    )
    layers = tuple(_encoder_layer_parts(layer, pre_layer_norm)
                   for layer in backbone.transformer_layers)
    return embeddings, layers, pre_layer_norm


def bert_parts(model, role: str = "model") -> BertParts:
    """Describe a keras-hub BERT classifier's pieces by role (see `BertParts`).

    Raises the errors of `bert_backbone` and `normalize_first`.

    Example:
    ```python
    parts = bert_parts(student, "student")
    parts.layers[0].feedforward_output.kernel  # [intermediate, hidden]
    ```
    """
    backbone = bert_backbone(model, role)
    embeddings, layers, pre_layer_norm = _backbone_parts(backbone)
    return BertParts(
        backbone=backbone,
        embeddings=embeddings,
        layers=layers,
        normalize_first=pre_layer_norm,
        cls_token_index=backbone.cls_token_index,
        pooler=backbone.pooled_dense,
        head_dropout=model.output_dropout,
        head=model.output_dense,
    )


def embed(parts: EmbeddingParts, features: dict, training: bool = False):
    """The embedding block's output [B, L, hidden] (layer 0 in TinyBERT's numbering).

    Example:
    ```python
    x = embed(bert_parts(model).embeddings, features)
    ```
    """
    tokens = parts.token(features[TOKEN_IDS])
    positions = parts.position(tokens)
    segments = parts.segment(features[SEGMENT_IDS])
    x = parts.add((tokens, positions, segments))
    x = parts.layer_norm(x)
    return parts.dropout(x, training=training)


def _masked_attention(scores, keep, attention_mask_value):
    if attention_mask_value is None:
        # The probabilities of Keras' masked Softmax: -1e9 (-3e4 in float16) at padded keys,
        # then zeros there, so that a row without any real key attends to nothing. Added
        # and multiplied as [B, 1, 1, key] terms rather than selected with `where` over the
        # whole [B, heads, query, key] tensor: exp(score - 1e9) is 0 in float32 all the same,
        # and the backward pass skips two full-size selects and their zero tensors.
        fill = -3e4 if keras.backend.standardize_dtype(scores.dtype) == "float16" else -1e9
        keep = ops.cast(keep, scores.dtype)
        bias = (1.0 - keep) * ops.cast(fill, scores.dtype)
        return ops.softmax(scores + bias, axis=-1) * keep
    clipped = ops.where(keep, scores, ops.cast(attention_mask_value, scores.dtype))
    return ops.softmax(clipped, axis=-1)


def encoder_layer_forward(parts: EncoderLayerParts, x, padding_mask, training: bool = False,
                          attention_mask_value: float | None = None,
                          return_projections: bool = False):
    """One `TransformerEncoder` forward that also returns its pre-softmax attention scores.

    Returns `(output, scores)`: the layer's output [B, L, hidden], equal to the layer's own
    call, and QK^T / sqrt(head_dim) [B, heads, L, L] before the softmax and before masking.
    `attention_mask_value` replaces Keras' -1e9 at padded keys (see
    `forward_with_intermediates`). With `return_projections`, returns
    `(output, scores, (query, key, value))`, each [B, L, hidden]: the self-attention's input
    projections with the heads concatenated and the query not yet scaled (MiniLM-v2's
    relation targets).

    Example:
    ```python
    parts = bert_parts(model)
    y, scores = encoder_layer_forward(parts.layers[0], x, features[PADDING_MASK])
    ```
    """
    keep = ops.greater(ops.cast(padding_mask, "int32"), 0)[:, None, None, :]  # [B, 1, 1, key]
    residual = x
    if parts.normalize_first:
        x = parts.attention_layer_norm(x)
    query = parts.query(x)  # [batch, query, heads, head_dim]
    key = parts.key(x)
    value = parts.value(x)
    if return_projections:
        projections = tuple(_merge_heads(tensor) for tensor in (query, key, value))
    query = ops.multiply(query, ops.cast(parts.head_scale, query.dtype))
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
    probabilities = _masked_attention(scores, keep, attention_mask_value)
    probabilities = parts.attention_dropout(probabilities, training=training)
    context = ops.einsum("bhqk,bkhd->bqhd", probabilities, value)
    x = parts.output(context)
    x = parts.attention_output_dropout(x, training=training)
    x = x + residual
    if not parts.normalize_first:
        x = parts.attention_layer_norm(x)
    residual = x
    if parts.normalize_first:
        x = parts.feedforward_layer_norm(x)
    x = parts.feedforward_intermediate(x)
    x = parts.feedforward_output(x)
    x = parts.feedforward_dropout(x, training=training)
    x = x + residual
    if not parts.normalize_first:
        x = parts.feedforward_layer_norm(x)
    if return_projections:
        return x, scores, projections
    return x, scores


def _merge_heads(tensor):
    """[B, L, heads, head_dim] -> [B, L, heads * head_dim]."""
    return ops.reshape(tensor, leading_shape(tensor, [tensor.shape[2] * tensor.shape[3]]))


def leading_shape(tensor, tail):
    """The shape `tensor`'s first two dimensions followed by `tail`, for a reshape.

    Static wherever it can be: a constant list with -1 for at most one unknown dimension
    (a [1, -1] serving signature's length), so that TFLite gets a RESHAPE with a constant
    shape, which XNNPACK runs, instead of SHAPE -> STRIDED_SLICE -> CONCATENATION ops that
    it does not (each one splits the delegated graph). Both dimensions unknown: a shape
    tensor read at run time.

    Example:
    ```python
    leading_shape(keras.ops.zeros((2, 5, 12, 32)), [384])  # [2, 5, 384]
    ```
    """
    leading = [-1 if size is None else int(size) for size in tensor.shape[:2]]
    if leading.count(-1) <= 1:
        return leading + [int(size) for size in tail]
    shape = ops.shape(tensor)
    return [shape[0], shape[1], *(int(size) for size in tail)]


def forward_with_intermediates(model, features: dict, training: bool = False,
                               attention_mask_value: float | None = None,
                               return_projections: bool = False) -> dict:
    """Run a BERT classifier once, returning its logits and every intermediate.

    Returns a dict with:
    - `"logits"`: [batch, num_classes], the classifier's output;
    - `"hidden_states"`: a list of num_layers + 1 tensors [batch, seq, hidden]: the embedding
      output (layer 0, after the embedding LayerNorm) and each transformer layer's output;
    - `"attention_scores"`: a list of num_layers tensors [batch, heads, seq, seq] holding the
      scaled dot products QK^T / sqrt(d) *before* the softmax and before any masking (the
      TinyBERT target); padded positions hold unmasked values and must be masked by the loss;
    - with `return_projections`, `"projections"`: a list of num_layers `(query, key, value)`
      tuples, each [batch, seq, hidden] (heads concatenated, query unscaled), the inputs of
      MiniLM-v2's self-attention relations, from the same single forward pass.

    `attention_mask_value` replaces Keras' -1e9 for padded keys before the softmax (the same
    probabilities for any value far below the real scores); full-integer TFLite export uses a
    small one so that the mask does not swamp the calibrated ranges.

    Example:
    ```python
    outputs = forward_with_intermediates(student, features)
    len(outputs["hidden_states"])  # student.backbone.num_layers + 1
    ```
    """
    parts = bert_parts(model)
    outputs = backbone_with_intermediates(parts.backbone, features, training,
                                          attention_mask_value, return_projections)
    x = outputs.pop("sequence_output")
    pooled = parts.pooler(x[:, parts.cls_token_index, :])
    pooled = parts.head_dropout(pooled, training=training)
    return {"logits": parts.head(pooled), **outputs}


def backbone_with_intermediates(backbone: keras_hub.models.BertBackbone, features: dict,
                                training: bool = False,
                                attention_mask_value: float | None = None,
                                return_projections: bool = False) -> dict:
    """Run a `BertBackbone` once: `"sequence_output"` [batch, seq, hidden] (the last
    layer's output, what per-token heads read), `"hidden_states"`, `"attention_scores"` and
    (with `return_projections`) `"projections"` as `forward_with_intermediates` returns them.

    Example:
    ```python
    outputs = backbone_with_intermediates(tagger.backbone, features)
    token_logits = tagger.output_dense(outputs["sequence_output"])
    ```
    """
    embeddings, layers, _ = _backbone_parts(backbone)
    x = embed(embeddings, features, training)
    hidden_states = [x]
    attention_scores = []
    projections = []
    for layer in layers:
        x, scores, *qkv = encoder_layer_forward(layer, x, features[PADDING_MASK], training,
                                                attention_mask_value, return_projections)
        hidden_states.append(x)
        attention_scores.append(scores)
        projections.extend(qkv)
    outputs = {"sequence_output": x, "hidden_states": hidden_states,
               "attention_scores": attention_scores}
    if return_projections:
        outputs["projections"] = projections
    return outputs
