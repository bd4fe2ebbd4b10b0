"""data.load: padded int32 batches, bucketing, determinism, and refusing data that does not fit."""

import collections
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TINY_VOCAB, WORDS, tiny_classifier, tiny_tokenizer

from tf_tinybert.data import CorruptShardError, check_compatible, load, prepare, read_manifest
from tf_tinybert.data.shards import read_records

SEQUENCE_LENGTH = 24


def _random_tsv(path, rows=45, seed=0):
    rng = np.random.default_rng(seed)
    words = [word for word in WORDS if not word.startswith("##")]
    lines = ["sentence\tlabel"]
    for _ in range(rows):
        length = int(rng.integers(1, 30))
        lines.append(" ".join(rng.choice(words, size=length)) + f"\t{int(rng.integers(0, 2))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    source = _random_tsv(root / "train.tsv")
    prepare(source, tiny_tokenizer(), root / "data", max_sequence_length=SEQUENCE_LENGTH,
            shard_size=16, verbose=0)
    return root / "data"


def _stored_rows(directory):
    """(token ids, label) per record, read with plain protobuf parsing."""
    rows = []
    for shard in read_manifest(directory).shards:
        for raw in tf.data.TFRecordDataset(os.path.join(directory, shard.file)).as_numpy_iterator():
            feature = tf.train.Example.FromString(raw).features.feature
            rows.append((tuple(feature["token_ids"].int64_list.value), feature["label"].int64_list.value[0]))
    return rows


def _unpadded(features, labels):
    rows = []
    for ids, mask, label in zip(features["token_ids"].numpy(), features["padding_mask"].numpy(), labels.numpy()):
        rows.append((tuple(int(i) for i in ids[mask == 1]), int(label)))
    return rows


def test_unbucketed_batches_are_padded_int32_with_a_matching_mask(data_dir):
    dataset = load(data_dir, batch_size=8, shuffle=False, bucket_by_length=False)
    assert int(dataset.cardinality()) == 6
    batches = list(dataset)
    assert [int(labels.shape[0]) for _, labels in batches] == [8] * 5 + [5]
    for features, labels in batches:
        assert set(features) == {"token_ids", "segment_ids", "padding_mask"}
        for value in features.values():
            assert value.dtype == tf.int32 and value.shape[1] == SEQUENCE_LENGTH
        assert labels.dtype == tf.int32
        mask = features["padding_mask"].numpy()
        lengths = mask.sum(axis=1)
        assert (mask == (np.arange(SEQUENCE_LENGTH) < lengths[:, None])).all()
        assert (features["token_ids"].numpy()[mask == 0] == 0).all()
    unshuffled = [row for batch in batches for row in _unpadded(*batch)]
    assert unshuffled == [(ids, label) for ids, label in _stored_rows(data_dir)]


def test_bucketed_batches_pad_only_to_their_longest_row(data_dir):
    widths, rows = [], []
    for features, labels in load(data_dir, batch_size=4, seed=3, bucket_boundaries=[6, 12]):
        lengths = features["padding_mask"].numpy().sum(axis=1)
        assert features["token_ids"].shape[1] == lengths.max()
        bucket = np.digitize(lengths, [6, 12])
        assert (bucket == bucket[0]).all()
        widths.append(int(lengths.max()))
        rows += _unpadded(features, labels)
    assert collections.Counter(rows) == collections.Counter(_stored_rows(data_dir))
    assert min(widths) < SEQUENCE_LENGTH


def _order(dataset):
    return [row for batch in dataset for row in _unpadded(*batch)]


def test_shuffling_is_deterministic_per_seed(data_dir):
    first = _order(load(data_dir, batch_size=5, seed=7))
    assert first == _order(load(data_dir, batch_size=5, seed=7))
    assert first != _order(load(data_dir, batch_size=5, seed=8))
    assert sorted(first) == sorted(_stored_rows(data_dir))


def test_repeat_and_drop_remainder(data_dir):
    dataset = load(data_dir, batch_size=8, bucket_by_length=False, repeat=True, drop_remainder=True)
    assert dataset.element_spec[0]["token_ids"].shape.as_list() == [8, SEQUENCE_LENGTH]
    assert len(list(dataset.take(12))) == 12


def test_tokenizer_mismatch_is_refused(data_dir):
    other = keras_hub_tokenizer(TINY_VOCAB + ["extra"])
    with pytest.raises(ValueError, match="another vocabulary"):
        load(data_dir, expected_tokenizer=other)
    with pytest.raises(ValueError, match="lowercase=True"):
        load(data_dir, expected_tokenizer=keras_hub_tokenizer(TINY_VOCAB, lowercase=False))
    load(data_dir, expected_tokenizer=tiny_tokenizer())


def keras_hub_tokenizer(vocabulary, lowercase=True):
    import keras_hub

    return keras_hub.models.BertTokenizer(vocabulary=list(vocabulary), lowercase=lowercase)


def test_sequence_length_and_model_mismatches_are_refused(data_dir):
    with pytest.raises(ValueError, match="expected sequence length 32"):
        load(data_dir, expected_sequence_length=32)
    manifest = read_manifest(data_dir)
    with pytest.raises(ValueError, match=f"{len(TINY_VOCAB) + 1}-token vocabulary"):
        check_compatible(manifest, model=tiny_classifier(vocabulary_size=len(TINY_VOCAB) + 1))
    with pytest.raises(ValueError, match="takes at most 16"):
        check_compatible(manifest, model=tiny_classifier(max_sequence_length=16))
    with pytest.raises(ValueError, match="3 classes"):
        check_compatible(manifest, model=tiny_classifier(num_classes=3))
    check_compatible(manifest, model=tiny_classifier())


def test_classifier_fits_on_loaded_batches(data_dir):
    model = tiny_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(load(data_dir, batch_size=8, model=model), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _copy(data_dir, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(data_dir, target)
    return target


def test_truncated_shard_is_named(data_dir, tmp_path):
    directory = _copy(data_dir, tmp_path)
    shard = directory / read_manifest(directory).shards[1].file
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(CorruptShardError, match=f"{shard}: shard is .* bytes.*truncated"):
        load(directory)


def test_corrupted_shard_is_named_by_hash_and_by_tfrecord_reader(data_dir, tmp_path):
    directory = _copy(data_dir, tmp_path)
    shard = directory / read_manifest(directory).shards[0].file
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match=f"{shard}: .*sha256 mismatch"):
        load(directory)
    with pytest.raises(CorruptShardError, match=f"{shard}: corrupted TFRecord"):
        list(read_records(str(shard)))


def test_missing_and_unlisted_shards_are_refused(data_dir, tmp_path):
    directory = _copy(data_dir, tmp_path)
    (directory / "stale-00000.tfrecord").write_bytes(b"")
    with pytest.raises(CorruptShardError, match=r"\['stale-00000.tfrecord'\] are not listed"):
        load(directory)
    os.remove(directory / "stale-00000.tfrecord")
    os.remove(directory / read_manifest(directory).shards[-1].file)
    with pytest.raises(CorruptShardError, match="is missing"):
        load(directory)


def test_directory_without_manifest_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no manifest"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"task": "classification", "colour": 1}')
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['colour'\]"):
        load(tmp_path)


def test_unlabeled_data_yields_features_alone(tmp_path):
    source = tmp_path / "corpus.txt"
    source.write_text("the film is good\nthe plot was boring and the actors awful\n")
    prepare(source, tiny_tokenizer(), tmp_path / "out", unlabeled=True, verbose=0)
    (batch,) = list(load(tmp_path / "out", batch_size=4, shuffle=False, bucket_by_length=False))
    # Consecutive lines of a document are packed into one sequence (general distillation).
    assert isinstance(batch, dict) and batch["token_ids"].shape == (1, 128)
    pieces = sum(len(np.asarray(tiny_tokenizer()(line))) for line in
                 ("the film is good", "the plot was boring and the actors awful"))
    assert int(batch["padding_mask"].numpy().sum()) >= pieces + 2


def test_regression_labels_are_float32(tmp_path):
    source = tmp_path / "s.jsonl"
    source.write_text('{"sentence": "good", "label": 4.5}\n{"sentence": "bad", "label": 0.25}\n')
    prepare(source, tiny_tokenizer(), tmp_path / "out", task="regression", verbose=0)
    (_, labels), = list(load(tmp_path / "out", shuffle=False))
    assert labels.dtype == tf.float32 and sorted(labels.numpy().tolist()) == [0.25, 4.5]
