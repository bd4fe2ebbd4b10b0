"""Counts the oneDNN primitive executions of one `Distiller.fit` step, with and without XLA.

Each setting runs in a child process with ONEDNN_VERBOSE=1 (teacher L6 H384, student
TinyBERT-4, batch 32, `--sequence-length`, stage "intermediate"); the lines oneDNN prints
during one step after a warm-up step are counted by primitive kind. Without XLA, TensorFlow
runs each batched matmul as one oneDNN `matmul` primitive; with `jit_compile=True`, XLA's
CPU backend calls oneDNN's plain `gemm_api` once per matrix of every batch.

    python benchmarks/xla_onednn_calls.py [--sequence-length 64]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys

CHILD = r"""
import os, sys
sys.path.insert(0, {benchmarks!r})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import distill_throughput as bench
import tf_tinybert as tt
dataset = bench.make_dataset(32, {length}, 2)
teacher, student = bench.make_models()
distiller = tt.Distiller(teacher=teacher, student=student)
distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate",
                  jit_compile={jit})
distiller.fit(dataset.take(1), verbose=0)
print("STEP-START", flush=True)
distiller.fit(dataset.take(1), verbose=0)
print("STEP-END", flush=True)
"""


def count_calls(jit: bool, length: int) -> collections.Counter:
    benchmarks = os.path.dirname(os.path.abspath(__file__))
    code = CHILD.format(benchmarks=benchmarks, length=length, jit=jit)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "ONEDNN_VERBOSE": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"The child failed (jit_compile={jit}):\n{result.stderr[-3000:]}")
    lines = (result.stdout + result.stderr).splitlines()
    if "STEP-START" not in lines or "STEP-END" not in lines:
        raise RuntimeError("The child printed no STEP-START/STEP-END markers.")
    step = lines[lines.index("STEP-START"):lines.index("STEP-END")]
    kinds = collections.Counter()
    isa = next((line.split("isa:")[1] for line in lines if "isa:" in line), "unknown")
    for line in step:
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in fields and len(fields) > 5:
            kinds[fields[fields.index("exec") + 2]] += 1
    kinds["(oneDNN ISA: " + isa + ")"] = 0
    return kinds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence-length", type=int, default=64)
    args = parser.parse_args(argv)
    for jit in (False, True):
        kinds = count_calls(jit, args.sequence_length)
        listed = ", ".join(f"{count} {kind}" if count else kind for kind, count in
                           sorted(kinds.items(), key=lambda kv: -kv[1]))
        print(f"jit_compile={jit}: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
