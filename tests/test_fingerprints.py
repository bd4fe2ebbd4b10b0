"""weights_fingerprint: equal for equal weights, different after any change."""

import numpy as np
import pytest
from tiny_models import tiny_classifier

from tf_tinybert.fingerprints import weights_fingerprint


def test_same_weights_same_fingerprint_any_change_another():
    first, second = tiny_classifier(seed=3), tiny_classifier(seed=3)
    fingerprint = weights_fingerprint(first)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert weights_fingerprint(second) == fingerprint  # same seed, other object and name
    assert weights_fingerprint(tiny_classifier(seed=4)) != fingerprint
    weight = second.weights[-1]
    value = np.array(weight.numpy())
    value.flat[0] = np.nextafter(value.flat[0], np.float32(np.inf))  # one float, one ulp
    weight.assign(value)
    assert weights_fingerprint(second) != fingerprint


def test_refuses_what_has_no_weights():
    with pytest.raises(ValueError, match="Keras model or layer.*Received: str"):
        weights_fingerprint("teacher.keras")
