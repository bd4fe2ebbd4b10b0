"""What general distillation and the relation loss buy, on SST-2 (8,000 training sentences).

Runs, from the repository root (each a `tf-tinybert run` in a subprocess, timed):
1. `general`: configs/recipes/general_tinybert4.yaml (TinyBERT-4, random init, general-
   distilled from all-MiniLM-L6-v2 on ../shared/data/corpus);
2. `sst2_8k.without_general`: configs/recipes/sst2_tinybert4_8k.yaml as shipped (it also
   fine-tunes the teacher: `teacher.accuracy`);
3. `sst2_8k.with_general`: the same recipe starting from step 1's preset folder;
4. `bert_4l_128h.relation`: the 4-head bert_4l_128h student with the relation loss in the
   intermediate stage (attention off: 4 heads against 12);
5. `bert_4l_128h.hidden_only`: the same student with embedding and hidden losses only.
Steps 3-5 reuse step 2's fine-tuned teacher. After each step the figures so far are written to
benchmarks/results/general/report.json (accuracies as fractions, commands, wall times), so an
interrupted measurement keeps what finished. Finished steps are skipped when run again.

    python benchmarks/general_distillation.py [--runs runs/general_bench] [--only NAME ...]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from tf_tinybert.report import lookup

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORT = ROOT / "benchmarks" / "results" / "general" / "report.json"
SST2 = "configs/recipes/sst2_tinybert4_8k.yaml"


def _steps(runs: pathlib.Path) -> list[tuple[str, list[str]]]:
    teacher = f"teacher.source={runs}/sst2_8k_without_general/teacher.keras"
    reuse = ["--set", teacher, "--set", "teacher.finetune.enabled=false",
             "--set", "data.tokenizer=minilm-l6-offline",
             "--set", "baseline.enabled=false"]
    small = ["--set", "student=bert_4l_128h", "--set",
             "distill.intermediate.loss_weights.attention=0"]
    return [
        ("general", ["configs/recipes/general_tinybert4.yaml",
                     "--set", f"output_dir={runs}/general_tinybert4"]),
        ("sst2_8k.without_general", [SST2, "--set", f"output_dir={runs}/sst2_8k_without_general",
                                     "--set", "baseline.enabled=false"]),
        ("sst2_8k.with_general", [SST2, "--set", f"output_dir={runs}/sst2_8k_with_general",
                                  "--set", f"student.init={runs}/general_tinybert4/student_preset",
                                  *reuse]),
        ("bert_4l_128h.relation", [SST2, "--set", f"output_dir={runs}/bert_4l_128h_relation",
                                   *small, "--set",
                                   "distill.intermediate.loss_weights.relation=1", *reuse]),
        ("bert_4l_128h.hidden_only", [SST2, "--set", f"output_dir={runs}/bert_4l_128h_hidden",
                                      *small, *reuse]),
    ]


def _set(report: dict, dotted: str, value) -> None:
    node = report
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=pathlib.Path, default=pathlib.Path("runs/general_bench"))
    parser.add_argument("--only", nargs="*", default=None, help="step names to run")
    args = parser.parse_args()
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name, command in _steps(args.runs):
        if args.only and name not in args.only:
            continue
        if lookup(report, f"{name}.completed"):
            continue
        full = [sys.executable, "-m", "tf_tinybert.cli", "run", *command]
        started = time.perf_counter()
        done = subprocess.run(full, cwd=ROOT, env=env).returncode == 0
        _set(report, f"{name}.command", "tf-tinybert run " + " ".join(command))
        _set(report, f"{name}.wall_seconds", round(time.perf_counter() - started, 1))
        _set(report, f"{name}.completed", done)
        if done and name != "general":
            run = json.loads((ROOT / command[command.index("--set") + 1].split("=", 1)[1]
                              / "report.json").read_text())
            _set(report, f"{name}.accuracy", run["student"]["accuracy"])
            if "teacher" in run and name == "sst2_8k.without_general":
                _set(report, "teacher.accuracy", run["teacher"]["accuracy"])
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"{name}: {'done' if done else 'FAILED'} in {lookup(report, name + '.wall_seconds')} s",
              flush=True)
        if not done:
            break


if __name__ == "__main__":
    main()
