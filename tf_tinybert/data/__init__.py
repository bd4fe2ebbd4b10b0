"""Data: text to sharded TFRecords (`prepare`), TFRecords to tf.data (`load`), TinyBERT
augmentation (`augment`, and `augment_squad` for SQuAD questions) and cached teacher logits (`cache_teacher`).

Example:
```python
import tf_tinybert as tt

tt.data.prepare("train.tsv", "path/to/teacher_folder", "runs/sst2_train")
dataset = tt.data.load("runs/sst2_train", batch_size=32)
```
"""

from tf_tinybert.data.augment import augment
from tf_tinybert.data.augment_squad import augment_squad
from tf_tinybert.data.load import check_compatible, load
from tf_tinybert.data.manifest import Manifest, Shard, read_manifest, read_tokenizer
from tf_tinybert.data.prepare import prepare
from tf_tinybert.data.readers import BadRowError
from tf_tinybert.data.shards import CorruptShardError
from tf_tinybert.data.teacher_cache import cache_teacher

__all__ = [
    "BadRowError",
    "CorruptShardError",
    "Manifest",
    "Shard",
    "augment",
    "augment_squad",
    "cache_teacher",
    "check_compatible",
    "load",
    "prepare",
    "read_manifest",
    "read_tokenizer",
]
