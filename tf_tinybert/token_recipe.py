"""The recipe's per-token task shapes: NER tagging and SQuAD answer spans, end to end.

`tf_tinybert.recipe.run_recipe` hands a task whose `task_type` is in `TOKEN_TASK_TYPES` to
`run_token_recipe`, which runs the same stages as for sentence classification, in the same
run folder layout and through the same training machinery (`tf_tinybert.stage`: resumable,
logged, keeping the best model by the task's metric): data, teacher, intermediate,
prediction, baseline, export, report. What differs between the two shapes is looked up in
`TOKEN_SHAPES`, one `TokenShape` per task type: how a file is subset and prepared, the model
class, the distiller, how a model is scored and how it is exported.

Report keys: `<model>.<metric>` for teacher, student, student_int8 (when int8 is exported)
and baseline, with the task's metrics as fractions (f1, precision, recall and `per_type` for
NER; f1 and exact_match for QA); `<who>.tflite.<mode>` as for classification.

Example:
```python
from tf_tinybert.config import load_recipe
from tf_tinybert.recipe import run_recipe

report = run_recipe(load_recipe("configs/recipes/conll2003_minilm.yaml"))
report["student"]["f1"], report["student_int8"]["per_type"]["PER"]["f1"]
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import random
from collections.abc import Callable

import keras

from tf_tinybert import token_evaluation
from tf_tinybert.atomic import save_model, write_bytes, write_text
from tf_tinybert.choices import QUESTION_ANSWERING, TOKEN_CLASSIFICATION, TOKEN_TASK_TYPES
from tf_tinybert.data import prepare_tokens, squad
from tf_tinybert.data.augment_squad import augment_squad, augmentation_of
from tf_tinybert.data.readers import BadRowError, drop_bad_rows
from tf_tinybert.data.token_records import load_token_records
from tf_tinybert.export.token_export import TfliteTokenModel, export_token_model
from tf_tinybert.fingerprints import weights_fingerprint
from tf_tinybert.keras_hub_bert import bert_backbone
from tf_tinybert.models import student_from_teacher, teacher_layers_for
from tf_tinybert.runtime.contract import MODEL_FILE
from tf_tinybert.stage import distill, train_on_labels
from tf_tinybert.teachers import load_backbone, resolve_source
from tf_tinybert.token_distiller import TokenDistiller
from tf_tinybert.token_models import TOKEN_MODELS, build_token_model, token_model_for

SHUFFLE_BUFFER = 10_000
EVAL_BATCH_SIZE = 64

# ----------------------------------------------------------------------------- file subsets


def _write_if_changed(target: pathlib.Path, data: bytes) -> pathlib.Path:
    # An unchanged subset keeps its file (and so its prepared folder) from the last run.
    if not (target.is_file() and target.read_bytes() == data):
        write_bytes(target, data)
    return target


def _chosen(count: int, total: int, seed: int) -> list[int]:
    """`count` of `range(total)` by a seeded shuffle, in file order."""
    order = list(range(total))
    random.Random(seed).shuffle(order)
    return sorted(order[:count])


def subset_conll(source: pathlib.Path, target: pathlib.Path, count: int, seed: int
                 ) -> pathlib.Path:
    """Write `count` sentences of a CoNLL file (seeded choice, file order kept) to `target`.

    `-DOCSTART-` lines are dropped; sentences are blocks of lines between blank lines.

    Example:
    ```python
    subset_conll(Path("train.txt"), Path("runs/ner/data/train_subset.txt"), 2000, seed=0)
    ```
    """
    blocks, block = [], []
    for line in source.read_text(encoding="utf-8-sig").splitlines():
        if not line.strip() or line.split()[0] == "-DOCSTART-":
            if block:
                blocks.append(block)
            block = []
        else:
            block.append(line)
    if block:
        blocks.append(block)
    kept = [blocks[i] for i in _chosen(count, len(blocks), seed)]
    return _write_if_changed(target, "".join("\n".join(b) + "\n\n" for b in kept).encode("utf-8"))


def subset_jsonl(source: pathlib.Path, target: pathlib.Path, count: int, seed: int
                 ) -> pathlib.Path:
    """Write `count` non-blank lines of a JSONL file (seeded choice, file order kept).

    Example:
    ```python
    subset_jsonl(Path("train.jsonl"), Path("runs/ner/data/train_subset.jsonl"), 500, seed=0)
    ```
    """
    lines = [line for line in source.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    kept = [lines[i] for i in _chosen(count, len(lines), seed)]
    return _write_if_changed(target, "".join(line + "\n" for line in kept).encode("utf-8"))


def subset_squad(source: pathlib.Path, target: pathlib.Path, count: int, seed: int
                 ) -> pathlib.Path:
    """Write `count` questions of a SQuAD JSON file (seeded choice), with their contexts.

    Paragraphs and articles left without questions are dropped; everything else is kept as
    it is, so the reader checks the subset as it would the whole file.

    Example:
    ```python
    subset_squad(Path("train.json"), Path("runs/qa/data/train_subset.json"), 1000, seed=0)
    ```
    """
    document, places = squad.question_places(source)
    kept = set(places[i] for i in _chosen(count, len(places), seed))
    chosen = squad.with_questions(document, lambda place, qa: qa if place in kept else None)
    return _write_if_changed(target, json.dumps(chosen, ensure_ascii=False).encode("utf-8"))


def transfer_squad(source: pathlib.Path, target: pathlib.Path, training: pathlib.Path,
                   count: int | None, seed: int) -> pathlib.Path:
    """Write the transfer set of a QA recipe: the questions of `source` whose id is not a
    question of `training` (seeded choice of `count`, None: all), answers removed.

    Example:
    ```python
    transfer_squad(Path("train.json"), Path("runs/qa/data/transfer.json"),
                   Path("runs/qa/data/train_subset.json"), 5000, seed=0)
    ```
    """
    trained = {qa.get("id") for qa in _questions(*squad.question_places(training))}
    document, places = squad.question_places(source)
    candidates = [place for place, qa in zip(places, _questions(document, places))
                  if qa.get("id") not in trained]
    chosen = set(candidates[i] for i in _chosen(count or len(candidates), len(candidates), seed))
    if not chosen:
        raise ValueError(f"{source}: no transfer questions: every one of its {len(places)} "
                         f"questions is a training question (same id in {training})")
    transfer = squad.with_questions(
        document, lambda place, qa: {**qa, "answers": []} if place in chosen else None)
    return _write_if_changed(target, json.dumps(transfer, ensure_ascii=False).encode("utf-8"))


def _questions(document: dict, places) -> list[dict]:
    # Each question of a SQuAD document as a dict (an empty one where it is not: read_squad
    # says what is wrong with it when the file is prepared).
    questions = [document["data"][a]["paragraphs"][p]["qas"][q] for a, p, q in places]
    return [qa if isinstance(qa, dict) else {} for qa in questions]


# ----------------------------------------------------------------------------- the shapes


def _prepare_tags(input, tokenizer, output, task, sequence_length, skip_bad_rows) -> dict:
    return prepare_tokens.prepare_tagging(
        str(input), tokenizer, str(output), label_names=list(task.tags),
        sequence_length=sequence_length, format=task.files.format,
        tag_column=task.files.tag_column, skip_bad_rows=skip_bad_rows)


def _prepare_spans(input, tokenizer, output, task, sequence_length, skip_bad_rows) -> dict:
    return prepare_tokens.prepare_squad(
        str(input), tokenizer, str(output), sequence_length=sequence_length,
        stride=task.doc_stride, skip_bad_rows=skip_bad_rows)


def _subset_tags(source, target, count, seed):
    subset = subset_jsonl if source.suffix == ".jsonl" else subset_conll
    return subset(source, target, count, seed)


def _tag_evaluator(summary: dict, max_answer_length: int):
    labels = list(summary["labels"])
    return lambda model, dataset: token_evaluation.evaluate_tagger(model, dataset, labels)


def _span_evaluator(summary: dict, max_answer_length: int):
    # The questions the folder was prepared from (bad rows were skipped there, or stopped it).
    examples = list(drop_bad_rows(squad.read_squad(summary["source"]), True, []))
    return lambda model, dataset: token_evaluation.evaluate_extractor(
        model, dataset, examples, max_answer_length)


def _tag_summary(scores: dict) -> dict:
    keep = ("f1", "precision", "recall", "support", "per_type")
    return {key: scores[key] for key in keep if key in scores}


def _span_summary(scores: dict) -> dict:
    return {key: scores[key] for key in ("f1", "exact_match", "count", "unanswered")}


@dataclasses.dataclass(frozen=True)
class TokenShape:
    """What one token task shape plugs into the recipe and the CLI.

    Attributes:
        subset: `(source, target, count, seed) -> target`: a seeded subset of a data file.
        prepare: `(input, tokenizer, output, task, sequence_length, skip_bad_rows) ->
            summary`: a file into a prepared folder (`tf_tinybert.data.prepare_tokens`).
        model_class: the Keras model of the shape (`tf_tinybert.token_models`).
        distiller: the distiller class of its intermediate and prediction stages.
        evaluator: `(summary, max_answer_length) -> evaluate(model, dataset) -> scores`,
            from a prepared dev folder's summary.json.
        summarize: the scores kept in the report.
        exporter: the TFLite exporter (`export_token_model`).
        with_offsets: whether scoring needs the dev windows' character offsets.
    """

    subset: Callable
    prepare: Callable
    model_class: type
    distiller: type
    evaluator: Callable
    summarize: Callable
    exporter: Callable = export_token_model
    with_offsets: bool = False


TOKEN_SHAPES = {
    TOKEN_CLASSIFICATION: TokenShape(
        subset=_subset_tags, prepare=_prepare_tags, model_class=TOKEN_MODELS[TOKEN_CLASSIFICATION],
        distiller=TokenDistiller, evaluator=_tag_evaluator, summarize=_tag_summary),
    QUESTION_ANSWERING: TokenShape(
        subset=subset_squad, prepare=_prepare_spans, model_class=TOKEN_MODELS[QUESTION_ANSWERING],
        distiller=TokenDistiller, evaluator=_span_evaluator, summarize=_span_summary,
        with_offsets=True),
}


# ----------------------------------------------------------------------------- prepared data


def read_summary(folder) -> dict:
    """The summary.json of a folder written by `prepare_tagging` / `prepare_squad`.

    Example:
    ```python
    read_summary("runs/ner/data/dev")["task"]  # 'token_classification'
    ```
    """
    path = pathlib.Path(folder) / prepare_tokens.SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a folder prepared for a "
                                "token task (tf-tinybert prepare --format conll|squad).")
    return json.loads(path.read_text(encoding="utf-8"))


def token_task_of(folder) -> str | None:
    """The token task a prepared folder holds, or None for a sentence-task folder.

    Example:
    ```python
    token_task_of("runs/qa/data/train")  # 'question_answering'
    ```
    """
    path = pathlib.Path(folder) / prepare_tokens.SUMMARY_FILE
    if not path.is_file():
        return None
    task = json.loads(path.read_text(encoding="utf-8")).get("task")
    return task if task in TOKEN_TASK_TYPES else None


def load_token_data(folder, batch_size: int, training: bool, seed: int = 0,
                    sequence_length: int | None = None):
    """Batches of a prepared token folder: shuffled for training; for scoring, in order and
    with the offsets that answer decoding needs. A list of folders of one task (training
    windows and a transfer set, say) is read as one data set, its folders mixed at random
    in proportion to their windows.

    Example:
    ```python
    dev_ds = load_token_data("runs/qa/data/dev", 64, training=False)
    train_ds = load_token_data(["runs/qa/data/train", "runs/qa/data/transfer"], 16, True)
    ```
    """
    folders = [folder] if isinstance(folder, (str, os.PathLike)) else list(folder)
    summaries = [read_summary(f) for f in folders]
    task = summaries[0]["task"]
    if any(summary["task"] != task for summary in summaries):
        raise ValueError("Expected folders of one task. Received: " + ", ".join(
            f"{f} ({summary['task']})" for f, summary in zip(folders, summaries)))
    shape = TOKEN_SHAPES[task]
    counts = [summary["windows"] for summary in summaries]
    return load_token_records(
        [str(pathlib.Path(f) / prepare_tokens.DATA_FILE) for f in folders], task, batch_size,
        sequence_length or summaries[0]["sequence_length"],
        with_offsets=shape.with_offsets and not training,
        shuffle_buffer=SHUFFLE_BUFFER if training else 0, seed=seed,
        weights=counts if len(folders) > 1 else None)


def token_evaluator(folder, max_answer_length: int = 30):
    """`evaluate(model, dataset) -> scores` for the dev data prepared in `folder`: entity
    F1 (with precision, recall and per type) for tags, SQuAD EM and F1 for answer spans.

    Example:
    ```python
    evaluate = token_evaluator("runs/ner/data/dev")
    evaluate(tagger, load_token_data("runs/ner/data/dev", 64, training=False))["f1"]
    ```
    """
    summary = read_summary(folder)
    return TOKEN_SHAPES[summary["task"]].evaluator(summary, max_answer_length)


def summarize_scores(task: str, scores: dict) -> dict:
    """The scores of a token task kept in reports (drops bookkeeping such as chunk counts).

    Example:
    ```python
    summarize_scores("question_answering", scores)  # {'f1': ..., 'exact_match': ..., ...}
    ```
    """
    return TOKEN_SHAPES[task].summarize(scores)


# ----------------------------------------------------------------------------- models


def load_token_teacher(source: str, task: str, num_classes: int | None = None):
    """A teacher for a token task: a saved model of the task as it is, or a new per-token
    head on the BERT backbone of any teacher source (`tf_tinybert.teachers.load_backbone`).

    Example:
    ```python
    teacher = load_token_teacher("minilm-l6-offline", "token_classification", num_classes=9)
    ```
    """
    path = resolve_source(source)
    model_class = TOKEN_SHAPES[task].model_class
    if path.endswith(".keras"):
        model = keras.saving.load_model(path, compile=False)
        if isinstance(model, model_class) and (num_classes is None
                                               or model.num_classes == num_classes):
            return model
        backbone = bert_backbone(model, "teacher")
    else:
        backbone = load_backbone(path)
    return token_model_for(backbone, task, num_classes)


def new_token_student(student_config, teacher, max_sequence_length: int):
    """A student of the teacher's task: random (`build_token_model`) or, with
    `init: from_teacher`, the teacher's embeddings, chosen layers and head.

    Example:
    ```python
    student = new_token_student(load_student("bert_4l_128h"), teacher, 128)
    ```
    """
    num_classes = teacher.num_classes if teacher.task == TOKEN_CLASSIFICATION else None
    if student_config.init != "from_teacher":
        return build_token_model(
            student_config.backbone_config(), teacher.task, num_classes,
            vocabulary_size=teacher.backbone.vocabulary_size,
            max_sequence_length=min(max_sequence_length, teacher.backbone.max_sequence_length),
            dropout=student_config.dropout)
    layers = teacher_layers_for(student_config, teacher.backbone)
    copied = student_from_teacher(teacher, layers=layers)
    student = token_model_for(copied.backbone, teacher.task, num_classes, teacher.dropout)
    student.output_dense.set_weights(teacher.output_dense.get_weights())
    return student


# ----------------------------------------------------------------------------- the recipe


class _TokenRun:
    """The lengths and shape of a token recipe run, beside `recipe.Run`'s state."""

    def __init__(self, run):
        config = run.config
        self.run = run
        self.task = config.task
        self.shape = TOKEN_SHAPES[config.task.task_type]
        self.length = config.task.max_sequence_length or config.data.max_sequence_length
        self.export_length = config.task.max_sequence_length or config.export.sequence_length
        if self.export_length < self.length:
            raise ValueError(
                f"export.sequence_length ({self.export_length}) is shorter than the prepared "
                f"windows ({self.length}, data.max_sequence_length): the exports could not "
                "be scored on the dev windows. Make it at least as long.")
        if config.augment.enabled and self.task.task_type != QUESTION_ANSWERING:
            raise ValueError(
                f"augment is not run for the {self.task.task_type} task {self.task.name!r}: "
                "replacing words would need a tag for each replacement. Augmentation of token "
                "tasks rewrites SQuAD questions only (contexts and answers are kept). Set "
                "augment.enabled=false.")
        if config.distill.general.enabled:
            raise ValueError(
                f"distill.general is not run for the {self.task.task_type} task {self.task.name!r}: "
                "general distillation is task-free; run it in a sentence-task recipe and start "
                "this one's student from its result. Set distill.general.enabled=false.")

    def dataset(self, directory, batch_size: int, training: bool):
        return load_token_data(directory, batch_size, training, seed=self.run.config.seed,
                               sequence_length=self.length)

    def scores(self, model, evaluate, dev_ds) -> dict:
        return self.shape.summarize(evaluate(model, dev_ds))


