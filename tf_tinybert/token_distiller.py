"""TinyBERT distillation of the per-token task shapes (tagging, answer spans).

`TokenDistiller` is the `Distiller` with the per-token pieces plugged in: the student and
teacher are `tf_tinybert.token_models` heads, each run once per step through
`keras_hub_bert.backbone_with_intermediates` (hidden states and pre-softmax attention scores
for the same embedding / hidden / attention losses, computed by `Distiller` itself), and
the prediction losses come from `tf_tinybert.token_losses`:
- tagging: per-token soft cross-entropy over real word pieces; hard loss on tagged pieces;
- answer spans: soft cross-entropy of the start and end distributions; hard loss on the gold
  start and end positions (none for the unlabeled windows of a transfer set).

Labels `y` are the tag ids `[batch, seq]` (-100 where a piece carries no tag) or the answer
positions `[batch, 2]` (start, end; -1 for a transfer set's unlabeled question).

Example:
```python
distiller = TokenDistiller(teacher=teacher_tagger, student=student_tagger)
distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
distiller.fit(dataset, epochs=1)   # dataset yields (features, tag_ids)
```
"""

from __future__ import annotations

import keras
from keras import ops

from tf_tinybert import token_losses
from tf_tinybert.choices import TOKEN_CLASSIFICATION
from tf_tinybert.data.features import MODEL_INPUTS, PADDING_MASK
from tf_tinybert.distiller import Distiller, global_sum, require_labels
from tf_tinybert.keras_hub_bert import backbone_with_intermediates
from tf_tinybert.token_models import BertSpanExtractor, BertTokenTagger, token_logits


def _forward(model, x, training):
    outputs = backbone_with_intermediates(model.backbone, x, training=training)
    outputs["logits"] = token_logits(model, outputs["sequence_output"], training=training)
    return outputs


@keras.saving.register_keras_serializable(package="tf_tinybert")
class TokenDistiller(Distiller):
    """Distils a per-token BERT teacher into a student of the same head type.

    Args:
        teacher: a fine-tuned `BertTokenTagger` or `BertSpanExtractor`.
        student: a model of the same class (and, for tagging, the same tags).
        layer_map: as for `Distiller`.

    Example:
    ```python
    student = build_token_model("bert_4l_128h", "question_answering")
    distiller = TokenDistiller(teacher=teacher, student=student)
    distiller.compile(optimizer="adamw", stage="prediction", loss_weights={"hard": 0.5})
    ```
    """

    def __init__(self, teacher, student, layer_map="uniform", **kwargs):
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, (BertTokenTagger, BertSpanExtractor)):
                raise ValueError(
                    f"The {role} must be a BertTokenTagger or BertSpanExtractor "
                    f"(tf_tinybert.token_models). Received: {type(model).__name__}.")
        if type(teacher) is not type(student):
            raise ValueError(
                f"The teacher ({type(teacher).__name__}) and student ({type(student).__name__}) "
                "must solve the same task.")
        super().__init__(teacher=teacher, student=student, layer_map=layer_map, **kwargs)

    @property
    def task(self) -> str:
        return self.student.task

    @property
    def is_regression(self) -> bool:
        return False

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Sentence accuracy does not apply; token tasks are scored by their own metrics
        # (entity F1, SQuAD EM/F1) on decoded predictions.
        self._accuracy = None

    def _teacher_outputs(self, x):
        if self.loss_weights["prediction"] == 0 and not self._needs_intermediates():
            return {}
        if not self._needs_intermediates():
            inputs = {name: x[name] for name in MODEL_INPUTS}
            return {"logits": self.teacher(inputs, training=False)}
        return _forward(self.teacher, x, training=False)

    def _student_outputs(self, x, training):
        if self._needs_intermediates():
            return _forward(self.student, x, training)
        inputs = {name: x[name] for name in MODEL_INPUTS}
        return {"logits": self.student(inputs, training=training)}

    def output_losses(self, x, y, student_out, teacher_out):
        """Per-token soft cross-entropy (tags) or over the start and end distributions
        (spans), and the hard label losses, in place of the sentence-level ones."""
        weights = self.loss_weights
        values = {}
        mask = x[PADDING_MASK]
        tagging = self.task == TOKEN_CLASSIFICATION
        if weights["prediction"] > 0:
            if tagging:
                values["prediction"] = token_losses.token_soft_cross_entropy(
                    student_out["logits"], teacher_out["logits"], mask, self.temperature,
                    global_sum(ops.sum(ops.cast(mask, "float32"))))
            else:
                values["prediction"] = token_losses.span_soft_cross_entropy(
                    student_out["logits"], teacher_out["logits"], mask, self.temperature,
                    global_sum(ops.cast(ops.shape(mask)[0], "float32")))
        if weights["hard"] > 0:
            require_labels(y)
            if tagging:
                tagged = ops.sum(ops.cast(ops.not_equal(y, token_losses.IGNORE_INDEX), "float32"))
                values["hard"] = token_losses.token_hard_cross_entropy(
                    student_out["logits"], y, normalizer=global_sum(tagged))
            else:
                values["hard"] = token_losses.span_hard_cross_entropy(
                    student_out["logits"], y, mask, global_sum(token_losses.labeled_rows(y)))
        return values

    def _distilled_variables(self):
        # A per-token head never reads the backbone's pooler.
        pooler = {id(v) for v in self.student.backbone.pooled_dense.trainable_variables}
        return [v for v in super()._distilled_variables() if id(v) not in pooler]
