"""Callbacks: NaN stops name the step and batch, the best model is kept by the task metric,
logs land where the run folder expects them."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

from tf_tinybert.callbacks import (
    BestModelKeeper,
    NonFiniteLossError,
    StopOnNaN,
    logging_callbacks,
    stage_callbacks,
)
from tf_tinybert.config import TrainingConfig
from tf_tinybert.distiller import Distiller


def plain_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
    return model


def test_nan_loss_stops_naming_step_epoch_and_batch():
    x = np.ones((32, 3), "float32")
    x[21] = np.nan  # batch 6 of the first epoch (batches of 4), step 6 overall
    model = plain_model()
    with pytest.raises(NonFiniteLossError, match=r"step 6 \(epoch 1, batch 6 of the epoch\).*loss=nan"):
        model.fit(x, np.ones((32, 1)), batch_size=4, shuffle=False, epochs=2,
                  callbacks=[StopOnNaN()], verbose=0)
    assert int(model.optimizer.iterations) == 6


def test_nan_in_a_later_epoch_names_that_epoch():
    x = np.ones((8, 3), "float32")

    class PoisonAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.layers[0].kernel.assign(np.full((3, 4), np.inf, "float32"))

    with pytest.raises(NonFiniteLossError, match=r"step 5 \(epoch 3, batch 1 of the epoch\)"):
        plain_model().fit(x, np.ones((8, 1)), batch_size=4, epochs=4,
                          callbacks=[StopOnNaN(), PoisonAfter()], verbose=0)


def test_finite_losses_train_to_the_end():
    model = plain_model()
    history = model.fit(np.ones((8, 3)), np.ones((8, 1)), batch_size=4, epochs=2,
                        callbacks=[StopOnNaN()], verbose=0)
    assert len(history.history["loss"]) == 2


def keyword_data(count=48, seed=0):
    features = random_features(batch_size=count, sequence_length=8, seed=seed)
    labels = (features["token_ids"] == 10).any(axis=1).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(16), features, labels


def test_best_model_keeper_saves_the_best_epoch_by_the_task_metric(tmp_path):
    data, features, labels = keyword_data()
    model = tiny_classifier(seed=2)
    model.compile(optimizer=keras.optimizers.Adam(2e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    keeper = BestModelKeeper(data, tmp_path / "best.keras", metrics=("accuracy", "f1"))
    history = model.fit(data, epochs=6, callbacks=[keeper], verbose=0)
    dev_accuracy = history.history["dev_accuracy"]
    assert len(dev_accuracy) == 6 and "dev_f1" in history.history
    best_epoch = int(np.argmax(dev_accuracy)) + 1  # the first epoch reaching the maximum
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved["epoch"] == best_epoch
    assert saved["accuracy"] == pytest.approx(max(dev_accuracy))
    # Score the saved model independently: numpy argmax against the labels.
    best = keras.saving.load_model(tmp_path / "best.keras", compile=False)
    predictions = best.predict(features, verbose=0).argmax(axis=1)
    assert np.mean(predictions == labels) == pytest.approx(saved["accuracy"])
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_best_model_keeper_resumes_with_the_best_score_so_far(tmp_path):
    data, _, _ = keyword_data()
    (tmp_path / "best.keras").write_bytes(b"placeholder")
    (tmp_path / "best.json").write_text(json.dumps({"accuracy": 1.01, "epoch": 3}))
    model = tiny_classifier(seed=2)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    keeper = BestModelKeeper(data, tmp_path / "best.keras")
    model.fit(data, epochs=1, callbacks=[keeper], verbose=0)
    assert keeper.best == {"accuracy": 1.01, "epoch": 3}  # no epoch beat the earlier best
    assert (tmp_path / "best.keras").read_bytes() == b"placeholder"


def test_best_model_keeper_evaluates_the_distillers_student(tmp_path):
    data, features, labels = keyword_data()
    teacher = tiny_classifier(seed=1)
    student = tiny_classifier(num_layers=1, seed=3)
    distiller = Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), stage="intermediate")
    keeper = BestModelKeeper(data, tmp_path / "student.keras")
    distiller.fit(data, epochs=1, callbacks=[keeper], verbose=0)
    saved = keras.saving.load_model(tmp_path / "student.keras", compile=False)
    assert saved.backbone.num_layers == 1
    np.testing.assert_allclose(saved.predict(features, verbose=0),
                               student.predict(features, verbose=0), atol=1e-6)


def test_best_model_keeper_wants_a_keras_path(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        BestModelKeeper(None, tmp_path / "best.h5")


def test_logging_callbacks_write_csv_and_tensorboard(tmp_path):
    model = plain_model()
    model.fit(np.ones((8, 3)), np.ones((8, 1)), batch_size=4, epochs=2, verbose=0,
              callbacks=logging_callbacks(tmp_path / "logs", "teacher"))
    model.fit(np.ones((8, 3)), np.ones((8, 1)), batch_size=4, epochs=3, initial_epoch=2,
              verbose=0, callbacks=logging_callbacks(tmp_path / "logs", "teacher"))
    with open(tmp_path / "logs" / "teacher.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]  # appended on the second run
    assert list((tmp_path / "logs" / "tensorboard" / "teacher").rglob("events.out.tfevents*"))


def test_stage_callbacks_order_and_switches(tmp_path):
    callbacks = stage_callbacks(tmp_path, "prediction", TrainingConfig(tensorboard=False),
                                dev_data=object())
    assert [type(c).__name__ for c in callbacks] == ["StopOnNaN", "BestModelKeeper", "CSVLogger"]
    assert callbacks[1].path == tmp_path / "best_prediction.keras"
    with_tensorboard = stage_callbacks(tmp_path, "teacher")
    assert [type(c).__name__ for c in with_tensorboard] == ["StopOnNaN", "CSVLogger",
                                                             "TensorBoard"]
