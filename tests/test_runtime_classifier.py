"""TextClassifier on exported tiny models, against the Keras model and MediaPipe's runtime."""

import json
import os
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
from runtime_export import export_tiny_model
from tiny_models import spread_weights, tiny_classifier, tiny_tokenizer

from tf_tinybert.export import export_classifier
from tf_tinybert.runtime import (
    Category,
    Classification,
    ModelFileError,
    TextClassifier,
    format_classifications,
    predict_main,
)

SEQUENCE_LENGTH = 16
LABELS = ("negative", "neutral", "positive")
SENTENCES = [
    "a gorgeous, witty film",
    "the plot was boring and awful",
    "",
    "   ",
    "Not very GOOD, but fun!",
    "the actors love the story and the story loves the actors " * 4,
    "a film",
    "the movie is great",
    "it was bad.",
    "hate",
    "witty witty witty",
    "?!",
]
PAIRS = [("a witty film", "the plot was awful"), ("", "great fun"),
         ("the story is very very good " * 3, "but the actors are bad " * 3)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = spread_weights(tiny_classifier(num_classes=len(LABELS), seed=3))
    tokenizer = tiny_tokenizer()
    path = export_tiny_model(model, tokenizer, str(tmp_path_factory.mktemp("export")),
                             labels=LABELS, sequence_length=SEQUENCE_LENGTH)
    return model, tokenizer, path


def keras_reference(model, tokenizer, first, second=None):
    """Softmax of the Keras model on keras-hub's own preprocessing (not the runtime's)."""
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH)
    x = preprocessor(x=np.array(first) if second is None else (np.array(first),
                                                                 np.array(second)))
    x["padding_mask"] = keras.ops.cast(x["padding_mask"], "int32")
    return keras.ops.convert_to_numpy(keras.ops.softmax(model(x, training=False), axis=-1))


def as_matrix(results):
    return np.array([[c.score for c in sorted(r.categories, key=lambda c: c.index)]
                     for r in results])


def test_scores_match_keras_softmax(exported):
    model, tokenizer, path = exported
    classifier = TextClassifier(path)
    assert classifier.labels == list(LABELS)
    assert classifier.sequence_length == SEQUENCE_LENGTH
    ours = as_matrix(classifier.classify(SENTENCES))
    expected = keras_reference(model, tokenizer, SENTENCES)
    assert np.abs(ours - expected).max() <= 1e-4
    # The weights are spread so that the comparison is not between near-uniform vectors.
    assert expected.max() - expected.min() > 0.5
    assert len(set(expected.argmax(axis=1))) > 1


def test_pairs_match_keras_softmax(exported):
    model, tokenizer, path = exported
    firsts, seconds = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    results = TextClassifier(path).classify(firsts, text_pair=seconds)
    assert [r.text_pair for r in results] == seconds
    expected = keras_reference(model, tokenizer, firsts, seconds)
    assert np.abs(as_matrix(results) - expected).max() <= 1e-4


def test_single_text_gives_the_batch_result(exported):
    _, _, path = exported
    classifier = TextClassifier(path, num_threads=1)
    batch = classifier.classify(SENTENCES[:3])
    single = [classifier.classify(text) for text in SENTENCES[:3]]
    assert isinstance(single[0], Classification)
    assert single == batch


def test_categories_are_sorted_and_top_k_keeps_the_best(exported):
    _, _, path = exported
    classifier = TextClassifier(path)
    result = classifier.classify("a gorgeous, witty film")
    scores = [c.score for c in result.categories]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert {c.category_name for c in result.categories} == set(LABELS)
    best = classifier.classify("a gorgeous, witty film", top_k=1)
    assert best.categories == result.categories[:1]
    assert result.label == result.top.category_name == LABELS[result.top.index]


