"""TF-free post-processing: entities from tag probabilities and answer spans over windows,
against hand-worked cases and brute-force loops."""

import doctest

import numpy as np
import pytest

from tf_tinybert.runtime import WordpieceTokenizer, entities, spans

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "jose", "nunez", "visited", "sao", "paulo", ",",
         "(", ")", "u", ".", "s", "stein", "##berg", "##er", "in", "and", "!"]


def one_hot(tag_names, confidence=0.9):
    probabilities = np.full((len(tag_names), len(LABELS)), (1 - confidence) / (len(LABELS) - 1))
    for row, name in enumerate(tag_names):
        probabilities[row, LABELS.index(name)] = confidence
    return probabilities


def test_entities_come_back_as_written_with_accents_punctuation_and_multi_piece_words():
    tokenizer = WordpieceTokenizer(VOCAB, lowercase=True, strip_accents=True)
    text = "José Núñez visited São Paulo (U.S.) and Steinberger!"
    pieces = tokenizer.tokenize_with_offsets(text)
    assert [p for p, _, _ in pieces] == [
        "jose", "nunez", "visited", "sao", "paulo", "(", "u", ".", "s", ".", ")", "and",
        "stein", "##berg", "##er", "!"]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-LOC", "I-LOC", "I-LOC", "I-LOC",
            "O", "O", "B-PER", "O", "B-ORG", "O"]  # tags on ## pieces are not read
    found = entities.group_entities(text, pieces, one_hot(tags), LABELS)
    assert [(e.text, e.type, e.start_char, e.end_char) for e in found] == [
        ("José Núñez", "PER", 0, 10),
        ("São Paulo", "LOC", 19, 28),
        ("U.S.", "LOC", 30, 34),
        ("Steinberger", "PER", 40, 51),
    ]
    for entity in found:
        assert text[entity.start_char:entity.end_char] == entity.text
        assert entity.score == pytest.approx(0.9)


def test_entity_score_is_the_mean_over_its_words_and_i_without_b_starts_an_entity():
    pieces = [("a", 0, 1), ("b", 2, 3), ("c", 4, 5)]
    probabilities = np.array([
        [0.2, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0],   # I-PER opens a PER entity
        [0.4, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0],   # I-PER continues it
        [0.3, 0.0, 0.0, 0.0, 0.0, 0.7, 0.0],   # B-ORG
    ])
    found = entities.group_entities("a b c", pieces, probabilities, LABELS)
    assert found == [entities.Entity("a b", "PER", 0, 3, pytest.approx(0.7)),
                     entities.Entity("c", "ORG", 4, 5, pytest.approx(0.7))]


def test_no_pieces_no_entities_and_shape_errors():
    assert entities.group_entities("", [], np.zeros((0, len(LABELS))), LABELS) == []
    with pytest.raises(ValueError, match=r"\[1, 7\]"):
        entities.group_entities("a", [("a", 0, 1)], np.zeros((1, 3)), LABELS)


def brute_force_best(windows, max_length):
    best = None
    for start_logits, end_logits, starts, ends in windows:
        for s in range(len(start_logits)):
            for e in range(len(end_logits)):
                if starts[s] < 0 or starts[e] < 0 or e < s or e - s + 1 > max_length:
                    continue
                score = start_logits[s] + end_logits[e]
                if best is None or score > best[0]:
                    best = (score, starts[s], ends[e])
    return best


def test_best_answer_matches_a_brute_force_search_over_windows():
    rng = np.random.default_rng(3)
    context = " ".join(f"w{i}" for i in range(40))
    word_starts = [i for i in range(len(context)) if i == 0 or context[i - 1] == " "]
    word_ends = [context.index(" ", s) if " " in context[s:] else len(context) for s in word_starts]
    for _ in range(30):
        windows = []
        for begin in range(0, 34, 8):
            n = min(12, 40 - begin)
            starts = np.array([-1, -1, -1] + word_starts[begin:begin + n] + [-1])
            ends = np.array([-1, -1, -1] + word_ends[begin:begin + n] + [-1])
            windows.append((rng.normal(size=len(starts)), rng.normal(size=len(starts)), starts, ends))
        max_length = int(rng.integers(1, 6))
        answer = spans.best_answer(context, windows, max_answer_length=max_length)
        _, start_char, end_char = brute_force_best(windows, max_length)
        assert (answer.start_char, answer.end_char) == (start_char, end_char)
        assert answer.text == context[start_char:end_char]
        assert len(answer.text.split()) <= max_length
        assert 0.0 < answer.score <= 1.0


def test_end_before_start_and_special_tokens_are_never_chosen():
    context = "alpha beta gamma"
    starts, ends = np.array([-1, 0, 6, 11, -1]), np.array([-1, 5, 10, 16, -1])
    # The best start is on gamma and the best end on alpha (end < start): not allowed.
    # [CLS] and [SEP] logits are the largest of all: not context, not allowed.
    start_logits = np.array([9.0, 0.0, 1.0, 3.0, 9.0])
    end_logits = np.array([9.0, 3.0, 2.0, 0.5, 9.0])
    answer = spans.best_answer(context, [(start_logits, end_logits, starts, ends)])
    # Candidates: (alpha, alpha) 3, (alpha, beta) 2, (beta, beta) 3, (gamma, gamma) 3.5 ...
    assert answer.text == "gamma"
    probability_start = np.exp(3.0) / np.exp([0.0, 1.0, 3.0]).sum()
    probability_end = np.exp(0.5) / np.exp([3.0, 2.0, 0.5]).sum()
    assert answer.score == pytest.approx(probability_start * probability_end)


def test_the_same_span_from_two_windows_is_one_answer_and_the_better_window_wins():
    context = "one two three four"
    window_a = (np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]),
                np.array([-1, 4, 8]), np.array([-1, 7, 13]))
    window_b = (np.array([0.0, 5.0, 0.0]), np.array([0.0, 0.0, 5.0]),
                np.array([-1, 8, 14]), np.array([-1, 13, 18]))
    answer = spans.best_answer(context, [window_a, window_b], max_answer_length=5)
    assert (answer.text, answer.start_char, answer.end_char) == ("three four", 8, 18)


def test_windows_without_context_are_an_error():
    with pytest.raises(ValueError, match="No window"):
        spans.best_answer("x", [([0.0], [0.0], [-1], [-1])])


def test_docstring_examples_run():
    for module in (entities, spans):
        assert doctest.testmod(module).failed == 0
