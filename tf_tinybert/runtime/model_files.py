"""Finding what a .tflite classifier needs besides its weights: vocabulary, labels, options.

TFLite metadata packs its associated files (MediaPipe's BERT classifiers carry the WordPiece
vocab.txt and the labels.txt) as a zip archive appended to the flatbuffer; the interpreter
ignores the trailing bytes and `zipfile` finds the archive from its end. `export_classifier`
also writes vocab.txt, labels.txt and export.json beside model.tflite, which serve as the
fallback for a model without metadata.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

from tf_tinybert.runtime.contract import EXPORT_INFO_FILE, LABELS_FILE, VOCAB_FILE
from tf_tinybert.runtime.wordpiece import decode_text, read_vocabulary_text

# Bytes 4..8 of every TFLite flatbuffer: the schema's file_identifier.
TFLITE_IDENTIFIER = b"TFL3"


class ModelFileError(ValueError):
    """A .tflite file, or a file beside it, is missing, unreadable or malformed."""


def read_model_bytes(model_path: str | os.PathLike) -> bytes:
    """The bytes of a TFLite flatbuffer; ModelFileError naming the file where it is not one.

    Example:
    ```python
    model_bytes = read_model_bytes("export/model.tflite")
    ```
    """
    path = os.fspath(model_path)
    try:
        with open(path, "rb") as file:
            model_bytes = file.read()
    except OSError as error:
        raise ModelFileError(f"Cannot read the TFLite model '{path}': {error}.") from error
    if len(model_bytes) < 8 or model_bytes[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(
            f"The file '{path}' is not a TFLite model: expected the flatbuffer identifier "
            f"{TFLITE_IDENTIFIER!r} at bytes 4-8, received {model_bytes[4:8]!r} "
            f"({len(model_bytes)} bytes in all). Is it corrupt or truncated?"
        )
    return model_bytes


def associated_files(model_bytes: bytes) -> dict[str, bytes]:
    """The TFLite metadata's associated files (name -> content); empty where there are none.

    Example:
    ```python
    files = associated_files(read_model_bytes("model.tflite"))
    vocab_text = files["vocab.txt"].decode("utf-8")
    ```
    """
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
        return {}


def _pick(files: dict[str, bytes], exact: str, hint: str) -> str | None:
    """The associated file called `exact`, else the only one whose name contains `hint`."""
    if exact in files:
        return exact
    candidates = sorted(name for name in files if hint in os.path.basename(name).lower())
    return candidates[0] if len(candidates) == 1 else None


def load_vocabulary(
    model_path: str | os.PathLike, model_bytes: bytes, vocab: str | os.PathLike | None = None
) -> tuple[list[str], str]:
    """The WordPiece vocabulary for a model and where it came from.

    Looks, in order, at `vocab` (a vocab.txt path), the model's associated files, and the
    vocab.txt beside the model.

    Example:
    ```python
    tokens, source = load_vocabulary("model.tflite", read_model_bytes("model.tflite"))
    ```
    """
    path = os.fspath(model_path)
    if vocab is not None:
        return _read_lines_file(os.fspath(vocab), "vocabulary"), f"'{os.fspath(vocab)}'"
    files = associated_files(model_bytes)
    name = _pick(files, VOCAB_FILE, "vocab")
    if name is not None:
        source = f"'{name}' inside '{path}'"
        return read_vocabulary_text(decode_text(files[name], source), source), source
    beside = os.path.join(os.path.dirname(path), VOCAB_FILE)
    if os.path.exists(beside):
        return _read_lines_file(beside, "vocabulary"), f"'{beside}'"
    raise ModelFileError(
        f"No WordPiece vocabulary for '{path}': its TFLite metadata has no associated vocab "
        f"file (found {sorted(files) or 'none'}) and there is no '{beside}'. Pass "
        "`vocab='path/to/vocab.txt'` or export with tf_tinybert.export.export_classifier."
    )


def load_labels(
    model_path: str | os.PathLike,
    model_bytes: bytes,
    labels: list[str] | str | os.PathLike | None = None,
) -> list[str] | None:
    """Class names for a model, or None where none are found (callers then use indices).

    Looks, in order, at `labels` (a list or a labels.txt path), the model's associated files,
    and the labels.txt beside the model.

    Example:
    ```python
    names = load_labels("model.tflite", read_model_bytes("model.tflite"))
    ```
    """
    if isinstance(labels, (list, tuple)):
        return [str(label) for label in labels]
    if labels is not None:
        return _read_lines_file(os.fspath(labels), "labels")
    path = os.fspath(model_path)
    files = associated_files(model_bytes)
    name = _pick(files, LABELS_FILE, "label")
    if name is not None:
        source = f"'{name}' inside '{path}'"
        return _split_labels(decode_text(files[name], source))
    beside = os.path.join(os.path.dirname(path), LABELS_FILE)
    if os.path.exists(beside):
        return _read_lines_file(beside, "labels")
    return None


def read_export_info(model_path: str | os.PathLike) -> dict:
    """The export.json written beside the model by `export_classifier`, or {} where absent.

    Example:
    ```python
    info = read_export_info("export/model.tflite")
    ```
    """
    path = os.path.join(os.path.dirname(os.fspath(model_path)), EXPORT_INFO_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except (OSError, ValueError) as error:
        raise ModelFileError(f"Cannot read '{path}' as JSON: {error}.") from error
    if not isinstance(info, dict):
        raise ModelFileError(
            f"Expected '{path}' to hold a JSON object. Received: {type(info).__name__}."
        )
    return info


def tokenizer_options(info: dict) -> dict[str, bool]:
    """`lowercase` / `strip_accents` recorded in export.json (top level or under "tokenizer").

    Example:
    >>> tokenizer_options({"tokenizer": {"lowercase": True, "strip_accents": False}})
    {'lowercase': True, 'strip_accents': False}
    """
    options = {}
    for scope in (info, info.get("tokenizer") if isinstance(info.get("tokenizer"), dict) else {}):
        for key in ("lowercase", "strip_accents"):
            if isinstance(scope.get(key), bool):
                options[key] = scope[key]
    return options


def _split_labels(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_lines_file(path: str, what: str) -> list[str]:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ModelFileError(f"Cannot read the {what} file '{path}': {error}.") from error
    text = decode_text(raw, f"'{path}'")
    if what == "labels":
        return _split_labels(text)
    return read_vocabulary_text(text, f"'{path}'")
