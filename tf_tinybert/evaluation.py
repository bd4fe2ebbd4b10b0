"""Evaluation over labeled datasets: batch counts, predictions with their labels, task metrics.

A leaf of the training stack: `callbacks`, `resume` and `stage` import it; it imports only
`tf_tinybert.metrics` and the feature keys of `tf_tinybert.data.features`.

Example:
```python
logits, labels = predict_with_labels(student, dev_ds)
evaluate_classifier(student, dev_ds, metrics=("accuracy", "f1"))  # {'accuracy': 0.9, ...}
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_tinybert.data.features import MODEL_INPUTS
from tf_tinybert.metrics import compute_metrics


def steps_in(dataset: tf.data.Dataset) -> int:
    """Batches in one pass over a finite dataset (counted by iterating when unknown).

    Example:
    ```python
    steps_in(tf.data.Dataset.range(20).batch(8))  # 3
    ```
    """
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The dataset repeats forever; give it a finite length.")
    return int(dataset.reduce(0, lambda count, _: count + 1))


def default_metrics(num_classes: int) -> tuple[str, ...]:
    """The metrics to select a model by when no task names them: Pearson and Spearman for
    regression (`num_classes == 1`), accuracy otherwise.

    Example:
    ```python
    default_metrics(1)  # ('pearson', 'spearman')
    ```
    """
    return ("pearson", "spearman") if num_classes == 1 else ("accuracy",)


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
