"""A short fingerprint of a model's weights, so that data made from a teacher knows its teacher.

The recipes reuse a run folder's augmented rows and cached teacher logits on a rerun. Both
were computed from the teacher; `augment`, `augment_squad` and `cache_teacher` record the
fingerprint of the teacher they were given, and a recipe computes them again when the
teacher it now holds has another one (say, re-fine-tuned with other settings after
`teacher.keras` was deleted), instead of distilling from a teacher that no longer exists.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np


def weights_fingerprint(model) -> str:
    """16 hex digits of the sha256 of every weight of `model` (shapes and values, in order).

    Two models with the same weights in the same order give the same fingerprint, whatever
    their names; a change to any value, even one float, gives another. About 0.2 s for a
    22M-parameter model.

    Example:
    ```python
    from tf_tinybert.fingerprints import weights_fingerprint
    weights_fingerprint(teacher)  # '3f1c0a9e5b7d2c41'
    ```
    """
    weights = getattr(model, "weights", None)
    if weights is None:
        raise ValueError(
            f"Expected a Keras model or layer (something with `weights`). Received: "
            f"{type(model).__name__}."
        )
    digest = hashlib.sha256()
    for weight in weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]
