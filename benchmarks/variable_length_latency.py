"""Per-sentence latency at each text's own length next to the same student at fixed 128.

Exports one student twice, with a fixed [1, 128] signature and with a dynamic [1, -1] one
(`export_classifier(..., dynamic_length=True)`), then times `tf_tinybert.runtime.TextClassifier`
(ai-edge-litert, one thread by default) on every SST-2 dev sentence: the fixed model pads
each to 128, the dynamic one runs it at its own length (resizing only when the length
changes, as the runtime does), one sentence at a time in the file's order and, as
`classify(list)` runs a list, shortest first ("dynamic_list"). The models alternate in rounds (the order flips each
round), so a burst of load on a shared machine hits both alike; a sentence's latency is its
median over rounds. Prints the CPU model and ISA flags, mean / p50 / p95 per model and the
speed-up, then the bare `invoke()` of each export at each sentence's own length and at 128
(resized beforehand, untimed; no runtime wrapper), whose ratio is the most any-length can
gain over fixed 128 on the machine (`invoke_only` in the JSON); `--json PATH` writes the
same figures atomically.

    .venv/bin/python benchmarks/variable_length_latency.py --model runs/x/student.keras \
        [--tokenizer minilm-l6-offline] [--quantization dynamic] [--rounds 3] [--json out.json]
    .venv/bin/python benchmarks/variable_length_latency.py --random-student   # latency only

With `--teacher TEACHER.keras` the teacher's fp32 export at fixed 128 joins the same
alternating rounds (issue 12's "int8 student >= 3x the fp32 teacher at the same lengths"),
and `--speed-report benchmarks/results/speed/report.json` merges the `latency.*` keys
(teacher_fp32_ms, student_<mode>_ms, student_<mode>_variable_mean_ms, the speed-ups and this
command) into that report, keeping its other keys.

Latency does not depend on the weights: `--random-student` builds a random 3-layer, H384,
12-head student (MiniLM-L3-shaped, all-MiniLM-L6-v2's vocabulary).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sst2" / "dev.tsv"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import litert_isa  # noqa: E402
from cpu_flags import cpu_info  # noqa: E402
from mediapipe_parity import read_labeled_tsv  # noqa: E402

FIXED_LENGTH = 128


def random_student(vocabulary_size: int, max_sequence_length: int = 512, seed: int = 0):
    """A random BertTextClassifier shaped like MiniLM-L3 (3 layers, H384, 12 heads, I1536)."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=3, num_heads=12, hidden_dim=384,
        intermediate_dim=1536, max_sequence_length=max_sequence_length)
    return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)


def calibration_rows(tokenizer, texts, count=100):
    """Feature dicts of the first `count` texts, for an "int8" export's calibration."""
    ids = [np.asarray(tokenizer(text)) for text in texts[:count]]
    rows = []
    for row in ids:
        row = np.concatenate([[tokenizer.cls_token_id], row[: FIXED_LENGTH - 2],
                              [tokenizer.sep_token_id]]).astype(np.int32)
        rows.append({"token_ids": row, "padding_mask": np.ones_like(row),
                     "segment_ids": np.zeros_like(row)})
    return rows


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def summary(latencies_ms) -> dict:
    """mean / p50 / p95 of per-sentence latencies in milliseconds."""
    return {"mean_ms": round(float(np.mean(latencies_ms)), 4),
            "p50_ms": round(percentile(latencies_ms, 50), 4),
            "p95_ms": round(percentile(latencies_ms, 95), 4)}


