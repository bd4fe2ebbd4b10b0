"""Evaluation over datasets, batch counts, default metrics, strategies by name."""

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

from tf_tinybert.evaluation import (
    default_metrics,
    evaluate_classifier,
    predict_with_labels,
    steps_in,
)
from tf_tinybert.strategies import make_strategy


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


def test_default_metrics_follow_the_task_type():
    assert default_metrics(1) == ("pearson", "spearman")
    assert default_metrics(3) == ("accuracy",)


def test_steps_in_refuses_an_endless_dataset():
    with pytest.raises(ValueError, match="repeats forever"):
        steps_in(tf.data.Dataset.range(3).repeat())


def test_unknown_strategy_is_refused():
    assert make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Expected `strategy` to be one of"):
        make_strategy("horovod")
