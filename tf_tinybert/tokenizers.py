"""Loading the teacher's WordPiece tokenizer and naming it unambiguously.

A prepared data directory records `tokenizer_identity(tokenizer)` so that `data.load` can
refuse to feed token ids to a model whose vocabulary they were not made with.

Example:
```python
from tf_tinybert.tokenizers import load_tokenizer, vocabulary_hash

tokenizer = load_tokenizer("path/to/all-MiniLM-L6-v2")   # a Hugging Face folder
tokenizer(["a witty film"])
vocabulary_hash(tokenizer)                               # 'e1f4...'
```
"""

from __future__ import annotations

import hashlib
import json
import os

import keras_hub

from tf_tinybert.runtime.contract import VOCAB_FILE

__all__ = ["load_tokenizer", "tokenizer_identity", "vocabulary_hash"]

_HF_TOKENIZER_CONFIG = "tokenizer_config.json"
_KERAS_HUB_METADATA = "metadata.json"


def load_tokenizer(preset_or_dir) -> keras_hub.models.BertTokenizer:
    """Returns the keras-hub `BertTokenizer` named by a preset, a folder or an instance.

    Args:
        preset_or_dir: a keras-hub preset name (`"bert_base_en_uncased"`: needs the
            network the first time), a local keras-hub preset folder (with
            `metadata.json`), a Hugging Face folder holding `vocab.txt` (and optionally
            `tokenizer_config.json`), or a `BertTokenizer`, returned unchanged.

    For a Hugging Face folder the casing follows `tokenizer_config.json`
    (`do_lower_case`, default True) and accents are stripped whenever the text is
    lower-cased, as Hugging Face's `BertTokenizer` does when `strip_accents` is null.

    Example:
    ```python
    tokenizer = load_tokenizer("path/to/hf_folder_with_vocab_txt")
    tokenizer("hello world")
    ```
    """
    if isinstance(preset_or_dir, keras_hub.models.BertTokenizer):
        return preset_or_dir
    if not isinstance(preset_or_dir, (str, os.PathLike)):
        raise ValueError(
            "Expected a preset name, a folder or a keras_hub BertTokenizer. "
            f"Received: {type(preset_or_dir).__name__}"
        )
    path = os.fspath(preset_or_dir)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, _KERAS_HUB_METADATA)):
            return keras_hub.models.BertTokenizer.from_preset(path)
        if os.path.exists(os.path.join(path, VOCAB_FILE)):
            return _load_hugging_face_tokenizer(path)
        raise ValueError(
            f"{path}: not a tokenizer folder. Expected a keras-hub preset "
            f"(with {_KERAS_HUB_METADATA}) or a Hugging Face folder (with {VOCAB_FILE})."
        )
    if os.path.exists(path):
        raise ValueError(f"{path}: expected a tokenizer folder; this path is a file.")
    if "://" not in path and (os.sep in path or path.startswith(".")):
        raise ValueError(f"{path}: tokenizer folder not found.")
    return keras_hub.models.BertTokenizer.from_preset(path)


def _load_hugging_face_tokenizer(folder: str) -> keras_hub.models.BertTokenizer:
    config = {}
    config_path = os.path.join(folder, _HF_TOKENIZER_CONFIG)
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as file:
            try:
                config = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(f"{config_path}: invalid JSON ({error})") from None
    lowercase = bool(config.get("do_lower_case", True))
    strip_accents = config.get("strip_accents")
    if strip_accents is None:
        # Hugging Face strips accents whenever it lower-cases, unless told otherwise.
        strip_accents = lowercase
    with open(os.path.join(folder, VOCAB_FILE), encoding="utf-8") as file:
        vocabulary = [line.rstrip("\r\n") for line in file]
    while vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, lowercase=lowercase, strip_accents=bool(strip_accents)
    )


def vocabulary_hash(tokenizer) -> str:
    """sha256 (hex) of the tokenizer's vocabulary joined with newlines.

    Example:
    ```python
    vocabulary_hash(load_tokenizer("path/to/hf_folder"))
    ```
    """
    vocabulary = tokenizer.get_vocabulary()
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def tokenizer_identity(tokenizer) -> dict:
    """What a prepared data set records about the tokenizer that made it.

    Returns a JSON-ready dict: `vocabulary_size`, `vocabulary_hash`, `lowercase`,
    `strip_accents`, and the ids of `[PAD]`, `[CLS]`, `[SEP]`, `[MASK]`.

    Example:
    ```python
    tokenizer_identity(load_tokenizer("path/to/hf_folder"))["vocabulary_hash"]
    ```
    """
    return {
        "class_name": type(tokenizer).__name__,
        "vocabulary_size": int(tokenizer.vocabulary_size()),
        "vocabulary_hash": vocabulary_hash(tokenizer),
        "lowercase": bool(tokenizer.lowercase),
        "strip_accents": bool(tokenizer.strip_accents),
        "pad_token_id": int(tokenizer.pad_token_id),
        "cls_token_id": int(tokenizer.cls_token_id),
        "sep_token_id": int(tokenizer.sep_token_id),
        "mask_token_id": int(tokenizer.mask_token_id),
    }