def time_sentences(classifier, encoded) -> list[float]:
    """Milliseconds of one `run_encoded` per sentence, in order."""
    times = []
    for inputs in encoded:
        start = time.perf_counter()
        classifier.run_encoded(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(models: dict, texts, rounds: int, shortest_first=()) -> dict:
    """Per-sentence median over `rounds` alternating rounds, for each model in `models`.

    The models named in `shortest_first` run the sentences ordered by length, as
    `TextClassifier.classify(list)` does (a dynamic-length model then resizes once per
    distinct length); the others in the file's order, one sentence at a time.
    """
    encoded = {name: [c.encode(t) for t in texts] for name, c in models.items()}
    for name in shortest_first:
        encoded[name].sort(key=lambda e: e["input_word_ids"].shape[0])
    for name, classifier in models.items():  # warm-up: one pass each
        time_sentences(classifier, encoded[name])
    per_round = {name: [] for name in models}
    names = list(models)
    for index in range(rounds):
        for name in (names if index % 2 == 0 else names[::-1]):
            per_round[name].append(time_sentences(models[name], encoded[name]))
    figures = {}
    for name in names:
        medians = np.median(np.asarray(per_round[name]), axis=0)
        lengths = [int(e["input_mask"].sum()) for e in encoded[name]]
        figures[name] = {**summary(medians), "sentences": len(texts),
                         "input_length_mean": round(float(np.mean(
                             [e["input_word_ids"].shape[0] for e in encoded[name]])), 2),
                         "real_tokens_mean": round(float(np.mean(lengths)), 2)}
    return figures


def invoke_only(model_path, lengths, threads: int, runs: int = 20) -> dict:
    """Median ms of the bare `invoke()` at each length in `lengths`, and their mean over it.

    `tf_tinybert.runtime.latency.measure_latency` at each distinct length: the interpreter
    is sized before the timing, so the figure is the model's compute at that length and
    nothing else: no resize, no tokenizer, no runtime wrapper. `mean_ms` weighs each
    length by how often it occurs.
    """
    from tf_tinybert.runtime.latency import measure_latency

    per_length = {length: measure_latency(model_path, num_threads=threads, runs=runs,
                                          sequence_length=length)
                  for length in sorted(set(lengths))}
    mean = float(np.mean([per_length[length] for length in lengths]))
    return {"mean_ms": round(mean, 4),
            "per_length_ms": {str(k): round(v, 4) for k, v in per_length.items()}}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a trained student .keras (token-id inputs)")
    source.add_argument("--random-student", action="store_true",
                        help="a random MiniLM-L3-shaped student (latency only)")
    parser.add_argument("--tokenizer", default="minilm-l6-offline",
                        help="tokenizer preset, folder or alias (default minilm-l6-offline)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="SST-2 dev.tsv")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--quantization", default="dynamic",
                        choices=("fp32", "fp16", "dynamic", "int8"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exports", default=None,
                        help="folder to keep the two exports in (default: a temporary one)")
    parser.add_argument("--teacher", default=None,
                        help="a teacher .keras: its fp32 export at fixed 128 is timed too")
    parser.add_argument("--json", default=None, help="write the figures here (atomically)")
    parser.add_argument("--speed-report", default=None,
                        help="merge the latency.* keys into this report.json (atomically)")
    litert_isa.add_argument(parser)
    return parser.parse_args(argv)


def latency_keys(figures: dict, quantization: str) -> dict:
    """The `latency.*` block of benchmarks/results/speed/report.json, from `measure` figures.

    >>> keys = latency_keys({"teacher_fp32_128": {"mean_ms": 20.0},
    ...                      "fixed_128": {"mean_ms": 5.0}, "dynamic": {"mean_ms": 1.0}}, "int8")
    >>> keys["student_int8_ms"], keys["teacher_over_student_int8"]
    (5.0, 4.0)
    """
    student = figures["fixed_128"]["mean_ms"]
    variable = figures["dynamic"]["mean_ms"]
    keys = {f"student_{quantization}_ms": student,
            f"student_{quantization}_variable_mean_ms": variable,
            f"student_{quantization}_variable_p50_ms": figures["dynamic"].get("p50_ms"),
            f"student_{quantization}_variable_p95_ms": figures["dynamic"].get("p95_ms"),
            "fixed128_over_variable": round(student / variable, 2)}
    if "dynamic_list" in figures:
        listed = figures["dynamic_list"]["mean_ms"]
        keys.update({f"student_{quantization}_variable_list_mean_ms": listed,
                     "fixed128_over_variable_list": round(student / listed, 2)})
    if "teacher_fp32_128" in figures:
        teacher = figures["teacher_fp32_128"]["mean_ms"]
        keys.update({"teacher_fp32_ms": teacher,
                     f"teacher_over_student_{quantization}": round(teacher / student, 2),
                     f"teacher_over_student_{quantization}_variable":
                         round(teacher / variable, 2)})
    return keys


def merge_speed_report(path, keys: dict, extra: dict) -> None:
    """Writes `keys` (and `extra`) under "latency" in the JSON report at `path`, atomically."""
    from tf_tinybert.atomic import write_text

    path = pathlib.Path(path)
    report = json.loads(path.read_text()) if path.exists() else {}
    report["latency"] = {**keys, **extra}
    write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> dict:
    args = parse_args(argv)
    from tf_tinybert.export import export_classifier
    from tf_tinybert.runtime import TextClassifier
    from tf_tinybert.teachers import resolve_source
    from tf_tinybert.tokenizers import load_tokenizer

    cpu = cpu_info()
    litert_isa.apply(args.litert_isa, cpu)
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores as seen by the OS)")
    print(f"ISA flags: {' '.join(cpu['flags']) or 'none of interest'}; missing: "
          f"{' '.join(cpu['missing_flags']) or 'none'}; caps: {cpu['isa_caps'] or 'none'}")
    texts, _ = read_labeled_tsv(args.data, args.limit)
    tokenizer = load_tokenizer(resolve_source(args.tokenizer))
    import keras

    if args.random_student:
        model = random_student(tokenizer.vocabulary_size())
        student = "random MiniLM-L3-shaped student (3 layers, H384, 12 heads, I1536)"
    else:
        model = keras.saving.load_model(args.model, compile=False)
        student = args.model
    backbone = model.backbone
    print(f"student: {student}; {backbone.num_layers} layers, H{backbone.hidden_dim}, "
          f"max length {backbone.max_sequence_length}; {args.quantization}; "
          f"{args.threads} thread(s); {len(texts)} sentences from {args.data}")
    representative = (calibration_rows(tokenizer, texts) if args.quantization == "int8"
                      else None)
    with tempfile.TemporaryDirectory(prefix="varlen_") as scratch:
        root = pathlib.Path(args.exports or scratch)
        models, paths = {}, {}
        for name, dynamic in (("fixed_128", False), ("dynamic", True)):
            report = export_classifier(
                model, tokenizer, root / name, quantization=args.quantization,
                sequence_length=FIXED_LENGTH, representative_data=representative,
                labels=["negative", "positive"], overwrite=True, max_eval_examples=32,
                dynamic_length=dynamic, min_agreement=0.0)
            models[name] = TextClassifier(report.model_path, num_threads=args.threads)
            paths[name] = report.model_path
        # The same dynamic model given the whole list: shortest sentence first.
        models["dynamic_list"] = models["dynamic"]
        if args.teacher:
            teacher = keras.saving.load_model(args.teacher, compile=False)
            report = export_classifier(
                teacher, tokenizer, root / "teacher_fp32_128", quantization="fp32",
                sequence_length=FIXED_LENGTH, labels=["negative", "positive"],
                overwrite=True, max_eval_examples=32, min_agreement=0.0)
            models["teacher_fp32_128"] = TextClassifier(report.model_path,
                                                        num_threads=args.threads)
        figures = measure(models, texts, args.rounds, shortest_first=("dynamic_list",))
        lengths = [models["dynamic"].encode(t)["input_word_ids"].shape[0] for t in texts]
        bound = {"fixed_128": invoke_only(paths["fixed_128"], [FIXED_LENGTH], args.threads),
                 "dynamic": invoke_only(paths["dynamic"], lengths, args.threads)}
    speedup = {key: round(figures["fixed_128"][key] / figures["dynamic"][key], 2)
               for key in ("mean_ms", "p50_ms", "p95_ms")}
    print(f"\n{'model':<18}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'input len':>11}")
    for name, row in figures.items():
        print(f"{name:<18}{row['mean_ms']:>10.3f}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}"
              f"{row['input_length_mean']:>11.1f}")
    print(f"speed-up fixed 128 / dynamic: mean {speedup['mean_ms']}x, p50 "
          f"{speedup['p50_ms']}x, p95 {speedup['p95_ms']}x (target >= 5x on the mean)")
    keys = latency_keys(figures, args.quantization)
    bound["fixed128_over_dynamic"] = round(
        bound["fixed_128"]["mean_ms"] / bound["dynamic"]["mean_ms"], 2)
    print(f"bare invoke() only (no resize, no runtime): fixed 128 "
          f"{bound['fixed_128']['mean_ms']:.3f} ms, own lengths mean "
          f"{bound['dynamic']['mean_ms']:.3f} ms: {bound['fixed128_over_dynamic']}x, the "
          "most running each text at its own length can gain over fixed 128 here")
    print(f"speed-up fixed 128 / dynamic given the whole list (shortest first, as "
          f"classify(list) runs it): mean {keys['fixed128_over_variable_list']}x")
    if "teacher_fp32_ms" in keys:
        print(f"teacher fp32 / student {args.quantization}, both at fixed 128: "
              f"{keys[f'teacher_over_student_{args.quantization}']}x (target >= 3x)")
    result = {"cpu": cpu, "student": student, "quantization": args.quantization,
              "threads": args.threads, "rounds": args.rounds, "data": str(args.data),
              "models": figures, "speedup_fixed128_over_dynamic": speedup,
              "invoke_only": bound,
              "note": "per-sentence median over alternating rounds; the machine may be "
                      "shared and loaded"}
    if args.json:
        from tf_tinybert.atomic import write_text

        write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.speed_report:
        command = "python benchmarks/variable_length_latency.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        merge_speed_report(args.speed_report, keys, {
            "command": command, "cpu": cpu, "threads": args.threads, "rounds": args.rounds,
            "student": student, "teacher": args.teacher, "data": str(args.data),
            "sentences": len(texts), "models": figures})
    return result


if __name__ == "__main__":
    main()
