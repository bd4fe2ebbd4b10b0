"""`tf-tinybert`: argparse sub-commands that call the library's functions and nothing else.

Run `tf-tinybert --help`, or `tf-tinybert COMMAND --help` for a command's flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tf_tinybert.choices import (
    EXPORT_MODES,
    INPUT_FORMATS,
    PIPELINE_STAGES,
    STRATEGIES,
    TASK_TYPES,
    TOKEN_INPUT_FORMATS,
)


def _split_list(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of a `ScheduleConfig` and a `TrainingConfig` (tf_tinybert.config): unset flags
    stay None and take the dataclass defaults, so each default lives in the config only."""
    group = parser.add_argument_group("training (defaults: the stage's config in "
                                      "tf_tinybert.config)")
    group.add_argument("--epochs", type=int, default=None, help="passes over the data")
    group.add_argument("--batch-size", type=int, default=None, help="examples per step")
    group.add_argument("--learning-rate", type=float, default=None,
                       help="peak AdamW learning rate, linear warm-up then decay")
    group.add_argument("--warmup", type=float, default=None,
                       help="fraction of steps spent warming up")
    group.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    group.add_argument("--max-steps", type=int, default=None,
                       help="stop after this many steps in all")
    group.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling")
    group.add_argument("--strategy", choices=STRATEGIES,
                       default=None, help="tf.distribute strategy (default: one device)")
    group.add_argument("--mixed-precision", action="store_true", default=None,
                       help="train in mixed_float16 (mixed_bfloat16 on TPU)")
    group.add_argument("--xla", action="store_true", default=None,
                       help="compile train steps with XLA")
    group.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                       dest="checkpoint_every_steps",
                       help="back up every N steps so a killed run resumes")
    group.add_argument("--logs", default=None, metavar="DIR",
                       help="folder for backups, TensorBoard and CSV logs "
                            "(default: beside --output)")


def _config_from(cls, args, **fields):
    """`cls` (a config dataclass) from the flags given on the command line: a flag left unset
    (None) keeps the dataclass default. `fields` adds values that need converting first."""
    import dataclasses

    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)
             if getattr(args, field.name, None) is not None}
    given.update({name: value for name, value in fields.items() if value is not None})
    return cls(**given)


def _training_config(args):
    from tf_tinybert.config import TrainingConfig

    return _config_from(TrainingConfig, args)


def _set_numerics(args, training) -> None:
    """Global settings belong to the program, not the library: set them here only."""
    import keras

    keras.utils.set_random_seed(args.seed)
    if training.mixed_precision:
        policy = "mixed_bfloat16" if training.strategy == "tpu" else "mixed_float16"
        keras.config.set_dtype_policy(policy)


def _logs_dir(args) -> str:
    return args.logs or os.path.join(os.path.dirname(os.path.abspath(args.output)),
                                     f"{os.path.basename(args.output)}.logs")


def _save(model, path: str) -> None:
    import pathlib

    from tf_tinybert.atomic import save_model

    save_model(model, pathlib.Path(path))
    print(f"saved {path}")


# ----------------------------------------------------------------------------- commands


def _prepare_tokens(args) -> int:
    """`prepare` for NER (CoNLL, tagged JSONL) and SQuAD files: a token-task folder."""
    from tf_tinybert.config import load_task
    from tf_tinybert.data.prepare_tokens import prepare_squad, prepare_tagging
    from tf_tinybert.teachers import resolve_source

    if os.path.exists(os.path.join(args.output, "summary.json")) and not args.overwrite:
        raise ValueError(f"{args.output} holds prepared data already; pass --overwrite to "
                         "replace it.")
    tokenizer = resolve_source(args.tokenizer)
    if args.format == "squad":
        summary = prepare_squad(args.input, tokenizer, args.output,
                                sequence_length=args.max_sequence_length,
                                stride=args.doc_stride, skip_bad_rows=args.skip_bad_rows)
        written = f"{summary['questions']} questions ({summary['windows']} windows)"
    else:
        tags = _split_list(args.tags) or list(load_task("conll2003").tags)
        summary = prepare_tagging(args.input, tokenizer, args.output, label_names=tags,
                                  sequence_length=args.max_sequence_length, format=args.format,
                                  tag_column=args.tag_column, skip_bad_rows=args.skip_bad_rows)
        written = f"{summary['sentences']} sentences ({summary['windows']} windows)"
    print(f"wrote {written} to {args.output}")
    if summary["skipped_rows"]:
        print(f"skipped {summary['skipped_rows']} malformed rows:")
        for row in summary["skipped_examples"]:
            print(f"  {row['where']}: {row['reason']}")
    return 0


