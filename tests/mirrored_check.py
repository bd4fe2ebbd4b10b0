"""Run by test_distiller in a fresh process: one device vs MirroredStrategy on two CPUs.

Prints a LOSSES line per run: the evaluate losses before training, then after one epoch.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny_models import random_features, tiny_classifier  # noqa: E402

import tf_tinybert as tt  # noqa: E402


def run(strategy):
    features = random_features(8, 12, seed=11, min_length=2)
    labels = np.arange(8, dtype="int32") % 2
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    with strategy.scope():
        teacher = tiny_classifier(num_layers=4, hidden_dim=16, seed=1, dropout=0.0)
        student = tiny_classifier(num_layers=2, hidden_dim=8, seed=2, dropout=0.0)
        distiller = tt.Distiller(teacher=teacher, student=student)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), stage="joint",
                          loss_weights={"hard": 1.0})
    before = distiller.evaluate(dataset, return_dict=True, verbose=0)
    distiller.fit(dataset, epochs=1, verbose=0)
    after = distiller.evaluate(dataset, return_dict=True, verbose=0)
    keys = sorted(k for k in before if k.endswith("loss"))
    print("LOSSES", " ".join(f"{before[k]:.8f}" for k in keys),
          " ".join(f"{after[k]:.8f}" for k in keys))


run(tf.distribute.get_strategy())
run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
