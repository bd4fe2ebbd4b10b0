"""Token model exports: TFLite against Keras, and the TF-free TokenClassifier /
QuestionAnswerer against decoding the Keras model's own outputs."""

import json

import keras
import keras_hub
import numpy as np
import pytest
from tiny_models import TINY_VOCAB, TINY_VOCAB_SIZE, tiny_tokenizer

from tf_tinybert import token_models
from tf_tinybert.export import token_export
from tf_tinybert.runtime import WordpieceTokenizer
from tf_tinybert.runtime.entities import group_entities
from tf_tinybert.runtime.model_files import ModelFileError
from tf_tinybert.runtime.spans import best_answer, span_windows
from tf_tinybert.runtime.token_runtime import QuestionAnswerer, TokenClassifier, word_windows

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
LENGTH = 12


def tiny_model(task, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=TINY_VOCAB_SIZE, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32)
    model = token_models.token_model_for(backbone, task, num_classes=len(LABELS))
    # Larger head weights, so that tags and spans differ from position to position.
    kernel, bias = model.output_dense.get_weights()
    model.output_dense.set_weights([kernel * 50, bias])
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    tokenizer = tiny_tokenizer()
    tagger, extractor = tiny_model("token_classification"), tiny_model("question_answering", 1)
    ner = token_export.export_token_model(tagger, tokenizer, folder / "ner", label_names=LABELS,
                                          sequence_length=LENGTH)
    qa = token_export.export_token_model(extractor, tokenizer, folder / "qa",
                                         sequence_length=LENGTH)
    return folder, tagger, extractor, ner, qa


def runtime_tokenizer():
    return WordpieceTokenizer(list(TINY_VOCAB), lowercase=True, strip_accents=False)


def keras_outputs(model, token_ids, type_ids):
    padding = LENGTH - len(token_ids)
    features = {
        "token_ids": np.array([list(token_ids) + [0] * padding], np.int32),
        "padding_mask": np.array([[1] * len(token_ids) + [0] * padding], np.int32),
        "segment_ids": np.array([list(type_ids) + [0] * padding], np.int32),
    }
    return {k: keras.ops.convert_to_numpy(v)[0] for k, v in token_export.serving_outputs(
        model, features["token_ids"], features["padding_mask"], features["segment_ids"]).items()}


def test_export_folder_records_task_and_verification(exports):
    folder, _, _, ner, qa = exports
    info = json.loads((folder / "ner" / "export.json").read_text())
    assert info["task"] == "token_classification" and info["labels"] == LABELS
    assert info["verification"]["tag_agreement"] == 1.0
    assert info["verification"]["max_abs_diff"] < 1e-4
    assert (folder / "ner" / "labels.txt").read_text().split() == LABELS
    assert qa["task"] == "question_answering" and qa["verification"]["span_agreement"] == 1.0
    assert not (folder / "qa" / "labels.txt").exists()


def test_token_classifier_matches_keras_across_windows(exports):
    folder, tagger, _, _, _ = exports
    classifier = TokenClassifier(folder / "ner" / "model.tflite")
    text = "The witty actors, the gorgeous plot and the boring film was fun, not awful!"
    tokenizer = runtime_tokenizer()
    pieces = tokenizer.tokenize_with_offsets(text)
    assert len(pieces) > LENGTH  # several windows
    runtime_pieces, probabilities = classifier.piece_probabilities(text)
    assert runtime_pieces == pieces
    expected = []
    for first, last in word_windows(pieces, LENGTH - 2):
        ids = [tokenizer.cls_id] + [tokenizer.token_to_id(p) for p, _, _ in pieces[first:last]] \
            + [tokenizer.sep_id]
        expected.append(keras_outputs(tagger, ids, [0] * len(ids))["probability"][1:len(ids) - 1])
    np.testing.assert_allclose(probabilities, np.concatenate(expected), atol=1e-5)
    entities = classifier.entities(text)
    reference = group_entities(text, pieces, np.concatenate(expected), LABELS)
    assert [e[:4] for e in entities] == [e[:4] for e in reference]
    assert [e.score for e in entities] == pytest.approx([e.score for e in reference], abs=1e-5)
    assert entities  # the big head weights make some non-O tags
    for entity in entities:
        assert text[entity.start_char:entity.end_char] == entity.text


def test_question_answerer_matches_keras_over_overlapping_windows(exports):
    folder, _, extractor, _, _ = exports
    qa = QuestionAnswerer(folder / "qa" / "model.tflite", stride=2, max_answer_length=4)
    question = "Was it fun?"
    context = "The film was witty and fun, but the plot was boring and the actors awful."
    tokenizer = runtime_tokenizer()
    pieces = [(tokenizer.token_to_id(p), s, e) for p, s, e in tokenizer.tokenize_with_offsets(context)]
    windows = span_windows(tokenizer.encode(question), pieces, None, LENGTH, 2,
                           tokenizer.cls_id, tokenizer.sep_id)
    assert len(windows) > 3
    scored = []
    for window in windows:
        out = keras_outputs(extractor, window.token_ids, window.segment_ids)
        pad = [-1] * (LENGTH - len(window.token_ids))
        scored.append((out["start_logits"], out["end_logits"],
                       np.array(list(window.token_starts) + pad), np.array(list(window.token_ends) + pad)))
    expected = best_answer(context, scored, 4)
    answer = qa.answer(question, context)
    assert answer[:3] == expected[:3]
    assert answer.score == pytest.approx(expected.score, abs=1e-4)
    assert context[answer.start_char:answer.end_char] == answer.text


