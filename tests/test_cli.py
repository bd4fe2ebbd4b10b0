"""The tf-tinybert command line: help, the stage-by-stage workflow, and its errors."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from recipe_fixtures import make_tiny_task, write_tiny_recipe
from tiny_models import tiny_tokenizer

from tf_tinybert.cli import build_parser, main

ROOT = pathlib.Path(__file__).resolve().parents[1]
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


def _prepare(tmp_path, paths):
    for split in ("train", "dev"):
        assert main(["prepare", "--input", str(paths["data"] / f"{split}.tsv"), "--tokenizer",
                     str(paths["tokenizer"]), "--output", str(tmp_path / split), "--labels",
                     "0,1", "--max-sequence-length", "16"]) == 0


def _packed(text, sequence_length=16):
    """[CLS] text [SEP] padded, as the classifier's inputs (batch of one)."""
    ids = [2, *(int(i) for i in tiny_tokenizer()([text])[0]), 3]
    token_ids = np.zeros((1, sequence_length), "int32")
    token_ids[0, :len(ids)] = ids
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": (token_ids > 0).astype("int32")}


def _dev_accuracy(model, dev_tsv):
    """Accuracy of `model` on the dev TSV, tokenized here and scored with numpy."""
    rows = [line.split("\t") for line in dev_tsv.read_text().splitlines()[1:]]
    hits = [int(np.argmax(model.predict(_packed(text), verbose=0)[0])) == int(label)
            for text, label in rows]
    return float(np.mean(hits))


def test_workflow_from_text_to_prediction(tmp_path, capsys):
    paths = make_tiny_task(tmp_path)
    tokenizer = str(paths["tokenizer"])
    _prepare(tmp_path, paths)
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
    student = keras.models.load_model(tmp_path / "student.keras")
    assert scores["accuracy"] == pytest.approx(_dev_accuracy(student, paths["data"] / "dev.tsv"))
    assert main(["export", "--model", str(tmp_path / "student.keras"), "--tokenizer", tokenizer,
                 "--output", str(tmp_path / "export"), "--sequence-length", "16",
                 "--labels", "negative,positive", "--eval-data", str(tmp_path / "dev")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "export" / "model.tflite"), "a good film"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "a good film"
    shown = {line.split()[0]: float(line.split()[1]) for line in printed[1:]}
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(student.predict(_packed("a good film"), verbose=0)))[0]
    assert set(shown) == {"negative", "positive"}
    assert shown["negative"] == pytest.approx(float(expected[0]), abs=2e-4)
    assert shown["positive"] == pytest.approx(float(expected[1]), abs=2e-4)
    exported_scores = tmp_path / "export" / "export.json"
    assert exported_scores.exists()


def test_mixed_precision_distill_saves_a_student_that_loads_and_predicts(tmp_path):
    paths = make_tiny_task(tmp_path)
    _prepare(tmp_path, paths)
    student_yaml = tmp_path / "tiny_student.yaml"
    student_yaml.write_text("name: tiny\nnum_layers: 1\nhidden_dim: 8\nnum_heads: 2\n"
                            "intermediate_dim: 16\n")
    output = tmp_path / "student16.keras"
    # A subprocess: --mixed-precision sets the program's global dtype policy.
    command = [sys.executable, "-m", "tf_tinybert.cli", "distill", "--stage", "prediction",
               "--teacher", str(paths["teacher"]), "--student", str(student_yaml),
               "--max-sequence-length", "32", "--train", str(tmp_path / "train"),
               "--dev", str(tmp_path / "dev"), "--epochs", "1", "--batch-size", "16",
               "--learning-rate", "3e-3", "--checkpoint-every", "4", "--mixed-precision",
               "--output", str(output)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert keras.config.dtype_policy().name == "float32"  # nothing leaked into this process
    student = keras.models.load_model(output)
    assert student.backbone.transformer_layers[0].compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in student.trainable_variables)
    logits = np.asarray(student.predict(_packed("a good film"), verbose=0), "float32")
    assert logits.shape == (1, 2) and np.isfinite(logits).all()


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
