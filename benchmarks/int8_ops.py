"""Per-operator latency table of a .tflite model on ai-edge-litert (XNNPACK on by default).

ai-edge-litert's Python interpreter has no op profiler, so each operator of the model's main
subgraph is cut out into a one-operator model of its own (the same kernel, options, weights
and quantisation parameters; its non-constant inputs become random inputs) and timed alone,
median of `--runs` invocations, `--threads` threads. The table groups operators by builtin
name and by the kind of arithmetic they do:
- `f32`: float inputs and float weights;
- `int8`: int8 activations (full-integer quantisation);
- `hybrid`: float activations with int8 weights (dynamic-range quantisation: activations
  quantised on the fly, XNNPACK's "qd8" kernels).
The sum of the parts is printed beside the whole model's own latency (fusion across
operators, e.g. XNNPACK's, makes the whole faster than the parts). The CPU model and its
ISA flags head the output: XNNPACK's int8 GEMM kernels use VNNI (avxvnni, avx512vnni)
where the CPU has it and fall back to AVX2 multiply-add sequences where it does not.

    python benchmarks/int8_ops.py MODEL.tflite [MODEL.tflite ...] [--threads 1] [--runs 30]
    python benchmarks/int8_ops.py --export-student DIR [--sequence-length 128]
        (exports a random-weight TinyBERT-4 in fp32, dynamic and int8, calibrated on
        ../shared/data/sst2/train.tsv, to DIR, then profiles the three)
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import statistics
import sys
import time

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from ai_edge_litert.tools import flatbuffer_utils

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import litert_isa  # noqa: E402
from cpu_flags import cpu_info  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SST2_TRAIN = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"
BUILTIN_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items()
                 if not name.startswith("_")}
TYPE_NAMES = {value: name for name, value in vars(schema.TensorType).items()
              if not name.startswith("_")}
FLOAT_TYPES = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16}
INT8_TYPES = {schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT16}


def cpu_summary(cpu: dict) -> str:
    caps = ", ".join(f"{k}={v}" for k, v in cpu["isa_caps"].items()) or "none"
    return (f"CPU: {cpu['model']}, {cpu['cores']} cores; ISA flags: {' '.join(cpu['flags'])}; "
            f"absent: {' '.join(cpu['missing_flags']) or 'none'}; ISA caps: {caps}")


def _is_constant(model, tensor) -> bool:
    return tensor.buffer > 0 and model.buffers[tensor.buffer].data is not None and len(
        model.buffers[tensor.buffer].data) > 0


def operator_kind(model, subgraph, operator) -> str:
    """'f32', 'int8' or 'hybrid' (float activations, int8 weights), from the op's tensors."""
    tensors = [subgraph.tensors[i] for i in operator.inputs if i >= 0]
    activations = [t.type for t in tensors if not _is_constant(model, t)]
    weights = [t.type for t in tensors if _is_constant(model, t)]
    if any(t in INT8_TYPES for t in activations):
        return "int8"
    if any(t in INT8_TYPES for t in weights) and any(t in FLOAT_TYPES for t in activations):
        return "hybrid"
    if activations and all(t not in FLOAT_TYPES for t in activations):
        return TYPE_NAMES.get(activations[0], "other").lower()
    return "f32"


