"""Every GLUE task type through export and on-device inference: regression (STS-B) and
three classes (MNLI), with sentence pairs."""

import json

import numpy as np
import pytest
from export_helpers import decisive_classifier, keras_reference
from tiny_models import TINY_VOCAB, random_features, tiny_tokenizer

from tf_tinybert.export import ExportVerificationError, export_classifier, read_metadata
from tf_tinybert.export.verify import tflite_probabilities
from tf_tinybert.runtime import TextClassifier, WordpieceTokenizer, predict_main

L = 16
PAIRS = [("a witty film", "the plot was awful"), ("the movie is great", "it was fun"),
         ("", "great fun"), ("the actors love the story " * 5, "not good"),
         ("bad", "the story is boring and the actors are awful " * 4)]


def keras_scores(model, features):
    """The regression head's raw outputs, [N] float64."""
    return np.asarray(model.predict(
        {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}, verbose=0
    ), dtype=np.float64)[:, 0]


def packed(text, pair):
    inputs = WordpieceTokenizer(list(TINY_VOCAB), strip_accents=False).pack(
        text, pair, sequence_length=L)
    return {"token_ids": inputs["input_word_ids"][None], "padding_mask":
            inputs["input_mask"][None], "segment_ids": inputs["input_type_ids"][None]}


@pytest.fixture(scope="module")
def regressor():
    model = decisive_classifier(seed=5, num_classes=1)
    kernel, bias = model.output_dense.get_weights()
    model.output_dense.set_weights([4.0 * kernel, 4.0 * bias + 2.5])  # spread around 2.5
    return model


