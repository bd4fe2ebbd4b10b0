"""Step backups and exact resumption: a run killed with SIGKILL mid-epoch and started again ends
with the weights of a run that was never interrupted."""

import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

from tf_tinybert.distiller import Distiller
from tf_tinybert.optimizers import adamw
from tf_tinybert.resume import StepBackup, fit_resumable, latest_backup

SCRIPT = pathlib.Path(__file__).with_name("resume_script.py")
ROOT = SCRIPT.parents[1]


def run_script(backup, output, slow=False):
    command = [sys.executable, str(SCRIPT), str(backup), str(output)] + (["--slow"] if slow else [])
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def test_kill_9_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path):
    straight = run_script(tmp_path / "backup_a", tmp_path / "a.npz")
    killed = run_script(tmp_path / "backup_b", tmp_path / "b.npz", slow=True)
    # 8 steps per epoch, a backup every 3: step 13 is mid-way through the second epoch, one
    # step after the backup of step 12.
    for line in killed.stdout:
        if line.strip() == "step 13":
            os.kill(killed.pid, signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "b.npz").exists()
    assert latest_backup(tmp_path / "backup_b").name in ("step-12", "step-15")
    resumed = run_script(tmp_path / "backup_b", tmp_path / "b.npz")
    resumed_output = resumed.communicate(timeout=120)[0]
    straight.communicate(timeout=120)
    assert resumed.returncode == 0 and straight.returncode == 0
    assert "resuming from step-" in resumed_output
    expected, actual = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert int(actual["steps"]) == int(expected["steps"]) == 24
    for name in expected.files:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    assert not (tmp_path / "backup_b").exists()  # backups go once training completes


def scramble(model):
    """Overwrite every weight, so that whatever training resumes from must come from a backup."""
    for weight in model.weights:
        weight.assign(np.full(weight.shape, 0.5, dtype=weight.dtype))


def regression_setup():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = x.sum(axis=1, keepdims=True).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=3).batch(8)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.Dropout(0.2),
                              keras.layers.Dense(1)])
    model.compile(optimizer=adamw(1e-2, total_steps=15), loss="mse")
    return model, data


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.at_step:
            raise KeyboardInterrupt


def test_interrupted_fit_resumes_to_the_same_weights_in_process(tmp_path):
    model, data = regression_setup()
    fit_resumable(model, data, epochs=3, backup_dir=tmp_path / "a", checkpoint_every=2,
                  verbose=0)
    expected = [w.numpy() for w in model.weights]

    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path / "b", checkpoint_every=2,
                      callbacks=[Interrupt(7)], verbose=0)
    assert latest_backup(tmp_path / "b").name == "step-6"
    model, data = regression_setup()
    scramble(model)
    fit_resumable(model, data, epochs=3, backup_dir=tmp_path / "b", checkpoint_every=2,
                  verbose=0)
    assert int(model.optimizer.iterations) == 15
    for actual, wanted in zip(model.weights, expected):
        np.testing.assert_allclose(actual.numpy(), wanted, rtol=1e-6, atol=1e-7)


def test_backups_are_whole_folders_and_only_the_latest_is_kept(tmp_path):
    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path, checkpoint_every=4,
                      callbacks=[Interrupt(9)], verbose=0)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step-8"]
    assert sorted(path.name for path in (tmp_path / "step-8").iterdir()) == [
        "model.weights.h5", "seed_states.npz", "state.json"]


def test_epoch_ends_are_backed_up_without_step_backups(tmp_path):
    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path, callbacks=[Interrupt(7)],
                      verbose=0)
    assert latest_backup(tmp_path).name == "step-5"


def test_max_steps_stops_mid_epoch(tmp_path):
    model, data = regression_setup()
    fit_resumable(model, data, epochs=3, max_steps=7, backup_dir=tmp_path / "b", verbose=0)
    assert int(model.optimizer.iterations) == 7


def test_keep_backup_leaves_the_final_state(tmp_path):
    model, data = regression_setup()
    fit_resumable(model, data, epochs=1, backup_dir=tmp_path, keep_backup=True, verbose=0)
    assert latest_backup(tmp_path).name == "step-5"


def test_backup_of_another_schedule_is_refused(tmp_path):
    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path, checkpoint_every=2,
                      callbacks=[Interrupt(3)], verbose=0)
    model, data = regression_setup()
    with pytest.raises(ValueError, match="Delete .* to start over"):
        fit_resumable(model, data, epochs=2, backup_dir=tmp_path, verbose=0)


def test_step_backup_rejects_a_zero_interval(tmp_path):
    with pytest.raises(ValueError, match="every=0"):
        StepBackup(tmp_path, every=0, steps_per_epoch=5, total_steps=10)


def distiller_setup():
    teacher = tiny_classifier(num_layers=2, hidden_dim=8, seed=10)
    student = tiny_classifier(num_layers=1, hidden_dim=4, num_heads=2, intermediate_dim=8, seed=0)
    keras.utils.set_random_seed(0)
    features = random_features(batch_size=24, sequence_length=10, seed=4)
    labels = np.arange(24) % 2
    data = tf.data.Dataset.from_tensor_slices((features, labels)).shuffle(24, seed=5).batch(6)
    distiller = Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=adamw(1e-2, total_steps=8), stage="intermediate")
    return distiller, data


def test_distiller_resumes_to_the_same_student(tmp_path):
    distiller, data = distiller_setup()
    fit_resumable(distiller, data, epochs=2, backup_dir=tmp_path / "a", checkpoint_every=3,
                  verbose=0)
    expected = [w.numpy() for w in distiller.student.weights]

    distiller, data = distiller_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(distiller, data, epochs=2, backup_dir=tmp_path / "b", checkpoint_every=3,
                      callbacks=[Interrupt(5)], verbose=0)
    distiller, data = distiller_setup()
    scramble(distiller.student)
    fit_resumable(distiller, data, epochs=2, backup_dir=tmp_path / "b", checkpoint_every=3,
                  verbose=0)
    for actual, wanted in zip(distiller.student.weights, expected):
        np.testing.assert_allclose(actual.numpy(), wanted, rtol=1e-5, atol=1e-6)


def test_a_backup_left_incomplete_is_ignored_then_replaced(tmp_path):
    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path, checkpoint_every=2,
                      callbacks=[Interrupt(3)], verbose=0)
    # What a kill mid-backup (or a damaged copy) leaves: no state.json, a temporary folder.
    (tmp_path / "step-4").mkdir()
    (tmp_path / "step-4" / "model.weights.h5").write_bytes(b"truncated")
    (tmp_path / ".step-6.999.partial").mkdir()
    assert latest_backup(tmp_path).name == "step-2"
    model, data = regression_setup()
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(model, data, epochs=3, backup_dir=tmp_path, checkpoint_every=2,
                      callbacks=[Interrupt(5)], verbose=0)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step-4"]
    assert (tmp_path / "step-4" / "state.json").is_file()
