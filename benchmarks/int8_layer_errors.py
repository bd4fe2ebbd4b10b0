"""Which int8 tensors of a full-int8 export carry the most rounding error, layer by layer.

Builds the same serving graph, calibration and float denylist as the recipe's int8
export (`to_tflite(..., "int8")`), then runs TFLite's QuantizationDebugger on held-out
training rows: each quantised operator is fed the float model's own input and its int8
output compared with the float output. Printed per tensor: the root-mean-square error in
units of the tensor's int8 step (`rmse / scale`). Ideal rounding of a tensor that uses its
range gives 1/sqrt(12) = 0.289; a tensor far above that is badly calibrated (clipped, or
its range set by a few outliers), and is the one to keep in float or split.

    .venv/bin/python benchmarks/int8_layer_errors.py --model runs/glue/cola/student.keras \
        --train runs/glue/cola/data/train [--calibration 200] [--held-out 300] [--top 15] \
        [--csv layers.csv]

Rows come in `tf_tinybert.data.load`'s seeded order, as in calibration_fidelity.py: the
first `--calibration` calibrate, the `--held-out` after them are debugged. A benchmark:
it prints figures and decides nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import pathlib
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
IDEAL_RMSE_PER_STEP = 1 / math.sqrt(12)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="trained .keras classifier or regressor")
    parser.add_argument("--train", required=True, help="its prepared training folder")
    parser.add_argument("--calibration", type=int, default=200, help="calibration rows")
    parser.add_argument("--held-out", type=int, default=300, help="rows the debugger runs")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--top", type=int, default=15, help="tensors printed, worst first")
    parser.add_argument("--csv", help="write every tensor's statistics here")
    return parser.parse_args(argv)


def layer_statistics(model, calibration, held_out, sequence_length) -> list[dict]:
    """The debugger's per-tensor rows, each with `rmse_per_step` added."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from tf_tinybert.export import tflite
    from tf_tinybert.export.serving import save_serving_model

    channels = tflite.calibrated_outlier_channels(model, calibration,
                                                  tflite.INT8_OUTLIER_CHANNELS)
    with tempfile.TemporaryDirectory(prefix="int8_layers_") as saved_model_dir:
        save_serving_model(model, saved_model_dir, sequence_length,
                           tflite.INT8_ATTENTION_MASK_VALUE, channels)
        float_content = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
        # The debugger feeds lists in the converted model's input order.
        order = [d["name"] for d in Interpreter(model_content=float_content).get_input_details()]
        converter = tflite.int8_converter(saved_model_dir, calibration, keep_float=True)

        def debug_rows():
            for row in held_out:
                yield [next(value for key, value in row.items() if key in name)
                       for name in order]

        options = tflite.selective_quantization_options(
            tflite.INT8_FLOAT_OPS, float_nodes=tflite.scoped_tensor_names(float_content))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=debug_rows, debug_options=options)
            debugger.run()
        text = io.StringIO()
        debugger.layer_statistics_dump(text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    for row in rows:
        scale = float(row["scale"])
        row["rmse_per_step"] = math.sqrt(float(row["mean_squared_error"])) / scale
    return rows


def main(argv=None):
    args = parse_args(argv)
    import keras
    from cpu_flags import cpu_info

    from tf_tinybert.export.calibration import calibration_examples

    examples = calibration_examples(args.train, args.sequence_length,
                                    args.calibration + args.held_out)
    if len(examples) < args.calibration + args.held_out:
        raise SystemExit(f"{args.train} holds {len(examples)} rows; lower --calibration or "
                         "--held-out.")
    model = keras.models.load_model(args.model)
    statistics = layer_statistics(model, examples[:args.calibration],
                                  examples[args.calibration:],
                                  args.sequence_length)
    # Reshapes and transposes copy int8 values: their error is 0 by construction.
    arithmetic = [r for r in statistics if float(r["mean_squared_error"]) > 0]
    arithmetic.sort(key=lambda r: -r["rmse_per_step"])
    per_step = [r["rmse_per_step"] for r in arithmetic]
    print(f"{args.model}: {len(statistics)} int8 tensors, {len(arithmetic)} with rounding "
          f"error; CPU {cpu_info()['model']}")
    print(f"rmse / int8 step: median {sorted(per_step)[len(per_step) // 2]:.3f}, worst "
          f"{per_step[0]:.3f}; ideal rounding {IDEAL_RMSE_PER_STEP:.3f}; "
          f"{sum(v > 2 * IDEAL_RMSE_PER_STEP for v in per_step)} tensors above twice ideal")
    print("\n| op | tensor | elements | scale | rmse / step | max abs error |")
    print("|---|---|---|---|---|---|")
    for row in arithmetic[:args.top]:
        print(f"| {row['op_name']} | {row['tensor_name'][:48]} | "
              f"{int(float(row['num_elements']))} | {float(row['scale']):.4f} | "
              f"{row['rmse_per_step']:.3f} | {float(row['max_abs_error']):.3f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(statistics[0]))
            writer.writeheader()
            writer.writerows(statistics)


if __name__ == "__main__":
    main()