def test_runtimes_refuse_the_other_task_and_bad_questions(exports):
    folder = exports[0]
    with pytest.raises(ModelFileError, match="'question_answering'.*TokenClassifier"):
        TokenClassifier(folder / "qa" / "model.tflite")
    with pytest.raises(ModelFileError, match="'token_classification'.*QuestionAnswerer"):
        QuestionAnswerer(folder / "ner" / "model.tflite")
    qa = QuestionAnswerer(folder / "qa" / "model.tflite")
    with pytest.raises(ValueError, match="context"):
        qa.answer("fun?", "   ")
    with pytest.raises(ValueError, match="the question has"):
        qa.answer("a film " * 6, "the plot")


def test_word_windows_do_not_split_words_when_they_can():
    pieces = [(p, 0, 1) for p in ["a", "##b", "##c", "d", "e", "##f", "g"]]
    assert word_windows(pieces, 4) == [(0, 4), (4, 7)]
    assert word_windows(pieces, 3) == [(0, 3), (3, 6), (6, 7)]
    # "a ##b ##c" does not fit in 2: it is split inside, the rest between words.
    assert word_windows(pieces, 2) == [(0, 2), (2, 4), (4, 6), (6, 7)]


def test_exporting_a_sentence_classifier_is_refused():
    classifier = keras_hub.models.BertTextClassifier(
        keras_hub.models.BertBackbone(vocabulary_size=TINY_VOCAB_SIZE, num_layers=1, num_heads=2,
                                      hidden_dim=8, intermediate_dim=16), 2, preprocessor=None)
    with pytest.raises(ValueError, match="export_classifier"):
        token_export.token_to_tflite(classifier)


def test_cli_predict_prints_entities_and_answers(exports, capsys):
    from tf_tinybert import cli

    folder = exports[0]
    text = "the witty actors and the gorgeous plot"
    assert cli.main(["predict", str(folder / "ner" / "model.tflite"), text]) == 0
    printed = capsys.readouterr().out.splitlines()
    classifier = TokenClassifier(folder / "ner" / "model.tflite")
    expected = [f"  {e.type:<6} {e.start_char}:{e.end_char}  {e.score:.4f}  {e.text}"
                for e in classifier.entities(text)]
    assert printed == [text] + expected
    context = "The film was witty and fun."
    assert cli.main(["predict", str(folder / "qa" / "model.tflite"), "--question", "Was it fun?",
                     "--context", context]) == 0
    answer = QuestionAnswerer(folder / "qa" / "model.tflite").answer("Was it fun?", context)
    assert capsys.readouterr().out.splitlines()[0] == answer.text
    assert cli.main(["predict", str(folder / "qa" / "model.tflite"), "a text"]) != 0
    assert "--question and --context" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["token_classification", "question_answering"])
def test_int8_export_is_quantised_and_follows_keras(task):
    from tf_tinybert.export.ops import operator_names

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=TINY_VOCAB_SIZE, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32)
    model = token_models.token_model_for(backbone, task, num_classes=3)
    rows = token_export.verification_rows(TINY_VOCAB_SIZE, 16, rows=16, seed=1)
    with pytest.raises(ValueError, match="representative_data"):
        token_export.token_to_tflite(model, "int8", 16)
    content = token_export.token_to_tflite(model, "int8", 16, representative_data=[rows])
    names = operator_names(content)
    assert "QUANTIZE" in names and "DEQUANTIZE" in names
    result = token_export.verify_token_export(model, content, rows)
    assert result["max_abs_diff"] < 0.05
    assert result.get("tag_agreement", result.get("span_agreement")) >= 0.9


def test_int8_export_calibrates_on_as_many_rows_as_asked(tmp_path, monkeypatch):
    # A recipe's export.representative_examples reaches the calibration (it used to stop
    # at the converter's default of 200 whatever the recipe said).
    used = []
    real = token_export.calibration_examples

    def spy(source, sequence_length, max_examples=200, **kwargs):
        examples = real(source, sequence_length, max_examples, **kwargs)
        used.append(len(examples))
        return examples

    monkeypatch.setattr(token_export, "calibration_examples", spy)
    rows = token_export.verification_rows(TINY_VOCAB_SIZE, LENGTH, rows=8, seed=2)
    model = tiny_model("question_answering", 2)
    for wanted in (3, 8):
        token_export.export_token_model(model, tiny_tokenizer(), tmp_path / str(wanted),
                                        quantization="int8", sequence_length=LENGTH,
                                        representative_data=[rows],
                                        max_calibration_examples=wanted)
    assert used == [3, 8]
