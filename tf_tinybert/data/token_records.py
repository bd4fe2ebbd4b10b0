"""Per-token windows to TFRecords and back: the tagging and answer-span data sets.

`write_records` writes `tagging_record`s or `span_record`s atomically;
`load_token_records` reads them as padded batches of `(features, labels)`:
- features: `token_ids`, `segment_ids`, `padding_mask` int32 `[B, sequence_length]`, plus
  (with `with_offsets`, answer spans only) `token_starts`, `token_ends` int32 (-1 padded) and
  `example_id` string `[B]`, which evaluation needs to cut answers out of their contexts;
- labels: tag ids `[B, sequence_length]` (`IGNORE_INDEX` on padding) or answer positions
  `[B, 2]` (start, end).

Example:
```python
write_records("runs/ner/train.tfrecord", (tagging_record(w) for ws in windows for w in ws))
dataset = load_token_records(["runs/ner/train.tfrecord"], "token_classification",
                             batch_size=32, sequence_length=128)
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import tensorflow as tf

from tf_tinybert.atomic import atomic_path
from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION
from tf_tinybert.data import features
from tf_tinybert.data.squad import SpanWindow
from tf_tinybert.data.tagging import TagWindow


def tagging_record(window: TagWindow, text: str | None = None) -> bytes:
    """One tagging window as a serialized `tf.train.Example`.

    Example:
    ```python
    tagging_record(tag_windows([[7]], [1], 8, cls_id=2, sep_id=3, unk_id=1)[0])
    ```
    """
    return features.encode_token_example(
        window.token_ids, [0] * len(window.token_ids), tag_ids=window.tag_ids, text=text)


def span_record(window: SpanWindow, example_id: str) -> bytes:
    """One question window as a serialized `tf.train.Example` (positions, spans, id).

    Example:
    ```python
    span_record(question_windows(example, encoder, runtime, stride=128)[0], example.question_id)
    ```
    """
    return features.encode_token_example(
        window.token_ids, window.segment_ids, start_position=window.start_position,
        end_position=window.end_position, token_starts=window.token_starts,
        token_ends=window.token_ends, example_id=example_id)


def write_records(path: str | os.PathLike, records: Iterable[bytes]) -> int:
    """Write serialized records to one TFRecord file atomically; returns how many.

    Example:
    ```python
    count = write_records("train.tfrecord", records)
    ```
    """
    count = 0
    with atomic_path(path) as temporary:
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for record in records:
                writer.write(record)
                count += 1
    return count


def load_token_records(
    paths: Sequence[str], task: str, batch_size: int, sequence_length: int, pad_id: int = 0,
    with_offsets: bool = False, shuffle_buffer: int = 0, seed: int | None = None,
    weights: Sequence[float] | None = None,
) -> tf.data.Dataset:
    """Batches of `(features, labels)` padded to `sequence_length`; see the module docstring.

    Several `paths` are read one after the other, or, given `weights` (their record counts,
    say), drawn from at random in those proportions, so that a shuffle buffer smaller than
    the whole mixes them all the same.

    Example:
    ```python
    dataset = load_token_records(files, "question_answering", 32, 384, with_offsets=True)
    ```
    """
    spec = features.token_parse_spec(task, with_offsets=with_offsets)
    tagging = task == TOKEN_CLASSIFICATION

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        row = {key: tf.cast(tf.sparse.to_dense(parsed[key]), tf.int32)
               for key in (features.TOKEN_IDS, features.SEGMENT_IDS)}
        row[features.PADDING_MASK] = tf.ones_like(row[features.TOKEN_IDS])
        if task == QUESTION_ANSWERING and with_offsets:
            for key in (features.TOKEN_STARTS, features.TOKEN_ENDS):
                row[key] = tf.cast(tf.sparse.to_dense(parsed[key]), tf.int32)
            row[features.EXAMPLE_ID] = parsed[features.EXAMPLE_ID]
        if tagging:
            label = tf.cast(tf.sparse.to_dense(parsed[features.TAG_IDS]), tf.int32)
        else:
            label = tf.cast(tf.stack([parsed[features.START_POSITION],
                                      parsed[features.END_POSITION]]), tf.int32)
        return row, label

    if weights is not None and len(paths) > 1:
        if len(weights) != len(paths):
            raise ValueError(f"Expected one weight per path ({len(paths)}). "
                             f"Received: weights={list(weights)}")
        records = tf.data.Dataset.sample_from_datasets(
            [tf.data.TFRecordDataset([str(path)]) for path in paths],
            weights=[float(w) for w in weights], seed=seed, stop_on_empty_dataset=False)
    else:
        records = tf.data.TFRecordDataset([str(path) for path in paths])
    dataset = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    row_shapes, row_values = {}, {}
    for key, value_spec in dataset.element_spec[0].items():
        row_shapes[key] = [] if value_spec.shape.rank == 0 else [sequence_length]
        row_values[key] = (tf.constant("", tf.string) if value_spec.dtype == tf.string
                           else tf.constant(pad_id if key == features.TOKEN_IDS else (
                               -1 if key in (features.TOKEN_STARTS, features.TOKEN_ENDS) else 0),
                               tf.int32))
    label_shape = [sequence_length] if tagging else [2]
    label_value = tf.constant(features.IGNORE_INDEX if tagging else 0, tf.int32)
    return dataset.padded_batch(
        batch_size, padded_shapes=(row_shapes, label_shape),
        padding_values=(row_values, label_value)).prefetch(tf.data.AUTOTUNE)
