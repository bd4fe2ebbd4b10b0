"""Row readers for TSV, CSV, JSONL, plain-text corpora and tensorflow-datasets (GLUE).

A reader yields `Row`s and, for a malformed row, a `BadRowError` *value* (not raised),
so that the caller decides whether to stop or to skip it. Problems with the whole source
(missing file, header without the asked column) are raised as `ValueError`.
Line numbers are 1-based physical lines; the header is line 1.

Example:
```python
from tf_tinybert.data.readers import open_source

source = open_source("train.tsv", text_column="sentence", label_column="label")
for row in source.rows():
    print(row.where, row.text, row.label)
```
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator

from tf_tinybert.choices import INPUT_FORMATS
from tf_tinybert.data.manifest import file_sha256

FORMATS = INPUT_FORMATS
_EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "text"}

# Default (text, text pair) feature names of the GLUE tasks in tensorflow-datasets.
GLUE_COLUMNS = {
    "cola": ("sentence", None),
    "sst2": ("sentence", None),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
    "ax": ("premise", "hypothesis"),
}


class BadRowError(ValueError):
    """A malformed input row: `str(error)` is `file:line: reason`."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Row:
    """One input row. `label` is the raw value (str, int or float); None when unlabeled."""

    where: str
    text: str
    text_pair: str | None = None
    label: object = None


@dataclasses.dataclass
class Source:
    """A re-iterable row source with what the manifest records about it."""

    rows: Callable[[], Iterator[Row | BadRowError]]
    description: dict
    label_names: list | None = None  # known up front (tfds ClassLabel), else None
    task_hint: str | None = None  # "regression" when tfds says the label is a float
    size: int | None = None  # rows expected, for the progress bar


def infer_format(source: str) -> str:
    """The reader for a path by its extension; a name like "glue/sst2" that is not a file is tfds."""
    extension = os.path.splitext(source)[1].lower()
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if not os.path.exists(source) and "/" in source and not source.startswith((".", "/")):
        return "tfds"
    raise ValueError(
        f"{source}: cannot tell the input format from the name. Pass format= one of "
        f"{FORMATS} (extensions: {sorted(_EXTENSIONS)})."
    )


def open_source(
    source: str | os.PathLike,
    format: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = "label",
    unlabeled: bool = False,
    split: str = "train",
    data_dir: str | None = None,
) -> Source:
    """Opens a row source; see the module docstring.

    `text_column` defaults to "sentence" for files and to the task's own columns for GLUE
    in tfds (`GLUE_COLUMNS`); `label_column` is ignored when `unlabeled`.
    """
    source = os.fspath(source)
    format = format or infer_format(source)
    if format not in FORMATS:
        raise ValueError(f"Expected `format` to be one of {FORMATS}. Received: format={format!r}")
    label_column = None if unlabeled else label_column
    if format == "tfds":
        return _tfds_source(source, split, data_dir, text_column, text_pair_column, label_column)
    if not os.path.isfile(source):
        raise ValueError(f"{source}: input file not found")
    text_column = text_column or "sentence"
    if format == "text":
        if not unlabeled:
            raise ValueError(f"{source}: plain-text corpora have no labels; pass unlabeled=True")
        read = _text_rows
    else:
        read = {"tsv": _tsv_rows, "csv": _csv_rows, "jsonl": _jsonl_rows}[format]

    def rows():
        return read(source, text_column, text_pair_column, label_column)

    description = {
        "path": os.path.abspath(source), "format": format, "sha256": file_sha256(source),
        "text_column": None if format == "text" else text_column,
        "text_pair_column": text_pair_column, "label_column": label_column,
    }
    return Source(rows=rows, description=description)


def _decode(raw: bytes, where: str) -> str | BadRowError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return BadRowError(where, f"invalid UTF-8 at byte {error.start} of the line")


