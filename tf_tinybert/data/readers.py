"""Row readers for TSV, CSV, JSONL, plain-text corpora and tensorflow-datasets (GLUE).

A reader yields `Row`s and, for a malformed row, a `BadRowError` *value* (not raised),
so that the caller decides whether to stop or to skip it. Problems with the whole source
(missing file, header without the asked column) are raised as `ValueError` by
`open_source` itself, before any row is read.
Line numbers are 1-based physical lines; the header, where there is one, is line 1.

GLUE's files have quirks that real users' files share, and the readers take them as GLUE's
own scripts do: TSV fields are read with quoting off (a `"` is an ordinary character), a
UTF-8 byte-order mark before the first line is dropped (MRPC), and a file without a header
(CoLA) is read with `header=False` and the `column_names` given in order.

Example:
```python
from tf_tinybert.data.readers import open_source

source = open_source("train.tsv", text_column="sentence", label_column="label")
for row in source.rows():
    print(row.where, row.text, row.label)

# GLUE CoLA: no header; four columns.
cola = open_source("cola/train.tsv", header=False,
                   column_names=["source", "label", "original_label", "sentence"])
```
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence

from tf_tinybert.choices import INPUT_FORMATS, TABLE_FORMATS
from tf_tinybert.data.manifest import file_sha256

FORMATS = INPUT_FORMATS
_BOM = b"\xef\xbb\xbf"
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
    header: bool = True,
    column_names: Sequence[str] | None = None,
) -> Source:
    """Opens a row source; see the module docstring.

    `text_column` defaults to "sentence" for files and to the task's own columns for GLUE
    in tfds (`GLUE_COLUMNS`); `label_column` is ignored when `unlabeled`. For TSV and CSV
    files, `header=False` reads every line as a row and needs `column_names`; with a header,
    `column_names` (as many as the header has) replace the header's names. The columns
    asked for are checked here, so a file that lacks one fails before any row is read.

    Example:
    ```python
    source = open_source("mrpc/train.tsv", text_column="#1 String",
                         text_pair_column="#2 String", label_column="Quality")
    next(source.rows()).label  # '1'
    ```
    """
    source = os.fspath(source)
    format = format or infer_format(source)
    if format not in FORMATS:
        raise ValueError(f"Expected `format` to be one of {FORMATS}. Received: format={format!r}")
    label_column = None if unlabeled else label_column
    column_names = _check_column_names(source, format, header, column_names)
    if format == "tfds":
        return _tfds_source(source, split, data_dir, text_column, text_pair_column, label_column)
    if not os.path.isfile(source):
        raise ValueError(f"{source}: input file not found")
    text_column = text_column or "sentence"
    columns = (text_column, text_pair_column, label_column)
    if format == "text":
        if not unlabeled:
            raise ValueError(f"{source}: plain-text corpora have no labels; pass unlabeled=True")

        def rows():
            return _text_rows(source)
    elif format == "jsonl":
        def rows():
            return _jsonl_rows(source, *columns)
    else:
        names = _table_columns(source, format, header, column_names)
        if header and not column_names:
            _check_columns(f"{source}:1: header", names, *columns, hint=_NO_HEADER_HINT)
        else:
            _check_columns(f"{source}: column_names", names, *columns)
        read = _tsv_rows if format == "tsv" else _csv_rows

        def rows():
            return read(source, names, header, *columns)

    description = {
        "path": os.path.abspath(source), "format": format, "sha256": file_sha256(source),
        "text_column": None if format == "text" else text_column,
        "text_pair_column": text_pair_column, "label_column": label_column,
    }
    if format in TABLE_FORMATS:
        description["header"] = header
        if column_names:
            description["column_names"] = list(column_names)
    return Source(rows=rows, description=description)


def _check_column_names(source, format, header, column_names) -> tuple[str, ...] | None:
    if column_names is None:
        if not header:
            raise ValueError(
                f"{source}: a file without a header (header=False) needs column_names, the "
                "names of its columns in order (e.g. CoLA: source,label,original_label,sentence)"
            )
        return None
    if isinstance(column_names, str):
        column_names = column_names.split(",")
    names = tuple(str(name).strip() for name in column_names)
    if not names or not all(names) or len(set(names)) != len(names):
        raise ValueError(
            f"Expected distinct, non-empty column names. Received: column_names={column_names!r}"
        )
    if format not in TABLE_FORMATS:
        raise ValueError(
            f"{source}: header and column_names apply to {TABLE_FORMATS} files only. "
            f"Received: format={format!r}, column_names={list(names)}"
        )
    return names


def _table_columns(path, format, header, column_names) -> list[str]:
    """The column names of a TSV/CSV file: its header line, or `column_names`."""
    if not header:
        return list(column_names)
    with open(path, "rb") as file:
        first = file.readline()
    if not first:
        raise ValueError(f"{path}: empty file, expected a header line")
    line = _decode(_strip_bom(first).rstrip(b"\r\n"), f"{path}:1")
    if isinstance(line, BadRowError):
        raise ValueError(f"{path}:1: invalid UTF-8 in the header")
    if format == "tsv":
        found = line.split("\t")
    else:
        try:
            found = next(csv.reader([line]), [])
        except csv.Error as error:
            raise ValueError(f"{path}:1: malformed CSV header ({error})") from None
    if column_names and len(column_names) != len(found):
        raise ValueError(
            f"{path}:1: the header has {len(found)} columns but column_names names "
            f"{len(column_names)}: {list(column_names)}. Header: {found}"
        )
    return list(column_names or found)


def _check_columns(where: str, names, text_column, text_pair_column, label_column,
                   hint: str = "") -> None:
    """Raise `where has no ... column` when a column asked for is not among `names`."""
    for role, column in (("text", text_column), ("text pair", text_pair_column),
                         ("label", label_column)):
        if column and column not in names:
            raise ValueError(
                f"{where} has no {role} column {column!r}. Received columns: {list(names)}.{hint}"
            )


_NO_HEADER_HINT = (" If the file has no header line (as GLUE's CoLA), read it with header=False "
                   "and column_names (`prepare --no-header --column-names a,b,c`; "
                   "`files.header: false` in a task config).")


def _decode(raw: bytes, where: str) -> str | BadRowError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return BadRowError(where, f"invalid UTF-8 at byte {error.start} of the line")


def decoded_lines(path: str) -> Iterator[tuple[str, str | BadRowError]]:
    """Each line as ("file:line", its text), or a BadRowError where it is not UTF-8.

    Shared by every line-based reader (tables, plain text, CoNLL columns).

    Example:
    ```python
    for where, line in decoded_lines("train.txt"): ...
    ```
    """
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"{path}:{number}"
            if number == 1:
                raw = _strip_bom(raw)
            yield where, _decode(raw.rstrip(b"\r\n"), where)


def json_object_lines(path: str) -> Iterator[tuple[str, dict | BadRowError]]:
    """Each non-blank line of a JSONL file as ("file:line", its JSON object), or a BadRowError
    where the line is not UTF-8, not JSON, or not an object.

    Shared by the JSONL readers (texts and labels, tagged sentences).

    Example:
    ```python
    for where, record in json_object_lines("train.jsonl"): ...
    ```
    """
    for where, line in decoded_lines(path):
        if isinstance(line, BadRowError):
            yield where, line
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            yield where, BadRowError(where, f"invalid JSON ({str(error).splitlines()[0]})")
            continue
        if not isinstance(record, dict):
            yield where, BadRowError(
                where, f"expected a JSON object, received a {type(record).__name__}")
            continue
        yield where, record


def _strip_bom(raw: bytes) -> bytes:
    # Windows tools (and GLUE's MRPC files) start UTF-8 text with a byte-order mark.
    return raw[len(_BOM):] if raw.startswith(_BOM) else raw


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


def _tsv_rows(path, names, header, text_column, text_pair_column, label_column):
    # GLUE TSVs are unquoted: a field is everything between tabs, quote characters included
    # (GLUE's own scripts read them with quoting off).
    expected = "as in the header" if header else "as in column_names"
    lines = decoded_lines(path)
    if header:
        next(lines, None)
    for where, line in lines:
        if isinstance(line, BadRowError):
            yield line
            continue
        fields = line.split("\t")
        if len(fields) != len(names):
            yield BadRowError(where, f"{len(fields)} columns, expected {len(names)} {expected}")
            continue
        yield _make_row(where, dict(zip(names, fields)), text_column, text_pair_column, label_column)


def _has_undecodable(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _csv_rows(path, names, header, text_column, text_pair_column, label_column):
    expected = "as in the header" if header else "as in column_names"
    with open(path, "rb") as file:
        # surrogateescape keeps the csv module going over bad bytes; rows holding them are reported.
        lines = ((_strip_bom(raw) if number == 0 else raw).decode("utf-8", "surrogateescape")
                 for number, raw in enumerate(file))
        reader = csv.reader(lines)
        if header:
            try:
                next(reader, None)
            except csv.Error:  # _table_columns read this line already and found it whole
                return
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
                yield BadRowError(where, f"empty line, expected {len(names)} columns")
            elif any(_has_undecodable(field) for field in fields):
                yield BadRowError(where, "invalid UTF-8")
            elif len(fields) != len(names):
                yield BadRowError(where, f"{len(fields)} columns, expected {len(names)} {expected}")
            else:
                yield _make_row(where, dict(zip(names, fields)), text_column, text_pair_column,
                                label_column)


def _jsonl_rows(path, text_column, text_pair_column, label_column):
    for where, record in json_object_lines(path):
        if isinstance(record, BadRowError):
            yield record
            continue
        if text_column not in record:
            yield BadRowError(where, f"no key {text_column!r}; keys: {sorted(record)[:10]}")
            continue
        label = record.get(label_column) if label_column else None
        if isinstance(label, bool):
            record = {**record, label_column: str(label).lower()}
        yield _make_row(where, record, text_column, text_pair_column, label_column)


def _text_rows(path):
    # A corpus for general distillation: one passage per line; blank lines separate documents.
    for where, line in decoded_lines(path):
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
    _check_columns(f"tfds:{name}: features", keys, text_column, text_pair_column, label_column)
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


def drop_bad_rows(items, skip_bad_rows: bool, skipped: list) -> Iterator:
    """The items that are not `BadRowError`s. The first bad row is raised, unless
    `skip_bad_rows`: then each is appended to `skipped` (for the caller to count and list).

    Example:
    ```python
    skipped = []
    sentences = list(drop_bad_rows(read_conll("train.txt"), True, skipped))
    print(len(skipped), [str(error) for error in skipped[:5]])
    ```
    """
    for item in items:
        if isinstance(item, BadRowError):
            if not skip_bad_rows:
                raise item
            skipped.append(item)
        else:
            yield item
