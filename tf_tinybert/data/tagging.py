"""Token classification data: CoNLL column files and JSONL in, word-piece windows with tags out.

Readers yield `TaggedSentence`s and, for a malformed sentence, a `BadRowError` value (as
`tf_tinybert.data.readers` does), so the caller decides whether to stop or skip:
- CoNLL: one token a line, its columns separated by white space, a blank line between
  sentences, `-DOCSTART-` lines skipped; `tag_column` picks the tag (CoNLL-2003 has four
  columns, `token POS chunk NER`: the default -1 is NER). The first token line fixes the
  column count; a line with another count, or a tag outside `label_names`, makes its
  sentence bad (`file:line: reason`).
- JSONL: one `{"tokens": [...], "tags": [...]}` object a line.

`tag_windows` aligns tags to word pieces: a word's first piece carries its tag, its other
pieces (and [CLS], [SEP]) carry `IGNORE_INDEX`, so loss and metric see one tag per word.
A sentence longer than the sequence length is split between words into consecutive
windows, never dropped or cut: every word is in exactly one window.

Example:
```python
from tf_tinybert.data import tagging

for sentence in tagging.read_conll("conll2003/train.txt", label_names=LABELS):
    print(sentence.where, sentence.tokens, sentence.tags)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from tf_tinybert.data.features import IGNORE_INDEX
from tf_tinybert.data.readers import BadRowError, decoded_lines, json_object_lines
from tf_tinybert.runtime.tags import split_tag

DOCSTART = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence: its words and their tags; `where` is `file:line` of its first word."""

    where: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TagWindow:
    """One model row: `[CLS] pieces [SEP]` ids and the tag id of each (IGNORE_INDEX where
    none); `words` are the sentence's word indices `[first, last)` the window holds."""

    token_ids: tuple[int, ...]
    tag_ids: tuple[int, ...]
    words: tuple[int, int]


def _check_tag(tag: str, label_names: Sequence[str] | None) -> str | None:
    """The reason `tag` is unacceptable, or None."""
    if label_names is not None:
        if tag not in label_names:
            return f"unknown tag {tag!r}; expected one of {list(label_names)}"
        return None
    try:
        split_tag(tag)
    except ValueError as error:
        return str(error)
    return None


def read_conll(
    path: str, tag_column: int = -1, label_names: Sequence[str] | None = None
) -> Iterator[TaggedSentence | BadRowError]:
    """Sentences of a CoNLL column file; see the module docstring.

    Args:
        path: the file (UTF-8; a byte-order mark is dropped).
        tag_column: which white-space separated column holds the tag (Python index: -1 is
            the last); the token is column 0.
        label_names: the task's tags; a tag outside them is an error. None accepts any
            well-formed IOB tag.

    Example:
    ```python
    sentences = list(read_conll("valid.txt", label_names=["O", "B-PER", "I-PER"]))
    ```
    """
    columns = None
    tokens: list[str] = []
    tags: list[str] = []
    start = None
    bad: BadRowError | None = None
    for where, line in decoded_lines(path):
        if isinstance(line, BadRowError):
            bad = bad or line
            start = start or where
            continue
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if bad is not None:
                yield bad
            elif tokens:
                yield TaggedSentence(start, tuple(tokens), tuple(tags))
            tokens, tags, start, bad = [], [], None, None
            continue
        start = start or where
        if bad is not None:
            continue
        if columns is None:
            columns = len(fields)
            if not -columns <= tag_column < columns or tag_column in (0, -columns):
                raise ValueError(
                    f"{where}: `tag_column`={tag_column} does not name a tag column of a line "
                    f"with {columns} columns (column 0 is the token)."
                )
        if len(fields) != columns:
            bad = BadRowError(where, f"expected {columns} columns (as the first token line), "
                                     f"found {len(fields)}: {line!r}")
            continue
        reason = _check_tag(fields[tag_column], label_names)
        if reason:
            bad = BadRowError(where, reason)
            continue
        tokens.append(fields[0])
        tags.append(fields[tag_column])
    if bad is not None:
        yield bad
    elif tokens:
        yield TaggedSentence(start, tuple(tokens), tuple(tags))


