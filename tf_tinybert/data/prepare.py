"""prepare: text rows (files or tensorflow-datasets) to tokenised, sharded TFRecords."""

from __future__ import annotations

import contextlib
import math
import os

import keras

from tf_tinybert.choices import TASK_TYPES
from tf_tinybert.data import features
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.manifest import MAX_LISTED_SKIPS, Manifest, write_manifest, write_vocabulary
from tf_tinybert.data.readers import BadRowError, Row, open_source
from tf_tinybert.data.shards import ShardWriter, claim_output_dir
from tf_tinybert.tokenizers import load_tokenizer, tokenizer_identity

__all__ = ["prepare"]


class _SkipLog:
    """Raises bad rows, or (with skip) counts them and keeps the first few for the manifest."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.count = 0
        self.examples: list[dict] = []

    def __call__(self, error: BadRowError) -> None:
        if not self.skip:
            raise error
        self.count += 1
        if len(self.examples) < MAX_LISTED_SKIPS:
            self.examples.append({"where": error.where, "reason": error.reason})


def _label_sort_key(name: str):
    try:
        return (0, int(name), "")
    except ValueError:
        return (1, 0, name)


def _infer_label_names(source) -> list[str]:
    names = {str(item.label) for item in source.rows() if isinstance(item, Row)}
    return sorted(names, key=_label_sort_key)


def _parse_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = labels.split(",")
    names = [str(name).strip() for name in labels]
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"Expected distinct, non-empty label names. Received: labels={labels!r}")
    return names


def _count_lines(path: str) -> int:
    """Physical lines, a last line without its newline included."""
    count, last = 0, b"\n"
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            count, last = count + block.count(b"\n"), block[-1:]
    return count + (last != b"\n")


def _label_value(row: Row, task: str, label_index: dict, column: str | None
                 ) -> int | float | None | BadRowError:
    if task == "unlabeled":
        return None
    where = f" in column {column!r}" if column else ""
    if task == "regression":
        try:
            value = float(row.label)
        except (TypeError, ValueError):
            return BadRowError(row.where, f"label {row.label!r}{where} is not a number; expected "
                                          "a number such as 3.8 (regression task)")
        if not math.isfinite(value):
            return BadRowError(row.where, f"label {row.label!r}{where} is not a finite number")
        return value
    name = str(row.label)
    if name not in label_index:
        return BadRowError(row.where, f"unknown label {name!r}{where}; expected one of "
                                      f"{list(label_index)}")
    return label_index[name]


def _write_chunk(chunk, encoder, writer, skips) -> None:
    texts = [row.text for row, _ in chunk]
    pairs = [row.text_pair for row, _ in chunk] if chunk[0][0].text_pair is not None else None
    token_ids, segment_ids, lengths, pieces = encoder(texts, pairs)
    for index, (row, label) in enumerate(chunk):
        if pieces[index, 0] == 0 or (pairs is not None and pieces[index, 1] == 0):
            skips(BadRowError(row.where, "text has no word pieces after tokenisation"))
            continue
        length = lengths[index]
        writer.write(features.encode_example(
            token_ids[index, :length].tolist(), segment_ids[index, :length].tolist(),
            label=label, text=row.text, text_pair=row.text_pair,
        ))


def _is_corpus(input, format) -> bool:
    if format is not None:
        return format == "text"
    path = os.fspath(input)
    return os.path.isdir(path) or os.path.splitext(path)[1].lower() == ".txt"


def prepare(
    input: str | os.PathLike,
    tokenizer,
    output: str | os.PathLike,
    format: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
    labels=None,
    task: str | None = None,
    max_sequence_length: int = 128,
    shard_size: int = 10000,
    unlabeled: bool = False,
    skip_bad_rows: bool = False,
    overwrite: bool = False,
    split: str = "train",
    data_dir: str | None = None,
    header: bool = True,
    column_names=None,
    batch_size: int = 1024,
    verbose: int = 1,
) -> Manifest:
    """Tokenises a text source into sharded TFRecords with a `manifest.json`.

    Args:
        input: a `.tsv`, `.csv`, `.jsonl` or `.txt` file, or a tensorflow-datasets name
            such as `"glue/sst2"` (downloaded on first use). With `unlabeled=True`, a plain
            text corpus (a file or a folder of files) streams through
            `tf_tinybert.data.corpus.prepare_corpus`: lines packed into sequences, long
            lines split, never dropped.
        tokenizer: a preset name, a keras-hub or Hugging Face folder, or a `BertTokenizer`
            (see `tf_tinybert.tokenizers.load_tokenizer`).
        output: the directory to write; must not hold a data set unless `overwrite`.
        format: "tsv", "csv", "jsonl", "text" (one passage per line, unlabeled) or "tfds";
            inferred from the extension by default.
        text_column, text_pair_column: columns (keys) of the text and of the optional
            second text. Default "sentence", or the task's own columns for GLUE in tfds.
        label_column: the label column; ignored when `unlabeled`.
        labels: class names in label-id order (a list or "neg,pos"); by default the
            distinct labels of the file, sorted (numerically where they are integers), or
            the names tfds gives.
        task: "classification" or "regression"; default classification (regression for a
            float tfds label such as glue/stsb). `unlabeled=True` makes it "unlabeled".
        max_sequence_length: rows are cut to this many ids, `[CLS]`/`[SEP]` included.
        shard_size: records per `*.tfrecord` file.
        unlabeled: rows have no label (general distillation corpora).
        skip_bad_rows: go on past malformed rows, counting them (the manifest lists the
            first ten) instead of stopping at the first.
        overwrite: replace a data set already in `output`.
        split, data_dir: the tfds split and data directory.
        header: whether the first line of a TSV/CSV file names its columns. GLUE's CoLA
            files have none: pass `header=False` and `column_names`.
        column_names: the columns of a TSV/CSV file in order (a list or "a,b,c"); needed
            without a header, and with one they replace the header's names.
        batch_size: rows tokenised per call.
        verbose: 1 shows a progress bar, 0 is silent.

    Returns:
        The `Manifest` written to `output/manifest.json` (with `output/vocab.txt` beside it).

    Raises:
        BadRowError: (a ValueError) `file:line: reason` for a malformed row, unless
            `skip_bad_rows`.
        ValueError: for a bad argument, a missing file or column, or no row at all.
        On any error `output` is left as it was found: shards written so far are removed,
        and so is the folder when this call created it.

    Example:
    ```python
    import tf_tinybert as tt

    manifest = tt.data.prepare("train.tsv", "path/to/teacher_folder", "runs/sst2_train")
    manifest.num_examples

    # GLUE CoLA: no header line, the label values 0 and 1.
    tt.data.prepare("cola/train.tsv", "path/to/teacher_folder", "runs/cola_train",
                    header=False, column_names="source,label,original_label,sentence",
                    labels="0,1")
    ```
    """
    if unlabeled and _is_corpus(input, format):
        # Plain text streams through the corpus packer: consecutive lines packed into
        # sequences, long lines split rather than cut (see `tf_tinybert.data.corpus`).
        from tf_tinybert.data.corpus import prepare_corpus

        return prepare_corpus(input, tokenizer, output, max_sequence_length=max_sequence_length,
                              shard_size=shard_size, overwrite=overwrite, verbose=verbose)
    if task is not None and task not in TASK_TYPES:
        raise ValueError(
            f"Expected `task` to be 'classification' or 'regression'. Received: task={task!r}"
        )
    label_names = _parse_labels(labels)
    if unlabeled and label_names:
        raise ValueError("`labels` were given with unlabeled=True; drop one of them")
    source = open_source(
        input, format=format, text_column=text_column, text_pair_column=text_pair_column,
        label_column=label_column, unlabeled=unlabeled, split=split, data_dir=data_dir,
        header=header, column_names=column_names,
    )
    has_pair = bool(source.description.get("text_pair_column"))
    minimum = 5 if has_pair else 3
    if int(max_sequence_length) < minimum:
        raise ValueError(
            f"Expected `max_sequence_length` >= {minimum} (special tokens plus text). "
            f"Received: max_sequence_length={max_sequence_length}"
        )
    task = "unlabeled" if unlabeled else (task or source.task_hint or "classification")
    if task == "classification":
        label_names = label_names or source.label_names or _infer_label_names(source)
    else:
        label_names = []
    label_index = {name: index for index, name in enumerate(label_names)}

    tokenizer = load_tokenizer(tokenizer)
    encoder = Encoder(tokenizer, max_sequence_length)
    label_column = source.description.get("label_column")
    created = not os.path.exists(output)
    directory = claim_output_dir(output, overwrite)
    writer = ShardWriter(directory, shard_size)
    skips = _SkipLog(skip_bad_rows)
    size = source.size
    if size is None and "path" in source.description:
        size = _count_lines(source.description["path"])
        size -= bool(source.description.get("header"))  # the header line of a TSV/CSV
    progress = keras.utils.Progbar(size or None, verbose=verbose, unit_name="row")
    try:
        chunk, seen = [], 0
        for item in source.rows():
            seen += 1
            if isinstance(item, Row):
                label = _label_value(item, task, label_index, label_column)
                if isinstance(label, BadRowError):
                    item = label
                else:
                    chunk.append((item, label))
            if isinstance(item, BadRowError):
                skips(item)
            if len(chunk) == batch_size:
                _write_chunk(chunk, encoder, writer, skips)
                chunk = []
                progress.update(seen)
        if chunk:
            _write_chunk(chunk, encoder, writer, skips)
        shards = writer.close()
        if not shards:
            raise ValueError(f"{input}: no rows to write ({skips.count} skipped as malformed)")
        progress.update(seen, finalize=True)
        manifest = Manifest(
            task=task,
            label_names=tuple(label_names),
            sequence_length=int(max_sequence_length),
            tokenizer=tokenizer_identity(tokenizer),
            shards=tuple(shards),
            source=source.description,
            skipped_rows=skips.count,
            skipped_examples=tuple(skips.examples),
            has_text_pair=has_pair,
        )
        write_vocabulary(directory, tokenizer)
        write_manifest(directory, manifest)
    except BaseException:
        writer.abort()
        if created:
            with contextlib.suppress(OSError):  # only when empty: never remove others' files
                os.rmdir(directory)
        raise
    return manifest
