"""Prediction losses of the per-token task shapes, as pure functions of tensors.

- Tagging: soft cross-entropy between the student's and the teacher's tag distributions at
  every real (unpadded) word piece, and the hard cross-entropy against tags at the tagged
  pieces (label != `ignore_index`).
- Answer spans: soft cross-entropy between the start distributions over the real positions
  of a row, and the same for the end, averaged; the hard loss is the cross-entropy of the
  gold start and end positions (BERT's SQuAD loss).

Each returns a float32 scalar divided by its count (real pieces, tagged pieces or rows), or
by `normalizer` where given (the global count under `tf.distribute`). Soft losses are
multiplied by temperature squared, as `tf_tinybert.losses.soft_cross_entropy` is.

Example:
```python
loss = token_soft_cross_entropy(student_logits, teacher_logits, features["padding_mask"])
```
"""

from __future__ import annotations

import keras
from keras import ops

from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION, TOKEN_TASK_TYPES

IGNORE_INDEX = -100
# A large negative logit for padded positions: the softmax over a row then ignores them.
_MASKED_LOGIT = -1e4


def _float32(x):
    return ops.cast(x, "float32")


def _divide(total, count, normalizer):
    denominator = count if normalizer is None else _float32(normalizer)
    return total / ops.maximum(denominator, 1.0)


def token_soft_cross_entropy(student_logits, teacher_logits, padding_mask,
                             temperature: float = 1.0, normalizer=None):
    """Mean over real pieces of -sum_c p_teacher(c) log p_student(c), times T^2.

    Args:
        student_logits, teacher_logits: [batch, seq, classes].
        padding_mask: [batch, seq], 1 for real pieces.

    Example:
    ```python
    token_soft_cross_entropy(student(x), teacher(x), x["padding_mask"], temperature=2.0)
    ```
    """
    t = float(temperature)
    teacher = ops.softmax(_float32(teacher_logits) / t, axis=-1)
    student = ops.log_softmax(_float32(student_logits) / t, axis=-1)
    mask = _float32(padding_mask)
    per_token = -ops.sum(teacher * student, axis=-1) * mask
    return _divide(ops.sum(per_token), ops.sum(mask), normalizer) * (t * t)


def token_hard_cross_entropy(logits, labels, ignore_index: int = IGNORE_INDEX, normalizer=None):
    """Mean cross-entropy of the tag logits against `labels` [batch, seq] at tagged pieces.

    Example:
    ```python
    token_hard_cross_entropy(logits, y)  # y holds -100 where a piece carries no tag
    ```
    """
    labels = ops.cast(labels, "int32")
    keep = _float32(ops.not_equal(labels, ignore_index))
    safe = ops.where(ops.not_equal(labels, ignore_index), labels, ops.zeros_like(labels))
    log_probabilities = ops.log_softmax(_float32(logits), axis=-1)
    picked = ops.sum(ops.one_hot(safe, log_probabilities.shape[-1]) * log_probabilities, axis=-1)
    return _divide(-ops.sum(picked * keep), ops.sum(keep), normalizer)


def _masked(logits, padding_mask):
    return ops.where(ops.greater(padding_mask, 0), _float32(logits), _MASKED_LOGIT)


def span_soft_cross_entropy(student_logits, teacher_logits, padding_mask,
                            temperature: float = 1.0, normalizer=None):
    """Soft cross-entropy of the start and of the end distributions over each row's real
    positions, averaged over the two and over rows, times T^2.

    Args:
        student_logits, teacher_logits: [batch, seq, 2] (start, end).
        padding_mask: [batch, seq].

    Example:
    ```python
    span_soft_cross_entropy(student(x), teacher(x), x["padding_mask"])
    ```
    """
    t = float(temperature)
    mask = padding_mask[:, :, None]
    teacher = ops.softmax(_masked(teacher_logits, mask) / t, axis=1)
    student = ops.log_softmax(_masked(student_logits, mask) / t, axis=1)
    per_row = -ops.sum(teacher * student, axis=(1, 2)) / 2.0
    count = _float32(ops.shape(student_logits)[0])
    return _divide(ops.sum(per_row), count, normalizer) * (t * t)


def span_hard_cross_entropy(logits, positions, padding_mask, normalizer=None):
    """Mean over rows of (CE(start) + CE(end)) / 2, `positions` [batch, 2] (start, end).

    A row whose positions are negative (an unlabeled transfer question,
    `tf_tinybert.data.squad.UNLABELED`) adds nothing and is not counted: the mean is over
    the labeled rows (or `normalizer`, their count over all replicas).

    Example:
    ```python
    span_hard_cross_entropy(logits, y, x["padding_mask"])  # y[:, 0] start, y[:, 1] end
    ```
    """
    log_probabilities = ops.log_softmax(_masked(logits, padding_mask[:, :, None]), axis=1)
    weight = _labeled(positions)
    safe = ops.where(weight[:, None] > 0, ops.cast(positions, "int32"),
                     ops.zeros_like(positions, "int32"))
    one_hot = ops.one_hot(safe, ops.shape(logits)[1], axis=1)
    per_row = -ops.sum(one_hot * log_probabilities, axis=(1, 2)) / 2.0
    return _divide(ops.sum(per_row * weight), ops.sum(weight), normalizer)


def _labeled(positions):
    # 1.0 for a row with answer positions (start >= 0), 0.0 for an unlabeled transfer row.
    return _float32(ops.greater_equal(positions[:, 0], 0))


def labeled_rows(positions):
    """How many rows of answer `positions` [batch, 2] are labeled (start >= 0), as float32.

    Example:
    ```python
    labeled_rows(np.array([[3, 5], [-1, -1]]))  # 1.0
    ```
    """
    return ops.sum(_labeled(positions))


def label_loss(task: str):
    """The Keras loss that trains a per-token model on labels alone (`model.compile(loss=...)`):
    fine-tuning a teacher, or the labels-only baseline student.

    - "token_classification": sparse cross-entropy over tagged pieces (`y` [batch, seq],
      `IGNORE_INDEX` elsewhere);
    - "question_answering": mean of the start and end cross-entropies (`y` [batch, 2]).

    Example:
    ```python
    tagger.compile(optimizer=keras.optimizers.AdamW(5e-5), loss=label_loss("token_classification"))
    ```
    """
    if task == TOKEN_CLASSIFICATION:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_INDEX)
    if task == QUESTION_ANSWERING:
        return span_label_loss
    raise ValueError(f"Expected `task` to be one of {TOKEN_TASK_TYPES}. Received: task={task!r}")


def span_label_loss(y_true, y_pred):
    """Per-row (CE(start) + CE(end)) / 2 of `y_pred` [batch, seq, 2] against `y_true` [batch, 2].

    Example:
    ```python
    extractor.compile(optimizer="adamw", loss=span_label_loss)
    ```
    """
    log_probabilities = ops.log_softmax(_float32(y_pred), axis=1)
    one_hot = ops.one_hot(ops.cast(y_true, "int32"), ops.shape(y_pred)[1], axis=1)
    return -ops.sum(one_hot * log_probabilities, axis=(1, 2)) / 2.0
