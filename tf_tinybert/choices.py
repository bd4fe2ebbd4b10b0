"""Every closed set of string choices in tf_tinybert, each defined once.

Config validation (`tf_tinybert.config`), the CLI's `choices=`, `Distiller`, the layer map and
the TFLite converter all read their allowed values from here. This module imports nothing, so
any layer (the TensorFlow-free runtime included) may import it.

Example:
```python
from tf_tinybert.choices import EXPORT_MODES

"int8" in EXPORT_MODES  # True
```
"""

# A task's label type; prepared data without labels is "unlabeled".
TASK_TYPES = ("classification", "regression")
DATA_TASKS = (*TASK_TYPES, "unlabeled")
# Task shapes with an output per word piece: tags (NER) and answer spans (extractive QA).
TOKEN_CLASSIFICATION = "token_classification"
QUESTION_ANSWERING = "question_answering"
TOKEN_TASK_TYPES = (TOKEN_CLASSIFICATION, QUESTION_ANSWERING)
# Every task type a task config may name.
ALL_TASK_TYPES = (*TASK_TYPES, *TOKEN_TASK_TYPES)
# The metrics each token task shape reports (fractions); a task config picks from these.
TOKEN_METRICS = {TOKEN_CLASSIFICATION: ("f1", "precision", "recall"),
                 QUESTION_ANSWERING: ("f1", "exact_match")}

# Files a task config reads; `prepare` also reads plain text (one passage per line) and tfds.
# Files with columns, and maybe a header line (GLUE's CoLA has none).
TABLE_FORMATS = ("tsv", "csv")
FILE_FORMATS = (*TABLE_FORMATS, "jsonl")
INPUT_FORMATS = (*FILE_FORMATS, "text", "tfds")
# Files of the token task shapes: CoNLL columns or JSONL {"tokens", "tags"} (tagging), SQuAD
# v1.1 JSON (answer spans), keyed by task type.
TOKEN_FILE_FORMATS = {TOKEN_CLASSIFICATION: ("conll", "jsonl"), QUESTION_ANSWERING: ("squad",)}
# `prepare --format` for the token shapes (tagged JSONL is `--format jsonl --tags ...`).
TOKEN_INPUT_FORMATS = ("conll", "squad")

# How a student's weights start: random, or copied from the teacher's layers.
STUDENT_INITS = ("random", "from_teacher")

# Which teacher layer each student layer learns from (see tf_tinybert.layer_map).
LAYER_MAPS = ("uniform", "last")

# TFLite export: float32, float16 weights, dynamic-range int8 weights, full integer.
EXPORT_MODES = ("fp32", "fp16", "dynamic", "int8")

# TinyBERT's stages, run in turn; "joint" trains every loss at once instead.
PIPELINE_STAGES = ("general", "intermediate", "prediction")
STAGES = (*PIPELINE_STAGES, "joint")

# The Distiller's losses, in the order their trackers are reported.
LOSS_NAMES = ("embedding", "hidden", "attention", "prediction", "hard", "relation")

# Which layers the relation loss (MiniLM-v2) pairs: "last" pairs the teacher's last layer (or
# a chosen teacher layer number) with the student's last, "layer_map" every student layer
# with its teacher layer of the layer map (TinyBERT's way).
RELATION_LAYERS = ("last", "layer_map")

# tf.distribute strategies.
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
