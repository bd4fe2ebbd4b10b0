"""`tf-tinybert glue`: the recipe over several GLUE tasks, one table like TinyBERT's Table 1.

For each task the base recipe runs with the task, its data folder and its run folder set
(`--set task=<task> data.data_dir=<data_root>/<task> output_dir=<output>/<task>`, then the
user's own `--set` overrides, then those given for that task alone as `--set TASK:KEY=VALUE`),
exactly as `tf-tinybert run` would run it alone. The table
then lists, per task, four models on the task's own metrics (CoLA Matthews, MRPC
accuracy/F1, STS-B Pearson/Spearman, SST-2 accuracy, ...):

- `teacher`: the fine-tuned teacher (Keras);
- `student`: the distilled student (Keras);
- `student_int8`: the student's full-integer int8 TFLite export (ai-edge-litert);
- `baseline`: the same student trained on the labels alone for as many steps.

The average follows the paper's Table 1: one number per task (F1 for MRPC and QQP,
Spearman for STS-B, Matthews for CoLA, accuracy elsewhere: `PAPER_METRICS`), averaged
over the tasks run. Sizes and single-example latency come from the recipe's exports (the
student's int8 and the teacher's fp32 TFLite). Every number in the table is read from the
task's own `report.json`, so a task's row equals a lone `tf-tinybert run` of that task.

`report.json` keys: `tasks.<task>.<model>.<metric>` (fractions), with model in `MODELS`,
plus `tasks.<task>.wall_seconds`, `average.<model>`, `command`, `cpu` (model name and the
flags avx512f, avx512_vnni, avx_vnni, amx that decide int8 speed). Both files are
rewritten atomically after every task, so a killed run leaves a valid partial table;
running the command again skips each task's finished stages. A task that fails (say
its int8 export misses `export.min_agreement`) is recorded under `tasks.<task>.error`;
the other tasks still run, and `run_glue` then raises GlueTaskError.

Example:
```python
from tf_tinybert.glue import run_glue

table = run_glue("configs/recipes/glue_minilm.yaml", tasks=["sst2", "cola", "mrpc", "stsb"],
                 data_root="../shared/data", output="runs/glue")
table["tasks"]["cola"]["student_int8"]["matthews_corrcoef"]
```
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Iterable, Sequence

from tf_tinybert.atomic import write_bytes
from tf_tinybert.report import STAGE_ORDER, in_order

MODELS = ("teacher", "student", "student_int8", "baseline")


class GlueTaskError(ValueError):
    """One or more tasks failed; the report was still written for the others."""

MODEL_TITLES = {"teacher": "teacher (Keras)", "student": "student, distilled (Keras)",
                "student_int8": "student, distilled (TFLite int8)",
                "baseline": "student, labels only (Keras)"}
# The one number per task that TinyBERT's Table 1 reports and averages.
PAPER_METRICS = {"cola": "matthews_corrcoef", "mrpc": "f1", "qqp": "f1", "stsb": "spearman"}
METRIC_ABBREVIATIONS = {"accuracy": "acc", "f1": "F1", "matthews_corrcoef": "mcc",
                        "pearson": "Pearson", "spearman": "Spearman"}
CPU_FLAGS = ("avx512f", "avx512_vnni", "avx_vnni", "amx")
REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def cpu_info(path: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """The CPU model and the instruction-set flags that decide int8 and fp32 speed.

    `amx` is true where any `amx_*` flag (amx_tile, amx_int8, amx_bf16) is present;
    `amx_flags` lists them. Where `path` cannot be read, the model is None and the flags
    are None (unknown), never False.

    Example:
    ```python
    cpu_info()["flags"]["avx512_vnni"]  # True on Cascade Lake and newer Xeons
    ```
    """
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": None, "flags": dict.fromkeys(CPU_FLAGS), "amx_flags": None}
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    amx = sorted(flag for flag in flags if flag.startswith("amx"))
    found = {flag: flag in flags for flag in CPU_FLAGS if flag != "amx"}
    return {"model": model, "flags": {**found, "amx": bool(amx)}, "amx_flags": amx,
            "logical_cpus": os.cpu_count()}


def paper_metric(task: str, metrics: Sequence[str]) -> str:
    """The metric TinyBERT's Table 1 reports for `task` (else the task's first metric).

    Example:
    >>> paper_metric("mrpc", ["accuracy", "f1"])
    'f1'
    >>> paper_metric("sst2", ["accuracy"])
    'accuracy'
    """
    wanted = PAPER_METRICS.get(task)
    return wanted if wanted in metrics else metrics[0]


def task_row(report: dict, metrics: Sequence[str]) -> dict:
    """One task's models and numbers, read from the recipe's own `report.json` content.

    Example:
    ```python
    row = task_row(json.load(open("runs/glue/cola/report.json")), ["matthews_corrcoef"])
    row["student_int8"]["matthews_corrcoef"], row["student_int8"]["latency_ms"]
    ```
    """
    teacher = report.get("teacher") or {}
    student = report.get("student") or {}
    int8 = (student.get("tflite") or {}).get("int8")
    teacher_fp32 = (teacher.get("tflite") or {}).get("fp32") or {}
    sources = {"teacher": teacher, "student": student, "student_int8": int8,
               "baseline": report.get("baseline")}
    row = {}
    for model, entry in sources.items():
        if not entry:
            continue
        values = {metric: entry.get(metric) for metric in metrics}
        if model == "student_int8":
            values.update(size_mb=entry.get("size_mb"), latency_ms=entry.get("latency_ms"),
                          latency_ms_2_threads=entry.get("latency_ms_2_threads"),
                          examples=entry.get("examples"))
        else:
            values["params"] = entry.get("params")
        if model == "teacher" and teacher_fp32:
            values.update(fp32_tflite_size_mb=teacher_fp32.get("size_mb"),
                          fp32_tflite_latency_ms=teacher_fp32.get("latency_ms"),
                          fp32_tflite_latency_ms_2_threads=teacher_fp32.get(
                              "latency_ms_2_threads"))
        row[model] = values
    return row


def average(tasks: dict) -> dict:
    """Per model, the mean over tasks of each task's `paper_metric` (None if any is missing).

    Example:
    >>> average({"sst2": {"metrics": ["accuracy"], "student": {"accuracy": 0.9}},
    ...          "cola": {"metrics": ["matthews_corrcoef"],
    ...                   "student": {"matthews_corrcoef": 0.3}}})["student"]
    0.6
    """
    result = {}
    for model in MODELS:
        values = []
        for task, row in tasks.items():
            value = (row.get(model) or {}).get(paper_metric(task, row["metrics"]))
            values.append(value)
        usable = bool(values) and all(value is not None for value in values)
        result[model] = round(sum(values) / len(values), 6) if usable else None
    return result


def split_overrides(overrides: Iterable[str], tasks: Sequence[str]) -> tuple[list, dict]:
    """Split `--set` strings into those for every task and those for one (`TASK:KEY=VALUE`).

    A key never holds a colon, so `cola:augment.enabled=true` is CoLA's alone while
    `data.data_dir=C:/glue` is everyone's. A prefix that is not one of `tasks` is refused.

    Example:
    >>> split_overrides(["seed=1", "cola:augment.enabled=true"], ["sst2", "cola"])
    (['seed=1'], {'sst2': [], 'cola': ['augment.enabled=true']})
    """
    shared, per_task = [], {task: [] for task in tasks}
    for item in overrides:
        if ":" not in item.partition("=")[0]:
            shared.append(item)
            continue
        task, setting = (part.strip() for part in item.split(":", 1))
        if task not in per_task:
            raise ValueError(
                f"--set {item!r} is for task {task!r}, which is not among --tasks "
                f"{','.join(tasks)}. Use TASK:KEY=VALUE with one of those tasks, or KEY=VALUE "
                "for every task.")
        per_task[task].append(setting)
    return shared, per_task


def run_glue(
    config: str | os.PathLike,
    tasks: Sequence[str],
    data_root: str | os.PathLike,
    output: str | os.PathLike,
    overrides: Iterable[str] = (),
    verbose: int = 1,
    command: Sequence[str] | None = None,
) -> dict:
    """Run the recipe `config` on each task and write `output/report.{json,md}`.

    Args:
        config: the base recipe YAML (shared settings; its `task` is replaced).
        tasks: task names from `configs/tasks/` (sst2, cola, mrpc, stsb, ...).
        data_root: a folder with one sub-folder per task, named after it.
        output: the folder for the per-task run folders and the report.
        overrides: `--set` style `key=value` strings applied to every task's recipe after
            the per-task settings; `task:key=value` applies to that task only, after the
            shared ones (recorded as `tasks.<task>.overrides` and in report.md).
        verbose: 0 for no progress output.
        command: the command line to record (default: the Python call).

    Returns:
        The report (what report.json holds).

    Example:
    ```python
    run_glue("configs/recipes/glue_minilm.yaml", ["sst2", "stsb"], "../shared/data",
             "runs/glue", overrides=["seed=1", "stsb:distill.prediction.epochs=4"])
    ```
    """
    import keras

    from tf_tinybert.config import load_recipe
    from tf_tinybert.recipe import run_recipe

    tasks = [str(task).strip() for task in tasks if str(task).strip()]
    if not tasks:
        raise ValueError("Expected at least one task, e.g. --tasks sst2,cola. Received none.")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"Expected each task once. Received: {tasks}.")
    data_root = pathlib.Path(data_root).absolute()
    output = pathlib.Path(output).absolute()
    missing = [task for task in tasks if not (data_root / task).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"No data folder for task(s) {missing} under --data-root {data_root}: expected "
            f"one sub-folder per task, named after it ({', '.join(str(data_root / t) for t in missing)})."
        )
    overrides, task_settings = split_overrides(overrides, tasks)
    base = load_recipe(config, overrides=overrides)
    configs = {}
    for task in tasks:  # check every task's recipe before the first hour of training
        configs[task] = load_recipe(config, overrides=[
            f"task={task}", f"name={base.name}_{task}", f"output_dir={output / task}",
            f"data.data_dir={data_root / task}", *overrides, *task_settings[task]])
        if "int8" not in configs[task].export.modes:
            raise ValueError(
                f"The GLUE table reports the student's int8 export; the recipe {config} "
                f"exports {list(configs[task].export.modes)} for task {task!r}. Add int8 to "
                "export.modes (e.g. --set 'export.modes=[int8]')."
            )
    output.mkdir(parents=True, exist_ok=True)
    table = {
        "name": base.name,
        "command": list(command) if command is not None else
        ["run_glue", os.fspath(config), *tasks],
        "config": os.path.abspath(os.fspath(config)),
        "data_root": str(data_root),
        "cpu": cpu_info(),
        "models": {model: MODEL_TITLES[model] for model in MODELS},
        "tasks": {},
        "task_order": tasks,  # report.json sorts its keys; the tables keep this order
    }
    failures = {}
    for task in tasks:
        task_config = configs[task]
        if verbose:
            print(f"[tf-tinybert glue] task {task} -> {task_config.run_dir}", flush=True)
        # As `tf-tinybert run` does, so that each task's numbers equal a lone run's.
        keras.utils.set_random_seed(task_config.seed)
        start = time.perf_counter()
        metrics = list(task_config.task.metrics)
        try:
            report = run_recipe(task_config, verbose=verbose)
        except Exception as error:  # noqa: BLE001 - recorded, the other tasks still run
            failures[task] = f"{type(error).__name__}: {error}"
            report = {"error": failures[task]}
            if verbose:
                print(f"[tf-tinybert glue] task {task} failed: {failures[task]}", flush=True)
        table["tasks"][task] = {
            **({"error": failures[task]} if task in failures else {}),
            **task_row(report, metrics),
            "metrics": metrics,
            "paper_metric": paper_metric(task, metrics),
            "task_type": task_config.task.task_type,
            "overrides": task_settings[task],
            "train_examples": (report.get("data") or {}).get("train_examples"),
            "dev_examples": (report.get("data") or {}).get("dev_examples"),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "stage_seconds": {name: stage.get("seconds")
                              for name, stage in (report.get("stages") or {}).items()},
            "run_dir": str(pathlib.Path(task_config.run_dir).absolute()),
        }
        table["average"] = average(table["tasks"])
        table["sequence_length"] = task_config.export.sequence_length
        write_glue_report(table, output)
    if failures:
        raise GlueTaskError(
            f"{len(failures)} of {len(tasks)} tasks failed ({output / REPORT_JSON} holds the "
            "others; run the same command again to resume): "
            + "; ".join(f"{task}: {reason}" for task, reason in failures.items()))
    return table


def write_glue_report(table: dict, output: str | os.PathLike) -> None:
    """Write `report.json` and `report.md` into `output`, each atomically.

    Example:
    ```python
    write_glue_report(table, "runs/glue")
    ```
    """
    output = pathlib.Path(output)
    write_bytes(output / REPORT_JSON,
                (json.dumps(table, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    write_bytes(output / REPORT_MD, glue_markdown(table).encode("utf-8"))


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _number(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def glue_markdown(table: dict) -> str:
    """The report as Markdown: scores ×100 per task (TinyBERT Table 1), sizes, latency, time.

    Example:
    ```python
    print(glue_markdown(json.load(open("runs/glue/report.json"))))
    ```
    """
    # report.json sorts its keys: tasks follow `task_order` (the --tasks order), flags CPU_FLAGS.
    tasks = dict(in_order(table.get("tasks"), table.get("task_order", ())))
    header = ["model", "params"]
    for task, row in tasks.items():
        names = "/".join(METRIC_ABBREVIATIONS.get(m, m) for m in row["metrics"])
        header.append(f"{task} ({names})")
    header.append("avg")
    lines = [f"# GLUE: {table.get('name', '')}", "",
             "Dev-set scores ×100; the average takes one number per task as TinyBERT's "
             "Table 1 does (" + ", ".join(
                 f"{task}: {METRIC_ABBREVIATIONS.get(row['paper_metric'], row['paper_metric'])}"
                 for task, row in tasks.items()) + ").", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    averages = table.get("average", {})
    for model in MODELS:
        params = next((row[model].get("params") for row in tasks.values()
                       if row.get(model, {}).get("params") is not None), None)
        cells = [MODEL_TITLES[model], "" if params is None else f"{params / 1e6:.1f}M"]
        for row in tasks.values():
            entry = row.get(model) or {}
            cells.append("/".join(_percent(entry.get(m)) for m in row["metrics"]))
        cells.append(_percent(averages.get(model)))
        lines.append("| " + " | ".join(cells) + " |")

    sequence = table.get("sequence_length")
    lines += ["", f"## Size and single-example latency (TFLite, sequence length {sequence}, "
              "1 thread)", "",
              "| task | teacher fp32 MB | teacher fp32 ms | student int8 MB | student int8 ms "
              "| smaller | faster |", "|---|---|---|---|---|---|---|"]
    for task, row in tasks.items():
        teacher, int8 = row.get("teacher") or {}, row.get("student_int8") or {}
        size, latency = teacher.get("fp32_tflite_size_mb"), teacher.get("fp32_tflite_latency_ms")
        small, fast = int8.get("size_mb"), int8.get("latency_ms")
        lines.append("| " + " | ".join([
            task, _number(size, 1), _number(latency, 2), _number(small, 1), _number(fast, 2),
            f"{size / small:.1f}x" if size and small else "",
            f"{latency / fast:.1f}x" if latency and fast else ""]) + " |")

    lines += ["", "## Time per task", "",
              "Stage times are those of the run that did each stage's work; a resumed task "
              "skips finished stages, so this invocation's wall time can be far shorter.", "",
              "| task | train examples | dev examples | stages, total | this invocation | "
              "stages |", "|---|---|---|---|---|---|"]
    for task, row in tasks.items():
        timed = {name: seconds for name, seconds in in_order(row.get("stage_seconds"),
                                                              STAGE_ORDER)
                 if seconds is not None}
        stages = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in timed.items())
        lines.append(f"| {task} | {row.get('train_examples')} | {row.get('dev_examples')} | "
                     f"{sum(timed.values()) / 60:.1f} min | "
                     f"{row.get('wall_seconds', 0) / 60:.1f} min | {stages} |")
    own = [(task, row["overrides"]) for task, row in tasks.items() if row.get("overrides")]
    if own:
        lines += ["", "## Settings of one task only", "",
                  "Every task ran the same recipe and shared settings except:", ""]
        lines += [f"- {task}: " + ", ".join(f"`{item}`" for item in items)
                  for task, items in own]
    cpu = table.get("cpu") or {}
    flags = ", ".join(f"{name} {'yes' if on else 'no' if on is not None else '?'}"
                      for name, on in in_order(cpu.get("flags"), CPU_FLAGS))
    errors = [(task, row["error"]) for task, row in tasks.items() if row.get("error")]
    if errors:
        lines += ["", "## Failed tasks", ""] + [f"- {task}: {reason}" for task, reason in errors]
    lines += ["", f"CPU: {cpu.get('model')} ({cpu.get('logical_cpus')} logical CPUs; {flags}).",
              "", "Command: `" + " ".join(table.get("command", [])) + "`", ""]
    return "\n".join(lines)
