"""Extractive question answering data: SQuAD v1.1 JSON in, question + context windows out.

`read_squad` walks the official layout (`data -> paragraphs -> context, qas -> answers`)
and yields a `SquadExample` per question, or a `BadRowError` value naming the JSON path
(`file:data[3].paragraphs[1].qas[0].answers[0]`) of a malformed one: an answer whose
`answer_start` does not point at its text, an empty context or question, a missing key.

`span_windows` (owned by `tf_tinybert.runtime.spans`, which answers over the same windows)
packs `[CLS] question [SEP] context-window [SEP]`: a context longer than the
sequence length is split into overlapping windows that start `stride` pieces apart, the
last one reaching the end of the context. The answer's first and last piece become window
positions where the window holds the whole answer, and 0 ([CLS], "no answer in this
window") elsewhere. Every context piece keeps its `[start, end)` character span in the
context, which the runtime and the evaluation use to cut the answer text out of it.

`question_windows` tokenises with the training tokenizer (keras-hub) and takes the
character spans from the TensorFlow-free WordPiece of the runtime, after checking that both
produce the same ids: the spans the runtime computes on device are the spans trained on.

Example:
```python
from tf_tinybert.data import squad

examples = [e for e in squad.read_squad("squad/dev.json")]
windows = squad.question_windows(examples[0], encoder, runtime_tokenizer, stride=64)
```
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from tf_tinybert.data.readers import BadRowError

# The windowing is the runtime's too (it answers over the same windows): it owns it.
from tf_tinybert.runtime.spans import NO_ANSWER, SpanWindow, span_windows

__all__ = ["NO_ANSWER", "UNLABELED", "SpanWindow", "SquadExample", "question_places",
           "question_windows", "read_squad", "span_windows", "with_questions"]

# The answer positions of a window whose question is unlabeled (a transfer set): no hard loss.
UNLABELED = -1


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question on one context; `answers` are `(text, answer_start)` pairs (the first is
    trained on, all are gold for the metric); `where` is the question's JSON path."""

    where: str
    question_id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


def question_places(path) -> tuple[dict, list[tuple[int, int, int]]]:
    """The parsed SQuAD document of `path` and the `(article, paragraph, question)` index of
    each of its questions, in file order; ValueError names the file where it is not SQuAD's
    layout. Keys inside the questions are checked later, by `read_squad`.

    Example:
    ```python
    document, places = question_places("squad/train.json")
    len(places)  # the number of questions
    ```
    """
    try:
        with open(path, encoding="utf-8-sig") as file:
            document = json.load(file)
        places = [(a, p, q) for a, article in enumerate(document["data"])
                  for p, paragraph in enumerate(article["paragraphs"])
                  for q in range(len(paragraph["qas"]))]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: cannot read its questions: not SQuAD's layout data -> "
                         f"paragraphs -> qas ({type(error).__name__}: {error})") from None
    return document, places


def with_questions(document: dict, keep) -> dict:
    """`document` holding only the questions for which `keep((a, p, q), qa)` returns a
    question (itself or a changed copy) rather than None; paragraphs and articles left
    without questions are dropped, everything else is kept as it is.

    Example:
    ```python
    document, places = question_places("train.json")
    first = with_questions(document, lambda place, qa: qa if place == places[0] else None)
    ```
    """
    articles = []
    for a, article in enumerate(document["data"]):
        paragraphs = []
        for p, paragraph in enumerate(article["paragraphs"]):
            qas = [kept for q, qa in enumerate(paragraph["qas"])
                   if (kept := keep((a, p, q), qa)) is not None]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {**document, "data": articles}


def _get(container, key, kind, where):
    if not isinstance(container, dict) or key not in container:
        return BadRowError(where, f"missing key {key!r}")
    value = container[key]
    if not isinstance(value, kind):
        return BadRowError(f"{where}.{key}", f"expected {kind.__name__}, received "
                                             f"{type(value).__name__}")
    return value


def read_squad(path: str) -> Iterator[SquadExample | BadRowError]:
    """Every question of a SQuAD v1.1 JSON file; see the module docstring.

    Raises ValueError where the file is not JSON or has no `data` list.

    Example:
    ```python
    for example in read_squad("squad/dev.json"):
        print(example.where, example.question, example.answers)
    ```
    """
    try:
        with open(path, encoding="utf-8-sig") as file:
            document = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read SQuAD JSON ({error})") from None
    articles = _get(document, "data", list, path)
    if isinstance(articles, BadRowError):
        raise ValueError(f"{articles}; expected SQuAD's layout data -> paragraphs -> qas")
    for a, article in enumerate(articles):
        paragraphs = _get(article, "paragraphs", list, f"{path}:data[{a}]")
        if isinstance(paragraphs, BadRowError):
            yield paragraphs
            continue
        for p, paragraph in enumerate(paragraphs):
            yield from _paragraph_examples(paragraph, f"{path}:data[{a}].paragraphs[{p}]")


