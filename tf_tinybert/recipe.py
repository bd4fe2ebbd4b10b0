"""The end-to-end TinyBERT recipe that `tf-tinybert run CONFIG.yaml` executes, stage by stage.

Stages, in order: data, teacher, augment, cache_teacher, general, intermediate, prediction,
baseline, export, report. Each stage leaves its result in the run folder (prepared data,
`teacher.keras`, `student_intermediate.keras`, `student.keras`, `baseline.keras`, exports)
before the next one starts. Running the same command again skips the stages whose results
exist, and a stage that was killed mid-training resumes from its last backup
(`tf_tinybert.stage`, `tf_tinybert.resume`), so a crash loses at most
`training.checkpoint_every_steps` steps.
`report.json` is rewritten after every stage.

A task of a per-token shape (`task_type: token_classification` or `question_answering`,
e.g. `configs/tasks/conll2003.yaml`, `squad.yaml`) runs the same stages through
`tf_tinybert.token_recipe`, whose `TOKEN_SHAPES` table holds what differs (readers, heads,
distiller, entity F1 / SQuAD scoring, exporter).

Example:
```python
from tf_tinybert.config import load_recipe
from tf_tinybert.recipe import run_recipe

report = run_recipe(load_recipe("configs/recipes/quickstart.yaml"))
report["student"]["accuracy"]
```
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import random
import shutil
import time

import keras

from tf_tinybert import data as tt_data
from tf_tinybert.atomic import save_model, write_bytes
from tf_tinybert.config import RecipeConfig, save_config
from tf_tinybert.data.manifest import MANIFEST_NAME
from tf_tinybert.data.readers import open_source
from tf_tinybert.distiller import Distiller
from tf_tinybert.evaluation import evaluate_classifier
from tf_tinybert.fingerprints import weights_fingerprint
from tf_tinybert.models import build_student, student_from_teacher, teacher_layers_for
from tf_tinybert.report import summary_table, write_report
from tf_tinybert.runtime.contract import MODEL_FILE
from tf_tinybert.stage import distill, train_on_labels
from tf_tinybert.strategies import make_strategy
from tf_tinybert.teachers import load_teacher, resolve_source
from tf_tinybert.tokenizers import load_tokenizer


class Run:
    """The state of one recipe run: its config, folder, tokenizer and growing report."""

    def __init__(self, config: RecipeConfig, verbose: int = 1):
        self.config = config
        self.dir = pathlib.Path(config.run_dir)
        self.verbose = verbose
        self.tokenizer = None
        self.report: dict = {"name": config.name, "stages": {}}
        self._worked = False
        previous = self.dir / "report.json"
        if previous.exists():
            self.report = json.loads(previous.read_text(encoding="utf-8"))
            self.report.setdefault("stages", {})

    def path(self, *parts: str) -> pathlib.Path:
        return self.dir.joinpath(*parts)

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"[tf-tinybert] {message}", flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, fresh: bool = False):
        """Time a stage, record its seconds and rewrite report.json when it ends.

        A stage completed by an earlier run keeps that run's time when running the command
        again only reloads its result. It records the new time when it did work this time:
        `fresh=True` (a stage entered only to do its work), or `mark_work()` called inside
        it (by `load_or_build` when it trains, or where data or an export is made again,
        say after its file was deleted).
        """
        self.say(f"stage {name}")
        entry = self.report["stages"].setdefault(name, {})
        completed_before = entry.get("completed", False)
        self._worked = fresh
        start = time.perf_counter()
        yield
        if not completed_before or self._worked:
            entry["seconds"] = round(time.perf_counter() - start, 1)
            entry["completed"] = True
        self._worked = False
        self.save_report()

    def mark_work(self) -> None:
        """Note that the current stage built something rather than reloading it (see `stage`)."""
        self._worked = True

    def save_report(self) -> None:
        write_bytes(self.path("report.json"),
                    json.dumps(self.report, indent=2, sort_keys=True).encode("utf-8"))

    def load_or_build(self, filename: str, build, *, reuse: bool = True,
                      what: str | None = None) -> keras.Model:
        """The model saved as `filename` in the run folder when it is there (and `reuse`),
        else `build()`'s model, saved there atomically: how a stage finished by an earlier
        run is skipped. `what` names the model in a "reusing" message.

        Example:
        ```python
        teacher = run.load_or_build("teacher.keras", fine_tune, what="fine-tuned teacher")
        ```
        """
        path = self.path(filename)
        if reuse and path.exists():
            if what:
                self.say(f"reusing the {what} {path}")
            return keras.saving.load_model(path, compile=False)
        self.mark_work()
        model = build()
        save_model(model, path)
        return model

    def record_history(self, name: str, history) -> None:
        """Keep a stage's Keras `History` (per-epoch logs) in the report."""
        self.report["stages"].setdefault(name, {})["history"] = {
            key: [float(value) for value in values] for key, values in history.history.items()
        }


