"""Keras callbacks for long runs: stop on a NaN loss, keep the best model, log to CSV and
TensorBoard. Backups and exact resumption live in `tf_tinybert.resume.fit_resumable`.

Example:
```python
from tf_tinybert.callbacks import stage_callbacks
from tf_tinybert.resume import fit_resumable

callbacks = stage_callbacks("runs/x", "intermediate", config.training,
                            dev_data=dev_ds, metrics=("accuracy",))
fit_resumable(distiller, train_ds, epochs=3, backup_dir="runs/x/backup/intermediate",
              checkpoint_every=200, callbacks=callbacks)
```
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Callable, Sequence

import keras
import numpy as np

from tf_tinybert.atomic import atomic_path, write_text
from tf_tinybert.evaluation import predict_with_labels
from tf_tinybert.metrics import compute_metrics


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step and batch."""


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, naming where.

    Unlike `keras.callbacks.TerminateOnNaN`, it raises `NonFiniteLossError`, so a script or
    recipe stops with the global step, the epoch and the batch in the message (and no backup
    of the broken weights is written by callbacks placed after it).

    Example:
    ```python
    model.fit(train_ds, epochs=3, callbacks=[StopOnNaN()])
    ```
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {}
        for name, value in (logs or {}).items():
            if "loss" in name:
                number = float(np.asarray(value))
                if not math.isfinite(number):
                    bad[name] = number
        if bad:
            optimizer = getattr(self.model, "optimizer", None)
            step = int(optimizer.iterations) if optimizer is not None else None
            raise NonFiniteLossError(
                f"Training stopped: non-finite loss at step {step} (epoch {self.epoch + 1}, "
                f"batch {batch + 1} of the epoch): "
                + ", ".join(f"{name}={value}" for name, value in bad.items())
                + ". Lower the learning rate, check the inputs of that batch, or turn off "
                "mixed precision."
            )


def _default_target(model: keras.Model) -> keras.Model:
    return getattr(model, "student", model)


class BestModelKeeper(keras.callbacks.Callback):
    """Evaluates a model on dev data at each epoch's end and keeps the best as `.keras`.

    The score is the first of `metrics` (`tf_tinybert.metrics` names, all higher-is-better).
    Every score is added to the epoch logs as `dev_<metric>` (so CSV and TensorBoard logs placed
    after this callback record it). The best model is written atomically to `path`, with its
    scores in a `.json` file beside it, which a resumed run reads back.

    Args:
        data: labeled dev dataset of `(features, labels)`.
        path: where to save the best model (`.keras`).
        metrics: metric names; the first selects.
        target: picks the model to evaluate and save from the trained one; by default its
            `student` (for a `Distiller`) or the model itself.
        evaluate: `evaluate(model, data) -> scores` for models that are not sentence
            classifiers (e.g. entity F1 of a tagger, `tf_tinybert.token_evaluation`); the
            scores must hold the first of `metrics`. By default the predictions of
            `model` on `data` are scored with `tf_tinybert.metrics`.

    Example:
    ```python
    keeper = BestModelKeeper(dev_ds, "runs/x/best_student.keras", metrics=("accuracy",))
    distiller.fit(train_ds, epochs=3, callbacks=[keeper])
    keeper.best  # {'accuracy': 0.87, 'epoch': 2}
    ```
    """

    def __init__(self, data, path: str | os.PathLike, metrics: Sequence[str] = ("accuracy",),
                 target: Callable[[keras.Model], keras.Model] | None = None,
                 evaluate: Callable[[keras.Model, object], dict] | None = None):
        super().__init__()
        if not str(path).endswith(".keras"):
            raise ValueError(f"Expected a `.keras` path for the best model. Received: {path}")
        self.data = data
        self.path = pathlib.Path(path)
        self.metrics = tuple([metrics] if isinstance(metrics, str) else metrics)
        self.target = target or _default_target
        self.evaluate = evaluate
        self.best: dict | None = None

    @property
    def scores_path(self) -> pathlib.Path:
        return self.path.with_suffix(".json")

    @property
    def monitor(self) -> str:
        return self.metrics[0]

    def on_train_begin(self, logs=None):
        if self.best is None and self.scores_path.is_file() and self.path.is_file():
            self.best = json.loads(self.scores_path.read_text(encoding="utf-8"))

    def on_epoch_end(self, epoch, logs=None):
        model = self.target(self.model)
        if self.evaluate is None:
            predictions, labels = predict_with_labels(model, self.data)
            scores = compute_metrics(self.metrics, predictions, labels)
        else:
            scores = self.evaluate(model, self.data)
            if self.monitor not in scores:
                raise ValueError(f"The evaluation returned {sorted(scores)}, without the "
                                 f"metric {self.monitor!r} that selects the best model.")
        if logs is not None:
            # Numbers only (CSV and TensorBoard); nested scores such as per-type F1 stay in
            # the best model's .json.
            logs.update({f"dev_{name}": value for name, value in scores.items()
                         if isinstance(value, (int, float)) and name in self.metrics})
        value = scores[self.monitor]
        if self.best is None or value > self.best[self.monitor]:
            self.best = {**scores, "epoch": epoch + 1}
            with atomic_path(self.path) as temporary:
                model.save(temporary)
            write_text(self.scores_path, json.dumps(self.best, indent=2))


def logging_callbacks(log_dir: str | os.PathLike, stage: str,
                      tensorboard: bool = True) -> list[keras.callbacks.Callback]:
    """A CSV log `<log_dir>/<stage>.csv` (appended to on resume) and TensorBoard logs under
    `<log_dir>/tensorboard/<stage>`.

    Example:
    ```python
    model.fit(train_ds, callbacks=logging_callbacks("runs/x/logs", "teacher"))
    ```
    """
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [keras.callbacks.CSVLogger(str(log_dir / f"{stage}.csv"), append=True)]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(
            log_dir=str(log_dir / "tensorboard" / stage), write_graph=False, update_freq=50,
        ))
    return callbacks


def stage_callbacks(
    folder: str | os.PathLike,
    stage: str,
    training=None,
    *,
    dev_data=None,
    metrics: Sequence[str] = ("accuracy",),
    target: Callable[[keras.Model], keras.Model] | None = None,
    evaluate: Callable[[keras.Model, object], dict] | None = None,
) -> list[keras.callbacks.Callback]:
    """The callbacks of one training stage, in the order they must run.

    `StopOnNaN` first (so nothing saves broken weights), then `BestModelKeeper` when `dev_data`
    is given (best model at `<folder>/best_<stage>.keras`), then the CSV and TensorBoard logs
    under `<folder>/logs` (TensorBoard unless `training.tensorboard` is False). Pair them with
    `fit_resumable(..., backup_dir=<folder>/backup/<stage>)` for step backups.

    Args:
        folder: the run folder.
        stage: stage name, used in file names ("teacher", "intermediate", ...).
        training: a `tf_tinybert.config.TrainingConfig` (or None for the defaults).
        dev_data, metrics, target, evaluate: see `BestModelKeeper`.

    Example:
    ```python
    callbacks = stage_callbacks("runs/x", "prediction", config.training, dev_data=dev_ds)
    ```
    """
    folder = pathlib.Path(folder)
    callbacks: list[keras.callbacks.Callback] = [StopOnNaN()]
    if dev_data is not None:
        callbacks.append(BestModelKeeper(dev_data, folder / f"best_{stage}.keras", metrics,
                                         target, evaluate))
    tensorboard = True if training is None else training.tensorboard
    return callbacks + logging_callbacks(folder / "logs", stage, tensorboard)
