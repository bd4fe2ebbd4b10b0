"""`tf.distribute` strategies by name, as `training.strategy` and `--strategy` give them.

Example:
```python
with make_strategy("mirrored").scope():
    student = build_student("tinybert_4l_312h", num_classes=2)
```
"""

from __future__ import annotations

import tensorflow as tf

from tf_tinybert.choices import STRATEGIES
from tf_tinybert.distributed import multiworker_strategy


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A `tf.distribute` strategy by name: default, mirrored, multiworker or tpu.

    "multiworker" reads the cluster from the TF_CONFIG environment variable (and fails naming
    a worker that does not answer, see `tf_tinybert.distributed`) and "tpu" connects
    to the TPU of the current Cloud TPU VM or Colab runtime, as TensorFlow documents.

    Example:
    ```python
    with make_strategy("mirrored").scope():
        student = build_student("tinybert_4l_312h", num_classes=2)
    ```
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return multiworker_strategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Expected `strategy` to be one of {STRATEGIES}. Received: strategy={name!r}")