def test_thread_counts_agree(exported):
    _, _, path = exported
    one = as_matrix(TextClassifier(path, num_threads=1).classify(SENTENCES))
    two = as_matrix(TextClassifier(path, num_threads=2).classify(SENTENCES))
    np.testing.assert_allclose(one, two, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_thread_count_is_rejected(exported, bad):
    with pytest.raises(ValueError, match="num_threads"):
        TextClassifier(exported[2], num_threads=bad)


def test_explicit_labels_override_metadata_and_must_match_classes(exported):
    path = exported[2]
    assert TextClassifier(path, labels=["n", "m", "p"]).labels == ["n", "m", "p"]
    with pytest.raises(ValueError, match=r"3 classes but 2 labels"):
        TextClassifier(path, labels=["n", "p"])


def test_bad_inputs_to_classify_are_rejected(exported):
    classifier = TextClassifier(exported[2])
    with pytest.raises(ValueError, match="position 1"):
        classifier.classify(["fine", 3])
    with pytest.raises(ValueError, match="as long as"):
        classifier.classify(["a", "b"], text_pair=["c"])
    with pytest.raises(ValueError, match="top_k"):
        classifier.classify("a", top_k=0)


def test_corrupt_model_error_names_the_file(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(ModelFileError, match=r"broken\.tflite.*not a TFLite model"):
        TextClassifier(path)


def test_truncated_model_error_names_the_file(exported, tmp_path):
    content = open(exported[2], "rb").read()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(content[: len(content) // 3])
    with pytest.raises(ValueError, match=r"truncated\.tflite"):
        TextClassifier(path)


def test_missing_model_error_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"absent\.tflite"):
        TextClassifier(tmp_path / "absent.tflite")


def without_associated_files(content):
    """The model bytes with the appended zip's end record broken: no metadata files."""
    end = content.rindex(b"PK\x05\x06")
    return content[:end] + b"XX" + content[end + 2:]


def test_missing_vocabulary_error_names_the_model(exported, tmp_path):
    path = tmp_path / "bare.tflite"
    path.write_bytes(without_associated_files(open(exported[2], "rb").read()))
    with pytest.raises(ModelFileError, match=r"No WordPiece vocabulary for '.*bare\.tflite'"):
        TextClassifier(path)


def test_vocabulary_and_labels_beside_the_model_are_used(exported, tmp_path):
    model, tokenizer, source = exported
    path = tmp_path / "model.tflite"
    path.write_bytes(without_associated_files(open(source, "rb").read()))
    (tmp_path / "vocab.txt").write_text("\n".join(tokenizer.get_vocabulary()) + "\n")
    (tmp_path / "labels.txt").write_text("bad\nmeh\ngood\n")
    (tmp_path / "export.json").write_text(json.dumps({"tokenizer": {"lowercase": True,
                                                                    "strip_accents": False}}))
    classifier = TextClassifier(path)
    assert classifier.labels == ["bad", "meh", "good"]
    assert classifier.vocab_source.endswith("vocab.txt'")
    assert not classifier.tokenizer.strip_accents
    expected = keras_reference(model, tokenizer, SENTENCES[:4])
    assert np.abs(as_matrix(classifier.classify(SENTENCES[:4])) - expected).max() <= 1e-4


def test_explicit_vocabulary_without_special_tokens_is_rejected(exported, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nfilm\n")
    with pytest.raises(ValueError, match=r"vocab\.txt.*lacks the special tokens"):
        TextClassifier(exported[2], vocab=vocab)


def test_predict_main_and_format(exported):
    results = predict_main(exported[2], ["a gorgeous, witty film", "it was bad."], top_k=2)
    assert len(results) == 2 and all(len(r.categories) == 2 for r in results)
    text = format_classifications(results)
    lines = text.splitlines()
    assert lines[0] == "a gorgeous, witty film"
    assert lines[1].split() == [results[0].label, f"{results[0].score:.4f}"]
    assert len(lines) == 6


def test_format_classifications_aligns_names():
    result = Classification("x", (Category(1, 0.75, "positive"), Category(0, 0.25, "neg")))
    assert format_classifications([result]) == "x\n  positive  0.7500\n  neg       0.2500"


def test_import_and_inference_never_load_tensorflow(exported):
    code = (
        "import sys\n"
        "import tf_tinybert.runtime as runtime\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        f"result = runtime.TextClassifier({exported[2]!r}).classify('a witty film')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not loaded, loaded\n"
        "print(result.label)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] in LABELS


def test_scores_match_mediapipe_text_classifier(exported):
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    _, _, path = exported
    options = text_classifier.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
    ours = TextClassifier(path)
    texts = [t for t in SENTENCES if t.strip()]
    with text_classifier.TextClassifier.create_from_options(options) as mediapipe_classifier:
        for text in texts:
            head = mediapipe_classifier.classify(text).classifications[0]
            theirs = {c.category_name: c.score for c in head.categories}
            mine = ours.classify(text).scores()
            assert theirs.keys() == mine.keys()
            assert max(abs(theirs[k] - mine[k]) for k in mine) <= 1e-4, text


def test_int8_output_is_dequantized(tmp_path):
    """An int8-output model scores as the same int8 model with a float output, to a step."""
    from tiny_models import random_features

    model = spread_weights(tiny_classifier(num_classes=len(LABELS), seed=3))
    calibration = [random_features(8, SEQUENCE_LENGTH, seed=s) for s in range(4)]
    scores = {}
    for int8_io in (False, True):
        report = export_classifier(
            model, tiny_tokenizer(), tmp_path / f"int8_io_{int8_io}", quantization="int8",
            sequence_length=SEQUENCE_LENGTH, labels=LABELS, int8_io=int8_io,
            min_agreement=0.0, representative_data=calibration, max_eval_examples=16,
        )
        classifier = TextClassifier(report.model_path)
        (output,) = classifier._interpreter.get_output_details()
        dtype = output["dtype"]
        assert dtype == (np.int8 if int8_io else np.float32)
        scores[int8_io] = as_matrix(classifier.classify(SENTENCES))
    # int8 probabilities step by 1/256 (scale) from -128 (zero point).
    assert np.abs(scores[True] - scores[False]).max() <= 1.5 / 256
    assert np.abs(scores[True].sum(axis=1) - 1.0).max() <= 0.02
