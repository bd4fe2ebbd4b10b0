"""The TinyBERT Distiller: a `keras.Model` whose `train_step` combines the TinyBERT losses."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from tf_tinybert import losses
from tf_tinybert.choices import LOSS_NAMES, RELATION_LAYERS, STAGES
from tf_tinybert.data.features import MODEL_INPUTS, PADDING_MASK, TEACHER_LOGITS
from tf_tinybert.keras_hub_bert import bert_backbone, forward_with_intermediates
from tf_tinybert.layer_map import resolve_layer_map

_INTERMEDIATE = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "prediction": 0.0, "hard": 0.0,
                 "relation": 0.0}
DEFAULT_LOSS_WEIGHTS = {
    "general": _INTERMEDIATE,
    "intermediate": _INTERMEDIATE,
    "prediction": {"embedding": 0.0, "hidden": 0.0, "attention": 0.0, "prediction": 1.0, "hard": 0.0,
                   "relation": 0.0},
    "joint": {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "prediction": 1.0, "hard": 0.0,
              "relation": 0.0},
}


def global_sum(value):
    """Sum a per-replica value over the replicas of a `tf.distribute` strategy (the value
    itself outside one): the normaliser of a loss that must add up, over replicas, to the
    single-device loss of the global batch.

    Example:
    ```python
    tokens = global_sum(losses.token_count(mask))  # real tokens in the global batch
    ```
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def require_labels(y) -> None:
    """Stops a stage with a "hard" (label) loss whose dataset yields features only."""
    if y is None:
        raise ValueError(
            "The 'hard' loss needs labels, but the dataset yields features only. "
            "Yield (features, labels) or set `loss_weights={'hard': 0}`."
        )


