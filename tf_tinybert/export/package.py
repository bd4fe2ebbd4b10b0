"""`export_classifier`: a verified, MediaPipe-ready model folder for phones.

The folder holds model.tflite (with TFLite metadata: vocabulary and labels as associated
files), vocab.txt, labels.txt and export.json. It is built in a temporary folder beside
the destination, verified before anything is written, and renamed into place at the
end, so a failed export leaves nothing behind and a reader never sees half a folder.

A regression model (`num_classes == 1`, STS-B) exports too: its output is a float32
`score` [1, 1] (no softmax), the self-verification compares scores (largest absolute
difference, and the Pearson correlation with Keras' scores in place of top-1
agreement), export.json records `"task_type": "regression"`, and there is no labels.txt.
Its TFLite metadata keeps the inputs, tokenizer and vocabulary but is no MediaPipe
TextClassifier metadata (a score is not a class probability; see metadata.py): run it
with `tf_tinybert.runtime.TextClassifier`, whose `classify` returns the score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import keras
import numpy as np

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS
from tf_tinybert.export.calibration import fit_length, iterate_features
from tf_tinybert.export.metadata import MIN_PARSER_VERSION, add_metadata
from tf_tinybert.export.ops import min_runtime_version, operator_versions
from tf_tinybert.export.serving import INPUT_FEATURES, is_regression
from tf_tinybert.export.tflite import (
    INT8_ATTENTION_MASK_VALUE,
    INT8_FLOAT_OPS,
    check_export_arguments,
    to_tflite,
)
from tf_tinybert.export.verify import Verification, check, check_signature, compare
from tf_tinybert.runtime.contract import EXPORT_INFO_FILE, LABELS_FILE, MODEL_FILE, VOCAB_FILE

FP32_MAX_ABS_DIFF = 1e-4
# MediaPipe Tasks (mediapipe 1.2.2's Python TextClassifier) runs a dynamic-length model but
# truncates every text at 128 tokens whatever the model's maximum: a model whose position
# embedding is shorter fails there ("Invalid begin and size" in SLICE), and one exported
# with another maximum disagrees with our runtime on longer texts. Measured on tiny models.
MEDIAPIPE_DYNAMIC_LENGTH = 128


class OutputExistsError(FileExistsError, ValueError):
    """The output path exists and `overwrite` is False."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_classifier` wrote and how the exported model compares with Keras.

    `info` is the content of export.json.
    """

    output_dir: str
    model_path: str
    quantization: str
    sequence_length: int
    model_bytes: int
    labels: tuple[str, ...]
    verification: Verification
    info: dict

    def to_dict(self) -> dict:
        return dict(self.info)


def export_classifier(
    model,
    tokenizer,
    output_dir: str | os.PathLike,
    quantization: str = "fp32",
    sequence_length: int = 128,
    representative_data=None,
    labels: Sequence[str] | str | None = None,
    overwrite: bool = False,
    min_agreement: float = 0.9,
    eval_data=None,
    int8_io: bool = False,
    integer_only: bool = False,
    max_eval_examples: int = 256,
    max_calibration_examples: int = 200,
    num_threads: int | None = None,
    metrics: Sequence[str] | None = None,
    dynamic_length: bool = False,
) -> ExportReport:
    """Exports a BertTextClassifier to a verified, MediaPipe-ready TFLite folder.

    Args:
        model: a keras-hub BertTextClassifier (token-id inputs), or a path to its
            .keras file.
        tokenizer: the keras-hub BertTokenizer the model was trained with, or a preset
            name or folder for `tf_tinybert.tokenizers.load_tokenizer`. Its vocabulary
            must have as many entries as the model's embedding table.
        output_dir: the folder to create.
        quantization: one of tf_tinybert.choices.EXPORT_MODES ("fp32", "fp16", "dynamic", "int8").
        sequence_length: the fixed input length L (<= the model's max_sequence_length);
            with `dynamic_length`, the longest input (texts are truncated there).
        representative_data: "int8" only: a prepared TFRecord folder or an iterable of
            feature dicts to calibrate activation ranges on.
        labels: class names (a list or "negative,positive"); default: the label names
            of the prepared data's manifest if a folder is given, else "0", "1", ...
            A regression model has none (None or empty).
        overwrite: replace an existing `output_dir`.
        min_agreement: quantised modes fail (ExportVerificationError) where the top-1
            label agrees with Keras on fewer held-out examples than this fraction (for a
            regression model: where the Pearson correlation of the exported scores with
            Keras' is lower).
        eval_data: held-out examples to verify on (a prepared TFRecord folder, or an
            iterable of features or (features, labels)); labels give accuracy. Without
            it, `max_eval_examples` random token sequences are used (parity only).
        int8_io: "int8" only: int8 `probability` output.
        integer_only: "int8" only: quantise every operator, attention and LayerNorm
            included (for accelerators that run integer graphs only). By default those
            stay in float32 (INT8_FLOAT_OPS), which runs about 3x faster on CPU.
        num_threads: LiteRT threads for verification.
        metrics: task metrics (`tf_tinybert.metrics`) of the export and of Keras to
            record where `eval_data` has labels; default accuracy, or Pearson and
            Spearman for a regression model.
        dynamic_length: inputs of shape_signature [1, -1]: the runtime runs each text at
            its own length (1 to `sequence_length`, nothing padded), which on short texts
            is several times faster than a fixed [1, L]. Verified against Keras on the
            held-out rows at their own lengths, and resized to lengths 1, 2 and
            `sequence_length` before anything is written; "int8" calibrates on rows
            padded to the longest of them (TFLite's calibrator takes one shape per run).
            export.json records `"dynamic_length": true` and
            `sequence_length` as the maximum the runtime truncates to. MediaPipe's
            TextClassifier runs such a model but truncates at 128 tokens
            (MEDIAPIPE_DYNAMIC_LENGTH): export.json's `metadata.mediapipe_text_classifier`
            is true for a dynamic export only at `sequence_length=128`.

    Returns:
        An ExportReport; export.json holds the same information.

    Example:
    ```python
    report = export_classifier(student, tokenizer, "out/sst2_fp32", quantization="fp32",
                               labels=["negative", "positive"])
    report.verification.max_abs_diff
    export_classifier(student, tokenizer, "out/sst2_any_length", dynamic_length=True)
    ```
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.lexists(output_dir) and not overwrite:
        raise OutputExistsError(
            f"Output path {output_dir!r} exists. Expected a new path; pass overwrite=True "
            "(--overwrite) to replace it."
        )
    if isinstance(model, (str, os.PathLike)):
        model = keras.models.load_model(os.fspath(model))
    sequence_length = check_export_arguments(model, quantization, sequence_length)
    if quantization != "int8" and integer_only:
        raise ValueError(
            "`integer_only` applies to quantization='int8' only. "
            f"Received: quantization={quantization!r}, integer_only=True."
        )
    float_ops = () if integer_only else INT8_FLOAT_OPS
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"Expected 0 <= min_agreement <= 1. Received: {min_agreement}.")
    tokenizer = _load_tokenizer(tokenizer)
    vocabulary = _check_vocabulary(model, tokenizer)
    num_classes = model.output_dense.units
    regression = is_regression(model)
    if regression and int8_io:
        raise ValueError(
            "`int8_io` applies to classifiers only: a regression model's `score` output stays "
            "float32 (its range is the task's, not [0, 1]). Received: int8_io=True for a model "
            "with 1 output unit."
        )
    if regression:
        if labels:
            raise ValueError(
                "A regression model (1 output unit) has no class labels. Received: "
                f"labels={labels!r}."
            )
        labels = []
    else:
        labels = _resolve_labels(labels, num_classes, eval_data, representative_data)

    model_content = to_tflite(
        model,
        quantization,
        sequence_length,
        representative_data=representative_data,
        int8_io=int8_io,
        max_calibration_examples=max_calibration_examples,
        float_ops=float_ops,
        dynamic_length=dynamic_length,
    )
    model_content = add_metadata(model_content, vocabulary, None if regression else labels)
    signature = check_signature(model_content, sequence_length, num_classes, dynamic_length)
    features, eval_labels, source = _held_out(
        eval_data, tokenizer, sequence_length, max_eval_examples
    )
    result = compare(model, model_content, features, eval_labels, num_threads=num_threads,
                     metrics=metrics)
    check(result, quantization, FP32_MAX_ABS_DIFF, min_agreement)

    info = {
        "format_version": 1,
        "model_file": MODEL_FILE,
        "task_type": "regression" if regression else "classification",
        "quantization": quantization,
        "int8_io": bool(int8_io),
        "float_ops": (list(float_ops) if quantization == "int8" else None),
        "sequence_length": sequence_length,
        "dynamic_length": dynamic_length,
        "num_classes": num_classes,
        "labels": list(labels),
        "signature": signature,
        "attention_mask_value": INT8_ATTENTION_MASK_VALUE if quantization == "int8" else None,
        "sizes": {
            "model_bytes": len(model_content),
            "model_mb": round(len(model_content) / 1e6, 3),
            "keras_parameters": int(model.count_params()),
            "keras_fp32_mb": round(model.count_params() * 4 / 1e6, 3),
        },
        "verification": {
            **result.to_dict(),
            "source": source,
            "max_abs_diff_allowed": FP32_MAX_ABS_DIFF if quantization == "fp32" else None,
            "min_agreement": min_agreement if quantization != "fp32" else None,
            "agreement_measure": (None if quantization == "fp32" else
                                  "pearson_with_keras" if regression else "top1_agreement"),
            "passed": True,
        },
        "tokenizer": _tokenizer_identity(tokenizer, vocabulary),
        "operators": operator_versions(model_content),
        "min_litert_version": min_runtime_version(model_content),
        "verified_with": _versions(),
        "metadata": {"min_parser_version": MIN_PARSER_VERSION,
                     "associated_files": [VOCAB_FILE] if regression else [VOCAB_FILE, LABELS_FILE],
                     "mediapipe_text_classifier": not regression and (
                         not dynamic_length or sequence_length == MEDIAPIPE_DYNAMIC_LENGTH)},
    }
    files = {
        MODEL_FILE: model_content,
        VOCAB_FILE: ("\n".join(vocabulary) + "\n").encode("utf-8"),
        EXPORT_INFO_FILE: (json.dumps(info, indent=2) + "\n").encode("utf-8"),
    }
    if not regression:
        files[LABELS_FILE] = ("\n".join(labels) + "\n").encode("utf-8")
    _write_folder_atomically(output_dir, files)
    return ExportReport(
        output_dir=output_dir,
        model_path=os.path.join(output_dir, MODEL_FILE),
        quantization=quantization,
        sequence_length=sequence_length,
        model_bytes=len(model_content),
        labels=tuple(labels),
        verification=result,
        info=info,
    )


def _load_tokenizer(tokenizer):
    if isinstance(tokenizer, (str, os.PathLike)):
        from tf_tinybert.tokenizers import load_tokenizer

        return load_tokenizer(os.fspath(tokenizer))
    if not hasattr(tokenizer, "get_vocabulary"):
        raise ValueError(
            "Expected a keras-hub BertTokenizer (or a preset name or folder). "
            f"Received: {type(tokenizer).__name__}."
        )
    return tokenizer


def _check_vocabulary(model, tokenizer) -> list[str]:
    vocabulary = [str(token) for token in tokenizer.get_vocabulary()]
    expected = model.backbone.vocabulary_size
    if len(vocabulary) != expected:
        raise ValueError(
            f"The tokenizer's vocabulary has {len(vocabulary)} tokens but the model's "
            f"token embedding table (layer 'token_embedding') has {expected} rows. "
            "Expected the tokenizer the model was trained with."
        )
    bad = next((i for i, token in enumerate(vocabulary) if "\n" in token or not token), None)
    if bad is not None:
        raise ValueError(
            f"Vocabulary entry {bad} ({vocabulary[bad]!r}) is empty or holds a newline; "
            "vocab.txt stores one token per line."
        )
    return vocabulary


def _resolve_labels(labels, num_classes, eval_data, representative_data) -> list[str]:
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",")]
    if labels is None:
        labels = _manifest_labels(eval_data) or _manifest_labels(representative_data)
    if labels is None:
        return [str(i) for i in range(num_classes)]
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise ValueError(
            f"Expected {num_classes} labels (the model's classifier head 'logits' has "
            f"{num_classes} units). Received {len(labels)}: {labels}."
        )
    if len(set(labels)) != len(labels) or any(not x or "\n" in x for x in labels):
        raise ValueError(f"Expected distinct, non-empty one-line labels. Received: {labels}.")
    return labels


