"""The export folder's contract: its file names and the model's serving signature.

`tf_tinybert.export` writes these names and `tf_tinybert.runtime` reads them; both import
them from here (this module imports nothing, so the TensorFlow-free runtime owns them).

- `MODEL_FILE`: the TFLite flatbuffer (with TFLite metadata).
- `VOCAB_FILE`: the WordPiece vocabulary, one token per line; also the name of the
  vocabulary inside the model's metadata, beside a prepared data folder's manifest and in
  a Hugging Face tokenizer folder.
- `LABELS_FILE`: the class names, one per line (in the metadata too).
- `EXPORT_INFO_FILE`: export.json, what `export_classifier` recorded (tokenizer options,
  quantisation, verification).
- `INPUT_NAMES`: the int32 [1, L] inputs MediaPipe's BERT TextClassifier looks up, in the
  order the serving function takes them (word ids, mask with 1 for real tokens, segment
  ids); `OUTPUT_NAME`: the softmax probabilities [1, C]; `SCORE_NAME`: a regression
  export's raw score [1, 1] instead.

Example:
```python
from tf_tinybert.runtime import contract

model_path = os.path.join("export", contract.MODEL_FILE)  # export/model.tflite
```
"""

MODEL_FILE = "model.tflite"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
EXPORT_INFO_FILE = "export.json"

INPUT_WORD_IDS = "input_word_ids"
INPUT_MASK = "input_mask"
INPUT_TYPE_IDS = "input_type_ids"
INPUT_NAMES = (INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS)
OUTPUT_NAME = "probability"
# A regression export's output (num_classes == 1): the head's raw value [1, 1], no softmax.
SCORE_NAME = "score"
