"""Distillation examples/s: `Distiller.fit`, a bare GradientTape loop and the PyTorch reference.

Stage "intermediate" (embedding, hidden-state and attention-score losses), random weights with
the reference's shapes: teacher L6 H384 A12 I1536 (all-MiniLM-L6-v2's shape), student L4 H312
A12 I1200 (TinyBERT-4), batch 32, uniform layer map 6 -> 4. In each round, and at each fixed
sequence length, it times in turn (A B C A B C ...): `Distiller.fit`, the same math as a bare
`tf.GradientTape` loop, each `--fit-variants` entry, and, with `--reference-python`, the
PyTorch TinyBERT reference (`../shared/bench/reference_tinybert.py`, run as a subprocess
with that Python). Then, unless `--sst2-steps 0`, `Distiller.fit` on real SST-2 lengths:
`../shared/data/sst2/train.tsv` through `tf_tinybert.data.prepare` (offline MiniLM
tokenizer, max length 128) and `load(bucket_by_length=True)`.

Figures: for fixed shapes, batch / median time of one step (the reference script reports
the same statistic), the median over rounds; for SST-2, examples / wall time over the timed
steps (steps differ in length). Prints the CPU model, its ISA flags and any ISA cap set in
the environment (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY, ...). Any failure exits non-zero;
a missing reference Python is reported as skipped with the reason.

    python benchmarks/distill_throughput.py [--sequence-lengths 64,128] [--steps 12] \
        [--rounds 3] [--reference-python /path/to/torch/python --reference-dir REF_DIR] \
        [--fit-variants spe4,xla] [--sst2-steps 40] [--json report.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cpu_flags import cpu_info  # noqa: E402

import tf_tinybert as tt  # noqa: E402
from tf_tinybert import losses  # noqa: E402
from tf_tinybert.atomic import write_text  # noqa: E402
from tf_tinybert.keras_hub_bert import forward_with_intermediates  # noqa: E402
from tf_tinybert.layer_map import resolve_layer_map  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE_SCRIPT = SHARED / "bench" / "reference_tinybert.py"
SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"
VOCAB = 30522
FIT_VARIANTS = {
    # name: (description, Distiller.compile keyword arguments)
    "spe4": ("Distiller.fit steps_per_execution=4", {"steps_per_execution": 4}),
    "xla": ("Distiller.fit jit_compile=True", {"jit_compile": True}),
}


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
    """Fixed-shape batches like the reference's: random tokens, real lengths L/4..L."""
    rng = np.random.default_rng(0)
    n = batch_size * batches
    lengths = rng.integers(sequence_length // 4, sequence_length + 1, size=n)
    mask = (np.arange(sequence_length)[None, :] < lengths[:, None]).astype("int32")
    features = {
        "token_ids": rng.integers(1000, 30000, size=(n, sequence_length)).astype("int32") * mask,
        "segment_ids": np.zeros((n, sequence_length), "int32"),
        "padding_mask": mask,
    }
    labels = rng.integers(0, 2, size=n).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    return dataset.batch(batch_size, drop_remainder=True).cache()


class StepClock(keras.callbacks.Callback):
    """Wall time between consecutive `on_train_batch_end` calls (one call per execution)."""

    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def intervals(self):
        return list(np.diff(self.ends))


def step_rate(intervals, examples_per_interval):
    return examples_per_interval / statistics.median(intervals)


def time_fit(dataset, steps, batch_size, compile_kwargs=None):
    """examples/s of `Distiller.fit` (median step) at one fixed shape."""
    teacher, student = make_models()
    compile_kwargs = dict(compile_kwargs or {})
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate",
                      **compile_kwargs)
    per_call = int(compile_kwargs.get("steps_per_execution", 1))
    distiller.fit(dataset.take(2 * per_call), epochs=1, verbose=0)  # trace and warm up
    clock = StepClock()
    distiller.fit(dataset.take(steps), epochs=1, verbose=0, callbacks=[clock])
    return step_rate(clock.intervals(), batch_size * per_call)


def bare_step(teacher, student):
    """The Distiller's intermediate-stage math as a plain `tf.function` train step."""
    embed = keras.layers.Dense(384)
    hidden = keras.layers.Dense(384)
    embed.build((None, None, 312))
    hidden.build((None, None, 312))
    optimizer = keras.optimizers.AdamW(5e-5)
    mapping = resolve_layer_map("uniform", student_layers=4, teacher_layers=6)
    variables = [v for v in student.trainable_variables
                 if not any(v is w for layer in (student.backbone.pooled_dense,
                                                  student.output_dense)
                            for w in layer.trainable_variables)]
    variables += embed.trainable_variables + hidden.trainable_variables

    @tf.function
    def step(features):
        t = forward_with_intermediates(teacher, features, training=False)
        mask = features["padding_mask"]
        with tf.GradientTape() as tape:
            s = forward_with_intermediates(student, features, training=True)
            loss = losses.hidden_mse(embed(s["hidden_states"][0]), t["hidden_states"][0], mask)
            for m, g in enumerate(mapping, start=1):
                loss += losses.hidden_mse(hidden(s["hidden_states"][m]), t["hidden_states"][g], mask)
                loss += losses.attention_mse(s["attention_scores"][m - 1],
                                             t["attention_scores"][g - 1], mask)
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss

    return step


