"""SQuAD v1.1 exact match and F1, exactly as the official evaluation script computes them.

The official script (`evaluate-v1.1.py`) normalises each answer (lower-case, drop ASCII
punctuation, drop the words a/an/the, collapse white space), scores a prediction against
every gold answer of its question and keeps the best: exact match is 1 where the normalised
strings are equal, F1 is the harmonic mean of token precision and recall over the bag of
normalised white-space tokens. The script reports percentages; these are fractions.

Example:
```python
from tf_tinybert import squad_metrics

squad_metrics.exact_match("The Eiffel Tower!", ["eiffel tower"])   # 1.0
squad_metrics.f1("Eiffel Tower in Paris", ["the Eiffel Tower"])    # 0.666...
```
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """The official script's normalisation: lower, remove punctuation, articles, extra spaces.

    Example:
    >>> normalize_answer("  The  Cat's hat, a  RED one. ")
    'cats hat red one'
    """
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1(prediction: str, gold: str) -> float:
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best(score, prediction: str, gold_answers: Sequence[str]) -> float:
    if isinstance(gold_answers, str) or not gold_answers:
        raise ValueError(
            "Expected a non-empty list of gold answer strings. Received: "
            f"{gold_answers!r}"
        )
    return max(score(prediction, gold) for gold in gold_answers)


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 where the normalised prediction equals a normalised gold answer, else 0.0.

    Example:
    >>> exact_match("an apple", ["Apple", "a pear"])
    1.0
    """
    return _best(_exact, prediction, gold_answers)


def f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """The best token-level F1 of the prediction against any gold answer.

    Example:
    >>> f1("green apple pie", ["apple pie"])
    0.8
    """
    return _best(_f1, prediction, gold_answers)


def squad_scores(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]]) -> dict:
    """Mean exact match and F1 (fractions) over every question of `gold`.

    A question without a prediction scores 0, as in the official script; a prediction for a
    question that is not in `gold` is an error (it means the ids do not match).

    Args:
        predictions: question id -> predicted answer text.
        gold: question id -> its gold answer texts.

    Example:
    ```python
    squad_scores({"q1": "Paris"}, {"q1": ["Paris", "in Paris"], "q2": ["1889"]})
    # {'exact_match': 0.5, 'f1': 0.5, 'count': 2, 'unanswered': 1}
    ```
    """
    unknown = sorted(set(predictions) - set(gold))
    if unknown:
        raise ValueError(
            f"Predictions for {len(unknown)} question ids that the gold answers lack, e.g. "
            f"{unknown[:3]}."
        )
    if not gold:
        raise ValueError("Expected at least one gold question. Received: none.")
    exact_total = f1_total = 0.0
    for question_id, answers in gold.items():
        if question_id in predictions:
            exact_total += exact_match(predictions[question_id], answers)
            f1_total += f1(predictions[question_id], answers)
    return {
        "exact_match": exact_total / len(gold),
        "f1": f1_total / len(gold),
        "count": len(gold),
        "unanswered": len(set(gold) - set(predictions)),
    }
