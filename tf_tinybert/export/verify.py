"""Parity of an exported TFLite classifier with the Keras model it came from.

The exported file runs in ai-edge-litert (the on-device runtime), one example at a
time as a phone runs it; the Keras model runs the same rows in a batch. We report the
largest and mean absolute difference of the probabilities, top-1 agreement and, where
labels are known, the accuracy of both. A regression export (`score` output, STS-B) is
compared on its scores instead: absolute differences and the Pearson correlation of its
scores with Keras' take the place of top-1 agreement.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS
from tf_tinybert.export.calibration import real_length
from tf_tinybert.export.serving import INPUT_FEATURES, classifier_probabilities, is_regression
from tf_tinybert.runtime.contract import INPUT_NAMES, OUTPUT_NAME, SCORE_NAME


class ExportVerificationError(ValueError):
    """An exported model disagrees with its Keras model by more than allowed."""


@dataclasses.dataclass(frozen=True)
class Verification:
    """How an exported model compares with Keras on `examples` held-out rows.

    `top1_agreement` is None for a regression export, which reports
    `pearson_with_keras` (the correlation of its scores with Keras') instead. `metrics`
    and `keras_metrics` hold the task metrics of the export and of Keras where labels
    were given (for classification `accuracy` and `keras_accuracy` repeat the accuracy).
    """

    examples: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float | None
    accuracy: float | None = None
    keras_accuracy: float | None = None
    task_type: str = "classification"
    pearson_with_keras: float | None = None
    metrics: dict | None = None
    keras_metrics: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def tflite_probabilities(
    model_content: bytes, features: dict[str, np.ndarray], num_threads: int | None = None
) -> np.ndarray:
    """Runs a serving-signature TFLite model on each row of `features`; float32 [N, C].

    `features` holds "token_ids", "padding_mask", "segment_ids" as int32 [N, L] with L the
    model's sequence length. A dynamic-length model (input shape_signature [1, -1]) runs
    each row at its own length instead: its real tokens, padding dropped. An int8 output is dequantised with its own scale. A regression
    export's `score` output gives its scores [N, 1].

    Example:
    ```python
    probs = tflite_probabilities(tflite_bytes, features)
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
    runner = interpreter.get_signature_runner()
    outputs = runner.get_output_details()
    name = next((n for n in (OUTPUT_NAME, SCORE_NAME) if n in outputs), None)
    if name is None:
        raise ExportVerificationError(
            f"Expected a serving signature with a {OUTPUT_NAME!r} or {SCORE_NAME!r} output. "
            f"Received outputs: {sorted(outputs)}."
        )
    output = outputs[name]
    scale, zero_point = output["quantization"]
    dynamic = is_dynamic_length(model_content)
    rows = []
    for i in range(features[TOKEN_IDS].shape[0]):
        end = real_length(features[PADDING_MASK][i]) if dynamic else None
        inputs = {
            input_name: np.asarray(features[key][i : i + 1, :end], dtype=np.int32)
            for input_name, key in INPUT_FEATURES.items()
        }
        rows.append(runner(**inputs)[name][0])
    probabilities = np.asarray(rows)
    if probabilities.dtype != np.float32:
        probabilities = (probabilities.astype(np.float32) - zero_point) * scale
    return probabilities


def is_dynamic_length(model_content: bytes) -> bool:
    """True where the model's inputs have shape_signature [1, -1] (any sequence length).

    Example:
    ```python
    is_dynamic_length(to_tflite(student, "fp32", dynamic_length=True))  # True
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=model_content).get_input_details()
    return any(-1 in [int(d) for d in detail["shape_signature"]] for detail in details)


def keras_probabilities(model, features: dict[str, np.ndarray], batch_size: int = 32):
    """Softmax probabilities of the Keras classifier on `features`, float32 [N, C]
    (scores [N, 1] for a regression head)."""
    outputs = []
    for start in range(0, features[TOKEN_IDS].shape[0], batch_size):
        rows = slice(start, start + batch_size)
        outputs.append(np.asarray(classifier_probabilities(
            model,
            features[TOKEN_IDS][rows],
            features[PADDING_MASK][rows],
            features[SEGMENT_IDS][rows],
        )))
    return np.concatenate(outputs).astype(np.float32)