def single_operator_model(model, index: int) -> bytes:
    """A model holding only operator `index` of subgraph 0, with its own tensors and buffers."""
    subgraph = model.subgraphs[0]
    operator = subgraph.operators[index]
    used = [i for i in [*operator.inputs, *operator.outputs, *(operator.intermediates or [])]
            if i >= 0]
    remap = {old: new for new, old in enumerate(dict.fromkeys(used))}
    buffers = [schema.BufferT()]
    tensors = []
    for old in remap:
        source = subgraph.tensors[old]
        tensor = schema.TensorT()
        for field in ("shape", "type", "name", "quantization", "isVariable", "sparsity",
                      "shapeSignature", "hasRank"):
            if hasattr(source, field):
                setattr(tensor, field, getattr(source, field))
        tensor.buffer = 0
        if _is_constant(model, source):
            buffer = schema.BufferT()
            buffer.data = model.buffers[source.buffer].data
            buffers.append(buffer)
            tensor.buffer = len(buffers) - 1
        tensors.append(tensor)
    new_operator = schema.OperatorT()
    for field in ("opcodeIndex", "builtinOptionsType", "builtinOptions", "customOptions",
                  "customOptionsFormat", "builtinOptions2Type", "builtinOptions2"):
        if hasattr(operator, field):
            setattr(new_operator, field, getattr(operator, field))
    new_operator.inputs = [remap[i] if i >= 0 else -1 for i in operator.inputs]
    new_operator.outputs = [remap[i] for i in operator.outputs]
    new_operator.intermediates = [remap[i] for i in (operator.intermediates or [])]
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs = [remap[i] for i in operator.inputs
                    if i >= 0 and not _is_constant(model, subgraph.tensors[i])]
    graph.outputs = list(new_operator.outputs)
    graph.operators = [new_operator]
    graph.name = "single_op"
    single = schema.ModelT()
    single.version = model.version
    single.description = "one operator"
    single.operatorCodes = model.operatorCodes
    single.subgraphs = [graph]
    single.buffers = buffers
    return bytes(flatbuffer_utils.convert_object_to_bytearray(single))


