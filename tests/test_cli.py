"""The tf-tinybert command line: help, the stage-by-stage workflow, and its errors."""

import json

import pytest
from recipe_fixtures import make_tiny_task, write_tiny_recipe

from tf_tinybert.cli import build_parser, main

COMMANDS = ("prepare", "augment", "cache-teacher", "finetune-teacher", "distill", "evaluate",
            "export", "predict", "run")


def test_every_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: tf-tinybert " + command in capsys.readouterr().out


def test_workflow_from_text_to_prediction(tmp_path, capsys):
    paths = make_tiny_task(tmp_path)
    tokenizer = str(paths["tokenizer"])
    for split in ("train", "dev"):
        assert main(["prepare", "--input", str(paths["data"] / f"{split}.tsv"), "--tokenizer",
                     tokenizer, "--output", str(tmp_path / split), "--labels", "0,1",
                     "--max-sequence-length", "16"]) == 0
    common = ["--train", str(tmp_path / "train"), "--dev", str(tmp_path / "dev"),
              "--epochs", "1", "--batch-size", "16", "--learning-rate", "3e-3",
              "--checkpoint-every", "4"]
    assert main(["finetune-teacher", "--teacher", str(paths["teacher"]),
                 "--output", str(tmp_path / "teacher.keras"), *common]) == 0
    assert main(["distill", "--stage", "intermediate", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", "bert_4l_128h", "--max-sequence-length", "32",
                 "--output", str(tmp_path / "stage1.keras"), "--layer-map", "last", *common]) != 0
    # bert_4l_128h has 4 heads and 4 layers: too deep for a 2-layer teacher.
    assert "more transformer layers" in capsys.readouterr().err
    student_yaml = tmp_path / "tiny_student.yaml"
    student_yaml.write_text("name: tiny\nnum_layers: 1\nhidden_dim: 8\nnum_heads: 2\n"
                            "intermediate_dim: 16\n")
    assert main(["distill", "--stage", "intermediate", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", str(student_yaml), "--max-sequence-length", "32",
                 "--output", str(tmp_path / "stage1.keras"), *common]) == 0
    assert main(["distill", "--stage", "prediction", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", str(tmp_path / "stage1.keras"),
                 "--output", str(tmp_path / "student.keras"), *common]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "student.keras"), "--data",
                 str(tmp_path / "dev"), "--task", "sst2"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert main(["export", "--model", str(tmp_path / "student.keras"), "--tokenizer", tokenizer,
                 "--output", str(tmp_path / "export"), "--sequence-length", "16",
                 "--labels", "negative,positive", "--eval-data", str(tmp_path / "dev")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "export" / "model.tflite"), "a good film"]) == 0
    printed = capsys.readouterr().out
    assert "negative" in printed or "positive" in printed
    exported_scores = tmp_path / "export" / "export.json"
    assert exported_scores.exists()


def test_run_rejects_an_unknown_override_naming_it(tmp_path, capsys):
    paths = make_tiny_task(tmp_path)
    recipe = write_tiny_recipe(tmp_path, paths)
    code = main(["run", str(recipe), "--set", "distill.intermediate.epoch=3"])
    assert code == 2
    error = capsys.readouterr().err
    assert "distill.intermediate.epoch" in error and "epochs" in error


def test_parser_defaults_match_the_issue():
    args = build_parser().parse_args(["augment", "--input", "a", "--output", "b",
                                      "--teacher", "t"])
    assert (args.copies, args.p, args.candidates, args.seed) == (20, 0.4, 15, 0)


def test_training_flags_build_the_recipes_configs_with_their_defaults():
    from tf_tinybert import cli
    from tf_tinybert.config import (
        FinetuneConfig,
        IntermediateStageConfig,
        PredictionStageConfig,
        TrainingConfig,
    )

    required = ["--teacher", "t.keras", "--train", "train", "--output", "s.keras"]
    args = build_parser().parse_args(["distill", "--stage", "prediction", "--student", "s",
                                      *required])
    # Unset flags keep the dataclass defaults: each default lives in tf_tinybert.config only.
    assert cli._stage_config(args) == PredictionStageConfig()
    assert cli._training_config(args) == TrainingConfig()
    args = build_parser().parse_args([
        "distill", "--stage", "intermediate", "--student", "s", *required, "--epochs", "2",
        "--learning-rate", "1e-3", "--layer-map", "2,4", "--checkpoint-every", "7", "--xla",
        "--weight-decay", "0", "--max-steps", "9"])
    assert cli._stage_config(args) == IntermediateStageConfig(
        epochs=2, learning_rate=1e-3, layer_map=(2, 4), weight_decay=0.0, max_steps=9)
    assert cli._training_config(args) == TrainingConfig(checkpoint_every_steps=7, xla=True)
    args = build_parser().parse_args(["finetune-teacher", *required, "--batch-size", "8"])
    assert cli._config_from(FinetuneConfig, args) == FinetuneConfig(batch_size=8)


def test_a_bad_training_flag_is_refused_naming_the_key(tmp_path, capsys):
    code = main(["finetune-teacher", "--teacher", "t", "--train", str(tmp_path), "--output",
                 str(tmp_path / "t.keras"), "--warmup", "1.5"])
    assert code == 2
    assert "warmup" in capsys.readouterr().err
