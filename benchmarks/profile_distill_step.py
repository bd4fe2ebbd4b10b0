"""Where a distillation step's time goes: TensorFlow profiler op times, grouped by role.

Runs `--steps` steps of `Distiller.fit` (stage "intermediate", the shapes of
`distill_throughput.py`: teacher L6 H384 A12 I1536, student TinyBERT-4, batch 32) or of the
bare GradientTape loop under `tf.profiler.experimental`, reads the host plane of the
profile (`*.xplane.pb`) with TensorFlow's own protobuf classes, and sums the executor's op
times per step by role: dense matmuls (query/key/value/output/feed-forward/projections),
the attention einsums (scores QK^T and context, forward and backward), attention-sized
elementwise work (masking, softmax, dropout, the attention loss), LayerNorm, GELU,
optimizer, metrics trackers, collectives (the all-reduce of `_global_sum`; none under the
default strategy) and the rest. Op times on 2 threads add up to more than wall time.

    python benchmarks/profile_distill_step.py [--mode fit|loop] [--sequence-length 128] \
        [--steps 3] [--logdir /tmp/tt_profile] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import distill_throughput as bench  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import tf_tinybert as tt  # noqa: E402

DENSE_LAYERS = ("query", "key", "value", "attention_output", "feedforward", "projection",
                "pooled", "logits", "dense")
CONTAINERS = ("ExecutorState", "KernelAndDeviceFunc")
# (role, test on (op name, op type)); the first match wins.
ROLES = (
    ("collectives (all-reduce)", lambda n, t: "Collective" in t or "AllReduce" in t or "NcclAll" in t),
    ("optimizer (AdamW)", lambda n, t: "/adam_w/" in n or n.startswith("adam_w/")),
    ("metrics trackers", lambda n, t: t in ("DivNoNan", "ArgMax", "Equal") or any(f"/{key}" in n for key in (
        "embedding_loss", "hidden_loss", "attention_loss", "prediction_loss", "hard_loss",
        "loss/", "accuracy", "mean/", "compile_metrics"))),
    ("dense matmuls", lambda n, t: "MatMul" in t and any(layer in n for layer in DENSE_LAYERS)),
    ("attention einsums (QK^T, PV)", lambda n, t: "MatMul" in t),
    ("dropout (random masks)", lambda n, t: "dropout" in n),
    ("LayerNorm", lambda n, t: "layer_norm" in n or "layernorm" in n),
    ("GELU", lambda n, t: "Gelu" in n or t == "Tanh"),
    ("softmax", lambda n, t: "Softmax" in t),
    ("transposes", lambda n, t: "Transpose" in t),
    ("bias adds", lambda n, t: t in ("BiasAdd", "BiasAddGrad", "_MklFusedBatchMatMulV2")),
    ("unscoped elementwise (mask, losses, residuals)", lambda n, t: True),
)


def role_of(name: str, op_type: str) -> str:
    return next(role for role, test in ROLES if test(name, op_type))


def op_times(xplane_path, steps):
    """{(op name, op type): ms per step} from a profile's host plane."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(pathlib.Path(xplane_path).read_bytes())
    times = collections.Counter()
    for plane in space.planes:
        if "host:CPU" not in plane.name:
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_name, _, op_type = name.rpartition(":")
                # Executor op events are named "scope/op_name:OpType"; skip containers.
                if not op_name or not op_type or " " in op_type or op_name.rstrip(":") in CONTAINERS:
                    continue
                times[(op_name, op_type)] += event.duration_ps / 1e9 / steps
    return times


def run(mode, sequence_length, steps, logdir):
    dataset = bench.make_dataset(32, sequence_length, steps)
    teacher, student = bench.make_models()
    if mode == "fit":
        distiller = tt.Distiller(teacher=teacher, student=student)
        distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
        distiller.fit(dataset.take(2), verbose=0)

        def work():
            distiller.fit(dataset.take(steps), verbose=0)
    else:
        step = bench.bare_step(teacher, student)
        for features, _ in dataset.take(2):
            step(features)

        def work():
            for features, _ in dataset.take(steps):
                step(features).numpy()
    tf.profiler.experimental.start(str(logdir))
    started = time.perf_counter()
    work()
    wall = (time.perf_counter() - started) / steps * 1000
    tf.profiler.experimental.stop()
    paths = sorted(pathlib.Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not paths:
        raise RuntimeError(f"The profiler wrote no *.xplane.pb under {logdir}")
    return wall, op_times(paths[-1], steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fit", "loop"), default="fit")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--logdir", default="/tmp/tt_profile")
    parser.add_argument("--top", type=int, default=15, help="also list the N costliest ops")
    args = parser.parse_args(argv)
    logdir = pathlib.Path(args.logdir) / f"{args.mode}_seq{args.sequence_length}"
    wall, times = run(args.mode, args.sequence_length, args.steps, logdir)
    cpu = bench.cpu_info()
    total = sum(times.values())
    by_role = collections.Counter()
    for (name, op_type), ms in times.items():
        by_role[role_of(name, op_type)] += ms
    print(f"CPU: {cpu['model']}; ISA flags: {' '.join(cpu['flags'])}; caps: "
          f"{cpu['isa_caps'] or 'none'}")
    print(f"{args.mode} seq {args.sequence_length}: {wall:.0f} ms/step wall, "
          f"{total:.0f} ms/step of op time (summed over threads)")
    print(f"{'role':48s} {'ms/step':>9s} {'share':>7s}")
    for role, _ in ROLES:
        print(f"{role:48s} {by_role[role]:9.1f} {100 * by_role[role] / total:6.1f}%")
    print(f"costliest {args.top} ops:")
    for (name, op_type), ms in times.most_common(args.top):
        print(f"  {ms:8.1f} ms  {op_type:24s} {name[-90:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
