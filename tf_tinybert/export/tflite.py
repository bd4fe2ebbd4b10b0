"""Keras BertTextClassifier -> TFLite bytes, in four quantisation modes.

The path is Keras model -> SavedModel (serving.py) -> `TFLiteConverter.from_saved_model`.
Converting from concrete functions kept Keras 3 weights as uninitialised resource
variables in one trial (MediaPipe then returned NaN), so we never take that shortcut.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tf_tinybert.choices import EXPORT_MODES
from tf_tinybert.export.calibration import calibration_examples, fit_length
from tf_tinybert.export.ops import (
    UnsupportedOpsError,
    builtin_operator_names,
    check_builtin_ops,
    tensor_names,
)
from tf_tinybert.export.outliers import FLOAT_SCOPES, find_outlier_channels
from tf_tinybert.export.serving import INPUT_FEATURES, check_classifier, save_serving_model
from tf_tinybert.runtime.contract import INPUT_WORD_IDS

# Pre-softmax value for padded attention keys in the int8 graph (see
# serving.classifier_probabilities): exp(-30) ~ 1e-13 of a real key's weight, and a
# calibrated range that stays close to the real scores.
INT8_ATTENTION_MASK_VALUE = -30.0
# Hidden channels the int8 graph holds apart from the rest of the residual stream (see
# outliers.py): MiniLM-L6 on SST-2 went from 91.7% to 97.3% top-1 agreement with Keras.
INT8_OUTLIER_CHANNELS = 8
# Operators the "int8" graph runs in float32 between QUANTIZE and DEQUANTIZE ops (TFLite's
# "integer with float fallback"): attention's activation-by-activation matmuls, the mask
# select and softmax, and LayerNorm's statistics. Every weight and every Dense layer stays
# int8. XNNPACK has no int8 kernel for these, so integer-only they ran in TFLite's
# slower builtin kernels: the distilled quickstart student (3 layers, H384, seq 128, one
# thread, x86) took 9.5 ms integer-only and 3.3 ms with these in float (dynamic-range
# int8: 3.1 ms; the fp32 teacher: 15.6 ms), with 0.850 and 0.851 SST-2 accuracy.
# GELU too: TFLite's int8 GELU is a lookup table that XNNPACK does not run, so it split the
# delegated graph in three. In float, between DEQUANTIZE and QUANTIZE, XNNPACK runs it and
# the int8 results are the same (the table holds exactly that function of the 256 levels).
# `float_ops=()` gives an integer-only graph, for accelerators that need one.
INT8_FLOAT_OPS = (
    "BATCH_MATMUL", "SELECT_V2", "SOFTMAX",
    "MEAN", "SQUARED_DIFFERENCE", "SQUARE", "SUM", "RSQRT", "GELU",
)
_AUTO = "auto"


def check_sequence_length(model, sequence_length) -> int:
    """Returns `sequence_length` as an int, or raises ValueError where the model cannot take it."""
    maximum = model.backbone.max_sequence_length
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
        raise ValueError(f"Expected an integer sequence_length. Received: {sequence_length!r}.")
    if not 2 <= sequence_length <= maximum:
        raise ValueError(
            f"Expected 2 <= sequence_length <= {maximum} (the model's max_sequence_length, "
            f"the size of its position embedding). Received: sequence_length={sequence_length}."
        )
    return sequence_length


def check_export_arguments(model, quantization: str, sequence_length) -> int:
    """Check the model and the mode before any work; return the sequence length as an int."""
    check_classifier(model)
    if quantization not in EXPORT_MODES:
        raise ValueError(
            f"Expected `quantization` to be one of {EXPORT_MODES}. "
            f"Received: quantization={quantization!r}."
        )
    return check_sequence_length(model, sequence_length)


def to_tflite(
    model,
    quantization: str = "fp32",
    sequence_length: int = 128,
    representative_data=None,
    int8_io: bool = False,
    *,
    attention_mask_value: float | None | str = _AUTO,
    max_calibration_examples: int = 200,
    outlier_channels: int = INT8_OUTLIER_CHANNELS,
    float_ops: Sequence[str] = INT8_FLOAT_OPS,
    dynamic_length: bool = False,
) -> bytes:
    """Converts a keras-hub BertTextClassifier to a TFLite flatbuffer (without metadata).

    Args:
        model: a BertTextClassifier (or keras-nlp's) whose inputs are token ids.
        quantization: "fp32"; "fp16" (fp16 weights, fp32 compute on CPU); "dynamic"
            (int8 weights, activations quantised on the fly); "int8" (full-integer
            post-training quantisation, calibrated on `representative_data`: int8
            weights and int8 activations, except the operators in `float_ops`).
        sequence_length: L of the [1, L] int32 inputs, at most the model's
            max_sequence_length; with `dynamic_length` the longest input the caller may
            pass (it truncates there).
        representative_data: for "int8" only: a prepared TFRecord folder or an iterable
            of feature dicts (see calibration.py).
        int8_io: for "int8" only: the `probability` output becomes int8 (scale 1/256,
            zero point -128). Inputs are int32 ids and stay int32.
        attention_mask_value: "auto" uses Keras' own attention masking except in "int8",
            where it uses INT8_ATTENTION_MASK_VALUE; None or a float forces one.
        max_calibration_examples: how many representative rows calibrate "int8".
        outlier_channels: for "int8" with a float mask value: how many hidden channels
            (those with the largest calibrated LayerNorm inputs) the serving graph keeps
            in tensors of their own, so that their +-200 values do not set the int8
            scale of the ordinary channels (see outliers.py); at most hidden_dim // 8;
            0 turns this off.
        float_ops: for "int8" only: TFLite builtin operator names kept in float32
            (INT8_FLOAT_OPS: attention and LayerNorm statistics, which have no fast
            int8 kernel); () quantises every operator (integer-only).
        dynamic_length: inputs of shape_signature [1, -1] instead of [1, L]: the caller
            resizes them (`Interpreter.resize_tensor_input` + `allocate_tensors`) to each
            text's own length, 1 to `sequence_length`, and pads nothing. "int8" then
            calibrates on the representative rows padded only to the longest of them
            (TFLite's calibrator takes one shape per run).

    Returns:
        The .tflite bytes; builtin ops only (UnsupportedOpsError otherwise).

    Example:
    ```python
    tflite_bytes = to_tflite(student, "dynamic", sequence_length=128)
    any_length = to_tflite(student, "fp32", sequence_length=128, dynamic_length=True)
    ```
    """
    if not isinstance(dynamic_length, bool):
        raise ValueError(f"Expected `dynamic_length` to be a bool. Received: {dynamic_length!r}.")
    sequence_length = check_export_arguments(model, quantization, sequence_length)
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "quantization='int8' needs `representative_data`: full-integer quantisation "
            "fixes a scale for every activation tensor from the ranges it sees on real "
            "inputs, and without examples there are no ranges. Pass a prepared TFRecord "
            "folder (or an iterable of feature dicts), or choose quantization='dynamic'."
        )
    if quantization != "int8" and (representative_data is not None or int8_io):
        raise ValueError(
            "`representative_data` and `int8_io` apply to quantization='int8' only. "
            f"Received: quantization={quantization!r}, int8_io={int8_io}, "
            f"representative_data={'given' if representative_data is not None else None}."
        )
    float_ops = check_float_ops(float_ops)
    if attention_mask_value == _AUTO:
        attention_mask_value = INT8_ATTENTION_MASK_VALUE if quantization == "int8" else None

    check_outlier_channels(outlier_channels)
    examples = channels = None
    if quantization == "int8":
        examples = calibration_examples(
            representative_data, sequence_length, max_calibration_examples,
            pad=not dynamic_length,
        )
        if dynamic_length:
            # TFLite's calibrator (TF 2.21) prepares its interpreter once, at the first
            # example's shape, and fails on the next shape ("Given shapes, [1,52,7] and
            # [1,44,7], are not broadcastable"). The rows share one length: the longest
            # real row, not L. Padded keys get exp(-30) of the attention weight, so a real
            # token's activations match those at its own length; the ranges cover both.
            width = max(e[INPUT_WORD_IDS].shape[1] for e in examples)
            examples = [{name: fit_length(value[0], width)[None, :]
                         for name, value in e.items()} for e in examples]
        if attention_mask_value is not None:
            channels = calibrated_outlier_channels(model, examples, outlier_channels)
    with tempfile.TemporaryDirectory(prefix="tf_tinybert_savedmodel_") as saved_model_dir:
        save_serving_model(model, saved_model_dir,
                           None if dynamic_length else sequence_length,
                           attention_mask_value, channels)
        return convert_saved_model(saved_model_dir, quantization, examples, float_ops, int8_io)


def check_outlier_channels(outlier_channels) -> int:
    """Returns `outlier_channels` as an int, or raises ValueError unless it is an int >= 0."""
    if isinstance(outlier_channels, bool) or not isinstance(outlier_channels, int) \
            or outlier_channels < 0:
        raise ValueError(
            "Expected `outlier_channels` to be an integer >= 0. "
            f"Received: outlier_channels={outlier_channels!r}."
        )
    return outlier_channels


def calibrated_outlier_channels(model, examples, outlier_channels: int) -> list[int] | None:
    """The hidden channels an int8 export holds apart (see outliers.py), or None for none.

    `examples` are the calibration rows (dicts of int32 [1, L] serving inputs); at most
    an eighth of the hidden channels are taken, since the split pays off for a few
    outliers only. Shared by the classifier and the token-model exports.

    Example:
    ```python
    calibrated_outlier_channels(student, examples, INT8_OUTLIER_CHANNELS)  # [62, 99, ...]
    ```
    """
    count = min(check_outlier_channels(outlier_channels), model.backbone.hidden_dim // 8)
    if count == 0:
        return None
    width = max(e[INPUT_WORD_IDS].shape[1] for e in examples)
    batch = {key: np.concatenate([fit_length(e[name][0], width)[None, :] for e in examples])
             for name, key in INPUT_FEATURES.items()}
    return find_outlier_channels(model, batch, count)


def convert_saved_model(saved_model_dir, quantization: str, examples=None, float_ops=(),
                        int8_io: bool = False) -> bytes:
    """TFLite bytes of a serving SavedModel in one of `EXPORT_MODES`, builtin ops only.

    Shared by every export shape (sentence classifiers here, token and span models in
    `export.token_export`). int8 calibrates on `examples` (a list of input dicts) and keeps
    `float_ops` in float32 (selective quantisation); `int8_io` makes the output int8.

    Example:
    ```python
    model_content = convert_saved_model("/tmp/serving", "int8", examples, INT8_FLOAT_OPS)
    ```
    """
    quantize = None
    if quantization == "int8":
        converter = int8_converter(saved_model_dir, examples, keep_float=bool(float_ops),
                                   int8_io=int8_io)
        if float_ops:
            quantize = quantizer_keeping(float_ops, int8_io, float_scope_nodes(saved_model_dir))
    else:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization in ("fp16", "dynamic"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "fp16":
            converter.target_spec.supported_types = [tf.float16]
    model_content = convert_with(converter, quantize)
    check_builtin_ops(model_content)
    return model_content


def int8_converter(saved_model_dir, examples, keep_float: bool, int8_io: bool = False):
    """A TFLiteConverter set up for full-integer quantisation calibrated on `examples`.

    With `keep_float`, float32 builtins stay allowed beside the int8 ones (selective
    quantisation: pass the converter to `quantizer_keeping`'s function, or to TFLite's
    QuantizationDebugger with `selective_quantization_options`).

    Example:
    ```python
    converter = int8_converter("/tmp/serving", examples, keep_float=True)
    ```
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(examples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if keep_float:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    if int8_io:
        converter.inference_output_type = tf.int8
    return converter


def check_float_ops(float_ops) -> tuple[str, ...]:
    """Returns `float_ops` as a tuple, or raises ValueError naming an unknown operator."""
    if isinstance(float_ops, str) or not isinstance(float_ops, Sequence):
        raise ValueError(
            "Expected `float_ops` to be a list of TFLite builtin operator names such as "
            f"['SOFTMAX']. Received: float_ops={float_ops!r}."
        )
    known = builtin_operator_names()
    unknown = [name for name in float_ops if name not in known]
    if unknown:
        raise ValueError(
            f"Unknown TFLite builtin operators in `float_ops`: {unknown}. Expected names "
            f"as the TFLite schema spells them, such as {list(INT8_FLOAT_OPS[:3])}."
        )
    return tuple(float_ops)


def float_scope_nodes(saved_model_dir) -> list[str]:
    """The nodes of a serving SavedModel under `outliers.FLOAT_SCOPES`, which an int8 export
    keeps in float (by name, as their MUL / ADD / SUB are ops found everywhere):

    - the split-stream LayerNorm's per-row mean, variance, RSQRT and the normalisation by
      them. In int8 each was one tensor with one scale for all rows: the SQuAD student's
      full-int8 export lost 1.8 F1 points against Keras on 500 dev questions that way,
      and 0.9 with them in float (70 fewer QUANTIZE / DEQUANTIZE ops);
    - the additive attention mask and its ADD to the scores, so that the scores reach the
      float softmax unquantised.

    Empty where the serving graph is Keras' own (no float attention mask value).

    Example:
    ```python
    float_scope_nodes("/tmp/serving")  # ['attention_mask_bias/add', ...]
    ```
    """
    content = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert()
    return scoped_tensor_names(content)


def scoped_tensor_names(float_content: bytes) -> list[str]:
    """The tensor names of a float TFLite conversion under `outliers.FLOAT_SCOPES`
    (`float_scope_nodes` for a caller that has converted the SavedModel already)."""
    # TensorFlow numbers repeated scopes (layer_norm_statistics_1/...); fused ops join
    # their names with ';'.
    scopes = "|".join(FLOAT_SCOPES)
    scoped = re.compile(rf"(^|;)({scopes})(_\d+)?/")
    return sorted({name for name in tensor_names(float_content) if scoped.search(name)})


def quantizer_keeping(float_ops: Sequence[str], int8_io: bool, float_nodes: Sequence[str] = ()):
    """A function converter -> int8 TFLite bytes with `float_ops` (operator types) and
    `float_nodes` (node names) left in float32.

    This is TFLite's selective quantisation: the QuantizationDebugger calibrates the
    model once, then quantises every operator except the denylisted ones, putting
    QUANTIZE / DEQUANTIZE ops around them.
    """

    def quantize(converter) -> bytes:
        options = selective_quantization_options(float_ops, int8_io, float_nodes)
        with warnings.catch_warnings():
            # The debugger builds a tf.lite.Interpreter, deprecated in favour of LiteRT.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_options=options
            )
        return debugger.get_nondebug_quantized_model()

    return quantize


def selective_quantization_options(float_ops: Sequence[str], int8_io: bool = False,
                                   float_nodes: Sequence[str] = ()):
    """TFLite QuantizationDebugOptions that leave `float_ops` (operator types) and
    `float_nodes` (node names) in float32; `int8_io` quantises the output too."""
    return tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(float_ops), denylisted_nodes=list(float_nodes),
        fully_quantize=int8_io
    )


def convert_with(converter, quantize=None) -> bytes:
    """TFLite bytes from a configured converter, through `quantize(converter)` when given.

    Shared by every export shape (sentence classifiers here, token and span models in
    `export.token_export`).

    Example:
    ```python
    model_content = convert_with(converter, quantizer_keeping(INT8_FLOAT_OPS, False))
    ```
    """
    # Builtin ops only: an op without a TFLite kernel fails here (ConverterError, not
    # exported under tf.lite) rather than silently pulling in the Flex delegate.
    try:
        return quantize(converter) if quantize is not None else converter.convert()
    except Exception as error:
        needed = re.findall(r"(?:TF Select ops|Custom ops): ([^\n]+)", str(error))
        if not needed:
            raise
        raise UnsupportedOpsError(
            f"The model uses TensorFlow ops with no TFLite builtin kernel: {needed}. They "
            "would need the Flex delegate (SELECT_TF_OPS), which MediaPipe Tasks and plain "
            "LiteRT apps do not link. Expected builtin ops only: replace the layer or "
            "activation that produces them."
        ) from error