def _summary_if_current(folder: pathlib.Path, wanted: dict) -> dict | None:
    """The folder's summary.json when it was prepared with `wanted`'s values from the source
    as it is now, else None (not prepared yet; another source, length, stride or tag set;
    or a source file written since, such as a subset of another size)."""
    path = folder / prepare_tokens.SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    if not all(summary.get(key) == value for key, value in wanted.items()):
        return None
    source = pathlib.Path(summary["source"])
    if not source.is_file() or source.stat().st_mtime_ns > path.stat().st_mtime_ns:
        return None
    return summary


def _prepare_token_data(trun: _TokenRun, tokenizer):
    run, config, task = trun.run, trun.run.config, trun.task
    folders = {}
    for split, file_name, subset in (("train", task.files.train, config.data.train_subset),
                                     ("dev", task.files.dev, config.data.dev_subset)):
        if not config.data.data_dir:
            raise FileNotFoundError(
                f"No {split} data for task {task.name!r}: data.data_dir is not set. Point the "
                f"recipe at the folder holding {task.files.train} and {task.files.dev}: "
                "`--set data.data_dir=/path/to/folder`.")
        source = pathlib.Path(config.data.data_dir) / file_name
        if not source.is_file():
            raise FileNotFoundError(
                f"No {split} data for task {task.name!r}: {source} does not exist (data.data_dir "
                f"must hold {task.files.train} and {task.files.dev}).")
        if subset:
            source = trun.shape.subset(source, run.path("data", f"{split}_subset{source.suffix}"),
                                       subset, config.seed)
        output = run.path("data", split)
        wanted = {"source": os.path.abspath(source), "sequence_length": trun.length}
        if task.task_type == TOKEN_CLASSIFICATION:
            wanted["labels"] = list(task.tags)
        else:
            wanted["stride"] = task.doc_stride
        summary = _summary_if_current(output, wanted)
        if summary is None:
            run.say(f"preparing {split} from {source}")
            run.mark_work()
            summary = trun.shape.prepare(source, tokenizer, output, task, trun.length,
                                         config.data.skip_bad_rows)
        folders[split] = (output, summary)
    counts = {}
    for split, (_, summary) in folders.items():
        for key in ("sentences", "questions", "windows", "skipped_rows"):
            if key in summary:
                counts[f"{split}_{key}"] = summary[key]
    run.report["data"] = {**counts, "train_subset": config.data.train_subset,
                          "dev_subset": config.data.dev_subset,
                          "max_sequence_length": trun.length}
    return folders["train"][0], folders["dev"][0]


