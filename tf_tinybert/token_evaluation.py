"""Scoring per-token models on prepared data: entity F1 for taggers, SQuAD EM/F1 for spans.

Example:
```python
from tf_tinybert import token_evaluation
from tf_tinybert.data.token_records import load_token_records

dev = load_token_records(["runs/ner/dev/data.tfrecord"], "token_classification", 64, 128)
token_evaluation.evaluate_tagger(student, dev, LABELS)["f1"]
```
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tf_tinybert import ner_metrics, squad_metrics
from tf_tinybert.data.features import EXAMPLE_ID, MODEL_INPUTS, TOKEN_ENDS, TOKEN_STARTS
from tf_tinybert.runtime.spans import MAX_ANSWER_LENGTH, answers_by_example
from tf_tinybert.token_models import END, START


def evaluate_tagger(model, dataset, label_names: Sequence[str]) -> dict:
    """`ner_metrics.entity_scores` of the model's tags on a `(features, tag_ids)` dataset.

    Each window counts as one sentence (a sentence longer than the model's input spans
    several windows).

    Example:
    ```python
    evaluate_tagger(tagger, dev_dataset, ["O", "B-PER", "I-PER"])["f1"]
    ```
    """
    gold, predicted = [], []
    for features, labels in dataset:
        logits = model({k: features[k] for k in MODEL_INPUTS}, training=False)
        batch_gold, batch_predicted = ner_metrics.tags_from_ids(
            np.asarray(labels), keras.ops.convert_to_numpy(logits), label_names)
        gold += batch_gold
        predicted += batch_predicted
    return ner_metrics.entity_scores(gold, predicted)


def predict_answers(model, dataset, contexts: dict,
                    max_answer_length: int = MAX_ANSWER_LENGTH) -> dict:
    """Question id -> best `Answer` over its windows, from a dataset loaded `with_offsets`.

    Example:
    ```python
    answers = predict_answers(extractor, dev_dataset, {e.question_id: e.context for e in examples})
    ```
    """
    ids, starts, ends, token_starts, token_ends = [], [], [], [], []
    for features, _ in dataset:
        logits = keras.ops.convert_to_numpy(
            model({k: features[k] for k in MODEL_INPUTS}, training=False))
        starts.append(logits[..., START])
        ends.append(logits[..., END])
        token_starts.append(np.asarray(features[TOKEN_STARTS]))
        token_ends.append(np.asarray(features[TOKEN_ENDS]))
        ids += list(np.asarray(features[EXAMPLE_ID]))
    return answers_by_example(contexts, ids, np.concatenate(starts), np.concatenate(ends),
                              np.concatenate(token_starts), np.concatenate(token_ends),
                              max_answer_length)


def evaluate_extractor(model, dataset, examples, max_answer_length: int = MAX_ANSWER_LENGTH
                       ) -> dict:
    """SQuAD exact match and F1 (fractions) of the model's answers to `examples`
    (`data.squad.SquadExample`s, all of whose answers are gold).

    Example:
    ```python
    evaluate_extractor(extractor, dev_dataset, list(read_squad("dev.json")))["f1"]
    ```
    """
    examples = list(examples)
    answers = predict_answers(model, dataset, {e.question_id: e.context for e in examples},
                              max_answer_length)
    gold = {e.question_id: [text for text, _ in e.answers] for e in examples}
    return squad_metrics.squad_scores({k: a.text for k, a in answers.items()}, gold)