# ----------------------------------------------------------------------------- data


_BOM = b"\xef\xbb\xbf"


def _subset_file(source: pathlib.Path, target: pathlib.Path, count: int, seed: int,
                 header: bool) -> pathlib.Path:
    """Write `count` rows of a line-per-row file (TSV, JSONL), chosen with a seeded shuffle.

    The subset keeps the source's layout: its header line where it has one (none for
    CoLA), a byte-order mark at the start of the file where the source starts with one
    (MRPC), and rows in file order, each ending with a newline.
    """
    data = source.read_bytes()
    bom = _BOM if data.startswith(_BOM) else b""
    lines = data[len(bom):].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    if count < len(rows):
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        rows = [rows[i] for i in sorted(order[:count])]
    write_bytes(target, bom + b"".join(line + b"\n" for line in head + rows))
    return target


def _data_sources(run: Run) -> list[tuple[str, str, str | None]]:
    """(prepared folder name, file name, tfds split) of train, dev and the extra dev sets."""
    files, tfds = run.config.task.files, run.config.task.tfds
    splits = [("train", files.train, tfds and tfds.train_split),
              ("dev", files.dev, tfds and tfds.dev_split)]
    for index, name in enumerate(files.extra_dev):
        splits.append((pathlib.PurePath(name).stem, name, tfds and tfds.extra_dev_splits[index]))
    return splits


def _open_file(run: Run, split: str, file_name: str, subset: int | None):
    """The task file of a split (a seeded subset of it with `subset`) opened for `prepare`,
    or None when `data.data_dir` does not hold it. Opening checks its columns."""
    config, files = run.config, run.config.task.files
    if not config.data.data_dir:
        return None
    source = pathlib.Path(config.data.data_dir) / file_name
    if not source.is_file():
        return None
    if subset:
        source = _subset_file(source, run.path("data", f"{split}_subset{source.suffix}"),
                              subset, config.seed, files.header)
    return open_source(
        source, format=files.format, text_column=files.text_column,
        text_pair_column=files.text_pair_column, label_column=files.label_column,
        header=files.header, column_names=files.column_names,
    )


def _manifest_or_none(folder: pathlib.Path):
    return tt_data.read_manifest(folder) if (folder / MANIFEST_NAME).is_file() else None


