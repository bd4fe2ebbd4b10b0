"""One training stage: compiled model + data + schedule + run folder -> a resumable, logged fit
that keeps the best model by the task metric.

The recipe (`tf_tinybert.recipe`) and every CLI command train through this module, and no other
place compiles a model for training:

- `train_on_labels`: a classifier on its labels (the teacher's fine-tuning, the baseline);
- `distill`: one `Distiller` stage (general, intermediate, prediction);
- `finetune_teacher`: `train_on_labels` after checking that the model is a BERT teacher;
- `fit_stage`: the fit they share (`tf_tinybert.resume.fit_resumable` with the callbacks of
  `tf_tinybert.callbacks.stage_callbacks`).

A stage named `name` keeps its backups in `<folder>/backup/<name>` (a killed run resumes from
there when called again), its CSV and TensorBoard logs in `<folder>/logs`, and, with dev data,
its best model in `<folder>/best_<name>.keras`, which it returns.

Example:
```python
from tf_tinybert.config import ScheduleConfig, TrainingConfig
from tf_tinybert.stage import train_on_labels

result = train_on_labels(student, train_ds, folder="runs/x", name="baseline",
                         schedule=ScheduleConfig(epochs=3, learning_rate=1e-4),
                         training=TrainingConfig(checkpoint_every_steps=100), dev_data=dev_ds)
result.model  # the best model by accuracy on dev_ds
```
"""

from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import keras
import tensorflow as tf

from tf_tinybert import token_losses
from tf_tinybert.callbacks import stage_callbacks
from tf_tinybert.choices import TOKEN_TASK_TYPES
from tf_tinybert.config import ScheduleConfig, TrainingConfig
from tf_tinybert.evaluation import default_metrics, steps_in
from tf_tinybert.keras_hub_bert import bert_backbone
from tf_tinybert.optimizers import adamw
from tf_tinybert.resume import fit_resumable


class StageResult(NamedTuple):
    """What a stage returns: the model to keep (the best by the task metric when dev data was
    given, else the last) and the `History` of the epochs this call ran."""

    model: keras.Model
    history: keras.callbacks.History


def _total_steps(train_data: tf.data.Dataset, epochs: int, max_steps: int | None) -> int:
    if epochs < 1:
        raise ValueError(f"Expected `epochs` >= 1. Received: epochs={epochs}")
    total = epochs * steps_in(train_data)
    return total if max_steps is None else min(total, int(max_steps))


def fit_stage(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    folder: str | os.PathLike,
    name: str,
    training: TrainingConfig | None = None,
    max_steps: int | None = None,
    dev_data: tf.data.Dataset | None = None,
    metrics=("accuracy",),
    keep_best_of=None,
    evaluate=None,
    verbose="auto",
) -> keras.callbacks.History:
    """Fit a compiled model as the resumable stage `name` of a run kept in `folder`.

    Backs up every `training.checkpoint_every_steps` steps under `folder/backup/<name>` and
    resumes from there when run again after a crash (`tf_tinybert.resume.fit_resumable`); stops
    on a NaN loss naming the step; logs CSV and TensorBoard under `folder/logs`; with
    `dev_data`, validates on it and keeps the best model by the first of `metrics` at
    `folder/best_<name>.keras` (`keep_best_of(model)` picks what to save, e.g. the student of
    a Distiller). `evaluate(model, dev_data) -> scores` scores models that are not sentence
    classifiers (`tf_tinybert.token_evaluation`); then Keras' own validation pass is skipped
    (the dev batches may carry decoding features the model does not take) and the scores
    come from `evaluate` alone.

    Example:
    ```python
    fit_stage(compiled_student, train_ds, epochs=2, folder="runs/x", name="baseline",
              dev_data=dev_ds)
    ```
    """
    folder = pathlib.Path(folder)
    training = training or TrainingConfig()
    callbacks = stage_callbacks(folder, name, training, dev_data=dev_data,
                                metrics=tuple(metrics), target=keep_best_of, evaluate=evaluate)
    return fit_resumable(model, train_data, epochs=epochs, backup_dir=folder / "backup" / name,
                         checkpoint_every=training.checkpoint_every_steps, max_steps=max_steps,
                         validation_data=dev_data if evaluate is None else None,
                         callbacks=callbacks, verbose=verbose)


