"""A real distillation stage run through the CLI, killed with SIGKILL mid-epoch and run again:
the rerun trains only the remaining steps and ends with the uninterrupted run's student, even
when the kill also left a half-written backup behind."""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from recipe_fixtures import make_tiny_task

from tf_tinybert.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW_CLI = os.path.join(ROOT, "tests", "slow_cli.py")
# 96 training rows in batches of 16, bucketed by length: 7 steps per epoch, 14 in all, a
# backup every 4 steps (and at each epoch's end): step-8 is in the middle of the second epoch.
EPOCHS, EVERY, KILL_AFTER = 2, 4, 8


def _environment():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def _distill_flags(tmp_path, name):
    return ["distill", "--stage", "intermediate", "--teacher", str(tmp_path / "teacher.keras"),
            "--student", str(tmp_path / "student.yaml"), "--max-sequence-length", "32",
            "--train", str(tmp_path / "train"), "--dev", str(tmp_path / "dev"),
            "--epochs", str(EPOCHS), "--batch-size", "16", "--learning-rate", "3e-3",
            "--checkpoint-every", str(EVERY), "--logs", str(tmp_path / f"logs_{name}"),
            "--output", str(tmp_path / f"{name}.keras")]


def _start(flags, delay=None):
    command = ([sys.executable, SLOW_CLI, str(delay)] if delay is not None
               else [sys.executable, "-m", "tf_tinybert.cli"]) + flags
    return subprocess.Popen(command, cwd=ROOT, env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture
def prepared(tmp_path):
    paths = make_tiny_task(tmp_path, train_rows=96, dev_rows=16)
    for split in ("train", "dev"):
        assert main(["prepare", "--input", str(paths["data"] / f"{split}.tsv"), "--tokenizer",
                     str(paths["tokenizer"]), "--output", str(tmp_path / split),
                     "--labels", "0,1", "--max-sequence-length", "16"]) == 0
    (tmp_path / "student.yaml").write_text("name: tiny\nnum_layers: 1\nhidden_dim: 8\n"
                                           "num_heads: 2\nintermediate_dim: 16\n")
    return tmp_path


def test_sigkill_mid_epoch_then_rerun_trains_only_the_rest_and_matches(prepared):
    tmp_path = prepared
    straight = _start(_distill_flags(tmp_path, "straight"))
    killed = _start(_distill_flags(tmp_path, "killed"), delay=0.2)
    backups = tmp_path / "logs_killed" / "backup" / "intermediate"
    deadline = time.monotonic() + 120
    # Kill once step-8 is in place and the save has pruned the older backups: the save
    # renames the new backup in, then removes the old ones, so a kill between the two would
    # leave step-7 beside it (the rerun would still resume from step-8).
    def settled():
        return ((backups / f"step-{KILL_AFTER}" / "state.json").is_file()
                and [path.name for path in backups.glob("step-*")] == [f"step-{KILL_AFTER}"])

    while not settled():
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline, "no backup appeared"
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.keras").exists()
    done = sorted(int(path.name.split("-")[1]) for path in backups.glob("step-*"))
    assert done == [KILL_AFTER]  # older backups removed, the next one (12) not reached

    # What a kill during the next backups leaves: a half-written temporary folder, and a
    # step folder without its state.json. The rerun must fall back to step-8.
    (backups / f".step-{KILL_AFTER + 4}.4242.partial").mkdir()
    (backups / f".step-{KILL_AFTER + 4}.4242.partial" / "model.weights.h5").write_bytes(b"x")
    (backups / f"step-{KILL_AFTER + 2}").mkdir()
    (backups / f"step-{KILL_AFTER + 2}" / "model.weights.h5").write_bytes(b"truncated")

    rerun = _start(_distill_flags(tmp_path, "killed"))
    rerun_output = rerun.communicate(timeout=180)[0]
    straight_output = straight.communicate(timeout=180)[0]
    assert rerun.returncode == 0, rerun_output
    assert straight.returncode == 0, straight_output
    straight_ran = re.search(r"trained (\d+) steps in this run \(steps 1 to (\d+) of (\d+)\)",
                             straight_output)
    assert straight_ran is not None, straight_output
    steps = int(straight_ran.group(1))
    assert steps == int(straight_ran.group(2)) == int(straight_ran.group(3)) > KILL_AFTER + 2
    # (a) The rerun resumed from the last complete backup and ran only the remaining steps,
    # counted by the batches this process trained; a rerun from scratch would print them all.
    assert f"resuming at step {KILL_AFTER} of {steps}" in rerun_output
    ran = re.search(r"trained (\d+) steps in this run \(steps (\d+) to (\d+) of (\d+)\)",
                    rerun_output)
    assert ran is not None, rerun_output
    assert tuple(int(value) for value in ran.groups()) == (
        steps - KILL_AFTER, KILL_AFTER + 1, steps, steps)
    assert "resuming" not in straight_output
    assert not backups.exists()  # backups (damaged ones included) go once training completes

    # (b) The same student as the uninterrupted run, weight for weight.
    expected = keras.saving.load_model(tmp_path / "straight.keras", compile=False)
    actual = keras.saving.load_model(tmp_path / "killed.keras", compile=False)
    assert len(actual.weights) == len(expected.weights) > 0
    for wanted, got in zip(expected.weights, actual.weights):
        assert wanted.path == got.path
        np.testing.assert_allclose(got.numpy(), wanted.numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=wanted.path)
    # The epoch logged before the kill is the uninterrupted run's; the rerun appends the later
    # epochs (whose boundaries are shifted by the resume offset: see tf_tinybert.resume) once.
    straight_rows = _csv_rows(tmp_path / "logs_straight" / "logs" / "intermediate.csv")
    killed_rows = _csv_rows(tmp_path / "logs_killed" / "logs" / "intermediate.csv")
    assert [row["epoch"] for row in straight_rows] == ["0", "1"]
    assert [row["epoch"] for row in killed_rows] == ["0", "1"]
    assert killed_rows[0].keys() == straight_rows[0].keys()
    for key, value in straight_rows[0].items():
        if value == "NA":  # a column Keras had no value for
            assert killed_rows[0][key] == "NA", key
        else:
            assert float(killed_rows[0][key]) == pytest.approx(float(value), rel=1e-6), key
    assert any(value != "NA" for key, value in straight_rows[0].items() if "loss" in key)
