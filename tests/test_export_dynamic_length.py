"""Dynamic-length exports ([1, -1] inputs): parity with Keras at several lengths, int8
calibrated at the rows' own lengths, the runtime at each text's own length, truncation."""

import json

import numpy as np
import pytest
from export_helpers import reads_constant
from runtime_export import keras_probabilities, pack_batch
from tiny_models import random_features, spread_weights, tiny_classifier, tiny_tokenizer

from tf_tinybert.export import export_classifier, to_tflite
from tf_tinybert.export.calibration import calibration_examples, real_length
from tf_tinybert.export.ops import operator_names
from tf_tinybert.export.verify import ExportVerificationError, check_signature
from tf_tinybert.runtime import TextClassifier, predict_main
from tf_tinybert.runtime.model_files import ModelFileError

MAX_LENGTH = 64
LABELS = ["negative", "positive"]
TEXTS = ["a witty film", "boring", "the movie was not very good , but the actors were great !",
         "fun"]
LONG_TEXT = "a fun story and the plot is great " * 12  # 96 words: longer than MAX_LENGTH


@pytest.fixture(scope="module")
def model():
    return spread_weights(tiny_classifier(max_sequence_length=MAX_LENGTH, dropout=0.0),
                          std=1.0, seed=3)


@pytest.fixture(scope="module")
def exports(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamic")
    reports = {}
    for name, dynamic in (("fixed", False), ("dynamic", True)):
        reports[name] = export_classifier(
            model, tiny_tokenizer(), root / name, sequence_length=MAX_LENGTH, labels=LABELS,
            max_eval_examples=24, dynamic_length=dynamic)
    return reports


def run_at_own_length(interpreter, features, row):
    """Resize a dynamic model's inputs to the row's real length and run it."""
    length = real_length(features["padding_mask"][row])
    names = {"input_word_ids": "token_ids", "input_mask": "padding_mask",
             "input_type_ids": "segment_ids"}
    details = {d["name"].split("_", 2)[-1][:-2]: d for d in interpreter.get_input_details()}
    for detail in details.values():
        interpreter.resize_tensor_input(detail["index"], [1, length])
    interpreter.allocate_tensors()
    for name, detail in details.items():
        interpreter.set_tensor(detail["index"], features[names[name]][row:row + 1, :length])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def test_fp32_dynamic_export_equals_keras_at_several_lengths(model):
    from ai_edge_litert.interpreter import Interpreter

    content = to_tflite(model, "fp32", MAX_LENGTH, dynamic_length=True)
    interpreter = Interpreter(model_content=content)
    for detail in interpreter.get_input_details():
        assert [int(d) for d in detail["shape_signature"]] == [1, -1]
    assert "FULLY_CONNECTED" in operator_names(content)
    for length in (5, 17, MAX_LENGTH):
        features = random_features(3, length, seed=length, min_length=length)
        expected = keras_probabilities(model, {
            "input_word_ids": features["token_ids"], "input_mask": features["padding_mask"],
            "input_type_ids": features["segment_ids"]})
        received = np.stack([run_at_own_length(interpreter, features, row) for row in range(3)])
        assert received.shape == (3, 2)
        np.testing.assert_allclose(received, expected, atol=1e-5)
        # The rows differ from each other: the comparison is not between constants.
        assert np.abs(expected[0] - expected[1]).max() > 1e-3


def test_dynamic_signature_checks_resizing(model):
    content = to_tflite(model, "fp32", MAX_LENGTH, dynamic_length=True)
    signature = check_signature(content, MAX_LENGTH, 2, dynamic_length=True)
    assert [entry["shape"] for entry in signature["inputs"]] == [[1, -1]] * 3
    # Beyond the position embedding (64 rows) the model cannot run: the check says so.
    with pytest.raises(ExportVerificationError, match="sequence length 65"):
        check_signature(content, MAX_LENGTH + 1, 2, dynamic_length=True)
    # A fixed model is not a dynamic one.
    fixed = to_tflite(model, "fp32", 16)
    with pytest.raises(ExportVerificationError, match=r"\[1, -1\]"):
        check_signature(fixed, 16, 2, dynamic_length=True)


def test_calibration_rows_keep_their_own_lengths():
    features = random_features(6, 20, seed=1)
    lengths = features["padding_mask"].sum(axis=1)
    padded = calibration_examples([features], 12)
    own = calibration_examples([features], 12, pad=False)
    assert [e["input_mask"].shape for e in padded] == [(1, 12)] * 6
    assert [e["input_mask"].shape[1] for e in own] == [min(n, 12) for n in lengths]
    for example, row in zip(own, range(6)):
        n = example["input_word_ids"].shape[1]
        np.testing.assert_array_equal(example["input_word_ids"][0], features["token_ids"][row, :n])
        assert example["input_mask"].min() == 1


def test_int8_dynamic_export_agrees_with_keras(model):
    from ai_edge_litert.interpreter import Interpreter

    calibration = random_features(48, MAX_LENGTH, seed=5)
    content = to_tflite(model, "int8", MAX_LENGTH, representative_data=[calibration],
                        dynamic_length=True)
    interpreter = Interpreter(model_content=content)
    assert all([int(d) for d in detail["shape_signature"]] == [1, -1]
               for detail in interpreter.get_input_details())
    held_out = random_features(24, MAX_LENGTH, seed=6)
    expected = keras_probabilities(model, {
        "input_word_ids": held_out["token_ids"], "input_mask": held_out["padding_mask"],
        "input_type_ids": held_out["segment_ids"]})
    received = np.stack([run_at_own_length(interpreter, held_out, row) for row in range(24)])
    assert np.mean(received.argmax(1) == expected.argmax(1)) >= 0.8
    assert np.abs(received - expected).mean() < 0.1


def test_export_json_records_dynamic_length(exports):
    with open(exports["dynamic"].output_dir + "/export.json") as file:
        info = json.load(file)
    assert info["dynamic_length"] is True and info["sequence_length"] == MAX_LENGTH
    assert info["signature"]["inputs"][0]["shape"] == [1, -1]
    assert info["verification"]["max_abs_diff"] <= 1e-4
    # MediaPipe truncates dynamic models at 128 tokens: not this one's maximum.
    assert info["metadata"]["mediapipe_text_classifier"] is False
    assert exports["fixed"].info["dynamic_length"] is False


def test_runtime_runs_each_text_at_its_own_length(exports, model):
    dynamic = TextClassifier(exports["dynamic"].model_path)
    fixed = TextClassifier(exports["fixed"].model_path)
    assert dynamic.dynamic_length and not fixed.dynamic_length
    assert dynamic.sequence_length == fixed.sequence_length == MAX_LENGTH
    tokenizer = dynamic.tokenizer
    for text in TEXTS + [LONG_TEXT]:
        encoded = dynamic.encode(text)
        packed = tokenizer.pack(text, sequence_length=MAX_LENGTH)
        length = int(packed["input_mask"].sum())
        assert encoded["input_word_ids"].shape == (length,)  # nothing padded
        assert fixed.encode(text)["input_word_ids"].shape == (MAX_LENGTH,)
        np.testing.assert_array_equal(encoded["input_word_ids"], packed["input_word_ids"][:length])
    # Truncated at the maximum recorded in export.json.
    assert dynamic.encode(LONG_TEXT)["input_mask"].shape == (MAX_LENGTH,)
    texts = TEXTS + [LONG_TEXT]
    ours = np.stack([dynamic.probabilities(t) for t in texts])
    padded = np.stack([fixed.probabilities(t) for t in texts])
    expected = keras_probabilities(model, pack_batch(tokenizer, texts, MAX_LENGTH))
    np.testing.assert_allclose(ours, padded, atol=1e-5)  # padding invariance
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert np.abs(ours[:, 1] - ours[0, 1]).max() > 1e-3


def _count_allocations(classifier) -> list:
    """A list that gets one item per `allocate_tensors` call of the classifier's interpreter."""
    interpreter = classifier._interpreter
    calls = []
    original = interpreter.allocate_tensors

    def counting():
        calls.append(1)
        return original()

    interpreter.allocate_tensors = counting
    return calls


def test_runtime_resizes_only_when_the_length_changes(exports):
    classifier = TextClassifier(exports["dynamic"].model_path)
    calls = _count_allocations(classifier)
    first = classifier.probabilities("a witty film")
    again = classifier.probabilities("a witty film")
    classifier.probabilities("fun fun fun")  # same length (5 tokens)
    assert len(calls) == 1
    classifier.probabilities("boring")  # 3 tokens
    assert len(calls) == 2
    np.testing.assert_array_equal(first, again)


def test_a_list_runs_shortest_first_and_keeps_its_order(exports):
    classifier = TextClassifier(exports["dynamic"].model_path)
    texts = ["a witty film", "boring", "fun fun fun", "a witty film and a gorgeous plot",
             "boring", "awful"]
    one_by_one = [classifier.probabilities(t) for t in texts]
    calls = _count_allocations(classifier)
    results = classifier.classify(texts)
    assert [r.text for r in results] == texts
    for result, expected in zip(results, one_by_one, strict=True):
        scores = [0.0] * len(expected)
        for category in result.categories:
            scores[category.index] = category.score
        np.testing.assert_allclose(scores, expected, atol=1e-6)
    # Lengths 5, 3, 5, 9, 3, 3 in this order. The interpreter was left at 3 ("awful"):
    # shortest first, it re-plans for 5 and for 9 only; in the list's order it would
    # re-plan at every change of length, four times.
    lengths = [len(classifier.encode(t)["input_word_ids"]) for t in texts]
    assert lengths == [5, 3, 5, 9, 3, 3]
    assert len(calls) == 2


def test_runtime_needs_a_maximum_for_a_bare_dynamic_model(exports, tmp_path):
    bare = tmp_path / "model.tflite"
    bare.write_bytes(open(exports["dynamic"].model_path, "rb").read())
    with pytest.raises(ModelFileError, match="max_sequence_length"):
        TextClassifier(bare)
    classifier = TextClassifier(bare, max_sequence_length=16)
    assert classifier.encode(LONG_TEXT)["input_word_ids"].shape == (16,)
    with pytest.raises(ValueError, match="fixed sequence length"):
        TextClassifier(exports["fixed"].model_path, max_sequence_length=16)


def test_predict_works_on_both(exports):
    for name in ("fixed", "dynamic"):
        (result,) = predict_main(exports[name].model_path, ["a witty film"])
        assert result.label in LABELS
    dynamic = predict_main(exports["dynamic"].model_path, TEXTS)
    fixed = predict_main(exports["fixed"].model_path, TEXTS)
    assert [r.label for r in dynamic] == [r.label for r in fixed]


def test_latency_runs_a_dynamic_export_at_its_recorded_or_given_length(exports, tmp_path):
    from tf_tinybert.runtime.latency import measure_latency

    dynamic = exports["dynamic"].model_path
    assert measure_latency(dynamic, runs=2, warmup=1) > 0.0
    assert measure_latency(dynamic, runs=2, warmup=1, sequence_length=8) > 0.0
    bare = tmp_path / "bare" / "model.tflite"
    bare.parent.mkdir()
    bare.write_bytes(open(dynamic, "rb").read())
    with pytest.raises(ValueError, match="any length.*sequence_length"):
        measure_latency(bare, runs=1)
    assert measure_latency(bare, runs=1, warmup=0, sequence_length=MAX_LENGTH) > 0.0
    with pytest.raises(ValueError, match="fixed input length of 64"):
        measure_latency(exports["fixed"].model_path, runs=1, sequence_length=32)


def xnnpack_partitions(content) -> int:
    """How many DELEGATE nodes LiteRT's default XNNPACK delegate made of the graph."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def test_dynamic_int8_export_gathers_position_rows_instead_of_slicing_the_table(model):
    # TFLite evaluates a STRIDED_SLICE of a constant tensor while it prepares the graph,
    # element by element, on every resize (28% of the SST-2 student's allocate_tensors);
    # the rows 0..n-1 of the position table are gathered at run time instead.
    calibration = random_features(16, MAX_LENGTH, seed=5)
    content = to_tflite(model, "int8", MAX_LENGTH, representative_data=[calibration],
                        dynamic_length=True)
    assert "RANGE" in operator_names(content)
    assert reads_constant(content, "STRIDED_SLICE") and not any(
        reads_constant(content, "STRIDED_SLICE"))


@pytest.mark.parametrize("dynamic", [False, True])
def test_int8_export_is_one_xnnpack_graph_between_lookups_and_cls(model, dynamic):
    # XNNPACK runs everything between the embedding lookups (and the mask's CAST) and the
    # [CLS] slice: at most 2 partitions whatever the depth. Before, every int8 GELU,
    # epsilon ADD and run-time-shaped RESHAPE cut it (SST-2 student, 3 layers: 15 fixed,
    # 24 any length), then one SELECT_V2 mask per layer did (num_layers + 2: 5), and a
    # resize prepared every piece again.
    calibration = random_features(16, MAX_LENGTH, seed=5)
    content = to_tflite(model, "int8", MAX_LENGTH, representative_data=[calibration],
                        dynamic_length=dynamic)
    assert xnnpack_partitions(content) <= 2
