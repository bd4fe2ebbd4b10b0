"""data.augment: TinyBERT augmentation, candidates checked against numpy and the MLM itself."""

import hashlib

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TINY_VOCAB, tiny_classifier, tiny_tokenizer

from tf_tinybert.data import augment, prepare, read_manifest
from tf_tinybert.data.candidates import EmbeddingNeighbours, MaskedLMCandidates
from tf_tinybert.data.features import decode_row

TEXTS = ["the film is witty and gorgeous !", "a boring , awful plot", "great actors but bad story",
         "it was fun", "love the movie"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    lines = ["sentence\tlabel"] + [f"{text}\t{i % 2}" for i, text in enumerate(TEXTS)]
    (root / "t.tsv").write_text("\n".join(lines) + "\n")
    prepare(root / "t.tsv", tiny_tokenizer(), root / "data", max_sequence_length=16, verbose=0)
    return root / "data"


def _rows(directory):
    rows = []
    for shard in read_manifest(directory).shards:
        for raw in tf.data.TFRecordDataset(str(directory / shard.file)).as_numpy_iterator():
            feature = tf.train.Example.FromString(raw).features.feature
            rows.append((*decode_row(raw), list(feature["token_ids"].int64_list.value)))
    return rows


def _whole_words():
    return [i for i, token in enumerate(TINY_VOCAB) if token.isalpha() and not token.startswith("##")]


def test_embedding_neighbours_are_the_nearest_by_cosine():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(len(TINY_VOCAB), 6)).astype("float32")
    neighbours = EmbeddingNeighbours(embeddings, TINY_VOCAB, k=4)
    film, ly = TINY_VOCAB.index("film"), TINY_VOCAB.index("##ly")
    found = neighbours([[film], [film, ly], []])
    candidates = _whole_words()
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    for result, vector, exclude in [(found[0], embeddings[film], film),
                                    (found[1], (embeddings[film] + embeddings[ly]) / 2, None)]:
        scores = {i: unit[i] @ (vector / np.linalg.norm(vector)) for i in candidates if i != exclude}
        expected = sorted(scores, key=scores.get, reverse=True)[:4]
        assert result == [TINY_VOCAB[i] for i in expected]
    assert found[2] == []


def test_masked_lm_candidates_are_its_top_k_at_the_masked_position():
    backbone = tiny_classifier(seed=5).backbone
    masked_lm = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    tokenizer = tiny_tokenizer()
    ids = [2, TINY_VOCAB.index("the"), TINY_VOCAB.index("film"), TINY_VOCAB.index("is"), 3]
    (found,) = MaskedLMCandidates(masked_lm, tokenizer, k=5)([ids], [2])
    masked = np.array([ids])
    masked[0, 2] = TINY_VOCAB.index("[MASK]")
    logits = masked_lm.predict_on_batch({
        "token_ids": masked, "segment_ids": np.zeros_like(masked),
        "padding_mask": np.ones_like(masked), "mask_positions": np.array([[2]]),
    })[0, 0]
    allowed = [i for i in _whole_words() if i != ids[2]]
    expected = sorted(allowed, key=lambda i: -logits[i])[:5]
    assert found == [TINY_VOCAB[i] for i in expected]


def test_augmented_rows_keep_labels_and_only_swap_words_for_candidates(prepared, tmp_path):
    teacher = tiny_classifier(seed=2)
    manifest = augment(prepared, tmp_path / "aug", teacher, copies=6, p=0.5, candidates=3,
                       tokenizer=tiny_tokenizer(), verbose=0)
    assert manifest.augmentation["method"] == "embedding_neighbours"
    rows = _rows(tmp_path / "aug")
    assert len(rows) == manifest.num_examples and len(TEXTS) < len(rows) <= len(TEXTS) * 7
    neighbours = EmbeddingNeighbours(teacher.backbone.token_embedding.embeddings.numpy(), TINY_VOCAB, k=3)
    tokenizer = tiny_tokenizer()
    original = None
    for text, _, label, token_ids in rows:
        if text in TEXTS:
            original, original_label = text.split(), label
            assert label == TEXTS.index(text) % 2
            continue
        assert label == original_label
        words = text.split()
        assert len(words) == len(original) and words != original
        for word, before in zip(words, original):
            if word != before:
                pieces = [int(i) for i in tokenizer([before])[0]]
                assert word in neighbours([pieces])[0]
        assert token_ids == [2, *(int(i) for i in tokenizer([text])[0]), 3][:16]