def time_bare_loop(dataset, steps, batch_size):
    """examples/s of the bare loop (median step) at one fixed shape."""
    step = bare_step(*make_models())
    for features, _ in dataset.take(2):
        step(features)
    ends = [time.perf_counter()]
    for features, _ in dataset.take(steps):
        step(features).numpy()
        ends.append(time.perf_counter())
    return step_rate(list(np.diff(ends)), batch_size)


def time_reference(python, reference_dir, sequence_length, steps, batch_size, threads):
    """examples/s (median step) printed by the PyTorch reference script, run as a subprocess."""
    command = [python, str(REFERENCE_SCRIPT), "--reference-dir", str(reference_dir),
               "--sequence-length", str(sequence_length), "--steps", str(steps),
               "--batch-size", str(batch_size), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"The reference failed (exit {result.returncode}): "
                           f"{shlex.join(command)}\n{result.stderr[-3000:]}")
    found = re.search(r"median ([0-9.]+) examples/s", result.stdout)
    if not found:
        raise RuntimeError(f"No 'median N examples/s' in the reference's output:\n{result.stdout}")
    return float(found.group(1))


def reference_skip_reason(args) -> str | None:
    if not args.reference_python:
        return "no --reference-python given"
    if not (pathlib.Path(args.reference_python).exists() or _on_path(args.reference_python)):
        return f"reference python {args.reference_python} not found"
    if not args.reference_dir or not (pathlib.Path(args.reference_dir) / "transformer").is_dir():
        return f"--reference-dir {args.reference_dir} holds no transformer/ folder"
    if not REFERENCE_SCRIPT.exists():
        return f"{REFERENCE_SCRIPT} not found"
    probe = subprocess.run([args.reference_python, "-c", "import torch"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{args.reference_python} cannot import torch: {probe.stderr.strip()[-300:]}"
    return None


def _on_path(name):
    return any((pathlib.Path(folder) / name).exists()
               for folder in os.environ.get("PATH", "").split(os.pathsep))


def time_sst2(data_dir, steps, batch_size, compile_kwargs=None):
    """examples/s of `Distiller.fit` on length-bucketed SST-2 batches (wall time, all steps)."""
    teacher, student = make_models()
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate",
                      **dict(compile_kwargs or {}))
    dataset = tt.data.load(data_dir, batch_size=batch_size, bucket_by_length=True,
                           repeat=True, drop_remainder=True)
    per_call = int((compile_kwargs or {}).get("steps_per_execution", 1))
    distiller.fit(dataset, steps_per_epoch=4 * per_call, epochs=1, verbose=0)  # traces
    clock = StepClock()
    tokens = []
    started = time.perf_counter()
    distiller.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    seconds = time.perf_counter() - started
    for features, _ in dataset.take(steps):  # the same shuffled order: mean padded width
        tokens.append(int(features["token_ids"].shape[1]))
    return steps * batch_size / seconds, float(np.mean(tokens))


def median(values):
    return float(statistics.median(values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-lengths", default="64,128")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings of each")
    parser.add_argument("--fit-variants", default="",
                        help=f"extra Distiller.fit settings to time, among {sorted(FIT_VARIANTS)}")
    parser.add_argument("--no-bare-loop", action="store_true")
    parser.add_argument("--reference-python", help="a Python with torch for the reference")
    parser.add_argument("--reference-dir", help="the reference's TinyBERT/ folder")
    parser.add_argument("--reference-threads", default=str(os.cpu_count()),
                        help="torch thread counts, comma-separated; the reference's figure "
                        "in each round is its best over them (e.g. 1,2: on a shared machine "
                        "OpenMP's spinning threads can slow 2 threads below 1)")
    parser.add_argument("--sst2", type=pathlib.Path, default=SST2_TRAIN)
    parser.add_argument("--sst2-steps", type=int, default=40, help="0 skips SST-2")
    parser.add_argument("--json", type=pathlib.Path, help="write the figures here (atomically)")
    args = parser.parse_args(argv)

    lengths = [int(value) for value in args.sequence_lengths.split(",") if value.strip()]
    variants = [name for name in args.fit_variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in FIT_VARIANTS]
    if unknown:
        parser.error(f"unknown --fit-variants {unknown}; expected among {sorted(FIT_VARIANTS)}")
    cpu = cpu_info()
    skip = reference_skip_reason(args)
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores; ISA flags: {' '.join(cpu['flags'])}; "
          f"absent: {' '.join(cpu['missing_flags']) or 'none'}")
    caps = ", ".join(f"{k}={v}" for k, v in cpu["isa_caps"].items())
    print(f"ISA caps in the environment: {caps or 'none'}"
          + (" (an emulation of a lesser CPU: only the libraries honouring them are capped)"
             if caps else ""))
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; teacher L6 H384 A12 I1536, "
          f"student L4 H312 A12 I1200, batch {args.batch_size}, stage intermediate, "
          f"{args.steps} timed steps x {args.rounds} rounds, alternating")
    if skip:
        print(f"reference: skipped ({skip})")
    else:
        print(f"reference: {args.reference_python}, torch threads {args.reference_threads} "
              "(best of them per round)")

    timers = {"ours": lambda ds, length: time_fit(ds, args.steps, args.batch_size)}
    if not args.no_bare_loop:
        timers["bare_loop"] = lambda ds, length: time_bare_loop(ds, args.steps, args.batch_size)
    for name in variants:
        timers[name] = (lambda kwargs: lambda ds, length: time_fit(
            ds, args.steps, args.batch_size, kwargs))(FIT_VARIANTS[name][1])
    reference_threads = [int(value) for value in args.reference_threads.split(",")]
    reference_by_threads = collections.defaultdict(list)
    if not skip:
        def best_reference(ds, length):
            rates = {}
            for threads in reference_threads:
                rates[threads] = time_reference(args.reference_python, args.reference_dir,
                                                length, args.steps, args.batch_size, threads)
                reference_by_threads[f"seq{length}_threads{threads}"].append(rates[threads])
            return max(rates.values())

        timers["reference"] = best_reference

    rates = {length: {name: [] for name in timers} for length in lengths}
    datasets = {length: make_dataset(args.batch_size, length, args.steps) for length in lengths}
    for round_index in range(args.rounds):
        for length in lengths:
            for name, timer in timers.items():
                rate = timer(datasets[length], length)
                rates[length][name].append(rate)
                print(f"  round {round_index + 1} seq {length} {name}: {rate:.1f} examples/s",
                      flush=True)

    report = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "cpu": cpu,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "keras_hub": keras_hub.__version__},
        "settings": {"batch_size": args.batch_size, "steps": args.steps,
                     "rounds": args.rounds, "statistic": "batch / median step time, "
                     "median over rounds; sst2: examples / wall time"},
        "distill": {},
    }
    if skip:
        report["reference_skipped"] = skip
    else:
        report["reference_by_threads"] = dict(reference_by_threads)
    labels = {"ours": "Distiller.fit", "bare_loop": "bare loop", "reference": "reference",
              **{name: FIT_VARIANTS[name][0] for name in variants}}
    for length in lengths:
        figures = {name: median(values) for name, values in rates[length].items()}
        print(f"sequence length {length}")
        for name, value in figures.items():
            print(f"{labels[name]}  {value:.1f} examples/s")
        if "reference" in figures:
            print(f"ratio ours / reference  {figures['ours'] / figures['reference']:.3f}")
        if "bare_loop" in figures:
            print(f"ratio ours / bare loop  {figures['ours'] / figures['bare_loop']:.3f}")
        entry = {**figures, "rounds": {name: values for name, values in rates[length].items()}}
        report["distill"][f"seq{length}"] = entry

    if args.sst2_steps > 0:
        if not args.sst2.exists():
            raise FileNotFoundError(f"SST-2 training file not found: {args.sst2} "
                                    "(pass --sst2 or --sst2-steps 0)")
        from tf_tinybert.teachers import resolve_source

        with tempfile.TemporaryDirectory(prefix="tt_sst2_") as work:
            tt.data.prepare(args.sst2, resolve_source("minilm-l6-offline"), work,
                            max_sequence_length=128, overwrite=True, verbose=0)
            sst2_rates, widths = [], []
            for _ in range(args.rounds):
                rate, width = time_sst2(work, args.sst2_steps, args.batch_size)
                sst2_rates.append(rate)
                widths.append(width)
                print(f"  SST-2 bucketed: {rate:.1f} examples/s (mean padded width {width:.1f})",
                      flush=True)
        entry = {"ours": median(sst2_rates), "rounds": sst2_rates,
                 "mean_padded_width": float(np.mean(widths)), "steps": args.sst2_steps}
        print("SST-2 train, bucket_by_length=True (max length 128)")
        print(f"Distiller.fit  {entry['ours']:.1f} examples/s")
        if 64 in lengths and "reference" in rates[64]:
            reference = median(rates[64]["reference"])
            entry["reference_fixed64"] = reference
            entry["ratio_to_reference_fixed64"] = entry["ours"] / reference
            print(f"reference (fixed 64)  {reference:.1f} examples/s")
            print(f"ratio ours / reference  {entry['ratio_to_reference_fixed64']:.3f}")
        report["distill"]["sst2_bucketed"] = entry

    if args.json:
        write_text(args.json, json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