def _best(folder: pathlib.Path, name: str, model: keras.Model) -> keras.Model:
    best = folder / f"best_{name}.keras"
    return keras.saving.load_model(best, compile=False) if best.exists() else model


def train_on_labels(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    folder: str | os.PathLike,
    name: str,
    schedule: ScheduleConfig | None = None,
    epochs: int | None = None,
    training: TrainingConfig | None = None,
    dev_data: tf.data.Dataset | None = None,
    metrics=None,
    evaluate=None,
    verbose="auto",
) -> StageResult:
    """Train a classifier on its labels as a resumable stage; return the best model.

    Compiles `model` with AdamW (linear warm-up, then linear decay to zero over the stage's
    steps), cross-entropy on logits and accuracy, or mean squared error for regression
    (`num_classes == 1`), or `token_losses.label_loss` for a per-token model
    (`tf_tinybert.token_models`: a tagger or a span extractor); fits it with `fit_stage`; returns the best model by the first of
    `metrics` on `dev_data` (reloaded from `<folder>/best_<name>.keras`), or the trained model
    itself without dev data.

    Args:
        model: a classifier with a `num_classes` attribute whose outputs are logits.
        train_data: batched `(features, labels)`, batched with `schedule.batch_size`.
        folder: the run folder (backups, logs, best model).
        name: the stage's name in file names ("teacher", "baseline", ...).
        schedule: learning rate, warm-up, weight decay, epochs, max_steps (defaults:
            `ScheduleConfig()`).
        epochs: overrides `schedule.epochs`.
        training: checkpoints, XLA, TensorBoard (`TrainingConfig()` when None).
        dev_data: labeled dev batches to keep the best model by.
        metrics: `tf_tinybert.metrics` names; the first selects (default: accuracy, or
            Pearson and Spearman for regression).
        evaluate: `evaluate(model, dev_data) -> scores` (see `fit_stage`); per-token models
            need one (entity F1, SQuAD F1: `tf_tinybert.token_evaluation`).

    Example:
    ```python
    result = train_on_labels(student, train_ds, folder="runs/x", name="baseline",
                             schedule=ScheduleConfig(epochs=3, learning_rate=1e-4),
                             dev_data=dev_ds)
    result.history.history["loss"]
    ```
    """
    schedule = schedule or ScheduleConfig()
    training = training or TrainingConfig()
    epochs = schedule.epochs if epochs is None else epochs
    total = _total_steps(train_data, epochs, schedule.max_steps)
    loss, train_metrics = _label_loss(model)
    model.compile(
        optimizer=adamw(schedule.learning_rate, max(1, total), schedule.warmup,
                        schedule.weight_decay),
        loss=loss, metrics=train_metrics, jit_compile=training.xla,
    )
    token_task = getattr(model, "task", None) in TOKEN_TASK_TYPES
    if token_task and dev_data is not None and evaluate is None:
        raise ValueError(f"A {model.task} model is scored on dev data by an `evaluate` "
                         "function (tf_tinybert.token_evaluation); none was given.")
    metrics = tuple(metrics or default_metrics(model.num_classes))
    history = fit_stage(model, train_data, epochs=epochs, folder=folder, name=name,
                        training=training, max_steps=schedule.max_steps, dev_data=dev_data,
                        metrics=metrics, evaluate=evaluate, verbose=verbose)
    best = _best(pathlib.Path(folder), name, model) if dev_data is not None else model
    return StageResult(best, history)


def _label_loss(model) -> tuple:
    """(loss, training metrics) of a model trained on labels alone."""
    task = getattr(model, "task", None)
    if task in TOKEN_TASK_TYPES:
        return token_losses.label_loss(task), []
    if model.num_classes == 1:
        return keras.losses.MeanSquaredError(), []
    return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            [keras.metrics.SparseCategoricalAccuracy("accuracy")])


