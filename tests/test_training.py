"""Training helpers: strategies by name, evaluation over datasets, label-only training."""

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

from tf_tinybert.training import (
    evaluate_classifier,
    make_strategy,
    predict_with_labels,
    steps_in,
    train_on_labels,
)


def _dataset(rows=20, batch=8, seed=0):
    features = random_features(rows, 10, seed=seed)
    labels = (features["token_ids"][:, 1] % 2).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch), features, labels


def test_evaluation_matches_numpy_on_the_models_predictions():
    model = tiny_classifier(seed=1)
    model.output_dense.kernel.assign(model.output_dense.kernel * 200.0)
    dataset, features, labels = _dataset()
    logits, seen = predict_with_labels(model, dataset)
    np.testing.assert_array_equal(seen, labels)
    np.testing.assert_allclose(logits, model.predict(features, verbose=0), atol=1e-5)
    expected = float((model.predict(features, verbose=0).argmax(-1) == labels).mean())
    assert evaluate_classifier(model, dataset, ("accuracy",))["accuracy"] == pytest.approx(expected)


def test_steps_in_counts_batches_even_when_unknown():
    dataset, _, _ = _dataset(rows=20, batch=8)
    assert steps_in(dataset) == 3
    assert steps_in(dataset.filter(lambda x, y: True)) == 3


def test_training_on_labels_learns_a_separable_task():
    model = tiny_classifier(seed=2, dropout=0.0)
    dataset, _, _ = _dataset(rows=64, batch=16, seed=3)
    before = evaluate_classifier(model, dataset)["accuracy"]
    history = train_on_labels(model, dataset, epochs=15, learning_rate=1e-2, warmup=0.0,
                              verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert evaluate_classifier(model, dataset)["accuracy"] > max(before, 0.8)


def test_unknown_strategy_is_refused():
    assert make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Expected `strategy` to be one of"):
        make_strategy("horovod")