def _augment_questions(trun: _TokenRun, teacher, tokenizer, train_dir) -> pathlib.Path:
    """The prepared windows of the training questions plus their rewritten copies
    (`augment_squad`); the copies' file and folder are kept and reused while the settings,
    the source and the teacher's weights stay the same."""
    run, config = trun.run, trun.run.config
    source = read_summary(train_dir)["source"]
    augmented = run.path("data", "train_augmented.json")
    output = run.path("data", "augmented")
    settings = {"copies": config.augment.copies, "p": config.augment.p,
                "candidates": config.augment.candidates, "seed": config.seed, "source": source,
                "teacher_weights": weights_fingerprint(teacher)}
    recorded = augmentation_of(augmented) or {}
    renewed = any(recorded.get(key) != value for key, value in settings.items())
    if renewed:
        run.say(f"augmenting the questions of {source} ({config.augment.copies} copies each)")
        run.mark_work()
        recorded = augment_squad(
            source, augmented, teacher, tokenizer, copies=config.augment.copies,
            p=config.augment.p, candidates=config.augment.candidates, seed=config.seed,
            skip_bad_rows=config.data.skip_bad_rows, sequence_length=trun.length,
            verbose=run.verbose)
    wanted = {"source": os.path.abspath(augmented), "sequence_length": trun.length,
              "stride": trun.task.doc_stride}
    summary = None if renewed else _summary_if_current(output, wanted)
    if summary is None:
        run.say(f"preparing the augmented questions from {augmented}")
        run.mark_work()
        # The originals were checked when the training data was prepared; a rewrite that no
        # longer fits the sequence length is left out (and counted) rather than stopping.
        summary = trun.shape.prepare(augmented, tokenizer, output, trun.task, trun.length, True)
    if summary.get("skipped_rows"):
        run.say(f"{summary['skipped_rows']} rewritten questions left out (listed in "
                f"{output / prepare_tokens.SUMMARY_FILE})")
    run.report.setdefault("data", {}).update(
        augmented_questions=summary["questions"], augmented_windows=summary["windows"],
        augmented_skipped=summary.get("skipped_rows", 0),
        augmentation={key: recorded[key] for key in ("copies", "p", "candidates", "method")})
    return output