def cmd_prepare(args) -> int:
    from tf_tinybert.data import prepare
    from tf_tinybert.teachers import resolve_source

    if args.format in TOKEN_INPUT_FORMATS or (args.format == "jsonl" and args.tags):
        return _prepare_tokens(args)

    manifest = prepare(
        input=args.input, tokenizer=resolve_source(args.tokenizer), output=args.output, format=args.format,
        text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, labels=_split_list(args.labels), task=args.task,
        max_sequence_length=args.max_sequence_length, shard_size=args.shard_size,
        unlabeled=args.unlabeled, skip_bad_rows=args.skip_bad_rows, overwrite=args.overwrite,
        split=args.split, header=not args.no_header, column_names=_split_list(args.column_names),
    )
    print(f"wrote {manifest.num_examples} examples to {args.output}")
    return 0


def cmd_augment(args) -> int:
    from tf_tinybert.data import augment
    from tf_tinybert.teachers import load_augmentation_teacher

    if args.input.endswith(".json"):
        return _augment_squad_file(args)
    teacher = load_augmentation_teacher(args.teacher)
    manifest = augment(args.input, args.output, teacher=teacher, copies=args.copies, p=args.p,
                       candidates=args.candidates, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {manifest.num_examples} examples to {args.output}")
    return 0


def _augment_squad_file(args) -> int:
    from tf_tinybert.data.augment_squad import augment_squad
    from tf_tinybert.teachers import load_augmentation_teacher, resolve_source

    if not args.tokenizer:
        raise ValueError(f"{args.input}: a SQuAD .json input needs --tokenizer (the teacher's)")
    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(f"{args.output} exists; pass --overwrite to replace it")
    settings = augment_squad(
        args.input, args.output, load_augmentation_teacher(args.teacher),
        resolve_source(args.tokenizer), copies=args.copies, p=args.p,
        candidates=args.candidates, seed=args.seed, skip_bad_rows=args.skip_bad_rows)
    print(f"wrote {settings['written']} questions ({settings['questions']} originals, "
          f"{settings['skipped']} skipped) to {args.output}")
    return 0


def cmd_cache_teacher(args) -> int:
    from tf_tinybert.data import cache_teacher
    from tf_tinybert.teachers import load_teacher

    teacher = load_teacher(args.teacher)
    manifest = cache_teacher(args.data, teacher, args.output, batch_size=args.batch_size,
                             overwrite=args.overwrite)
    print(f"wrote teacher logits for {manifest.num_examples} examples to {args.output}")
    return 0


def _labeled_data(args, batch_size):
    from tf_tinybert.data import load, read_manifest

    manifest = read_manifest(args.train)
    train = load(args.train, batch_size=batch_size, seed=args.seed)
    dev = load(args.dev, batch_size=64, shuffle=False) if args.dev else None
    return manifest, train, dev


def _token_data(args, batch_size):
    """(task, train, dev, evaluate) of prepared token folders (`prepare --format conll|squad`);
    `evaluate` scores a model on dev (entity F1, SQuAD EM/F1)."""
    from tf_tinybert import token_recipe

    task = token_recipe.token_task_of(args.train)
    train = token_recipe.load_token_data(args.train, batch_size, training=True, seed=args.seed)
    dev = evaluate = None
    if args.dev:
        if token_recipe.token_task_of(args.dev) != task:
            raise ValueError(f"--dev {args.dev} is not prepared for the {task} task of "
                             f"--train {args.train}.")
        dev = token_recipe.load_token_data(args.dev, 64, training=False)
        evaluate = token_recipe.token_evaluator(args.dev)
    return task, train, dev, evaluate


def _finetune_token_teacher(args, schedule, training) -> int:
    from tf_tinybert import token_recipe
    from tf_tinybert.choices import TOKEN_CLASSIFICATION, TOKEN_METRICS
    from tf_tinybert.stage import finetune_teacher
    from tf_tinybert.strategies import make_strategy

    task, train, dev, evaluate = _token_data(args, schedule.batch_size)
    labels = token_recipe.read_summary(args.train).get("labels")
    with make_strategy(training.strategy).scope():
        teacher = token_recipe.load_token_teacher(
            args.teacher, task, len(labels) if task == TOKEN_CLASSIFICATION else None)
        result = finetune_teacher(teacher, train, folder=_logs_dir(args), schedule=schedule,
                                  training=training, dev_data=dev, metrics=TOKEN_METRICS[task],
                                  evaluate=evaluate)
    _save(result.model, args.output)
    return 0


def cmd_finetune_teacher(args) -> int:
    from tf_tinybert.config import FinetuneConfig
    from tf_tinybert.evaluation import default_metrics
    from tf_tinybert.stage import finetune_teacher
    from tf_tinybert.strategies import make_strategy
    from tf_tinybert.teachers import load_teacher
    from tf_tinybert.token_recipe import token_task_of

    schedule, training = _config_from(FinetuneConfig, args), _training_config(args)
    _set_numerics(args, training)
    if token_task_of(args.train):
        return _finetune_token_teacher(args, schedule, training)
    manifest, train, dev = _labeled_data(args, schedule.batch_size)
    with make_strategy(training.strategy).scope():
        teacher = load_teacher(args.teacher, num_classes=manifest.num_classes)
        result = finetune_teacher(teacher, train, folder=_logs_dir(args), schedule=schedule,
                                  training=training, dev_data=dev,
                                  metrics=default_metrics(manifest.num_classes))
    _save(result.model, args.output)
    return 0


def _student_for(args, teacher, num_classes):
    import keras

    from tf_tinybert.config import DataConfig, load_student
    from tf_tinybert.models import build_student

    if args.student.endswith(".keras"):
        return keras.saving.load_model(args.student, compile=False)
    length = _config_from(DataConfig, args).max_sequence_length
    config = load_student(args.student)
    return build_student(config.backbone_config(), num_classes=num_classes,
                         vocabulary_size=teacher.backbone.vocabulary_size,
                         max_sequence_length=length)


def _stage_config(args):
    """The stage's config (`GeneralStageConfig`, ...) from the flags; the stage runs."""
    from tf_tinybert.config import (
        GeneralStageConfig,
        IntermediateStageConfig,
        PredictionStageConfig,
    )

    cls = {"general": GeneralStageConfig, "intermediate": IntermediateStageConfig,
           "prediction": PredictionStageConfig}[args.stage]
    layer_map = args.layer_map
    if layer_map is not None and layer_map not in ("uniform", "last"):
        layer_map = tuple(int(item) for item in _split_list(layer_map))
    extra = {} if args.stage == "prediction" else {"layer_map": layer_map,
                                                   "loss_weights": _loss_weights(args)}
    return _config_from(cls, args, **extra)


def _loss_weights(args):
    """`LossWeights` from --attention-weight / --relation-weight (None: the defaults)."""
    from tf_tinybert.config import LossWeights

    given = {name: value for name, value in (("attention", args.attention_weight),
                                             ("relation", args.relation_weight))
             if value is not None}
    return LossWeights(**given) if given else None


def _distill_tokens(args, stage, training) -> int:
    import keras

    from tf_tinybert import token_recipe
    from tf_tinybert.choices import TOKEN_METRICS
    from tf_tinybert.config import load_student
    from tf_tinybert.stage import distill
    from tf_tinybert.strategies import make_strategy

    if args.stage == "general":
        raise ValueError("--stage general distils on unlabeled text (a sentence-task folder); "
                         f"{args.train} holds token-task data.")
    task, train, dev, evaluate = _token_data(args, stage.batch_size)
    shape = token_recipe.TOKEN_SHAPES[task]
    if not args.teacher.endswith(".keras"):
        raise ValueError(f"--teacher {args.teacher}: distilling a {task} student needs the "
                         "teacher fine-tuned on the task (the .keras of finetune-teacher).")
    with make_strategy(training.strategy).scope():
        teacher = token_recipe.load_token_teacher(args.teacher, task)
        if not isinstance(teacher, shape.model_class):
            raise ValueError(f"--teacher {args.teacher} is a {type(teacher).__name__}, not the "
                             f"{shape.model_class.__name__} of a {task} task.")
        if args.student.endswith(".keras"):
            student = keras.saving.load_model(args.student, compile=False)
        else:
            length = (args.max_sequence_length
                      or token_recipe.read_summary(args.train)["sequence_length"])
            student = token_recipe.new_token_student(load_student(args.student), teacher, length)
        prediction = args.stage == "prediction"
        layer_map = getattr(stage, "layer_map", "uniform")
        distiller = shape.distiller(
            teacher=teacher, student=student,
            layer_map=layer_map if isinstance(layer_map, str) else list(layer_map))
        result = distill(
            distiller, train, stage=args.stage, folder=_logs_dir(args), schedule=stage,
            training=training, dev_data=dev, metrics=TOKEN_METRICS[task],
            temperature=stage.temperature if prediction else 1.0,
            loss_weights={"hard": stage.hard_label_weight} if prediction else None,
            evaluate=evaluate)
    _save(result.model, args.output)
    return 0


def cmd_distill(args) -> int:
    from tf_tinybert.distiller import Distiller
    from tf_tinybert.evaluation import default_metrics
    from tf_tinybert.stage import distill
    from tf_tinybert.strategies import make_strategy
    from tf_tinybert.teachers import load_teacher
    from tf_tinybert.token_recipe import token_task_of

    stage, training = _stage_config(args), _training_config(args)
    _set_numerics(args, training)
    if token_task_of(args.train):
        return _distill_tokens(args, stage, training)
    _, train, dev = _labeled_data(args, stage.batch_size)
    with make_strategy(training.strategy).scope():
        teacher = load_teacher(args.teacher)
        student = _student_for(args, teacher, teacher.num_classes)
        layer_map = getattr(stage, "layer_map", "uniform")
        distiller = Distiller(teacher=teacher, student=student,
                              layer_map=layer_map if isinstance(layer_map, str) else list(layer_map))
        prediction = args.stage == "prediction"
        options = {} if prediction else {"relation_heads": stage.relation_heads,
                                         "relation_layers": stage.relation_layers}
        result = distill(
            distiller, train, stage=args.stage, folder=_logs_dir(args), schedule=stage,
            training=training, dev_data=dev, metrics=default_metrics(teacher.num_classes),
            temperature=stage.temperature if prediction else 1.0,
            loss_weights=({"hard": stage.hard_label_weight} if prediction
                          else stage.loss_weights.as_dict()),
            **options)
    if args.stage == "general" and not args.output.endswith(".keras"):
        from tf_tinybert.data import read_tokenizer
        from tf_tinybert.general import save_student_preset

        folder = save_student_preset(result.model, read_tokenizer(args.train), args.output)
        print(f"saved the keras-hub preset folder {folder}")
        return 0
    _save(result.model, args.output)
    return 0


def _evaluate_tokens(args, task: str) -> int:
    """Entity F1 (overall and per type) or SQuAD EM/F1 of a token model on prepared data."""
    from tf_tinybert import token_recipe

    if args.model.endswith(".tflite"):
        from tf_tinybert.export.token_export import TfliteTokenModel

        model = TfliteTokenModel(args.model)
        summary = token_recipe.read_summary(args.data)
        if model.labels is not None and list(model.labels) != list(summary.get("labels", [])):
            raise ValueError(f"{args.model} tags {model.labels}, but {args.data} was prepared "
                             f"with {summary.get('labels')}.")
    else:
        import keras

        model = keras.saving.load_model(args.model, compile=False)
    model_task = getattr(model, "task", None)
    if model_task != task:
        raise ValueError(f"{args.model} is a {model_task or 'sentence'} model, but {args.data} "
                         f"holds {task} data.")
    dataset = token_recipe.load_token_data(args.data, 64, training=False)
    evaluate = token_recipe.token_evaluator(args.data, args.max_answer_length)
    print(json.dumps(token_recipe.summarize_scores(task, evaluate(model, dataset)), indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from tf_tinybert.config import load_task
    from tf_tinybert.data import load, read_manifest
    from tf_tinybert.token_recipe import token_task_of

    task = token_task_of(args.data)
    if task:
        return _evaluate_tokens(args, task)
    manifest = read_manifest(args.data)
    metrics = _split_list(args.metrics) or (load_task(args.task).metrics if args.task else
                                             (["pearson", "spearman"] if manifest.num_classes == 1
                                              else ["accuracy"]))
    if args.model.endswith(".tflite"):
        from tf_tinybert.export import evaluate_tflite

        scores = evaluate_tflite(args.model, args.data, metrics=metrics)
    else:
        import keras

        from tf_tinybert.evaluation import evaluate_classifier

        model = keras.saving.load_model(args.model, compile=False)
        scores = evaluate_classifier(model, load(args.data, batch_size=64, shuffle=False),
                                     metrics)
    print(json.dumps(scores, indent=2))
    return 0


def cmd_export(args) -> int:
    import keras

    from tf_tinybert.export import export_classifier
    from tf_tinybert.teachers import resolve_source

    model = keras.saving.load_model(args.model, compile=False)
    report = export_classifier(
        model, resolve_source(args.tokenizer), args.output, quantization=args.quantization,
        sequence_length=args.sequence_length, representative_data=args.representative_data,
        labels=_split_list(args.labels), overwrite=args.overwrite,
        min_agreement=args.min_agreement, eval_data=args.eval_data, int8_io=args.int8_io,
        integer_only=args.integer_only, dynamic_length=args.dynamic_length,
    )
    print(json.dumps(report.to_dict(), indent=2))
    return 0


def cmd_predict(args) -> int:
    from tf_tinybert.runtime import format_classifications, predict_main
    from tf_tinybert.runtime.token_runtime import token_predict

    report = token_predict(args.model, args.texts, args.question, args.context)
    if report is not None:
        print(report)
        return 0
    if not args.texts:
        raise ValueError("predict: give at least one text to classify.")
    print(format_classifications(predict_main(args.model, args.texts, top_k=args.top_k,
                                              text_pairs=args.pair)))
    return 0


def cmd_glue(args) -> int:
    from tf_tinybert.glue import run_glue

    run_glue(args.config, tasks=_split_list(args.tasks), data_root=args.data_root,
             output=args.output, overrides=args.set or (), verbose=0 if args.quiet else 1,
             command=["tf-tinybert", *args.argv])
    return 0


def cmd_run(args) -> int:
    import keras

    from tf_tinybert.config import is_general_recipe, load_recipe

    if is_general_recipe(args.config):
        from tf_tinybert.config import load_general_recipe
        from tf_tinybert.general import run_general

        run_general(load_general_recipe(args.config, overrides=args.set or ()),
                    verbose=0 if args.quiet else 1)
        return 0
    config = load_recipe(args.config, overrides=args.set or ())
    keras.utils.set_random_seed(config.seed)
    if config.training.mixed_precision:
        policy = "mixed_bfloat16" if config.training.strategy == "tpu" else "mixed_float16"
        keras.config.set_dtype_policy(policy)
    from tf_tinybert.recipe import run_recipe

    run_recipe(config, verbose=0 if args.quiet else 1)
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-tinybert",
        description="TinyBERT distillation of keras-hub BERT classifiers, exported to TFLite.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "prepare", help="text (TSV/CSV/JSONL/tfds/corpus, CoNLL, SQuAD) -> TFRecords",
        description="Tokenise a file into a prepared folder. Sentence tasks: TSV/CSV/JSONL/"
                    "tfds/plain text. NER: --format conll (token per line, blank line between "
                    "sentences, the tag in --tag-column) or --format jsonl --tags ... "
                    '({"tokens": [...], "tags": [...]} lines). QA: --format squad (SQuAD v1.1 '
                    "JSON; contexts cut into windows every --doc-stride pieces). A malformed "
                    "row stops with its file:line (or JSON path) unless --skip-bad-rows.")
    p.add_argument("--input", required=True, help="a .tsv/.csv/.jsonl/.txt/.json file or a tfds "
                                                  "name such as glue/sst2")
    p.add_argument("--tokenizer", required=True,
                   help="keras-hub preset name, keras-hub preset folder or Hugging Face folder")
    p.add_argument("--output", required=True, help="folder to write shards and manifest.json to")
    p.add_argument("--format", choices=(*INPUT_FORMATS, *TOKEN_INPUT_FORMATS), default=None,
                   help="input format (default: from the extension); conll or squad for the "
                        "NER and QA tasks")
    p.add_argument("--tags", default=None, metavar="O,B-PER,...",
                   help="NER: tag names in id order (default for conll: CoNLL-2003's nine, "
                        "configs/tasks/conll2003.yaml); with --format jsonl, reads tagged JSONL")
    p.add_argument("--tag-column", type=int, default=-1,
                   help="conll: the white-space column holding the tag, as a Python index "
                        "(default -1, the last; column 0 is the token)")
    p.add_argument("--doc-stride", type=int, default=128,
                   help="squad: word pieces between the starts of two windows of a context")
    p.add_argument("--text-column", default=None, help="column of the text (default sentence)")
    p.add_argument("--text-pair-column", default=None, help="column of the second text")
    p.add_argument("--label-column", default="label", help="column of the label")
    p.add_argument("--no-header", action="store_true",
                   help="the TSV/CSV file has no header line (GLUE's CoLA); name its columns "
                        "with --column-names")
    p.add_argument("--column-names", default=None, metavar="A,B,C",
                   help="the file's columns in order, e.g. source,label,original_label,sentence "
                        "(needed with --no-header; with a header they replace its names)")
    p.add_argument("--labels", default=None, help="class names in id order, e.g. 0,1")
    p.add_argument("--task", choices=TASK_TYPES, default=None)
    p.add_argument("--max-sequence-length", type=int, default=128)
    p.add_argument("--shard-size", type=int, default=10000, help="records per shard")
    p.add_argument("--unlabeled", action="store_true", help="no labels (general distillation)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip malformed rows (counted and listed in the manifest or, for "
                        "conll/squad, summary.json and the output)")
    p.add_argument("--split", default="train", help="tfds split (default train)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_prepare)

    p = commands.add_parser(
        "augment", help="TinyBERT data augmentation of a prepared folder or a SQuAD file",
        description="Replace words by the teacher's candidates (TinyBERT's Algorithm 1). A "
                    "prepared folder gets augmented sentences; a SQuAD .json file gets "
                    "rewritten questions, contexts and answers kept (needs --tokenizer).")
    p.add_argument("--input", required=True,
                   help="prepared folder, or a SQuAD v1.1 .json file (questions are rewritten)")
    p.add_argument("--output", required=True,
                   help="folder for the augmented data (a .json file for a SQuAD input)")
    p.add_argument("--tokenizer", help="the teacher's tokenizer (for a SQuAD .json input)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="SQuAD input: leave malformed questions out instead of stopping")
    p.add_argument("--teacher", required=True, help="teacher source (preset, folder, .keras)")
    p.add_argument("--copies", type=int, default=20, help="augmented copies per example (20)")
    p.add_argument("--p", type=float, default=0.4, help="word replacement probability (0.4)")
    p.add_argument("--candidates", type=int, default=15, help="candidates per word (15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_augment)

    p = commands.add_parser("cache-teacher", help="store the teacher's logits in the records")
    p.add_argument("--data", required=True, help="prepared folder")
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (.keras or folder)")
    p.add_argument("--output", required=True, help="folder for the records with logits")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_cache_teacher)

    p = commands.add_parser(
        "finetune-teacher", help="fine-tune a BERT teacher on a task",
        description="Fine-tune a teacher on a prepared folder. On NER or SQuAD folders the "
                    "teacher gets a per-token tag or answer-span head and the best epoch by "
                    "entity F1 / SQuAD F1 on --dev is kept.")
    p.add_argument("--teacher", required=True,
                   help="keras-hub preset, preset folder, Hugging Face folder or .keras")
    p.add_argument("--train", required=True, help="prepared training folder")
    p.add_argument("--dev", default=None, help="prepared dev folder")
    p.add_argument("--output", required=True, help="where to save the teacher (.keras)")
    _add_training_flags(p)
    p.set_defaults(func=cmd_finetune_teacher)

    p = commands.add_parser(
        "distill", help="one TinyBERT distillation stage",
        description="One distillation stage. On NER or SQuAD folders the teacher is a "
                    "fine-tuned tagger or span extractor (.keras) and the student gets the same "
                    "head; the prediction stage keeps the best student by entity F1 / SQuAD F1.")
    p.add_argument("--stage", required=True, choices=PIPELINE_STAGES)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (.keras or folder)")
    p.add_argument("--student", required=True,
                   help="student preset, students/*.yaml name or a .keras student to continue")
    p.add_argument("--train", required=True, help="prepared training folder (unlabeled for "
                                                  "general)")
    p.add_argument("--dev", default=None, help="prepared dev folder")
    p.add_argument("--output", required=True,
                   help="where to save the student (.keras); with --stage general, a folder "
                        "name saves a keras-hub preset folder for `student.init`")
    p.add_argument("--relation-weight", type=float, default=None,
                   help="weight of the MiniLM-v2 attention-relation loss (any head count; "
                        "default 0)")
    p.add_argument("--attention-weight", type=float, default=None,
                   help="weight of TinyBERT's attention loss (needs equal head counts; "
                        "default 1)")
    p.add_argument("--relation-heads", type=int, default=None,
                   help="relation heads, dividing both hidden sizes (default: gcd of heads)")
    p.add_argument("--layer-map", default=None,
                   help="uniform, last, or teacher layers such as 3,6,9,12")
    p.add_argument("--temperature", type=float, default=None,
                   help="softmax temperature of the prediction stage")
    p.add_argument("--hard-label-weight", type=float, default=None,
                   help="weight of the hard-label loss in the prediction stage")
    p.add_argument("--max-sequence-length", type=int, default=None,
                   help="length of a new student's position table")
    _add_training_flags(p)
    p.set_defaults(func=cmd_distill)

    p = commands.add_parser(
        "evaluate", help="task metrics of a .keras or .tflite model",
        description="Score a model on a prepared labeled folder. Sentence tasks: the task's "
                    "metrics. NER folders: entity-level micro F1, precision and recall, and "
                    "the same per entity type. SQuAD folders: exact match and F1 as the "
                    "official v1.1 script computes them.")
    p.add_argument("--model", required=True,
                   help=".keras model (classifier, tagger or span extractor) or .tflite export")
    p.add_argument("--data", required=True, help="prepared labeled folder")
    p.add_argument("--max-answer-length", type=int, default=30,
                   help="QA: the longest answer decoded, in word pieces (default 30)")
    p.add_argument("--task", default=None, help="GLUE task name for its metrics, e.g. mrpc")
    p.add_argument("--metrics", default=None, help="comma-separated metric names")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("export", help="TFLite export with quantisation and metadata")
    p.add_argument("--model", required=True, help="student .keras file")
    p.add_argument("--tokenizer", required=True, help="tokenizer preset or folder")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--quantization", choices=EXPORT_MODES, default="fp32")
    p.add_argument("--sequence-length", type=int, default=128,
                   help="fixed input length; with --dynamic-length the maximum")
    p.add_argument("--dynamic-length", action="store_true",
                   help="[1, -1] inputs: each text runs at its own length (faster on short "
                   "texts), truncated at --sequence-length")
    p.add_argument("--representative-data", default=None,
                   help="prepared folder to calibrate int8 with")
    p.add_argument("--eval-data", default=None, help="prepared labeled folder for the checks")
    p.add_argument("--labels", default=None, help="label names, e.g. negative,positive")
    p.add_argument("--min-agreement", type=float, default=0.9,
                   help="fail when top-1 agreement with Keras is lower (default 0.9)")
    p.add_argument("--int8-io", action="store_true", help="int8 output tensor (int8 mode)")
    p.add_argument("--integer-only", action="store_true",
                   help="int8 mode: quantise attention and LayerNorm too (integer-only "
                   "accelerators; about 3x slower on CPU)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser(
        "predict", help="classify texts (or sentence pairs) with an exported .tflite model",
        description="Classify texts with an exported model.tflite. For a sentence-pair task "
                    "(MRPC, STS-B, RTE, QNLI, QQP, MNLI) give each text's second sentence "
                    "with --pair, in the same order: `predict MODEL 'He left.' --pair 'He "
                    "went away.'`. A regression export (STS-B) prints its score.")
    p.add_argument("model", help="model.tflite")
    p.add_argument("texts", nargs="*",
                   help="texts to classify (first sentences of pairs), or to tag for an NER export")
    p.add_argument("--pair", "--text-pair", nargs="+", default=None, metavar="TEXT2",
                   help="second sentence of each pair, one per TEXT, in order")
    p.add_argument("--question", help="question-answering exports: the question")
    p.add_argument("--context", help="question-answering exports: the passage to answer from")
    p.add_argument("--top-k", type=int, default=None, help="labels to show per text")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser(
        "glue", help="the recipe over several GLUE tasks, one TinyBERT Table 1-style report",
        description="Run the recipe CONFIG once per task (task, data folder and run folder "
                    "set per task) and write OUTPUT/report.md and OUTPUT/report.json: per "
                    "task the teacher, distilled student, its int8 TFLite and the "
                    "label-only baseline on the task's metrics, sizes, latency, and the "
                    "average. Example: tf-tinybert glue configs/recipes/glue_minilm.yaml "
                    "--tasks sst2,cola,mrpc,stsb --data-root ../shared/data --output "
                    "runs/glue")
    p.add_argument("config", help="base recipe YAML, e.g. configs/recipes/glue_minilm.yaml")
    p.add_argument("--tasks", required=True, help="comma-separated task names, e.g. "
                                                  "sst2,cola,mrpc,stsb")
    p.add_argument("--data-root", required=True,
                   help="folder with one sub-folder per task, named after it (sst2/, cola/...)")
    p.add_argument("--output", required=True, help="folder for the runs and the report")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field of every task's recipe, e.g. --set seed=1; "
                        "TASK:KEY=VALUE overrides it for one task, e.g. "
                        "--set cola:augment.enabled=true")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_glue)

    p = commands.add_parser("run", help="the whole recipe from a YAML config")
    p.add_argument("config", help="recipe YAML, e.g. configs/recipes/quickstart.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config field, e.g. --set distill.intermediate.epochs=3")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tf-tinybert` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"tf-tinybert {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