def _prepare_split(run: Run, tokenizer, split: str, subset: int | None,
                   file_name: str | None = None, tfds_split: str | None = None) -> pathlib.Path:
    config, task = run.config, run.config.task
    file_name = file_name or getattr(task.files, split)
    if tfds_split is None and task.tfds is not None:
        tfds_split = task.tfds.train_split if split == "train" else task.tfds.dev_split
    output = run.path("data", split)
    labels = list(task.files.label_values or task.labels) or None
    common = {
        "tokenizer": tokenizer,
        "output": output,
        "labels": labels,
        "task": task.task_type,
        "max_sequence_length": config.data.max_sequence_length,
        "overwrite": True,
        "verbose": run.verbose,
    }
    source = _open_file(run, split, file_name, subset)
    manifest = _manifest_or_none(output)
    if manifest is not None:
        # A folder prepared from the same bytes, columns and labels is reused; a changed
        # file or task config prepares it again.
        if source is None or (manifest.source == source.description
                              and list(manifest.label_names) == (labels or [])):
            return output
    if source is not None:
        run.say(f"preparing {split} from {source.description['path']}")
        run.mark_work()
        files = task.files
        tt_data.prepare(input=source.description["path"], format=files.format,
                        text_column=files.text_column, text_pair_column=files.text_pair_column,
                        label_column=files.label_column, header=files.header,
                        column_names=files.column_names, **common)
    elif config.data.use_tfds and task.tfds is not None:
        name = task.tfds.name
        split_name = tfds_split
        if subset:
            split_name = f"{split_name}[:{subset}]"
        run.say(f"preparing {split} from tensorflow-datasets {name} ({split_name})")
        run.mark_work()
        common["labels"] = list(task.labels) or None
        tt_data.prepare(input=name, format="tfds", split=split_name,
                        text_column=task.tfds.text_column,
                        text_pair_column=task.tfds.text_pair_column,
                        label_column=task.tfds.label_column, **common)
    else:
        data_dir = config.data.data_dir
        where = (f"{pathlib.Path(data_dir) / file_name} does not exist" if data_dir
                 else "data.data_dir is not set")
        raise FileNotFoundError(
            f"No {split} data for task {task.name!r}: {where}, and tensorflow-datasets is "
            f"{'disabled' if not config.data.use_tfds else 'not configured for this task'}. "
            "Point the recipe at a folder holding the task's "
            f"{task.files.train} and {task.files.dev} files: "
            "`tf-tinybert run RECIPE.yaml --set data.data_dir=/path/to/folder`."
        )
    return output


def check_same_labels(train_dir, dev_dir) -> None:
    """Fail when two prepared folders disagree on task, label names or sentence pairs.

    A dev set whose labels are not the training set's would score a model on classes it
    never learned (or number the same classes differently).

    Example:
    ```python
    check_same_labels("runs/mrpc/data/train", "runs/mrpc/data/dev")  # None, or ValueError
    ```
    """
    train, dev = tt_data.read_manifest(train_dir), tt_data.read_manifest(dev_dir)
    for what, ours, theirs in (("task", train.task, dev.task),
                               ("label names", list(train.label_names), list(dev.label_names)),
                               ("sentence pairs", train.has_text_pair, dev.has_text_pair)):
        if ours != theirs:
            raise ValueError(
                f"{dev_dir}/{MANIFEST_NAME} ({dev.source.get('path') or dev.source.get('tfds')}) "
                f"has {what} {theirs!r}, but {train_dir}/{MANIFEST_NAME} "
                f"({train.source.get('path') or train.source.get('tfds')}) has {ours!r}: the dev "
                "set must be labeled like the training set. Fix the dev file (or the task's "
                "files.label_values) and run again."
            )


def prepare_data(run: Run, tokenizer) -> tuple[pathlib.Path, pathlib.Path]:
    """Prepare the task's train and dev TFRecords under `<run>/data/` (and the task's
    `files.extra_dev` sets beside dev, e.g. MNLI's `data/dev_mismatched`).

    Every file is opened (its columns checked) before any is tokenised, and the dev sets'
    labels are compared with the training set's, so that bad data stops the run here,
    before training. A dev set that fails the comparison is removed, not left prepared.
    """
    config = run.config
    splits = _data_sources(run)
    for split, file_name, _ in splits:  # columns of every file, before tokenising any
        _open_file(run, split, file_name, None)
    subsets = {"train": config.data.train_subset}
    prepared = {
        split: _prepare_split(run, tokenizer, split, subsets.get(split, config.data.dev_subset),
                              file_name, tfds_split)
        for split, file_name, tfds_split in splits
    }
    train = prepared.pop("train")
    for directory in prepared.values():
        try:
            check_same_labels(train, directory)
        except ValueError:
            shutil.rmtree(directory)
            raise
    dev = prepared.pop("dev")
    train_count = tt_data.read_manifest(train).num_examples
    run.report["data"] = {
        "train_examples": train_count,
        "dev_examples": tt_data.read_manifest(dev).num_examples,
        "train_subset": config.data.train_subset,
        "max_sequence_length": config.data.max_sequence_length,
    }
    if prepared:
        run.report["data"]["extra_dev"] = {
            split: {"dir": str(directory),
                    "examples": tt_data.read_manifest(directory).num_examples}
            for split, directory in prepared.items()
        }
    return train, dev


