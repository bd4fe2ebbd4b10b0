"""Scores of an exported classifier in MediaPipe's TextClassifier next to tf_tinybert.runtime.

Classifies every sentence of an SST-2-style TSV (header `sentence<TAB>label`) with
MediaPipe's Python `TextClassifier` and with `tf_tinybert.runtime.TextClassifier`, and prints
how often their top-1 labels agree, the largest score difference, the accuracy of each
against the labels (label 0 = the model's first class, 1 = the second) and up to 10
disagreements with both score vectors.

MediaPipe's BERT tokenizer lower-cases but keeps accents ("café" -> [UNK]), while an uncased
training tokenizer removes them; the figures are therefore printed twice: with the text fed
to MediaPipe as is, and with accents removed first (NFD, then non-spacing marks dropped), as
the mobile samples in export/ do. tf_tinybert.runtime always gets the text as is.

    .venv/bin/python benchmarks/mediapipe_parity.py --model export/model.tflite \
        [--data ../shared/data/sst2/dev.tsv] [--limit N] [--num-threads N]

A benchmark: it prints figures and exits 0, also when it cannot run (the reason is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tf_tinybert.runtime.wordpiece import remove_accents  # noqa: E402

# ../shared/data beside the checkout (data for benchmarks; never part of the project).
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                            "shared", "data", "sst2", "dev.tsv")
MAX_LISTED = 10


@dataclass(frozen=True, eq=False)
class Parity:
    """How MediaPipe's scores compare with tf_tinybert.runtime's on one set of sentences.

    `mediapipe_scores` and `runtime_scores` are [N, C] probabilities in class-index order;
    `disagreements` holds the row numbers whose top-1 class differs (all of them).
    """

    sentences: int
    same_top1: int
    max_abs_diff: float
    mediapipe_accuracy: float
    runtime_accuracy: float
    disagreements: tuple[int, ...]
    mediapipe_scores: np.ndarray
    runtime_scores: np.ndarray


def read_labeled_tsv(path: str, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """Sentences and int labels of a `sentence<TAB>label` TSV with a header line.

    Example:
    ```python
    texts, labels = read_labeled_tsv(DEFAULT_DATA, limit=20)
    ```
    """
    texts, labels = [], []
    with open(path, encoding="utf-8") as file:
        header = file.readline().rstrip("\r\n").split("\t")
        if header[:1] != ["sentence"] or header[-1:] != ["label"]:
            raise ValueError(
                f"{path}, line 1: expected the header 'sentence<TAB>label'. Received: {header!r}"
            )
        for number, line in enumerate(file, start=2):
            if limit is not None and len(texts) >= limit:
                break
            line = line.rstrip("\r\n")
            if not line:
                continue
            sentence, tab, label = line.rpartition("\t")
            if not tab or not label.strip().lstrip("-").isdigit():
                raise ValueError(
                    f"{path}, line {number}: expected 'sentence<TAB>integer label'. "
                    f"Received: {line[:80]!r}"
                )
            texts.append(sentence)
            labels.append(int(label))
    return texts, np.asarray(labels, dtype=np.int64)


def strip_accents(text: str) -> str:
    """The text with accents removed as the export/ mobile samples do (NFD, drop Mn)."""
    return remove_accents(text)


def open_mediapipe(model_path: str):
    """MediaPipe's Python TextClassifier on the model (a context manager; close it after use)."""
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=model_path)
    )
    return text_classifier.TextClassifier.create_from_options(options)


def mediapipe_scores(classifier, texts: Sequence[str], num_classes: int) -> np.ndarray:
    """[N, C] probabilities from a MediaPipe TextClassifier, in class-index order."""
    scores = np.full((len(texts), num_classes), np.nan, dtype=np.float64)
    for row, text in enumerate(texts):
        head = classifier.classify(text).classifications[0]
        for category in head.categories:
            scores[row, category.index] = category.score
    return scores


def runtime_scores(classifier, texts: Sequence[str]) -> np.ndarray:
    """[N, C] probabilities from a tf_tinybert.runtime.TextClassifier, in class-index order."""
    return np.stack([classifier.probabilities(text) for text in texts]).astype(np.float64)


