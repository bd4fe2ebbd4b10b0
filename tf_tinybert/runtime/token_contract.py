"""The export folder's contract for the per-token task shapes (beside `contract.py`).

The inputs are the classifier's (`contract.INPUT_NAMES`, int32 [1, L]); the outputs:
- tagging: `TAG_PROBABILITIES` ("probability"), float32 [1, L, num_tags], softmax per piece;
- answer spans: `START_LOGITS` and `END_LOGITS`, float32 [1, L] each.

export.json records the task under `TASK_KEY`, so that a runtime refuses a model of another
task by name. This module imports nothing but `contract`, so the TensorFlow-free runtime
owns it and `tf_tinybert.export` imports it.

Example:
```python
from tf_tinybert.runtime import token_contract

token_contract.OUTPUTS["question_answering"]   # ('start_logits', 'end_logits')
```
"""

from tf_tinybert.runtime.contract import OUTPUT_NAME

TASK_KEY = "task"
TAG_PROBABILITIES = OUTPUT_NAME
START_LOGITS = "start_logits"
END_LOGITS = "end_logits"
OUTPUTS = {
    "token_classification": (TAG_PROBABILITIES,),
    "question_answering": (START_LOGITS, END_LOGITS),
}
