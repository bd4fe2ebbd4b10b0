"""export_classifier: the output folder, self-verification, atomic writes, bad input."""

import json
import os

import numpy as np
import pytest
from export_helpers import decisive_classifier, tensor_types
from tiny_models import TINY_VOCAB, random_features, tiny_tokenizer

import tf_tinybert.export.package as package
from tf_tinybert.export import (
    INT8_FLOAT_OPS,
    ExportVerificationError,
    OutputExistsError,
    export_classifier,
    read_metadata,
    to_tflite,
)
from tf_tinybert.export.verify import tflite_probabilities

L = 16
LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def model():
    return decisive_classifier()


@pytest.fixture(scope="module")
def eval_data():
    features = random_features(batch_size=40, sequence_length=L + 8, seed=21)
    labels = np.random.default_rng(0).integers(0, 2, size=40)
    return [(features, labels)]


@pytest.fixture(scope="module")
def fp32_export(model, eval_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "sst2_fp32"
    report = export_classifier(model, tiny_tokenizer(), out, quantization="fp32",
                               sequence_length=L, labels="negative,positive",
                               eval_data=eval_data)
    return report, out


def test_folder_holds_model_vocab_labels_and_report(fp32_export):
    report, out = fp32_export
    assert sorted(os.listdir(out)) == ["export.json", "labels.txt", "model.tflite", "vocab.txt"]
    assert (out / "vocab.txt").read_text().splitlines() == TINY_VOCAB
    assert (out / "labels.txt").read_text().splitlines() == LABELS
    content = (out / "model.tflite").read_bytes()
    assert read_metadata(content)["files"]["labels.txt"].decode().splitlines() == LABELS
    info = json.loads((out / "export.json").read_text())
    assert info == report.to_dict()
    assert info["quantization"] == "fp32" and info["sequence_length"] == L
    assert info["sizes"]["model_bytes"] == len(content)
    assert info["verification"]["examples"] == 40
    assert info["verification"]["max_abs_diff"] <= 1e-4
    assert info["min_litert_version"]
    assert info["signature"]["output"] == {
        "name": "probability", "tensor": info["signature"]["output"]["tensor"],
        "dtype": "float32", "shape": [1, 2]}
    assert not [n for n in os.listdir(out.parent) if n.startswith(".")]  # no temp left


def test_reported_accuracy_matches_a_recount(fp32_export, eval_data):
    report, out = fp32_export
    features, labels = eval_data[0]
    cut = {k: v[:, :L] for k, v in features.items()}  # rows are no longer than L here
    probabilities = tflite_probabilities((out / "model.tflite").read_bytes(), cut)
    assert report.verification.accuracy == pytest.approx(
        np.mean(probabilities.argmax(-1) == labels))


def test_existing_output_needs_overwrite(fp32_export, model):
    _, out = fp32_export
    before = (out / "model.tflite").read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        export_classifier(model, tiny_tokenizer(), out, sequence_length=L)
    assert (out / "model.tflite").read_bytes() == before


def test_overwrite_replaces_the_folder(model, tmp_path):
    out = tmp_path / "model_dir"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    report = export_classifier(model, tiny_tokenizer(), out, quantization="dynamic",
                               sequence_length=L, overwrite=True, max_eval_examples=16)
    assert "stale.txt" not in os.listdir(out)
    assert report.labels == ("0", "1")  # no labels given, no manifest: class ids
    assert json.loads((out / "export.json").read_text())["quantization"] == "dynamic"
    assert sorted(os.listdir(tmp_path)) == ["model_dir"]


@pytest.fixture(scope="module")
def wrong_bytes():
    """Another model's export: what a broken conversion would look like."""
    return to_tflite(decisive_classifier(seed=3), "fp32", sequence_length=L)


def test_failed_verification_writes_nothing(model, tmp_path, monkeypatch, wrong_bytes):
    wrong = wrong_bytes
    monkeypatch.setattr(package, "to_tflite", lambda *args, **kwargs: wrong)
    out = tmp_path / "never"
    with pytest.raises(ExportVerificationError, match="differs from Keras"):
        export_classifier(model, tiny_tokenizer(), out, sequence_length=L,
                          max_eval_examples=16)
    assert os.listdir(tmp_path) == []


def test_quantised_mode_below_min_agreement_fails(model, tmp_path, monkeypatch, eval_data,
                                                  wrong_bytes):
    monkeypatch.setattr(package, "to_tflite", lambda *args, **kwargs: wrong_bytes)
    with pytest.raises(ExportVerificationError, match="min_agreement"):
        export_classifier(model, tiny_tokenizer(), tmp_path / "dyn", quantization="dynamic",
                          sequence_length=L, eval_data=eval_data, min_agreement=0.9)
    assert os.listdir(tmp_path) == []


def test_int8_export_reports_agreement_and_accuracy(model, tmp_path, eval_data):
    calibration = [random_features(batch_size=16, sequence_length=L, seed=5)]
    report = export_classifier(model, tiny_tokenizer(), tmp_path / "int8", quantization="int8",
                               sequence_length=L, representative_data=calibration,
                               eval_data=eval_data, min_agreement=0.0, int8_io=True)
    info = report.to_dict()
    assert info["attention_mask_value"] == -30.0 and info["int8_io"]
    assert info["float_ops"] == list(INT8_FLOAT_OPS)
    assert info["signature"]["output"]["dtype"] == "int8"
    verification = info["verification"]
    assert 0.5 <= verification["top1_agreement"] <= 1.0
    assert verification["accuracy"] is not None and verification["keras_accuracy"] is not None


def test_integer_only_int8_export_quantises_every_operator(model, tmp_path, eval_data):
    calibration = [random_features(batch_size=16, sequence_length=L, seed=5)]
    report = export_classifier(model, tiny_tokenizer(), tmp_path / "int8", quantization="int8",
                               sequence_length=L, representative_data=calibration,
                               eval_data=eval_data, min_agreement=0.0, integer_only=True)
    assert report.to_dict()["float_ops"] == []
    with open(report.model_path, "rb") as f:
        content = f.read()
    assert set(tensor_types(content, "BATCH_MATMUL")) == {"INT8"}


def test_vocabulary_size_must_match_the_embedding_table(model, tmp_path):
    import keras_hub

    short = keras_hub.models.BertTokenizer(vocabulary=TINY_VOCAB[:-1], lowercase=True)
    with pytest.raises(ValueError, match="token_embedding"):
        export_classifier(model, short, tmp_path / "x", sequence_length=L)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sequence_length": 64}, "max_sequence_length"),
        ({"quantization": "int8"}, "representative_data"),
        ({"labels": ["only-one"]}, "Expected 2 labels"),
        ({"quantization": "dynamic", "integer_only": True}, "integer_only"),
    ],
)
def test_bad_input_is_refused(model, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_classifier(model, tiny_tokenizer(), tmp_path / "x",
                          **{"sequence_length": L, **kwargs})
    assert os.listdir(tmp_path) == []


def test_prepared_folders_calibrate_verify_and_name_labels(model, tmp_path):
    from tf_tinybert.data import prepare

    rng = np.random.default_rng(4)
    words = [w for w in TINY_VOCAB[5:] if not w.startswith("##")]
    lines = ["sentence\tlabel"] + [
        " ".join(rng.choice(words, size=int(rng.integers(1, 20))))
        + f"\t{rng.choice(['bad', 'good'])}"
        for _ in range(48)
    ]
    (tmp_path / "dev.tsv").write_text("\n".join(lines) + "\n")
    prepare(tmp_path / "dev.tsv", tiny_tokenizer(), tmp_path / "dev", max_sequence_length=24,
            verbose=0)
    report = export_classifier(model, tiny_tokenizer(), tmp_path / "int8", quantization="int8",
                               sequence_length=L, representative_data=tmp_path / "dev",
                               eval_data=tmp_path / "dev", min_agreement=0.0)
    assert report.labels == ("bad", "good")  # from the manifest
    assert report.verification.examples == 48
    assert report.verification.accuracy is not None
    from tf_tinybert.export import evaluate_tflite

    scores = evaluate_tflite(report.model_path, tmp_path / "dev", metrics=["accuracy"])
    assert scores["accuracy"] == pytest.approx(report.verification.accuracy)