def compare(theirs: np.ndarray, ours: np.ndarray, labels: np.ndarray) -> Parity:
    """Top-1 agreement, largest score difference and accuracies of two [N, C] score arrays."""
    their_top, our_top = theirs.argmax(axis=1), ours.argmax(axis=1)
    same = their_top == our_top
    # A class MediaPipe left out (NaN) counts as a difference that never passes a tolerance.
    diff = np.abs(theirs - ours)
    max_diff = float(np.inf if np.isnan(diff).any() else diff.max(initial=0.0))
    count = len(labels)
    return Parity(
        sentences=count,
        same_top1=int(same.sum()),
        max_abs_diff=max_diff,
        mediapipe_accuracy=float((their_top == labels).mean()) if count else float("nan"),
        runtime_accuracy=float((our_top == labels).mean()) if count else float("nan"),
        disagreements=tuple(int(row) for row in np.flatnonzero(~same)),
        mediapipe_scores=theirs,
        runtime_scores=ours,
    )


def _format_scores(scores: np.ndarray) -> str:
    return "[" + " ".join(f"{value:.4f}" for value in scores) + "]"


def format_parity(title: str, parity: Parity, texts: Sequence[str], class_names) -> str:
    """The printed block for one comparison."""
    lines = [
        f"== {title}",
        f"sentences:                 {parity.sentences}",
        f"same top-1 label:          {parity.same_top1} / {parity.sentences}",
        f"max |score difference|:    {parity.max_abs_diff:.3g}",
        f"accuracy, MediaPipe:       {parity.mediapipe_accuracy:.4f}",
        f"accuracy, tf_tinybert:     {parity.runtime_accuracy:.4f}",
    ]
    if parity.disagreements:
        shown = parity.disagreements[:MAX_LISTED]
        lines.append(
            f"disagreements ({len(shown)} of {len(parity.disagreements)}; scores in class "
            f"order {list(class_names)}):"
        )
        for row in shown:
            lines.append(f"  sentence {row + 1}: {texts[row].strip()[:100]!r}")
            lines.append(f"    MediaPipe    {_format_scores(parity.mediapipe_scores[row])}")
            lines.append(f"    tf_tinybert  {_format_scores(parity.runtime_scores[row])}")
    else:
        lines.append("disagreements: none")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an exported model.tflite")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help=f"TSV with header sentence<TAB>label (default {DEFAULT_DATA})")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--num-threads", type=int, default=None,
                        help="LiteRT threads for tf_tinybert.runtime (default: LiteRT's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Parity]:
    """Runs the comparison, prints it, and returns {"as_is": ..., "accents_stripped": ...}.

    Example:
    ```python
    figures = main(["--model", "export/model.tflite", "--limit", "20"])
    print(figures["accents_stripped"].max_abs_diff)
    ```
    """
    from tf_tinybert.runtime import TextClassifier

    args = parse_args(argv)
    texts, labels = read_labeled_tsv(args.data, args.limit)
    classifier = TextClassifier(args.model, num_threads=args.num_threads)
    num_classes = len(classifier.labels)
    print(f"model: {args.model} ({num_classes} classes {classifier.labels}, sequence length "
          f"{classifier.sequence_length}, tokenizer lowercase={classifier.tokenizer.lowercase} "
          f"strip_accents={classifier.tokenizer.strip_accents})")
    print(f"data:  {args.data} ({len(texts)} sentences)")

    start = time.perf_counter()
    ours = runtime_scores(classifier, texts)
    runtime_seconds = time.perf_counter() - start
    stripped = [strip_accents(text) for text in texts]
    changed = [row for row, (a, b) in enumerate(zip(texts, stripped)) if a != b]
    with open_mediapipe(args.model) as mediapipe:
        start = time.perf_counter()
        theirs = mediapipe_scores(mediapipe, texts, num_classes)
        mediapipe_seconds = time.perf_counter() - start
        theirs_stripped = theirs.copy()
        if changed:
            theirs_stripped[changed] = mediapipe_scores(
                mediapipe, [stripped[row] for row in changed], num_classes
            )
    per_sentence = 1000.0 / max(len(texts), 1)
    print(f"time:  tf_tinybert {runtime_seconds * per_sentence:.2f} ms/sentence, MediaPipe "
          f"{mediapipe_seconds * per_sentence:.2f} ms/sentence")

    figures = {
        "as_is": compare(theirs, ours, labels),
        "accents_stripped": compare(theirs_stripped, ours, labels),
    }
    print()
    print(format_parity("MediaPipe given the text as is", figures["as_is"], texts,
                        classifier.labels))
    print()
    print(format_parity(f"MediaPipe given the text with accents removed ({len(changed)} "
                        "sentences changed)", figures["accents_stripped"], stripped,
                        classifier.labels))
    return figures


def cli(argv: Sequence[str] | None = None) -> int:
    """The script's entry point: prints the figures; returns 0, or 1 when there are none."""
    try:
        main(argv)
    except Exception:  # report the failure, then exit non-zero so callers see it
        traceback.print_exc()
        print("mediapipe_parity: no figures (see the error above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
