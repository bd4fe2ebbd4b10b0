"""cache_teacher: store the teacher's logits in every record, so the prediction stage skips it."""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf

from tf_tinybert.data import features
from tf_tinybert.data.load import check_compatible
from tf_tinybert.data.manifest import (
    Manifest,
    read_manifest,
    read_tokenizer,
    write_manifest,
    write_vocabulary,
)
from tf_tinybert.data.shards import ShardWriter, claim_output_dir, read_records, shard_paths
from tf_tinybert.fingerprints import weights_fingerprint

__all__ = ["cache_teacher"]


def _resolve_teacher(teacher):
    """(classifier, name) of a loaded teacher model."""
    if not isinstance(teacher, keras.Model):
        raise ValueError(
            "Expected `teacher` to be a loaded keras Model (a fine-tuned classifier). Received: "
            f"{type(teacher).__name__}. Load a source with `tf_tinybert.teachers.load_teacher`."
        )
    return teacher, teacher.name


def cache_teacher(
    data_dir: str | os.PathLike,
    teacher,
    output_dir: str | os.PathLike,
    batch_size: int = 64,
    overwrite: bool = False,
    verbose: int = 1,
) -> Manifest:
    """Copies a prepared directory, adding the teacher's logits to every record.

    `load` then yields them as `features["teacher_logits"]` (float32 [B, C]), and the
    Distiller's prediction stage uses them instead of running the teacher. Shards, row
    order and everything else are kept; the manifest records `teacher_logits` (with the
    teacher's `weights_fingerprint`, so that a recipe can tell when its teacher changed).

    Args:
        data_dir: a prepared directory.
        teacher: the fine-tuned teacher classifier (token-id inputs); load a source with
            `tf_tinybert.teachers.load_teacher`.
        output_dir: the directory to write (not `data_dir`).
        batch_size: rows per teacher call.
        overwrite: replace a data set already in `output_dir`.
        verbose: 1 shows a progress bar.

    Returns:
        The output `Manifest`.

    Example:
    ```python
    import tf_tinybert as tt

    tt.data.cache_teacher("runs/sst2_aug", teacher, "runs/sst2_aug_cached")
    dataset = tt.data.load("runs/sst2_aug_cached")   # features carry "teacher_logits"
    ```
    """
    manifest = read_manifest(data_dir)
    paths = shard_paths(data_dir, manifest)
    teacher, name = _resolve_teacher(teacher)
    check_compatible(manifest, model=teacher, where=os.fspath(data_dir))
    spec = features.parse_spec("unlabeled")
    pad_id = manifest.tokenizer.get("pad_token_id", 0)

    @tf.function(reduce_retracing=True)
    def logits_of(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        inputs = features.parsed_ids(parsed)
        inputs = {
            key: value.to_tensor(default_value=pad_id if key == features.TOKEN_IDS else 0)
            for key, value in inputs.items()
        }
        return tf.cast(teacher({key: inputs[key] for key in features.MODEL_INPUTS}, training=False), tf.float32)

    directory = claim_output_dir(output_dir, overwrite, inputs=[data_dir])
    writer = ShardWriter(directory, shard_size=max(shard.examples for shard in manifest.shards))
    progress = keras.utils.Progbar(manifest.num_examples, verbose=verbose, unit_name="row")
    done, num_classes = 0, None
    try:
        for path in paths:
            for batch in read_records(path, batch_size):
                logits = logits_of(tf.constant(batch)).numpy()
                num_classes = logits.shape[-1]
                for record, row in zip(batch, logits):
                    writer.write(features.add_teacher_logits(record, row.tolist()))
                done += len(batch)
                progress.update(done)
            writer.close()  # one output shard per input shard
        result = dataclasses.replace(
            manifest,
            shards=tuple(writer.close()),
            source={**manifest.source, "cached_from": os.path.abspath(os.fspath(data_dir))},
            teacher_logits={"num_classes": int(num_classes), "teacher": name,
                            "teacher_weights": weights_fingerprint(teacher)},
        )
        write_vocabulary(directory, read_tokenizer(data_dir))
        write_manifest(directory, result)
    except BaseException:
        writer.abort()
        raise
    return result