def _manifest_labels(source):
    if not isinstance(source, (str, os.PathLike)):
        return None
    from tf_tinybert.data import read_manifest

    names = getattr(read_manifest(os.fspath(source)), "label_names", None)
    return list(names) if names else None


def _held_out(eval_data, tokenizer, sequence_length, max_examples):
    """(features [N, L], labels or None, description) to verify the export on."""
    if eval_data is None:
        return _synthetic_examples(tokenizer, sequence_length, max_examples), None, (
            f"{max_examples} random token sequences (no eval_data given)"
        )
    rows = {key: [] for key in INPUT_FEATURES.values()}
    labels = []
    for element in _with_labels(eval_data):
        features, batch_labels = element
        arrays = {key: np.asarray(features[key]) for key in rows}
        arrays = {key: a[None, :] if a.ndim == 1 else a for key, a in arrays.items()}
        count = arrays[TOKEN_IDS].shape[0]
        for key, array in arrays.items():
            rows[key].extend(fit_length(row, sequence_length) for row in array)
        labels.extend(
            [None] * count if batch_labels is None else np.asarray(batch_labels).reshape(-1)
        )
        if len(labels) >= max_examples:
            break
    if not labels:
        raise ValueError("eval_data yielded no examples; expected at least one.")
    features = {key: np.stack(value[:max_examples]) for key, value in rows.items()}
    labels = labels[:max_examples]
    known = None if any(label is None for label in labels) else np.asarray(labels)
    return features, known, f"{len(labels)} eval_data examples"


