"""Task metrics of an exported .tflite classifier on a prepared, labeled folder."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tf_tinybert.export.calibration import fit_length
from tf_tinybert.export.serving import INPUT_FEATURES
from tf_tinybert.export.verify import tflite_probabilities
from tf_tinybert.runtime.contract import INPUT_WORD_IDS


def evaluate_tflite(
    model_path: str | os.PathLike,
    data: str | os.PathLike,
    metrics: Sequence[str] = ("accuracy",),
    num_threads: int | None = None,
    max_examples: int | None = None,
) -> dict[str, float]:
    """Runs an exported model (ai-edge-litert) on a prepared folder; returns its metrics.

    Rows are cut or zero-padded to the model's fixed input length, as on a device.

    Example:
    ```python
    evaluate_tflite("out/sst2_int8/model.tflite", "data/sst2_dev", metrics=["accuracy"])
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    from tf_tinybert.data import load
    from tf_tinybert.metrics import compute_metrics

    with open(model_path, "rb") as f:
        model_content = f.read()
    inputs = Interpreter(model_content=model_content).get_signature_runner().get_input_details()
    if INPUT_WORD_IDS not in inputs:
        raise ValueError(
            f"{os.fspath(model_path)!r} has no {INPUT_WORD_IDS!r} input; expected a model "
            f"written by tf_tinybert.export. Received inputs: {sorted(inputs)}."
        )
    sequence_length = int(inputs[INPUT_WORD_IDS]["shape"][-1])
    rows = {key: [] for key in INPUT_FEATURES.values()}
    labels = []
    for element in load(os.fspath(data), batch_size=64, shuffle=False, bucket_by_length=False):
        if not isinstance(element, (tuple, list)):
            raise ValueError(f"{os.fspath(data)!r} holds no labels; expected a labeled folder.")
        features, batch_labels = element
        for key in rows:
            rows[key].extend(fit_length(row, sequence_length) for row in np.asarray(features[key]))
        labels.extend(np.asarray(batch_labels).reshape(-1))
        if max_examples is not None and len(labels) >= max_examples:
            break
    count = len(labels) if max_examples is None else min(len(labels), max_examples)
    features = {key: np.stack(value[:count]) for key, value in rows.items()}
    probabilities = tflite_probabilities(model_content, features, num_threads=num_threads)
    return compute_metrics(list(metrics), probabilities, np.asarray(labels[:count]))
