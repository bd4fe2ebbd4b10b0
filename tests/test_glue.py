"""`tf-tinybert glue`: the recipe over two tiny tasks (classification and regression), one
TinyBERT Table 1-style report whose numbers are the recipes' own."""

import json

import numpy as np
import pytest
from recipe_fixtures import FILLER, NEGATIVE, POSITIVE, make_tiny_task, write_sentiment_tsv

from tf_tinybert.cli import main
from tf_tinybert.glue import MODELS, average, cpu_info, paper_metric


def write_similarity_tsv(path, rows: int, seed: int) -> None:
    """STS-B's layout (sentence1, sentence2, score last): the score counts shared moods."""
    rng = np.random.default_rng(seed)
    lines = ["index\tsentence1\tsentence2\tscore"]
    for index in range(rows):
        moods = [rng.choice(POSITIVE if rng.random() < 0.5 else NEGATIVE) for _ in range(2)]
        first = " ".join([*rng.choice(FILLER, size=2), str(moods[0])])
        second = " ".join([*rng.choice(FILLER, size=2), str(moods[1])])
        same = (moods[0] in POSITIVE) == (moods[1] in POSITIVE)
        lines.append(f"{index}\t{first}\t{second}\t{4.0 if same else 1.0:.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_base_recipe(root, paths):
    recipe = root / "glue_tiny.yaml"
    recipe.write_text(f"""
name: tinyglue
task: sst2
student: {{from: bert_4l_128h, name: tiny, num_layers: 1, hidden_dim: 8, num_heads: 2,
           intermediate_dim: 16}}
seed: 0
cache_teacher: false
data: {{use_tfds: false, max_sequence_length: 16, tokenizer: {paths['tokenizer']}}}
teacher:
  source: {paths['teacher']}
  finetune: {{enabled: false}}  # the tiny teacher is scored as it is: a fit less per task
distill:
  intermediate: {{epochs: 1, batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
  prediction: {{epochs: 1, batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
baseline: {{batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
export:
  modes: [int8]
  sequence_length: 16
  latency_runs: 1
  representative_examples: 8
  evaluate_examples: 16
  min_agreement: 0.0
training: {{checkpoint_every_steps: 50, tensorboard: false}}
report: {{plots: false}}
""", encoding="utf-8")
    return recipe


@pytest.fixture(scope="module")
def glue_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    paths = make_tiny_task(root, train_rows=48, dev_rows=24)
    data_root = root / "glue_data"
    (data_root / "sst2").mkdir(parents=True)
    write_sentiment_tsv(data_root / "sst2" / "train.tsv", 48, seed=0)
    write_sentiment_tsv(data_root / "sst2" / "dev.tsv", 24, seed=1)
    (data_root / "stsb").mkdir()
    write_similarity_tsv(data_root / "stsb" / "train.tsv", 48, seed=2)
    write_similarity_tsv(data_root / "stsb" / "dev.tsv", 24, seed=3)
    recipe = write_base_recipe(root, paths)
    output = root / "out"
    argv = ["glue", str(recipe), "--tasks", "sst2,stsb", "--data-root", str(data_root),
            "--output", str(output), "--quiet", "--set", "distill.prediction.temperature=1.0",
            "--set", "stsb:distill.prediction.temperature=2.0"]
    assert main(argv) == 0
    return output, argv


def test_report_has_every_task_model_and_metric(glue_run):
    output, argv = glue_run
    table = json.loads((output / "report.json").read_text())
    assert list(table["tasks"]) == ["sst2", "stsb"]
    assert table["command"] == ["tf-tinybert", *argv]
    expected = {"sst2": ["accuracy"], "stsb": ["pearson", "spearman"]}
    for task, metrics in expected.items():
        row = table["tasks"][task]
        assert row["metrics"] == metrics and row["wall_seconds"] > 0
        for model in MODELS:
            for metric in metrics:
                value = row[model][metric]
                assert isinstance(value, float) and -1.0 <= value <= 1.0, (task, model, metric)
        assert row["student_int8"]["size_mb"] > 0 and row["student_int8"]["latency_ms"] > 0
        assert row["teacher"]["fp32_tflite_size_mb"] > row["student_int8"]["size_mb"]
        assert row["student"]["params"] < row["teacher"]["params"]
    assert set(table["cpu"]["flags"]) == {"avx512f", "avx512_vnni", "avx_vnni", "amx"}
    markdown = (output / "report.md").read_text()
    assert "stsb (Pearson/Spearman)" in markdown and "sst2 (acc)" in markdown
    # report.json sorts its keys; rendered again from it, the tables keep the --tasks order.
    from tf_tinybert.glue import glue_markdown

    table["tasks"] = dict(reversed(table["tasks"].items()))
    assert glue_markdown(table) == markdown
    assert markdown.index("| stsb |") > markdown.index("| sst2 |")
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]  # no temp files


def test_numbers_are_the_recipes_own(glue_run):
    output, _ = glue_run
    table = json.loads((output / "report.json").read_text())
    for task, row in table["tasks"].items():
        own = json.loads((output / task / "report.json").read_text())
        for metric in row["metrics"]:
            assert row["teacher"][metric] == own["teacher"][metric]
            assert row["student"][metric] == own["student"][metric]
            assert row["baseline"][metric] == own["baseline"][metric]
            assert row["student_int8"][metric] == own["student"]["tflite"]["int8"][metric]
        assert row["student_int8"]["latency_ms"] == own["student"]["tflite"]["int8"]["latency_ms"]
    # The average takes Spearman for STS-B, as the paper's Table 1.
    for model in MODELS:
        assert table["average"][model] == pytest.approx(
            (table["tasks"]["sst2"][model]["accuracy"]
             + table["tasks"]["stsb"][model]["spearman"]) / 2, abs=1e-6)


