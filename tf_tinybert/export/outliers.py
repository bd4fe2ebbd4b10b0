"""A BERT forward that keeps outlier channels of the residual stream in their own tensors.

Trained BERTs carry a few hidden channels (MiniLM-L6: channel 99 and a handful more) whose
values reach +-200 on some tokens while the other channels stay within +-5. Full-integer
TFLite gives each activation tensor one scale, so the LayerNorm inputs, the feed-forward
outputs and the squared deviations inside LayerNorm are calibrated to the outliers and the
ordinary channels round to a few levels.

`SplitStreamForward` computes the same function with the residual stream held as two
tensors, the ordinary channels and the outlier channels, each with its own int8 scale:
Dense layers reading the stream become two matmuls that are added, Dense layers writing
it become two matmuls (kernel columns split), and LayerNorm sums its mean and variance
over both parts. LayerNorm is invariant to multiplying a row by a positive number, so it
first divides each row by sqrt(1 + outlier variance): rows with huge outliers shrink, and
the variance that reaches RSQRT stays within a small range for every token. The
embedding tables are split the same way before their lookups (int8 tables have one
scale each too). In float32 the graph equals Keras (weights are only re-sliced); in int8
no activation mixes the two kinds of channel. MiniLM-L6 on SST-2 dev (872 rows, L=64):
top-1 agreement with Keras 0.917 -> 0.973; its 3-layer student 0.934 -> 0.98+. With
LayerNorm's statistics in float (tflite.INT8_FLOAT_OPS) the residual stream itself is
still int8, and the split still pays: the distilled quickstart student agreed with Keras
on 0.974 of SST-2 dev without it and 0.981 with it, at 3.1 against 3.4 ms.

Example:
```python
channels = find_outlier_channels(model, features, count=8)
probs = SplitStreamForward(model, channels)(token_ids, padding_mask, segment_ids)
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS
from tf_tinybert.keras_hub_bert import bert_parts, leading_shape

# A LayerNorm epsilon below this is left out of the split graph (BERT's is 1e-12). In int8
# it is far under the variance's quantisation step, so adding it changes no value; as an
# int8 ADD of a constant so much smaller than its output's scale it is an op XNNPACK
# refuses, and each refused op splits the delegated graph in two (one more partition to
# prepare whenever a dynamic-length model is resized). A real row's variance is never 0.
NEGLIGIBLE_EPSILON = 1e-6
# The name scope of LayerNorm's per-row statistics and the normalisation by them.
STATISTICS_SCOPE = "layer_norm_statistics"
# The name scope of the additive attention mask: the bias made from the padding mask and
# its addition to the float scores.
MASK_SCOPE = "attention_mask_bias"
# Scopes whose nodes an int8 export keeps in float32 by name (tflite.float_scope_nodes).
FLOAT_SCOPES = (STATISTICS_SCOPE, MASK_SCOPE)


class SplitStreamForward:
    """Softmax probabilities of a BertTextClassifier with the stream split at `outlier_channels`.

    Args:
        model: a keras-hub BertTextClassifier (token-id inputs; post- or pre-LayerNorm
            encoder layers, as `keras_hub_bert.normalize_first` reports).
        outlier_channels: hidden-channel indices held apart (may be empty).
        attention_mask_value: pre-softmax value of padded keys (see serving.py).

    Weights are read once, when the object is made: build it after training. Every weight
    is found through `tf_tinybert.keras_hub_bert.bert_parts`; the split LayerNorm applies
    wherever that description places the LayerNorms.

    Example:
    ```python
    forward = SplitStreamForward(model, [99, 223], attention_mask_value=-30.0)
    probs = forward(ids, mask, segments)  # float32 [B, C]
    ```
    """

    def __init__(self, model, outlier_channels: Sequence[int],
                 attention_mask_value: float = -30.0):
        self.model = model
        self.parts = bert_parts(model)
        self.hidden = self.parts.backbone.hidden_dim
        outliers = np.unique(np.asarray(list(outlier_channels), dtype=np.int64))
        if outliers.size and (outliers.min() < 0 or outliers.max() >= self.hidden
                              or outliers.size == self.hidden):
            raise ValueError(
                f"Expected distinct outlier channels in [0, {self.hidden}) (the hidden "
                f"size), fewer than all of them. Received: {list(outlier_channels)}."
            )
        self.outliers = outliers
        self.ordinary = np.setdiff1d(np.arange(self.hidden), outliers)
        self.mask_value = float(attention_mask_value)
        self._values = {id(w): np.asarray(w.numpy()) for w in model.weights}
        self._record = None

    def _value(self, variable) -> np.ndarray:
        return self._values[id(variable)]

    def _read(self, xm, xo, kernel, bias):
        """(stream) @ kernel [H, ...] + bias, as two matmuls over the split input."""
        kernel = self._value(kernel)
        out_shape = list(kernel.shape[1:])
        kernel = kernel.reshape(self.hidden, -1)
        y = tf.reshape(xm, [-1, self.ordinary.size]) @ tf.constant(kernel[self.ordinary])
        if self.outliers.size:
            y = y + tf.reshape(xo, [-1, self.outliers.size]) @ tf.constant(kernel[self.outliers])
        y = y + tf.constant(self._value(bias).reshape(-1))
        return tf.reshape(y, leading_shape(xm, out_shape))

    def _write(self, x, kernel, bias, inputs: int):
        """x [..., inputs] @ kernel + bias, returned split into (ordinary, outlier) channels."""
        kernel = self._value(kernel).reshape(inputs, self.hidden)
        bias = self._value(bias).reshape(-1)
        flat = tf.reshape(x, [-1, inputs])
        parts = []
        for channels in (self.ordinary, self.outliers):
            part = flat @ tf.constant(kernel[:, channels]) + tf.constant(bias[channels])
            parts.append(tf.reshape(part, leading_shape(x, [channels.size])))
        return parts

    def _layer_norm(self, layer, xm, xo):
        """LayerNorm `layer` of the stream (xm, xo), returned split the same way."""
        if self._record is not None:
            self._record.append(np.concatenate([np.asarray(xm), np.asarray(xo)], -1)[
                ..., np.argsort(np.concatenate([self.ordinary, self.outliers]))])
        gamma, beta = self._value(layer.gamma), self._value(layer.beta)
        n_ordinary, n_outliers = self.ordinary.size, self.outliers.size
        with tf.name_scope(STATISTICS_SCOPE):
            mean = tf.reduce_mean(xm, -1, keepdims=True) * (n_ordinary / self.hidden)
            if n_outliers:
                mean = mean + tf.reduce_mean(xo, -1, keepdims=True) * (n_outliers / self.hidden)
            dm, do = xm - mean, xo - mean
            variance = tf.reduce_mean(tf.square(dm), -1, keepdims=True) * (n_ordinary / self.hidden)
            epsilon = float(layer.epsilon) if layer.epsilon >= NEGLIGIBLE_EPSILON else None
            if n_outliers:
                # Positive per-row rescaling leaves LayerNorm unchanged if epsilon scales with
                # the variance (by shrink^2); this one keeps the variance of outlier rows near
                # that of ordinary rows.
                outlier_variance = tf.reduce_sum(tf.square(do), -1, keepdims=True) / self.hidden
                shrink = tf.math.rsqrt(outlier_variance + 1.0)
                dm, do = dm * shrink, do * shrink
                variance = (
                    tf.reduce_mean(tf.square(dm), -1, keepdims=True) * (n_ordinary / self.hidden)
                    + tf.reduce_sum(tf.square(do), -1, keepdims=True) / self.hidden
                )
                if epsilon is not None:
                    epsilon = epsilon * tf.square(shrink)
            if epsilon is not None:
                variance = variance + epsilon
            inverse = tf.math.rsqrt(variance)
            dm, do = dm * inverse, do * inverse
        ym = dm * gamma[self.ordinary] + beta[self.ordinary]
        yo = do * gamma[self.outliers] + beta[self.outliers]
        return ym, yo

    def _embed(self, token_ids, segment_ids):
        """Token + position + segment embeddings, each table split by channel.

        The tables become int8 with one scale each; splitting them keeps the outlier
        channels (MiniLM's position table: 1.9 in channel 99, under 0.35 elsewhere) from
        setting the step of the ordinary ones.
        """
        embeddings = self.parts.embeddings
        tokens = self._value(embeddings.token_table)
        positions = self._value(embeddings.position_table)
        segments = self._value(embeddings.segment_table)
        length = token_ids.shape[1]
        # A dynamic-length signature looks its position rows up at run time. GATHER, not a
        # slice: TFLite evaluates a STRIDED_SLICE of a constant table while it prepares
        # the graph, element by element (its reference kernel), on every resize: 28% of
        # the SST-2 student's `allocate_tensors`.
        steps = None if length is not None else tf.range(tf.shape(token_ids)[1])
        parts = []
        for channels in (self.ordinary, self.outliers):
            if steps is not None:
                position = tf.gather(tf.constant(positions[:, channels]), steps)
            else:
                position = tf.constant(positions[:length, channels])
            parts.append(
                tf.gather(tf.constant(tokens[:, channels]), token_ids)
                + position
                + tf.gather(tf.constant(segments[:, channels]), segment_ids)
            )
        return parts

    def _encoder_layer(self, parts, xm, xo, mask_bias):
        """One encoder layer on the split stream; LayerNorms where `parts` places them."""
        pre = parts.normalize_first
        hm, ho = self._layer_norm(parts.attention_layer_norm, xm, xo) if pre else (xm, xo)
        query = self._read(hm, ho, parts.query.kernel, parts.query.bias) * parts.head_scale
        key = self._read(hm, ho, parts.key.kernel, parts.key.bias)
        value = self._read(hm, ho, parts.value.kernel, parts.value.bias)
        scores = tf.einsum("bqhd,bkhd->bhqk", query, key)
        with tf.name_scope(MASK_SCOPE):
            scores = scores + mask_bias
        context = tf.einsum("bhqk,bkhd->bqhd", tf.nn.softmax(scores, axis=-1), value)
        am, ao = self._write(context, parts.output.kernel, parts.output.bias, self.hidden)
        xm, xo = am + xm, ao + xo
        if not pre:
            xm, xo = self._layer_norm(parts.attention_layer_norm, xm, xo)
        hm, ho = self._layer_norm(parts.feedforward_layer_norm, xm, xo) if pre else (xm, xo)
        dense = parts.feedforward_intermediate
        inner = dense.activation(self._read(hm, ho, dense.kernel, dense.bias))
        output = parts.feedforward_output
        fm, fo = self._write(inner, output.kernel, output.bias, dense.units)
        xm, xo = fm + xm, fo + xo
        if not pre:
            xm, xo = self._layer_norm(parts.feedforward_layer_norm, xm, xo)
        return xm, xo

    def encode(self, token_ids, padding_mask, segment_ids):
        """The last encoder layer's output [B, L, H] as its (ordinary, outlier) parts."""
        parts = self.parts
        xm, xo = self._embed(token_ids, segment_ids)
        xm, xo = self._layer_norm(parts.embeddings.layer_norm, xm, xo)
        # An additive mask (mask_value on padded keys, 0 elsewhere), kept in float by its
        # name scope: XNNPACK runs the ADD, so the delegated graph is no longer cut at every
        # layer as it was by `where` (SELECT_V2, which XNNPACK refuses). Left to the
        # converter, the ADD was quantised, and the scores with it, between the float
        # matmul and the float softmax (CoLA's int8 MCC fell 1.2 points in stop 14).
        with tf.name_scope(MASK_SCOPE):
            padded = 1.0 - tf.cast(padding_mask, tf.float32)
            mask_bias = (padded * self.mask_value)[:, None, None, :]
        for layer in parts.layers:
            xm, xo = self._encoder_layer(layer, xm, xo, mask_bias)
        return xm, xo

    def token_logits(self, token_ids, padding_mask, segment_ids):
        """Per-token head logits [B, L, C] of a tagger or span extractor (`token_models`).

        The head's Dense reads the split stream as two matmuls, so the outlier channels
        never share an int8 tensor with the ordinary ones, up to the logits.
        """
        xm, xo = self.encode(token_ids, padding_mask, segment_ids)
        head = self.parts.head
        return self._read(xm, xo, head.kernel, head.bias)

    def __call__(self, token_ids, padding_mask, segment_ids):
        parts = self.parts
        xm, xo = self.encode(token_ids, padding_mask, segment_ids)
        cls = parts.cls_token_index
        pooler = parts.pooler
        pooled = pooler.activation(self._read(xm[:, cls:cls + 1], xo[:, cls:cls + 1],
                                              pooler.kernel, pooler.bias))[:, 0]
        return parts.head(pooled)

    def layer_norm_inputs(self, token_ids, padding_mask, segment_ids) -> list[np.ndarray]:
        """Every LayerNorm's input [B, L, H] (channels in model order), run eagerly."""
        self._record = []
        try:
            self.encode(token_ids, padding_mask, segment_ids)
            return self._record
        finally:
            self._record = None


def split_forward(model, outlier_channels: Sequence[int] | None,
                  attention_mask_value: float | None) -> SplitStreamForward | None:
    """A `SplitStreamForward` for `outlier_channels`, or None when they are None.

    Build it eagerly (it reads the weights once, which a traced function cannot). The split
    graph masks padded keys with a float value, so `outlier_channels` needs a float
    `attention_mask_value` (ValueError otherwise). Shared by the classifier and token exports.

    Example:
    ```python
    forward = split_forward(model, [99, 223], attention_mask_value=-30.0)
    ```
    """
    if outlier_channels is None:
        return None
    if attention_mask_value is None:
        raise ValueError("`outlier_channels` needs a float `attention_mask_value`.")
    return SplitStreamForward(model, outlier_channels, float(attention_mask_value))


def find_outlier_channels(model, features: dict, count: int = 8) -> list[int]:
    """The `count` hidden channels with the largest |value| at any LayerNorm input.

    `features` holds int32 [B, L] "token_ids", "padding_mask", "segment_ids" (real rows:
    the calibration examples); padded positions are ignored.

    Example:
    ```python
    find_outlier_channels(model, features, count=8)  # e.g. [62, 63, 99, 125, ...]
    ```
    """
    if count < 0:
        raise ValueError(f"Expected count >= 0. Received: count={count}.")
    if count == 0:
        return []
    forward = SplitStreamForward(model, [])
    real = np.asarray(features[PADDING_MASK]) > 0
    peak = np.zeros(forward.hidden)
    for start in range(0, real.shape[0], 32):
        rows = slice(start, start + 32)
        inputs = forward.layer_norm_inputs(
            *(tf.constant(np.asarray(features[k][rows], np.int32))
              for k in (TOKEN_IDS, PADDING_MASK, SEGMENT_IDS))
        )
        for tensor in inputs:
            peak = np.maximum(peak, np.abs(tensor[real[rows]]).max(0))
    return sorted(int(c) for c in np.argsort(-peak)[:count])
