"""Latency of exported .tflite models side by side, measured in alternating rounds.

Each round times every model once more (median of --runs invocations at the model's fixed
sequence length, all positions real), so a burst of load on the machine hits all models
alike; the figure printed per model is the median over rounds, with the speed-up against
the first model. By default it measures a demo run's exports (`runs/quickstart/export`),
the teacher first.

    .venv/bin/python benchmarks/exported_latency.py [MODEL.tflite ...] [--threads 1]
        [--runs 20] [--rounds 5]

A benchmark: it prints figures and exits 0, also when there is nothing to measure.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys

from tf_tinybert.runtime.latency import measure_latency

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import litert_isa  # noqa: E402
from cpu_flags import cpu_info  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO_EXPORTS = ROOT / "runs" / "quickstart" / "export"


def default_models() -> list[pathlib.Path]:
    """The demo's exports, teacher first; empty when `make demo` has not run."""
    models = sorted(DEMO_EXPORTS.glob("*/model.tflite"))
    return sorted(models, key=lambda path: not path.parent.name.startswith("teacher"))


def _shown(path: pathlib.Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=pathlib.Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20, help="timed invocations per round")
    parser.add_argument("--rounds", type=int, default=5)
    litert_isa.add_argument(parser)
    args = parser.parse_args(argv)
    cpu = cpu_info()
    litert_isa.apply(args.litert_isa, cpu)
    print(f"CPU: {cpu['model']}; ISA flags: {' '.join(cpu['flags'])}; "
          f"caps: {cpu['isa_caps'] or 'none'}")
    models = args.models or default_models()
    if not models:
        print(f"No models given and none under {DEMO_EXPORTS} (run `make demo` first).",
              file=sys.stderr)
        return 1
    timings: dict[pathlib.Path, list[float]] = {path: [] for path in models}
    for _ in range(args.rounds):
        for path in models:
            timings[path].append(measure_latency(path, num_threads=args.threads,
                                                 runs=args.runs))
    reference = statistics.median(timings[models[0]])
    print(f"{'model':60s} {'ms':>8s} {'min ms':>8s} {'speed-up':>9s}")
    for path in models:
        median = statistics.median(timings[path])
        print(f"{_shown(path):60s} {median:8.2f} {min(timings[path]):8.2f} "
              f"{reference / median:8.1f}x")
    print(f"{args.threads} thread(s), median of {args.rounds} rounds of {args.runs} runs; "
          f"speed-up against {_shown(models[0])}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
