"""The one TFRecord layout: `prepare`, `augment` and `cache_teacher` write it, `load` reads it.

Each record is a `tf.train.Example` holding one row, unpadded:
- `token_ids`, `segment_ids`: int64 lists of the same length n <= sequence_length
  (`[CLS] a [SEP] b [SEP]`, truncated round-robin); `padding_mask` is not stored, it is
  n ones, and `load` rebuilds it while padding each batch;
- `label`: one int64 (class index) or one float (regression); absent when unlabeled;
- `text`, `text_pair`: the UTF-8 source text (`augment` needs it); `text_pair` only for
  pairs;
- `teacher_logits`: C floats, written by `cache_teacher`.
"""

from __future__ import annotations

import tensorflow as tf

from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION, TOKEN_TASK_TYPES

TOKEN_IDS = "token_ids"
SEGMENT_IDS = "segment_ids"
PADDING_MASK = "padding_mask"
LABEL = "label"
TEXT = "text"
TEXT_PAIR = "text_pair"
TEACHER_LOGITS = "teacher_logits"
# What a model takes (keras-hub's BertBackbone inputs, padded by `load`).
MODEL_INPUTS = (TOKEN_IDS, SEGMENT_IDS, PADDING_MASK)

# Token-level tasks (`encode_token_example`). Tagging: one tag id per word piece, IGNORE_INDEX
# on [CLS], [SEP] and every piece after a word's first. Answer spans: the answer's first and
# last piece (both 0, [CLS], where the window does not hold it), each piece's [start, end)
# character span in the context (-1 for question and special tokens), the question id.
TAG_IDS = "tag_ids"
IGNORE_INDEX = -100
START_POSITION = "start_position"
END_POSITION = "end_position"
TOKEN_STARTS = "token_starts"
TOKEN_ENDS = "token_ends"
EXAMPLE_ID = "example_id"