def _dataset(run: Run, directory, batch_size: int, training: bool):
    return tt_data.load(directory, batch_size=batch_size, shuffle=training, seed=run.config.seed,
                        bucket_by_length=run.config.data.bucket_by_length)


# ----------------------------------------------------------------------------- models


def _model_summary(model, scores: dict) -> dict:
    return {**scores, "params": int(model.count_params())}


def prepare_teacher(run: Run, train_dir, dev_dir, dev_ds):
    """Load the teacher, fine-tune it on the task unless done already, and evaluate it."""
    config = run.config
    schedule = config.teacher.finetune

    def fine_tune():
        teacher = load_teacher(config.teacher.source, num_classes=config.task.num_classes)
        if schedule.enabled:
            teacher = _train_on_labels(run, teacher, "teacher", schedule, schedule.epochs,
                                       train_dir, dev_ds)
        return teacher

    teacher = run.load_or_build("teacher.keras", fine_tune, reuse=schedule.skip_if_exists,
                                what="fine-tuned teacher")
    scores = evaluate_classifier(teacher, dev_ds, config.task.metrics)
    run.report["teacher"] = _model_summary(teacher, scores)
    run.say(f"teacher {scores}")
    return teacher


def _train_on_labels(run: Run, model, name: str, schedule, epochs: int, train_dir, dev_ds):
    """Fine-tune on labels as a resumable stage; return the best model by the task metric."""
    train_ds = _dataset(run, train_dir, schedule.batch_size, training=True)
    result = train_on_labels(model, train_ds, folder=run.dir, name=name, schedule=schedule,
                             epochs=epochs, training=run.config.training, dev_data=dev_ds,
                             metrics=run.config.task.metrics, verbose=run.verbose)
    run.record_history(name, result.history)
    return result.model


def _new_student(run: Run, teacher):
    config = run.config
    keras.utils.set_random_seed(config.seed)
    student_config = config.student
    if student_config.init not in ("random", "from_teacher"):
        from tf_tinybert.general import classifier_from_preset

        # A general-distilled student (a keras-hub preset folder).
        return classifier_from_preset(student_config.init, config.task.num_classes,
                                      dropout=student_config.dropout,
                                      expected=student_config.backbone_config())
    if student_config.init == "from_teacher":
        layers = teacher_layers_for(student_config, teacher.backbone)
        return student_from_teacher(teacher, layers=layers)
    return build_student(
        student_config.backbone_config(), num_classes=config.task.num_classes,
        vocabulary_size=teacher.backbone.vocabulary_size,
        # Long enough for the exports' fixed input length, never longer than the teacher's.
        max_sequence_length=min(max(config.data.max_sequence_length,
                                    config.export.sequence_length),
                                teacher.backbone.max_sequence_length),
        dropout=student_config.dropout,
    )


def _distill(run: Run, distiller: Distiller, stage: str, schedule, train_ds, dev_ds,
             **compile_kwargs):
    """One distillation stage; returns the student (the best by the task metric after the
    prediction stage)."""
    result = distill(distiller, train_ds, stage=stage, folder=run.dir, schedule=schedule,
                     training=run.config.training, dev_data=dev_ds,
                     metrics=run.config.task.metrics, verbose=run.verbose, **compile_kwargs)
    run.record_history(stage, result.history)
    return result.model


def _relation_options(stage) -> dict:
    return {"relation_heads": stage.relation_heads, "relation_layers": stage.relation_layers}


