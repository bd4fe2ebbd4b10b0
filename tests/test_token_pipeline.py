"""From files to scores: CoNLL and SQuAD windows written as TFRecords, loaded, predicted by a
tiny model, decoded and scored; loaded batches are checked against the windows."""

import json

import keras
import numpy as np
import pytest
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert import ner_metrics, squad_metrics, token_models
from tf_tinybert.data import squad, tagging, token_records
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.features import IGNORE_INDEX
from tf_tinybert.data.readers import drop_bad_rows
from tf_tinybert.runtime import WordpieceTokenizer
from tf_tinybert.runtime.spans import answers_by_example

LABELS = ["O", "B-PER", "I-PER"]


def test_tagging_records_round_trip_and_score(tmp_path):
    conll = tmp_path / "train.txt"
    conll.write_text("-DOCSTART- O\n\nWitty O\nfilmly B-PER\nit I-PER\n\nthe B-PER\nplot O\n"
                     "is O\nfun O\nand O\nwitty B-PER\nactors I-PER\n")
    sentences = list(drop_bad_rows(tagging.read_conll(str(conll), label_names=LABELS), False, []))
    encoder = Encoder(tiny_tokenizer(), 6)
    windows = [w for ws in tagging.sentence_windows(sentences, encoder, LABELS) for w in ws]
    path = tmp_path / "train.tfrecord"
    assert token_records.write_records(path, map(token_records.tagging_record, windows)) == len(windows)
    (x, y), = token_records.load_token_records([str(path)], "token_classification",
                                               batch_size=16, sequence_length=6)
    assert x["token_ids"].shape == (len(windows), 6)
    for row, window in enumerate(windows):
        n = len(window.token_ids)
        assert list(x["token_ids"][row, :n].numpy()) == list(window.token_ids)
        assert list(x["padding_mask"][row].numpy()) == [1] * n + [0] * (6 - n)
        assert list(y[row].numpy()) == list(window.tag_ids) + [IGNORE_INDEX] * (6 - n)
    # Perfect predictions (one-hot of the gold tags) score F1 1 against the sentences' tags.
    labels = y.numpy()
    scores = np.eye(len(LABELS))[np.where(labels == IGNORE_INDEX, 0, labels)]
    gold, predicted = ner_metrics.tags_from_ids(labels, scores, LABELS)
    assert [t for s in gold for t in s] == [t for s in sentences for t in s.tags]
    assert ner_metrics.entity_f1(gold, predicted) == 1.0


def test_span_records_decode_back_to_the_gold_answers(tmp_path):
    context = "The film was witty, the plot was boring and the actors loved it."
    questions = [("q1", "Was the plot good?", "boring"), ("q2", "Who loved it?", "the actors")]
    data = {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
        for qid, q, a in questions]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    examples = list(squad.read_squad(str(path)))
    encoder = Encoder(tiny_tokenizer(), 14)
    runtime = WordpieceTokenizer(list(TINY_VOCAB), lowercase=True, strip_accents=False)
    records = []
    for example in examples:
        for window in squad.question_windows(example, encoder, runtime, stride=2):
            records.append(token_records.span_record(window, example.question_id))
    token_records.write_records(tmp_path / "dev.tfrecord", records)
    dataset = token_records.load_token_records([str(tmp_path / "dev.tfrecord")], "question_answering",
                                               batch_size=64, sequence_length=14, with_offsets=True)
    (x, y), = dataset
    # Oracle logits: high at the gold positions of the windows that hold the answer.
    positions = y.numpy()
    logits = np.zeros(positions.shape[:1] + (14, 2))
    for row, (start, end) in enumerate(positions):
        if start:
            logits[row, start, 0] = logits[row, end, 1] = 10.0
    answers = answers_by_example({e.question_id: e.context for e in examples},
                                 x["example_id"].numpy(), logits[..., 0], logits[..., 1],
                                 x["token_starts"].numpy(), x["token_ends"].numpy())
    predictions = {qid: answer.text for qid, answer in answers.items()}
    assert predictions == {"q1": "boring", "q2": "the actors"}
    gold = {e.question_id: [t for t, _ in e.answers] for e in examples}
    assert squad_metrics.squad_scores(predictions, gold)["exact_match"] == 1.0
    # A tiny random span model runs on the same batches and decodes to spans of the context.
    keras.utils.set_random_seed(0)
    model = token_models.build_token_model(
        {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16},
        "question_answering", vocabulary_size=len(TINY_VOCAB), max_sequence_length=14)
    predicted = keras.ops.convert_to_numpy(model(
        {k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}))
    answers = answers_by_example({e.question_id: e.context for e in examples},
                                 x["example_id"].numpy(), predicted[..., 0], predicted[..., 1],
                                 x["token_starts"].numpy(), x["token_ends"].numpy())
    for answer in answers.values():
        assert answer.text and answer.text == context[answer.start_char:answer.end_char]


def test_unknown_question_ids_are_an_error():
    with pytest.raises(ValueError, match="No context"):
        answers_by_example({}, ["q9"], [[0.0]], [[0.0]], [[0]], [[1]])
