"""A small training run for the kill -9 resume test (tests/test_resume.py runs it in a subprocess).

Usage: python tests/resume_script.py BACKUP_DIR OUTPUT.npz [--slow]
With --slow it prints each finished step and pauses, so that the test can kill it mid-epoch.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_tinybert.optimizers import adamw  # noqa: E402
from tf_tinybert.resume import fit_resumable, latest_backup  # noqa: E402

EPOCHS, BATCH, EXAMPLES, EVERY = 3, 8, 64, 3


class Announce(keras.callbacks.Callback):
    def __init__(self, slow):
        super().__init__()
        self.slow = slow

    def on_train_batch_end(self, batch, logs=None):
        if self.slow:
            print(f"step {int(self.model.optimizer.iterations)}", flush=True)
            time.sleep(0.3)


def main(backup_dir, output, slow):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(EXAMPLES, seed=1).batch(BATCH)
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.3),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=adamw(1e-2, total_steps=EPOCHS * EXAMPLES // BATCH), loss="mse")
    backup = latest_backup(backup_dir)
    print(f"resuming from {backup.name}" if backup else "starting", flush=True)
    fit_resumable(model, train, epochs=EPOCHS, backup_dir=backup_dir, checkpoint_every=EVERY,
                  callbacks=[Announce(slow)], verbose=0)
    np.savez(output, *[w.numpy() for w in model.weights],
             steps=int(model.optimizer.iterations), loss=model.evaluate(x, y, verbose=0))
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--slow" in sys.argv[3:])