def distill_student(run: Run, teacher, train_dir, prediction_dir, dev_ds):
    """The general (optional), intermediate and prediction stages; returns the student."""
    config = run.config
    final = run.path("student.keras")
    if final.exists():
        run.say(f"reusing the distilled student {final}")
        return keras.saving.load_model(final, compile=False)
    intermediate_path = run.path("student_intermediate.keras")
    stages = config.distill
    if intermediate_path.exists():
        student = keras.saving.load_model(intermediate_path, compile=False)
    else:
        student = _new_student(run, teacher)
        layer_map = stages.intermediate.layer_map
        distiller = Distiller(teacher=teacher, student=student,
                              layer_map=layer_map if isinstance(layer_map, str) else list(layer_map))
        if stages.general.enabled:
            with run.stage("general", fresh=True):
                corpus = _general_corpus(run, stages.general.corpus)
                corpus_ds = tt_data.load(corpus, batch_size=stages.general.batch_size,
                                         seed=config.seed)
                _distill(run, distiller, "general", stages.general, corpus_ds, None,
                         loss_weights=stages.general.loss_weights.as_dict(),
                         **_relation_options(stages.general))
        if stages.intermediate.enabled:
            with run.stage("intermediate", fresh=True):
                train_ds = _dataset(run, train_dir, stages.intermediate.batch_size, training=True)
                _distill(run, distiller, "intermediate", stages.intermediate, train_ds, dev_ds,
                         loss_weights=stages.intermediate.loss_weights.as_dict(),
                         **_relation_options(stages.intermediate))
        save_model(student, intermediate_path)
    if stages.prediction.enabled:
        with run.stage("prediction", fresh=True):
            distiller = Distiller(teacher=teacher, student=student)
            train_ds = _dataset(run, prediction_dir, stages.prediction.batch_size, training=True)
            student = _distill(run, distiller, "prediction", stages.prediction, train_ds, dev_ds,
                               temperature=stages.prediction.temperature,
                               loss_weights={"hard": stages.prediction.hard_label_weight})
    save_model(student, final)
    return student


def _general_corpus(run: Run, corpus: str) -> pathlib.Path:
    output = run.path("data", "general")
    if not (output / MANIFEST_NAME).exists():
        run.mark_work()
        tt_data.prepare(input=corpus, tokenizer=run.tokenizer, output=output, format="text",
                        unlabeled=True, max_sequence_length=run.config.data.max_sequence_length,
                        overwrite=True, verbose=run.verbose)
    return output


def train_baseline(run: Run, teacher, train_dir, dev_ds):
    """The same student trained on labels alone for as many steps as distillation took."""
    config = run.config
    baseline = run.load_or_build("baseline.keras", lambda: _train_on_labels(
        run, _new_student(run, teacher), "baseline", config.baseline,
        config.baseline_epochs(), train_dir, dev_ds))
    scores = evaluate_classifier(baseline, dev_ds, config.task.metrics)
    run.report["baseline"] = _model_summary(baseline, scores)
    run.say(f"label-only baseline {scores}")


# ----------------------------------------------------------------------------- export