def test_regression_int8_metrics_recount_on_the_export(glue_run):
    """The int8 Pearson in the table is the exported model's on the dev rows it checked."""
    from tf_tinybert.export import evaluate_tflite

    output, _ = glue_run
    row = json.loads((output / "report.json").read_text())["tasks"]["stsb"]
    scores = evaluate_tflite(output / "stsb" / "export" / "student_int8" / "model.tflite",
                             output / "stsb" / "data" / "dev", metrics=["pearson", "spearman"],
                             max_examples=row["student_int8"]["examples"])
    assert scores["pearson"] == pytest.approx(row["student_int8"]["pearson"], abs=1e-6)
    assert (output / "stsb" / "export" / "student_int8" / "export.json").exists()
    info = json.loads((output / "stsb" / "export" / "student_int8" / "export.json").read_text())
    assert info["task_type"] == "regression"


def test_a_task_prefixed_setting_reaches_that_task_alone(glue_run):
    import yaml

    output, _ = glue_run
    saved = {task: yaml.safe_load((output / task / "config.yaml").read_text())
             for task in ("sst2", "stsb")}
    assert saved["sst2"]["distill"]["prediction"]["temperature"] == 1.0
    assert saved["stsb"]["distill"]["prediction"]["temperature"] == 2.0
    table = json.loads((output / "report.json").read_text())
    assert table["tasks"]["sst2"]["overrides"] == []
    assert table["tasks"]["stsb"]["overrides"] == ["distill.prediction.temperature=2.0"]
    markdown = (output / "report.md").read_text()
    assert "- stsb: `distill.prediction.temperature=2.0`" in markdown
    assert "- sst2" not in markdown


def test_split_overrides_keeps_colons_in_values_and_refuses_unknown_tasks():
    from tf_tinybert.glue import split_overrides

    shared, own = split_overrides(["data.data_dir=C:/glue", "cola: seed=2"], ["sst2", "cola"])
    assert shared == ["data.data_dir=C:/glue"]
    assert own == {"sst2": [], "cola": ["seed=2"]}
    with pytest.raises(ValueError, match="'mnli', which is not among --tasks sst2,cola"):
        split_overrides(["mnli:seed=2"], ["sst2", "cola"])


def test_time_table_sums_the_stages_and_shows_the_resumed_invocation_apart():
    from tf_tinybert.glue import glue_markdown

    row = {"metrics": ["accuracy"], "paper_metric": "accuracy", "train_examples": 10,
           "dev_examples": 5, "wall_seconds": 6.0,
           "stage_seconds": {"teacher": 60.0, "prediction": 120.0, "report": None}}
    markdown = glue_markdown({"tasks": {"sst2": row}})
    assert "| sst2 | 10 | 5 | 3.0 min | 0.1 min | teacher 60s, prediction 120s |" in markdown


def test_missing_task_folder_is_named(tmp_path):
    (tmp_path / "data" / "sst2").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="cola"):
        from tf_tinybert.glue import run_glue

        run_glue("configs/recipes/glue_minilm.yaml", ["sst2", "cola"], tmp_path / "data",
                 tmp_path / "out", verbose=0)


def test_cpu_info_reads_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx512f "
                       "avx512_vnni amx_tile amx_int8\n\nprocessor\t: 1\n")
    info = cpu_info(cpuinfo)
    assert info["model"] == "Test CPU"
    assert info["flags"] == {"avx512f": True, "avx512_vnni": True, "avx_vnni": False,
                             "amx": True}
    assert info["amx_flags"] == ["amx_int8", "amx_tile"]
    assert cpu_info(tmp_path / "absent")["flags"]["avx512f"] is None


def test_paper_metric_and_average():
    assert paper_metric("stsb", ["pearson", "spearman"]) == "spearman"
    assert paper_metric("cola", ["matthews_corrcoef"]) == "matthews_corrcoef"
    rows = {"mrpc": {"metrics": ["accuracy", "f1"], "teacher": {"accuracy": 0.8, "f1": 0.9}},
            "rte": {"metrics": ["accuracy"], "teacher": {"accuracy": 0.6}}}
    assert average(rows)["teacher"] == pytest.approx(0.75)
    assert average(rows)["student"] is None


def test_evaluate_command_gives_pearson_and_spearman_for_a_regression_tflite(glue_run, capsys):
    output, _ = glue_run
    model = output / "stsb" / "export" / "student_int8" / "model.tflite"
    assert main(["evaluate", "--model", str(model), "--data", str(output / "stsb" / "data" / "dev")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert sorted(scores) == ["pearson", "spearman"]
    assert -1.0 <= scores["pearson"] <= 1.0 and -1.0 <= scores["spearman"] <= 1.0


def test_a_failed_task_is_recorded_and_the_others_still_run(tmp_path):
    from tf_tinybert.glue import GlueTaskError, run_glue

    paths = make_tiny_task(tmp_path, train_rows=8, dev_rows=4)
    recipe = write_base_recipe(tmp_path, paths)
    for task in ("sst2", "stsb"):
        (tmp_path / "empty" / task).mkdir(parents=True)  # no train.tsv, no dev.tsv
    with pytest.raises(GlueTaskError, match="2 of 2 tasks failed") as caught:
        run_glue(recipe, ["sst2", "stsb"], tmp_path / "empty", tmp_path / "out", verbose=0)
    assert "train.tsv" in str(caught.value)
    table = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(table["tasks"]) == ["sst2", "stsb"]
    assert all("FileNotFoundError" in row["error"] for row in table["tasks"].values())
    assert table["average"]["student"] is None
    assert "## Failed tasks" in (tmp_path / "out" / "report.md").read_text()
