"""Per-token BERT models: a tagger (NER) and an answer-span extractor (extractive QA).

keras-hub 0.32 ships sentence classifiers only (`BertTextClassifier`), so the two token
heads are small keras-hub `Task`s here, built as keras-hub builds its own: a functional
graph over a `BertBackbone`'s `sequence_output`, a dropout and one `Dense` (`output_dense`,
named "logits"), registered for `.keras` saving. Both take the backbone's inputs
(`token_ids`, `segment_ids`, `padding_mask`) and return logits per word piece:
- `BertTokenTagger`: `[batch, seq, num_classes]` tag logits;
- `BertSpanExtractor`: `[batch, seq, 2]`, start logits in `[..., 0]` and end logits in
  `[..., 1]` (`START`, `END`).

`token_logits(model, sequence_output)` applies a model's head to a sequence output, which
is how the distiller computes the student's logits from the same forward pass that yields
its hidden states and attention scores.

Example:
```python
from tf_tinybert import token_models

tagger = token_models.build_token_model("bert_4l_128h", "token_classification", num_classes=9)
logits = tagger({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
```
"""

from __future__ import annotations

import keras
import keras_hub

from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION, TOKEN_TASK_TYPES

START, END = 0, 1


def _head_initializer():
    # BERT's head initialiser (keras-hub's bert_kernel_initializer).
    return keras.initializers.TruncatedNormal(stddev=0.02)


class _PerTokenHead(keras_hub.models.Task):
    """A Dense over every position of a BertBackbone's sequence output."""

    def __init__(self, backbone, units, dropout=0.1, preprocessor=None, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            units, kernel_initializer=_head_initializer(), dtype=backbone.dtype_policy,
            name="logits")
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.output_dense(self.output_dropout(sequence))
        # Uncompiled: the caller (finetune or the distiller) chooses the optimizer and loss.
        kwargs.setdefault("compile", False)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.dropout = dropout
        # Logits, never probabilities: the distiller and `bert_backbone` read this.
        self.activation = keras.activations.get(None)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config


@keras.saving.register_keras_serializable(package="tf_tinybert")
class BertTokenTagger(_PerTokenHead):
    """Tag logits for every word piece: `[batch, seq, num_classes]`.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        num_classes: the number of tags (the task's label names, "O" included).
        dropout: dropout before the head.

    Example:
    ```python
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2,
                                             hidden_dim=8, intermediate_dim=16)
    tagger = BertTokenTagger(backbone, num_classes=9)
    tagger(features).shape  # (batch, seq, 9)
    ```
    """

    task = TOKEN_CLASSIFICATION

    def __init__(self, backbone, num_classes, dropout=0.1, preprocessor=None, **kwargs):
        if num_classes < 2:
            raise ValueError(f"Expected `num_classes` >= 2 tags. Received: num_classes={num_classes}")
        super().__init__(backbone, num_classes, dropout, preprocessor, **kwargs)
        self.num_classes = num_classes

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


@keras.saving.register_keras_serializable(package="tf_tinybert")
class BertSpanExtractor(_PerTokenHead):
    """Answer start and end logits for every word piece: `[batch, seq, 2]` (`START`, `END`).

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        dropout: dropout before the head.

    Example:
    ```python
    extractor = BertSpanExtractor(backbone)
    logits = extractor(features)
    start_logits, end_logits = logits[..., START], logits[..., END]
    ```
    """

    task = QUESTION_ANSWERING

    def __init__(self, backbone, dropout=0.1, preprocessor=None, **kwargs):
        super().__init__(backbone, 2, dropout, preprocessor, **kwargs)
        # Two "classes" per position: start and end (the distiller compares head widths).
        self.num_classes = 2


TOKEN_MODELS = {TOKEN_CLASSIFICATION: BertTokenTagger, QUESTION_ANSWERING: BertSpanExtractor}


def token_logits(model, sequence_output, training: bool = False):
    """The model's per-token logits from its backbone's sequence output [batch, seq, hidden].

    Example:
    ```python
    outputs = backbone_with_intermediates(model.backbone, features)
    logits = token_logits(model, outputs["sequence_output"])  # == model(features)
    ```
    """
    return model.output_dense(model.output_dropout(sequence_output, training=training))


def token_model_for(backbone, task: str, num_classes: int | None = None, dropout: float = 0.1):
    """A tagger or span extractor over `backbone`, by task name.

    Example:
    ```python
    teacher = token_model_for(keras_hub.models.BertBackbone.from_preset(folder),
                              "question_answering")
    ```
    """
    if task not in TOKEN_TASK_TYPES:
        raise ValueError(f"Expected `task` to be one of {TOKEN_TASK_TYPES}. Received: task={task!r}")
    if task == TOKEN_CLASSIFICATION:
        if num_classes is None:
            raise ValueError("A token_classification model needs `num_classes` (the tag count).")
        return BertTokenTagger(backbone, num_classes=num_classes, dropout=dropout)
    return BertSpanExtractor(backbone, dropout=dropout)


def build_token_model(name_or_config, task: str, num_classes: int | None = None,
                      vocabulary_size: int = 30522, max_sequence_length: int = 128,
                      dropout: float | None = None):
    """A randomly initialised student of `task` with a `build_student` backbone.

    Example:
    ```python
    student = build_token_model("bert_4l_128h", "token_classification", num_classes=9)
    ```
    """
    from tf_tinybert.models import build_student

    classifier = build_student(name_or_config, num_classes=2, vocabulary_size=vocabulary_size,
                               max_sequence_length=max_sequence_length, dropout=dropout)
    return token_model_for(classifier.backbone, task, num_classes, classifier.dropout)
