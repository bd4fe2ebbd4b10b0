"""TensorFlow-free inference for exported tf_tinybert models (ai-edge-litert + WordPiece):
sentence classifiers (`TextClassifier`), NER (`TokenClassifier`) and extractive QA
(`QuestionAnswerer`).

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
from tf_tinybert.runtime.entities import Entity
from tf_tinybert.runtime.model_files import ModelFileError
from tf_tinybert.runtime.spans import Answer
from tf_tinybert.runtime.token_runtime import QuestionAnswerer, TokenClassifier
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer

__all__ = [
    "Answer",
    "Category",
    "Classification",
    "Entity",
    "ModelFileError",
    "QuestionAnswerer",
    "TextClassifier",
    "TokenClassifier",
    "WordpieceTokenizer",
    "format_classifications",
    "predict_main",
]
