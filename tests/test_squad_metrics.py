"""SQuAD v1.1 exact match and F1 on hand-made cases, worked out by hand."""

import doctest

import pytest

from tf_tinybert import squad_metrics


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  a  b\tc\n", "b c"),            # articles are whole words only; spaces collapse
        ("theory and anthem", "theory and anthem"),
        ("U.S.A.", "usa"),                 # punctuation is dropped, not replaced by spaces
        ("rock-n-roll", "rocknroll"),
        ("the-end", "theend"),             # punctuation goes first, so 'the' is no word here
        ("An (old) man's hat", "old mans hat"),
        ("Café “quoted”", "café “quoted”"),  # only ASCII punctuation is removed
        ("", ""),
    ],
)
def test_normalisation_matches_the_official_order(text, expected):
    assert squad_metrics.normalize_answer(text) == expected


def test_exact_match_takes_the_best_gold_answer():
    assert squad_metrics.exact_match("Denver Broncos", ["Carolina Panthers", "the Denver Broncos"]) == 1.0
    assert squad_metrics.exact_match("Denver", ["Denver Broncos"]) == 0.0


def test_f1_counts_token_multisets():
    # prediction tokens: [the->dropped] cat cat sat ; gold: cat sat down
    # common = min counts: cat 1, sat 1 -> 2; precision 2/3, recall 2/3 -> F1 2/3.
    assert squad_metrics.f1("The cat cat sat", ["cat sat down"]) == pytest.approx(2 / 3)
    # precision 1/1, recall 1/4 -> 2 * 0.25 / 1.25 = 0.4
    assert squad_metrics.f1("Broncos", ["the Denver Broncos' defense team"]) == pytest.approx(
        2 * 1 * 0.25 / 1.25)
    assert squad_metrics.f1("nothing shared", ["other words"]) == 0.0
    # Max over gold answers: 0.4 against the first, 1.0 against the second.
    assert squad_metrics.f1("Broncos", ["Denver Broncos defense team", "broncos"]) == 1.0


def test_an_answer_of_only_articles_normalises_to_empty_and_scores_zero_f1():
    # Official: no common tokens -> 0 F1, even though both sides normalise to ''.
    assert squad_metrics.f1("the", ["a"]) == 0.0
    assert squad_metrics.exact_match("the", ["a"]) == 1.0


def test_squad_scores_average_over_all_gold_questions():
    gold = {"q1": ["Paris"], "q2": ["in 1889", "1889"], "q3": ["Gustave Eiffel"]}
    predictions = {"q1": "paris.", "q2": "1889 year"}  # q3 unanswered scores 0
    scores = squad_metrics.squad_scores(predictions, gold)
    # q1: EM 1, F1 1. q2: EM 0, F1 vs '1889' = 2*(1/2)*1/(1.5) = 2/3. q3: 0.
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 3)
    assert scores["unanswered"] == 1 and scores["count"] == 3


def test_unknown_question_ids_and_empty_gold_are_errors():
    with pytest.raises(ValueError, match="zz"):
        squad_metrics.squad_scores({"zz": "x"}, {"q1": ["a"]})
    with pytest.raises(ValueError, match="non-empty list"):
        squad_metrics.f1("x", [])
    with pytest.raises(ValueError, match="non-empty list"):
        squad_metrics.f1("x", "x")


def test_docstring_examples_run():
    assert doctest.testmod(squad_metrics).failed == 0
