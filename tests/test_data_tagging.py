"""CoNLL/JSONL readers, tag-to-word-piece alignment and windows, on tiny generated files."""

import doctest
import json
import os

import numpy as np
import pytest
from conftest import SHARED_DATA
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.data import tagging
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.features import IGNORE_INDEX
from tf_tinybert.data.readers import BadRowError
from tf_tinybert.runtime import WordpieceTokenizer

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
CONLL_2003 = str(SHARED_DATA / "conll2003" / "valid.txt")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_conll_reads_sentences_skipping_docstart(tmp_path):
    path = write(tmp_path, "a.txt", (
        "-DOCSTART- -X- -X- O\n\n"
        "Anna NNP B-NP B-PER\nloves VBZ B-VP O\nParis NNP B-NP B-LOC\n\n\n"
        "Bob NNP B-NP B-PER\n"  # last sentence without a trailing blank line
    ))
    sentences = list(tagging.read_conll(path, label_names=LABELS))
    assert sentences == [
        tagging.TaggedSentence(f"{path}:3", ("Anna", "loves", "Paris"), ("B-PER", "O", "B-LOC")),
        tagging.TaggedSentence(f"{path}:8", ("Bob",), ("B-PER",)),
    ]


def test_conll_tag_column_is_chosen(tmp_path):
    path = write(tmp_path, "a.txt", "Anna NNP B-NP B-PER\nloves VBZ B-VP O\n")
    (sentence,) = tagging.read_conll(path, tag_column=2)
    assert sentence.tags == ("B-NP", "B-VP")
    with pytest.raises(ValueError, match=r"a\.txt:1: `tag_column`=0"):
        list(tagging.read_conll(path, tag_column=0))


def test_conll_wrong_column_count_and_unknown_tag_name_file_and_line(tmp_path):
    path = write(tmp_path, "a.txt", (
        "Anna NNP B-NP B-PER\nloves VBZ O\n\n"
        "Bob NNP B-NP B-ORG\n\n"
        "Carl NNP B-NP B-PER\n"
    ))
    items = list(tagging.read_conll(path, label_names=LABELS))
    assert isinstance(items[0], BadRowError) and items[0].where == f"{path}:2"
    assert "expected 4 columns" in items[0].reason and "found 3" in items[0].reason
    assert isinstance(items[1], BadRowError) and items[1].where == f"{path}:4"
    assert "unknown tag 'B-ORG'" in items[1].reason
    assert items[2] == tagging.TaggedSentence(f"{path}:6", ("Carl",), ("B-PER",))


def test_jsonl_reader_checks_lengths_and_tags(tmp_path):
    lines = [
        {"tokens": ["Anna", "sings"], "tags": ["B-PER", "O"]},
        {"tokens": ["x"], "tags": ["O", "O"]},
        {"tokens": ["x"], "tags": ["B-ORG"]},
        "not an object",
    ]
    path = write(tmp_path, "a.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n{oops\n")
    items = list(tagging.read_tagged_jsonl(path, label_names=LABELS))
    assert items[0] == tagging.TaggedSentence(f"{path}:1", ("Anna", "sings"), ("B-PER", "O"))
    assert [item.where for item in items[1:]] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert "1 tokens and 2 tags" in items[1].reason
    assert "tags[0]: unknown tag 'B-ORG'" in items[2].reason
    assert "expected a JSON object, received a str" in items[3].reason
    assert "invalid JSON" in items[4].reason


def test_windows_put_the_tag_on_the_first_piece_only():
    (window,) = tagging.tag_windows([[10, 11, 12], [13]], [1, 0], 16, cls_id=2, sep_id=3, unk_id=1)
    assert window.token_ids == (2, 10, 11, 12, 13, 3)
    assert window.tag_ids == (IGNORE_INDEX, 1, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX)


def test_long_sentence_is_split_between_words_and_nothing_is_lost():
    rng = np.random.default_rng(1)
    words = [list(rng.integers(10, 99, rng.integers(1, 4))) for _ in range(40)]
    tags = list(rng.integers(0, 5, 40))
    windows = tagging.tag_windows(words, tags, 9, cls_id=2, sep_id=3, unk_id=1)
    assert len(windows) > 1
    assert all(len(w.token_ids) <= 9 for w in windows)
    # Windows are consecutive and cover every word once.
    assert [w.words for w in windows] == list(zip(
        [w.words[0] for w in windows], [w.words[0] for w in windows[1:]] + [40]))
    assert windows[0].words[0] == 0
    pieces = [p for w in windows for p in w.token_ids[1:-1]]
    assert pieces == [p for word in words for p in word]
    kept_tags = [t for w in windows for t in w.tag_ids if t != IGNORE_INDEX]
    assert kept_tags == tags


def test_empty_word_becomes_unk_and_over_long_word_is_cut():
    windows = tagging.tag_windows([[], [5] * 10], [1, 2], 6, cls_id=2, sep_id=3, unk_id=1)
    assert windows[0].token_ids == (2, 1, 3) and windows[0].tag_ids[1] == 1
    assert windows[1].token_ids == (2, 5, 5, 5, 5, 3)
    assert windows[1].tag_ids == (IGNORE_INDEX, 2) + (IGNORE_INDEX,) * 4


def test_sentence_windows_use_keras_hub_pieces_that_the_runtime_reproduces():
    tokenizer = tiny_tokenizer()
    runtime = WordpieceTokenizer(list(TINY_VOCAB), lowercase=True, strip_accents=False)
    sentences = [tagging.TaggedSentence("x:1", ("Witty", "filmly", "it's", "!"),
                                        ("B-PER", "I-PER", "O", "O"))]
    (windows,) = tagging.sentence_windows(sentences, Encoder(tokenizer, 16), LABELS)
    (window,) = windows
    expected = [runtime.cls_id]
    for word in sentences[0].tokens:
        expected += runtime.encode(word)
    assert list(window.token_ids) == expected + [runtime.sep_id]
    # film ##ly: the tag sits on 'film'; it ' s: the tag sits on 'it'.
    assert window.tag_ids == (IGNORE_INDEX, 1, 2, IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX,
                              0, IGNORE_INDEX)


@pytest.mark.skipif(not os.path.exists(CONLL_2003), reason="../shared/data is not present")
def test_real_conll_2003_valid_reads_completely():
    labels = ["O"] + [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI"]
    sentences = list(tagging.read_conll(CONLL_2003, label_names=labels))
    assert len(sentences) == 3250
    assert not any(isinstance(s, BadRowError) for s in sentences)


def test_docstring_examples_run():
    assert doctest.testmod(tagging).failed == 0
