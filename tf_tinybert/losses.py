"""The TinyBERT losses as pure functions of tensors (no state, nothing of ours imported).

Every loss returns a float32 scalar. Positions where `padding_mask` is 0 never contribute, and
means are taken over real positions only, so the same batch padded to 64 or to 128 tokens
gives the same loss (the reference implementation averages over padding too).

`normalizer` lets a caller divide by a count taken over a larger batch than the one passed
(the Distiller uses the global batch under `tf.distribute`); by default each function divides
by the count of real entries in its own inputs.
"""

from __future__ import annotations

from keras import ops


def _float32(x):
    return ops.cast(x, "float32")


def _divide(total, count, normalizer):
    denominator = count if normalizer is None else _float32(normalizer)
    return total / ops.maximum(denominator, 1.0)


def token_count(padding_mask):
    """Number of real (unpadded) tokens in a batch, as float32."""
    return ops.sum(_float32(padding_mask))


def attention_entry_count(padding_mask, num_heads: int):
    """Number of (head, query, key) entries between real tokens, as float32."""
    lengths = ops.sum(_float32(padding_mask), axis=-1)
    return ops.sum(lengths * lengths) * float(num_heads)


def hidden_mse(student_hidden, teacher_hidden, padding_mask, normalizer=None):
    """Mean squared error between hidden states over real tokens (paper eq. 8 and 9).

    Args:
        student_hidden: [batch, seq, hidden], already projected to the teacher's width.
        teacher_hidden: [batch, seq, hidden].
        padding_mask: [batch, seq], 1 for real tokens, 0 for padding.
        normalizer: optional number of real tokens to divide by (default: those here).

    Example:
    ```python
    loss = hidden_mse(student_hidden, teacher_hidden, features["padding_mask"])
    ```
    """
    mask = _float32(padding_mask)[:, :, None]
    squared = ops.square(_float32(student_hidden) - _float32(teacher_hidden)) * mask
    width = float(student_hidden.shape[-1])
    count = None if normalizer is None else _float32(normalizer) * width
    return _divide(ops.sum(squared), token_count(padding_mask) * width, count)


def attention_mse(student_scores, teacher_scores, padding_mask, normalizer=None):
    """Mean squared error between pre-softmax attention scores (paper eq. 7).

    Only entries whose query and key are both real tokens count: masked entries carry no
    signal and, in models that add the mask to the scores, huge negative values.

    Args:
        student_scores: [batch, heads, seq, seq] scores QK^T / sqrt(d) before the softmax.
        teacher_scores: the same shape; heads must match (TinyBERT's attention loss compares
            head by head).
        padding_mask: [batch, seq].
        normalizer: optional number of valid entries to divide by (see
            `attention_entry_count`).

    Example:
    ```python
    loss = attention_mse(student_scores, teacher_scores, features["padding_mask"])
    ```
    """
    mask = _float32(padding_mask)
    pair_mask = mask[:, None, :, None] * mask[:, None, None, :]
    squared = ops.square(_float32(student_scores) - _float32(teacher_scores)) * pair_mask
    heads = int(student_scores.shape[1])
    return _divide(ops.sum(squared), attention_entry_count(padding_mask, heads), normalizer)


def soft_cross_entropy(student_logits, teacher_logits, temperature: float = 1.0,
                       normalizer=None):
    """Cross-entropy of the student's softened predictions against the teacher's (eq. 10).

    Multiplied by temperature squared (Hinton et al., 2015) so that the gradients keep their
    size as the temperature changes; with TinyBERT's temperature of 1 this is the paper's loss.

    Example:
    ```python
    loss = soft_cross_entropy(student_logits, teacher_logits, temperature=2.0)
    ```
    """
    t = float(temperature)
    teacher_probabilities = ops.softmax(_float32(teacher_logits) / t, axis=-1)
    student_log_probabilities = ops.log_softmax(_float32(student_logits) / t, axis=-1)
    per_example = -ops.sum(teacher_probabilities * student_log_probabilities, axis=-1)
    count = _float32(ops.shape(student_logits)[0])
    return _divide(ops.sum(per_example), count, normalizer) * (t * t)


def prediction_mse(student_predictions, teacher_predictions, normalizer=None):
    """Mean squared error between predictions, the prediction loss for regression tasks.

    Example:
    ```python
    loss = prediction_mse(student_scores, teacher_scores)  # STS-B
    ```
    """
    squared = ops.square(_float32(student_predictions) - _float32(teacher_predictions))
    per_example = ops.sum(squared, axis=-1)
    count = _float32(ops.shape(student_predictions)[0])
    return _divide(ops.sum(per_example), count, normalizer)


def hard_cross_entropy(logits, labels, normalizer=None):
    """Cross-entropy of the student's logits against integer labels (the ground truth).

    Example:
    ```python
    loss = hard_cross_entropy(student_logits, labels)
    ```
    """
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    log_probabilities = ops.log_softmax(_float32(logits), axis=-1)
    num_classes = log_probabilities.shape[-1]
    picked = ops.sum(ops.one_hot(labels, num_classes) * log_probabilities, axis=-1)
    count = _float32(ops.shape(logits)[0])
    return _divide(-ops.sum(picked), count, normalizer)
