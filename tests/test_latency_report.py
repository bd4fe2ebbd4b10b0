"""benchmarks/variable_length_latency.py: the latency.* keys it merges into the speed report."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "variable_length_latency.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("variable_length_latency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIGURES = {"teacher_fp32_128": {"mean_ms": 24.0, "p50_ms": 23.0, "p95_ms": 30.0},
           "fixed_128": {"mean_ms": 6.0, "p50_ms": 5.5, "p95_ms": 8.0},
           "dynamic": {"mean_ms": 1.5, "p50_ms": 1.0, "p95_ms": 3.0}}


def test_latency_keys_are_the_issue_names_and_ratios_of_the_means(script):
    keys = script.latency_keys(FIGURES, "int8")
    assert keys["teacher_fp32_ms"] == 24.0
    assert keys["student_int8_ms"] == 6.0
    assert keys["student_int8_variable_mean_ms"] == 1.5
    assert keys["teacher_over_student_int8"] == pytest.approx(24.0 / 6.0)
    assert keys["fixed128_over_variable"] == pytest.approx(6.0 / 1.5)
    assert keys["teacher_over_student_int8_variable"] == pytest.approx(24.0 / 1.5)


def test_latency_keys_without_a_teacher_leave_the_teacher_out(script):
    keys = script.latency_keys({k: v for k, v in FIGURES.items() if k != "teacher_fp32_128"},
                               "dynamic")
    assert "teacher_fp32_ms" not in keys
    assert keys["student_dynamic_variable_mean_ms"] == 1.5


def test_merge_keeps_the_other_report_keys_and_replaces_latency(script, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"distill": {"seq64": {"ours": 70.0}}, "latency": {"old": 1}}))
    script.merge_speed_report(path, script.latency_keys(FIGURES, "int8"), {"command": "x"})
    report = json.loads(path.read_text())
    assert report["distill"]["seq64"]["ours"] == 70.0
    assert "old" not in report["latency"]
    assert report["latency"]["student_int8_ms"] == 6.0
    assert report["latency"]["command"] == "x"
    assert list(tmp_path.iterdir()) == [path]


def test_latency_keys_add_the_whole_list_figure_when_measured(script):
    keys = script.latency_keys({**FIGURES, "dynamic_list": {"mean_ms": 1.2}}, "int8")
    assert keys["student_int8_variable_list_mean_ms"] == 1.2
    assert keys["fixed128_over_variable_list"] == pytest.approx(6.0 / 1.2)
    assert "student_int8_variable_list_mean_ms" not in script.latency_keys(FIGURES, "int8")


class _CountingClassifier:
    """Stands in for a TextClassifier: records the input lengths it is run at."""

    def __init__(self):
        self.lengths = []

    def encode(self, text):
        n = len(text.split()) + 2
        return {"input_word_ids": np.zeros(n, np.int32), "input_mask": np.ones(n, np.int32)}

    def run_encoded(self, inputs):
        self.lengths.append(inputs["input_word_ids"].shape[0])


def test_measure_runs_shortest_first_only_where_asked(script):
    texts = ["a b c", "a", "a b c d e", "a b"]
    plain, listed = _CountingClassifier(), _CountingClassifier()
    figures = script.measure({"dynamic": plain, "dynamic_list": listed}, texts, rounds=2,
                             shortest_first=("dynamic_list",))
    assert plain.lengths[:4] == [5, 3, 7, 4] and len(plain.lengths) == 12  # warm-up + 2 rounds
    assert listed.lengths[:4] == [3, 4, 5, 7]
    assert figures["dynamic_list"]["sentences"] == 4
    assert figures["dynamic_list"]["input_length_mean"] == figures["dynamic"]["input_length_mean"]


def test_invoke_only_times_each_distinct_length_once_and_weighs_the_mean(script, tmp_path):
    from tiny_models import TINY_VOCAB, tiny_classifier

    from tf_tinybert.export import to_tflite

    path = tmp_path / "dynamic.tflite"
    path.write_bytes(to_tflite(tiny_classifier(max_sequence_length=16), "fp32", 16,
                               dynamic_length=True))
    (tmp_path / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")  # random ids' range
    lengths = [3, 3, 3, 5, 16]
    bound = script.invoke_only(path, lengths, threads=1, runs=3)
    per_length = bound["per_length_ms"]
    assert sorted(per_length) == ["16", "3", "5"]
    assert all(value > 0 for value in per_length.values())
    weighted = np.mean([per_length[str(length)] for length in lengths])
    assert bound["mean_ms"] == pytest.approx(weighted, abs=1e-4)