@pytest.fixture(scope="module")
def regression_data(regressor):
    features = random_features(batch_size=40, sequence_length=L, seed=8)
    features["segment_ids"][:, L // 2:] = features["padding_mask"][:, L // 2:]
    # Labels: the model's own scores plus noise, so Pearson is high but not 1.
    labels = keras_scores(regressor, features) + np.random.default_rng(1).normal(0, 0.3, 40)
    return features, labels.astype("float32")


@pytest.fixture(scope="module")
def regression_fp32(regressor, regression_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("stsb") / "stsb_fp32"
    report = export_classifier(regressor, tiny_tokenizer(), out, quantization="fp32",
                               sequence_length=L, eval_data=[regression_data])
    return report, out


def test_regression_export_outputs_a_float_score(regression_fp32, regressor, regression_data):
    report, out = regression_fp32
    info = json.loads((out / "export.json").read_text())
    assert info["task_type"] == "regression"
    assert info["labels"] == [] and info["num_classes"] == 1
    assert info["signature"]["output"]["name"] == "score"
    assert info["signature"]["output"]["dtype"] == "float32"
    assert info["signature"]["output"]["shape"] == [1, 1]
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.tflite", "vocab.txt"]
    features, labels = regression_data
    received = tflite_probabilities((out / "model.tflite").read_bytes(), features)
    assert received.shape == (40, 1)
    expected = keras_scores(regressor, features)
    # The scores vary beyond [0, 1]: no softmax squashed them.
    assert expected.std() > 0.5 and expected.max() > 1.5
    np.testing.assert_allclose(received[:, 0], expected, atol=1e-4)
    # The recorded Pearson against the labels is numpy's.
    assert report.verification.metrics["pearson"] == pytest.approx(
        np.corrcoef(received[:, 0], labels)[0, 1], abs=1e-6)
    assert report.verification.keras_metrics["pearson"] == pytest.approx(
        np.corrcoef(expected, labels)[0, 1], abs=1e-5)
    assert report.verification.top1_agreement is None
    assert report.verification.pearson_with_keras == pytest.approx(1.0, abs=1e-6)
    assert info["verification"]["metrics"]["spearman"] == report.verification.metrics["spearman"]


def test_regression_metadata_holds_the_vocabulary_but_no_labels(regression_fp32):
    _, out = regression_fp32
    metadata = read_metadata((out / "model.tflite").read_bytes())
    assert sorted(metadata["files"]) == ["vocab.txt"]
    assert metadata["files"]["vocab.txt"].decode().split("\n")[:5] == TINY_VOCAB[:5]


def test_runtime_scores_sentence_pairs_like_keras(regression_fp32, regressor):
    report, _ = regression_fp32
    scorer = TextClassifier(report.model_path)
    assert scorer.task_type == "regression" and scorer.labels == ["score"]
    for text, pair in PAIRS:
        expected = keras_scores(regressor, packed(text, pair))[0]
        assert scorer.score(text, pair) == pytest.approx(expected, abs=1e-4)
        result = scorer.classify(text, text_pair=pair)
        assert result.label == "score" and result.score == pytest.approx(expected, abs=1e-4)
    (result,) = predict_main(report.model_path, [PAIRS[0][0]], text_pairs=[PAIRS[0][1]])
    assert result.text_pair == PAIRS[0][1]
    with pytest.raises(ValueError, match="one --pair text per text"):
        predict_main(report.model_path, ["a", "b"], text_pairs=["c"])


def test_regression_int8_is_calibrated_and_checked_by_pearson(regressor, regression_data,
                                                             tmp_path):
    features, labels = regression_data
    calibration = [{k: v[i:i + 1] for k, v in features.items()} for i in range(40)]
    report = export_classifier(regressor, tiny_tokenizer(), tmp_path / "int8",
                               quantization="int8", sequence_length=L,
                               representative_data=calibration,
                               eval_data=[regression_data], min_agreement=0.5)
    received = tflite_probabilities(open(report.model_path, "rb").read(), features)[:, 0]
    expected = keras_scores(regressor, features)
    assert report.verification.pearson_with_keras == pytest.approx(
        np.corrcoef(received, expected)[0, 1], abs=1e-6)
    assert report.verification.pearson_with_keras > 0.5
    assert report.info["verification"]["agreement_measure"] == "pearson_with_keras"
    # A bar no quantised model can pass fails the export and writes nothing.
    with pytest.raises(ExportVerificationError, match="Pearson"):
        export_classifier(regressor, tiny_tokenizer(), tmp_path / "strict",
                          quantization="int8", sequence_length=L,
                          representative_data=calibration, eval_data=[regression_data],
                          min_agreement=1.0)
    assert not (tmp_path / "strict").exists()


def test_regression_refuses_labels_and_int8_io(regressor, tmp_path):
    with pytest.raises(ValueError, match="no class labels"):
        export_classifier(regressor, tiny_tokenizer(), tmp_path / "x", sequence_length=L,
                          labels=["a"])
    with pytest.raises(ValueError, match="int8_io"):
        export_classifier(regressor, tiny_tokenizer(), tmp_path / "x", sequence_length=L,
                          quantization="int8", int8_io=True, representative_data=[])


def test_three_class_pair_export_matches_keras(tmp_path):
    model = decisive_classifier(seed=2, num_classes=3)
    labels = ["entailment", "neutral", "contradiction"]
    features = random_features(batch_size=30, sequence_length=L, seed=3)
    gold = np.random.default_rng(2).integers(0, 3, size=30)
    report = export_classifier(model, tiny_tokenizer(), tmp_path / "mnli", sequence_length=L,
                               labels=labels, eval_data=[(features, gold)],
                               metrics=["accuracy"])
    assert report.info["task_type"] == "classification"
    assert report.info["signature"]["output"]["shape"] == [1, 3]
    assert (tmp_path / "mnli" / "labels.txt").read_text().split() == labels
    expected = keras_reference(model, features)
    assert report.verification.accuracy == pytest.approx(np.mean(expected.argmax(-1) == gold))
    classifier = TextClassifier(report.model_path)
    assert classifier.labels == labels
    for text, pair in PAIRS:
        result = classifier.classify(text, text_pair=pair)
        reference = keras_reference(model, packed(text, pair))[0]
        assert len(result.categories) == 3
        assert result.label == labels[int(reference.argmax())]
        np.testing.assert_allclose(classifier.probabilities(text, pair), reference, atol=1e-5)


def test_predict_command_takes_pairs_and_prints_the_score(regression_fp32, regressor, capsys):
    from tf_tinybert.cli import main

    report, _ = regression_fp32
    (text, pair), (text2, pair2) = PAIRS[:2]
    assert main(["predict", report.model_path, text, text2, "--pair", pair, pair2]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{text} ||| {pair}" and lines[2] == f"{text2} ||| {pair2}"
    label, value = lines[1].split()
    assert label == "score"
    assert float(value) == pytest.approx(keras_scores(regressor, packed(text, pair))[0],
                                         abs=1e-3)
    assert main(["predict", report.model_path, text, text2, "--pair", pair]) == 2
    assert "one --pair text per text" in capsys.readouterr().err
