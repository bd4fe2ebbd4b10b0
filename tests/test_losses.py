"""The loss functions against plain numpy implementations of the TinyBERT equations."""

import numpy as np
import pytest

from tf_tinybert import losses


def _mask(lengths, seq):
    return (np.arange(seq)[None, :] < np.asarray(lengths)[:, None]).astype("int32")


def _np_log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _np_hidden_mse(s, t, mask):
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            if mask[b, i]:
                total += ((s[b, i] - t[b, i]) ** 2).sum()
                count += s.shape[2]
    return total / count


def _np_attention_mse(s, t, mask):
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for h in range(s.shape[1]):
            for i in range(s.shape[2]):
                for j in range(s.shape[3]):
                    if mask[b, i] and mask[b, j]:
                        total += (s[b, h, i, j] - t[b, h, i, j]) ** 2
                        count += 1
    return total / count


def test_hidden_mse_matches_numpy_over_real_tokens():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 2, 5, 3)).astype("float32")
    mask = _mask([5, 2], 5)
    assert float(losses.hidden_mse(s, t, mask)) == pytest.approx(_np_hidden_mse(s, t, mask), rel=1e-6)


def test_attention_mse_matches_numpy_and_ignores_mask_values():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(2, 2, 4, 6, 6)).astype("float32")
    mask = _mask([6, 3], 6)
    # Masked entries hold huge values, as in models that add the mask to the scores.
    s[1, :, 3:, :] = -1e9
    t[1, :, :, 3:] = -1e4
    expected = _np_attention_mse(s, t, mask)
    assert float(losses.attention_mse(s, t, mask)) == pytest.approx(expected, rel=1e-5)


def test_losses_do_not_depend_on_padding_length():
    rng = np.random.default_rng(2)
    short_s, short_t = rng.normal(size=(2, 3, 2, 8, 8)).astype("float32")
    mask = _mask([8, 5, 2], 8)
    long_s = np.pad(short_s, [(0, 0), (0, 0), (0, 8), (0, 8)], constant_values=7.0)
    long_t = np.pad(short_t, [(0, 0), (0, 0), (0, 8), (0, 8)], constant_values=-3.0)
    long_mask = np.pad(mask, [(0, 0), (0, 8)])
    assert float(losses.attention_mse(long_s, long_t, long_mask)) == pytest.approx(
        float(losses.attention_mse(short_s, short_t, mask)), rel=1e-6)
    hs, ht = short_s[:, 0], short_t[:, 0]
    assert float(losses.hidden_mse(np.pad(hs, [(0, 0), (0, 8), (0, 0)], constant_values=5.0),
                                   np.pad(ht, [(0, 0), (0, 8), (0, 0)]), long_mask)
                 ) == pytest.approx(float(losses.hidden_mse(hs, ht, mask)), rel=1e-6)


def test_soft_cross_entropy_is_teacher_weighted_and_scales_with_temperature_squared():
    rng = np.random.default_rng(3)
    student, teacher = rng.normal(size=(2, 4, 3)).astype("float32") * 3
    for temperature in (1.0, 2.0, 4.0):
        p_teacher = np.exp(_np_log_softmax(teacher / temperature))
        expected = -(p_teacher * _np_log_softmax(student / temperature)).sum(-1).mean()
        expected *= temperature**2
        got = float(losses.soft_cross_entropy(student, teacher, temperature))
        assert got == pytest.approx(expected, rel=1e-5)
    # Cross-entropy is not symmetric: swapping teacher and student changes the value.
    assert float(losses.soft_cross_entropy(student, teacher)) != pytest.approx(
        float(losses.soft_cross_entropy(teacher, student)), rel=1e-3)


def test_hard_cross_entropy_and_prediction_mse_match_numpy():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0])
    expected = -_np_log_softmax(logits)[np.arange(5), labels].mean()
    assert float(losses.hard_cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)
    a, b = rng.normal(size=(2, 5, 1)).astype("float32")
    assert float(losses.prediction_mse(a, b)) == pytest.approx(((a - b) ** 2).mean(), rel=1e-6)


def test_normalizer_divides_by_a_global_count():
    rng = np.random.default_rng(5)
    s, t = rng.normal(size=(2, 2, 4, 3)).astype("float32")
    mask = _mask([4, 4], 4)
    local = float(losses.hidden_mse(s, t, mask))
    # Half of a global batch of 16 tokens: the same sum divided by twice the count.
    assert float(losses.hidden_mse(s, t, mask, normalizer=16.0)) == pytest.approx(local / 2, rel=1e-6)
