"""Shared test set-up: quiet TensorFlow, the `large` marker, tiny model fixtures."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
SST2_DIR = SHARED_DATA / "sst2"


def pytest_collection_modifyitems(config, items):
    """Tests marked `large` run only when asked for with `-m large`."""
    if "large" in (config.getoption("-m") or ""):
        return
    skip_large = pytest.mark.skip(reason="large test: run with `pytest -m large`")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


@pytest.fixture
def sst2_dir():
    """The real GLUE SST-2 folder beside the checkout; skips where it is absent."""
    if not (SST2_DIR / "train.tsv").exists():
        pytest.skip(f"SST-2 data not found at {SST2_DIR} (../shared/data is absent)")
    return SST2_DIR
