"""`manifest.json`: what a prepared data directory holds, written last and atomically.

A directory without a manifest is not a data set: `load` refuses it, so an interrupted
`prepare` never passes for a finished one.

Example:
```python
from tf_tinybert.data import read_manifest

manifest = read_manifest("runs/sst2_train")
manifest.num_examples, manifest.label_names, manifest.sequence_length
```

Beside it, `vocab.txt` holds the tokenizer's vocabulary, so that a directory names (and
`read_tokenizer` rebuilds) the exact tokenizer its ids came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from tf_tinybert.choices import DATA_TASKS
from tf_tinybert.runtime.contract import VOCAB_FILE

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
MAX_LISTED_SKIPS = 10


@dataclasses.dataclass(frozen=True)
class Shard:
    """One `*.tfrecord` file: its name inside the directory, record count, size, sha256."""

    file: str
    examples: int
    bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The description of a prepared data directory (see `manifest.json`).

    Attributes:
        task: "classification", "regression" or "unlabeled".
        label_names: class names, index = label id (empty unless classification).
        sequence_length: the longest row, special tokens included, rows were cut to.
        tokenizer: `tf_tinybert.tokenizers.tokenizer_identity` of the tokenizer used.
        shards: the `Shard`s, in order.
        source: where the rows came from (path and sha256, or tfds name and split).
        skipped_rows: rows left out by `skip_bad_rows=True`.
        skipped_examples: the first ten of them, as {"where": "file:line", "reason": ...}.
        has_text_pair: whether rows are sentence pairs.
        teacher_logits: None, or {"num_classes": C, "teacher": name, "teacher_weights":
            fingerprint} after `cache_teacher` (`tf_tinybert.fingerprints`).
        augmentation: None, or the settings `augment` used.
    """

    task: str
    label_names: tuple
    sequence_length: int
    tokenizer: dict
    shards: tuple
    source: dict
    skipped_rows: int = 0
    skipped_examples: tuple = ()
    has_text_pair: bool = False
    teacher_logits: dict | None = None
    augmentation: dict | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.task not in DATA_TASKS:
            raise ValueError(f"Expected `task` to be one of {DATA_TASKS}. Received: task={self.task!r}")

    @property
    def num_examples(self) -> int:
        return sum(shard.examples for shard in self.shards)

    @property
    def num_classes(self) -> int:
        """Classes for classification, 1 for regression, 0 when unlabeled."""
        return {"classification": len(self.label_names), "regression": 1}.get(self.task, 0)

    @property
    def labeled(self) -> bool:
        return self.task != "unlabeled"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["num_examples"] = self.num_examples
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = MANIFEST_NAME) -> Manifest:
        """Builds a manifest from parsed JSON; a missing or unknown key names `where`."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object. Received: {type(data).__name__}")
        data = dict(data)
        data.pop("num_examples", None)
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; expected keys among {sorted(fields)}")
        required = [
            name for name, field in fields.items()
            if field.default is dataclasses.MISSING and name not in data
        ]
        if required:
            raise ValueError(f"{where}: missing key(s) {required}")
        if data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(
                f"{where}: format_version {data['format_version']!r} is not supported; "
                f"expected {FORMAT_VERSION}"
            )
        try:
            shards = tuple(Shard(**shard) for shard in data["shards"])
        except TypeError as error:
            raise ValueError(f"{where}: malformed 'shards' entry ({error})") from None
        data["shards"] = shards
        data["label_names"] = tuple(data["label_names"])
        data["skipped_examples"] = tuple(data.get("skipped_examples", ()))
        return cls(**data)


def write_manifest(directory: str, manifest: Manifest) -> str:
    """Writes `directory/manifest.json` atomically; returns its path."""
    path = os.path.join(directory, MANIFEST_NAME)
    temporary = os.path.join(directory, f".{MANIFEST_NAME}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(manifest.to_dict(), file, indent=2, ensure_ascii=False)
        file.write("\n")
    os.replace(temporary, path)
    return path


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """Reads and validates a prepared directory's `manifest.json`.

    Raises:
        ValueError: naming the file, when it is missing, not JSON, or has unknown or
            missing keys.

    Example:
    ```python
    read_manifest("runs/sst2_train").num_examples
    ```
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.isdir(directory):
        raise ValueError(f"{directory}: data directory not found")
    if not os.path.exists(path):
        raise ValueError(
            f"{path}: no manifest. A prepared directory gets its manifest last, so this one "
            "is unfinished (an interrupted run?) or not a data set; run `prepare` again."
        )
    with open(path, encoding="utf-8") as file:
        try:
            data = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    return Manifest.from_dict(data, where=path)


def file_sha256(path: str) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_vocabulary(directory: str, tokenizer) -> str:
    """Writes the tokenizer's vocabulary, one token per line, atomically; returns the path."""
    path = os.path.join(directory, VOCAB_FILE)
    temporary = os.path.join(directory, f".{VOCAB_FILE}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as file:
        file.writelines(f"{token}\n" for token in tokenizer.get_vocabulary())
    os.replace(temporary, path)
    return path


def read_tokenizer(directory: str | os.PathLike):
    """The keras-hub `BertTokenizer` a prepared directory was tokenised with.

    Built from the directory's `vocab.txt` and the casing the manifest records; its
    vocabulary hash is checked against the manifest.

    Example:
    ```python
    tokenizer = read_tokenizer("runs/sst2_train")
    ```
    """
    import keras_hub

    from tf_tinybert.tokenizers import vocabulary_hash

    directory = os.fspath(directory)
    identity = read_manifest(directory).tokenizer
    path = os.path.join(directory, VOCAB_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{path}: missing; pass the tokenizer explicitly")
    with open(path, encoding="utf-8") as file:
        vocabulary = [line.rstrip("\n") for line in file]
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, lowercase=identity.get("lowercase", False),
        strip_accents=identity.get("strip_accents", False),
    )
    if vocabulary_hash(tokenizer) != identity.get("vocabulary_hash"):
        raise ValueError(f"{path}: vocabulary does not match the hash in {MANIFEST_NAME}")
    return tokenizer
