"""Named entities from per-word-piece tag probabilities, as character spans of the input text.

A word's tag is the most probable tag of its first piece (the piece its tag was trained on;
pieces starting with `##` continue a word). Words are grouped into entities by conlleval's
rules (`tf_tinybert.runtime.tags`), the same ones the entity F1 counts with, and each entity
is cut out of the original string with the character spans the runtime WordPiece reports,
so accents, case and punctuation come back exactly as written.

Example:
```python
from tf_tinybert.runtime.entities import group_entities

pieces = tokenizer.tokenize_with_offsets(text)      # [(piece, start, end), ...]
entities = group_entities(text, pieces, probabilities, ["O", "B-PER", "I-PER"])
# [Entity(text='José Núñez', type='PER', start_char=0, end_char=10, score=0.97)]
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from tf_tinybert.runtime.tags import entity_chunks

SUFFIX_INDICATOR = "##"


class Entity(NamedTuple):
    """One entity: `text == input[start_char:end_char]`; `score` is the mean probability of
    the chosen tag over its words."""

    text: str
    type: str
    start_char: int
    end_char: int
    score: float


def group_entities(
    text: str,
    pieces: Sequence[tuple[str, int, int]],
    probabilities,
    label_names: Sequence[str],
    suffix_indicator: str = SUFFIX_INDICATOR,
) -> list[Entity]:
    """The entities of `text`, in order.

    Args:
        text: the original input string.
        pieces: `(piece, start_char, end_char)` of each word piece of `text`, in order
            (`WordpieceTokenizer.tokenize_with_offsets`), without [CLS]/[SEP].
        probabilities: `[len(pieces), len(label_names)]` tag probabilities of those pieces.
        label_names: the tags (IOB1, IOB2 or IOBES strings and "O").

    Example:
    >>> text = "Anna Lindqvist flew"
    >>> pieces = [("anna", 0, 4), ("lind", 5, 9), ("##qvist", 9, 14), ("flew", 15, 19)]
    >>> probabilities = [[0.1, 0.9, 0.0], [0.2, 0.1, 0.7], [0.9, 0.0, 0.1], [0.8, 0.1, 0.1]]
    >>> group_entities(text, pieces, probabilities, ["O", "B-PER", "I-PER"])
    [Entity(text='Anna Lindqvist', type='PER', start_char=0, end_char=14, score=0.8)]
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(pieces), len(label_names)):
        raise ValueError(
            f"Expected probabilities of shape [pieces, tags] = [{len(pieces)}, "
            f"{len(label_names)}]. Received: {probabilities.shape}")
    # Each word: (first piece index, start char, end char).
    words: list[list[int]] = []
    for index, (piece, start, end) in enumerate(pieces):
        if words and piece.startswith(suffix_indicator):
            words[-1][2] = max(words[-1][2], end)
        else:
            words.append([index, start, end])
    first_pieces = [word[0] for word in words]
    tag_ids = probabilities[first_pieces].argmax(axis=-1) if words else np.zeros(0, int)
    tag_scores = probabilities[first_pieces, tag_ids] if words else np.zeros(0)
    entities = []
    for entity_type, first, last in entity_chunks([label_names[i] for i in tag_ids]):
        start_char, end_char = words[first][1], words[last - 1][2]
        entities.append(Entity(text[start_char:end_char], entity_type, int(start_char),
                               int(end_char), float(np.mean(tag_scores[first:last]))))
    return entities
