"""GLUE metrics against independent computations: counting loops, textbook formulas, numpy."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_tinybert import metrics

labels_and_predictions = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    )
)
binary_pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
    )
)
float_pairs = st.integers(3, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-5, 5).map(float), min_size=n, max_size=n),
        st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=n, max_size=n),
    )
)


def confusion_counts(predictions, labels):
    tp = sum(p == 1 and y == 1 for p, y in zip(predictions, labels))
    tn = sum(p == 0 and y == 0 for p, y in zip(predictions, labels))
    fp = sum(p == 1 and y == 0 for p, y in zip(predictions, labels))
    fn = sum(p == 0 and y == 1 for p, y in zip(predictions, labels))
    return tp, tn, fp, fn


def brute_force_ranks(values):
    return [
        sum(other < value for other in values) + (sum(other == value for other in values) + 1) / 2
        for value in values
    ]


def numpy_pearson(x, y):
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


@given(labels_and_predictions)
def test_accuracy_matches_counting_loop(pair):
    predictions, labels = pair
    expected = sum(p == y for p, y in zip(predictions, labels)) / len(labels)
    assert metrics.accuracy(predictions, labels) == pytest.approx(expected)


def test_accuracy_takes_argmax_of_scores():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    assert metrics.accuracy(logits, [1, 0, 0]) == pytest.approx(2 / 3)


@given(binary_pairs)
def test_f1_is_harmonic_mean_of_precision_and_recall(pair):
    predictions, labels = pair
    tp, _, fp, fn = confusion_counts(predictions, labels)
    if tp == 0:
        expected = 0.0
    else:
        precision, recall = tp / (tp + fp), tp / (tp + fn)
        expected = 2 * precision * recall / (precision + recall)
    assert metrics.f1(predictions, labels) == pytest.approx(expected)


def test_f1_hand_computed_example():
    # TP=2, FP=1, FN=1: precision = recall = 2/3.
    assert metrics.f1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(2 / 3)


@given(binary_pairs)
def test_binary_mcc_matches_textbook_formula(pair):
    predictions, labels = pair
    tp, tn, fp, fn = confusion_counts(predictions, labels)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    expected = 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator
    assert metrics.matthews_corrcoef(predictions, labels) == pytest.approx(expected, abs=1e-12)


@given(labels_and_predictions)
def test_multiclass_mcc_is_correlation_of_one_hot_indicators(pair):
    predictions, labels = pair
    # Gorodkin's R_K: cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)) over one-hot class indicators.
    x = np.eye(3)[predictions]
    y = np.eye(3)[labels]
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    denominator = math.sqrt(np.sum(x * x) * np.sum(y * y))
    expected = 0.0 if denominator == 0 else np.sum(x * y) / denominator
    assert metrics.matthews_corrcoef(predictions, labels) == pytest.approx(expected, abs=1e-12)


def test_mcc_hand_computed_examples():
    # The scikit-learn documentation example, and a perfect and an inverted classifier.
    assert metrics.matthews_corrcoef([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(-1 / 3)
    assert metrics.matthews_corrcoef([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([1, 0, 0, 1], [0, 1, 1, 0]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef([1, 1, 1, 1], [0, 1, 1, 0]) == 0.0


@given(float_pairs)
@settings(max_examples=60)
def test_pearson_matches_numpy_corrcoef(pair):
    predictions, labels = map(np.asarray, pair)
    assert metrics.pearson(predictions, labels) == pytest.approx(
        numpy_pearson(predictions, labels), abs=1e-9
    )


def test_rank_averages_ties():
    np.testing.assert_allclose(metrics.rank([3, 1, 4, 1, 5, 9, 2, 6, 5]),
                               [4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5])


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=30))
def test_rank_matches_brute_force(values):
    np.testing.assert_allclose(metrics.rank(values), brute_force_ranks(values))


@given(float_pairs)
@settings(max_examples=60)
def test_spearman_is_pearson_of_brute_force_ranks(pair):
    # Integer predictions force ties, which the rank averaging must handle.
    predictions, labels = pair
    expected = numpy_pearson(np.array(brute_force_ranks(predictions)),
                             np.array(brute_force_ranks(labels)))
    assert metrics.spearman(predictions, labels) == pytest.approx(expected, abs=1e-9)


def test_spearman_without_ties_matches_sum_of_squared_rank_differences():
    predictions = [0.3, 1.2, -0.5, 2.2, 0.9, 1.7]
    labels = [1.0, 3.0, 2.0, 5.0, 0.0, 4.0]
    d = np.array(brute_force_ranks(predictions)) - np.array(brute_force_ranks(labels))
    n = len(labels)
    expected = 1 - 6 * np.sum(d**2) / (n * (n**2 - 1))
    assert metrics.spearman(predictions, labels) == pytest.approx(expected)


def test_spearman_is_invariant_to_monotone_transforms():
    rng = np.random.default_rng(0)
    predictions, labels = rng.normal(size=50), rng.normal(size=50)
    assert metrics.spearman(np.exp(predictions), labels) == pytest.approx(
        metrics.spearman(predictions, labels)
    )


def test_regression_metrics_accept_column_vectors():
    predictions = np.array([[0.5], [2.0], [4.0]])
    assert metrics.pearson(predictions, [1.0, 2.0, 5.0]) == pytest.approx(
        numpy_pearson([0.5, 2.0, 4.0], [1.0, 2.0, 5.0])
    )


def test_compute_metrics_returns_each_named_metric():
    result = metrics.compute_metrics(["accuracy", "f1"], [1, 0, 1, 1], [1, 0, 0, 1])
    assert result == {"accuracy": pytest.approx(0.75), "f1": pytest.approx(0.8)}


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="'acc'"):
        metrics.compute_metrics(["acc"], [1], [1])


def test_mismatched_lengths_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        metrics.accuracy([1, 0, 1], [1, 0])


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="at least one"):
        metrics.f1([], [])
