"""Per-token models (tagger, span extractor) -> verified TFLite export folders.

The path is the classifier's (`tflite.py`): Keras model -> SavedModel with a fixed [1, L]
int32 signature -> `TFLiteConverter.from_saved_model`, builtin ops only, in the four
quantisation modes. The serving outputs are `runtime.token_contract`'s: per-piece tag
probabilities, or start and end logits. `export_token_model` writes the folder
(`model.tflite`, `vocab.txt`, `labels.txt` for tags, `export.json` with the task, the
tokenizer options and the verification) and checks the TFLite model against Keras on
real-length rows before it writes anything.

Example:
```python
from tf_tinybert.export.token_export import export_token_model

report = export_token_model(tagger, tokenizer, "export/ner", label_names=LABELS,
                            quantization="dynamic", sequence_length=128)
report["verification"]["tag_agreement"]   # 1.0
```
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from tf_tinybert.atomic import write_bytes, write_text
from tf_tinybert.choices import EXPORT_MODES, TOKEN_CLASSIFICATION
from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS
from tf_tinybert.export.calibration import calibration_examples
from tf_tinybert.export.outliers import split_forward
from tf_tinybert.export.serving import INPUT_FEATURES, write_serving_archive
from tf_tinybert.export.tflite import (
    INT8_ATTENTION_MASK_VALUE,
    INT8_FLOAT_OPS,
    INT8_OUTLIER_CHANNELS,
    calibrated_outlier_channels,
    check_float_ops,
    check_outlier_channels,
    check_sequence_length,
    convert_saved_model,
)
from tf_tinybert.keras_hub_bert import backbone_with_intermediates
from tf_tinybert.runtime.contract import (
    EXPORT_INFO_FILE,
    LABELS_FILE,
    MODEL_FILE,
    VOCAB_FILE,
)
from tf_tinybert.runtime.token_contract import END_LOGITS, START_LOGITS, TAG_PROBABILITIES, TASK_KEY
from tf_tinybert.token_models import END, START, BertSpanExtractor, BertTokenTagger, token_logits

# The largest |TFLite - Keras| an fp32 export may show before it is refused.
FP32_TOLERANCE = 1e-3


def check_token_model(model) -> str:
    """The model's task name; ValueError unless it is a `BertTokenTagger`/`BertSpanExtractor`.

    Example:
    ```python
    check_token_model(tagger)  # 'token_classification'
    ```
    """
    if not isinstance(model, (BertTokenTagger, BertSpanExtractor)):
        raise ValueError(
            "Expected a tf_tinybert.token_models BertTokenTagger or BertSpanExtractor. "
            f"Received: {type(model).__name__}. (Sentence classifiers export with "
            "tf_tinybert.export.export_classifier.)")
    return model.task


def serving_outputs(model, token_ids, padding_mask, segment_ids,
                    attention_mask_value: float | None = None) -> dict:
    """The serving outputs of a token model in inference mode (`token_contract` names).

    `attention_mask_value` (a float) masks padded keys with that pre-softmax value instead
    of Keras' -1e9 (for the int8 graph; see `serving.classifier_probabilities`).

    Example:
    ```python
    outputs = serving_outputs(extractor, ids, mask, segments)  # start_logits, end_logits
    ```
    """
    features = {TOKEN_IDS: token_ids, SEGMENT_IDS: segment_ids, PADDING_MASK: padding_mask}
    if attention_mask_value is None:
        logits = model(features, training=False)
    else:
        sequence = backbone_with_intermediates(
            model.backbone, features, attention_mask_value=attention_mask_value)["sequence_output"]
        logits = token_logits(model, sequence)
    return named_outputs(model, logits)


def named_outputs(model, logits) -> dict:
    """A token model's logits [B, L, C] as its serving outputs (`token_contract` names).

    Example:
    ```python
    named_outputs(tagger, tagger(features))  # {"tag_probabilities": ...}
    ```
    """
    logits = ops.cast(logits, "float32")
    if model.task == TOKEN_CLASSIFICATION:
        return {TAG_PROBABILITIES: ops.softmax(logits, axis=-1)}
    return {START_LOGITS: logits[..., START], END_LOGITS: logits[..., END]}


def save_token_serving_model(model, path: str, sequence_length: int,
                             attention_mask_value: float | None = None,
                             outlier_channels: Sequence[int] | None = None) -> None:
    """Writes a SavedModel whose `serving_default` takes `INPUT_NAMES` int32 [1, L].

    `outlier_channels` (which needs a float `attention_mask_value`) serves the
    split-stream forward of `outliers.py`, whose int8 graph keeps those hidden channels
    in tensors of their own up to the head's logits; in float it equals the model.

    Example:
    ```python
    save_token_serving_model(tagger, "/tmp/serving", sequence_length=128)
    ```
    """
    check_token_model(model)
    split = split_forward(model, outlier_channels, attention_mask_value)

    def serve(input_word_ids, input_mask, input_type_ids):
        if split is not None:
            return named_outputs(model, split.token_logits(input_word_ids, input_mask,
                                                           input_type_ids))
        return serving_outputs(model, input_word_ids, input_mask, input_type_ids,
                               attention_mask_value)

    write_serving_archive(model, path, serve, sequence_length)


def token_to_tflite(
    model, quantization: str = "fp32", sequence_length: int = 128, representative_data=None,
    *, max_calibration_examples: int = 200, float_ops: Sequence[str] = INT8_FLOAT_OPS,
    outlier_channels: int = INT8_OUTLIER_CHANNELS,
) -> bytes:
    """A token model as TFLite bytes (no metadata), builtin ops only.

    Args:
        model: a `BertTokenTagger` or `BertSpanExtractor`.
        quantization: one of `EXPORT_MODES`; "int8" calibrates on `representative_data`
            (a prepared TFRecord folder or an iterable of feature dicts) and masks padded
            attention keys with INT8_ATTENTION_MASK_VALUE, as the classifier export does.
        sequence_length: L of the [1, L] inputs.
        float_ops: "int8" only: operators kept in float32 (see `tflite.INT8_FLOAT_OPS`).
        outlier_channels: "int8" only: how many hidden channels the graph holds in
            tensors of their own, up to the head's logits (see outliers.py); 0 turns
            the split off.

    Example:
    ```python
    tflite_bytes = token_to_tflite(extractor, "dynamic", sequence_length=384)
    ```
    """
    check_token_model(model)
    sequence_length = check_sequence_length(model, sequence_length)
    if quantization not in EXPORT_MODES:
        raise ValueError(f"Expected `quantization` to be one of {EXPORT_MODES}. "
                         f"Received: quantization={quantization!r}.")
    if (quantization == "int8") != (representative_data is not None):
        raise ValueError("`representative_data` is needed by, and only by, quantization='int8'.")
    float_ops = check_float_ops(float_ops)
    check_outlier_channels(outlier_channels)
    mask_value = examples = channels = None
    if quantization == "int8":
        mask_value = INT8_ATTENTION_MASK_VALUE
        examples = calibration_examples(representative_data, sequence_length,
                                        max_calibration_examples)
        channels = calibrated_outlier_channels(model, examples, outlier_channels)
    with tempfile.TemporaryDirectory(prefix="tf_tinybert_token_savedmodel_") as saved_model_dir:
        save_token_serving_model(model, saved_model_dir, sequence_length, mask_value, channels)
        return convert_saved_model(saved_model_dir, quantization, examples, float_ops)


def tflite_token_outputs(model_content: bytes, features: dict) -> dict:
    """Runs the TFLite model on each row of `features` (int32 [N, L]); outputs stacked [N, ...].

    Example:
    ```python
    outputs = tflite_token_outputs(tflite_bytes, features)["probability"]  # [N, L, C]
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model_content).get_signature_runner()
    rows = []
    for i in range(features[TOKEN_IDS].shape[0]):
        inputs = {name: np.asarray(features[key][i:i + 1], np.int32)
                  for name, key in INPUT_FEATURES.items()}
        rows.append(runner(**inputs))
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def verification_rows(vocabulary_size: int, sequence_length: int, rows: int = 8,
                      seed: int = 0) -> dict:
    """Random in-vocabulary rows of varied real lengths, [CLS] first and [SEP] last.

    Example:
    ```python
    features = verification_rows(30522, 128)
    ```
    """
    rng = np.random.default_rng(seed)
    token_ids = np.zeros((rows, sequence_length), np.int32)
    mask = np.zeros_like(token_ids)
    segments = np.zeros_like(token_ids)
    for row, length in enumerate(np.linspace(3, sequence_length, rows).astype(int)):
        token_ids[row, :length] = rng.integers(min(5, vocabulary_size - 1), vocabulary_size, length)
        mask[row, :length] = 1
        segments[row, length // 2:length] = 1
    return {TOKEN_IDS: token_ids, PADDING_MASK: mask, SEGMENT_IDS: segments}


def verify_token_export(model, model_content: bytes, features: dict) -> dict:
    """How closely the TFLite model follows Keras on `features` (real positions only).

    Returns `max_abs_diff` over the outputs, and `tag_agreement` (tagging: the fraction of
    real pieces whose most probable tag agrees) or `span_agreement` (spans: the fraction of
    rows whose best start and best end positions agree).

    Example:
    ```python
    verify_token_export(tagger, tflite_bytes, verification_rows(1000, 64))
    ```
    """
    keras_outputs = {
        name: keras.ops.convert_to_numpy(value) for name, value in serving_outputs(
            model, features[TOKEN_IDS], features[PADDING_MASK], features[SEGMENT_IDS]).items()}
    lite_outputs = tflite_token_outputs(model_content, features)
    real = features[PADDING_MASK].astype(bool)
    diff = max(float(np.max(np.abs(keras_outputs[n] - lite_outputs[n])[real])) for n in keras_outputs)
    if TAG_PROBABILITIES in keras_outputs:
        agree = (keras_outputs[TAG_PROBABILITIES].argmax(-1) == lite_outputs[TAG_PROBABILITIES].argmax(-1))
        return {"max_abs_diff": diff, "tag_agreement": float(agree[real].mean())}

    def best(values):
        return np.where(real, values, -np.inf).argmax(-1)

    agree = [(best(keras_outputs[n]) == best(lite_outputs[n])) for n in (START_LOGITS, END_LOGITS)]
    return {"max_abs_diff": diff, "span_agreement": float(np.mean(agree[0] & agree[1]))}


def export_token_model(
    model, tokenizer, output_dir: str | os.PathLike, label_names: Sequence[str] | None = None,
    quantization: str = "fp32", sequence_length: int = 128, representative_data=None,
    verification_features: dict | None = None, max_calibration_examples: int = 200,
) -> dict:
    """Converts, verifies and writes a token model's export folder; returns export.json's dict.

    Args:
        model: a `BertTokenTagger` (needs `label_names`, one per tag) or `BertSpanExtractor`.
        tokenizer: the keras-hub `BertTokenizer` it was trained with (vocabulary, options).
        output_dir: the folder to write (created; existing files of the same names replaced).
        max_calibration_examples: "int8" only: how many rows of `representative_data`
            calibrate it (a recipe passes `export.representative_examples`).
        verification_features: int32 rows to check TFLite against Keras on; by default
            `verification_rows`. An fp32 export that differs by more than FP32_TOLERANCE
            is refused.

    Example:
    ```python
    export_token_model(extractor, tokenizer, "export/qa", quantization="dynamic",
                       sequence_length=384)
    ```
    """
    task = check_token_model(model)
    if task == TOKEN_CLASSIFICATION:
        if label_names is None or len(label_names) != model.num_classes:
            raise ValueError(
                f"A tagger with {model.num_classes} tags needs as many `label_names`. "
                f"Received: {label_names!r}")
    vocabulary = list(tokenizer.get_vocabulary())
    if len(vocabulary) != model.backbone.vocabulary_size:
        raise ValueError(
            f"The tokenizer has {len(vocabulary)} tokens but the model's embedding table "
            f"{model.backbone.vocabulary_size}: they were not trained together.")
    model_content = token_to_tflite(model, quantization, sequence_length, representative_data,
                                    max_calibration_examples=max_calibration_examples)
    features = verification_features or verification_rows(len(vocabulary), sequence_length)
    verification = verify_token_export(model, model_content, features)
    if quantization == "fp32" and verification["max_abs_diff"] > FP32_TOLERANCE:
        raise ValueError(
            f"The fp32 TFLite model differs from Keras by {verification['max_abs_diff']:.2e} "
            f"(> {FP32_TOLERANCE}); refusing to write it.")
    info = {
        TASK_KEY: task,
        "quantization": quantization,
        "sequence_length": int(sequence_length),
        "tokenizer": {"lowercase": bool(tokenizer.lowercase),
                      "strip_accents": bool(tokenizer.strip_accents)},
        "verification": verification,
    }
    if label_names is not None:
        info["labels"] = list(label_names)
    output_dir = os.fspath(output_dir)
    write_text(os.path.join(output_dir, VOCAB_FILE), "\n".join(vocabulary) + "\n")
    if task == TOKEN_CLASSIFICATION:
        write_text(os.path.join(output_dir, LABELS_FILE), "\n".join(label_names) + "\n")
    write_text(os.path.join(output_dir, EXPORT_INFO_FILE), json.dumps(info, indent=2) + "\n")
    # The model last: a folder with a model.tflite is a complete one.
    write_bytes(os.path.join(output_dir, MODEL_FILE), model_content)
    return info


class TfliteTokenModel:
    """An exported token model (`model.tflite` + its `export.json`) called like the Keras one,
    so that `tf_tinybert.token_evaluation` scores it on prepared data.

    `model(features)` takes int32 `token_ids`, `segment_ids`, `padding_mask` [N, L] (any L up
    to the export's, padded to it) and returns float32 [N, L, C]: the tag probabilities of a
    tagger (their argmax is the Keras logits') or the start and end logits of a span model
    stacked as `[..., START]`, `[..., END]`.

    Args:
        path: the `model.tflite` file of an export folder (its `export.json` beside it).

    Example:
    ```python
    model = TfliteTokenModel("runs/ner/export/student_int8/model.tflite")
    token_evaluation.evaluate_tagger(model, dev_dataset, model.labels)["f1"]
    ```
    """

    def __init__(self, path: str | os.PathLike):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        info_path = os.path.join(os.path.dirname(path), EXPORT_INFO_FILE)
        if not os.path.isfile(info_path):
            raise ValueError(f"{path}: no {EXPORT_INFO_FILE} beside it, so its task is unknown "
                             "(export it with tf_tinybert.export.token_export).")
        with open(info_path, encoding="utf-8") as file:
            info = json.load(file)
        self.task = info.get(TASK_KEY)
        if self.task not in (TOKEN_CLASSIFICATION, "question_answering"):
            raise ValueError(f"{info_path}: task {self.task!r} is not a token task "
                             "(token_classification or question_answering).")
        self.labels = info.get("labels")
        self.sequence_length = int(info["sequence_length"])
        with open(path, "rb") as file:
            self._runner = Interpreter(model_content=file.read()).get_signature_runner()

    def __call__(self, features: dict, training: bool = False) -> np.ndarray:
        length = np.asarray(features[TOKEN_IDS]).shape[1]
        if length > self.sequence_length:
            raise ValueError(f"Rows of {length} word pieces do not fit the export's "
                             f"{self.sequence_length}.")
        pad = [(0, 0), (0, self.sequence_length - length)]
        rows = {key: np.pad(np.asarray(features[key], np.int32), pad)
                for key in INPUT_FEATURES.values()}
        outputs = []
        for i in range(rows[TOKEN_IDS].shape[0]):
            result = self._runner(**{name: rows[key][i:i + 1]
                                     for name, key in INPUT_FEATURES.items()})
            if self.task == TOKEN_CLASSIFICATION:
                outputs.append(result[TAG_PROBABILITIES][0])
            else:
                outputs.append(np.stack([result[START_LOGITS][0], result[END_LOGITS][0]], -1))
        return np.stack(outputs)[:, :length].astype(np.float32)


__all__ = ["TfliteTokenModel", "check_token_model", "export_token_model", "save_token_serving_model",
           "serving_outputs", "tflite_token_outputs", "token_to_tflite", "verification_rows",
           "verify_token_export"]
