"""A pure-Python BERT WordPiece tokenizer that matches keras-hub's `BertTokenizer`.

keras-hub tokenizes in three steps (`keras_hub/src/tokenizers/word_piece_tokenizer.py`):
1. optional accent stripping: NFD, then drop non-spacing marks (category Mn);
2. splitting: ASCII whitespace and control/format characters (Cc, Cf) end a word and vanish;
   punctuation (every non-alphanumeric printable ASCII character and Unicode category P*) and
   CJK ideographs end a word and stay as one-character words;
3. optional lower-casing of each word with the Unicode NFKC_Casefold mapping (tf_text's
   `case_fold_utf8`), then greedy longest-match-first WordPiece per word, where pieces after the
   first carry the `##` suffix indicator and a word that cannot be covered, or is longer than
   100 UTF-8 bytes, becomes `[UNK]`.

Unlike the original BERT `BasicTokenizer`, non-ASCII spaces (U+00A0, U+3000, ...) do not split
words in keras-hub: they survive to the lower-casing step. And keras-hub's TensorFlow path (the
one `tf.data` training pipelines run) ends a text at its first NUL character, because tf_text's
`regex_split` reads C strings; keras-hub's eager Python path does not. This module follows the
TensorFlow path in both, since a model is only as good as the agreement between its training
and serving tokenizers.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from tf_tinybert.runtime.contract import INPUT_MASK, INPUT_TYPE_IDS, INPUT_WORD_IDS

# tf_text's FastWordpieceTokenizer (max_bytes_per_token) maps longer words to the unknown token.
MAX_BYTES_PER_WORD = 100

_ASCII_WHITESPACE = frozenset(" \t\n\r\f")
_ASCII_PUNCTUATION = frozenset(
    chr(code)
    for low, high in ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E))
    for code in range(low, high + 1)
)
# The CJK Unified Ideograph blocks of google-research/bert's `_is_chinese_char`.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt), which
# NFKC_Casefold removes. Python's unicodedata does not expose it.
_DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
REQUIRED_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def _in_ranges(char: str, ranges: Sequence[tuple[int, int]]) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in ranges)


def _is_separator(char: str) -> bool:
    """A character that ends a word and is dropped (keras-hub's whitespace class)."""
    return char in _ASCII_WHITESPACE or unicodedata.category(char) in ("Cc", "Cf")


def _is_kept_delimiter(char: str) -> bool:
    """A character that ends a word and stays as a word of its own."""
    return (
        char in _ASCII_PUNCTUATION
        or unicodedata.category(char).startswith("P")
        or _in_ranges(char, _CJK_RANGES)
    )


def casefold_nfkc(word: str) -> str:
    """The Unicode NFKC_Casefold mapping of `word` (what tf_text's `case_fold_utf8` does).

    Example:
    >>> casefold_nfkc("Straße Ｆｉｌｍ")
    'strasse film'
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", word).casefold())
    return "".join(c for c in folded if not _in_ranges(c, _DEFAULT_IGNORABLE_RANGES))


def remove_accents(text: str) -> str:
    """`text` in NFD with its non-spacing marks (accents) removed.

    Example:
    >>> remove_accents("Crème brûlée")
    'Creme brulee'
    """
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def split_words(text: str, *, lowercase: bool = True, strip_accents: bool = False) -> list[str]:
    """keras-hub's pre-tokenization: accents, whitespace/punctuation/CJK splitting, case folding.

    Example:
    >>> split_words("Héllo, 世界!", strip_accents=True)
    ['hello', ',', '世', '界', '!']
    """
    text = text.split("\x00", 1)[0]
    if strip_accents:
        text = remove_accents(text)
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if _is_separator(char):
            if current:
                words.append("".join(current))
                current = []
        elif _is_kept_delimiter(char):
            if current:
                words.append("".join(current))
                current = []
            words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    if lowercase:
        words = [casefold_nfkc(word) for word in words]
    return [word for word in words if word]


def split_words_with_offsets(
    text: str, *, lowercase: bool = True, strip_accents: bool = False
) -> list[tuple[str, int, int]]:
    """`split_words`' words, each with the `[start, end)` character span it covers in `text`.

    Accent stripping and case folding can change a word's length ("ﬁ" folds to "fi", "é"
    loses its accent): each normalised character is traced back to the original character
    it came from, so the span always indexes the original string.

    Example:
    >>> split_words_with_offsets("Héllo, wörld", strip_accents=True)
    [('hello', 0, 5), (',', 5, 6), ('world', 7, 12)]
    """
    text = text.split("\x00", 1)[0]
    words: list[tuple[str, int, int]] = []
    current: list[tuple[str, int]] = []

    def flush():
        if current:
            word = "".join(char for char, _ in current)
            if lowercase:
                word = casefold_nfkc(word)
            if word:
                words.append((word, current[0][1], current[-1][1] + 1))
            current.clear()

    for index, original in enumerate(text):
        normalised = remove_accents(original) if strip_accents else original
        if not normalised and current:
            # A stripped accent belongs to the word it decorates: widen the word's span.
            current.append(("", index))
        for char in normalised:
            if _is_separator(char):
                flush()
            elif _is_kept_delimiter(char):
                flush()
                current.append((char, index))
                flush()
            else:
                current.append((char, index))
    flush()
    return words


def read_vocabulary_text(text: str, source: str = "<vocabulary>") -> list[str]:
    """Parse a one-token-per-line vocabulary file's text as keras-hub reads it.

    Each line loses its trailing whitespace; blank lines keep their index.

    Example:
    >>> read_vocabulary_text("[PAD]\\n[UNK]\\nfilm\\n")
    ['[PAD]', '[UNK]', 'film']
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"The vocabulary {source} is empty; expected one token per line.")
    return [line.rstrip() for line in lines]


