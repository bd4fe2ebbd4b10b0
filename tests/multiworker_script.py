"""One process of the multi-worker tests (tests/test_multiworker.py), run as a script.

    python multiworker_script.py DATA_DIR OUT_DIR BACKUP_DIR MODE

Trains a tiny Distiller (relation loss, a 4-head student of a 12-head teacher) for one pass
over DATA_DIR (shards of 2 rows), backing up after every step to BACKUP_DIR and resuming
from it. MODE "single": the default strategy on the global batch of 4 rows (shards 2k and
2k+1 at step k). MODE "worker": one worker of the cluster in TF_CONFIG
(MultiWorkerMirroredStrategy, input sharded by file: each worker reads every other shard, 2
rows a step). Writes the losses and student weights after each step and at the end to
OUT_DIR, named by mode and task index. SLEEP_S (environment) pauses after each step.
"""

import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from tiny_models import tiny_classifier  # noqa: E402

import tf_tinybert as tt  # noqa: E402
from tf_tinybert.distributed import multiworker_strategy, shard_by_file  # noqa: E402
from tf_tinybert.resume import fit_resumable  # noqa: E402

GLOBAL_BATCH = 4


class _Record(keras.callbacks.Callback):
    """Saves the reported losses and the student's weights after each step."""

    def __init__(self, out, name):
        super().__init__()
        self.out, self.name, self.step = out, name, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.save(f"{self.name}_step{self.step}", logs)
        time.sleep(float(os.environ.get("SLEEP_S", 0)))

    def save(self, name, logs=None):
        student = self.model.student
        np.savez(self.out / f"{name}.npz", *[np.asarray(w) for w in student.get_weights()])
        if logs is not None:
            (self.out / f"{name}.json").write_text(json.dumps(
                {key: float(value) for key, value in logs.items()}))


def main():
    data, out, backup = (pathlib.Path(arg) for arg in sys.argv[1:4])
    mode = sys.argv[4]
    out.mkdir(parents=True, exist_ok=True)
    keras.config.disable_traceback_filtering()
    keras.utils.set_random_seed(0)
    if mode == "single":
        strategy, name = tf.distribute.get_strategy(), "single"
    else:
        strategy = multiworker_strategy(connect_timeout_s=float(os.environ.get("CONNECT_S", 60)),
                                        communication_timeout_s=30)
        name = f"worker{json.loads(os.environ['TF_CONFIG'])['task']['index']}"
    dataset = shard_by_file(tt.data.load(data, batch_size=GLOBAL_BATCH, shuffle=False,
                                         bucket_by_length=False))
    with strategy.scope():
        teacher = tiny_classifier(num_layers=2, hidden_dim=24, num_heads=12, seed=1, dropout=0.0)
        student = tiny_classifier(num_layers=1, hidden_dim=8, num_heads=4, seed=2, dropout=0.0)
        distiller = tt.Distiller(teacher=teacher, student=student)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), stage="general",
                          loss_weights={"attention": 0, "relation": 1})
    fit_resumable(distiller, dataset, epochs=1, backup_dir=backup, checkpoint_every=2,
                  callbacks=[_Record(out, name)], keep_backup=True, verbose=0)
    record = _Record(out, f"{name}_final")
    record.set_model(distiller)
    record.save(f"{name}_final")


if __name__ == "__main__":
    main()
