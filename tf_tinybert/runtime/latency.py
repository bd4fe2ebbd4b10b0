"""Latency of an exported model on ai-edge-litert, without TensorFlow.

Example:
```python
from tf_tinybert.runtime.latency import measure_latency

measure_latency("export/model.tflite", num_threads=1, runs=20)  # median milliseconds
measure_latency("export_any_length/model.tflite", sequence_length=16)  # a [1, -1] export
```
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np


def measure_latency(model_path: str | os.PathLike, num_threads: int = 1, runs: int = 20,
                    warmup: int = 3, seed: int = 0, sequence_length: int | None = None) -> float:
    """Median wall-clock milliseconds of one invocation at the model's input length.

    Inputs are random ids from the model's vocabulary (its metadata or the vocab.txt beside
    it) with every position real (the cost is the same for any text at a fixed length).
    `warmup` untimed runs come first. A dynamic-length export (inputs [1, -1]) runs at
    `sequence_length`, by default the longest input its export.json records; a fixed-length
    one only at its own length.
    """
    from ai_edge_litert.interpreter import Interpreter

    from tf_tinybert.runtime.model_files import (
        load_vocabulary,
        read_export_info,
        read_model_bytes,
    )

    if runs < 1:
        raise ValueError(f"Expected `runs` >= 1. Received: runs={runs}")
    interpreter = Interpreter(model_path=os.fspath(model_path), num_threads=num_threads)
    inputs = interpreter.get_input_details()
    dynamic = any(-1 in list(detail["shape_signature"]) for detail in inputs)
    if dynamic:
        length = sequence_length or read_export_info(model_path).get("sequence_length")
        if not length:
            raise ValueError(f"'{model_path}' takes inputs of any length and records no "
                             "sequence_length in its export.json: pass `sequence_length`.")
        for detail in inputs:
            interpreter.resize_tensor_input(detail["index"], [1, int(length)], strict=True)
    elif sequence_length is not None and sequence_length != int(inputs[0]["shape"][-1]):
        raise ValueError(f"'{model_path}' has a fixed input length of "
                         f"{int(inputs[0]['shape'][-1])}. Received: sequence_length="
                         f"{sequence_length}.")
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
