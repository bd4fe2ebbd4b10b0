"""augment_squad: TinyBERT augmentation of a SQuAD v1.1 file: questions rewritten, contexts kept.

Extractive answers live in the context, so rewriting the question (each word replaced with
probability `p` by one of its candidates, as `tf_tinybert.data.augment` does for sentences)
leaves every answer's text and `answer_start` where they were. The output is a SQuAD file
again: each paragraph holds its original questions (with `keep_original`) followed by the
rewritten copies, whose ids are `<id>@aug<k>`; `prepare_squad` windows it like any other.
The settings are recorded in the file under `AUGMENTATION_KEY`, which SQuAD readers ignore.

Example:
```python
from tf_tinybert.data.augment_squad import augment_squad
from tf_tinybert.teachers import load_augmentation_teacher

augment_squad("squad/train.json", "runs/qa/train_augmented.json",
              teacher=load_augmentation_teacher("minilm-l6-offline"),
              tokenizer="minilm-l6-offline", copies=4, seed=0)
```
"""

from __future__ import annotations

import json
import os

import keras

from tf_tinybert.atomic import write_text
from tf_tinybert.data.augment import build_augmenter
from tf_tinybert.data.readers import drop_bad_rows
from tf_tinybert.data.squad import read_squad
from tf_tinybert.tokenizers import load_tokenizer

__all__ = ["AUGMENTATION_KEY", "augment_squad", "augmentation_of"]

AUGMENTATION_KEY = "tf_tinybert_augmentation"


def augmentation_of(path) -> dict | None:
    """The settings `augment_squad` recorded in a file, or None (no such file or record).

    Example:
    ```python
    augmentation_of("runs/qa/data/train_augmented.json")["copies"]  # 4
    ```
    """
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file).get(AUGMENTATION_KEY)
    except (OSError, ValueError, AttributeError):
        return None


def augment_squad(
    input: str | os.PathLike,
    output: str | os.PathLike,
    teacher,
    tokenizer,
    copies: int = 20,
    p: float = 0.4,
    candidates: int = 15,
    seed: int = 0,
    keep_original: bool = True,
    skip_bad_rows: bool = False,
    sequence_length: int = 128,
    batch_size: int = 256,
    verbose: int = 1,
) -> dict:
    """Write `output`: the SQuAD file `input` with up to `copies` rewritten copies of each
    question (see the module docstring); return the settings and counts it records.

    A malformed question stops with its JSON path, as in `prepare_squad`; with
    `skip_bad_rows` it is left out of the output and counted. `output` is written under a
    temporary name and renamed, so a crash leaves no half-written file.

    Args:
        input: a SQuAD v1.1 JSON file.
        output: the JSON file to write.
        teacher: the candidates' source, as for `augment` (a loaded keras-hub BERT model).
        tokenizer: its WordPiece tokenizer (a loaded one, or a source `load_tokenizer` reads).
        copies, p, candidates, seed: as for `augment` (the paper's 20, 0.4, 15).
        keep_original: write each original question before its copies.
        skip_bad_rows: leave malformed questions out instead of stopping.
        sequence_length: the longest question, in word pieces, the masked LM sees.
        batch_size: questions augmented at a time.
        verbose: 1 for a progress bar.

    Returns:
        `{"copies", "p", "candidates", "seed", "keep_original", "teacher",
        "teacher_weights", "method", "source", "questions", "written", "skipped"}`.

    Example:
    ```python
    settings = augment_squad("train.json", "train_augmented.json", teacher, tokenizer,
                             copies=4)
    settings["written"]  # originals plus the distinct copies
    ```
    """
    tokenizer = load_tokenizer(tokenizer)
    augmenter = build_augmenter(teacher, tokenizer, sequence_length, copies=copies, p=p,
                                candidates=candidates, seed=seed, where=os.fspath(input))
    skipped: list = []
    examples = list(drop_bad_rows(read_squad(os.fspath(input)), skip_bad_rows, skipped))
    if not examples:
        raise ValueError(f"{input}: no questions to augment ({len(skipped)} skipped as malformed)")
    # Paragraphs in file order, by the JSON path of their questions.
    paragraphs: dict[str, dict] = {}
    progress = keras.utils.Progbar(len(examples), verbose=verbose, unit_name="question")
    written = 0
    for begin in range(0, len(examples), batch_size):
        batch = examples[begin:begin + batch_size]
        rewrites = augmenter([example.question for example in batch])
        for example, questions in zip(batch, rewrites):
            place = example.where.rsplit(".qas", 1)[0]
            paragraph = paragraphs.setdefault(place, {"context": example.context, "qas": []})
            answers = [{"text": text, "answer_start": start} for text, start in example.answers]
            if keep_original:
                paragraph["qas"].append({"id": example.question_id, "question": example.question,
                                         "answers": answers})
            for k, question in enumerate(questions, start=1):
                paragraph["qas"].append({"id": f"{example.question_id}@aug{k}",
                                         "question": question, "answers": answers})
            written += int(keep_original) + len(questions)
        progress.add(len(batch))
    if not written:
        raise ValueError(f"{input}: nothing to write (copies=0 and keep_original=False)")
    articles: dict[str, list] = {}
    for place, paragraph in paragraphs.items():
        articles.setdefault(place.rsplit(".paragraphs", 1)[0], []).append(paragraph)
    settings = {
        "copies": int(copies), "p": float(p), "candidates": int(candidates), "seed": seed,
        "keep_original": bool(keep_original), **augmenter.describe(),
        "source": os.path.abspath(os.fspath(input)), "questions": len(examples),
        "written": written, "skipped": len(skipped),
    }
    document = {"version": "1.1", AUGMENTATION_KEY: settings,
                "data": [{"title": place.rsplit(":", 1)[-1], "paragraphs": group}
                         for place, group in articles.items()]}
    write_text(output, json.dumps(document, ensure_ascii=False))
    return settings
