"""TFLite export of BertTextClassifier students: quantisation, MediaPipe metadata, checks.

`to_tflite` converts (pure, returns bytes); `export_classifier` writes a verified folder
(model.tflite with metadata, vocab.txt, labels.txt, export.json) that MediaPipe Tasks'
TextClassifier and `tf_tinybert.runtime.TextClassifier` load as is.

Example:
```python
import tf_tinybert as tt

report = tt.export.export_classifier(student, tokenizer, "out/sst2_dynamic",
                                     quantization="dynamic", labels=["negative", "positive"])
```
"""

from tf_tinybert.choices import EXPORT_MODES
from tf_tinybert.export.evaluate import evaluate_tflite
from tf_tinybert.export.metadata import add_metadata, read_metadata
from tf_tinybert.export.ops import UnsupportedOpsError, check_builtin_ops, operator_names
from tf_tinybert.export.package import ExportReport, OutputExistsError, export_classifier
from tf_tinybert.export.tflite import INT8_FLOAT_OPS, to_tflite
from tf_tinybert.export.verify import ExportVerificationError, Verification

__all__ = [
    "EXPORT_MODES",
    "INT8_FLOAT_OPS",
    "ExportReport",
    "ExportVerificationError",
    "OutputExistsError",
    "UnsupportedOpsError",
    "Verification",
    "add_metadata",
    "evaluate_tflite",
    "check_builtin_ops",
    "export_classifier",
    "operator_names",
    "read_metadata",
    "to_tflite",
]
