"""`prepare` for the per-token task shapes: CoNLL/JSONL tags or SQuAD JSON -> a TFRecord folder.

The folder holds `data.tfrecord` (`token_records`' layout) and `summary.json`: the task,
the source file (`source`, an absolute path: SQuAD scoring reads its contexts back), the
counts (sentences or questions, windows), the tags, the sequence length, the
tokenizer's identity and the skipped rows. A malformed row stops the run with its
`file:line` (or JSON path) and reason, unless `skip_bad_rows`: then it is counted and the
first `MAX_LISTED_SKIPS` are listed.

Example:
```python
from tf_tinybert.data.prepare_tokens import prepare_squad, prepare_tagging

prepare_tagging("conll2003/train.txt", tokenizer, "runs/ner/train", label_names=LABELS)
prepare_squad("squad/train.json", tokenizer, "runs/qa/train", sequence_length=384, stride=128)
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from tf_tinybert.atomic import write_text
from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION
from tf_tinybert.data import squad, tagging, token_records
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.readers import BadRowError, drop_bad_rows
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer
from tf_tinybert.tokenizers import load_tokenizer, tokenizer_identity

DATA_FILE = "data.tfrecord"
SUMMARY_FILE = "summary.json"
MAX_LISTED_SKIPS = 20
_CHUNK = 512  # sentences tokenised per TensorFlow call


def _summary(output, task, tokenizer, sequence_length, skipped, **counts) -> dict:
    summary = {
        "task": task,
        "sequence_length": int(sequence_length),
        **counts,
        "skipped_rows": len(skipped),
        "skipped_examples": [{"where": e.where, "reason": e.reason}
                             for e in skipped[:MAX_LISTED_SKIPS]],
        "tokenizer": tokenizer_identity(tokenizer),
    }
    write_text(os.path.join(output, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def prepare_tagging(
    input: str, tokenizer, output: str, label_names: Sequence[str], sequence_length: int = 128,
    format: str | None = None, tag_column: int = -1, skip_bad_rows: bool = False,
) -> dict:
    """Tag windows of a CoNLL (`.txt`, `.conll`) or JSONL (`.jsonl`) file; returns the summary.

    Example:
    ```python
    prepare_tagging("valid.txt", "path/to/teacher", "runs/ner/valid", label_names=LABELS)
    ```
    """
    tokenizer = load_tokenizer(tokenizer)
    format = format or ("jsonl" if input.endswith(".jsonl") else "conll")
    if format == "conll":
        items = tagging.read_conll(input, tag_column=tag_column, label_names=label_names)
    elif format == "jsonl":
        items = tagging.read_tagged_jsonl(input, label_names=label_names)
    else:
        raise ValueError(f"Expected `format` 'conll' or 'jsonl'. Received: format={format!r}")
    encoder = Encoder(tokenizer, sequence_length)
    skipped: list[BadRowError] = []
    counts = {"sentences": 0, "words": 0, "windows": 0}

    def records():
        chunk = []
        for sentence in drop_bad_rows(items, skip_bad_rows, skipped):
            chunk.append(sentence)
            if len(chunk) == _CHUNK:
                yield from encode(chunk)
                chunk = []
        if chunk:
            yield from encode(chunk)
        if not counts["sentences"]:
            raise ValueError(f"{input}: no sentences to write ({len(skipped)} skipped as malformed)")

    def encode(chunk):
        for sentence, windows in zip(chunk, tagging.sentence_windows(chunk, encoder, label_names)):
            counts["sentences"] += 1
            counts["words"] += len(sentence.tokens)
            counts["windows"] += len(windows)
            for window in windows:
                yield token_records.tagging_record(window)

    token_records.write_records(os.path.join(output, DATA_FILE), records())
    return _summary(output, TOKEN_CLASSIFICATION, tokenizer, sequence_length, skipped,
                    labels=list(label_names), source=os.path.abspath(input), **counts)


def prepare_squad(
    input: str, tokenizer, output: str, sequence_length: int = 384, stride: int = 128,
    skip_bad_rows: bool = False, with_answers: bool = True,
) -> dict:
    """Question + context windows of a SQuAD v1.1 JSON file; returns the summary.

    With `with_answers=False` the answers are not read (a transfer set): every window's
    positions are `squad.UNLABELED`, and the summary says `"labeled": false`.

    Example:
    ```python
    prepare_squad("dev.json", "path/to/teacher", "runs/qa/dev", sequence_length=384)
    ```
    """
    tokenizer = load_tokenizer(tokenizer)
    runtime = WordpieceTokenizer(list(tokenizer.get_vocabulary()), lowercase=tokenizer.lowercase,
                                 strip_accents=tokenizer.strip_accents)
    encoder = Encoder(tokenizer, sequence_length)
    skipped: list[BadRowError] = []
    counts = {"questions": 0, "windows": 0, "windows_with_answer": 0}

    def windows_of():
        for example in drop_bad_rows(squad.read_squad(input), skip_bad_rows, skipped):
            windows = squad.question_windows(example, encoder, runtime, stride, with_answers)
            yield windows if isinstance(windows, BadRowError) else (example, windows)

    def records():
        for example, windows in drop_bad_rows(windows_of(), skip_bad_rows, skipped):
            counts["questions"] += 1
            counts["windows"] += len(windows)
            counts["windows_with_answer"] += sum(1 for w in windows if w.start_position > 0)
            for window in windows:
                yield token_records.span_record(window, example.question_id)
        if not counts["questions"]:
            raise ValueError(f"{input}: no questions to write ({len(skipped)} skipped as malformed)")

    token_records.write_records(os.path.join(output, DATA_FILE), records())
    return _summary(output, QUESTION_ANSWERING, tokenizer, sequence_length, skipped,
                    stride=int(stride), source=os.path.abspath(input), labeled=with_answers,
                    **counts)