def _with_labels(source):
    if isinstance(source, (str, os.PathLike)):
        from tf_tinybert import data

        source = data.load(os.fspath(source), batch_size=32, shuffle=False,
                           bucket_by_length=False)
    for element in source:
        if isinstance(element, (tuple, list)) and len(element) == 2:
            yield element[0], element[1]
        else:
            yield next(iterate_features([element])), None


def _synthetic_examples(tokenizer, sequence_length, count):
    """Seeded random word-piece sequences: [CLS] tokens [SEP], then padding."""
    rng = np.random.default_rng(0)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    candidates = np.array(
        [i for i in range(tokenizer.vocabulary_size()) if i not in special], dtype=np.int32
    )
    token_ids = np.zeros((count, sequence_length), dtype=np.int32)
    padding_mask = np.zeros_like(token_ids)
    for row in range(count):
        length = int(rng.integers(3, sequence_length + 1))
        token_ids[row, :length] = rng.choice(candidates, size=length)
        token_ids[row, 0], token_ids[row, length - 1] = (
            tokenizer.cls_token_id, tokenizer.sep_token_id)
        padding_mask[row, :length] = 1
    return {TOKEN_IDS: token_ids, PADDING_MASK: padding_mask,
            SEGMENT_IDS: np.zeros_like(token_ids)}


def _tokenizer_identity(tokenizer, vocabulary) -> dict:
    return {
        "vocabulary_size": len(vocabulary),
        "vocabulary_sha256": hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest(),
        "lowercase": getattr(tokenizer, "lowercase", None),
        "strip_accents": getattr(tokenizer, "strip_accents", None),
    }


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tensorflow", "ai-edge-litert", "keras", "keras-hub"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def _write_folder_atomically(output_dir: str, files: dict[str, bytes]) -> None:
    parent, name = os.path.split(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        for file_name, content in files.items():
            with open(os.path.join(staging, file_name), "wb") as f:
                f.write(content)
        if os.path.lexists(output_dir):
            old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.replace(output_dir, os.path.join(old, name))
            try:
                os.replace(staging, output_dir)
            except OSError:
                os.replace(os.path.join(old, name), output_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
