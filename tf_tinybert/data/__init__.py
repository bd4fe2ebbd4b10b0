"""Data: text to sharded TFRecords (`prepare`), TFRecords to tf.data (`load`), TinyBERT
augmentation (`augment`) and cached teacher logits (`cache_teacher`).

Example:
```python
import tf_tinybert as tt

tt.data.prepare("train.tsv", "path/to/teacher_folder", "runs/sst2_train")
dataset = tt.data.load("runs/sst2_train", batch_size=32)
```
"""

import importlib

# Public name -> the module that defines it, imported on first use (PEP 562): importing one
# leaf such as `tf_tinybert.data.features` (the feature keys every layer reads) must not pull
# in augmentation and teacher loading, which sit above the model layer.
_LAZY_ATTRIBUTES = {
    "augment": "tf_tinybert.data.augment",
    "BadRowError": "tf_tinybert.data.readers",
    "cache_teacher": "tf_tinybert.data.teacher_cache",
    "check_compatible": "tf_tinybert.data.load",
    "CorruptShardError": "tf_tinybert.data.shards",
    "load": "tf_tinybert.data.load",
    "Manifest": "tf_tinybert.data.manifest",
    "prepare": "tf_tinybert.data.prepare",
    "read_manifest": "tf_tinybert.data.manifest",
    "read_tokenizer": "tf_tinybert.data.manifest",
    "Shard": "tf_tinybert.data.manifest",
}

__all__ = [
    "BadRowError",
    "CorruptShardError",
    "Manifest",
    "Shard",
    "augment",
    "cache_teacher",
    "check_compatible",
    "load",
    "prepare",
    "read_manifest",
    "read_tokenizer",
]


def __getattr__(name):
    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module 'tf_tinybert.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
