"""Entity-level precision, recall and F1 (CoNLL-2003's metric), as conlleval computes them.

An entity counts as found only where a predicted chunk has exactly the start, end and type
of a gold chunk (`tf_tinybert.runtime.tags.entity_chunks` reads the chunks, IOB1, IOB2 and
IOBES alike). Micro scores pool the counts of every type; per-type scores count each type
alone. Precision is 0 with no predicted chunk, recall 0 with no gold chunk, F1 0 where
either is 0 (conlleval and seqeval do the same).

Example:
```python
from tf_tinybert import ner_metrics

scores = ner_metrics.entity_scores(
    [["B-PER", "I-PER", "O", "B-LOC"]],   # gold, one list per sentence
    [["B-PER", "I-PER", "O", "B-ORG"]],   # predicted
)
scores["f1"]                 # 0.5
scores["per_type"]["PER"]    # {'precision': 1.0, 'recall': 1.0, 'f1': 1.0, 'support': 1}
```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from tf_tinybert.runtime.tags import entity_chunks


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _scores(correct: int, predicted: int, gold: int) -> dict:
    precision = _ratio(correct, predicted)
    recall = _ratio(correct, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 of exact entity chunks over sentences, and the same per type.

    Args:
        gold: the gold tags, one sequence of tag strings per sentence.
        predicted: the predicted tags, the same shape as `gold`.

    Returns a dict with `precision`, `recall`, `f1`, `support` (gold chunks), `predicted`
    (predicted chunks), `correct`, and `per_type`: type -> precision/recall/f1/support, for
    every type seen in gold or predictions, sorted by name.

    Example:
    ```python
    entity_scores([["B-MISC", "I-MISC"]], [["I-MISC", "I-MISC"]])["f1"]  # 1.0
    ```
    """
    if len(gold) != len(predicted):
        raise ValueError(
            f"Expected as many predicted sentences as gold sentences. Received: {len(gold)} "
            f"gold, {len(predicted)} predicted."
        )
    gold_counts: Counter = Counter()
    predicted_counts: Counter = Counter()
    correct_counts: Counter = Counter()
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"Sentence {index}: expected as many predicted tags as gold tags. Received: "
                f"{len(gold_tags)} gold, {len(predicted_tags)} predicted."
            )
        gold_chunks = set(entity_chunks(gold_tags))
        predicted_chunks = set(entity_chunks(predicted_tags))
        gold_counts.update(chunk[0] for chunk in gold_chunks)
        predicted_counts.update(chunk[0] for chunk in predicted_chunks)
        correct_counts.update(chunk[0] for chunk in gold_chunks & predicted_chunks)
    correct, found, expected = (sum(c.values()) for c in
                                (correct_counts, predicted_counts, gold_counts))
    result = _scores(correct, found, expected)
    result.update(predicted=found, correct=correct)
    result["per_type"] = {
        entity_type: _scores(correct_counts[entity_type], predicted_counts[entity_type],
                             gold_counts[entity_type])
        for entity_type in sorted(set(gold_counts) | set(predicted_counts))
    }
    return result


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (conlleval's overall FB1, as a fraction).

    Example:
    ```python
    entity_f1([["B-PER", "O"]], [["B-PER", "B-PER"]])  # precision 1/2, recall 1 -> 0.666...
    ```
    """
    return entity_scores(gold, predicted)["f1"]


def tags_from_ids(label_ids, predictions, label_names: Sequence[str],
                  ignore_index: int = -100) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tag strings of the positions whose label is not `ignore_index`.

    `label_ids` is `[N, L]` (word-piece rows, -100 on pieces that carry no tag), and
    `predictions` `[N, L]` tag ids or `[N, L, C]` scores (argmax taken). Rows come back as
    sentences of the tagged positions only, ready for `entity_scores`.

    Example:
    ```python
    gold, predicted = tags_from_ids([[-100, 1, -100, 0]], [[0, 1, 1, 0]], ["O", "B-PER"])
    # gold [['B-PER', 'O']], predicted [['B-PER', 'O']]
    ```
    """
    label_ids = np.asarray(label_ids)
    predictions = np.asarray(predictions)
    if predictions.ndim == label_ids.ndim + 1:
        predictions = predictions.argmax(axis=-1)
    if predictions.shape != label_ids.shape:
        raise ValueError(
            f"Expected predictions [N, L] or [N, L, C] matching labels [N, L]. Received: "
            f"predictions {predictions.shape}, labels {label_ids.shape}."
        )
    names = list(label_names)
    gold, predicted = [], []
    for row_labels, row_predictions in zip(label_ids, predictions):
        keep = row_labels != ignore_index
        gold.append([names[i] for i in row_labels[keep]])
        predicted.append([names[i] for i in row_predictions[keep]])
    return gold, predicted
