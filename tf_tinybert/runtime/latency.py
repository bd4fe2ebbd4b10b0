"""Latency of an exported model on ai-edge-litert, without TensorFlow.

Example:
```python
from tf_tinybert.runtime.latency import measure_latency

measure_latency("export/model.tflite", num_threads=1, runs=20)  # median milliseconds
```
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np


def measure_latency(model_path: str | os.PathLike, num_threads: int = 1, runs: int = 20,
                    warmup: int = 3, seed: int = 0) -> float:
    """Median wall-clock milliseconds of one invocation at the model's fixed input length.

    Inputs are random ids from the model's vocabulary (its metadata or the vocab.txt beside
    it) with every position real (the cost is the same for any text at a fixed length).
    `warmup` untimed runs come first.
    """
    from ai_edge_litert.interpreter import Interpreter

    from tf_tinybert.runtime.model_files import load_vocabulary, read_model_bytes

    if runs < 1:
        raise ValueError(f"Expected `runs` >= 1. Received: runs={runs}")
    interpreter = Interpreter(model_path=os.fspath(model_path), num_threads=num_threads)
    interpreter.allocate_tensors()
    vocabulary, _ = load_vocabulary(model_path, read_model_bytes(model_path))
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        shape = detail["shape"]
        if "mask" in detail["name"]:
            value = np.ones(shape, dtype=detail["dtype"])
        elif "type" in detail["name"]:
            value = np.zeros(shape, dtype=detail["dtype"])
        else:
            value = rng.integers(0, len(vocabulary), size=shape).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], value)
    timings = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        interpreter.invoke()
        if index >= warmup:
            timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)
