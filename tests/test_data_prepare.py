"""data.prepare: rows to TFRecords, checked against an independent tokenisation and packing."""

import hashlib
import importlib
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.data import BadRowError, load, prepare, read_manifest, read_tokenizer

prepare_module = importlib.import_module("tf_tinybert.data.prepare")

CLS, SEP = TINY_VOCAB.index("[CLS]"), TINY_VOCAB.index("[SEP]")


def _pieces(tokenizer, text):
    # Eagerly keras-hub runs its pure-Python WordPiece; prepare runs the tf-text one.
    return [int(i) for i in tokenizer([text])[0]]


def _reference(tokenizer, text, pair, length):
    """[CLS] a [SEP] b [SEP], cut one piece at a time, alternately (round robin)."""
    first = _pieces(tokenizer, text)
    second = _pieces(tokenizer, pair) if pair is not None else []
    budget = length - (3 if pair is not None else 2)
    keep_first = keep_second = 0
    while budget > 0 and (keep_first < len(first) or keep_second < len(second)):
        if keep_first < len(first):
            keep_first, budget = keep_first + 1, budget - 1
        if budget > 0 and keep_second < len(second):
            keep_second, budget = keep_second + 1, budget - 1
    ids = [CLS, *first[:keep_first], SEP]
    segments = [0] * len(ids)
    if pair is not None:
        ids += [*second[:keep_second], SEP]
        segments += [1] * (keep_second + 1)
    return ids, segments


def _records(directory):
    rows = []
    for shard in read_manifest(directory).shards:
        for raw in tf.data.TFRecordDataset(os.path.join(directory, shard.file)).as_numpy_iterator():
            feature = tf.train.Example.FromString(raw).features.feature
            row = {key: list(feature[key].int64_list.value or feature[key].float_list.value
                             or feature[key].bytes_list.value) for key in feature}
            rows.append(row)
    return rows


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_single_sentences_round_trip_through_tokenizer_and_tfrecord(tmp_path):
    source = _write(tmp_path / "train.tsv", "sentence\tlabel\nThe film is witty.\t1\n"
                    "a boring , boring , boring plot and actors\t0\nGorgeous!\t1\n")
    tokenizer = tiny_tokenizer()
    prepare(source, tokenizer, tmp_path / "out", max_sequence_length=8, verbose=0)
    rows = _records(tmp_path / "out")
    texts = ["The film is witty.", "a boring , boring , boring plot and actors", "Gorgeous!"]
    for row, text, label in zip(rows, texts, [1, 0, 1]):
        ids, segments = _reference(tokenizer, text, None, 8)
        assert row["token_ids"] == ids and row["segment_ids"] == segments
        assert row["label"] == [label] and row["text"] == [text.encode()]
    assert len(rows[1]["token_ids"]) == 8


def test_pairs_are_packed_and_truncated_round_robin(tmp_path):
    source = _write(tmp_path / "pairs.csv", 'a,b,label\n"the film is good very good","it was fun , fun",x\n'
                    "love,hate,y\n")
    tokenizer = tiny_tokenizer()
    manifest = prepare(source, tokenizer, tmp_path / "out", text_column="a", text_pair_column="b",
                       max_sequence_length=9, verbose=0)
    rows = _records(tmp_path / "out")
    for row, (text, pair) in zip(rows, [("the film is good very good", "it was fun , fun"), ("love", "hate")]):
        assert (row["token_ids"], row["segment_ids"]) == _reference(tokenizer, text, pair, 9)
        assert row["text_pair"] == [pair.encode()]
    assert manifest.has_text_pair and manifest.label_names == ("x", "y")