def _decoded_lines(path: str) -> Iterator[tuple[str, str | BadRowError]]:
    """Each line as ("file:line", its text), or a BadRowError where it is not UTF-8."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"{path}:{number}"
            yield where, _decode(raw.rstrip(b"\r\n"), where)


def _check_text(where: str, text, column: str) -> str | BadRowError:
    if text is None:
        return BadRowError(where, f"missing text in column {column!r}")
    if not isinstance(text, str):
        return BadRowError(where, f"text in column {column!r} is a {type(text).__name__}, expected a string")
    if not text.strip():
        return BadRowError(where, f"empty text in column {column!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return BadRowError(where, f"invalid UTF-8 (or a lone surrogate) in column {column!r}")
    return text


def _make_row(where, record: dict, text_column, text_pair_column, label_column) -> Row | BadRowError:
    """A Row from a mapping of column -> value, or the first thing wrong with it."""
    text = _check_text(where, record.get(text_column), text_column)
    if isinstance(text, BadRowError):
        return text
    text_pair = None
    if text_pair_column:
        text_pair = _check_text(where, record.get(text_pair_column), text_pair_column)
        if isinstance(text_pair, BadRowError):
            return text_pair
    label = None
    if label_column:
        label = record.get(label_column)
        if label is None or (isinstance(label, str) and not label.strip()):
            return BadRowError(where, f"missing label in column {label_column!r}")
        if isinstance(label, float) and not math.isfinite(label):
            return BadRowError(where, f"label {label!r} is not a finite number")
        if not isinstance(label, (str, int, float)):
            return BadRowError(where, f"label is a {type(label).__name__}, expected a string or number")
        if isinstance(label, str):
            label = label.strip()
    return Row(where=where, text=text, text_pair=text_pair, label=label)


def _header_columns(path, header, text_column, text_pair_column, label_column) -> None:
    for role, column in (("text", text_column), ("text pair", text_pair_column), ("label", label_column)):
        if column and column not in header:
            raise ValueError(
                f"{path}:1: header has no {role} column {column!r}. Received columns: {header}"
            )


def _tsv_rows(path, text_column, text_pair_column, label_column):
    # GLUE TSVs are unquoted: a field is everything between tabs.
    lines = _decoded_lines(path)
    first = next(lines, None)
    if first is None:
        raise ValueError(f"{path}: empty file, expected a header line")
    header = first[1]
    if isinstance(header, BadRowError):
        raise header
    header = header.split("\t")
    _header_columns(path, header, text_column, text_pair_column, label_column)
    for where, line in lines:
        if isinstance(line, BadRowError):
            yield line
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            yield BadRowError(where, f"{len(fields)} columns, expected {len(header)} as in the header")
            continue
        yield _make_row(where, dict(zip(header, fields)), text_column, text_pair_column, label_column)


def _has_undecodable(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _csv_rows(path, text_column, text_pair_column, label_column):
    with open(path, "rb") as file:
        # surrogateescape keeps the csv module going over bad bytes; rows holding them are reported.
        lines = (raw.decode("utf-8", "surrogateescape") for raw in file)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise ValueError(f"{path}:1: malformed CSV header ({error})") from None
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header line")
        if any(_has_undecodable(column) for column in header):
            raise ValueError(f"{path}:1: invalid UTF-8 in the header")
        _header_columns(path, header, text_column, text_pair_column, label_column)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield BadRowError(f"{path}:{start}", f"malformed CSV ({error})")
                continue
            where = f"{path}:{start}"
            if not fields:  # csv yields [] for a blank line
                yield BadRowError(where, f"empty line, expected {len(header)} columns")
            elif any(_has_undecodable(field) for field in fields):
                yield BadRowError(where, "invalid UTF-8")
            elif len(fields) != len(header):
                yield BadRowError(where, f"{len(fields)} columns, expected {len(header)} as in the header")
            else:
                yield _make_row(where, dict(zip(header, fields)), text_column, text_pair_column, label_column)


def _jsonl_rows(path, text_column, text_pair_column, label_column):
    for where, line in _decoded_lines(path):
        if isinstance(line, BadRowError):
            yield line
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            yield BadRowError(where, f"invalid JSON ({str(error).splitlines()[0]})")
            continue
        if not isinstance(record, dict):
            yield BadRowError(where, f"expected a JSON object, received a {type(record).__name__}")
            continue
        if text_column not in record:
            yield BadRowError(where, f"no key {text_column!r}; keys: {sorted(record)[:10]}")
            continue
        label = record.get(label_column) if label_column else None
        if isinstance(label, bool):
            record = {**record, label_column: str(label).lower()}
        yield _make_row(where, record, text_column, text_pair_column, label_column)


def _text_rows(path, text_column, text_pair_column, label_column):
    # A corpus for general distillation: one passage per line; blank lines separate documents.
    for where, line in _decoded_lines(path):
        if isinstance(line, BadRowError):
            yield line
        elif line.strip():
            yield Row(where=where, text=line)


def _tfds_load(name: str, split: str, data_dir: str | None):
    """`tfds.load` with its info (downloads on first use: needs the network)."""
    import tensorflow_datasets as tfds

    return tfds.load(name, split=split, with_info=True, data_dir=data_dir, shuffle_files=False)


def _tfds_source(name, split, data_dir, text_column, text_pair_column, label_column) -> Source:
    task = name.split("/")[-1].split(":")[0]
    if text_column is None:
        text_column, default_pair = GLUE_COLUMNS.get(task, ("sentence", None))
        text_pair_column = text_pair_column or default_pair
    dataset, info = _tfds_load(name, split, data_dir)
    keys = sorted(info.features.keys())
    _header_columns(f"tfds:{name}", keys, text_column, text_pair_column, label_column)
    label_names, task_hint = None, None
    if label_column:
        label_feature = info.features[label_column]
        if hasattr(label_feature, "names"):
            label_names = list(label_feature.names)
        elif getattr(label_feature, "dtype", None) is not None and "float" in str(label_feature.dtype):
            task_hint = "regression"
    try:
        size = int(info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError, AttributeError):  # e.g. a sliced split "train[:10%]"
        size = None

    def rows():
        for index, example in enumerate(dataset.as_numpy_iterator()):
            where = f"{name}[{split}]#{index}"
            record = {}
            bad = None
            for column in (text_column, text_pair_column):
                if column:
                    value = example[column]
                    value = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
                    if isinstance(value, str) and _has_undecodable(value):
                        bad = BadRowError(where, f"invalid UTF-8 in {column!r}")
                    record[column] = value
            if bad is not None:
                yield bad
                continue
            if label_column:
                label = example[label_column].item()
                if label_names is not None:
                    if not 0 <= label < len(label_names):
                        yield BadRowError(where, f"missing label (value {label}; test splits have none)")
                        continue
                    label = label_names[label]
                record[label_column] = label
            yield _make_row(where, record, text_column, text_pair_column, label_column)

    description = {
        "tfds": name, "split": split, "version": str(getattr(info, "version", "")),
        "text_column": text_column, "text_pair_column": text_pair_column,
        "label_column": label_column,
    }
    return Source(rows=rows, description=description, label_names=label_names,
                  task_hint=task_hint, size=size)