def _fill_inputs(interpreter, rng):
    for detail in interpreter.get_input_details():
        shape, dtype = detail["shape"], detail["dtype"]
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            value = rng.integers(0, 2, size=shape).astype(dtype)
        else:  # ids, indices, int8 activations: small values valid for any of them
            value = rng.integers(0, 2, size=shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def time_model(content: bytes, threads: int, runs: int, xnnpack: bool = True) -> float:
    """Median milliseconds of one invocation with random inputs."""
    resolver = (OpResolverType.AUTO if xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter = Interpreter(model_content=content, num_threads=threads,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    _fill_inputs(interpreter, np.random.default_rng(0))
    for _ in range(3):
        interpreter.invoke()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def profile(path: pathlib.Path, threads: int, runs: int, xnnpack: bool = True) -> dict:
    """Per-operator timings of one model: rows, totals and the whole model's latency."""
    content = path.read_bytes()
    model = flatbuffer_utils.convert_bytearray_to_object(content)
    subgraph = model.subgraphs[0]
    rows, failures = [], collections.Counter()
    cache = {}
    for index, operator in enumerate(subgraph.operators):
        code = model.operatorCodes[operator.opcodeIndex]
        name = BUILTIN_NAMES.get(flatbuffer_utils.get_builtin_code_from_operator_code(code),
                                 "CUSTOM")
        kind = operator_kind(model, subgraph, operator)
        shapes = tuple(tuple(subgraph.tensors[i].shape) for i in operator.inputs if i >= 0)
        key = (name, kind, shapes, operator.opcodeIndex)
        if key not in cache:
            try:
                cache[key] = time_model(single_operator_model(model, index), threads, runs,
                                        xnnpack)
            except (RuntimeError, ValueError) as error:  # reported in the table, not hidden
                cache[key] = None
                failures[f"{name}: {str(error).splitlines()[0][:100]}"] += 1
        rows.append({"op": name, "kind": kind, "ms": cache[key], "shapes": shapes})
    whole = time_model(content, threads, runs, xnnpack)
    return {"rows": rows, "whole_ms": whole, "failures": dict(failures)}


def print_shapes(result, top: int) -> None:
    """The `top` costliest (operator, kind, input shapes) groups: where the time goes."""
    groups = collections.defaultdict(lambda: [0, 0.0])
    for row in result["rows"]:
        if row["ms"] is not None:
            group = groups[(row["op"], row["kind"], row["shapes"])]
            group[0] += 1
            group[1] += row["ms"]
    print(f"{'op':18s} {'kind':6s} {'input shapes':44s} {'count':>5s} {'ms each':>8s} "
          f"{'ms all':>7s}")
    for (op, kind, shapes), (count, ms) in sorted(groups.items(),
                                                   key=lambda kv: -kv[1][1])[:top]:
        text = " ".join("x".join(str(d) for d in shape) for shape in shapes)
        print(f"{op:18s} {kind:6s} {text[:44]:44s} {count:5d} {ms / count:8.3f} {ms:7.3f}")


def print_table(path, result, xnnpack):
    groups = collections.defaultdict(lambda: [0, 0.0, 0])
    for row in result["rows"]:
        group = groups[(row["op"], row["kind"])]
        group[0] += 1
        if row["ms"] is None:
            group[2] += 1
        else:
            group[1] += row["ms"]
    parts = sum(group[1] for group in groups.values())
    print(f"\n{path} ({'XNNPACK' if xnnpack else 'builtin kernels, no XNNPACK'}): whole model "
          f"{result['whole_ms']:.2f} ms, sum of single-op timings {parts:.2f} ms")
    print(f"{'op':24s} {'kind':7s} {'count':>5s} {'ms':>9s} {'share':>7s}")
    for (op, kind), (count, ms, failed) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        note = f"  ({failed} not timed)" if failed else ""
        print(f"{op:24s} {kind:7s} {count:5d} {ms:9.3f} {100 * ms / max(parts, 1e-9):6.1f}%{note}")
    for reason, count in result["failures"].items():
        print(f"  not timed x{count}: {reason}")
    kinds = collections.Counter()
    for row in result["rows"]:
        if row["ms"] is not None:
            kinds[row["kind"]] += row["ms"]
    print("by kind: " + ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in kinds.most_common()))


def export_student(directory: pathlib.Path, sequence_length: int) -> list[pathlib.Path]:
    """Random-weight TinyBERT-4 exports (fp32, dynamic, int8) for profiling; returns paths."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    import keras

    import tf_tinybert as tt
    from tf_tinybert.export import to_tflite
    from tf_tinybert.teachers import resolve_source

    keras.utils.set_random_seed(0)
    student = tt.build_student("tinybert_4l_312h", num_classes=2, vocabulary_size=30522,
                               max_sequence_length=128)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory(prefix="tt_calibration_") as work:
        tt.data.prepare(SST2_TRAIN, resolve_source("minilm-l6-offline"), work,
                        max_sequence_length=sequence_length, overwrite=True, verbose=0)
        for mode in ("fp32", "dynamic", "int8"):
            path = directory / f"student_{mode}_seq{sequence_length}.tflite"
            data = to_tflite(student, mode, sequence_length=sequence_length,
                             representative_data=work if mode == "int8" else None)
            path.write_bytes(data)
            paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=pathlib.Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-xnnpack", action="store_true",
                        help="also time with TFLite's builtin kernels (no XNNPACK)")
    parser.add_argument("--export-student", type=pathlib.Path,
                        help="export random-weight TinyBERT-4 fp32/dynamic/int8 here first")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--shapes", type=int, default=0, metavar="N",
                        help="also list the N costliest (operator, input shapes) groups")
    litert_isa.add_argument(parser)
    args = parser.parse_args(argv)
    cpu = cpu_info()
    litert_isa.apply(args.litert_isa, cpu)
    models = list(args.models)
    if args.export_student:
        models += export_student(args.export_student, args.sequence_length)
    if not models:
        parser.error("give .tflite paths or --export-student DIR")
    missing = [str(path) for path in models if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"No such .tflite file: {', '.join(missing)}")
    print(cpu_summary(cpu))
    print(f"ai-edge-litert, {args.threads} thread(s), median of {args.runs} runs per "
          "single-operator model")
    for path in models:
        for xnnpack in (True, False) if args.no_xnnpack else (True,):
            result = profile(path, args.threads, args.runs, xnnpack)
            print_table(path, result, xnnpack)
            if args.shapes:
                print_shapes(result, args.shapes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