def _shard_hashes(directory):
    return [hashlib.sha256((directory / shard.file).read_bytes()).hexdigest()
            for shard in read_manifest(directory).shards]


def test_same_seed_same_output_and_p_zero_keeps_only_originals(prepared, tmp_path):
    teacher = tiny_classifier(seed=2)
    augment(prepared, tmp_path / "a", teacher, copies=4, seed=0, tokenizer=tiny_tokenizer(), verbose=0)
    # By default the tokenizer is rebuilt from the input's vocab.txt: the same output.
    augment(prepared, tmp_path / "b", teacher, copies=4, seed=0, verbose=0)
    augment(prepared, tmp_path / "c", teacher, copies=4, seed=1, verbose=0)
    assert _shard_hashes(tmp_path / "a") == _shard_hashes(tmp_path / "b")
    assert _shard_hashes(tmp_path / "a") != _shard_hashes(tmp_path / "c")
    manifest = augment(prepared, tmp_path / "p0", teacher, p=0.0, tokenizer=tiny_tokenizer(), verbose=0)
    assert [row[0] for row in _rows(tmp_path / "p0")] == TEXTS and manifest.num_examples == 5


def test_masked_lm_teacher_uses_the_mlm_route(prepared, tmp_path):
    masked_lm = keras_hub.models.BertMaskedLM(backbone=tiny_classifier(seed=5).backbone, preprocessor=None)
    manifest = augment(prepared, tmp_path / "mlm", masked_lm, copies=1, p=1.0, candidates=4,
                       tokenizer=tiny_tokenizer(), verbose=0)
    assert manifest.augmentation["method"] == "masked_lm+embedding_neighbours"
    rows = _rows(tmp_path / "mlm")
    assert rows[0][0] == TEXTS[0]
    words, replaced = TEXTS[0].split(), rows[1][0].split()
    # Every word of TEXTS[0] is one word piece: each is replaced by one of the MLM's top 4.
    ids = [2, *(TINY_VOCAB.index(word) for word in words), 3]
    mlm = MaskedLMCandidates(masked_lm, tiny_tokenizer(), k=4)
    for position, (before, after) in enumerate(zip(words, replaced), start=1):
        if before.isalpha():
            assert after in mlm([ids], [position])[0]
        else:
            assert after == before


def test_bad_arguments_and_vocabulary_mismatch(prepared, tmp_path):
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        augment(prepared, tmp_path / "x", tiny_classifier(), p=1.5, tokenizer=tiny_tokenizer())
    other = keras_hub.models.BertTokenizer(vocabulary=TINY_VOCAB + ["new"], lowercase=True)
    with pytest.raises(ValueError, match="another vocabulary"):
        augment(prepared, tmp_path / "x", tiny_classifier(vocabulary_size=len(TINY_VOCAB) + 1), tokenizer=other)
    with pytest.raises(ValueError, match=f"teacher has a {len(TINY_VOCAB) + 2}-token vocabulary"):
        augment(prepared, tmp_path / "x", tiny_classifier(vocabulary_size=len(TINY_VOCAB) + 2))


def test_a_teacher_source_loads_through_teachers_alias_included(prepared, tmp_path):
    # The offline alias used to reach keras-hub's from_preset as a literal name and fail;
    # data/ now takes models only, and teachers.py resolves every source one way.
    from tf_tinybert.teachers import load_augmentation_teacher

    backbone = load_augmentation_teacher("minilm-l6-offline")
    assert (backbone.num_layers, backbone.hidden_dim) == (6, 384)
    with pytest.raises(ValueError, match="load_augmentation_teacher"):
        augment(prepared, tmp_path / "x", "minilm-l6-offline", verbose=0)
