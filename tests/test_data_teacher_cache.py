"""data.cache_teacher: cached logits equal the teacher's, and the Distiller's loss is unchanged."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TINY_VOCAB, WORDS, tiny_classifier, tiny_tokenizer

from tf_tinybert.data import cache_teacher, load, prepare, read_manifest
from tf_tinybert.distiller import Distiller
from tf_tinybert.teachers import load_teacher


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(1)
    words = [word for word in WORDS if not word.startswith("##")]
    lines = ["sentence\tlabel"] + [
        " ".join(rng.choice(words, size=int(rng.integers(1, 20)))) + f"\t{i % 2}" for i in range(30)
    ]
    (root / "t.tsv").write_text("\n".join(lines) + "\n")
    prepare(root / "t.tsv", tiny_tokenizer(), root / "data", max_sequence_length=24, shard_size=12, verbose=0)
    return root


def test_cached_logits_equal_the_teacher_on_loaded_batches(prepared, tmp_path):
    teacher = tiny_classifier(seed=3)
    manifest = cache_teacher(prepared / "data", teacher, tmp_path / "cached", batch_size=8, verbose=0)
    assert manifest.teacher_logits["num_classes"] == 2
    assert [shard.examples for shard in manifest.shards] == [12, 12, 6]
    assert read_manifest(tmp_path / "cached") == manifest
    seen = 0
    for features, labels in load(tmp_path / "cached", batch_size=7, seed=2):
        assert features["teacher_logits"].dtype == tf.float32
        inputs = {key: features[key] for key in ("token_ids", "segment_ids", "padding_mask")}
        expected = teacher.predict_on_batch(inputs)
        np.testing.assert_allclose(features["teacher_logits"].numpy(), expected, atol=1e-5)
        seen += int(labels.shape[0])
    assert seen == 30


def test_cached_rows_keep_their_order_and_labels(prepared, tmp_path):
    cache_teacher(prepared / "data", tiny_classifier(), tmp_path / "cached", verbose=0)
    plain = list(load(prepared / "data", shuffle=False, bucket_by_length=False))
    cached = list(load(tmp_path / "cached", shuffle=False, bucket_by_length=False))
    for (features, labels), (cached_features, cached_labels) in zip(plain, cached):
        np.testing.assert_array_equal(features["token_ids"], cached_features["token_ids"])
        np.testing.assert_array_equal(labels, cached_labels)


def test_prediction_stage_loss_is_the_same_with_and_without_the_cache(prepared, tmp_path):
    teacher, student = tiny_classifier(seed=3), tiny_classifier(num_layers=1, seed=4)
    cache_teacher(prepared / "data", teacher, tmp_path / "cached", verbose=0)
    losses = []
    for directory in (prepared / "data", tmp_path / "cached"):
        distiller = Distiller(teacher, student)
        distiller.compile(optimizer=keras.optimizers.SGD(0.0), stage="prediction")
        dataset = load(directory, batch_size=8, shuffle=False, bucket_by_length=False)
        losses.append(distiller.evaluate(dataset, verbose=0, return_dict=True)["loss"])
    assert abs(losses[0] - losses[1]) < 1e-5


def test_teacher_from_a_keras_file_and_mismatches(prepared, tmp_path):
    teacher = tiny_classifier(seed=3)
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    loaded = load_teacher(str(path))
    manifest = cache_teacher(prepared / "data", loaded, tmp_path / "cached", verbose=0)
    assert manifest.teacher_logits["teacher"] == loaded.name
    with pytest.raises(ValueError, match="vocabulary"):
        cache_teacher(prepared / "data", tiny_classifier(vocabulary_size=len(TINY_VOCAB) + 3),
                      tmp_path / "other", verbose=0)
    with pytest.raises(ValueError, match="must differ from the input"):
        cache_teacher(prepared / "data", teacher, prepared / "data", verbose=0)
    # data/ takes loaded models only; sources load through teachers.load_teacher, which
    # refuses a backbone alone (no head whose logits are worth caching).
    with pytest.raises(ValueError, match="tf_tinybert.teachers.load_teacher"):
        cache_teacher(prepared / "data", str(path), tmp_path / "x", verbose=0)
    teacher.backbone.save(tmp_path / "backbone.keras")
    with pytest.raises(ValueError, match="has no classification head"):
        load_teacher(str(tmp_path / "backbone.keras"))
    with pytest.raises(ValueError, match="no config.json"):
        load_teacher(str(tmp_path))