def _prepare_transfer(trun: _TokenRun, tokenizer, train_dir) -> pathlib.Path:
    """The prepared windows of the transfer set (`data.transfer_file`): its questions that
    are not training questions, answers removed; reused while the source and settings stay."""
    run, config = trun.run, trun.run.config
    source = pathlib.Path(config.data.transfer_path)
    if not source.is_file():
        raise FileNotFoundError(
            f"data.transfer_file: {source} does not exist (a SQuAD-layout JSON file, relative "
            "to data.data_dir or absolute).")
    training = pathlib.Path(read_summary(train_dir)["source"])
    questions = transfer_squad(source, run.path("data", "transfer.json"), training,
                               config.data.transfer_subset, config.seed)
    output = run.path("data", "transfer")
    wanted = {"source": os.path.abspath(questions), "sequence_length": trun.length,
              "stride": trun.task.doc_stride, "labeled": False}
    summary = _summary_if_current(output, wanted)
    if summary is None:
        run.say(f"preparing the transfer questions of {source}")
        run.mark_work()
        try:
            summary = prepare_tokens.prepare_squad(
                str(questions), tokenizer, str(output), sequence_length=trun.length,
                stride=trun.task.doc_stride, skip_bad_rows=config.data.skip_bad_rows,
                with_answers=False)
        except BadRowError as error:
            raise BadRowError(error.where, f"{error.reason} (a question of the transfer set, "
                              f"written from {source}; `--set data.skip_bad_rows=true` leaves "
                              "such questions out)") from None
    if summary.get("skipped_rows"):
        run.say(f"{summary['skipped_rows']} transfer questions left out as malformed (listed "
                f"in {output / prepare_tokens.SUMMARY_FILE})")
    run.report.setdefault("data", {}).update(
        transfer_file=str(source), transfer_subset=config.data.transfer_subset,
        transfer_questions=summary["questions"], transfer_windows=summary["windows"],
        transfer_skipped=summary.get("skipped_rows", 0))
    return output


