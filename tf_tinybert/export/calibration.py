"""Representative examples for full-integer calibration, in the serving signature's layout.

The converter wants one example at a time, keyed by the signature's input names and
shaped [1, L] exactly (for a dynamic-length export [1, n] with n each row's own
length: the calibrated ranges then come from the lengths the model will serve). Users hand us a prepared TFRecord folder (tf_tinybert.data) or
any iterable of feature dicts ("token_ids", "segment_ids", "padding_mask"; [L] or
[B, L]; optionally paired with labels as `(features, labels)`), padded to any length.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from tf_tinybert.data.features import PADDING_MASK
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
    source, sequence_length: int, max_examples: int = 200, pad: bool = True
) -> list[dict[str, np.ndarray]]:
    """Up to `max_examples` rows as {input_word_ids, input_mask, input_type_ids}: int32 [1, L].

    Rows longer than `sequence_length` are truncated, shorter ones padded with zeros.
    With `pad=False` (a dynamic-length export) each row keeps its own length instead: its
    real tokens (up to the last 1 of its padding mask), at most `sequence_length`.
    Raises ValueError when a key is missing or no row is found.

    Example:
    ```python
    calibration_examples([features], sequence_length=128, max_examples=100)[0]["input_mask"]
    calibration_examples([features], sequence_length=128, pad=False)[0]["input_mask"].shape
    # (1, n): that row's own length
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
        mask = arrays[list(INPUT_FEATURES.values()).index(PADDING_MASK)]
        for row in range(arrays[0].shape[0]):
            length = sequence_length if pad else min(real_length(mask[row]), sequence_length)
            examples.append({
                name: fit_length(array[row], length)[None, :]
                for name, array in zip(INPUT_FEATURES, arrays)
            })
            if len(examples) >= max_examples:
                return examples
    if not examples:
        raise ValueError("Representative data yielded no examples; expected at least one.")
    return examples


def real_length(padding_mask: np.ndarray) -> int:
    """How many leading positions of a 1-D padding mask hold real tokens (at least 1).

    Example:
    >>> real_length(np.array([1, 1, 1, 0, 0]))
    3
    """
    positions = np.flatnonzero(np.asarray(padding_mask))
    return int(positions[-1]) + 1 if positions.size else 1


def fit_length(row: np.ndarray, sequence_length: int) -> np.ndarray:
    """Truncates or zero-pads a 1-D id row to `sequence_length`, as int32."""
    row = np.asarray(row, dtype=np.int32)[:sequence_length]
    return np.pad(row, (0, sequence_length - row.shape[0]))
