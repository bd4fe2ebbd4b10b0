"""GLUE metrics in plain numpy: accuracy, F1, Matthews correlation, Pearson and Spearman.

Each metric takes `(predictions, labels)` and returns a Python float. For classification,
`predictions` may be class ids `[N]` or scores `[N, C]` (logits or probabilities; the argmax
is taken). For regression, `[N]` or `[N, 1]`. Which metrics a task reports is the task's
business: `configs/tasks/<task>.yaml`'s `metrics` (`tf_tinybert.config.load_task(name).metrics`).

Example:
```python
from tf_tinybert import metrics

metrics.compute_metrics(["accuracy", "f1"], [1, 0, 1, 1], [1, 0, 0, 1])
# {'accuracy': 0.75, 'f1': 0.8}
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

REGRESSION_METRICS = ("pearson", "spearman")


def _column(values: np.ndarray) -> np.ndarray:
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def _class_ids(predictions, labels, metric: str) -> tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        predictions = predictions.argmax(axis=1)
    return _check_pair(_column(predictions), _column(np.asarray(labels)), metric)


def _values(predictions, labels, metric: str) -> tuple[np.ndarray, np.ndarray]:
    predictions = _column(np.asarray(predictions, dtype="float64"))
    return _check_pair(predictions, _column(np.asarray(labels, dtype="float64")), metric)


def _check_pair(predictions, labels, metric):
    if predictions.ndim != 1 or labels.ndim != 1 or predictions.shape != labels.shape:
        raise ValueError(
            f"`{metric}` expects predictions [N] (or [N, C] scores) and labels [N] of the same "
            f"length. Received: predictions shape {predictions.shape}, labels shape "
            f"{labels.shape}."
        )
    if predictions.shape[0] == 0:
        raise ValueError(f"`{metric}` needs at least one example. Received: 0 predictions.")
    return predictions, labels


def accuracy(predictions, labels) -> float:
    """Fraction of predictions equal to the labels.

    Example:
    ```python
    accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1])  # 0.5
    ```
    """
    predictions, labels = _class_ids(predictions, labels, "accuracy")
    return float(np.mean(predictions == labels))


def f1(predictions, labels, positive: int = 1) -> float:
    """Binary F1 of the `positive` class (GLUE's MRPC and QQP use class 1).

    0.0 when there are no true positives (including when neither side has a positive).

    Example:
    ```python
    f1([1, 0, 1, 1], [1, 0, 0, 1])  # precision 2/3, recall 1 -> 0.8
    ```
    """
    predictions, labels = _class_ids(predictions, labels, "f1")
    predicted = predictions == positive
    actual = labels == positive
    true_positives = np.sum(predicted & actual)
    if true_positives == 0:
        return 0.0
    # F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall.
    return float(2 * true_positives / (np.sum(predicted) + np.sum(actual)))


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation coefficient (GLUE's CoLA metric), multi-class (Gorodkin's R_K).

    Returns 0.0 when it is undefined (all predictions or all labels in one class), as
    scikit-learn does.

    Example:
    ```python
    matthews_corrcoef([1, 1, 0, 0], [1, 0, 0, 0])  # 0.577...
    ```
    """
    predictions, labels = _class_ids(predictions, labels, "matthews_corrcoef")
    classes, encoded = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    label_ids, prediction_ids = encoded[: len(labels)], encoded[len(labels):]
    confusion = np.zeros((len(classes), len(classes)), dtype="float64")
    np.add.at(confusion, (label_ids, prediction_ids), 1.0)
    samples = confusion.sum()
    correct = np.trace(confusion)
    true_counts = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    covariance = correct * samples - np.dot(true_counts, predicted_counts)
    denominator = np.sqrt(
        (samples**2 - np.dot(predicted_counts, predicted_counts))
        * (samples**2 - np.dot(true_counts, true_counts))
    )
    if denominator == 0:
        return 0.0
    return float(covariance / denominator)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    if denominator == 0:
        # A constant side has no correlation to speak of; 0.0 keeps model selection ordered.
        return 0.0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def pearson(predictions, labels) -> float:
    """Pearson correlation (STS-B); 0.0 when either side is constant.

    Example:
    ```python
    pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.5])  # 0.996...
    ```
    """
    predictions, labels = _values(predictions, labels, "pearson")
    return _correlation(predictions, labels)


def rank(values) -> np.ndarray:
    """Ranks 1..N of `values`, ties sharing the mean of the ranks they span.

    Example:
    ```python
    rank([10, 20, 20, 5])  # array([2. , 3.5, 3.5, 1. ])
    ```
    """
    values = np.asarray(values, dtype="float64").reshape(-1)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start index of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_ranks = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype="float64")
    ranks[order] = np.repeat(mean_ranks, ends - starts)
    return ranks


def spearman(predictions, labels) -> float:
    """Spearman rank correlation (STS-B): Pearson of tie-averaged ranks.

    Example:
    ```python
    spearman([0.1, 0.4, 0.3], [1.0, 3.0, 2.0])  # 1.0
    ```
    """
    predictions, labels = _values(predictions, labels, "spearman")
    return _correlation(rank(predictions), rank(labels))


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def task_metric(name: str) -> Callable[..., float]:
    """The metric function called `name` (one of `METRICS`).

    Example:
    ```python
    task_metric("f1")([1, 0], [1, 1])  # 0.666...
    ```
    """
    if name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}. Expected one of {sorted(METRICS)}.")
    return METRICS[name]


def compute_metrics(task_metrics: Sequence[str], predictions, labels) -> dict[str, float]:
    """Compute each named metric on the same predictions and labels.

    Example:
    ```python
    compute_metrics(["pearson", "spearman"], [0.5, 2.0, 4.0], [1.0, 2.0, 5.0])
    ```
    """
    names = [task_metrics] if isinstance(task_metrics, str) else list(task_metrics)
    if not names:
        raise ValueError("Expected at least one metric name. Received: [].")
    return {name: task_metric(name)(predictions, labels) for name in names}
