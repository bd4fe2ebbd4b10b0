"""Entity-level F1 against chunks and counts worked out by hand (conlleval's rules)."""

import doctest

import numpy as np
import pytest

from tf_tinybert import ner_metrics
from tf_tinybert.runtime import tags


@pytest.mark.parametrize(
    "sequence, expected",
    [
        # I- without B- starts a chunk (conlleval, seqeval's default mode).
        (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),
        # The type changes mid-span: two chunks.
        (["B-PER", "I-PER", "I-ORG", "I-ORG"], [("PER", 0, 2), ("ORG", 2, 4)]),
        # A span that runs to the end of the sentence.
        (["O", "B-MISC", "I-MISC"], [("MISC", 1, 3)]),
        # B- after I- of the same type starts a new chunk (IOB2 and IOB1 alike).
        (["B-LOC", "I-LOC", "B-LOC"], [("LOC", 0, 2), ("LOC", 2, 3)]),
        # IOB1: I- opens, B- only separates adjacent chunks of one type.
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]),
        # IOBES.
        (["S-PER", "B-ORG", "E-ORG", "I-ORG"], [("PER", 0, 1), ("ORG", 1, 3), ("ORG", 3, 4)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_entity_chunks_follow_conlleval(sequence, expected):
    assert tags.entity_chunks(sequence) == expected


@pytest.mark.parametrize("bad", ["PER", "X-PER", "B-", "b-PER", ""])
def test_malformed_tag_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match=repr(bad).replace("[", r"\[")):
        tags.entity_chunks(["O", bad])


def test_micro_and_per_type_scores_match_hand_counts():
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC", "O"],
        ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"],
        ["I-PER", "O", "B-LOC", "I-LOC"],  # gold I- without B- is still a PER chunk
    ]
    predicted = [
        ["I-PER", "I-PER", "O", "B-ORG", "O"],    # PER right (I- start), LOC typed ORG
        ["B-ORG", "I-ORG", "O", "O", "B-MISC"],   # ORG too short, MISC right at the end
        ["B-PER", "O", "B-LOC", "B-LOC"],         # PER right, LOC split in two
    ]
    # By hand: gold chunks PER(0,2) LOC(3,4) | ORG(0,3) MISC(4,5) | PER(0,1) LOC(2,4) = 6.
    # Predicted: PER(0,2) ORG(3,4) | ORG(0,2) MISC(4,5) | PER(0,1) LOC(2,3) LOC(3,4) = 7.
    # Correct: PER, MISC, PER = 3.
    scores = ner_metrics.entity_scores(gold, predicted)
    precision, recall = 3 / 7, 3 / 6
    assert scores["correct"] == 3 and scores["predicted"] == 7 and scores["support"] == 6
    assert scores["precision"] == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    per_type = scores["per_type"]
    assert sorted(per_type) == ["LOC", "MISC", "ORG", "PER"]
    assert per_type["PER"]["f1"] == pytest.approx(1.0)
    assert per_type["MISC"]["f1"] == pytest.approx(1.0)
    # ORG: predicted 2 (one in sentence 0, one in sentence 1), gold 1, correct 0.
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # LOC: predicted 2, gold 2, correct 0.
    assert per_type["LOC"]["support"] == 2 and per_type["LOC"]["f1"] == 0.0


def test_chunks_do_not_run_across_sentences():
    gold = [["O", "B-PER"], ["I-PER", "O"]]
    # Two one-token PER chunks, not one spanning the sentence break.
    assert ner_metrics.entity_scores(gold, gold)["support"] == 2
    assert ner_metrics.entity_f1(gold, [["O", "B-PER"], ["O", "O"]]) == pytest.approx(2 / 3)


def test_no_predictions_and_no_gold_score_zero():
    assert ner_metrics.entity_f1([["B-PER"]], [["O"]]) == 0.0
    assert ner_metrics.entity_f1([["O"]], [["O"]]) == 0.0
    assert ner_metrics.entity_scores([["O"]], [["B-LOC"]])["precision"] == 0.0


def test_random_sequences_match_a_brute_force_span_scan():
    # An independent chunker: a chunk is a maximal run of one type where each token after
    # the first is I-/E- and the token before it is B-/I- (the conlleval rules restated).
    def chunks(sequence):
        found, index = [], 0
        while index < len(sequence):
            tag = sequence[index]
            if tag == "O":
                index += 1
                continue
            entity_type = tag[2:]
            end = index + 1
            while (end < len(sequence) and sequence[end][:2] in ("I-", "E-")
                   and sequence[end][2:] == entity_type and sequence[end - 1][:2] in ("B-", "I-")):
                end += 1
            found.append((entity_type, index, end))
            index = end
        return found

    rng = np.random.default_rng(0)
    choices = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER"]
    gold, predicted = [], []
    for _ in range(300):
        length = int(rng.integers(0, 9))
        gold.append([choices[i] for i in rng.integers(0, len(choices), length)])
        predicted.append([choices[i] for i in rng.integers(0, len(choices), length)])
    correct = found = expected = 0
    for g, p in zip(gold, predicted):
        assert tags.entity_chunks(g) == chunks(g)
        correct += len(set(chunks(g)) & set(chunks(p)))
        found += len(chunks(p))
        expected += len(chunks(g))
    precision, recall = correct / found, correct / expected
    assert ner_metrics.entity_f1(gold, predicted) == pytest.approx(
        2 * precision * recall / (precision + recall))


def test_tags_from_ids_keeps_only_tagged_pieces():
    label_names = ["O", "B-PER", "I-PER"]
    labels = np.array([[-100, 1, -100, 2, 0, -100], [-100, 0, 1, -100, -100, -100]])
    scores = np.zeros((2, 6, 3))
    scores[0, [1, 2, 3, 4], [1, 0, 1, 0]] = 1.0  # piece 2 (ignored) predicts O
    scores[1, [1, 2], [1, 1]] = 1.0
    gold, predicted = ner_metrics.tags_from_ids(labels, scores, label_names)
    assert gold == [["B-PER", "I-PER", "O"], ["O", "B-PER"]]
    assert predicted == [["B-PER", "B-PER", "O"], ["B-PER", "B-PER"]]


def test_mismatched_lengths_name_the_sentence():
    with pytest.raises(ValueError, match="Sentence 1"):
        ner_metrics.entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])


def test_docstring_examples_run():
    for module in (tags, ner_metrics):
        assert doctest.testmod(module).failed == 0
