"""The recipe on the token task shapes: NER through `tf-tinybert run` in a subprocess, QA
through `run_recipe` in-process, each from one YAML on tiny generated CoNLL / SQuAD files."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from token_fixtures import make_token_tasks, write_token_recipe

from tf_tinybert.config import load_recipe
from tf_tinybert.recipe import run_recipe
from tf_tinybert.token_recipe import subset_conll, subset_squad

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ("teacher", "student", "student_int8", "baseline")


def _gold_entities(conll: pathlib.Path) -> dict:
    """Entity count per type of an IOB2 CoNLL file, read here (a B- tag starts one)."""
    counts: dict = {}
    for line in conll.read_text().splitlines():
        tag = line.split()[-1] if line.strip() else "O"
        if tag.startswith("B-"):
            counts[tag[2:]] = counts.get(tag[2:], 0) + 1
    return counts


def test_ner_recipe_runs_end_to_end_through_the_cli(tmp_path):
    paths = make_token_tasks(tmp_path)
    recipe = write_token_recipe(tmp_path, paths, "conll2003", "ner", modes=("dynamic",),
                                teacher_export=False)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run([sys.executable, "-m", "tf_tinybert.cli", "run", str(recipe),
                                "--quiet"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = tmp_path / "ner"
    report = json.loads((run / "report.json").read_text())
    for model in ("teacher", "student", "baseline"):
        for metric in ("f1", "precision", "recall"):
            assert 0.0 <= report[model][metric] <= 1.0, (model, metric)
        # Every gold entity of valid.txt is scored once (no sentence is longer than a window).
        gold = _gold_entities(paths["conll"] / "valid.txt")
        assert report[model]["support"] == sum(gold.values())
        assert set(report[model]["per_type"]) >= set(gold)
        assert set(report[model]["per_type"]) <= {"PER", "LOC", "ORG", "MISC"}
        for kind, count in gold.items():
            assert report[model]["per_type"][kind]["support"] == count
    assert report["primary_metric"] == "f1"
    dynamic = report["student"]["tflite"]["dynamic"]
    assert 0.0 <= dynamic["f1"] <= 1.0 and dynamic["tag_agreement"] > 0.9
    assert report["data"]["train_sentences"] == 64  # train_subset of 96
    for name in ("teacher", "student_intermediate", "student", "baseline"):
        assert (run / f"{name}.keras").is_file()
    assert (run / "export" / "student_dynamic" / "model.tflite").is_file()
    assert (run / "report.md").is_file()


def test_qa_recipe_runs_in_process_and_resumes(tmp_path):
    paths = make_token_tasks(tmp_path)
    recipe = write_token_recipe(tmp_path, paths, "squad", "qa", modes=("int8",), length=16)
    report = run_recipe(load_recipe(recipe), verbose=0)
    dev_questions = sum(len(p["qas"]) for a in json.loads(
        (paths["squad"] / "dev.json").read_text())["data"] for p in a["paragraphs"])
    for model in MODELS:
        assert 0.0 <= report[model]["exact_match"] <= report[model]["f1"] <= 1.0
        assert report[model]["count"] == dev_questions
    assert report["student_int8"]["f1"] == report["student"]["tflite"]["int8"]["f1"]
    # Contexts longer than a window were cut into several.
    assert report["data"]["dev_windows"] > report["data"]["dev_questions"] == dev_questions
    # The fp32 teacher export answers as its Keras model.
    fp32 = report["teacher"]["tflite"]["fp32"]
    assert fp32["f1"] == pytest.approx(report["teacher"]["f1"])
    assert fp32["exact_match"] == pytest.approx(report["teacher"]["exact_match"])
    assert fp32["span_agreement"] == 1.0
    # Run again: every stage is reused (no model is written again), the figures are the same.
    run = tmp_path / "qa"
    stamps = {p.name: p.stat().st_mtime_ns for p in run.glob("*.keras")}
    again = run_recipe(load_recipe(recipe), verbose=0)
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.keras")} == stamps
    for model in ("teacher", "student", "baseline"):
        assert again[model]["f1"] == report[model]["f1"]


def test_subsets_keep_whole_sentences_and_questions(tmp_path):
    paths = make_token_tasks(tmp_path)
    target = subset_conll(paths["conll"] / "train.txt", tmp_path / "s.txt", 10, seed=0)
    blocks = [b for b in target.read_text().split("\n\n") if b.strip()]
    source = paths["conll"] / "train.txt"
    source_blocks = [b for b in source.read_text().split("\n\n")
                     if b.strip() and not b.startswith("-DOCSTART-")]
    assert len(blocks) == 10 and all(b in source_blocks for b in blocks)
    assert [source_blocks.index(b) for b in blocks] == sorted(source_blocks.index(b) for b in blocks)
    target = subset_squad(paths["squad"] / "train.json", tmp_path / "s.json", 7, seed=0)
    kept = json.loads(target.read_text())["data"]
    assert sum(len(p["qas"]) for a in kept for p in a["paragraphs"]) == 7
    original = {qa["id"]: p["context"] for a in json.loads(
        (paths["squad"] / "train.json").read_text())["data"] for p in a["paragraphs"]
        for qa in p["qas"]}
    assert all(original[qa["id"]] == p["context"] for a in kept for p in a["paragraphs"]
               for qa in p["qas"])


def test_a_student_from_the_teachers_layers_copies_them_and_the_head():
    import keras
    import numpy as np
    from tiny_models import random_features, tiny_classifier

    from tf_tinybert.config import StudentConfig
    from tf_tinybert.token_models import BertTokenTagger, token_model_for
    from tf_tinybert.token_recipe import new_token_student

    backbone = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                               max_sequence_length=32, seed=3).backbone
    teacher = token_model_for(backbone, "token_classification", num_classes=5)
    config = StudentConfig("s", num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32,
                           init="from_teacher", init_layers=(2,))
    student = new_token_student(config, teacher, 16)
    assert isinstance(student, BertTokenTagger) and student.num_classes == 5
    for ours, theirs in ((student.backbone.transformer_layers[0], backbone.transformer_layers[1]),
                         (student.output_dense, teacher.output_dense),
                         (student.backbone.get_layer("token_embedding"),
                          backbone.get_layer("token_embedding"))):
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(a, b)
    logits = keras.ops.convert_to_numpy(student(random_features(sequence_length=12)))
    assert logits.shape == (4, 12, 5)
    wrong = StudentConfig("w", num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16,
                          init="from_teacher")
    with pytest.raises(ValueError, match=r"must be the teacher's \(16, 2, 32\)"):
        new_token_student(wrong, teacher, 16)
