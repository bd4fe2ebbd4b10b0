"""General distillation (TinyBERT's first stage) on a plain-text corpus, end to end.

`run_general(config)` prepares the corpus (streamed, packed: `tf_tinybert.data.corpus`),
distils a student from the teacher's intermediate layers as one resumable stage (backups
every `training.checkpoint_every_steps`; run it again after a crash to continue), and saves
the student as a keras-hub preset folder: `keras_hub.models.BertBackbone.from_preset(folder)`
loads it, and a task recipe starts from it with `student.init: <folder>`.

Example:
```python
from tf_tinybert.config import load_general_recipe
from tf_tinybert.general import run_general

folder = run_general(load_general_recipe("configs/recipes/general_tinybert4.yaml"))
```
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time

import keras
import keras_hub

from tf_tinybert.atomic import write_bytes
from tf_tinybert.config import GeneralRecipeConfig, save_config
from tf_tinybert.data import load, read_manifest
from tf_tinybert.data.corpus import prepare_corpus
from tf_tinybert.distiller import Distiller
from tf_tinybert.models import build_student
from tf_tinybert.stage import distill
from tf_tinybert.strategies import make_strategy
from tf_tinybert.teachers import load_teacher, resolve_source
from tf_tinybert.tokenizers import load_tokenizer

PRESET_FOLDER = "student_preset"


def save_student_preset(student, tokenizer, folder: str | os.PathLike) -> pathlib.Path:
    """Save a student's backbone and tokenizer as a keras-hub preset folder, atomically.

    The folder replaces any earlier one only once complete. The classifier head is left out:
    a task starts a new one (`student.init: <folder>` in a recipe).

    Example:
    ```python
    save_student_preset(student, tokenizer, "runs/general/student_preset")
    keras_hub.models.BertBackbone.from_preset("runs/general/student_preset")
    ```
    """
    folder = pathlib.Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        student.backbone.save_to_preset(str(temporary))
        tokenizer.save_to_preset(str(temporary))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def classifier_from_preset(folder: str | os.PathLike, num_classes: int, dropout: float = 0.1,
                           expected: dict | None = None) -> keras_hub.models.BertTextClassifier:
    """A `BertTextClassifier` (no preprocessor, new head) on a saved backbone preset.

    `expected` (e.g. `StudentConfig.backbone_config()`) names the shape the caller means;
    a preset of another shape is refused, naming the differences (dropout excepted).

    Example:
    ```python
    student = classifier_from_preset("runs/general_tinybert4/student_preset", num_classes=2)
    ```
    """
    folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ValueError(f"{folder}: not a keras-hub preset folder (no config.json); write "
                         "one with `tf-tinybert run configs/recipes/general_tinybert4.yaml`")
    backbone = keras_hub.models.BertBackbone.from_preset(folder)
    differences = {key: (value, getattr(backbone, key)) for key, value in (expected or {}).items()
                   if key != "dropout" and getattr(backbone, key) != value}
    if differences:
        raise ValueError(
            f"{folder}: the preset's backbone differs from the student config: "
            + ", ".join(f"{key} {found} (config: {wanted})"
                        for key, (wanted, found) in differences.items())
        )
    return keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=num_classes,
                                               preprocessor=None, dropout=dropout)


def run_general(config: GeneralRecipeConfig, verbose: int = 1) -> pathlib.Path:
    """Run a general-distillation recipe; return the student's preset folder.

    Writes under `config.run_dir`: `config.yaml`, `data/corpus` (prepared once),
    `backup/general` while training, `student_preset/` and `report.json` (seconds per step,
    losses per epoch).
    """
    run_dir = pathlib.Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    keras.utils.set_random_seed(config.seed)
    source = resolve_source(config.teacher)
    tokenizer = load_tokenizer(config.tokenizer or source)
    report = {"name": config.name, "corpus": config.corpus}
    started = time.perf_counter()
    data_dir = run_dir / "data" / "corpus"
    if not (data_dir / "manifest.json").exists():
        prepare_corpus(config.corpus, tokenizer, data_dir,
                       max_sequence_length=config.max_sequence_length, overwrite=True,
                       verbose=verbose)
    report["data"] = {key: read_manifest(data_dir).source.get(key)
                      for key in ("documents", "lines", "sequences", "split_lines")}
    report["prepare_seconds"] = round(time.perf_counter() - started, 1)
    stage = config.general
    strategy = make_strategy(config.training.strategy)
    dataset = load(data_dir, batch_size=stage.batch_size, seed=config.seed)
    with strategy.scope():
        teacher = load_teacher(config.teacher, num_classes=2)  # the head is not distilled
        student = build_student(
            config.student.backbone_config(), num_classes=2,
            vocabulary_size=teacher.backbone.vocabulary_size,
            max_sequence_length=min(config.max_sequence_length,
                                    teacher.backbone.max_sequence_length),
            dropout=config.student.dropout,
        )
        layer_map = stage.layer_map if isinstance(stage.layer_map, str) else list(stage.layer_map)
        distiller = Distiller(teacher=teacher, student=student, layer_map=layer_map)
        started = time.perf_counter()
        history = distill(distiller, dataset, stage="general", folder=run_dir, schedule=stage,
                          training=config.training, loss_weights=stage.loss_weights.as_dict(),
                          relation_heads=stage.relation_heads,
                          relation_layers=stage.relation_layers, verbose=verbose).history
    report["distill_seconds"] = round(time.perf_counter() - started, 1)
    report["history"] = {key: [float(v) for v in values]
                         for key, values in history.history.items()}
    folder = save_student_preset(student, tokenizer, run_dir / PRESET_FOLDER)
    report["student_preset"] = str(folder)
    write_bytes(run_dir / "report.json", json.dumps(report, indent=2).encode("utf-8"))
    if verbose:
        print(f"[tf-tinybert] general-distilled student saved to {folder}", flush=True)
    return folder
