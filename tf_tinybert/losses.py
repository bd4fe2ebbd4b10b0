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


class RelationHeadsError(ValueError):
    """The relation-head count does not divide a model's hidden width (see `relation_kl`)."""


def check_relation_heads(relation_heads: int, widths: dict) -> None:
    """Raise `RelationHeadsError` unless `relation_heads` >= 1 divides every named width.

    Example:
    ```python
    check_relation_heads(4, {"student": 128, "teacher": 384})  # fine
    check_relation_heads(5, {"student": 128, "teacher": 384})  # RelationHeadsError
    ```
    """
    if isinstance(relation_heads, bool) or not isinstance(relation_heads, int) \
            or relation_heads < 1:
        raise RelationHeadsError(
            f"Expected `relation_heads` to be a positive integer. "
            f"Received: relation_heads={relation_heads!r}"
        )
    bad = {role: width for role, width in widths.items() if width % relation_heads}
    if bad:
        divisors = sorted(d for d in range(1, min(widths.values()) + 1)
                          if all(width % d == 0 for width in widths.values()))
        raise RelationHeadsError(
            f"Expected `relation_heads` to divide the hidden size of every model "
            f"{dict(widths)}, but {relation_heads} does not divide "
            + ", ".join(f"the {role}'s {width}" for role, width in bad.items())
            + f". Received: relation_heads={relation_heads}; common divisors: {divisors}."
        )


def relation_entry_count(padding_mask, relation_heads: int):
    """Number of (relation head, real query) rows of a self-attention relation, as float32."""
    return token_count(padding_mask) * float(relation_heads)


def _relation_log_probabilities(vectors, keep, relation_heads: int):
    """Log-softmax of the scaled dot products of `vectors` split into relation heads.

    [B, L, width] -> [B, relation_heads, L, L]; padded keys get probability 0.
    """
    shape = ops.shape(vectors)
    width = int(vectors.shape[-1])
    size = width // relation_heads
    split = ops.reshape(_float32(vectors), (shape[0], shape[1], relation_heads, size))
    split = ops.transpose(split, (0, 2, 1, 3))  # [B, R, L, size]
    scores = ops.einsum("brqd,brkd->brqk", split, split) / (float(size) ** 0.5)
    scores = ops.where(keep, scores, -1e9)
    return ops.log_softmax(scores, axis=-1)


def relation_kl(student_vectors, teacher_vectors, padding_mask, relation_heads: int,
                normalizer=None):
    """KL divergence between teacher and student self-attention relations (MiniLM-v2, eq. 8).

    A relation of query (key, value) vectors X [batch, seq, width] is, per relation head r,
    softmax(X_r X_r^T / sqrt(width / R)) over the real keys, with X_r the r-th of R equal
    slices of the width. Teacher and student may differ in width and in head count: only
    R must divide both widths. Returns sum over real queries and relation heads of
    KL(teacher || student), divided by their count (see `relation_entry_count`).

    Args:
        student_vectors: [batch, seq, student_width], e.g. a layer's query projections with
            the attention heads concatenated.
        teacher_vectors: [batch, seq, teacher_width].
        padding_mask: [batch, seq], 1 for real tokens.
        relation_heads: R, a divisor of both widths.
        normalizer: optional number of (relation head, real query) rows to divide by.

    Example:
    ```python
    loss = relation_kl(student_query, teacher_query, features["padding_mask"], relation_heads=4)
    ```
    """
    check_relation_heads(relation_heads, {"student": int(student_vectors.shape[-1]),
                                          "teacher": int(teacher_vectors.shape[-1])})
    mask = _float32(padding_mask)
    keep = ops.greater(mask, 0.0)[:, None, None, :]
    teacher_log = _relation_log_probabilities(teacher_vectors, keep, int(relation_heads))
    student_log = _relation_log_probabilities(student_vectors, keep, int(relation_heads))
    pair_mask = mask[:, None, :, None] * mask[:, None, None, :]
    divergence = ops.exp(teacher_log) * (teacher_log - student_log) * pair_mask
    return _divide(ops.sum(divergence), relation_entry_count(padding_mask, relation_heads),
                   normalizer)