def export_models(run: Run, student, teacher, tokenizer, train_dir, dev_dir) -> dict:
    """Export the student in each mode (and the teacher in fp32); measure each export."""
    from tf_tinybert.export import export_classifier
    from tf_tinybert.runtime.latency import measure_latency

    config = run.config
    export = config.export
    results = {}
    jobs = [("student", mode, student) for mode in export.modes]
    if export.teacher:
        jobs.append(("teacher", "fp32", teacher))
    eval_examples = export.evaluate_examples or tt_data.read_manifest(dev_dir).num_examples
    for who, mode, model in jobs:
        output = run.path("export", f"{who}_{mode}")
        summary_path = run.path("export", f"{who}_{mode}.json")
        if summary_path.exists() and (output / MODEL_FILE).exists():
            entry = json.loads(summary_path.read_text(encoding="utf-8"))
        else:
            run.say(f"exporting the {who} ({mode})")
            run.mark_work()
            report = export_classifier(
                model, tokenizer, output, quantization=mode,
                sequence_length=export.sequence_length,
                representative_data=str(train_dir) if mode == "int8" else None,
                max_calibration_examples=export.representative_examples,
                labels=list(config.task.labels) or None, eval_data=str(dev_dir),
                max_eval_examples=eval_examples, min_agreement=export.min_agreement,
                integer_only=export.integer_only and mode == "int8", overwrite=True,
                metrics=list(config.task.metrics),
                dynamic_length=export.dynamic_length and who == "student",
            )
            check = report.verification
            entry = {
                # The task's own metrics on the checked dev examples (matthews_corrcoef, f1,
                # pearson, ...), as for the Keras models.
                **(check.metrics or {}),
                "size_mb": round(report.model_bytes / 1e6, 3),
                "latency_ms": round(measure_latency(
                    report.model_path, runs=export.latency_runs,
                    sequence_length=export.sequence_length), 3),
                "latency_ms_2_threads": round(measure_latency(
                    report.model_path, num_threads=2, runs=export.latency_runs,
                    sequence_length=export.sequence_length), 3),
                "accuracy": check.accuracy,
                "agreement": check.top1_agreement,
                "pearson_with_keras": check.pearson_with_keras,
                "max_abs_diff": check.max_abs_diff,
                "mean_abs_diff": check.mean_abs_diff,
                "examples": check.examples,
                "float_ops": report.info["float_ops"],
                "path": str(report.model_path),
            }
            write_bytes(summary_path, json.dumps(entry, indent=2).encode("utf-8"))
        run.report.setdefault(who, {}).setdefault("tflite", {})[mode] = entry
        results[(who, mode)] = entry
        metric = config.task.primary_metric
        run.say(f"{who} {mode}: {entry['size_mb']} MB, {entry['latency_ms']} ms, "
                f"{metric} {entry.get(metric)}, agreement "
                f"{entry['agreement'] if entry.get('agreement') is not None else entry.get('pearson_with_keras')}")
    return results


def classify_examples(run: Run) -> None:
    """Classify the recipe's example sentences with the TF-free runtime API."""
    sentences = list(run.config.export.example_sentences)
    modes = run.config.export.modes
    if not sentences or not modes:
        return
    from tf_tinybert.runtime import TextClassifier

    mode = "int8" if "int8" in modes else modes[-1]
    classifier = TextClassifier(run.path("export", f"student_{mode}", MODEL_FILE))
    examples = []
    # The example sentences are single texts; a pair task's model reads each with an empty
    # second segment, which is still a fair smoke test of the on-device path.
    for sentence, result in zip(sentences, classifier.classify(sentences)):
        examples.append({"text": sentence, "label": result.label,
                         "score": round(result.score, 4)})
        run.say(f"{mode} student: {result.label} ({result.score:.3f})  {sentence!r}")
    run.report["examples"] = examples


# ----------------------------------------------------------------------------- the recipe


def _rows_of(source: dict) -> dict:
    # What a manifest's source says about its rows, wherever the folders were moved to.
    return {k: v for k, v in source.items() if k not in ("path", "augmented_from", "cached_from")}


def _augmented_as_configured(augmented: pathlib.Path, train_dir: pathlib.Path,
                             config: RecipeConfig, teacher_weights: str) -> bool:
    """Whether `augmented` holds `train_dir` augmented with the recipe's current settings
    and teacher (a resumed run whose `augment.*`, training rows or teacher changed
    augments again)."""
    manifest = _manifest_or_none(augmented)
    if manifest is None or manifest.augmentation is None:
        return False
    wanted = {"copies": config.augment.copies, "p": config.augment.p,
              "candidates": config.augment.candidates, "seed": config.seed,
              "teacher_weights": teacher_weights}
    return (all(manifest.augmentation.get(k) == v for k, v in wanted.items())
            and _rows_of(manifest.source) == _rows_of(tt_data.read_manifest(train_dir).source))


