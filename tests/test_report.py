"""The run report: JSON keys other checks read, the markdown tables' ratios, the plots."""

import json
import struct

import pytest

from tf_tinybert import report as rp


def full_report():
    return {
        "name": "quickstart",
        "primary_metric": "accuracy",
        "data": {"train_examples": 8000, "dev_examples": 872, "train_subset": 8000,
                 "max_sequence_length": 64},
        "teacher": {"accuracy": 0.89, "params": 22_713_986,
                    "tflite": {"fp32": {"size_mb": 90.0, "latency_ms": 40.0, "accuracy": 0.889}}},
        "student": {"accuracy": 0.87, "params": 14_350_874,
                    "tflite": {"dynamic": {"size_mb": 15.0, "latency_ms": 10.0, "accuracy": 0.868},
                               "int8": {"size_mb": 14.4, "latency_ms": 8.0, "accuracy": 0.8633}}},
        "baseline": {"accuracy": 0.81, "params": 14_350_874},
        "stages": {
            "teacher": {"seconds": 95.2, "history": {"loss": [0.5, 0.3], "val_loss": [0.4, 0.35]}},
            "intermediate": {"seconds": 190.0, "history": {
                "loss": [3.0, 2.0, 1.5], "hidden_loss": [1.0, 0.7, 0.5],
                "attention_loss": [2.0, 1.3, 1.0], "accuracy": [0.5, 0.5, 0.5]}},
            "export": {"seconds": 61.0},
        },
        "examples": [{"text": "a gorgeous, witty movie | really", "label": "positive",
                      "score": 0.987}],
    }


def png_size(path):
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", content[16:24])


def test_lookup_follows_dotted_keys():
    report = full_report()
    assert rp.lookup(report, "student.tflite.int8.size_mb") == 14.4
    assert rp.lookup(report, "student.tflite.fp16.size_mb") is None
    assert rp.lookup(report, "data.train_examples.nope", "absent") == "absent"


def test_a_full_report_misses_no_key():
    assert rp.missing_keys(full_report()) == []


def test_missing_keys_are_listed_per_mode():
    report = full_report()
    del report["student"]["tflite"]["int8"]["latency_ms"]
    del report["teacher"]["params"]
    assert rp.missing_keys(report) == ["teacher.params", "student.tflite.int8.latency_ms"]
    assert "stages.<name>.seconds" in rp.missing_keys({})


def test_write_report_writes_json_markdown_and_plots(tmp_path):
    report = full_report()
    paths = rp.write_report(report, tmp_path / "run")
    assert json.loads(paths["json"].read_text()) == report
    names = sorted(path.name for path in paths["plots"])
    assert names == ["accuracy_vs_latency.png", "loss_intermediate.png", "loss_teacher.png"]
    for path in paths["plots"]:
        width, height = png_size(path)
        assert width > 300 and height > 200
    markdown = paths["markdown"].read_text()
    for name in names:
        assert f"]({name})" in markdown
    assert not [p for p in (tmp_path / "run").iterdir() if "partial" in p.name]


def test_markdown_ratios_match_a_hand_computation(tmp_path):
    markdown = rp.markdown_report(full_report())
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): line
            for line in markdown.splitlines() if line.startswith("| ")}
    int8 = rows[("student (distilled)", "TFLite int8")]
    assert "| 0.8633 |" in int8
    assert f"| {100 * 0.8633 / 0.89:.1f}% |" in int8  # 97.0% of the teacher
    assert "| 6.2x |" in int8 and "| 5.0x |" in int8  # 90 / 14.4 MB, 40 / 8 ms
    teacher_fp32 = rows[("teacher", "TFLite fp32")]
    assert "| 1.0x | 1.0x |" in teacher_fp32
    assert "| 22.7M |" in rows[("teacher", "Keras")]
    assert "| 91.0% |" in rows[("baseline (labels only)", "Keras")]
    assert "| total | 346.2 | 5:46 |" in markdown
    assert "8,000 training examples (a seeded random subset" in markdown
    assert "a gorgeous, witty movie \\| really" in markdown  # pipes escaped in cells


def test_tables_follow_pipeline_order_not_json_key_order():
    # report.json is written with sorted keys; a rerun reads it back alphabetised.
    report = json.loads(json.dumps(full_report(), sort_keys=True))
    report["student"]["tflite"]["fp32"] = {"size_mb": 57.0, "latency_ms": 20.0}
    report["stages"]["baseline"] = {"seconds": 10.0}
    models, stages = rp.markdown_report(report).split("## Time per stage")
    stages = stages.split("## Examples")[0]

    def first_cells(text):
        return [[cell.strip() for cell in line.strip("|").split("|")[:2]]
                for line in text.splitlines() if line.startswith("| ")]

    formats = [cells[1] for cells in first_cells(models) if cells[0] == "student (distilled)"]
    assert formats == ["Keras", "TFLite fp32", "TFLite dynamic", "TFLite int8"]
    assert [cells[0] for cells in first_cells(stages)][1:] == [
        "teacher", "intermediate", "baseline", "export", "total"]


def test_missing_measurements_are_named_in_the_markdown():
    report = full_report()
    del report["teacher"]["tflite"]
    markdown = rp.markdown_report(report)
    assert "## Not measured" in markdown and "`teacher.tflite.fp32.size_mb`" in markdown


def test_plots_can_be_turned_off(tmp_path):
    paths = rp.write_report(full_report(), tmp_path, plots=False)
    assert paths["plots"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def test_no_exports_means_no_latency_plot(tmp_path):
    report = {"teacher": {"accuracy": 0.9}, "stages": {}}
    assert rp.plot_accuracy_vs_latency(report, tmp_path / "a.png") is False
    assert not (tmp_path / "a.png").exists()


def test_summary_table_lists_every_model_and_export():
    table = rp.summary_table(full_report())
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["model", "format", "accuracy"]
    assert len(lines) == 2 + 6  # header, rule, 6 rows
    assert any("TFLite int8" in line and "6.2x" in line for line in lines)


@pytest.mark.parametrize("metric", ["matthews_corrcoef", "pearson"])
def test_tables_follow_the_primary_metric(metric):
    report = {"primary_metric": metric, "teacher": {metric: 0.5, "params": 10},
              "student": {metric: 0.45, "params": 5}}
    table = rp.summary_table(report)
    assert metric in table.splitlines()[0] and "90.0%" in table


def test_missing_keys_follow_the_primary_metric():
    from tf_tinybert.report import missing_keys

    report = {"primary_metric": "pearson", "teacher": {"pearson": 0.8, "params": 10},
              "student": {"pearson": 0.7, "params": 5,
                          "tflite": {"int8": {"pearson": 0.69, "size_mb": 1.0,
                                              "latency_ms": 2.0}}},
              "data": {"train_examples": 10}, "stages": {"teacher": {"seconds": 1.0}}}
    assert missing_keys(report) == ["teacher.tflite.fp32.size_mb",
                                    "teacher.tflite.fp32.latency_ms"]
    del report["student"]["tflite"]["int8"]["pearson"]
    assert "student.tflite.int8.pearson" in missing_keys(report)
