"""tf_tinybert: TinyBERT distillation of keras-hub BERT classifiers, exported to TFLite.

The public API is loaded lazily (PEP 562) so that `import tf_tinybert.runtime`, which
runs on devices without TensorFlow, never pays for (or requires) a TensorFlow import.

Example:
```python
import keras
import tf_tinybert as tt

student = tt.build_student("bert_4l_128h", num_classes=2, vocabulary_size=1000,
                           max_sequence_length=64)
distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
```
"""

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it. Sub-packages map to themselves.
_LAZY_ATTRIBUTES = {
    "Distiller": "tf_tinybert.distiller",
    "build_student": "tf_tinybert.models",
    "student_from_teacher": "tf_tinybert.models",
}
_LAZY_MODULES = ("data", "export", "runtime", "losses", "layer_map", "metrics", "config",
                 "evaluation", "stage")

__all__ = sorted([*_LAZY_ATTRIBUTES, *_LAZY_MODULES, "__version__"])


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        module = importlib.import_module(_LAZY_ATTRIBUTES[name])
        value = getattr(module, name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"tf_tinybert.{name}")
    else:
        raise AttributeError(f"module 'tf_tinybert' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