def _record(run, name: str, model, scores: dict) -> None:
    run.report[name] = {**run.report.get(name, {}), **scores, "params": int(model.count_params())}
    run.say(f"{name} " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()
                                   if isinstance(v, float)))


def _token_teacher(trun: _TokenRun, train_dir, dev_ds, evaluate):
    run, config = trun.run, trun.run.config
    schedule = config.teacher.finetune

    def fine_tune():
        num_classes = len(trun.task.tags) or None
        teacher = load_token_teacher(config.teacher.source, trun.task.task_type, num_classes)
        if schedule.enabled:
            result = train_on_labels(
                teacher, trun.dataset(train_dir, schedule.batch_size, True), folder=run.dir,
                name="teacher", schedule=schedule, training=config.training, dev_data=dev_ds,
                metrics=trun.task.metrics, evaluate=evaluate, verbose=run.verbose)
            run.record_history("teacher", result.history)
            teacher = result.model
        return teacher

    teacher = run.load_or_build("teacher.keras", fine_tune, reuse=schedule.skip_if_exists,
                                what="fine-tuned teacher")
    _record(run, "teacher", teacher, trun.scores(teacher, evaluate, dev_ds))
    return teacher


def _distill_token_student(trun: _TokenRun, teacher, train_dir, dev_ds, evaluate):
    run, config = trun.run, trun.run.config
    final = run.path("student.keras")
    if final.exists():
        run.say(f"reusing the distilled student {final}")
        return keras.saving.load_model(final, compile=False)
    stages = config.distill
    intermediate_path = run.path("student_intermediate.keras")
    common = {"folder": run.dir, "training": config.training, "verbose": run.verbose}
    if intermediate_path.exists():
        student = keras.saving.load_model(intermediate_path, compile=False)
    else:
        keras.utils.set_random_seed(config.seed)
        student = new_token_student(config.student, teacher, max(trun.length, trun.export_length))
        if stages.intermediate.enabled:
            with run.stage("intermediate", fresh=True):
                layer_map = stages.intermediate.layer_map
                distiller = trun.shape.distiller(
                    teacher=teacher, student=student,
                    layer_map=layer_map if isinstance(layer_map, str) else list(layer_map))
                weights = stages.intermediate.loss_weights
                result = distill(
                    distiller, trun.dataset(train_dir, stages.intermediate.batch_size, True),
                    stage="intermediate", schedule=stages.intermediate,
                    loss_weights={"embedding": weights.embedding, "hidden": weights.hidden,
                                  "attention": weights.attention}, **common)
                run.record_history("intermediate", result.history)
        save_model(student, intermediate_path)
    if stages.prediction.enabled:
        with run.stage("prediction", fresh=True):
            prediction = stages.prediction
            result = distill(
                trun.shape.distiller(teacher=teacher, student=student),
                trun.dataset(train_dir, prediction.batch_size, True), stage="prediction",
                schedule=prediction, dev_data=dev_ds, metrics=trun.task.metrics,
                temperature=prediction.temperature,
                loss_weights={"hard": prediction.hard_label_weight}, evaluate=evaluate, **common)
            run.record_history("prediction", result.history)
            student = result.model
    save_model(student, final)
    return student