def _int64(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _float(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _bytes(value: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))


def encode_example(
    token_ids,
    segment_ids,
    label=None,
    text: str | None = None,
    text_pair: str | None = None,
    teacher_logits=None,
) -> bytes:
    """Serialises one row (unpadded id lists) as a `tf.train.Example`."""
    feature = {TOKEN_IDS: _int64(token_ids), SEGMENT_IDS: _int64(segment_ids)}
    if label is not None:
        feature[LABEL] = _float([label]) if isinstance(label, float) else _int64([label])
    if text is not None:
        feature[TEXT] = _bytes(text)
    if text_pair is not None:
        feature[TEXT_PAIR] = _bytes(text_pair)
    if teacher_logits is not None:
        feature[TEACHER_LOGITS] = _float(teacher_logits)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def add_teacher_logits(serialized: bytes, logits) -> bytes:
    """Returns the record with its `teacher_logits` feature set to `logits`."""
    example = tf.train.Example.FromString(serialized)
    example.features.feature[TEACHER_LOGITS].CopyFrom(_float(logits))
    return example.SerializeToString()


def decode_row(serialized: bytes) -> tuple[str, str | None, int | float | None]:
    """The (text, text_pair, label) of one record; None for what it does not hold."""
    feature = tf.train.Example.FromString(serialized).features.feature
    if TEXT not in feature:
        raise ValueError("record has no 'text' feature (written by an older prepare?)")
    text = feature[TEXT].bytes_list.value[0].decode("utf-8")
    pair = feature[TEXT_PAIR].bytes_list.value[0].decode("utf-8") if TEXT_PAIR in feature else None
    label = None
    if LABEL in feature:
        values = feature[LABEL]
        label = values.int64_list.value[0] if values.int64_list.value else float(values.float_list.value[0])
    return text, pair, label


def without_teacher_logits(serialized: bytes) -> bytes:
    """The record minus any cached teacher logits (they belong to the unaugmented data)."""
    example = tf.train.Example.FromString(serialized)
    if TEACHER_LOGITS not in example.features.feature:
        return serialized
    del example.features.feature[TEACHER_LOGITS]
    return example.SerializeToString()


def parse_spec(
    task: str, num_teacher_logits: int | None = None, with_text: bool = False,
    with_pair: bool = False,
) -> dict:
    """The `tf.io.parse_example` spec for records of a data set with this task."""
    spec = {
        TOKEN_IDS: tf.io.VarLenFeature(tf.int64),
        SEGMENT_IDS: tf.io.VarLenFeature(tf.int64),
    }
    if task == "classification":
        spec[LABEL] = tf.io.FixedLenFeature([], tf.int64)
    elif task == "regression":
        spec[LABEL] = tf.io.FixedLenFeature([], tf.float32)
    if num_teacher_logits:
        spec[TEACHER_LOGITS] = tf.io.FixedLenFeature([num_teacher_logits], tf.float32)
    if with_text:
        spec[TEXT] = tf.io.FixedLenFeature([], tf.string)
        if with_pair:
            spec[TEXT_PAIR] = tf.io.FixedLenFeature([], tf.string)
    return spec


def parsed_ids(parsed: dict) -> dict:
    """Ragged int32 `token_ids`, `segment_ids` and an all-ones `padding_mask` from parsed records.

    Records store ids unpadded; the mask of real tokens is rebuilt here and padded with the ids.
    """
    rows = {key: tf.cast(tf.RaggedTensor.from_sparse(parsed[key]), tf.int32)
            for key in (TOKEN_IDS, SEGMENT_IDS)}
    rows[PADDING_MASK] = tf.ones_like(rows[TOKEN_IDS])
    return rows


def encode_token_example(
    token_ids,
    segment_ids,
    *,
    tag_ids=None,
    start_position: int | None = None,
    end_position: int | None = None,
    token_starts=None,
    token_ends=None,
    example_id: str | None = None,
    text: str | None = None,
    text_pair: str | None = None,
) -> bytes:
    """Serialises one window of a tagging or answer-span row (unpadded lists).

    Example:
    ```python
    encode_token_example([2, 7, 3], [0, 0, 0], tag_ids=[IGNORE_INDEX, 1, IGNORE_INDEX])
    ```
    """
    feature = {TOKEN_IDS: _int64(token_ids), SEGMENT_IDS: _int64(segment_ids)}
    if tag_ids is not None:
        feature[TAG_IDS] = _int64(tag_ids)
    if start_position is not None:
        feature[START_POSITION] = _int64([start_position])
        feature[END_POSITION] = _int64([end_position])
    if token_starts is not None:
        feature[TOKEN_STARTS] = _int64(token_starts)
        feature[TOKEN_ENDS] = _int64(token_ends)
    for key, value in ((EXAMPLE_ID, example_id), (TEXT, text), (TEXT_PAIR, text_pair)):
        if value is not None:
            feature[key] = _bytes(value)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def token_parse_spec(task: str, with_offsets: bool = False) -> dict:
    """The `tf.io.parse_example` spec for `encode_token_example` records of `task`
    ("token_classification" or "question_answering"); `with_offsets` adds the character
    spans and the question id (answer spans only).

    Example:
    ```python
    tf.io.parse_single_example(record, token_parse_spec("token_classification"))
    ```
    """
    spec = {
        TOKEN_IDS: tf.io.VarLenFeature(tf.int64),
        SEGMENT_IDS: tf.io.VarLenFeature(tf.int64),
    }
    if task == TOKEN_CLASSIFICATION:
        spec[TAG_IDS] = tf.io.VarLenFeature(tf.int64)
    elif task == QUESTION_ANSWERING:
        spec[START_POSITION] = tf.io.FixedLenFeature([], tf.int64)
        spec[END_POSITION] = tf.io.FixedLenFeature([], tf.int64)
        if with_offsets:
            spec[TOKEN_STARTS] = tf.io.VarLenFeature(tf.int64)
            spec[TOKEN_ENDS] = tf.io.VarLenFeature(tf.int64)
            spec[EXAMPLE_ID] = tf.io.FixedLenFeature([], tf.string)
    else:
        raise ValueError(f"Expected `task` to be one of {TOKEN_TASK_TYPES}. Received: task={task!r}")
    return spec
