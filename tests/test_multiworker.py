"""Two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy) against one process.

Each process runs tests/multiworker_script.py: a tiny Distiller over a prepared corpus of 8
shards of 2 rows, sharded by file between the workers.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from tiny_models import tiny_tokenizer

from tf_tinybert.data.corpus import prepare_corpus
from tf_tinybert.distributed import WorkerUnreachableError, read_tf_config

HERE = pathlib.Path(__file__).parent
SCRIPT = HERE / "multiworker_script.py"
ROOT = HERE.parent


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(args, tf_config=None, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "CUDA_VISIBLE_DEVICES": "", **env}
    environment.pop("TF_CONFIG", None)
    if tf_config is not None:
        environment["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _cluster(ports, index):
    return {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index}}


def _finish(process, timeout=120):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def _weights(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _assert_same_weights(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    lines = ["the film is good", "it was fun", "a witty plot", "great actors", "the movie",
             "was boring", "not very good", "love it", "hate it", "the story", "awful plot",
             "gorgeous film", "fun fun", "very bad", "the actors", "witty and fun"]
    (folder / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # One line per sequence, two sequences per shard: 8 shards, 4 steps of 4 rows.
    prepare_corpus(folder / "corpus.txt", tiny_tokenizer(), folder / "data", pack=False,
                   max_sequence_length=16,
                   shard_size=2, verbose=0)
    return folder / "data"


def test_two_workers_match_one_and_resume_after_a_worker_is_killed(corpus, tmp_path):
    started = time.monotonic()
    ports = _free_ports(2)
    backup = tmp_path / "backup"
    single = _start([corpus, tmp_path / "single", tmp_path / "single_backup", "single"])
    workers = [_start([corpus, tmp_path / "run", backup, "worker"], _cluster(ports, i),
                      SLEEP_S="1.5") for i in range(2)]
    # Kill worker 1 once the chief has backed up step 2, then the chief (its next
    # all-reduce would wait for the dead peer), as a preempted cluster would be.
    deadline = time.monotonic() + 90
    while not (backup / "step-2").exists():
        assert time.monotonic() < deadline, "no backup of step 2"
        assert all(w.poll() is None for w in workers), workers[0].communicate()[0][-3000:]
        time.sleep(0.1)
    workers[1].send_signal(signal.SIGKILL)
    workers[0].send_signal(signal.SIGKILL)
    for worker in workers:
        worker.wait(timeout=30)
    _finish(single)

    # After one step the two workers report the single process's losses and weights.
    one = json.loads((tmp_path / "single" / "single_step1.json").read_text())
    for index in range(2):
        reported = json.loads((tmp_path / "run" / f"worker{index}_step1.json").read_text())
        assert reported.keys() == one.keys()
        for key in one:
            assert reported[key] == pytest.approx(one[key], abs=1e-5, rel=1e-5), key
        _assert_same_weights(tmp_path / "run" / f"worker{index}_step1.npz",
                             tmp_path / "single" / "single_step1.npz")
    assert one["relation_loss"] > 0
    # Backups come from the chief only.
    assert not list(backup.glob(".*partial*"))

    done = max(int(path.name.split("-")[1]) for path in backup.glob("step-*"))
    assert done == 2  # backups every 2 steps (a multiple of the 2 workers)
    resumed = [_start([corpus, tmp_path / "resumed", backup, "worker"], _cluster(ports, i))
               for i in range(2)]
    for worker in resumed:
        _finish(worker)
    # Training went on from the last backup (only the remaining steps ran) and ended where
    # the uninterrupted single process did.
    assert len(list((tmp_path / "resumed").glob("worker0_step*.json"))) == 4 - done
    for index in range(2):
        _assert_same_weights(tmp_path / "resumed" / f"worker{index}_final.npz",
                             tmp_path / "single" / "single_final.npz")
    assert time.monotonic() - started < 180


def test_a_tf_config_naming_an_unreachable_worker_fails_in_bounded_time(corpus, tmp_path):
    ports = _free_ports(2)
    started = time.monotonic()
    lone = _start([corpus, tmp_path / "out", tmp_path / "backup", "worker"], _cluster(ports, 0),
                  CONNECT_S="3")
    output, _ = lone.communicate(timeout=60)
    assert lone.returncode != 0
    assert "WorkerUnreachableError" in output and f"127.0.0.1:{ports[1]}" in output
    assert time.monotonic() - started < 60
    assert not (tmp_path / "backup").exists()


def test_malformed_tf_config_is_a_clear_error():
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        read_tf_config("")
    with pytest.raises(ValueError, match="task index 2 is outside"):
        read_tf_config(json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                   "task": {"type": "worker", "index": 2}}))
    assert issubclass(WorkerUnreachableError, RuntimeError)
