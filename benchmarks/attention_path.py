"""The attention-score path alone, forward and backward: Keras' `where` masking against ours.

One student layer's worth (batch 32, 12 heads, head size 26) of what the intermediate stage
does per layer on [B, heads, L, L] tensors: scores QK^T (einsum), masked softmax, dropout,
context PV (einsum) and TinyBERT's attention-score MSE, with gradients for Q, K and V.
Two maskings are timed alternately in one process: "keras_where" (Keras' masked Softmax:
`where(mask, scores, -1e9)`, softmax, `where(mask, p, 0)` over the whole tensor, what
`tf_tinybert.keras_hub_bert` did before) and "additive" (what it does now: add a
[B, 1, 1, L] bias of -1e9 at padded keys, softmax, multiply by the [B, 1, 1, L] key mask).
Both give the same probabilities (checked here); prints median and best ms per step.

    python benchmarks/attention_path.py [--sequence-lengths 64,128] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from tf_tinybert import losses  # noqa: E402
from tf_tinybert.keras_hub_bert import _masked_attention  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cpu_flags import cpu_info  # noqa: E402

BATCH, HEADS, HEAD_DIM = 32, 12, 26


def keras_where(scores, keep):
    probabilities = ops.softmax(ops.where(keep, scores, ops.cast(-1e9, scores.dtype)), -1)
    return ops.where(keep, probabilities, ops.zeros_like(probabilities))


def additive(scores, keep):
    return _masked_attention(scores, keep, None)


def make_step(masking, q, k, v, target, mask):
    dropout = keras.layers.Dropout(0.1, seed=0)

    @tf.function
    def step(training=True):
        keep = ops.greater(mask, 0)[:, None, None, :]
        with tf.GradientTape() as tape:
            scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
            probabilities = masking(scores, keep)
            dropped = dropout(probabilities, training=training)
            context = ops.einsum("bhqk,bkhd->bqhd", dropped, v)
            loss = losses.attention_mse(scores, target, mask) + ops.mean(ops.square(context))
        return probabilities, tape.gradient(loss, [q, k, v])

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence-lengths", default="64,128")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}; ISA flags: {' '.join(cpu['flags'])}; caps: "
          f"{cpu['isa_caps'] or 'none'}")
    rng = np.random.default_rng(0)
    for length in (int(value) for value in args.sequence_lengths.split(",")):
        lengths = rng.integers(length // 4, length + 1, size=BATCH)
        mask = tf.constant((np.arange(length)[None] < lengths[:, None]).astype("int32"))
        shape = (BATCH, length, HEADS, HEAD_DIM)
        q, k, v = (tf.Variable(rng.standard_normal(shape).astype("float32")) for _ in range(3))
        target = tf.constant(rng.standard_normal((BATCH, HEADS, length, length)), tf.float32)
        steps = {name: make_step(fn, q, k, v, target, mask)
                 for name, fn in (("keras_where", keras_where), ("additive", additive))}
        reference = steps["keras_where"](training=False)
        candidate = steps["additive"](training=False)
        np.testing.assert_allclose(candidate[0].numpy(), reference[0].numpy(), atol=1e-6)
        for ours, theirs in zip(candidate[1], reference[1]):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)
        times = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                started = time.perf_counter()
                step()[0].numpy()
                times[name].append((time.perf_counter() - started) * 1000)
        for name, values in times.items():
            print(f"seq {length} {name:12s} median {statistics.median(values):7.1f} ms  "
                  f"best {min(values):7.1f} ms")
        ratio = statistics.median(times["keras_where"]) / statistics.median(times["additive"])
        print(f"seq {length} speed-up additive / keras_where (medians)  {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
