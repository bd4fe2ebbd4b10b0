"""Training that survives `kill -9`: step backups and an exact resume.

`fit_resumable(model, data, epochs=..., backup_dir=...)` is `model.fit` that backs up the whole
training state every `checkpoint_every` steps and at each epoch's end, and, run again after a
crash, continues from the last backup so that the final weights are those of an uninterrupted
run. Keras' own `BackupAndRestore` restarts an interrupted epoch from its first batch (and in a
new process with a new shuffle order), so the resumed run diverges; it also leaves out the
dropout random state and writes its two files non-atomically. Here a backup is a folder
`step-<N>/` (weights with optimizer state, dropout seed states, `state.json`) renamed into
place in one step, so a kill at any moment leaves either the old backup or the new one.

How the resume is exact: the training data is turned into one stream,
`data.repeat().skip(steps_done)`, whose order is fixed by the dataset's own seeds, and Keras
runs `steps_per_epoch` steps per epoch over it. A resumed run starts its first epoch at the
backup's step, so its epoch boundaries (validation, epoch logs) fall later than the
uninterrupted run's by that offset; the training steps, and so the final weights, are the same.
(Finishing the interrupted epoch in a first, shorter `fit` would align them, but a second `fit`
makes a second iterator over the dataset, and a seeded `shuffle` reshuffles per iterator, so
the order would differ from an uninterrupted run's.) With `verbose`, it prints
`resuming at step N of T` and, at the end, how many steps this process trained. A backup
folder left incomplete by a kill (a `.step-N.PID.partial` folder, or a `step-N` without
`state.json`) is ignored, and the next backup replaces it.
The dataset must be built the same way in both processes (same seed, `deterministic` tf.data).

Example:
```python
history = fit_resumable(distiller, train_ds, epochs=3, backup_dir="runs/x/backup/intermediate",
                        checkpoint_every=200, validation_data=dev_ds)
```
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil

import keras
import numpy as np
import tensorflow as tf

from tf_tinybert.distributed import is_chief
from tf_tinybert.evaluation import steps_in

STATE_FILE = "state.json"
WEIGHTS_FILE = "model.weights.h5"
SEEDS_FILE = "seed_states.npz"


def _seed_states(model) -> list:
    """Dropout seed-generator states: part of the training state, absent from save_weights."""
    return [variable for variable in model.variables
            if variable.name == "seed_generator_state"]


def _optimizer_shapes(model) -> list:
    optimizer = model.optimizer
    if optimizer is None or not optimizer.built:
        return []
    return [list(variable.shape) for variable in optimizer.variables]


def latest_backup(backup_dir: str | os.PathLike) -> pathlib.Path | None:
    """The newest complete backup folder in `backup_dir`, or None.

    Example:
    ```python
    latest_backup("runs/x/backup/intermediate")  # PosixPath('.../step-400') or None
    ```
    """
    folder = pathlib.Path(backup_dir)
    if not folder.is_dir():
        return None
    backups = [path for path in folder.glob("step-*") if (path / STATE_FILE).is_file()]
    return max(backups, key=lambda path: int(path.name.split("-")[1]), default=None)


class StepBackup(keras.callbacks.Callback):
    """Backs up the training state every `every` steps and at each epoch's end.

    Used by `fit_resumable`, which restores what it writes. The callback counts steps from
    `initial_step` (the step of the backup a run resumed from).

    Args:
        backup_dir: folder of the backups; nothing else may write there.
        every: steps between backups (None: at epoch ends only).
        steps_per_epoch: recorded with each backup, and checked when resuming.
        total_steps: the run's length, recorded with each backup.
        initial_step: steps already done when this `fit` starts.
        keep: how many backups to keep (older ones are removed).

    Example:
    ```python
    StepBackup("runs/x/backup/teacher", every=200, steps_per_epoch=250, total_steps=750)
    ```
    """

    def __init__(self, backup_dir, every: int | None, steps_per_epoch: int, total_steps: int,
                 initial_step: int = 0, keep: int = 1):
        super().__init__()
        if every is not None and every < 1:
            raise ValueError(f"Expected `every` >= 1 or None. Received: every={every}")
        self.backup_dir = pathlib.Path(backup_dir)
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.step = initial_step
        self.keep = max(1, keep)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.every and self.step % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if not (self.every and self.step % self.every == 0):
            self.save()

    def save(self) -> pathlib.Path:
        """Write a backup of the current state as `step-<N>/`, atomically (the chief only,
        under a multi-worker strategy: the others hold the same mirrored state)."""
        final = self.backup_dir / f"step-{self.step}"
        if not is_chief(getattr(self.model, "distribute_strategy", None)):
            return final
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        if (final / STATE_FILE).is_file():
            return final
        shutil.rmtree(final, ignore_errors=True)  # an incomplete folder of that name
        temporary = self.backup_dir / f".step-{self.step}.{os.getpid()}.partial"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        try:
            self.model.save_weights(temporary / WEIGHTS_FILE)
            np.savez(temporary / SEEDS_FILE,
                     *[np.asarray(variable.numpy()) for variable in _seed_states(self.model)])
            state = {"step": self.step, "steps_per_epoch": self.steps_per_epoch,
                     "total_steps": self.total_steps,
                     "optimizer_shapes": _optimizer_shapes(self.model)}
            (temporary / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
            os.replace(temporary, final)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        backups = sorted((path for path in self.backup_dir.glob("step-*") if path != final),
                         key=lambda path: int(path.name.split("-")[1]))
        for old in backups[: max(0, len(backups) - (self.keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        return final


def restore_backup(model: keras.Model, backup: str | os.PathLike) -> dict:
    """Load a `StepBackup` folder into a compiled model; return its state (step, ...).

    Example:
    ```python
    state = restore_backup(model, latest_backup("runs/x/backup/teacher"))
    state["step"]  # 400
    ```
    """
    backup = pathlib.Path(backup)
    state = json.loads((backup / STATE_FILE).read_text(encoding="utf-8"))
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    if _optimizer_shapes(model) != state.get("optimizer_shapes", _optimizer_shapes(model)):
        raise ValueError(
            f"The optimizer state in {backup} does not fit this model's optimizer: it was built "
            "over other variables. A model whose train_step updates only some of its trainable "
            "variables must build its optimizer over those (`model.optimizer.build(variables)`) "
            "before `fit_resumable`."
        )
    model.load_weights(backup / WEIGHTS_FILE)
    seeds = np.load(backup / SEEDS_FILE)
    variables = _seed_states(model)
    if len(seeds.files) != len(variables):
        raise ValueError(
            f"The backup {backup} holds {len(seeds.files)} dropout seed states but the model "
            f"has {len(variables)}: it was written by a different model."
        )
    for index, variable in enumerate(variables):
        variable.assign(seeds[f"arr_{index}"])
    return state


def _ensure_built(model: keras.Model) -> None:
    """Weights can only be saved and loaded on a built model. A model made of built parts that
    is never called as a whole (a `Distiller`, whose `train_step` calls its parts) is built."""
    if model.built:
        return
    if model.layers and all(layer.built for layer in model.layers):
        model.built = True
        return
    raise ValueError(
        f"The model {model.name!r} is not built, so its weights cannot be backed up: call it "
        "on a batch (or use `keras.Input`) before `fit_resumable`."
    )


class _StopAtStep(keras.callbacks.Callback):
    """Ends training after exactly `total_steps` steps, mid-epoch if need be; counts the steps
    this process ran (`ran`)."""

    def __init__(self, total_steps: int, initial_step: int):
        super().__init__()
        self.total_steps = total_steps
        self.step = initial_step
        self.ran = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.ran += 1
        if self.step >= self.total_steps:
            self.model.stop_training = True


def _input_workers(model) -> int:
    """Workers of a MultiWorkerMirroredStrategy the model was made under (1 otherwise)."""
    strategy = getattr(model, "distribute_strategy", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.extended._num_workers  # noqa: SLF001  (no public accessor)
    return 1


def fit_resumable(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    backup_dir: str | os.PathLike,
    checkpoint_every: int | None = None,
    steps_per_epoch: int | None = None,
    max_steps: int | None = None,
    validation_data=None,
    callbacks=(),
    keep_backup: bool = False,
    verbose="auto",
) -> keras.callbacks.History:
    """`model.fit` that backs up every `checkpoint_every` steps and resumes exactly after a crash.

    Call it on a compiled model. If `backup_dir` holds a backup, training continues from it
    (weights, optimizer state, dropout seeds, position in the data); when all steps are done
    the backups are removed unless `keep_backup`. A model whose `train_step` updates only some
    of its trainable variables must have built its optimizer over those before the call (the
    optimizer state is restored into the optimizer as built; otherwise it is built over
    `model.trainable_variables`, as Keras' own `train_step` does).

    Args:
        model: a compiled `keras.Model` (a classifier, a `Distiller`, ...).
        train_data: a finite, batched `tf.data.Dataset`; build it the same way (same seed) when
            resuming.
        epochs: passes over `train_data`.
        backup_dir: folder for this training's backups (one per stage).
        checkpoint_every: steps between backups; None backs up at epoch ends only.
        steps_per_epoch: batches per pass; counted from `train_data` when None.
        max_steps: stop after this many steps in all (None: `epochs` full passes).
        validation_data, callbacks, verbose: as for `model.fit`.
        keep_backup: keep the last backup when training completes.

    Returns:
        The `History` of this call (only the epochs run since the last resume).

    Example:
    ```python
    model.compile(optimizer=adamw(1e-4, total_steps=3 * 250), loss="mse")
    fit_resumable(model, train_ds, epochs=3, backup_dir="runs/x/backup/baseline",
                  checkpoint_every=100)
    ```
    """
    if epochs < 1:
        raise ValueError(f"Expected `epochs` >= 1. Received: epochs={epochs}")
    per_epoch = int(steps_per_epoch) if steps_per_epoch else steps_in(train_data)
    if per_epoch < 1:
        raise ValueError("The training data is empty: no batch to train on.")
    total = epochs * per_epoch if max_steps is None else min(epochs * per_epoch, int(max_steps))
    _ensure_built(model)
    backup_dir = pathlib.Path(backup_dir)
    for partial in backup_dir.glob(".step-*.partial"):  # left by a run killed mid-backup
        shutil.rmtree(partial, ignore_errors=True)
    done = 0
    backup = latest_backup(backup_dir)
    if backup is not None:
        state = restore_backup(model, backup)
        if state["steps_per_epoch"] != per_epoch or state["total_steps"] != total:
            raise ValueError(
                f"The backup {backup} was written by a run of {state['total_steps']} steps with "
                f"{state['steps_per_epoch']} per epoch; this run has {total} with {per_epoch}. "
                f"Delete {backup_dir} to start over, or restore the earlier settings."
            )
        done = state["step"]
    history = keras.callbacks.History()
    if done < total:
        if verbose and done:
            print(f"resuming at step {done} of {total} from {backup}", flush=True)
        stream = train_data.repeat()
        workers = _input_workers(model)
        if done % workers:
            raise ValueError(
                f"The backup {backup} is at step {done}, which is not a multiple of the "
                f"{workers} workers: its position in the data cannot be restored. Back up "
                "every multiple of the worker count (checkpoint_every)."
            )
        if done:
            # Under a multi-worker strategy each worker splits every batch of `train_data`
            # (read from its own shards) into one per-worker batch per worker, after this
            # skip: a batch here is `workers` steps there.
            stream = stream.skip(done // workers)
        if workers > 1 and checkpoint_every:
            checkpoint_every = -(-checkpoint_every // workers) * workers
        stop = _StopAtStep(total, done)
        backup_callback = StepBackup(backup_dir, checkpoint_every, per_epoch, total, done)
        history = model.fit(
            stream,
            epochs=math.ceil(total / per_epoch),
            initial_epoch=done // per_epoch,
            steps_per_epoch=per_epoch,
            validation_data=validation_data,
            callbacks=[*callbacks, stop, backup_callback],
            verbose=verbose,
        )
        if verbose:
            print(f"trained {stop.ran} steps in this run (steps {done + 1} to {stop.step} of "
                  f"{total})", flush=True)
    if not keep_backup and is_chief(getattr(model, "distribute_strategy", None)):
        shutil.rmtree(backup_dir, ignore_errors=True)
    return history
