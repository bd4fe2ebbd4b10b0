"""Training across worker processes: MultiWorkerMirroredStrategy with bounded start-up,
chief-only writes, and input sharded by file.

TensorFlow's `MultiWorkerMirroredStrategy` reads the cluster from the `TF_CONFIG` environment
variable and, when a worker it names never answers, waits for it forever. Here every worker
must answer within `connect_timeout_s`, or `WorkerUnreachableError` names the silent ones.

Example:
```python
# On each machine, with TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]},
#                                    "task": {"type": "worker", "index": 0}}' (index 1 on b):
strategy = multiworker_strategy(connect_timeout_s=120)
with strategy.scope():
    distiller = Distiller(teacher=teacher, student=student)
dataset = shard_by_file(tt.data.load("data/general", batch_size=64))
```
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import tensorflow as tf


class WorkerUnreachableError(RuntimeError):
    """A worker named in TF_CONFIG did not join the cluster in time; the message names it."""


def read_tf_config(text: str | None = None) -> dict:
    """Parse and check a TF_CONFIG (default: the environment's), naming what is wrong.

    Example:
    ```python
    read_tf_config('{"cluster": {"worker": ["127.0.0.1:2222"]}, '
                   '"task": {"type": "worker", "index": 0}}')["task"]["index"]  # 0
    ```
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text:
        raise ValueError(
            "--strategy multiworker needs the TF_CONFIG environment variable: "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": <this machine\'s position>}}'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}). Received: {text!r}") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(f"TF_CONFIG needs a 'cluster' and a 'task' object. Received: {text!r}")
    jobs = [job for job in ("chief", "worker") if job in cluster]
    if not jobs or task.get("type") not in cluster:
        raise ValueError(
            f"TF_CONFIG's task type {task.get('type')!r} is not a job of its cluster "
            f"{sorted(cluster)}. Received: {text!r}"
        )
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"TF_CONFIG's task index {index!r} is outside its {task['type']!r} job of "
            f"{len(cluster[task['type']])} address(es). Received: {text!r}"
        )
    return config


def _peers(config: dict) -> list[str]:
    own = config["cluster"][config["task"]["type"]][config["task"]["index"]]
    return [address for job in ("chief", "worker") for address in config["cluster"].get(job, [])
            if address != own]


def _accepts_connections(address: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(_host_port(address), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def wait_for_workers(config: dict, timeout_s: float) -> None:
    """Rendezvous on the cluster's own addresses before TensorFlow starts its server.

    TensorFlow's start-up blocks, holding the interpreter, until every worker has joined, so
    it cannot be timed out from Python. Instead each worker first listens on its own address
    with a plain socket and waits until every other worker accepts a connection (its
    listener, or its TensorFlow server when it is already past this point). Raises
    `WorkerUnreachableError`, naming the silent workers, after `timeout_s`.
    """
    own = config["cluster"][config["task"]["type"]][config["task"]["index"]]
    listener = socket.create_server(("", _host_port(own)[1]), reuse_port=False)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                connection.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, name="tf-tinybert-rendezvous", daemon=True)
    thread.start()
    try:
        waiting = _peers(config)
        deadline = time.monotonic() + timeout_s
        while waiting:
            waiting = [address for address in waiting if not _accepts_connections(address)]
            if waiting and time.monotonic() > deadline:
                raise WorkerUnreachableError(
                    f"Worker(s) {waiting} named in TF_CONFIG accepted no connection within "
                    f"{timeout_s:g} s. Start `tf-tinybert` with the same cluster on every "
                    "machine (each with its own task index), check the addresses and "
                    "firewalls, or raise the timeout."
                )
            if waiting:
                time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        listener.close()


def multiworker_strategy(connect_timeout_s: float = 120.0,
                         communication_timeout_s: float | None = None
                         ) -> tf.distribute.MultiWorkerMirroredStrategy:
    """A `MultiWorkerMirroredStrategy` over the cluster in TF_CONFIG, or a bounded failure.

    Every worker runs this with the same cluster and its own task in TF_CONFIG. Waits up to
    `connect_timeout_s` for the other workers (`wait_for_workers`), raising
    `WorkerUnreachableError` naming the silent ones; `communication_timeout_s` bounds each
    later collective (a worker dying mid-training).

    Example:
    ```python
    strategy = multiworker_strategy(connect_timeout_s=60)
    strategy.num_replicas_in_sync  # one per worker on CPU machines
    ```
    """
    wait_for_workers(read_tf_config(), connect_timeout_s)
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=communication_timeout_s)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes checkpoints and backups (always, outside multi-worker).

    Example:
    ```python
    if is_chief():
        student.save("student.keras")
    ```
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def shard_by_file(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Set tf.data auto-sharding to FILE: under a multi-worker strategy each worker reads
    its own shards of a prepared folder (it needs at least as many shards as workers).

    Example:
    ```python
    dataset = shard_by_file(tt.data.load("data/general", batch_size=64, shuffle=False))
    ```
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    return dataset.with_options(options)
