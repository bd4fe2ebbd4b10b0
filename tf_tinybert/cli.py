"""`tf-tinybert`: argparse sub-commands that call the library's functions and nothing else.

Run `tf-tinybert --help`, or `tf-tinybert COMMAND --help` for a command's flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tf_tinybert.choices import EXPORT_MODES, INPUT_FORMATS, PIPELINE_STAGES, STRATEGIES, TASK_TYPES


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

    from tf_tinybert.recipe import save_model

    save_model(model, pathlib.Path(path))
    print(f"saved {path}")


# ----------------------------------------------------------------------------- commands


def cmd_prepare(args) -> int:
    from tf_tinybert.data import prepare
    from tf_tinybert.teachers import resolve_source

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

    teacher = load_augmentation_teacher(args.teacher)
    manifest = augment(args.input, args.output, teacher=teacher, copies=args.copies, p=args.p,
                       candidates=args.candidates, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {manifest.num_examples} examples to {args.output}")
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


def cmd_finetune_teacher(args) -> int:
    from tf_tinybert.config import FinetuneConfig
    from tf_tinybert.evaluation import default_metrics
    from tf_tinybert.stage import finetune_teacher
    from tf_tinybert.strategies import make_strategy
    from tf_tinybert.teachers import load_teacher

    schedule, training = _config_from(FinetuneConfig, args), _training_config(args)
    _set_numerics(args, training)
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


def cmd_distill(args) -> int:
    from tf_tinybert.distiller import Distiller
    from tf_tinybert.evaluation import default_metrics
    from tf_tinybert.stage import distill
    from tf_tinybert.strategies import make_strategy
    from tf_tinybert.teachers import load_teacher

    stage, training = _stage_config(args), _training_config(args)
    _set_numerics(args, training)
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


def cmd_evaluate(args) -> int:
    from tf_tinybert.config import load_task
    from tf_tinybert.data import load, read_manifest

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

    p = commands.add_parser("prepare", help="text (TSV/CSV/JSONL/tfds/corpus) -> TFRecords")
    p.add_argument("--input", required=True, help="a .tsv/.csv/.jsonl/.txt file or a tfds name "
                                                  "such as glue/sst2")
    p.add_argument("--tokenizer", required=True,
                   help="keras-hub preset name, keras-hub preset folder or Hugging Face folder")
    p.add_argument("--output", required=True, help="folder to write shards and manifest.json to")
    p.add_argument("--format", choices=INPUT_FORMATS, default=None,
                   help="input format (default: from the extension)")
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
                   help="skip malformed rows (counted and listed in the manifest)")
    p.add_argument("--split", default="train", help="tfds split (default train)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_prepare)

    p = commands.add_parser("augment", help="TinyBERT data augmentation of a prepared folder")
    p.add_argument("--input", required=True, help="prepared folder to augment")
    p.add_argument("--output", required=True, help="folder for the augmented data")
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

    p = commands.add_parser("finetune-teacher", help="fine-tune a BERT teacher on a task")
    p.add_argument("--teacher", required=True,
                   help="keras-hub preset, preset folder, Hugging Face folder or .keras")
    p.add_argument("--train", required=True, help="prepared training folder")
    p.add_argument("--dev", default=None, help="prepared dev folder")
    p.add_argument("--output", required=True, help="where to save the teacher (.keras)")
    _add_training_flags(p)
    p.set_defaults(func=cmd_finetune_teacher)

    p = commands.add_parser("distill", help="one TinyBERT distillation stage")
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

    p = commands.add_parser("evaluate", help="task metrics of a .keras or .tflite model")
    p.add_argument("--model", required=True, help=".keras classifier or .tflite export")
    p.add_argument("--data", required=True, help="prepared labeled folder")
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
                   help="override a field of every task's recipe, e.g. --set seed=1")
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
