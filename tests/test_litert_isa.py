"""benchmarks/litert_isa.py: LiteRT's kernels capped to an AVX2-only CPU, checked against valgrind.

valgrind answers CPUID as a Haswell, so XNNPACK initialised under valgrind holds a Haswell's
ISA bit set: the independent reference the cap in a native process must reproduce.
"""

import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "litert_isa.py"

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("nm") is None,
    reason="valgrind and nm (binutils) are needed; .ci/run installs them")


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory) -> pathlib.Path:
    """A one-layer float .tflite: any model makes XNNPACK read the CPU's features."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((16,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(8)(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path = tmp_path_factory.mktemp("litert_isa") / "dense.tflite"
    path.write_bytes(converter.convert())
    return path


def _run(*arguments, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True,
                          timeout=600, check=check)


def test_capped_xnnpack_flags_equal_valgrinds_haswell_and_only_clear_bits(dense_model):
    result = _run(str(SCRIPT), "--check", str(dense_model), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"native (\w+)\s+capped (\w+)\s+valgrind \(Haswell\) (\w+)", result.stdout)
    assert found, result.stdout
    native, capped, haswell = (int(value, 16) for value in found.groups())
    assert capped == haswell
    assert capped & ~native == 0  # the cap removes features, never adds one
    assert capped != 0
    flags = pathlib.Path("/proc/cpuinfo").read_text().split()
    if "avx512f" in flags:  # an AVX-512 machine: the cap must have removed something
        assert capped != native


def test_cap_refuses_once_xnnpack_has_read_the_features(dense_model):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import litert_isa\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "Interpreter(model_path=sys.argv[2]).allocate_tensors()\n"
        "try:\n"
        "    litert_isa.cap_to_avx2()\n"
        "except RuntimeError as error:\n"
        "    print('refused:', error)\n"
    )
    result = _run("-c", code, str(SCRIPT.parent), str(dense_model))
    assert "refused: XNNPACK is already initialised" in result.stdout, result.stderr


def test_capped_interpreter_still_computes_the_same_values(dense_model):
    # The AVX2 kernels compute the same function: outputs match an uncapped run.
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[2])\n"
        "import litert_isa\n"
        "if sys.argv[1] == 'avx2':\n"
        "    litert_isa.cap_to_avx2()\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "it = Interpreter(model_path=sys.argv[3]); it.allocate_tensors()\n"
        "it.set_tensor(it.get_input_details()[0]['index'],\n"
        "              np.linspace(-2, 2, 16, dtype=np.float32)[None])\n"
        "it.invoke()\n"
        "print(' '.join(repr(float(v)) for v in it.get_tensor("
        "it.get_output_details()[0]['index'])[0]))\n"
    )
    paths = (str(SCRIPT.parent), str(dense_model))
    native = np.array(_run("-c", code, "native", *paths).stdout.split(), dtype=float)
    capped = np.array(_run("-c", code, "avx2", *paths).stdout.split(), dtype=float)
    assert native.shape == (8,)
    np.testing.assert_allclose(capped, native, rtol=1e-5, atol=1e-6)
