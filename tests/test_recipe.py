"""The whole recipe end to end on a tiny task, and its resumption."""

import json

import pytest
from recipe_fixtures import make_tiny_task, write_tiny_recipe

from tf_tinybert.config import load_recipe
from tf_tinybert.recipe import run_recipe


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
        assert 0.0 <= where["teacher"]["accuracy"] <= 1.0
        assert 0.0 <= where["student"]["accuracy"] <= 1.0
        assert where["student"]["params"] < where["teacher"]["params"]
        assert where["data"]["train_examples"] == 96
        for mode in ("fp32", "dynamic"):
            entry = where["student"]["tflite"][mode]
            assert entry["size_mb"] > 0 and entry["latency_ms"] > 0
            assert 0.0 <= entry["accuracy"] <= 1.0
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