def _for_keras_reduction(results: dict) -> dict:
    """Step results as Keras can reduce them under MultiWorkerMirroredStrategy.

    Keras (3.15, TensorFlow backend) reduces each multi-worker step output with MEAN over
    axis 0, which a scalar does not have: there, each result becomes a [1] vector (the
    reduction returns the scalar mean over workers).
    """
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return results
    return {name: ops.reshape(value, (1,)) for name, value in results.items()}


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="tf_tinybert")
class Distiller(keras.Model):
    """Distils a BERT teacher into a smaller BERT student with the TinyBERT losses.

    The teacher is frozen and always runs in inference mode, outside the gradient tape. The
    student runs once per step and returns its logits, hidden states and pre-softmax attention
    scores. Where widths differ, learned projections (`embedding_projection`,
    `hidden_projection`, the paper's W_e and W_h) map the student's embedding output and hidden
    states to the teacher's width; they train with the student and are not part of
    `distiller.student`.

    Stages (`compile(stage=...)`), as in the paper:
    - `"general"`: embedding, hidden-state and attention losses on unlabeled text;
    - `"intermediate"`: the same losses on task data (labels, if any, only feed `accuracy`);
    - `"prediction"`: soft cross-entropy against the teacher's logits (MSE for regression),
      optionally mixed with the hard-label loss through `loss_weights={"hard": ...}`;
    - `"joint"`: all of the above with per-loss weights.

    Args:
        teacher: a fine-tuned `keras_hub.models.BertTextClassifier` (preprocessor may be None).
        student: a `keras_hub.models.BertTextClassifier`, e.g. from `build_student`.
        layer_map: `"uniform"` (g(m) = m * N / M), `"last"`, or a list of teacher layer
            numbers (1..N), one per student layer. Layer 0 (embeddings) maps to layer 0.

    Example:
    ```python
    import keras
    import tf_tinybert as tt

    student = tt.build_student("tinybert_4l_312h", num_classes=2)
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
    distiller.fit(train_ds, validation_data=dev_ds, epochs=3)
    distiller.compile(optimizer=keras.optimizers.AdamW(3e-5), stage="prediction")
    distiller.fit(train_ds, validation_data=dev_ds, epochs=3)
    distiller.student.save("student.keras")
    ```
    """

    def __init__(self, teacher, student, layer_map="uniform", **kwargs):
        super().__init__(**kwargs)
        teacher_backbone = bert_backbone(teacher, "teacher")
        student_backbone = bert_backbone(student, "student")
        if student_backbone.vocabulary_size != teacher_backbone.vocabulary_size:
            raise ValueError(
                "The student and teacher must share one tokenizer, but their vocabulary sizes "
                f"differ: student {student_backbone.vocabulary_size}, teacher "
                f"{teacher_backbone.vocabulary_size}."
            )
        if student_backbone.max_sequence_length > teacher_backbone.max_sequence_length:
            raise ValueError(
                f"The student's max_sequence_length ({student_backbone.max_sequence_length}) "
                f"exceeds the teacher's ({teacher_backbone.max_sequence_length}): the teacher "
                "cannot produce targets for the longer inputs."
            )
        if student.num_classes != teacher.num_classes:
            raise ValueError(
                f"The student has {student.num_classes} outputs and the teacher "
                f"{teacher.num_classes}; they must predict the same classes."
            )
        self.layer_map = layer_map if isinstance(layer_map, str) else [int(i) for i in layer_map]
        self.teacher_layers = resolve_layer_map(
            layer_map, student_backbone.num_layers, teacher_backbone.num_layers
        )
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.embedding_projection = self._projection(
            "embedding_projection", student_backbone, teacher_backbone
        )
        self.hidden_projection = self._projection(
            "hidden_projection", student_backbone, teacher_backbone
        )
        # Every part is built here; the Distiller itself is never called on a whole batch.
        self.built = True
        self.stage = None
        self.loss_weights = None
        self.temperature = None
        self.relation_heads = None
        self.relation_pairs = []
        self._trackers = {}

    @staticmethod
    def _projection(name, student_backbone, teacher_backbone):
        if student_backbone.hidden_dim == teacher_backbone.hidden_dim:
            return None
        projection = keras.layers.Dense(
            teacher_backbone.hidden_dim, dtype=student_backbone.dtype_policy, name=name
        )
        projection.build((None, None, student_backbone.hidden_dim))
        return projection

    @property
    def is_regression(self) -> bool:
        return self.student.num_classes == 1

    def compile(
        self,
        optimizer="adamw",
        stage: str = "intermediate",
        temperature: float = 1.0,
        loss_weights: dict | None = None,
        jit_compile: bool = False,
        relation_heads: int | None = None,
        relation_layers: str | int = "last",
        **kwargs,
    ):
        """Configure a distillation stage.

        Args:
            optimizer: a Keras optimizer or its name.
            stage: one of "general", "intermediate", "prediction", "joint".
            temperature: softening temperature of the prediction loss (> 0).
            loss_weights: overrides of the stage's default weights, keyed by "embedding",
                "hidden", "attention", "prediction", "hard", "relation". A loss with weight 0
                is skipped. "relation" (off by default) is MiniLM-v2's self-attention
                relation loss (`losses.relation_kl` over query-query, key-key and value-value
                relations), which needs no equal head count or width.
            jit_compile: compile the train step with XLA.
            relation_heads: relation heads of the relation loss; must divide both hidden
                sizes (`losses.RelationHeadsError` otherwise). None: the greatest common
                divisor of the two models' attention head counts.
            relation_layers: which layers the relation loss pairs: "last" (MiniLM-v2: the
                teacher's last layer with the student's last), a teacher layer number 1..N
                (that layer with the student's last, as MiniLM-v2 does for large teachers),
                or "layer_map" (every student layer with its teacher layer of `layer_map`).
            **kwargs: passed to `keras.Model.compile` (e.g. `steps_per_execution`).
        """
        if stage not in STAGES:
            raise ValueError(f"Expected `stage` to be one of {STAGES}. Received: stage={stage!r}")
        if not temperature > 0:
            raise ValueError(f"Expected `temperature` > 0. Received: temperature={temperature}")
        weights = dict(DEFAULT_LOSS_WEIGHTS[stage])
        for name, value in (loss_weights or {}).items():
            if name not in LOSS_NAMES:
                raise ValueError(
                    f"Unknown loss {name!r} in `loss_weights`. Expected keys among {LOSS_NAMES}."
                )
            if value < 0:
                raise ValueError(f"Expected loss weights >= 0. Received: {name}={value}")
            weights[name] = float(value)
        if stage == "general" and weights["hard"] > 0:
            raise ValueError("The 'general' stage trains on unlabeled text: set the 'hard' weight to 0.")
        if not any(weights.values()):
            raise ValueError(f"All loss weights are 0 for stage {stage!r}: nothing to train.")
        self._check_attention_heads(weights)
        self._configure_relation(weights, relation_heads, relation_layers)
        self.stage = stage
        self.temperature = float(temperature)
        self.loss_weights = weights
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.optimizer.build(self._distilled_variables())
        names = [f"{name}_loss" for name in LOSS_NAMES if weights[name] > 0]
        self._trackers = {name: keras.metrics.Mean(name=name) for name in [*names, "loss"]}
        self._accuracy = None
        if stage != "general" and not self.is_regression:
            self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def _check_attention_heads(self, weights):
        if weights["attention"] == 0:
            return
        student_heads = self.student.backbone.num_heads
        teacher_heads = self.teacher.backbone.num_heads
        if student_heads != teacher_heads:
            raise ValueError(
                f"The attention loss compares attention scores head by head, so the student's "
                f"num_heads ({student_heads}) must match the teacher's ({teacher_heads}) for "
                "TinyBERT's attention loss. Build the student with the teacher's head count, or "
                "set `loss_weights={'attention': 0}`."
            )

    def _configure_relation(self, weights, relation_heads, relation_layers):
        """Validate the relation loss's options and store its (student, teacher) layer pairs."""
        student, teacher = self.student.backbone, self.teacher.backbone
        if relation_heads is None:
            relation_heads = math.gcd(student.num_heads, teacher.num_heads)
        if weights["relation"] > 0:
            losses.check_relation_heads(
                relation_heads, {"student": student.hidden_dim, "teacher": teacher.hidden_dim}
            )
        if relation_layers == "last":
            pairs = [(student.num_layers, teacher.num_layers)]
        elif relation_layers == "layer_map":
            pairs = list(enumerate(self.teacher_layers, start=1))
        elif (isinstance(relation_layers, int) and not isinstance(relation_layers, bool)
              and 1 <= relation_layers <= teacher.num_layers):
            pairs = [(student.num_layers, relation_layers)]
        else:
            raise ValueError(
                f"Expected `relation_layers` to be one of {RELATION_LAYERS} or a teacher layer "
                f"number in 1..{teacher.num_layers}. Received: relation_layers={relation_layers!r}"
            )
        self.relation_heads = int(relation_heads)
        self.relation_pairs = pairs

    @property
    def metrics(self):
        trackers = list(self._trackers.values())
        if getattr(self, "_accuracy", None) is not None:
            trackers.append(self._accuracy)
        return trackers

    def call(self, inputs, training=False):
        return self.student({name: inputs[name] for name in MODEL_INPUTS}, training=training)

    def _needs_intermediates(self):
        weights = self.loss_weights
        return any(weights[name] > 0 for name in ("embedding", "hidden", "attention", "relation"))

    def _teacher_outputs(self, x):
        if self.loss_weights["prediction"] == 0 and not self._needs_intermediates():
            return {}
        if not self._needs_intermediates():
            if TEACHER_LOGITS in x:
                return {"logits": x[TEACHER_LOGITS]}
            inputs = {name: x[name] for name in MODEL_INPUTS}
            return {"logits": self.teacher(inputs, training=False)}
        return forward_with_intermediates(self.teacher, x, training=False,
                                          return_projections=self.loss_weights["relation"] > 0)

    def _student_outputs(self, x, training):
        if self._needs_intermediates():
            return forward_with_intermediates(
                self.student, x, training=training,
                return_projections=self.loss_weights["relation"] > 0)
        inputs = {name: x[name] for name in MODEL_INPUTS}
        return {"logits": self.student(inputs, training=training)}

    def compute_losses(self, x, y, student_out, teacher_out):
        """The weighted TinyBERT losses of one batch, keyed by `LOSS_NAMES`, plus "loss".

        The layer losses (`layer_losses`) and the output losses (`output_losses`, which a
        subclass for another head replaces), each divided by its count over the global batch,
        so that under `tf.distribute` the per-replica losses add up to the single-device loss.
        """
        values = self.layer_losses(x, student_out, teacher_out)
        values.update(self.output_losses(x, y, student_out, teacher_out))
        values["loss"] = sum(self.loss_weights[name] * value for name, value in values.items())
        return values

    def layer_losses(self, x, student_out, teacher_out) -> dict:
        """The unweighted embedding, hidden-state, attention and relation losses whose weight
        is above zero (none where the stage needs no intermediate outputs)."""
        weights = self.loss_weights
        mask = x[PADDING_MASK]
        values = {}
        if self._needs_intermediates():
            tokens = global_sum(losses.token_count(mask))
            student_hidden = student_out["hidden_states"]
            teacher_hidden = teacher_out["hidden_states"]
            if weights["embedding"] > 0:
                values["embedding"] = losses.hidden_mse(
                    self._project(self.embedding_projection, student_hidden[0]),
                    teacher_hidden[0], mask, tokens,
                )
            if weights["hidden"] > 0:
                values["hidden"] = sum(
                    losses.hidden_mse(
                        self._project(self.hidden_projection, student_hidden[m]),
                        teacher_hidden[g], mask, tokens,
                    )
                    for m, g in enumerate(self.teacher_layers, start=1)
                )
            if weights["attention"] > 0:
                heads = self.student.backbone.num_heads
                entries = global_sum(losses.attention_entry_count(mask, heads))
                values["attention"] = sum(
                    losses.attention_mse(
                        student_out["attention_scores"][m - 1],
                        teacher_out["attention_scores"][g - 1], mask, entries,
                    )
                    for m, g in enumerate(self.teacher_layers, start=1)
                )
            if weights["relation"] > 0:
                values["relation"] = self._relation_loss(mask, student_out, teacher_out)
        return values

    def output_losses(self, x, y, student_out, teacher_out) -> dict:
        """The unweighted "prediction" (soft cross-entropy against the teacher, or MSE for a
        regression head) and "hard" (labels) losses whose weight is above zero.

        A distiller for another head (per-token tags, answer spans) overrides this alone.
        """
        weights = self.loss_weights
        mask = x[PADDING_MASK]
        values = {}
        batch = global_sum(ops.cast(ops.shape(mask)[0], "float32"))
        if weights["prediction"] > 0:
            if self.is_regression:
                values["prediction"] = losses.prediction_mse(
                    student_out["logits"], teacher_out["logits"], batch
                )
            else:
                values["prediction"] = losses.soft_cross_entropy(
                    student_out["logits"], teacher_out["logits"], self.temperature, batch
                )
        if weights["hard"] > 0:
            require_labels(y)
            if self.is_regression:
                targets = ops.reshape(ops.cast(y, "float32"), (-1, 1))
                values["hard"] = losses.prediction_mse(student_out["logits"], targets, batch)
            else:
                values["hard"] = losses.hard_cross_entropy(student_out["logits"], y, batch)
        return values

    def _relation_loss(self, mask, student_out, teacher_out):
        """MiniLM-v2's relation loss: query-query, key-key and value-value KL divergences,
        summed over the paired layers (`relation_layers`)."""
        rows = global_sum(losses.relation_entry_count(mask, self.relation_heads))
        return sum(
            losses.relation_kl(student_vectors, teacher_vectors, mask, self.relation_heads, rows)
            for m, g in self.relation_pairs
            for student_vectors, teacher_vectors in zip(student_out["projections"][m - 1],
                                                        teacher_out["projections"][g - 1])
        )

    @staticmethod
    def _project(projection, hidden):
        return hidden if projection is None else projection(hidden)

    def _distilled_variables(self):
        """The variables this stage trains, known before the first step.

        Stages without a prediction or hard loss leave the student's pooler and head
        untouched; projections train only with the losses that use them. The optimizer is
        built over exactly this list at `compile`, so a backup of its state restores into
        the same slots.
        """
        weights = self.loss_weights
        head_trains = weights["prediction"] > 0 or weights["hard"] > 0
        backbone = self.student.backbone
        frozen = set()
        if not head_trains:
            for layer in (backbone.pooled_dense, self.student.output_dense):
                frozen.update(id(variable) for variable in layer.trainable_variables)
        variables = [v for v in self.student.trainable_variables if id(v) not in frozen]
        for projection, loss in ((self.embedding_projection, "embedding"),
                                 (self.hidden_projection, "hidden")):
            if projection is not None and weights[loss] > 0:
                variables += projection.trainable_variables
        return variables

    def _update_metrics(self, values, y, student_out):
        replicas = _num_replicas()
        for name, value in values.items():
            key = name if name == "loss" else f"{name}_loss"
            # Each replica holds its share of the global loss; the Mean tracker averages
            # replicas, so scale back to report the global value.
            self._trackers[key].update_state(value * replicas)
        if self._accuracy is not None and y is not None:
            self._accuracy.update_state(y, student_out["logits"])
        return _for_keras_reduction({metric.name: metric.result() for metric in self.metrics})

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.stage is None:
            raise RuntimeError("Call `distiller.compile(stage=...)` before `fit` or `evaluate`.")
        if self.stage == "general":
            y = None
        return x, y

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15, TensorFlow backend) builds a model made under a strategy by averaging
        # its first batch across replicas, which fails for dict features under
        # MultiWorkerMirroredStrategy. Nothing here needs it: every part, the optimizer and
        # the trackers are built by `__init__` and `compile`.
        return

    def train_step(self, data):
        x, y = self._unpack(data)
        teacher_out = self._teacher_outputs(x)
        teacher_out = tf.nest.map_structure(tf.stop_gradient, teacher_out)
        variables = self._distilled_variables()
        with tf.GradientTape() as tape:
            student_out = self._student_outputs(x, training=True)
            values = self.compute_losses(x, y, student_out, teacher_out)
            scaled = self.optimizer.scale_loss(values["loss"])
        gradients = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._update_metrics(values, y, student_out)

    def test_step(self, data):
        x, y = self._unpack(data)
        teacher_out = self._teacher_outputs(x)
        student_out = self._student_outputs(x, training=False)
        values = self.compute_losses(x, y, student_out, teacher_out)
        return self._update_metrics(values, y, student_out)

    def get_config(self):
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "layer_map": self.layer_map,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