def _paragraph_examples(paragraph, where):
    context = _get(paragraph, "context", str, where)
    questions = _get(paragraph, "qas", list, where)
    for value in (context, questions):
        if isinstance(value, BadRowError):
            yield value
            return
    if not context.strip():
        yield BadRowError(f"{where}.context", "empty context")
        return
    for q, qa in enumerate(questions):
        yield _example(qa, context, f"{where}.qas[{q}]")


def _example(qa, context, where):
    question = _get(qa, "question", str, where)
    question_id = _get(qa, "id", str, where)
    answers = _get(qa, "answers", list, where)
    for value in (question, question_id, answers):
        if isinstance(value, BadRowError):
            return value
    if not question.strip():
        return BadRowError(f"{where}.question", "empty question")
    pairs = []
    for n, answer in enumerate(answers):
        answer_where = f"{where}.answers[{n}]"
        text = _get(answer, "text", str, answer_where)
        start = _get(answer, "answer_start", int, answer_where)
        for value in (text, start):
            if isinstance(value, BadRowError):
                return value
        if not text.strip():
            return BadRowError(answer_where, "empty answer text")
        if context[start:start + len(text)] != text:
            return BadRowError(
                answer_where, f"answer_start {start} does not point at the answer text "
                f"{text!r}: the context there reads {context[start:start + len(text)]!r}")
        pairs.append((text, start))
    return SquadExample(where, question_id, question, context, tuple(pairs))


def question_windows(
    example: SquadExample, encoder, runtime_tokenizer, stride: int, with_answer: bool = True
) -> list[SpanWindow] | BadRowError:
    """The windows of one question, or a `BadRowError` naming its JSON path.

    Args:
        example: from `read_squad`.
        encoder: a `tf_tinybert.data.encoding.Encoder` (keras-hub tokenizer, sequence length).
        runtime_tokenizer: the `tf_tinybert.runtime.WordpieceTokenizer` of the same
            vocabulary and options; it supplies character spans, and must agree on the ids.
        stride: see `span_windows`.
        with_answer: map the first answer to positions (training); False for an unlabeled
            question (a transfer set): every window's positions are then `UNLABELED`.

    Example:
    ```python
    windows = question_windows(example, Encoder(tokenizer, 384), runtime, stride=128)
    ```
    """
    question_ids, context_ids = encoder.pieces([example.question, example.context])
    spans = runtime_tokenizer.tokenize_with_offsets(example.context)
    runtime_ids = [runtime_tokenizer.token_to_id(piece) for piece, _, _ in spans]
    if runtime_ids != list(context_ids):
        mismatch = next((i for i, (a, b) in enumerate(zip(runtime_ids, context_ids)) if a != b),
                        min(len(runtime_ids), len(context_ids)))
        return BadRowError(
            f"{example.where.rsplit('.qas', 1)[0]}.context", f"the runtime WordPiece and the training tokenizer disagree at piece {mismatch} "
            "(check lowercase/strip_accents of both)")
    paragraph = example.where.rsplit(".qas", 1)[0]
    if not context_ids:
        return BadRowError(f"{paragraph}.context", "the context has no word pieces")
    if len(question_ids) + 4 > encoder.sequence_length:
        return BadRowError(
            f"{example.where}.question",
            f"the question has {len(question_ids)} word pieces: with [CLS], two [SEP] and one "
            f"context piece it does not fit the sequence length {encoder.sequence_length}")
    answer = None
    if with_answer and example.answers:
        text, start = example.answers[0]
        answer = (start, start + len(text))
        if not any(s < answer[1] and e > answer[0] for _, s, e in spans):
            return BadRowError(f"{example.where}.answers[0]", "the answer covers no word piece")
    windows = span_windows(
        question_ids, [(i, s, e) for i, (_, s, e) in zip(context_ids, spans)], answer,
        encoder.sequence_length, stride, encoder.tokenizer.cls_token_id,
        encoder.tokenizer.sep_token_id)
    if not with_answer:
        windows = [dataclasses.replace(w, start_position=UNLABELED, end_position=UNLABELED)
                   for w in windows]
    return windows
