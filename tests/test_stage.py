"""Training stages: labels, teacher fine-tuning and distillation as resumable, logged fits that
keep the best model by the task metric."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

from tf_tinybert.config import ScheduleConfig, TrainingConfig
from tf_tinybert.distiller import Distiller
from tf_tinybert.stage import distill, finetune_teacher, train_on_labels

QUIET = TrainingConfig(checkpoint_every_steps=2, tensorboard=False)


def keyword_dataset(count=64, seed=0, regression=False, batch=16):
    """Sentences labeled by whether token 10 occurs: learnable by a tiny model."""
    features = random_features(batch_size=count, sequence_length=8, seed=seed)
    labels = (features["token_ids"] == 10).any(axis=1)
    labels = labels.astype("float32") * 2.0 if regression else labels.astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch), features, labels


def numpy_accuracy(model, features, labels):
    return float(np.mean(model.predict(features, verbose=0).argmax(-1) == labels))


def test_training_on_labels_learns_and_returns_the_best_model(tmp_path):
    data, features, labels = keyword_dataset()
    model = tiny_classifier(seed=3)
    before = numpy_accuracy(model, features, labels)
    result = train_on_labels(model, data, folder=tmp_path, name="baseline",
                             schedule=ScheduleConfig(epochs=12, learning_rate=3e-2, warmup=0.1),
                             training=QUIET, dev_data=data, verbose=0)
    history = result.history.history
    assert history["loss"][-1] < history["loss"][0]
    assert len(history["dev_accuracy"]) == 12
    best = json.loads((tmp_path / "best_baseline.json").read_text())
    assert best["accuracy"] == pytest.approx(max(history["dev_accuracy"]))
    assert result.model is not model  # reloaded from best_baseline.keras
    # The returned model scores the best epoch's dev accuracy, recomputed with numpy.
    assert numpy_accuracy(result.model, features, labels) == pytest.approx(best["accuracy"])
    assert best["accuracy"] > max(before, 0.8)
    rows = list(csv.DictReader((tmp_path / "logs" / "baseline.csv").open()))
    assert [int(row["epoch"]) for row in rows] == list(range(12))
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())


def test_epochs_and_max_steps_override_the_schedule(tmp_path):
    data, _, _ = keyword_dataset()
    model = tiny_classifier(seed=3)
    schedule = ScheduleConfig(epochs=5, learning_rate=1e-3, max_steps=6)
    result = train_on_labels(model, data, folder=tmp_path, name="x", schedule=schedule,
                             epochs=2, training=QUIET, verbose=0)
    assert int(model.optimizer.iterations) == 6  # 2 epochs of 4 batches, cut at max_steps
    assert result.model is model  # no dev data: the trained model itself
    # The learning rate decays to zero at the stage's last step (max_steps), not epochs * 4.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-12)


def test_finetune_regression_teacher_minimises_mse(tmp_path):
    data, features, labels = keyword_dataset(regression=True)
    teacher = tiny_classifier(num_classes=1, seed=3)
    result = finetune_teacher(teacher, data, folder=tmp_path, training=QUIET,
                              schedule=ScheduleConfig(epochs=2, learning_rate=1e-2), verbose=0)
    predictions = teacher.predict(features, verbose=0)[:, 0]
    # The compiled loss is the mean squared error of the predictions (no dropout at evaluation).
    assert teacher.evaluate(data, verbose=0) == pytest.approx(
        np.mean((predictions - labels) ** 2), rel=1e-4
    )
    assert "accuracy" not in result.history.history


def test_finetune_refuses_a_non_bert_model(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="BERT-family"):
        finetune_teacher(model, tf.data.Dataset.from_tensors((np.zeros((1, 4)), [0])),
                         folder=tmp_path)


def test_distill_keeps_the_best_student_only_in_the_prediction_stage(tmp_path):
    data, features, labels = keyword_dataset(count=32, batch=8)
    teacher = tiny_classifier(num_layers=2, hidden_dim=8, seed=10)
    student = tiny_classifier(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8,
                              seed=0)
    schedule = ScheduleConfig(epochs=2, learning_rate=1e-2, warmup=0.0)
    result = distill(Distiller(teacher=teacher, student=student), data, stage="intermediate",
                     folder=tmp_path, schedule=schedule, training=QUIET, dev_data=data,
                     verbose=0)
    assert result.model is student
    assert not (tmp_path / "best_intermediate.keras").exists()
    assert "dev_accuracy" not in result.history.history
    result = distill(Distiller(teacher=teacher, student=student), data, stage="prediction",
                     folder=tmp_path, schedule=schedule, training=QUIET, dev_data=data,
                     temperature=2.0, verbose=0)
    best = json.loads((tmp_path / "best_prediction.json").read_text())
    assert best["accuracy"] == pytest.approx(max(result.history.history["dev_accuracy"]))
    assert numpy_accuracy(result.model, features, labels) == pytest.approx(best["accuracy"])