def _cached_from(cache: pathlib.Path, data_dir: pathlib.Path, teacher_weights: str) -> bool:
    """Whether `cache` holds the logits of the teacher with `teacher_weights` (its
    `weights_fingerprint`) for the rows of `data_dir` as they are now."""
    cached, rows = _manifest_or_none(cache), tt_data.read_manifest(data_dir)
    if cached is None or not cached.teacher_logits:
        return False
    return (cached.teacher_logits.get("teacher_weights") == teacher_weights
            and _rows_of(cached.source) == _rows_of(rows.source)
            and cached.augmentation == rows.augmentation
            and cached.num_examples == rows.num_examples)


def _run_sentence_stages(run: Run) -> None:
    """The data to export stages of a sentence classification or regression task."""
    config = run.config
    strategy = make_strategy(config.training.strategy)
    with run.stage("data"):
        train_dir, dev_dir = prepare_data(run, run.tokenizer)
    dev_ds = _dataset(run, dev_dir, 64, training=False)
    with strategy.scope():
        with run.stage("teacher"):
            teacher = prepare_teacher(run, train_dir, dev_dir, dev_ds)
        distill_dir = train_dir
        teacher_weights = weights_fingerprint(teacher)
        if config.augment.enabled:
            with run.stage("augment"):
                distill_dir = run.path("data", "augmented")
                if not _augmented_as_configured(distill_dir, train_dir, config, teacher_weights):
                    run.mark_work()
                    tt_data.augment(train_dir, distill_dir, teacher=teacher,
                                    copies=config.augment.copies, p=config.augment.p,
                                    candidates=config.augment.candidates, seed=config.seed,
                                    tokenizer=run.tokenizer, overwrite=True)
        prediction_dir = distill_dir
        if config.cache_teacher and config.distill.prediction.enabled:
            with run.stage("cache_teacher"):
                prediction_dir = run.path("data", "teacher_cache")
                if not _cached_from(prediction_dir, distill_dir, teacher_weights):
                    run.mark_work()
                    tt_data.cache_teacher(distill_dir, teacher, prediction_dir, overwrite=True)
        student = distill_student(run, teacher, distill_dir, prediction_dir, dev_ds)
        scores = evaluate_classifier(student, dev_ds, config.task.metrics)
        run.report["student"] = {**run.report.get("student", {}), **_model_summary(student, scores)}
        run.say(f"distilled student {scores}")
        run.save_report()
        if config.baseline.enabled:
            with run.stage("baseline"):
                train_baseline(run, teacher, train_dir, dev_ds)
    if config.export.modes:
        with run.stage("export"):
            export_models(run, student, teacher, run.tokenizer, train_dir, dev_dir)
            classify_examples(run)


def run_recipe(config: RecipeConfig, verbose: int = 1) -> dict:
    """Run the whole recipe; return the report (also written to the run folder).

    Call it inside the `tf.distribute` strategy and dtype policy you want, or let
    `tf-tinybert run` set them from `config.training`.
    """
    run = Run(config, verbose)
    run.dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run.path("config.yaml"))
    source = resolve_source(config.teacher.source)
    run.tokenizer = load_tokenizer(resolve_source(config.data.tokenizer or source))
    if config.task.is_token_task:
        # NER and QA: the same stages, with the shape-specific parts from TOKEN_SHAPES.
        from tf_tinybert.token_recipe import run_token_recipe

        run_token_recipe(run, run.tokenizer)
    else:
        _run_sentence_stages(run)
    with run.stage("report"):
        run.report["primary_metric"] = config.task.primary_metric
        run.report["export"] = {"sequence_length": (config.task.max_sequence_length
                                                    or config.export.sequence_length),
                                "modes": list(config.export.modes)}
        write_report(run.report, run.dir, plots=config.report.plots)
    if run.verbose:
        print(summary_table(run.report), flush=True)
    return run.report


def clean_backups(run_dir) -> None:
    """Remove training backups of a finished run (they are only needed to resume)."""
    shutil.rmtree(pathlib.Path(run_dir) / "backup", ignore_errors=True)
