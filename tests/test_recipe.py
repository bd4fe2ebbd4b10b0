"""The whole recipe end to end on a tiny task, and its resumption."""

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

from tf_tinybert.config import load_recipe
from tf_tinybert.recipe import run_recipe

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _dev_accuracy(model, dev_tsv, sequence_length=16):
    """Accuracy on the dev TSV, tokenized here ([CLS] text [SEP]) and scored with numpy."""
    rows = [line.split("\t") for line in dev_tsv.read_text().splitlines()[1:]]
    token_ids = np.zeros((len(rows), sequence_length), "int32")
    for row, (text, _) in enumerate(rows):
        ids = [2, *(int(i) for i in tiny_tokenizer()([text])[0])][:sequence_length - 1] + [3]
        token_ids[row, :len(ids)] = ids
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
              "padding_mask": (token_ids > 0).astype("int32")}
    predicted = np.asarray(model.predict(inputs, verbose=0)).argmax(-1)
    return float((predicted == np.array([int(label) for _, label in rows])).mean())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    paths = make_tiny_task(root)
    recipe = write_tiny_recipe(root, paths)
    report = run_recipe(load_recipe(recipe), verbose=0)
    return root, recipe, report


def test_report_holds_the_documented_keys(finished_run):
    root, _, report = finished_run
    saved = json.loads((root / "run" / "report.json").read_text())
    for where in (report, saved):
        for who in ("teacher", "student"):
            model = keras.models.load_model(root / "run" / f"{who}.keras")
            assert where[who]["accuracy"] == pytest.approx(
                _dev_accuracy(model, root / "data" / "dev.tsv")), who
        assert where["student"]["params"] < where["teacher"]["params"]
        assert where["data"]["train_examples"] == 96
        for mode in ("fp32", "dynamic"):
            entry = where["student"]["tflite"][mode]
            assert entry["size_mb"] > 0 and entry["latency_ms"] > 0
            # The examples checked agree with Keras: the accuracy is the student's within
            # the disagreements' share.
            assert abs(entry["accuracy"] - where["student"]["accuracy"]) <= (
                1.0 - entry["agreement"]) + 1e-9, mode
            assert 0.0 <= entry["mean_abs_diff"] <= entry["max_abs_diff"], mode
        # fp32 reproduces Keras' probabilities.
        assert where["student"]["tflite"]["fp32"]["mean_abs_diff"] < 1e-5
        assert where["teacher"]["tflite"]["fp32"]["size_mb"] > where["student"]["tflite"]["fp32"]["size_mb"]
        for stage in ("data", "teacher", "intermediate", "prediction", "baseline", "export"):
            assert where["stages"][stage]["seconds"] >= 0
    assert {"accuracy"} <= set(report["baseline"])
    assert [example["text"] for example in report["examples"]] == ["a good film", "an awful plot"]


def test_fp32_export_matches_the_student_accuracy(finished_run):
    _, _, report = finished_run
    # fp32 TFLite and Keras agree on every one of the checked dev sentences.
    assert report["student"]["tflite"]["fp32"]["agreement"] == 1.0


def test_run_writes_report_files_and_plots(finished_run):
    root, _, _ = finished_run
    run = root / "run"
    for name in ("report.md", "report.json", "config.yaml", "teacher.keras", "student.keras",
                 "baseline.keras", "accuracy_vs_latency.png"):
        assert (run / name).exists(), name
    assert "student" in (run / "report.md").read_text()


def test_rerunning_skips_finished_stages(finished_run):
    root, recipe, report = finished_run
    before = (root / "run" / "student.keras").stat().st_mtime_ns
    again = run_recipe(load_recipe(recipe), verbose=0)
    assert (root / "run" / "student.keras").stat().st_mtime_ns == before
    assert again["student"]["accuracy"] == report["student"]["accuracy"]