def test_manifest_records_shards_source_hash_labels_and_tokenizer(tmp_path):
    lines = ["sentence\tlabel"] + [f"the film {i}\t{label}" for i, label in enumerate([10, 2, 2, 10, 2])]
    source = _write(tmp_path / "train.tsv", "\n".join(lines) + "\n")
    manifest = prepare(source, tiny_tokenizer(), tmp_path / "out", shard_size=2,
                       max_sequence_length=16, verbose=0)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [shard["examples"] for shard in on_disk["shards"]] == [2, 2, 1]
    assert on_disk["num_examples"] == 5 and on_disk["sequence_length"] == 16
    assert on_disk["label_names"] == ["2", "10"]  # numeric order, not string order
    assert on_disk["task"] == "classification"
    assert on_disk["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert on_disk["tokenizer"]["vocabulary_hash"] == hashlib.sha256("\n".join(TINY_VOCAB).encode()).hexdigest()
    for shard in on_disk["shards"]:
        path = tmp_path / "out" / shard["file"]
        assert shard["bytes"] == path.stat().st_size
        assert shard["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [row["label"] for row in _records(tmp_path / "out")] == [[1], [0], [0], [1], [0]]
    assert read_manifest(tmp_path / "out") == manifest


def test_given_label_names_set_ids_and_unknown_label_stops_at_its_line(tmp_path):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\ngood\tpos\nbad\tneg\nfun\tmeh\n")
    with pytest.raises(BadRowError, match=r"t\.tsv:4: unknown label 'meh' in column 'label'; expected one of \['neg', 'pos'\]"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", labels="neg,pos", verbose=0)
    assert not os.path.exists(tmp_path / "out")  # the folder this call made is gone too
    prepare(source, tiny_tokenizer(), tmp_path / "out", labels=["neg", "pos"], skip_bad_rows=True, verbose=0)
    assert [row["label"] for row in _records(tmp_path / "out")] == [[1], [0]]


def test_skip_bad_rows_counts_and_lists_the_first_ten(tmp_path):
    lines = ["sentence\tlabel", "good\t1"] + ["\t1"] * 12 + ["bad\t0", "x\t1\textra"]
    source = _write(tmp_path / "t.tsv", "\n".join(lines) + "\n")
    with pytest.raises(BadRowError, match=r"t\.tsv:3: empty text"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)
    manifest = prepare(source, tiny_tokenizer(), tmp_path / "out", skip_bad_rows=True, verbose=0)
    assert manifest.num_examples == 2 and manifest.skipped_rows == 13
    assert len(manifest.skipped_examples) == 10
    assert manifest.skipped_examples[0] == {"where": f"{source}:3", "reason": "empty text in column 'sentence'"}


def test_text_without_word_pieces_is_a_bad_row(tmp_path):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\ngood\t1\n\x00\x01\t0\n")
    with pytest.raises(BadRowError, match=r"t\.tsv:3: text has no word pieces"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)


def test_jsonl_regression_keeps_float_labels(tmp_path):
    source = _write(tmp_path / "s.jsonl", '{"sentence": "good", "label": 4.25}\n{"sentence": "bad", "label": "0.5"}\n')
    manifest = prepare(source, tiny_tokenizer(), tmp_path / "out", task="regression", verbose=0)
    assert manifest.task == "regression" and manifest.num_classes == 1
    assert [row["label"] for row in _records(tmp_path / "out")] == [[4.25], [0.5]]


def test_plain_text_corpus_is_unlabeled(tmp_path):
    source = _write(tmp_path / "corpus.txt", "the film is good\n\nthe plot was boring\n")
    manifest = prepare(source, tiny_tokenizer(), tmp_path / "out", unlabeled=True, verbose=0)
    assert manifest.task == "unlabeled" and manifest.num_examples == 2
    assert all("label" not in row for row in _records(tmp_path / "out"))


class _FakeInfo:
    """The parts of a tfds DatasetInfo that prepare reads."""

    def __init__(self, names):
        self.features = {"sentence": object(), "idx": object(),
                         "label": types.SimpleNamespace(names=names)}
        self.splits = {"validation": types.SimpleNamespace(num_examples=3)}
        self.version = "2.0.0"


def test_tfds_source_goes_through_tfds_load(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    calls = []

    def fake_load(name, split, with_info, data_dir, shuffle_files):
        calls.append((name, split, with_info))
        dataset = tf.data.Dataset.from_tensor_slices({
            "sentence": [b"a witty film", b"boring", b"hidden test row"],
            "label": np.array([1, 0, -1], dtype=np.int64),
            "idx": np.arange(3, dtype=np.int32),
        })
        return dataset, _FakeInfo(["negative", "positive"])

    monkeypatch.setattr(tfds, "load", fake_load)
    with pytest.raises(BadRowError, match=r"glue/sst2\[validation\]#2: missing label"):
        prepare("glue/sst2", tiny_tokenizer(), tmp_path / "out", split="validation", verbose=0)
    manifest = prepare("glue/sst2", tiny_tokenizer(), tmp_path / "out", split="validation",
                       skip_bad_rows=True, verbose=0)
    assert calls[0] == ("glue/sst2", "validation", True)
    assert manifest.label_names == ("negative", "positive")
    assert manifest.source["tfds"] == "glue/sst2" and manifest.source["version"] == "2.0.0"
    assert [row["label"] for row in _records(tmp_path / "out")] == [[1], [0]]


def test_existing_data_set_needs_overwrite(tmp_path):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\ngood\t1\n")
    prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)
    with pytest.raises(ValueError, match="already holds a data set"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)
    # A killed run: complete shards and a temporary file, but no manifest.
    os.remove(tmp_path / "out" / "manifest.json")
    (tmp_path / "out" / ".data-00001.tfrecord.tmp-999").write_bytes(b"half")
    with pytest.raises(ValueError, match="already holds a data set"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)
    assert prepare(source, tiny_tokenizer(), tmp_path / "out", overwrite=True, verbose=0).num_examples == 1
    assert sorted(os.listdir(tmp_path / "out")) == ["data-00000.tfrecord", "manifest.json", "vocab.txt"]


def test_interrupted_run_leaves_nothing_a_reader_takes_as_whole(tmp_path, monkeypatch):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\n" + "the film\t1\n" * 30)
    original = prepare_module.features.encode_example
    written = []

    def interrupt(*args, **kwargs):
        if len(written) == 25:
            raise KeyboardInterrupt
        written.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(prepare_module.features, "encode_example", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(source, tiny_tokenizer(), tmp_path / "out", shard_size=10, verbose=0)
    assert not os.path.exists(tmp_path / "out")  # two shards written, then removed with the folder
    with pytest.raises(ValueError, match="data directory not found"):
        load(tmp_path / "out")
    # A folder that was there before (with someone's file in it) stays, with only that file.
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        prepare(source, tiny_tokenizer(), tmp_path / "kept", shard_size=10, verbose=0)
    assert os.listdir(tmp_path / "kept") == ["notes.txt"]


def test_bad_arguments_are_clear_errors(tmp_path):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\ngood\t1\n")
    with pytest.raises(ValueError, match="max_sequence_length` >= 3"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", max_sequence_length=2, verbose=0)
    with pytest.raises(ValueError, match="task="):
        prepare(source, tiny_tokenizer(), tmp_path / "out", task="ranking", verbose=0)
    with pytest.raises(ValueError, match="shard_size"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", shard_size=0, verbose=0)
    with pytest.raises(ValueError, match="distinct"):
        prepare(source, tiny_tokenizer(), tmp_path / "out", labels="a,a", verbose=0)


def test_directory_keeps_the_vocabulary_it_was_tokenised_with(tmp_path):
    source = _write(tmp_path / "t.tsv", "sentence\tlabel\nThe film\t1\n")
    prepare(source, tiny_tokenizer(), tmp_path / "out", verbose=0)
    tokenizer = read_tokenizer(tmp_path / "out")
    assert tokenizer.get_vocabulary() == TINY_VOCAB and tokenizer.lowercase
    vocabulary = tmp_path / "out" / "vocab.txt"
    vocabulary.write_text(vocabulary.read_text().replace("film", "flim"))
    with pytest.raises(ValueError, match="does not match the hash"):
        read_tokenizer(tmp_path / "out")


def test_headerless_file_with_a_last_line_without_newline(tmp_path):
    source = tmp_path / "cola.tsv"
    source.write_bytes(b"gj04\t1\t\tthe film\ngj04\t0\t*\tfilm the")  # CoLA's dev ends so
    manifest = prepare(source, tiny_tokenizer(), tmp_path / "out", header=False,
                       column_names="source,label,original,sentence", labels="0,1", verbose=0)
    assert manifest.num_examples == 2 and manifest.source["header"] is False
    assert [row["label"] for row in _records(tmp_path / "out")] == [[1], [0]]
    assert prepare_module._count_lines(str(source)) == 2
