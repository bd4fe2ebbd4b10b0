"""The best answer span over every window of a long context (extractive QA decoding).

A span `(s, e)` of one window scores `start_logits[s] + end_logits[e]` (BERT's SQuAD
decoding; logits, not probabilities, so that windows compare on one scale). Only context
positions qualify (those with a character span; [CLS], question and [SEP] have -1), with
`s <= e` and at most `max_answer_length` pieces. The best span of all windows wins, and its
text is cut out of the context with the pieces' character spans. The reported `score` is the
span's probability within its window: softmax of the start logits times softmax of the end
logits, both over that window's context positions.

Example:
```python
from tf_tinybert.runtime.spans import best_answer

answer = best_answer(context, [(start_logits, end_logits, token_starts, token_ends)])
answer.text, answer.start_char, answer.end_char, answer.score
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

MAX_ANSWER_LENGTH = 30
NO_ANSWER = 0  # the [CLS] position: "the answer is not in this window"


@dataclasses.dataclass(frozen=True)
class SpanWindow:
    """One model row. `token_starts`/`token_ends`: each position's character span in the
    context, -1 on [CLS], question and [SEP]; `start_position`/`end_position`: the answer's
    first and last position, both `NO_ANSWER` where this window does not hold all of it."""

    token_ids: tuple[int, ...]
    segment_ids: tuple[int, ...]
    token_starts: tuple[int, ...]
    token_ends: tuple[int, ...]
    start_position: int
    end_position: int


class Answer(NamedTuple):
    """An answer: `text == context[start_char:end_char]`; `score` in [0, 1]."""

    text: str
    start_char: int
    end_char: int
    score: float


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def best_answer(
    context: str,
    windows: Sequence[tuple],
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> Answer:
    """The best span over all windows; see the module docstring.

    Args:
        context: the original context string.
        windows: `(start_logits, end_logits, token_starts, token_ends)` per window, each
            `[L]`; `token_starts`/`token_ends` are the character spans in `context` (-1 off
            the context).
        max_answer_length: the longest answer, in word pieces.

    Example:
    >>> context = "Paris is in France"
    >>> starts, ends = [-1, 0, 6, 9, 12, -1], [-1, 5, 8, 11, 18, -1]
    >>> best_answer(context, [([0, 5.0, 0, 0, 1.0, 0], [0, 4.0, 0, 0, 2.0, 0], starts, ends)])[:3]
    ('Paris', 0, 5)
    """
    if max_answer_length < 1:
        raise ValueError(f"Expected `max_answer_length` >= 1. Received: {max_answer_length}")
    best = None
    for number, window in enumerate(windows):
        start_logits, end_logits, token_starts, token_ends = (np.asarray(a) for a in window)
        if not start_logits.shape == end_logits.shape == token_starts.shape == token_ends.shape:
            raise ValueError(
                f"Window {number}: expected start/end logits and token starts/ends of one shape "
                f"[L]. Received: {start_logits.shape}, {end_logits.shape}, "
                f"{token_starts.shape}, {token_ends.shape}")
        context_positions = np.flatnonzero(token_starts >= 0)
        if context_positions.size == 0:
            continue
        starts = start_logits[context_positions].astype(np.float64)
        ends = end_logits[context_positions].astype(np.float64)
        scores = starts[:, None] + ends[None, :]
        # Positions are in order, so an index difference counts pieces between start and end.
        gap = context_positions[None, :] - context_positions[:, None]
        scores = np.where((gap >= 0) & (gap < max_answer_length), scores, -np.inf)
        flat = int(np.argmax(scores))
        s, e = divmod(flat, scores.shape[1])
        if best is None or scores[s, e] > best[0]:
            probability = _softmax(starts)[s] * _softmax(ends)[e]
            best = (scores[s, e], int(token_starts[context_positions[s]]),
                    int(token_ends[context_positions[e]]), float(probability))
    if best is None:
        raise ValueError("No window has a context position to answer from.")
    _, start_char, end_char, probability = best
    return Answer(context[start_char:end_char], start_char, end_char, probability)


def answers_by_example(
    contexts: dict,
    example_ids: Sequence[str],
    start_logits,
    end_logits,
    token_starts,
    token_ends,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> dict:
    """The best answer of each question, its windows gathered from a batch of rows.

    Args:
        contexts: question id -> its context string.
        example_ids: `[N]` the question id of each window row.
        start_logits, end_logits, token_starts, token_ends: `[N, L]` per window row.

    Example:
    ```python
    answers = answers_by_example({"q1": context}, ["q1", "q1"], starts, ends, offsets_s, offsets_e)
    answers["q1"].text
    ```
    """
    rows: dict = {}
    for row, example_id in enumerate(example_ids):
        example_id = example_id.decode("utf-8") if isinstance(example_id, bytes) else example_id
        rows.setdefault(example_id, []).append(row)
    missing = sorted(set(rows) - set(contexts))
    if missing:
        raise ValueError(f"No context for question ids {missing[:3]} ({len(missing)} in all).")
    arrays = [np.asarray(a) for a in (start_logits, end_logits, token_starts, token_ends)]
    return {
        example_id: best_answer(contexts[example_id],
                                [tuple(a[row] for a in arrays) for row in indices],
                                max_answer_length)
        for example_id, indices in rows.items()
    }


def span_windows(
    question_ids: Sequence[int],
    context_pieces: Sequence[tuple[int, int, int]],
    answer: tuple[int, int] | None,
    sequence_length: int,
    stride: int,
    cls_id: int,
    sep_id: int,
) -> list[SpanWindow]:
    """`[CLS] question [SEP] window [SEP]` rows over a context; see the module docstring.

    Args:
        question_ids: the question's piece ids.
        context_pieces: `(id, start_char, end_char)` of each context piece.
        answer: the answer's `[start_char, end_char)` in the context, or None (no labels).
        sequence_length: the length of a row, special tokens included.
        stride: how many pieces apart consecutive windows start; capped at the window
            length, so that no piece is left out.

    Example:
    >>> pieces = [(10 + i, i, i + 1) for i in range(5)]
    >>> [w.token_ids for w in span_windows([7], pieces, None, 7, 2, cls_id=2, sep_id=3)]
    [(2, 7, 3, 10, 11, 12, 3), (2, 7, 3, 12, 13, 14, 3)]
    """
    context_length = sequence_length - len(question_ids) - 3
    if context_length < 1:
        raise ValueError(
            f"the question has {len(question_ids)} word pieces; with [CLS] and two [SEP] it "
            f"leaves no room for the context in a sequence length of {sequence_length}")
    if stride < 1:
        raise ValueError(f"Expected `stride` >= 1. Received: stride={stride}")
    # A long question shortens the window: never step past it, or pieces would be skipped.
    stride = min(stride, context_length)
    if not context_pieces:
        raise ValueError("the context has no word pieces")
    first = last = None
    if answer is not None:
        inside = [i for i, (_, start, end) in enumerate(context_pieces)
                  if start < answer[1] and end > answer[0]]
        if not inside:
            raise ValueError(f"the answer at characters {answer[0]}:{answer[1]} covers no word piece")
        first, last = inside[0], inside[-1]
    prefix = [cls_id, *question_ids, sep_id]
    windows = []
    begin = 0
    while True:
        end = min(begin + context_length, len(context_pieces))
        chunk = context_pieces[begin:end]
        start_position = end_position = NO_ANSWER
        if first is not None and begin <= first and last < end:
            start_position = len(prefix) + first - begin
            end_position = len(prefix) + last - begin
        none = [-1] * len(prefix)
        windows.append(SpanWindow(
            token_ids=(*prefix, *(piece for piece, _, _ in chunk), sep_id),
            segment_ids=(0,) * len(prefix) + (1,) * (len(chunk) + 1),
            token_starts=(*none, *(start for _, start, _ in chunk), -1),
            token_ends=(*none, *(stop for _, _, stop in chunk), -1),
            start_position=start_position,
            end_position=end_position,
        ))
        if end == len(context_pieces):
            return windows
        begin += stride
