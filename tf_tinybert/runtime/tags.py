"""Entity chunks from IOB tag sequences, exactly as conlleval (and seqeval's default mode) finds them.

A tag is `O` or `<prefix>-<type>` with prefix B (begin), I (inside), E (end) or S (single).
conlleval's rules read IOB1, IOB2 and IOBES alike:
- a chunk starts at `B`, at `S`, at an `I`/`E` that follows `O`, `E` or `S`, and at any tag
  whose type differs from the previous tag's (so `I-PER` with no `B-PER` before it starts a
  PER chunk, and `B-PER I-ORG` is two chunks);
- a chunk ends before `B`, `S` and `O`, after `E` and `S`, where the type changes, and at the
  end of the sentence.

This module imports nothing: the TensorFlow-free runtime groups its predicted tags with it and
`tf_tinybert.ner_metrics` scores them with it, so both read tags the same way.

Example:
>>> entity_chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
[('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5)]
"""

from __future__ import annotations

from collections.abc import Sequence

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")


def split_tag(tag: str) -> tuple[str, str]:
    """`(prefix, type)` of a tag: `("O", "")` for `O`, `("B", "PER")` for `B-PER`.

    Raises ValueError for a tag that is neither `O` nor `<B|I|E|S>-<type>`.

    Example:
    >>> split_tag("I-MISC")
    ('I', 'MISC')
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, entity_type = tag.partition("-")
    if not dash or prefix not in PREFIXES or not entity_type:
        raise ValueError(
            f"Expected a tag 'O' or '<prefix>-<type>' with prefix in {PREFIXES}. Received: {tag!r}"
        )
    return prefix, entity_type


def _chunk_ends(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    """conlleval's endOfChunk: does the chunk holding `previous` end before `current`?"""
    previous_prefix, previous_type = previous
    prefix, entity_type = current
    if previous_prefix == OUTSIDE:
        return False
    if previous_prefix in ("E", "S"):
        return True
    if prefix in ("B", "S", OUTSIDE):
        return True
    return previous_type != entity_type


def _chunk_starts(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    """conlleval's startOfChunk: does a chunk start at `current`?"""
    previous_prefix, previous_type = previous
    prefix, entity_type = current
    if prefix == OUTSIDE:
        return False
    if prefix in ("B", "S"):
        return True
    if previous_prefix in (OUTSIDE, "E", "S"):
        return True
    return previous_type != entity_type


def entity_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entity chunks of one sentence as `(type, start, end)`, `end` exclusive, in order.

    Example:
    >>> entity_chunks(["I-PER", "I-PER", "B-PER", "I-ORG"])  # IOB1 and a type change
    [('PER', 0, 2), ('PER', 2, 3), ('ORG', 3, 4)]
    """
    chunks: list[tuple[str, int, int]] = []
    previous = (OUTSIDE, "")
    start = None
    for index, tag in enumerate(tags):
        current = split_tag(tag)
        if start is not None and _chunk_ends(previous, current):
            chunks.append((previous[1], start, index))
            start = None
        if _chunk_starts(previous, current):
            start = index
        previous = current
    if start is not None:
        chunks.append((previous[1], start, len(tags)))
    return chunks