def _token_baseline(trun: _TokenRun, teacher, train_dir, dev_ds, evaluate):
    run, config = trun.run, trun.run.config

    def train():
        keras.utils.set_random_seed(config.seed)
        student = new_token_student(config.student, teacher, max(trun.length, trun.export_length))
        result = train_on_labels(
            student, trun.dataset(train_dir, config.baseline.batch_size, True), folder=run.dir,
            name="baseline", schedule=config.baseline, epochs=config.baseline_epochs(),
            training=config.training, dev_data=dev_ds, metrics=trun.task.metrics,
            evaluate=evaluate, verbose=run.verbose)
        run.record_history("baseline", result.history)
        return result.model

    baseline = run.load_or_build("baseline.keras", train)
    _record(run, "baseline", baseline, trun.scores(baseline, evaluate, dev_ds))


def _export_token_models(trun: _TokenRun, student, teacher, tokenizer, train_dir, dev_ds,
                         evaluate) -> None:
    from tf_tinybert.runtime.latency import measure_latency

    run, export = trun.run, trun.run.config.export
    jobs = [("student", mode, student) for mode in export.modes]
    if export.teacher:
        jobs.append(("teacher", "fp32", teacher))
    labels = list(trun.task.tags) or None
    for who, mode, model in jobs:
        output = run.path("export", f"{who}_{mode}")
        summary_path = run.path("export", f"{who}_{mode}.json")
        model_path = output / MODEL_FILE
        if summary_path.exists() and model_path.exists():
            entry = json.loads(summary_path.read_text(encoding="utf-8"))
        else:
            run.say(f"exporting the {who} ({mode})")
            run.mark_work()
            info = trun.shape.exporter(
                model, tokenizer, output, label_names=labels, quantization=mode,
                sequence_length=trun.export_length,
                # The export reads the training windows lazily, up to as many as it calibrates on.
                representative_data=(trun.dataset(train_dir, 32, training=False)
                                     if mode == "int8" else None),
                max_calibration_examples=export.representative_examples)
            scores = trun.scores(TfliteTokenModel(model_path), evaluate, dev_ds)
            entry = {
                **scores,
                "size_mb": round(model_path.stat().st_size / 1e6, 3),
                "latency_ms": round(measure_latency(model_path, runs=export.latency_runs), 3),
                "latency_ms_2_threads": round(measure_latency(
                    model_path, num_threads=2, runs=export.latency_runs), 3),
                **info["verification"],
                "path": str(model_path),
            }
            write_text(summary_path, json.dumps(entry, indent=2))
        run.report.setdefault(who, {}).setdefault("tflite", {})[mode] = entry
        if who == "student" and mode == "int8":
            run.report["student_int8"] = {key: entry[key] for key in entry
                                          if key not in ("path",)}
        metric = trun.task.primary_metric
        run.say(f"{who} {mode}: {entry['size_mb']} MB, {entry['latency_ms']} ms, "
                f"{metric} {entry.get(metric):.4f}")


