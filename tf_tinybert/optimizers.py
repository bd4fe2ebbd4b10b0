"""BERT's optimiser: AdamW with linear warm-up then linear decay to zero.

Example:
```python
from tf_tinybert.optimizers import adamw

optimizer = adamw(learning_rate=5e-5, total_steps=1000, warmup=0.1, weight_decay=0.01)
```
"""

from __future__ import annotations

import keras
from keras import ops

# BERT excludes biases and LayerNorm scales/offsets from weight decay (Devlin et al., 2019).
NO_DECAY = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="tf_tinybert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly to `peak_learning_rate` over `warmup_steps`, then falls linearly to 0
    at `total_steps`.

    Args:
        peak_learning_rate: the learning rate at the end of the warm-up.
        total_steps: steps of the whole run; the rate is 0 from there on.
        warmup_steps: steps of the warm-up (0 starts at the peak).

    Example:
    ```python
    schedule = WarmupLinearDecay(1e-4, total_steps=100, warmup_steps=10)
    float(schedule(9)), float(schedule(55))  # (1e-4, 5e-5)
    ```
    """

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int = 0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                "Expected total_steps >= 1 and 0 <= warmup_steps <= total_steps. Received: "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        # Step s applies the rate at s; warm-up counts s + 1 so that the first update moves.
        warming = self.peak_learning_rate * (step + 1.0) / max(self.warmup_steps, 1)
        remaining = ops.maximum(float(self.total_steps) - step, 0.0)
        decaying = self.peak_learning_rate * remaining / max(self.total_steps - self.warmup_steps, 1)
        return ops.where(step < self.warmup_steps, warming, decaying)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def adamw(
    learning_rate: float,
    total_steps: int,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
) -> keras.optimizers.AdamW:
    """AdamW on a `WarmupLinearDecay` schedule, without decay on biases and LayerNorm.

    Args:
        learning_rate: peak learning rate.
        total_steps: optimiser steps in the whole run.
        warmup: fraction of `total_steps` spent warming up, in [0, 1).
        weight_decay: decoupled weight decay.
        clipnorm: global gradient-norm clip (None: no clipping).

    Example:
    ```python
    model.compile(optimizer=adamw(5e-5, total_steps=3 * steps_per_epoch), loss=...)
    ```
    """
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"Expected `warmup` in [0, 1). Received: warmup={warmup}")
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(round(warmup * total_steps)))
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6,
        global_clipnorm=clipnorm,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer
