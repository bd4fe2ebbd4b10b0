"""How many calibration rows full-int8 needs: fidelity to Keras on held-out training rows.

For one trained classifier (or regressor) and its prepared training folder, exports the
model to full int8 once per (calibration size, replicate) and compares each export with
the Keras model on training rows that no calibration set contains. The dev set is not
read: this measures export fidelity, so that a calibration default is chosen on
something other than the score it will be reported with.

Rows come from the folder in `tf_tinybert.data.load`'s seeded order (the order the
recipe's export calibrates in). The first `max(--sizes) * --replicates` rows are the
calibration pool: replicate r of size n is rows [r*n, (r+1)*n). The next `--held-out`
rows are scored.

    .venv/bin/python benchmarks/calibration_fidelity.py --model runs/glue/cola/student.keras \
        --train runs/glue/cola/data/train [--sizes 200,1000] [--replicates 2] \
        [--held-out 1000] [--json out.json]

Per export it prints the top-1 agreement with Keras (for a regressor the Pearson
correlation of the scores), the mean and largest absolute difference of the
probabilities (scores), the agreement on the held-out rows whose Keras top-1 margin is
under 0.2 (the rows quantisation can flip), and the conversion time. A benchmark: it
prints figures and decides nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
BORDERLINE_MARGIN = 0.2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="trained .keras classifier or regressor")
    parser.add_argument("--train", required=True, help="its prepared training folder")
    parser.add_argument("--sizes", default="200,1000", help="calibration sizes, comma-separated")
    parser.add_argument("--replicates", type=int, default=2,
                        help="disjoint calibration sets per size")
    parser.add_argument("--held-out", type=int, default=1000, help="training rows scored")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--json", help="write the rows here too")
    return parser.parse_args(argv)


def read_rows(folder, count, sequence_length):
    """The first `count` rows of the folder's seeded order, as int32 [count, L] feature
    arrays: the rows the recipe's int8 export calibrates on, read by the same function."""
    from tf_tinybert.export.calibration import calibration_examples
    from tf_tinybert.export.serving import INPUT_FEATURES

    examples = calibration_examples(folder, sequence_length, count)
    if len(examples) < count:
        raise SystemExit(f"{folder} holds {len(examples)} rows; this study needs {count} "
                         "(lower --sizes, --replicates or --held-out).")
    return {key: np.concatenate([example[name] for example in examples])
            for name, key in INPUT_FEATURES.items()}


def fidelity(expected, received):
    """Agreement (or Pearson), mean/max |difference| and borderline agreement."""
    from tf_tinybert.export.verify import compare_outputs

    result = compare_outputs(expected, received, regression=expected.shape[1] == 1)
    row = {"mean_abs_diff": result.mean_abs_diff, "max_abs_diff": result.max_abs_diff}
    if result.task_type == "regression":
        row["pearson_with_keras"] = result.pearson_with_keras
        return row
    same = expected.argmax(-1) == received.argmax(-1)
    ordered = np.sort(expected, axis=-1)
    borderline = (ordered[:, -1] - ordered[:, -2]) < BORDERLINE_MARGIN
    row["agreement"] = result.top1_agreement
    row["disagreements"] = int((~same).sum())
    row["borderline_rows"] = int(borderline.sum())
    row["borderline_agreement"] = float(same[borderline].mean()) if borderline.any() else None
    return row


def main(argv=None):
    args = parse_args(argv)
    import keras
    from cpu_flags import cpu_info

    from tf_tinybert.export import to_tflite
    from tf_tinybert.export.verify import keras_probabilities, tflite_probabilities

    sizes = [int(size) for size in args.sizes.split(",")]
    pool = max(sizes) * args.replicates
    rows = read_rows(args.train, pool + args.held_out, args.sequence_length)
    held_out = {key: value[pool:] for key, value in rows.items()}
    model = keras.models.load_model(args.model)
    expected = keras_probabilities(model, held_out)
    results = []
    print(f"{args.model}: {args.held_out} held-out training rows, calibration pool {pool}",
          flush=True)
    for size in sizes:
        for replicate in range(args.replicates):
            calibration = {key: value[replicate * size:(replicate + 1) * size]
                           for key, value in rows.items()}
            start = time.perf_counter()
            content = to_tflite(model, "int8", args.sequence_length,
                                representative_data=[calibration],
                                max_calibration_examples=size)
            convert_s = time.perf_counter() - start
            received = tflite_probabilities(content, held_out)
            row = {"size": size, "replicate": replicate, "convert_s": round(convert_s, 1),
                   **fidelity(expected, received)}
            results.append(row)
            print(json.dumps(row), flush=True)
    print_table(results)
    if args.json:
        payload = {"command": "python benchmarks/calibration_fidelity.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
                   "model": args.model, "train": args.train, "held_out": args.held_out,
                   "cpu": cpu_info(), "rows": results}
        pathlib.Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


def print_table(results):
    keys = [key for key in ("agreement", "disagreements", "borderline_agreement",
                            "pearson_with_keras", "mean_abs_diff", "max_abs_diff", "convert_s")
            if key in results[0]]
    print("\n| size | replicate | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for row in results:
        cells = [_cell(row[key]) for key in keys]
        print(f"| {row['size']} | {row['replicate']} | " + " | ".join(cells) + " |")


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