class WordpieceTokenizer:
    """BERT WordPiece tokenization and [CLS]/[SEP] packing, without TensorFlow.

    It reproduces `keras_hub.models.BertTokenizer(vocabulary, lowercase, strip_accents)` token
    for token, and keras-hub's `MultiSegmentPacker` with round-robin truncation for packing.

    Args:
        vocabulary: a list of tokens, or the path of a one-token-per-line vocab.txt.
        lowercase: case-fold each word (NFKC_Casefold), as uncased BERT vocabularies need.
        strip_accents: remove accents (NFD, drop Mn). Hugging Face uncased BERT tokenizers do;
            keras-hub's `BertTokenizer` default does not.
        oov_token: the token standing for a word the vocabulary cannot cover.
        suffix_indicator: the prefix of word pieces that continue a word.

    Example:
    >>> tokenizer = WordpieceTokenizer(
    ...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "film", "witty", "##ly", ","])
    >>> tokenizer.tokenize("A wittyly film, a FILM")
    ['a', 'witty', '##ly', 'film', ',', 'a', 'film']
    >>> tokenizer.encode("a film")
    [4, 5]
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        *,
        lowercase: bool = True,
        strip_accents: bool = True,
        oov_token: str = "[UNK]",
        suffix_indicator: str = "##",
    ) -> None:
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            try:
                with open(path, "rb") as file:
                    raw = file.read()
            except OSError as error:
                raise ValueError(
                    f"Cannot read the vocabulary file '{path}': {error}. Expected a "
                    "one-token-per-line vocab.txt."
                ) from error
            self.source = f"'{path}'"
            tokens = read_vocabulary_text(decode_text(raw, self.source), self.source)
        elif isinstance(vocabulary, Iterable):
            self.source = "<list>"
            tokens = list(vocabulary)
        else:
            raise ValueError(
                "Expected `vocabulary` to be a list of tokens or a vocab.txt path. "
                f"Received: vocabulary={vocabulary!r}"
            )
        missing = [t for t in (*REQUIRED_SPECIAL_TOKENS, oov_token) if t not in tokens]
        if missing:
            raise ValueError(
                f"The vocabulary {self.source} lacks the special tokens {missing}; expected a "
                f"BERT WordPiece vocabulary with {list(REQUIRED_SPECIAL_TOKENS)}."
            )
        self.vocabulary = tokens
        self.lowercase = bool(lowercase)
        self.strip_accents = bool(strip_accents)
        self.oov_token = oov_token
        self.suffix_indicator = suffix_indicator
        # Later duplicates win, as in keras-hub's token -> id map.
        self._ids = {token: index for index, token in enumerate(tokens)}
        self._longest_token = max(len(token) for token in tokens)
        self.pad_id = self._ids["[PAD]"]
        self.cls_id = self._ids["[CLS]"]
        self.sep_id = self._ids["[SEP]"]

    @property
    def vocabulary_size(self) -> int:
        """The number of tokens in the vocabulary."""
        return len(self.vocabulary)

    def token_to_id(self, token: str) -> int:
        """The id of `token`; ValueError where it is not in the vocabulary."""
        if token not in self._ids:
            raise ValueError(f"Token {token!r} is not in the vocabulary {self.source}.")
        return self._ids[token]

    def id_to_token(self, token_id: int) -> str:
        """The token with id `token_id`; ValueError where it is out of range."""
        if not 0 <= token_id < len(self.vocabulary):
            raise ValueError(
                f"Expected a token id in [0, {len(self.vocabulary) - 1}]. Received: {token_id}"
            )
        return self.vocabulary[token_id]

    def _wordpiece(self, word: str) -> list[str]:
        if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD:
            return [self.oov_token]
        pieces = []
        start = 0
        while start < len(word):
            prefix = self.suffix_indicator if start else ""
            end = min(len(word), start + self._longest_token)
            while end > start and prefix + word[start:end] not in self._ids:
                end -= 1
            if end == start:
                return [self.oov_token]
            pieces.append(prefix + word[start:end])
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Split `text` into word pieces (strings)."""
        if not isinstance(text, str):
            raise ValueError(f"Expected `text` to be a str. Received: {type(text).__name__}")
        words = split_words(text, lowercase=self.lowercase, strip_accents=self.strip_accents)
        return [piece for word in words for piece in self._wordpiece(word)]

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """Word pieces of `text` (as `tokenize` returns them) with their character spans.

        Each piece comes with `[start, end)` in the original `text`, so `text[start:end]`
        is what the piece stands for, accents and case as the user wrote them. Pieces of a
        word that normalisation changed in length (a ligature, "ß" folded to "ss") share
        the word's span where a piece cannot be traced to its own characters; `[UNK]`
        covers its whole word.

        Example:
        >>> tokenizer = WordpieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cafe", "##s", "!"])
        >>> tokenizer.tokenize_with_offsets("Cafés!")
        [('cafe', 0, 4), ('##s', 4, 5), ('!', 5, 6)]
        """
        if not isinstance(text, str):
            raise ValueError(f"Expected `text` to be a str. Received: {type(text).__name__}")
        pieces = []
        words = split_words_with_offsets(
            text, lowercase=False, strip_accents=self.strip_accents)
        for raw_word, start, end in words:
            word = casefold_nfkc(raw_word) if self.lowercase else raw_word
            if not word:
                continue
            # Where each character of the folded word came from in the original text.
            sources = self._character_sources(text, word, start, end)
            position = 0
            for piece in self._wordpiece(word):
                if piece == self.oov_token:
                    pieces.append((piece, start, end))
                    break
                length = len(piece) - (len(self.suffix_indicator) if position else 0)
                if sources is None:
                    pieces.append((piece, start, end))
                else:
                    first = sources[position][0] if position else start
                    last = sources[position + length - 1][1] if position + length < len(word) else end
                    pieces.append((piece, first, last))
                position += length
        return pieces

    def _character_sources(self, text, word, start, end):
        """For each character of the normalised `word`, its `[start, end)` in `text`; None
        where normalisation mixed characters (the caller then uses the whole word)."""
        sources = []
        rebuilt = []
        for index in range(start, end):
            char = remove_accents(text[index]) if self.strip_accents else text[index]
            if self.lowercase:
                char = casefold_nfkc(char)
            rebuilt.append(char)
            sources.extend([(index, index + 1)] * len(char))
        if "".join(rebuilt) != word:
            return None
        return sources

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`, without [CLS]/[SEP]."""
        return [self._ids[piece] for piece in self.tokenize(text)]

    def pack(
        self, text: str, pair: str | None = None, *, sequence_length: int
    ) -> dict[str, np.ndarray]:
        """`[CLS] text [SEP] (pair [SEP])`, truncated round-robin and padded to `sequence_length`.

        Returns int32 arrays of shape [sequence_length] under the TFLite signature's names
        `input_word_ids`, `input_mask` (1 = real token) and `input_type_ids` (segment ids).
        """
        segments = [self.encode(text)] + ([] if pair is None else [self.encode(pair)])
        budget = sequence_length - 1 - len(segments)
        if budget < 0:
            raise ValueError(
                f"Expected a sequence length of at least {1 + len(segments)} to hold [CLS] and "
                f"[SEP]. Received: sequence_length={sequence_length}"
            )
        segments = [seg[:keep] for seg, keep in zip(segments, round_robin_lengths(
            [len(seg) for seg in segments], budget))]
        word_ids = [self.cls_id]
        type_ids = [0]
        for segment_index, segment in enumerate(segments):
            word_ids += segment + [self.sep_id]
            type_ids += [segment_index] * (len(segment) + 1)
        length = len(word_ids)
        padding = sequence_length - length
        return {
            INPUT_WORD_IDS: np.array(word_ids + [self.pad_id] * padding, dtype=np.int32),
            INPUT_MASK: np.array([1] * length + [0] * padding, dtype=np.int32),
            INPUT_TYPE_IDS: np.array(type_ids + [0] * padding, dtype=np.int32),
        }


def round_robin_lengths(lengths: Sequence[int], budget: int) -> list[int]:
    """How many tokens each segment keeps when `budget` is dealt one token at a time in turn.

    This is tf_text's `RoundRobinTrimmer`, which keras-hub's `MultiSegmentPacker` uses.

    Example:
    >>> round_robin_lengths([10, 2], 6)
    [4, 2]
    """
    kept = [0] * len(lengths)
    remaining = budget
    while remaining > 0 and any(k < n for k, n in zip(kept, lengths)):
        for index, length in enumerate(lengths):
            if remaining > 0 and kept[index] < length:
                kept[index] += 1
                remaining -= 1
    return kept


def decode_text(raw: bytes, source: str) -> str:
    """`raw` decoded as UTF-8; ValueError naming `source` and the offending byte otherwise."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"The file {source} is not UTF-8 text: byte {error.start} is "
            f"{raw[error.start:error.start + 1]!r}."
        ) from error