def test_missing_data_says_how_to_point_at_a_tsv(tmp_path):
    paths = make_tiny_task(tmp_path)
    recipe = write_tiny_recipe(tmp_path, paths)
    config = load_recipe(recipe, [f"data.data_dir={tmp_path / 'nowhere'}"])
    with pytest.raises(FileNotFoundError, match="--set data.data_dir=/path/to/folder"):
        run_recipe(config, verbose=0)


def test_console_script_runs_an_int8_recipe_from_a_preset_teacher(tmp_path):
    """`tf-tinybert run` as a user runs it: preset teacher, from_teacher student, int8 with
    inputs of any length (export.dynamic_length)."""
    from recipe_fixtures import save_tiny_preset, write_int8_recipe, write_sentiment_tsv

    from tf_tinybert.runtime import TextClassifier

    data = tmp_path / "data"
    data.mkdir()
    write_sentiment_tsv(data / "train.tsv", 96, seed=0)
    write_sentiment_tsv(data / "dev.tsv", 32, seed=1)
    recipe = write_int8_recipe(tmp_path, data, save_tiny_preset(tmp_path),
                               dynamic_length=True)
    script = pathlib.Path(sys.executable).parent / "tf-tinybert"
    assert script.exists(), f"the console script is not installed at {script}: run `make install`"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    completed = subprocess.run([str(script), "run", str(recipe)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["data"]["train_examples"] == 64  # data.train_subset
    assert report["student"]["params"] < report["teacher"]["params"]
    assert {"accuracy", "params", "tflite"} <= set(report["teacher"])
    assert {"accuracy", "params", "tflite"} <= set(report["student"])
    # One optimizer step per epoch on 64 rows: this test checks the plumbing, not learning
    # (tests/test_distiller.py holds the learning checks).
    assert report["stages"]["prediction"]["history"]["hard_loss"]  # hard labels were mixed in
    assert set(report["student"]["tflite"]) == {"int8"}
    entry = report["student"]["tflite"]["int8"]
    assert entry["size_mb"] > 0 and entry["latency_ms"] > 0
    assert entry["agreement"] >= 0.5  # export.min_agreement
    model = run / "export" / "student_int8" / "model.tflite"
    assert pathlib.Path(entry["path"]).resolve() == model.resolve()
    classifier = TextClassifier(str(model))
    assert classifier.dynamic_length  # the student's export takes any length...
    assert classifier.encode("a good film")["input_word_ids"].shape == (5,)
    teacher = TextClassifier(str(run / "export" / "teacher_fp32" / "model.tflite"))
    assert not teacher.dynamic_length  # ...the teacher's reference export stays fixed
    sentences = ["a good film", "an awful plot"]
    results = classifier.classify(sentences)
    for result in results:
        assert sorted(c.category_name for c in result.categories) == ["negative", "positive"]
        assert abs(sum(c.score for c in result.categories) - 1.0) <= 0.02
    assert [{"text": s, "label": r.label, "score": round(r.score, 4)}
            for s, r in zip(sentences, results)] == report["examples"]


def test_a_stage_keeps_its_time_when_reloaded_and_records_it_when_it_works_again(tmp_path):
    import time
    import types

    from tf_tinybert.recipe import Run

    config = types.SimpleNamespace(run_dir=str(tmp_path), name="t")
    first = Run(config, verbose=0)
    with first.stage("teacher"):
        time.sleep(0.3)
    recorded = first.report["stages"]["teacher"]["seconds"]
    assert recorded >= 0.3

    again = Run(config, verbose=0)  # reads report.json
    with again.stage("teacher"):  # a rerun that only reloads: the first run's time stays
        pass
    assert again.report["stages"]["teacher"]["seconds"] == recorded
    # The model file was deleted and the stage trained again: its new time is recorded.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with again.stage("teacher"):
        again.load_or_build("teacher.keras", lambda: model)
    saved = json.loads((tmp_path / "report.json").read_text())["stages"]["teacher"]["seconds"]
    assert saved != recorded and saved < 0.3
    with again.stage("teacher"):  # now reused from the file: the time stays
        again.load_or_build("teacher.keras", lambda: pytest.fail("rebuilt"))
    assert again.report["stages"]["teacher"]["seconds"] == saved
    with again.stage("teacher", fresh=True):  # a stage entered only to work
        time.sleep(0.4)
    assert again.report["stages"]["teacher"]["seconds"] >= 0.4


def test_augmented_rows_and_their_cached_logits_follow_the_augment_settings(tmp_path):
    """A resumed run whose augment.copies changed augments again and caches the teacher's
    logits for the new rows (both stages used to reuse any folder that had a manifest)."""
    from tf_tinybert.data import read_manifest

    paths = make_tiny_task(tmp_path, train_rows=32, dev_rows=16)
    recipe = write_tiny_recipe(tmp_path, paths, modes=())
    text = recipe.read_text(encoding="utf-8").replace(
        "baseline: {", "baseline: {enabled: false, ")
    data = tmp_path / "run" / "data"
    counts = {}
    for copies in (1, 3, 3):
        recipe.write_text(text + f"augment: {{enabled: true, copies: {copies}}}\n",
                          encoding="utf-8")
        report = run_recipe(load_recipe(recipe), verbose=0)
        augmented, cached = read_manifest(data / "augmented"), read_manifest(data / "teacher_cache")
        assert augmented.augmentation["copies"] == cached.augmentation["copies"] == copies
        assert cached.num_examples == augmented.num_examples
        counts.setdefault(copies, []).append(
            (augmented.num_examples, (data / "teacher_cache" / "manifest.json").stat().st_mtime_ns))
        assert "student" in report
    assert 32 < counts[1][0][0] < counts[3][0][0] <= 32 * 4
    assert counts[3][1] == counts[3][0]  # the same settings again: both folders reused


def test_a_new_teacher_in_the_same_folder_is_augmented_and_cached_again(tmp_path):
    """Deleting teacher.keras and fine-tuning another teacher (here: another learning rate)
    in the same run folder rewrites the augmented rows and caches the new teacher's logits;
    the old code reused both, so the student would have distilled from a deleted teacher."""
    import shutil

    from tf_tinybert.data import load, read_manifest
    from tf_tinybert.fingerprints import weights_fingerprint

    paths = make_tiny_task(tmp_path, train_rows=32, dev_rows=16)
    recipe = write_tiny_recipe(tmp_path, paths, modes=())
    text = recipe.read_text(encoding="utf-8").replace(
        "baseline: {", "baseline: {enabled: false, ") + "augment: {enabled: true, copies: 1}\n"
    run_dir, data = tmp_path / "run", tmp_path / "run" / "data"
    fingerprints = []
    for learning_rate in ("3.0e-3", "1.0e-2"):
        recipe.write_text(text.replace("finetune: {epochs: 2, batch_size: 16, learning_rate: "
                                       "3.0e-3", f"finetune: {{epochs: 2, batch_size: 16, "
                                       f"learning_rate: {learning_rate}"), encoding="utf-8")
        for stale in run_dir.glob("*.keras"):  # a new teacher, and students distilled from it
            stale.unlink()
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        run_recipe(load_recipe(recipe), verbose=0)
        teacher = keras.saving.load_model(run_dir / "teacher.keras", compile=False)
        fingerprint = weights_fingerprint(teacher)
        augmented, cached = read_manifest(data / "augmented"), read_manifest(data / "teacher_cache")
        assert augmented.augmentation["teacher_weights"] == fingerprint
        assert cached.teacher_logits["teacher_weights"] == fingerprint
        for features, _ in load(data / "teacher_cache", batch_size=64, shuffle=False,
                                bucket_by_length=False):
            inputs = {key: features[key] for key in ("token_ids", "segment_ids", "padding_mask")}
            np.testing.assert_allclose(features["teacher_logits"].numpy(),
                                       teacher.predict_on_batch(inputs), atol=1e-4)
        fingerprints.append(fingerprint)
    assert fingerprints[0] != fingerprints[1]
