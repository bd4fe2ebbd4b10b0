"""TokenDistiller: which model trains, and its losses against independent computations."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_backbone

from tf_tinybert import Distiller, token_losses
from tf_tinybert.token_distiller import TokenDistiller
from tf_tinybert.token_models import BertSpanExtractor, BertTokenTagger


def pair(head, **kwargs):
    teacher = head(tiny_backbone(0, 4, 12), dropout=0.0, **kwargs)
    student = head(tiny_backbone(1, 2, 8), dropout=0.0, **kwargs)
    return teacher, student


def tag_labels(features, num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, features["token_ids"].shape)
    labels[features["padding_mask"] == 0] = -100
    labels[:, 0] = -100
    return labels


def test_prediction_and_hard_losses_equal_the_pure_functions_on_model_outputs():
    teacher, student = pair(BertTokenTagger, num_classes=5)
    distiller = TokenDistiller(teacher, student)
    distiller.compile(optimizer="adam", stage="joint", temperature=2.0,
                      loss_weights={"hard": 0.5})
    x = random_features(seed=3)
    y = tag_labels(x)
    values = distiller.compute_losses(x, y, distiller._student_outputs(x, False),
                                      distiller._teacher_outputs(x))
    expected_soft = token_losses.token_soft_cross_entropy(student(x), teacher(x),
                                                          x["padding_mask"], 2.0)
    expected_hard = token_losses.token_hard_cross_entropy(student(x), y)
    assert float(values["prediction"]) == pytest.approx(float(expected_soft), rel=1e-5)
    assert float(values["hard"]) == pytest.approx(float(expected_hard), rel=1e-5)
    total = sum(float(values[n]) * w for n, w in
                [("embedding", 1), ("hidden", 1), ("attention", 1), ("prediction", 1), ("hard", .5)])
    assert float(values["loss"]) == pytest.approx(total, rel=1e-5)


def test_intermediate_losses_equal_the_sentence_distillers_on_the_same_backbones():
    teacher, student = pair(BertSpanExtractor)
    token = TokenDistiller(teacher, student)
    token.compile(optimizer="adam", stage="intermediate")
    sentence = Distiller(
        keras_hub.models.BertTextClassifier(teacher.backbone, 2, preprocessor=None),
        keras_hub.models.BertTextClassifier(student.backbone, 2, preprocessor=None))
    sentence.compile(optimizer="adam", stage="intermediate")
    # Share the learned projections so both compute the same function.
    for name in ("embedding_projection", "hidden_projection"):
        getattr(sentence, name).set_weights(getattr(token, name).get_weights())
    x = random_features(seed=4)
    a = token.compute_losses(x, None, token._student_outputs(x, False), token._teacher_outputs(x))
    b = sentence.compute_losses(x, None, sentence._student_outputs(x, False),
                                sentence._teacher_outputs(x))
    for name in ("embedding", "hidden", "attention", "loss"):
        assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-5)


@pytest.mark.parametrize("head", [BertTokenTagger, BertSpanExtractor])
def test_fit_trains_the_student_and_never_the_teacher(head):
    kwargs = {"num_classes": 5} if head is BertTokenTagger else {}
    teacher, student = pair(head, **kwargs)
    distiller = TokenDistiller(teacher, student)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), stage="joint",
                      loss_weights={"hard": 1.0})
    x = random_features(batch_size=8, seed=5)
    if head is BertTokenTagger:
        y = tag_labels(x)
    else:
        lengths = x["padding_mask"].sum(axis=1)
        y = np.stack([np.ones_like(lengths), lengths - 1], axis=1)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    head_before = student.output_dense.get_weights()[0].copy()
    pooler_before = student.backbone.pooled_dense.get_weights()[0].copy()
    history = distiller.fit(dataset, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for before, after in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(head_before, student.output_dense.get_weights()[0])
    np.testing.assert_array_equal(pooler_before, student.backbone.pooled_dense.get_weights()[0])
    assert set(history.history) == {"embedding_loss", "hidden_loss", "attention_loss",
                                    "prediction_loss", "hard_loss", "loss"}


def test_models_of_another_task_are_refused_by_name():
    teacher, _ = pair(BertTokenTagger, num_classes=5)
    _, student = pair(BertSpanExtractor)
    with pytest.raises(ValueError, match="BertTokenTagger.*BertSpanExtractor"):
        TokenDistiller(teacher, student)
    with pytest.raises(ValueError, match="BertTextClassifier"):
        TokenDistiller(teacher, keras_hub.models.BertTextClassifier(
            tiny_backbone(1, 2, 8), 5, preprocessor=None))


@pytest.mark.parametrize("head", [BertTokenTagger, BertSpanExtractor])
def test_a_hard_loss_without_labels_is_a_named_error(head):
    teacher, student = pair(head, **({"num_classes": 5} if head is BertTokenTagger else {}))
    distiller = TokenDistiller(teacher, student)
    distiller.compile(optimizer="adam", stage="prediction", loss_weights={"hard": 0.5})
    x = random_features(seed=5)
    with pytest.raises(ValueError, match="'hard' loss needs labels"):
        distiller.compute_losses(x, None, distiller._student_outputs(x, False),
                                 distiller._teacher_outputs(x))
