"""A run's report: `report.json` (what other tools read), `report.md` (what people read) and
plots (`accuracy_vs_latency.png`, `loss_<stage>.png`), all written atomically.

The report is a nested dict; these dotted keys are the ones other checks read:
`teacher.accuracy`, `student.accuracy`, `student.tflite.<mode>.accuracy`,
`student.tflite.<mode>.size_mb`, `student.tflite.<mode>.latency_ms`,
`teacher.tflite.fp32.size_mb`, `teacher.tflite.fp32.latency_ms`, `student.params`,
`teacher.params`, `data.train_examples`, `stages.<name>.seconds`. Stages may also carry a
Keras `history` (lists per metric, one value per epoch), drawn as loss curves.

Example:
```python
from tf_tinybert.report import summary_table, write_report

report = {"teacher": {"accuracy": 0.89, "params": 22_713_986},
          "student": {"accuracy": 0.86, "params": 14_350_874,
                      "tflite": {"int8": {"accuracy": 0.86, "size_mb": 14.6, "latency_ms": 9.5}}},
          "stages": {"teacher": {"seconds": 95.0}}}
write_report(report, "runs/example")
print(summary_table(report))
```
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable

from tf_tinybert.atomic import atomic_path, write_text
from tf_tinybert.config import EXPORT_MODES

REQUIRED_KEYS = (
    "teacher.accuracy", "student.accuracy", "student.params", "teacher.params",
    "teacher.tflite.fp32.size_mb", "teacher.tflite.fp32.latency_ms", "data.train_examples",
)
MODE_KEYS = ("accuracy", "size_mb", "latency_ms")


def lookup(report: dict, key: str, default=None):
    """The value at a dotted key of a nested report, or `default`.

    Example:
    ```python
    lookup({"student": {"tflite": {"int8": {"size_mb": 14.6}}}}, "student.tflite.int8.size_mb")
    ```
    """
    node = report
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def missing_keys(report: dict) -> list[str]:
    """The report keys other checks read that this report lacks (per exported mode, too).

    "accuracy" stands for the report's `primary_metric` (e.g. pearson for STS-B).

    Example:
    ```python
    missing_keys({"teacher": {"accuracy": 0.9}})  # ['student.accuracy', ...]
    ```
    """
    metric = _metric_name(report)
    keys = [key.replace(".accuracy", f".{metric}") for key in REQUIRED_KEYS]
    for mode in lookup(report, "student.tflite", {}) or {}:
        keys += [f"student.tflite.{mode}.{metric if name == 'accuracy' else name}"
                 for name in MODE_KEYS]
    if not lookup(report, "stages"):
        keys.append("stages.<name>.seconds")
    keys += [f"stages.{name}.seconds" for name in lookup(report, "stages", {}) or {}]
    return [key for key in keys if lookup(report, key) is None]


# ----------------------------------------------------------------------------- tables


def _metric_name(report: dict) -> str:
    return report.get("primary_metric") or "accuracy"


def _rows(report: dict) -> list[dict]:
    """One row per model and format: teacher, its fp32 export, student, its exports, baseline."""
    metric = _metric_name(report)
    rows = []

    def add(model, label, fmt, entry, params=None):
        if entry is None:
            return
        rows.append({"model": model, "label": label, "format": fmt,
                     "metric": entry.get(metric), "params": params,
                     "size_mb": entry.get("size_mb"), "latency_ms": entry.get("latency_ms")})

    for who, label in (("teacher", "teacher"), ("student", "student (distilled)")):
        section = report.get(who)
        if not isinstance(section, dict):
            continue
        add(who, label, "Keras", section, section.get("params"))
        for mode, entry in in_order(section.get("tflite"), EXPORT_MODES):
            add(who, label, f"TFLite {mode}", entry)
    baseline = report.get("baseline")
    if isinstance(baseline, dict):
        add("baseline", "baseline (labels only)", "Keras", baseline, baseline.get("params"))
    return rows


# The order a recipe runs its stages in: tables and plots follow it, whatever order the
# report's JSON holds them in (report.json is written with sorted keys).
STAGE_ORDER = ("data", "teacher", "augment", "cache_teacher", "general", "intermediate",
               "prediction", "baseline", "export", "report")


def in_order(mapping, order) -> list[tuple]:
    """`mapping`'s items, those named in `order` first and in that order, the others after.

    Example:
    >>> in_order({"export": 2.0, "data": 1.0, "extra": 3.0}, STAGE_ORDER)
    [('data', 1.0), ('export', 2.0), ('extra', 3.0)]
    """
    rank = {name: index for index, name in enumerate(order)}
    return sorted((mapping or {}).items(), key=lambda item: rank.get(item[0], len(rank)))


def _number(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _params(value) -> str:
    return "" if value is None else f"{value / 1e6:.1f}M"


def _ratio(numerator, denominator) -> str:
    if numerator is None or not denominator:
        return ""
    return f"{numerator / denominator:.1f}x"


def _table_cells(report: dict) -> tuple[list[str], list[list[str]]]:
    metric = _metric_name(report)
    teacher_metric = lookup(report, f"teacher.{metric}")
    reference_size = lookup(report, "teacher.tflite.fp32.size_mb")
    reference_latency = lookup(report, "teacher.tflite.fp32.latency_ms")
    sequence = lookup(report, "export.sequence_length")
    latency_title = f"latency ms (seq {sequence})" if sequence else "latency ms"
    header = ["model", "format", metric, f"% of teacher {metric}", "params", "size MB",
              latency_title, "smaller", "faster"]
    cells = []
    for row in _rows(report):
        exported = row["size_mb"] is not None
        relative = ""
        if row["metric"] is not None and teacher_metric:
            relative = f"{100 * row['metric'] / teacher_metric:.1f}%"
        cells.append([
            row["label"], row["format"], _number(row["metric"]), relative,
            _params(row["params"]), _number(row["size_mb"], 1), _number(row["latency_ms"], 2),
            _ratio(reference_size, row["size_mb"]) if exported else "",
            _ratio(reference_latency, row["latency_ms"]) if exported else "",
        ])
    return header, cells


def summary_table(report: dict) -> str:
    """A plain-text table of every model and export, for the terminal.

    Example:
    ```python
    print(summary_table(json.load(open("runs/quickstart/report.json"))))
    ```
    """
    header, cells = _table_cells(report)
    if not cells:
        return "(no models in the report)"
    widths = [max(len(str(item)) for item in column) for column in zip(header, *cells)]
    lines = ["  ".join(item.ljust(width) for item, width in zip(line, widths)).rstrip()
             for line in [header, ["-" * width for width in widths], *cells]]
    return "\n".join(lines)


def _markdown_table(header: list[str], cells: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


def markdown_report(report: dict, plots: Iterable[str] = ()) -> str:
    """`report.md`'s text: data, models and exports, time per stage, examples, plots.

    Example:
    ```python
    text = markdown_report(report, plots=["accuracy_vs_latency.png"])
    ```
    """
    metric = _metric_name(report)
    lines = [f"# TinyBERT run: {report.get('name', 'unnamed')}", ""]
    data = report.get("data") or {}
    if data:
        train = data.get("train_examples")
        described = [f"task metric: {metric}"]
        if train is not None:
            subset = data.get("train_subset")
            described.append(f"{train:,} training examples"
                             + (f" (a seeded random subset of the training split: "
                                f"data.train_subset = {subset:,})"
                                if subset else " (the full training split)"))
        if data.get("dev_examples") is not None:
            described.append(f"{data['dev_examples']:,} dev examples")
        if data.get("max_sequence_length"):
            described.append(f"trained at sequence length {data['max_sequence_length']}")
        lines += ["; ".join(described) + ".", ""]
    header, cells = _table_cells(report)
    if cells:
        lines += ["## Models", "", _markdown_table(header, cells), "",
                  "Size and speed ratios are against the teacher's fp32 TFLite export.", ""]
    stages = report.get("stages") or {}
    timed = [(name, entry["seconds"]) for name, entry in in_order(stages, STAGE_ORDER)
             if isinstance(entry, dict) and entry.get("seconds") is not None]
    if timed:
        total = sum(seconds for _, seconds in timed)
        lines += ["## Time per stage", "", _markdown_table(
            ["stage", "seconds", "m:ss"],
            [[name, f"{seconds:.1f}", _duration(seconds)] for name, seconds in timed]
            + [["total", f"{total:.1f}", _duration(total)]],
        ), ""]
    examples = report.get("examples") or []
    if examples:
        lines += ["## Examples", "", _markdown_table(
            ["text", "label", "score"],
            [[str(item.get("text", "")).replace("|", "\\|"), str(item.get("label", "")),
              _number(item.get("score"), 3)] for item in examples],
        ), ""]
    missing = missing_keys(report)
    if missing:
        lines += ["## Not measured", "", ", ".join(f"`{key}`" for key in missing), ""]
    plots = list(plots)
    if plots:
        lines += ["## Plots", ""] + [f"![{pathlib.Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: pathlib.Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def plot_accuracy_vs_latency(report: dict, path: str | os.PathLike) -> bool:
    """Scatter of every TFLite export: latency (x) against the task metric (y).

    Returns False (and writes nothing) when the report has no timed export.

    Example:
    ```python
    plot_accuracy_vs_latency(report, "runs/x/accuracy_vs_latency.png")
    ```
    """
    metric = _metric_name(report)
    points = []
    for who in ("teacher", "student"):
        for mode, entry in in_order(lookup(report, f"{who}.tflite", {}), EXPORT_MODES):
            value, keras_value = entry.get(metric), lookup(report, f"{who}.{metric}")
            latency = entry.get("latency_ms")
            if latency is None or (value is None and keras_value is None):
                continue
            label = f"{who} {mode}" + (" (Keras score)" if value is None else "")
            size = entry.get("size_mb")
            if size is not None:
                label += f", {size:.1f} MB"
            points.append((who, latency, value if value is not None else keras_value, label))
    if not points:
        return False
    figure = _figure()
    axes = figure.add_subplot()
    for who, latency, value, label in points:
        axes.scatter([latency], [value], s=60, marker="s" if who == "teacher" else "o",
                     color="tab:gray" if who == "teacher" else "tab:blue")
        axes.annotate(label, (latency, value), textcoords="offset points", xytext=(6, 4),
                      fontsize=8)
    sequence = lookup(report, "export.sequence_length")
    axes.set_xlabel(f"latency per example, ms{f' (sequence {sequence})' if sequence else ''}")
    axes.set_ylabel(f"dev {metric}")
    axes.set_title("TFLite exports: accuracy against latency")
    axes.grid(alpha=0.3)
    axes.margins(x=0.25, y=0.15)
    _save(figure, pathlib.Path(path))
    return True


def plot_loss_curves(report: dict, folder: str | os.PathLike) -> list[pathlib.Path]:
    """One `loss_<stage>.png` per stage with a Keras history: every loss per epoch, training
    (solid) and validation (dashed).

    Example:
    ```python
    plot_loss_curves(report, "runs/x")  # [PosixPath('runs/x/loss_intermediate.png'), ...]
    ```
    """
    written = []
    for stage, entry in in_order(report.get("stages"), STAGE_ORDER):
        history = entry.get("history") if isinstance(entry, dict) else None
        names = [name for name in (history or {}) if "loss" in name and
                 not name.startswith("val_")]
        if not names:
            continue
        figure = _figure()
        axes = figure.add_subplot()
        for index, name in enumerate(names):
            color = f"C{index % 10}"
            values = history[name]
            axes.plot(range(1, len(values) + 1), values, color=color, marker="o", label=name)
            validation = history.get(f"val_{name}")
            if validation:
                axes.plot(range(1, len(validation) + 1), validation, color=color, linestyle="--",
                          marker="x", label=f"val_{name}")
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_ylabel("loss")
        axes.set_title(f"{stage} stage")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        path = pathlib.Path(folder) / f"loss_{stage}.png"
        _save(figure, path)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- writing


def write_report(report: dict, run_dir: str | os.PathLike, plots: bool = True) -> dict:
    """Write `report.json`, the plots (if `plots`) and `report.md` into `run_dir`, atomically.

    Returns the paths written, by name ("json", "markdown", "plots").

    Example:
    ```python
    paths = write_report(report, "runs/quickstart")
    paths["markdown"]  # PosixPath('runs/quickstart/report.md')
    ```
    """
    run_dir = pathlib.Path(run_dir)
    json_path = run_dir / "report.json"
    write_text(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    images: list[pathlib.Path] = []
    if plots:
        if plot_accuracy_vs_latency(report, run_dir / "accuracy_vs_latency.png"):
            images.append(run_dir / "accuracy_vs_latency.png")
        images += plot_loss_curves(report, run_dir)
    markdown_path = run_dir / "report.md"
    write_text(markdown_path, markdown_report(report, [image.name for image in images]))
    return {"json": json_path, "markdown": markdown_path, "plots": images}
