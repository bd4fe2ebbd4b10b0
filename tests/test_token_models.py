"""Per-token heads (tagger, span extractor) and their losses against numpy computations."""

import keras
import keras_hub
import numpy as np
import pytest
from tiny_models import TINY_VOCAB_SIZE, random_features

from tf_tinybert import token_losses, token_models
from tf_tinybert.keras_hub_bert import backbone_with_intermediates


def tiny_backbone(seed=0, hidden_dim=8, num_layers=2):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(
        vocabulary_size=TINY_VOCAB_SIZE, num_layers=num_layers, num_heads=2,
        hidden_dim=hidden_dim, intermediate_dim=16, max_sequence_length=32, dropout=0.1)


@pytest.mark.parametrize("task, width", [("token_classification", 5), ("question_answering", 2)])
def test_head_is_a_dense_over_the_sequence_output(task, width):
    model = token_models.token_model_for(tiny_backbone(), task, num_classes=5)
    features = random_features()
    logits = keras.ops.convert_to_numpy(model(features))
    sequence = keras.ops.convert_to_numpy(model.backbone(features)["sequence_output"])
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.output_dense.weights)
    assert logits.shape == (4, 12, width)
    np.testing.assert_allclose(logits, sequence @ kernel + bias, atol=1e-5)
    outputs = backbone_with_intermediates(model.backbone, features)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(token_models.token_logits(model, outputs["sequence_output"])),
        logits, atol=1e-5)


@pytest.mark.parametrize("task", ["token_classification", "question_answering"])
def test_keras_save_and_load_round_trip(tmp_path, task):
    model = token_models.token_model_for(tiny_backbone(), task, num_classes=3, dropout=0.2)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.dropout == 0.2
    assert loaded.num_classes == model.num_classes
    features = random_features(seed=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(features)),
                               keras.ops.convert_to_numpy(model(features)), atol=1e-6)


def test_build_token_model_and_bad_task_names():
    model = token_models.build_token_model(
        {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16},
        "token_classification", num_classes=9, vocabulary_size=TINY_VOCAB_SIZE,
        max_sequence_length=16)
    assert isinstance(model, token_models.BertTokenTagger) and model.num_classes == 9
    with pytest.raises(ValueError, match="Received: task='ner'"):
        token_models.token_model_for(tiny_backbone(), "ner")
    with pytest.raises(ValueError, match="num_classes"):
        token_models.token_model_for(tiny_backbone(), "token_classification")


def np_log_softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def test_token_losses_match_numpy_loops():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 3, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    labels = np.array([[-100, 2, -100, -100, -100], [-100, 0, 3, 1, -100], [-100, 1, -100, 0, 0]])
    t = 2.0
    total, count = 0.0, 0
    for b in range(3):
        for i in range(5):
            if mask[b, i]:
                p = np.exp(np_log_softmax(teacher[b, i] / t))
                total += -(p * np_log_softmax(student[b, i] / t)).sum()
                count += 1
    expected_soft = total / count * t * t
    soft = token_losses.token_soft_cross_entropy(student, teacher, mask, temperature=t)
    assert float(soft) == pytest.approx(expected_soft, rel=1e-5)
    picked = [-np_log_softmax(student[b, i])[labels[b, i]]
              for b in range(3) for i in range(5) if labels[b, i] != -100]
    hard = token_losses.token_hard_cross_entropy(student, labels)
    assert float(hard) == pytest.approx(np.mean(picked), rel=1e-5)


def test_span_losses_match_numpy_over_real_positions_only():
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(2, 2, 6, 2))
    student[0, 4:, :] = 50.0  # padding logits must not matter
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    positions = np.array([[1, 2], [0, 0]])
    soft_rows, hard_rows = [], []
    for b in range(2):
        n = mask[b].sum()
        parts_soft, parts_hard = [], []
        for k in range(2):
            p = np.exp(np_log_softmax(teacher[b, :n, k]))
            log_q = np_log_softmax(student[b, :n, k])
            parts_soft.append(-(p * log_q).sum())
            parts_hard.append(-log_q[positions[b, k]])
        soft_rows.append(np.mean(parts_soft))
        hard_rows.append(np.mean(parts_hard))
    soft = token_losses.span_soft_cross_entropy(student, teacher, mask)
    hard = token_losses.span_hard_cross_entropy(student, positions, mask)
    assert float(soft) == pytest.approx(np.mean(soft_rows), rel=1e-5)
    assert float(hard) == pytest.approx(np.mean(hard_rows), rel=1e-5)


def test_label_losses_equal_the_hard_losses_and_train_a_teacher():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    labels = np.array([[-100, 1, 2, -100, 0], [-100, 3, -100, -100, -100], [-100, 0, 0, 1, 1]])
    keras_loss = token_losses.label_loss("token_classification")(labels, logits)
    assert float(keras_loss) == pytest.approx(
        float(token_losses.token_hard_cross_entropy(logits, labels)), rel=1e-5)
    span_logits = rng.normal(size=(3, 5, 2)).astype("float32")
    positions = np.array([[1, 2], [0, 0], [4, 4]])
    per_row = token_losses.label_loss("question_answering")(positions, span_logits)
    assert float(np.mean(per_row)) == pytest.approx(float(token_losses.span_hard_cross_entropy(
        span_logits, positions, np.ones((3, 5)))), rel=1e-5)

    model = token_models.token_model_for(tiny_backbone(), "question_answering", dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=token_losses.label_loss(model.task))
    x = random_features(batch_size=8, seed=6)
    y = np.stack([np.ones(8, int), x["padding_mask"].sum(axis=1) - 1], axis=1)
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
