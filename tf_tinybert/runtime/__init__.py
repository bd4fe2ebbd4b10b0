"""TensorFlow-free inference for exported tf_tinybert classifiers (ai-edge-litert + WordPiece).

Importing this package never imports TensorFlow or Keras, so it runs where only
`ai-edge-litert` and NumPy are installed.

Example:
```python
from tf_tinybert.runtime import TextClassifier

classifier = TextClassifier("export/model.tflite")
print(classifier.classify("a gorgeous, witty film").label)
```
"""

from tf_tinybert.runtime.classifier import (
    Category,
    Classification,
    TextClassifier,
    format_classifications,
    predict_main,
)
from tf_tinybert.runtime.model_files import ModelFileError
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer

__all__ = [
    "Category",
    "Classification",
    "ModelFileError",
    "TextClassifier",
    "WordpieceTokenizer",
    "format_classifications",
    "predict_main",
]
