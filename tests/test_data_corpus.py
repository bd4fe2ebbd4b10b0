"""Streaming a plain-text corpus into packed TFRecords: packing, long lines, folders, bad files."""

import os

import pytest
import tensorflow as tf
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.data import load, prepare, read_manifest
from tf_tinybert.data.corpus import BinaryCorpusError, EmptyCorpusError, prepare_corpus

CLS, SEP = TINY_VOCAB.index("[CLS]"), TINY_VOCAB.index("[SEP]")


def _pieces(text):
    # keras-hub's eager (pure-Python) WordPiece, independent of prepare's compiled one.
    return [int(i) for i in tiny_tokenizer()([text])[0]]


def _reference_pack(documents, length):
    """Greedy packing of each document's lines into [CLS] ... [SEP] sequences."""
    budget, sequences = length - 2, []
    for document in documents:
        current = []
        for line in document:
            pieces = _pieces(line)
            if len(pieces) > budget:
                if current:
                    sequences.append(current)
                sequences.extend(pieces[i:i + budget] for i in range(0, len(pieces), budget))
                current = []
                continue
            if len(current) + len(pieces) > budget:
                sequences.append(current)
                current = []
            current = current + pieces
        if current:
            sequences.append(current)
    return [[CLS, *sequence, SEP] for sequence in sequences]


def _token_ids(directory):
    ids = []
    for shard in read_manifest(directory).shards:
        path = os.path.join(directory, shard.file)
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            feature = tf.train.Example.FromString(raw).features.feature
            ids.append(list(feature["token_ids"].int64_list.value))
    return ids


DOCUMENTS = [
    ["the film is good .", "it was fun !", "a witty plot and great actors ."],
    ["the movie was boring", "not very good"],
    ["love " * 13 + "it"],  # 14 pieces: longer than a sequence of 8
    ["hate"],
]


def test_lines_of_a_document_are_packed_and_long_lines_split_as_a_reference(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(lines) for lines in DOCUMENTS) + "\n",
                      encoding="utf-8")
    manifest = prepare(corpus, tiny_tokenizer(), tmp_path / "out", unlabeled=True,
                       max_sequence_length=8, shard_size=3, verbose=0)
    expected = _reference_pack(DOCUMENTS, 8)
    assert _token_ids(tmp_path / "out") == expected
    assert all(len(ids) <= 8 for ids in expected) and len(manifest.shards) == -(-len(expected) // 3)
    # Nothing dropped: every word piece of the corpus is in some sequence.
    total = sum(len(_pieces(line)) for lines in DOCUMENTS for line in lines)
    assert sum(len(ids) - 2 for ids in expected) == total
    # "a witty plot and great actors ." (7 pieces) and the 14 loves exceed 6.
    assert manifest.source["split_lines"] == 2 and manifest.source["documents"] == 4
    assert manifest.source["lines"] == 7 and manifest.task == "unlabeled"
    batch = next(iter(load(tmp_path / "out", batch_size=2, shuffle=False, bucket_by_length=False)))
    assert set(batch) == {"token_ids", "segment_ids", "padding_mask"}


def test_a_folder_of_files_is_read_in_name_order_and_files_end_documents(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "b.txt").write_text("not very good\n", encoding="utf-8")
    (folder / "a.txt").write_text("the film is good .\r\nit was fun !", encoding="utf-8")
    (folder / ".hidden").write_text("\x00binary", encoding="latin-1")
    manifest = prepare_corpus(folder, tiny_tokenizer(), tmp_path / "out",
                              max_sequence_length=16, batch_size=1, verbose=0)
    assert _token_ids(tmp_path / "out") == _reference_pack(
        [["the film is good .", "it was fun !"], ["not very good"]], 16)
    assert [os.path.basename(f["path"]) for f in manifest.source["files"]] == ["a.txt", "b.txt"]


def test_without_packing_each_line_is_a_sequence(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the film\nis good\n", encoding="utf-8")
    prepare_corpus(corpus, tiny_tokenizer(), tmp_path / "out", pack=False, verbose=0)
    assert _token_ids(tmp_path / "out") == [[CLS, *_pieces("the film"), SEP],
                                            [CLS, *_pieces("is good"), SEP]]


@pytest.mark.parametrize("content, error, message", [
    (b"", EmptyCorpusError, "empty"),
    (b"\n \n\n", EmptyCorpusError, "only blank lines"),
    (b"good film\n\x89PNG\x00\x00\x01", BinaryCorpusError, "NUL byte"),
    (b"good film\n\xff\xfe bad", BinaryCorpusError, r"c\.txt:2: not UTF-8"),
])
def test_empty_or_binary_corpus_files_are_named_errors_leaving_nothing(tmp_path, content, error,
                                                                       message):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(content)
    with pytest.raises(error, match=message):
        prepare(corpus, tiny_tokenizer(), tmp_path / "out", unlabeled=True, verbose=0)
    assert not (tmp_path / "out").exists()
    assert issubclass(error, ValueError)


def test_an_empty_folder_is_a_named_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpusError, match="holds no files"):
        prepare_corpus(tmp_path / "empty", tiny_tokenizer(), tmp_path / "out", verbose=0)
