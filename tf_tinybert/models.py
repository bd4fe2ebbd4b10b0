"""Student presets and builders.

Reading intermediates out of keras-hub BERT models lives in `tf_tinybert.keras_hub_bert`,
the one module that knows keras-hub's internals. Layer numbering follows the TinyBERT
paper throughout tf_tinybert: layer 0 is the embedding output and layers 1..N are the
outputs of the N transformer layers.
"""

from __future__ import annotations

import keras_hub

from tf_tinybert.keras_hub_bert import bert_backbone
from tf_tinybert.layer_map import resolve_layer_map

_BACKBONE_KEYS = (
    "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "dropout", "num_segments",
    "vocabulary_size", "max_sequence_length",
)


def build_student(
    name_or_config: str | dict,
    num_classes: int,
    vocabulary_size: int = 30522,
    max_sequence_length: int = 128,
    dropout: float | None = None,
) -> keras_hub.models.BertTextClassifier:
    """Build a randomly initialised student `BertTextClassifier` (no preprocessor).

    Args:
        name_or_config: a student preset (a name or path that `tf_tinybert.config.load_student`
            reads: `configs/students/*.yaml`) or a dict of `BertBackbone` arguments
            (`num_layers`, `hidden_dim`, `num_heads`, `intermediate_dim`, ...). Only the shape
            is read from a preset; `init: from_teacher` is `student_from_teacher`'s business.
        num_classes: number of output classes; 1 builds a regression head.
        vocabulary_size: size of the teacher's vocabulary (the student shares its tokenizer).
        max_sequence_length: longest input the student accepts.
        dropout: dropout rate of the backbone and of the classification head; by default the
            preset's (or the dict's) `dropout`, else 0.1.

    Example:
    ```python
    student = build_student("tinybert_4l_312h", num_classes=2)
    student.count_params()  # about 14.4 million
    ```
    """
    if isinstance(name_or_config, str):
        from tf_tinybert.config import ConfigError, load_student, shipped_names

        try:
            config = load_student(name_or_config).backbone_config()
        except ConfigError as error:
            raise ValueError(
                f"Unknown student preset {name_or_config!r}. Expected one of "
                f"{shipped_names('students')} (configs/students/), a student YAML path or a "
                f"dict of BertBackbone arguments. ({error})"
            ) from error
    elif isinstance(name_or_config, dict):
        config = dict(name_or_config)
    else:
        raise ValueError(
            "Expected `name_or_config` to be a preset name or a dict of BertBackbone arguments. "
            f"Received: {name_or_config!r}"
        )
    unknown = sorted(set(config) - set(_BACKBONE_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown student config keys {unknown}. Expected keys among {list(_BACKBONE_KEYS)}."
        )
    config.setdefault("vocabulary_size", vocabulary_size)
    config.setdefault("max_sequence_length", max_sequence_length)
    if dropout is not None:
        config["dropout"] = dropout
    config.setdefault("dropout", 0.1)
    dropout = config["dropout"]
    if num_classes < 1:
        raise ValueError(f"Expected `num_classes` >= 1. Received: num_classes={num_classes}")
    backbone = keras_hub.models.BertBackbone(**config)
    return keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=num_classes, preprocessor=None, dropout=dropout
    )


def student_from_teacher(
    teacher: keras_hub.models.BertTextClassifier,
    layers: list[int],
    num_classes: int | None = None,
) -> keras_hub.models.BertTextClassifier:
    """Make a student by copying the teacher's embeddings and chosen transformer layers.

    A DistilBERT-style start: the student has the teacher's width and `len(layers)` layers,
    layer `i` of the student starting from teacher layer `layers[i]` (numbered from 1, as in
    the TinyBERT paper). The pooler is copied, and the classification head too when the
    number of classes is unchanged.

    Example:
    ```python
    student = student_from_teacher(teacher, layers=[2, 4, 6])  # every other layer of 6
    ```
    """
    backbone = bert_backbone(teacher, "teacher")
    layers = [int(layer) for layer in layers]
    if not layers or any(not 1 <= layer <= backbone.num_layers for layer in layers):
        raise ValueError(
            f"Expected `layers` to be a non-empty list of teacher layer numbers in "
            f"1..{backbone.num_layers}. Received: layers={layers}"
        )
    if any(later <= earlier for earlier, later in zip(layers, layers[1:])):
        raise ValueError(f"Expected `layers` to be strictly increasing. Received: layers={layers}")
    num_classes = teacher.num_classes if num_classes is None else num_classes
    student = build_student(
        {
            "num_layers": len(layers),
            "hidden_dim": backbone.hidden_dim,
            "num_heads": backbone.num_heads,
            "intermediate_dim": backbone.intermediate_dim,
            "num_segments": backbone.num_segments,
            "dropout": backbone.dropout,
        },
        num_classes=num_classes,
        vocabulary_size=backbone.vocabulary_size,
        max_sequence_length=backbone.max_sequence_length,
        dropout=teacher.dropout,
    )
    target = student.backbone
    for name in ("token_embedding", "position_embedding", "segment_embedding",
                 "embeddings_layer_norm", "pooled_dense"):
        target.get_layer(name).set_weights(backbone.get_layer(name).get_weights())
    for index, layer in enumerate(layers):
        target.transformer_layers[index].set_weights(
            backbone.transformer_layers[layer - 1].get_weights()
        )
    if num_classes == teacher.num_classes:
        student.output_dense.set_weights(teacher.output_dense.get_weights())
    return student


def teacher_layers_for(student_config, backbone) -> list[int]:
    """The teacher layers (1..N) a student config copies when it starts from the teacher.

    Checks that the student has the teacher's width, heads and feed-forward size (the layers
    are copied as they are); `init_layers` picks them, else the uniform map.

    Example:
    ```python
    teacher_layers_for(load_student("minilm_l3_from_teacher"), teacher.backbone)  # [2, 4, 6]
    ```
    """
    wanted = (student_config.hidden_dim, student_config.num_heads,
              student_config.intermediate_dim)
    found = (backbone.hidden_dim, backbone.num_heads, backbone.intermediate_dim)
    if wanted != found:
        raise ValueError(
            f"Student {student_config.name!r} starts from the teacher's layers, so its "
            f"(hidden_dim, num_heads, intermediate_dim) must be the teacher's {found}. "
            f"Received: {wanted}.")
    layers = student_config.init_layers or resolve_layer_map(
        "uniform", student_config.num_layers, backbone.num_layers)
    return list(layers)
