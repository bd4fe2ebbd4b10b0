"""The BERT optimiser: the warm-up/decay schedule against its formula, and which weights decay."""

import keras
import numpy as np
import pytest

from tf_tinybert.optimizers import WarmupLinearDecay, adamw


def expected_rate(step, peak, total, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(total - step, 0) / (total - warmup)


@pytest.mark.parametrize(("total", "warmup"), [(100, 10), (7, 0), (50, 49)])
def test_schedule_follows_warmup_then_linear_decay(total, warmup):
    schedule = WarmupLinearDecay(2e-4, total_steps=total, warmup_steps=warmup)
    for step in range(total + 3):
        assert float(schedule(step)) == pytest.approx(
            expected_rate(step, 2e-4, total, warmup), rel=1e-5, abs=1e-12
        )


def test_schedule_peaks_at_the_end_of_warmup_and_reaches_zero():
    schedule = WarmupLinearDecay(1e-3, total_steps=20, warmup_steps=5)
    rates = [float(schedule(step)) for step in range(21)]
    assert max(rates) == pytest.approx(1e-3)
    assert rates[4] == pytest.approx(1e-3) and rates[20] == 0.0


def test_schedule_round_trips_through_its_config():
    schedule = WarmupLinearDecay(1e-3, total_steps=20, warmup_steps=5)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()


def test_schedule_rejects_warmup_beyond_total():
    with pytest.raises(ValueError, match="warmup_steps=30"):
        WarmupLinearDecay(1e-3, total_steps=20, warmup_steps=30)


def test_adamw_decays_kernels_but_not_biases_or_layer_norms():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    norm = keras.layers.LayerNormalization()
    norm.build((None, 3))
    variables = [layer.kernel, layer.bias, norm.gamma, norm.beta]
    for variable in variables:
        variable.assign(np.ones(variable.shape))
    optimizer = adamw(learning_rate=0.1, total_steps=10, warmup=0.0, weight_decay=0.5)
    # Zero gradients leave Adam's own update at zero: only decoupled weight decay moves weights.
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    np.testing.assert_allclose(layer.kernel.numpy(), 1 - 0.1 * 0.5)
    for variable in variables[1:]:
        np.testing.assert_allclose(variable.numpy(), 1.0)


def test_adamw_rejects_a_warmup_fraction_of_one():
    with pytest.raises(ValueError, match="warmup=1.0"):
        adamw(1e-3, total_steps=10, warmup=1.0)