def finetune_teacher(
    teacher: keras.Model,
    train_data: tf.data.Dataset,
    *,
    folder: str | os.PathLike,
    schedule: ScheduleConfig | None = None,
    training: TrainingConfig | None = None,
    dev_data: tf.data.Dataset | None = None,
    metrics=None,
    evaluate=None,
    verbose="auto",
) -> StageResult:
    """Fine-tune a BERT teacher on its labels: `train_on_labels` as the stage "teacher", after
    checking that `teacher` is a BERT-family classifier (or a per-token BERT model, scored by
    `evaluate`).

    Example:
    ```python
    teacher = load_teacher("minilm-l6-offline", num_classes=2)
    teacher = finetune_teacher(teacher, train_ds, folder="runs/x", dev_data=dev_ds,
                               schedule=FinetuneConfig(epochs=1, learning_rate=1e-4)).model
    ```
    """
    bert_backbone(teacher, "teacher")
    return train_on_labels(teacher, train_data, folder=folder, name="teacher", schedule=schedule,
                           training=training, dev_data=dev_data, metrics=metrics,
                           evaluate=evaluate, verbose=verbose)


def distill(
    distiller,
    train_data: tf.data.Dataset,
    *,
    stage: str,
    folder: str | os.PathLike,
    name: str | None = None,
    schedule: ScheduleConfig | None = None,
    training: TrainingConfig | None = None,
    dev_data: tf.data.Dataset | None = None,
    metrics=("accuracy",),
    temperature: float = 1.0,
    loss_weights: dict | None = None,
    evaluate=None,
    verbose="auto",
    **compile_options,
) -> StageResult:
    """Run one distillation stage of a `tf_tinybert.distiller.Distiller`; return the student.

    Compiles the Distiller for `stage` ("general", "intermediate", "prediction") with AdamW
    over the stage's steps, then fits it with `fit_stage`. Only the prediction stage trains the
    student's logits, so only there is the student checked on `dev_data` at each epoch's end
    and the best one (by the first of `metrics`) kept and returned; the other stages return the
    trained student.

    Args:
        distiller: a `Distiller` holding the teacher and the student.
        train_data: batched features (with labels or teacher logits where the stage needs
            them), batched with `schedule.batch_size`.
        stage: the Distiller stage.
        folder, name: the run folder and the stage's name in file names (default: `stage`).
        schedule, training: as for `train_on_labels`.
        dev_data, metrics: labeled dev batches and metric names (prediction stage only).
        temperature, loss_weights: as `Distiller.compile` takes them.
        **compile_options: further `Distiller.compile` options (`relation_heads`,
            `relation_layers`).
        evaluate: `evaluate(student, dev_data) -> scores` (see `fit_stage`): how the student
            of a `TokenDistiller` is scored.

    Example:
    ```python
    distiller = Distiller(teacher=teacher, student=student, layer_map="uniform")
    distill(distiller, train_ds, stage="intermediate", folder="runs/x",
            schedule=IntermediateStageConfig(epochs=1))
    student = distill(Distiller(teacher=teacher, student=student), train_ds,
                      stage="prediction", folder="runs/x", dev_data=dev_ds).model
    ```
    """
    schedule = schedule or ScheduleConfig()
    training = training or TrainingConfig()
    name = name or stage
    total = _total_steps(train_data, schedule.epochs, schedule.max_steps)
    distiller.compile(
        optimizer=adamw(schedule.learning_rate, max(1, total), schedule.warmup,
                        schedule.weight_decay),
        stage=stage, temperature=temperature, loss_weights=loss_weights,
        jit_compile=training.xla, **compile_options)
    keep = stage == "prediction" and dev_data is not None
    history = fit_stage(distiller, train_data, epochs=schedule.epochs, folder=folder, name=name,
                        training=training, max_steps=schedule.max_steps,
                        dev_data=dev_data if keep else None, metrics=metrics,
                        keep_best_of=lambda model: model.student, evaluate=evaluate,
                        verbose=verbose)
    student = _best(pathlib.Path(folder), name, distiller.student) if keep else distiller.student
    return StageResult(student, history)