def read_tagged_jsonl(
    path: str, label_names: Sequence[str] | None = None, tokens_key: str = "tokens",
    tags_key: str = "tags",
) -> Iterator[TaggedSentence | BadRowError]:
    """Sentences of a JSONL file of `{"tokens": [...], "tags": [...]}` objects.

    Example:
    ```python
    sentences = list(read_tagged_jsonl("train.jsonl", label_names=["O", "B-LOC", "I-LOC"]))
    ```
    """
    for where, record in json_object_lines(path):
        if isinstance(record, BadRowError):
            yield record
            continue
        if tokens_key not in record or tags_key not in record:
            yield BadRowError(where, f"expected an object with keys {tokens_key!r} and "
                                     f"{tags_key!r}")
            continue
        tokens, tags = record[tokens_key], record[tags_key]
        if (not isinstance(tokens, list) or not isinstance(tags, list)
                or not all(isinstance(value, str) for value in tokens + tags)):
            yield BadRowError(where, f"{tokens_key!r} and {tags_key!r} must be lists of strings")
            continue
        if len(tokens) != len(tags) or not tokens:
            yield BadRowError(where, f"{len(tokens)} tokens and {len(tags)} tags; expected the "
                                     "same number, at least one")
            continue
        reasons = [_check_tag(tag, label_names) for tag in tags]
        reason = next((r for r in reasons if r), None)
        if reason:
            yield BadRowError(where, f"{tags_key}[{reasons.index(reason)}]: {reason}")
            continue
        yield TaggedSentence(where, tuple(tokens), tuple(tags))


def tag_windows(
    word_pieces: Sequence[Sequence[int]],
    tag_ids: Sequence[int],
    sequence_length: int,
    cls_id: int,
    sep_id: int,
    unk_id: int,
) -> list[TagWindow]:
    """Word pieces and tags of one sentence as `[CLS] ... [SEP]` windows of at most
    `sequence_length` ids, split between words.

    A word with no pieces (only characters the tokenizer drops) becomes `[UNK]`, so its tag
    is kept; a single word longer than a window keeps its first pieces.

    Example:
    >>> tag_windows([[7], [8, 9], [10]], [1, 2, 0], sequence_length=5, cls_id=2, sep_id=3, unk_id=1)
    [TagWindow(token_ids=(2, 7, 8, 9, 3), tag_ids=(-100, 1, 2, -100, -100), words=(0, 2)), \
TagWindow(token_ids=(2, 10, 3), tag_ids=(-100, 0, -100), words=(2, 3))]
    """
    if len(word_pieces) != len(tag_ids):
        raise ValueError(f"Expected one tag per word. Received: {len(word_pieces)} words, "
                         f"{len(tag_ids)} tags.")
    budget = sequence_length - 2
    if budget < 1:
        raise ValueError(f"Expected `sequence_length` >= 3. Received: {sequence_length}")
    windows = []
    pieces: list[int] = []
    labels: list[int] = []
    first_word = 0

    def close(last_word):
        windows.append(TagWindow((cls_id, *pieces, sep_id), (IGNORE_INDEX, *labels, IGNORE_INDEX),
                                 (first_word, last_word)))

    for index, (word, tag) in enumerate(zip(word_pieces, tag_ids)):
        word = list(word)[:budget] or [unk_id]
        if pieces and len(pieces) + len(word) > budget:
            close(index)
            pieces, labels, first_word = [], [], index
        pieces.extend(word)
        labels.extend([tag] + [IGNORE_INDEX] * (len(word) - 1))
    if pieces or not windows:
        close(len(word_pieces))
    return windows


def sentence_windows(
    sentences: Sequence[TaggedSentence], encoder, label_names: Sequence[str]
) -> list[list[TagWindow]]:
    """The windows of each sentence, word pieces from the training tokenizer.

    Args:
        sentences: sentences from `read_conll` or `read_tagged_jsonl`.
        encoder: a `tf_tinybert.data.encoding.Encoder` (keras-hub `BertTokenizer`, sequence
            length); all words of the batch are tokenised in one TensorFlow call.
        label_names: the task's tags; a tag's id is its index here.

    Example:
    ```python
    windows = sentence_windows(sentences, Encoder(tokenizer, 128), label_names)
    ```
    """
    index = {name: position for position, name in enumerate(label_names)}
    words = [word for sentence in sentences for word in sentence.tokens]
    pieces = encoder.pieces(words) if words else []
    tokenizer = encoder.tokenizer
    unk_id = tokenizer.token_to_id(tokenizer.oov_token)
    result, offset = [], 0
    for sentence in sentences:
        count = len(sentence.tokens)
        try:
            tag_ids = [index[tag] for tag in sentence.tags]
        except KeyError as error:
            raise BadRowError(sentence.where, f"unknown tag {error.args[0]!r}; expected one of "
                                              f"{list(label_names)}") from None
        result.append(tag_windows(
            pieces[offset:offset + count], tag_ids, encoder.sequence_length,
            tokenizer.cls_token_id, tokenizer.sep_token_id, unk_id))
        offset += count
    return result