def run_token_recipe(run, tokenizer) -> dict:
    """The stages of a token task's recipe in `run` (a `tf_tinybert.recipe.Run`); returns the
    report. Called by `tf_tinybert.recipe.run_recipe`, which owns the run folder, the
    tokenizer and the final report.

    Example:
    ```python
    run_recipe(load_recipe("configs/recipes/squad_minilm.yaml"))  # calls this
    ```
    """
    from tf_tinybert.strategies import make_strategy

    trun = _TokenRun(run)
    config = run.config
    with run.stage("data"):
        train_dir, dev_dir = _prepare_token_data(trun, tokenizer)
    dev_ds = trun.dataset(dev_dir, EVAL_BATCH_SIZE, training=False)
    evaluate = token_evaluator(dev_dir, trun.task.max_answer_length)
    with make_strategy(config.training.strategy).scope():
        with run.stage("teacher"):
            teacher = _token_teacher(trun, train_dir, dev_ds, evaluate)
        distill_dirs = [train_dir]
        if config.augment.enabled:
            with run.stage("augment"):
                distill_dirs = [_augment_questions(trun, teacher, tokenizer, train_dir)]
        if config.data.transfer_file:
            with run.stage("transfer"):
                distill_dirs.append(_prepare_transfer(trun, tokenizer, train_dir))
        run.report["data"]["distill_windows"] = sum(
            read_summary(folder)["windows"] for folder in distill_dirs)
        student = _distill_token_student(trun, teacher, distill_dirs, dev_ds, evaluate)
        _record(run, "student", student, trun.scores(student, evaluate, dev_ds))
        run.save_report()
        if config.baseline.enabled:
            with run.stage("baseline"):
                _token_baseline(trun, teacher, train_dir, dev_ds, evaluate)
    if config.export.modes:
        with run.stage("export"):
            _export_token_models(trun, student, teacher, tokenizer, train_dir, dev_ds, evaluate)
    run.report["task_type"] = trun.task.task_type
    return run.report