def compare(
    model,
    model_content: bytes,
    features: dict[str, np.ndarray],
    labels: np.ndarray | None = None,
    num_threads: int | None = None,
    metrics=None,
) -> Verification:
    """Compares an exported model with `model` on the rows of `features`.

    `metrics` names the task metrics (`tf_tinybert.metrics`) to compute where `labels` are
    given; default ("accuracy",), or ("pearson", "spearman") for a regression head.

    Example:
    ```python
    result = compare(student, tflite_bytes, features, labels)
    result.max_abs_diff, result.top1_agreement
    ```
    """
    expected = keras_probabilities(model, features)
    received = tflite_probabilities(model_content, features, num_threads=num_threads)
    return compare_outputs(expected, received, is_regression(model), labels, metrics)


def compare_outputs(
    expected: np.ndarray,
    received: np.ndarray,
    regression: bool,
    labels: np.ndarray | None = None,
    metrics=None,
) -> Verification:
    """`compare` on outputs already computed: Keras' `expected` and the export's
    `received` probabilities [N, C] (scores [N, 1] for a regression model).

    Example:
    ```python
    compare_outputs(keras_probabilities(student, features),
                    tflite_probabilities(tflite_bytes, features), regression=False)
    ```
    """
    if expected.shape != received.shape:
        raise ExportVerificationError(
            f"The exported model returns probabilities of shape {received.shape}; the Keras "
            f"model returns {expected.shape}."
        )
    from tf_tinybert.metrics import compute_metrics, pearson

    difference = np.abs(expected - received)
    accuracy = keras_accuracy = scores = keras_scores = None
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        names = list(metrics or (("pearson", "spearman") if regression else ("accuracy",)))
        scores = compute_metrics(names, received, labels)
        keras_scores = compute_metrics(names, expected, labels)
        if not regression:
            accuracy = float(np.mean(received.argmax(-1) == labels))
            keras_accuracy = float(np.mean(expected.argmax(-1) == labels))
    agreement = correlation = None
    if regression:
        correlation = pearson(received, expected) if expected.shape[0] > 1 else 1.0
    else:
        agreement = float(np.mean(expected.argmax(-1) == received.argmax(-1)))
    return Verification(
        examples=int(expected.shape[0]),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        top1_agreement=agreement,
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        task_type="regression" if regression else "classification",
        pearson_with_keras=correlation,
        metrics=scores,
        keras_metrics=keras_scores,
    )


def check(
    result: Verification, quantization: str, max_abs_diff: float, min_agreement: float
) -> None:
    """Raises ExportVerificationError where `result` misses the bar for `quantization`.

    fp32 must match Keras' probabilities to `max_abs_diff`; the quantised modes must
    agree with Keras' top-1 label on at least `min_agreement` of the examples. For a
    regression export, fp32 must match Keras' scores to `max_abs_diff`, and the quantised
    modes' scores must correlate with Keras' (Pearson) to at least `min_agreement`.

    Example:
    ```python
    check(result, "fp32", max_abs_diff=1e-4, min_agreement=0.95)
    ```
    """
    if result.task_type == "regression":
        _check_regression(result, quantization, max_abs_diff, min_agreement)
        return
    if quantization == "fp32" and not result.max_abs_diff <= max_abs_diff:
        raise ExportVerificationError(
            f"The fp32 TFLite model differs from Keras by up to {result.max_abs_diff:.3g} in "
            f"probability on {result.examples} held-out examples; expected <= "
            f"{max_abs_diff:g}. The conversion changed the model's arithmetic: nothing "
            "was written."
        )
    if quantization != "fp32" and not result.top1_agreement >= min_agreement:
        raise ExportVerificationError(
            f"The {quantization} TFLite model agrees with Keras' top-1 label on "
            f"{result.top1_agreement:.1%} of {result.examples} held-out examples; expected "
            f">= {min_agreement:.1%} (min_agreement). Nothing was written. Try a milder "
            "mode (int8 -> dynamic -> fp16), more representative data, or lower "
            "min_agreement if this loss is acceptable."
        )


def _check_regression(result, quantization, max_abs_diff, min_agreement):
    if quantization == "fp32" and not result.max_abs_diff <= max_abs_diff:
        raise ExportVerificationError(
            f"The fp32 TFLite regression model's scores differ from Keras by up to "
            f"{result.max_abs_diff:.3g} on {result.examples} held-out examples; expected <= "
            f"{max_abs_diff:g}. Nothing was written."
        )
    if quantization != "fp32" and not result.pearson_with_keras >= min_agreement:
        raise ExportVerificationError(
            f"The {quantization} TFLite regression model's scores correlate with Keras' at "
            f"Pearson {result.pearson_with_keras:.4f} on {result.examples} held-out examples; "
            f"expected >= {min_agreement:.4f} (min_agreement). Nothing was written. Try a "
            "milder mode (int8 -> dynamic -> fp16) or more representative data."
        )


