"""Examples/s of `Distiller.fit` next to a plain `tf.GradientTape` loop doing the same math.

Stage "intermediate"; teacher shaped like all-MiniLM-L6-v2 (L6 H384 A12, random weights),
student L4 H312 A12 (TinyBERT-4), batch 32, sequence 64. Prints both rates and their ratio.

    python benchmarks/distill_throughput.py [--steps 12] [--batch-size 32] [--sequence-length 64]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_tinybert as tt  # noqa: E402
from tf_tinybert import losses  # noqa: E402
from tf_tinybert.keras_hub_bert import forward_with_intermediates  # noqa: E402
from tf_tinybert.layer_map import resolve_layer_map  # noqa: E402

VOCAB = 30522


def make_models():
    keras.utils.set_random_seed(0)
    teacher = keras_hub.models.BertTextClassifier(
        backbone=keras_hub.models.BertBackbone(
            vocabulary_size=VOCAB, num_layers=6, num_heads=12, hidden_dim=384,
            intermediate_dim=1536, max_sequence_length=512),
        num_classes=2, preprocessor=None)
    student = tt.build_student("tinybert_4l_312h", num_classes=2, vocabulary_size=VOCAB,
                               max_sequence_length=128)
    return teacher, student


def make_dataset(batch_size, sequence_length, batches):
    rng = np.random.default_rng(0)
    n = batch_size * batches
    features = {
        "token_ids": rng.integers(1000, VOCAB, size=(n, sequence_length)).astype("int32"),
        "segment_ids": np.zeros((n, sequence_length), "int32"),
        "padding_mask": np.ones((n, sequence_length), "int32"),
    }
    labels = rng.integers(0, 2, size=n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size).cache()


def time_fit(teacher, student, dataset, steps):
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
    distiller.fit(dataset.take(2), epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    distiller.fit(dataset.take(steps), epochs=1, verbose=0)
    return time.perf_counter() - start


def time_plain_loop(teacher, student, dataset, steps):
    """The same math as the Distiller's intermediate stage, written as a bare loop."""
    embed = keras.layers.Dense(384)
    hidden = keras.layers.Dense(384)
    embed.build((None, None, 312))
    hidden.build((None, None, 312))
    optimizer = keras.optimizers.AdamW(5e-5)
    mapping = resolve_layer_map("uniform", student_layers=4, teacher_layers=6)

    @tf.function
    def step(features):
        t = forward_with_intermediates(teacher, features, training=False)
        mask = features["padding_mask"]
        variables = (student.trainable_variables + embed.trainable_variables
                     + hidden.trainable_variables)
        with tf.GradientTape() as tape:
            s = forward_with_intermediates(student, features, training=True)
            loss = losses.hidden_mse(embed(s["hidden_states"][0]), t["hidden_states"][0], mask)
            for m, g in enumerate(mapping, start=1):
                loss += losses.hidden_mse(hidden(s["hidden_states"][m]), t["hidden_states"][g], mask)
                loss += losses.attention_mse(s["attention_scores"][m - 1],
                                             t["attention_scores"][g - 1], mask)
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return loss

    for features, _ in dataset.take(2):
        step(features)
    start = time.perf_counter()
    for features, _ in dataset.take(steps):
        step(features).numpy()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timings of each")
    args = parser.parse_args()
    dataset = make_dataset(args.batch_size, args.sequence_length, args.steps)
    examples = args.steps * args.batch_size
    rates = {"fit": [], "loop": []}
    # Alternate the two, fresh models each time: the first timing in a process runs slow
    # (allocator and oneDNN warm-up), so one run of each would favour the second.
    for _ in range(args.rounds):
        for name, timer in (("fit", time_fit), ("loop", time_plain_loop)):
            teacher, student = make_models()
            rates[name].append(examples / timer(teacher, student, dataset, args.steps))
    fit_rate, loop_rate = (float(np.median(rates[name])) for name in ("fit", "loop"))
    print(f"teacher L6 H384 A12, student L4 H312 A12, batch {args.batch_size}, "
          f"sequence {args.sequence_length}, {args.steps} timed steps x {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs (medians)")
    print(f"Distiller.fit           {fit_rate:8.1f} examples/s")
    print(f"plain GradientTape loop {loop_rate:8.1f} examples/s")
    print(f"ratio fit / loop        {fit_rate / loop_rate:8.3f}")


if __name__ == "__main__":
    main()
