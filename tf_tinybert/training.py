"""Training building blocks shared by the recipe and the CLI: strategies, evaluation, stages.

Example:
```python
strategy = make_strategy("default")
with strategy.scope():
    student = build_student("bert_4l_128h", num_classes=2)
history = train_on_labels(student, train_ds, dev_ds, epochs=3, learning_rate=1e-4)
scores = evaluate_classifier(student, dev_ds, metrics=("accuracy",))
```
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_tinybert.metrics import compute_metrics
from tf_tinybert.optimizers import adamw

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A `tf.distribute` strategy by name: default, mirrored, multiworker or tpu.

    "multiworker" reads the cluster from the TF_CONFIG environment variable (and fails naming
    a worker that does not answer, see `tf_tinybert.distributed`) and "tpu" connects
    to the TPU of the current Cloud TPU VM or Colab runtime, as TensorFlow documents.

    Example:
    ```python
    with make_strategy("mirrored").scope():
        student = build_student("tinybert_4l_312h", num_classes=2)
    ```
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        from tf_tinybert.distributed import multiworker_strategy

        return multiworker_strategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Expected `strategy` to be one of {STRATEGIES}. Received: strategy={name!r}")


def steps_in(dataset: tf.data.Dataset) -> int:
    """Batches in one pass over a finite dataset (counted by iterating when unknown)."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The dataset repeats forever; give it a finite length.")
    return int(dataset.reduce(0, lambda count, _: count + 1))


def predict_with_labels(model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Run `model` over `(features, labels)` batches; return (predictions, labels) in order.

    Example:
    ```python
    logits, labels = predict_with_labels(student, dev_ds)
    ```
    """
    outputs, labels = [], []
    for features, batch_labels in dataset:
        # Keras keeps one compiled predict function per model, relaxed to varying lengths.
        inputs = {name: features[name] for name in MODEL_INPUTS}
        outputs.append(np.asarray(model.predict_on_batch(inputs), dtype="float32"))
        labels.append(np.asarray(batch_labels))
    if not outputs:
        raise ValueError("The evaluation dataset is empty.")
    return np.concatenate(outputs), np.concatenate(labels)


def evaluate_classifier(model, dataset: tf.data.Dataset, metrics=("accuracy",)) -> dict:
    """Task metrics (`tf_tinybert.metrics`) of a classifier over a labeled dataset.

    Example:
    ```python
    evaluate_classifier(student, dev_ds, metrics=("accuracy", "f1"))  # {'accuracy': 0.9, ...}
    ```
    """
    predictions, labels = predict_with_labels(model, dataset)
    return compute_metrics(list(metrics), predictions, labels)


def compile_on_labels(model, total_steps: int, learning_rate: float = 5e-5, warmup: float = 0.1,
                      weight_decay: float = 0.01, jit_compile: bool = False) -> None:
    """Compile a classifier for training on labels: AdamW with warm-up and linear decay,
    cross-entropy on logits (MSE for regression, `num_classes == 1`), accuracy.

    Example:
    ```python
    compile_on_labels(student, total_steps=3 * steps_in(train_ds), learning_rate=1e-4)
    ```
    """
    regression = model.num_classes == 1
    model.compile(
        optimizer=adamw(learning_rate, max(1, int(total_steps)), warmup, weight_decay),
        loss=(keras.losses.MeanSquaredError() if regression
              else keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        metrics=[] if regression else [keras.metrics.SparseCategoricalAccuracy("accuracy")],
        jit_compile=jit_compile,
    )


def fit_stage(
    model,
    train_data: tf.data.Dataset,
    epochs: int,
    folder,
    stage: str,
    training=None,
    validation_data: tf.data.Dataset | None = None,
    metrics=("accuracy",),
    keep_best_of=None,
    verbose="auto",
) -> keras.callbacks.History:
    """Fit a compiled model as one resumable stage of a run kept in `folder`.

    Backs up every `training.checkpoint_every_steps` steps under `folder/backup/<stage>` and
    resumes from there when run again after a crash (`tf_tinybert.resume.fit_resumable`); stops
    on a NaN loss naming the step; logs CSV and TensorBoard under `folder/logs`; with
    `validation_data`, keeps the best model by the first of `metrics` at
    `folder/best_<stage>.keras` (`keep_best_of(model)` picks what to save, e.g. the student of
    a Distiller).

    Example:
    ```python
    compile_on_labels(student, total_steps=2 * steps_in(train_ds))
    fit_stage(student, train_ds, 2, "runs/x", "baseline", validation_data=dev_ds)
    ```
    """
    import pathlib

    from tf_tinybert.callbacks import stage_callbacks
    from tf_tinybert.resume import fit_resumable

    folder = pathlib.Path(folder)
    every = None if training is None else training.checkpoint_every_steps
    callbacks = stage_callbacks(folder, stage, training, dev_data=validation_data,
                                metrics=tuple(metrics), target=keep_best_of)
    return fit_resumable(model, train_data, epochs=epochs, backup_dir=folder / "backup" / stage,
                         checkpoint_every=every, validation_data=validation_data,
                         callbacks=callbacks, verbose=verbose)


def train_on_labels(
    model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None = None,
    epochs: int = 3,
    learning_rate: float = 5e-5,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    callbacks=(),
    jit_compile: bool = False,
    verbose="auto",
) -> keras.callbacks.History:
    """Train a classifier on its labels alone with a plain `fit` (see `compile_on_labels`).

    Example:
    ```python
    train_on_labels(student, train_ds, dev_ds, epochs=3, learning_rate=1e-4)
    ```
    """
    if epochs < 1:
        raise ValueError(f"Expected `epochs` >= 1. Received: epochs={epochs}")
    compile_on_labels(model, epochs * steps_in(train_data), learning_rate, warmup, weight_decay,
                      jit_compile)
    return model.fit(train_data, validation_data=validation_data, epochs=epochs,
                     callbacks=list(callbacks), verbose=verbose)