def check_signature(
    model_content: bytes, sequence_length: int, num_classes: int, dynamic_length: bool = False
) -> dict:
    """Checks the tensors MediaPipe's TextClassifier binds; returns their names and types.

    Model Maker's BERT classifiers, which MediaPipe's metadata writer defaults to, name
    their inputs `serving_default_input_word_ids:0`, `..._input_mask:0` and
    `..._input_type_ids:0`: int32 [1, L]. The one output is [1, C] probabilities, or a
    float32 `score` [1, 1] where `num_classes` is 1 (regression). With `dynamic_length`
    the inputs' shape_signature must be [1, -1], and the model must resize
    (`resize_tensor_input` + `allocate_tensors`) and run at lengths 1, 2 and
    `sequence_length`, the longest a caller may pass.

    Example:
    ```python
    check_signature(tflite_bytes, sequence_length=128, num_classes=2)
    check_signature(dynamic_bytes, sequence_length=128, num_classes=2, dynamic_length=True)
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    signatures = interpreter.get_signature_list()
    output_role = SCORE_NAME if num_classes == 1 else OUTPUT_NAME
    expected_signature = {"inputs": sorted(INPUT_NAMES), "outputs": [output_role]}
    received_signature = {
        key: sorted(value) for key, value in signatures.get("serving_default", {}).items()
    }
    if received_signature != expected_signature:
        raise ExportVerificationError(
            f"Expected the signature serving_default {expected_signature}. "
            f"Received: {signatures}."
        )
    inputs = {}
    expected_shape = [1, -1] if dynamic_length else [1, sequence_length]
    for detail in interpreter.get_input_details():
        name = detail["name"]
        role = next((n for n in INPUT_NAMES if name == f"serving_default_{n}:0"), None)
        key = "shape_signature" if dynamic_length else "shape"
        shape = [int(d) for d in detail[key]]
        if role is None or detail["dtype"] != np.int32 or shape != expected_shape:
            raise ExportVerificationError(
                f"Input tensor {name!r} is {np.dtype(detail['dtype']).name} {shape} ({key}); "
                f"expected one of {[f'serving_default_{n}:0' for n in INPUT_NAMES]}, int32 "
                f"{expected_shape}."
            )
        inputs[role] = name
    if dynamic_length:
        _check_resizes(interpreter, sequence_length)
    (output,) = interpreter.get_output_details()
    shape = [int(d) for d in output["shape"]]
    dtypes = (np.float32,) if num_classes == 1 else (np.float32, np.int8)
    if shape != [1, num_classes] or output["dtype"] not in dtypes:
        raise ExportVerificationError(
            f"Output tensor {output['name']!r} is {np.dtype(output['dtype']).name} {shape}; "
            f"expected {' or '.join(np.dtype(d).name for d in dtypes)} [1, {num_classes}]."
        )
    return {
        "inputs": [
            {"name": role, "tensor": inputs[role], "dtype": "int32",
             "shape": expected_shape}
            for role in INPUT_NAMES
        ],
        "output": {"name": output_role, "tensor": output["name"],
                   "dtype": np.dtype(output["dtype"]).name, "shape": shape},
    }


def _check_resizes(interpreter, max_length: int) -> None:
    """Resizes a dynamic-length model's inputs to [1, n] and runs it, for n = 1, 2, max."""
    details = interpreter.get_input_details()
    for length in sorted({1, 2, max_length}):
        try:
            for detail in details:
                interpreter.resize_tensor_input(detail["index"], [1, length])
            interpreter.allocate_tensors()
            for detail in details:
                interpreter.set_tensor(detail["index"], np.ones((1, length), np.int32))
            interpreter.invoke()
        except (RuntimeError, ValueError) as error:
            raise ExportVerificationError(
                f"The dynamic-length model does not run at sequence length {length} (inputs "
                f"resized to [1, {length}]; expected any length from 1 to {max_length}): "
                f"{error}"
            ) from error
        (output,) = interpreter.get_output_details()
        values = interpreter.get_tensor(output["index"])
        if not np.all(np.isfinite(values.astype(np.float32))):
            raise ExportVerificationError(
                f"The dynamic-length model returns non-finite values at sequence length "
                f"{length}: {values}."
            )
