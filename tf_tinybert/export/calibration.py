"""Representative examples for full-integer calibration, in the serving signature's layout.

The converter wants one example at a time, keyed by the signature's input names and
shaped [1, L] exactly. Users hand us a prepared TFRecord folder (tf_tinybert.data) or
any iterable of feature dicts ("token_ids", "segment_ids", "padding_mask"; [L] or
[B, L]; optionally paired with labels as `(features, labels)`), padded to any length.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from tf_tinybert.export.serving import INPUT_FEATURES


def iterate_features(source) -> Iterator[dict]:
    """Feature dicts from a prepared TFRecord folder or an iterable of (features[, labels]).

    Example:
    ```python
    next(iterate_features([{"token_ids": ids, "segment_ids": seg, "padding_mask": mask}]))
    ```
    """
    if isinstance(source, (str, os.PathLike)):
        from tf_tinybert import data

        if not os.path.isdir(source):
            raise ValueError(
                f"Expected representative data to be a prepared TFRecord folder or an "
                f"iterable of feature dicts. Received: {os.fspath(source)!r}, which is not "
                "a folder."
            )
        source = data.load(os.fspath(source), batch_size=32, shuffle=True, seed=0,
                           bucket_by_length=False)
    if isinstance(source, dict) or not isinstance(source, Iterable):
        raise ValueError(
            "Expected representative data to be a prepared TFRecord folder or an iterable "
            f"of feature dicts. Received: {type(source).__name__}."
        )
    for element in source:
        features = element[0] if isinstance(element, (tuple, list)) else element
        if not isinstance(features, dict):
            raise ValueError(
                "Expected each representative example to be a dict of features (or a "
                f"(features, labels) pair). Received: {type(features).__name__}."
            )
        yield features


def calibration_examples(
    source, sequence_length: int, max_examples: int = 200
) -> list[dict[str, np.ndarray]]:
    """Up to `max_examples` rows as {input_word_ids, input_mask, input_type_ids}: int32 [1, L].

    Rows longer than `sequence_length` are truncated, shorter ones padded with zeros.
    Raises ValueError when a key is missing or no row is found.

    Example:
    ```python
    calibration_examples([features], sequence_length=128, max_examples=100)[0]["input_mask"]
    ```
    """
    examples = []
    for features in iterate_features(source):
        missing = [key for key in INPUT_FEATURES.values() if key not in features]
        if missing:
            raise ValueError(
                f"Representative features lack {missing}. Expected keys "
                f"{list(INPUT_FEATURES.values())}; "
                f"received keys {sorted(features)}."
            )
        arrays = [np.asarray(features[key]) for key in INPUT_FEATURES.values()]
        arrays = [a[None, :] if a.ndim == 1 else a for a in arrays]
        for row in range(arrays[0].shape[0]):
            examples.append({
                name: fit_length(array[row], sequence_length)[None, :]
                for name, array in zip(INPUT_FEATURES, arrays)
            })
            if len(examples) >= max_examples:
                return examples
    if not examples:
        raise ValueError("Representative data yielded no examples; expected at least one.")
    return examples


def fit_length(row: np.ndarray, sequence_length: int) -> np.ndarray:
    """Truncates or zero-pads a 1-D id row to `sequence_length`, as int32."""
    row = np.asarray(row, dtype=np.int32)[:sequence_length]
    return np.pad(row, (0, sequence_length - row.shape[0]))
