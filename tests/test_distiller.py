"""The Distiller: what it trains, what it freezes, the losses it reports, its errors."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import random_features, tiny_classifier

import tf_tinybert as tt
from tf_tinybert.keras_hub_bert import forward_with_intermediates

HERE = pathlib.Path(__file__).parent


def _models(dropout=0.1):
    teacher = tiny_classifier(num_layers=4, hidden_dim=16, num_heads=2, seed=1, dropout=dropout)
    student = tiny_classifier(num_layers=2, hidden_dim=8, num_heads=2, seed=2, dropout=dropout)
    return teacher, student


def _dataset(batch_size=4, rows=8, sequence_length=12, seed=0):
    features = random_features(rows, sequence_length, seed=seed)
    labels = np.arange(rows, dtype="int32") % 2
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size), features, labels


def _np_masked_mse(a, b, mask):
    squared = ((a - b) ** 2).sum(-1) * mask
    return squared.sum() / (mask.sum() * a.shape[-1])


def _np_attention_mse(a, b, mask):
    pairs = mask[:, None, :, None] * mask[:, None, None, :]
    return (((a - b) ** 2) * pairs).sum() / (pairs.sum() * a.shape[1])


def test_fit_trains_student_and_projections_and_freezes_teacher():
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map="uniform")
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    projection_before = distiller.hidden_projection.get_weights()[0].copy()
    ds, _, _ = _dataset()
    distiller.compile(optimizer=keras.optimizers.AdamW(1e-2), stage="intermediate")
    distiller.fit(ds, epochs=2, verbose=0)
    for before, after in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)  # bit-identical
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights())]
    assert sum(changed) > len(changed) // 2
    assert not np.array_equal(projection_before, distiller.hidden_projection.get_weights()[0])
    assert not teacher.trainable
    # The projections are not part of the student.
    assert all("projection" not in v.path for v in student.weights)


def test_reported_intermediate_losses_match_a_numpy_computation():
    teacher, student = _models(dropout=0.0)
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map=[2, 4])
    distiller.compile(optimizer="adamw", stage="intermediate")
    ds, features, labels = _dataset(batch_size=8)
    result = distiller.evaluate(ds, return_dict=True, verbose=0)
    s = forward_with_intermediates(student, features)
    t = forward_with_intermediates(teacher, features)
    mask = features["padding_mask"].astype("float32")

    def project(layer, x):
        kernel, bias = layer.get_weights()
        return np.asarray(x) @ kernel + bias

    embedding = _np_masked_mse(project(distiller.embedding_projection, s["hidden_states"][0]),
                               np.asarray(t["hidden_states"][0]), mask)
    hidden = sum(_np_masked_mse(project(distiller.hidden_projection, s["hidden_states"][m]),
                                np.asarray(t["hidden_states"][g]), mask)
                 for m, g in ((1, 2), (2, 4)))
    attention = sum(_np_attention_mse(np.asarray(s["attention_scores"][m - 1]),
                                      np.asarray(t["attention_scores"][g - 1]), mask)
                    for m, g in ((1, 2), (2, 4)))
    assert result["embedding_loss"] == pytest.approx(embedding, rel=1e-5)
    assert result["hidden_loss"] == pytest.approx(hidden, rel=1e-5)
    assert result["attention_loss"] == pytest.approx(attention, rel=1e-4, abs=1e-9)
    assert result["loss"] == pytest.approx(embedding + hidden + attention, rel=1e-5)
    assert set(result) == {"embedding_loss", "hidden_loss", "attention_loss", "loss", "accuracy"}


def test_attention_loss_is_the_same_for_64_and_128_padding():
    teacher = tiny_classifier(num_layers=2, hidden_dim=16, seed=1, max_sequence_length=128,
                              dropout=0.0)
    student = tiny_classifier(num_layers=1, hidden_dim=8, seed=2, max_sequence_length=128,
                              dropout=0.0)
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="intermediate")
    results = []
    for length in (64, 128):
        features = random_features(4, 40, seed=7)
        padded = {k: np.pad(v, [(0, 0), (0, length - 40)]) for k, v in features.items()}
        labels = np.zeros(4, "int32")
        results.append(distiller.evaluate(padded, labels, return_dict=True, verbose=0))
    assert results[0]["attention_loss"] > 0
    for key in ("attention_loss", "hidden_loss", "embedding_loss"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-5)


def test_prediction_stage_is_soft_cross_entropy_from_teacher_to_student():
    teacher, student = _models(dropout=0.0)
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="prediction", temperature=2.0)
    ds, features, labels = _dataset(batch_size=8)
    result = distiller.evaluate(ds, return_dict=True, verbose=0)
    s_logits = np.asarray(student(features)) / 2.0
    t_logits = np.asarray(teacher(features)) / 2.0
    t_prob = np.exp(t_logits) / np.exp(t_logits).sum(-1, keepdims=True)
    s_logp = s_logits - np.log(np.exp(s_logits).sum(-1, keepdims=True))
    expected = -(t_prob * s_logp).sum(-1).mean() * 4.0
    assert result["prediction_loss"] == pytest.approx(expected, rel=1e-5)
    accuracy = (np.asarray(student(features)).argmax(-1) == labels).mean()
    assert result["accuracy"] == pytest.approx(accuracy)


def test_cached_teacher_logits_replace_the_teacher_forward_pass():
    teacher, student = _models(dropout=0.0)
    student.output_dense.kernel.assign(student.output_dense.kernel * 300.0)
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="prediction")
    _, features, labels = _dataset(batch_size=8)
    live = distiller.evaluate(features, labels, return_dict=True, verbose=0)
    cached = dict(features, teacher_logits=np.asarray(teacher(features)))
    from_cache = distiller.evaluate(cached, labels, return_dict=True, verbose=0)
    assert from_cache["prediction_loss"] == pytest.approx(live["prediction_loss"], abs=1e-5)
    # Different cached logits change the loss: the cache really is what is used.
    shifted = dict(features, teacher_logits=np.asarray(teacher(features)) * 0 + [[5.0, -5.0]])
    other = distiller.evaluate(shifted, labels, return_dict=True, verbose=0)
    logits = np.asarray(student(features))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.exp([5.0, -5.0]) / np.exp([5.0, -5.0]).sum()
    assert other["prediction_loss"] == pytest.approx(-(target * log_p).sum(-1).mean(), rel=1e-4)
    assert abs(other["prediction_loss"] - live["prediction_loss"]) > 0.01


def test_joint_stage_with_hard_labels_and_general_stage_without_labels():
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="joint", loss_weights={"hard": 0.5, "attention": 0.0})
    ds, features, _ = _dataset()
    history = distiller.fit(ds, epochs=1, verbose=0).history
    assert {"embedding_loss", "hidden_loss", "prediction_loss", "hard_loss", "loss"} <= set(history)
    assert "attention_loss" not in history
    distiller.compile(stage="general")
    unlabeled = tf.data.Dataset.from_tensor_slices(features).batch(4)
    history = distiller.fit(unlabeled, epochs=1, verbose=0).history
    assert "accuracy" not in history and np.isfinite(history["loss"][0])


def _compiled_steps(function):
    """The tf.functions reachable from a Keras train function (its closures, unwrapped)."""
    seen, found, todo = set(), [], [function]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, tf.types.experimental.PolymorphicFunction):
            found.append(current)
            current = current.python_function
        for cell in getattr(current, "__closure__", None) or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        if getattr(current, "__wrapped__", None) is not None:
            todo.append(current.__wrapped__)
    return [f for f in found if callable(f)]


def _xla_flags(distiller):
    """`_XlaMustCompile` of every traced step function under `distiller.train_function`."""
    flags = []
    for function in _compiled_steps(distiller.train_function):
        for concrete in function._list_all_concrete_functions():
            attr = concrete.function_def.attr.get("_XlaMustCompile")
            flags.append(attr is not None and attr.b)
    return flags


def _one_training_step(jit_compile):
    teacher, student = _models(dropout=0.0)
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=keras.optimizers.AdamW(1e-2), stage="joint",
                      loss_weights={"hard": 0.5}, jit_compile=jit_compile)
    _, features, labels = _dataset(batch_size=8)
    before = [v.numpy().copy() for v in distiller.trainable_variables]
    losses_ = distiller.train_on_batch(features, labels, return_dict=True)
    after = [v.numpy() for v in distiller.trainable_variables]
    return distiller, before, after, losses_


def test_xla_train_step_is_really_compiled_and_matches_the_plain_step():
    plain, plain_before, plain_after, plain_losses = _one_training_step(jit_compile=False)
    xla, xla_before, xla_after, xla_losses = _one_training_step(jit_compile=True)
    # The step under train_function is traced with XLA's must-compile flag only when asked.
    assert _xla_flags(xla) and all(_xla_flags(xla))
    assert _xla_flags(plain) and not any(_xla_flags(plain))
    assert xla.jit_compile is True and plain.jit_compile is False
    # Same seed, same batch: same start, same losses, same updated weights.
    for a, b in zip(plain_before, xla_before):
        np.testing.assert_array_equal(a, b)
    assert set(plain_losses) == set(xla_losses)
    for key, value in plain_losses.items():
        assert xla_losses[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    moved = 0
    for before, a, b in zip(plain_before, plain_after, xla_after):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        moved += not np.array_equal(before, a)
    assert moved > len(plain_before) // 2  # the step really updated the weights


def test_jit_compile_gives_the_same_evaluation_losses():
    teacher, student = _models(dropout=0.0)
    distiller = tt.Distiller(teacher=teacher, student=student)
    ds, _, _ = _dataset(batch_size=8)
    distiller.compile(stage="joint", jit_compile=False)
    eager = distiller.evaluate(ds, return_dict=True, verbose=0)
    distiller.compile(stage="joint", jit_compile=True)
    compiled = distiller.evaluate(ds, return_dict=True, verbose=0)
    for key, value in eager.items():
        assert compiled[key] == pytest.approx(value, rel=1e-4, abs=1e-6)


def test_mirrored_strategy_on_two_cpus_matches_one_device():
    result = subprocess.run([sys.executable, str(HERE / "mirrored_check.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("LOSSES")]
    assert len(lines) == 2, result.stdout
    one, two = (np.array(line.split()[1:], dtype="float64") for line in lines)
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-6)


def test_student_round_trips_through_keras_file(tmp_path):
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="joint")
    ds, features, _ = _dataset()
    distiller.fit(ds, epochs=1, verbose=0)
    path = tmp_path / "s.keras"
    distiller.student.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(features, verbose=0),
                                  distiller.student.predict(features, verbose=0))


def test_distiller_config_round_trip():
    teacher, student = _models()
    distiller = tt.Distiller(teacher=teacher, student=student, layer_map=[1, 4])
    clone = tt.Distiller.from_config(distiller.get_config())
    assert clone.teacher_layers == [1, 4]
    assert clone.student.count_params() == student.count_params()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer_map": [1, 2, 3]}, "one teacher layer per student layer"),
        ({"layer_map": [3, 2]}, "strictly increasing"),
        ({"layer_map": [1, 9]}, "teacher has layers 1..4"),
    ],
)
def test_bad_layer_maps(kwargs, message):
    teacher, student = _models()
    with pytest.raises(ValueError, match=message):
        tt.Distiller(teacher=teacher, student=student, **kwargs)


def test_mismatched_models_are_refused_with_the_reason():
    teacher, _ = _models()
    with pytest.raises(ValueError, match="vocabulary sizes differ: student 99, teacher"):
        tt.Distiller(teacher=teacher, student=tiny_classifier(vocabulary_size=99))
    with pytest.raises(ValueError, match="max_sequence_length \\(64\\) exceeds the teacher's"):
        tt.Distiller(teacher=teacher, student=tiny_classifier(max_sequence_length=64))
    with pytest.raises(ValueError, match="teacher must be a BERT-family"):
        tt.Distiller(teacher=keras.Sequential([keras.layers.Dense(2)]), student=teacher)
    distiller = tt.Distiller(teacher=teacher, student=tiny_classifier(num_heads=4, hidden_dim=8))
    with pytest.raises(ValueError, match="num_heads \\(4\\) must match the teacher's \\(2\\)"):
        distiller.compile(stage="intermediate")
    distiller.compile(stage="intermediate", loss_weights={"attention": 0})  # allowed
    with pytest.raises(ValueError, match="Expected `stage` to be one of"):
        distiller.compile(stage="foo")
    with pytest.raises(ValueError, match="Unknown loss 'kl'"):
        distiller.compile(stage="joint", loss_weights={"kl": 1.0})


def test_mixed_precision_student_trains_with_float32_losses():
    import keras_hub

    teacher, _ = _models(dropout=0.0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=teacher.backbone.vocabulary_size, num_layers=2, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=32, dtype="mixed_float16")
    student = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2,
                                                  preprocessor=None, dtype="mixed_float16")
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer=keras.optimizers.AdamW(1e-3), stage="joint")
    ds, _, _ = _dataset()
    before = [v.numpy().copy() for v in student.trainable_variables]
    history = distiller.fit(ds, epochs=2, verbose=0).history
    assert all(np.isfinite(history["loss"]))
    assert student.backbone.transformer_layers[0].compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in student.trainable_variables)
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, student.trainable_variables)]
    assert sum(changed) > len(changed) // 2


def _student_under_policy(policy, weights=None):
    """The `_models` student built while `policy` is Keras' global policy (restored after)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        student = tiny_classifier(num_layers=2, hidden_dim=8, num_heads=2, seed=2, dropout=0.0)
    finally:
        keras.config.set_dtype_policy(previous)
    if weights is not None:
        student.set_weights(weights)
    return student


def test_float16_student_losses_are_close_to_float32_but_not_identical():
    teacher, student32 = _models(dropout=0.0)
    student16 = _student_under_policy("mixed_float16", student32.get_weights())
    assert keras.config.dtype_policy().name == "float32"  # the global policy was restored
    _, features, labels = _dataset(batch_size=8)
    hidden = student16.backbone({k: features[k] for k in features})["sequence_output"]
    assert hidden.dtype == "float16"  # fp16 really ran
    assert student32.backbone(features)["sequence_output"].dtype == "float32"
    results = {}
    for name, student in (("32", student32), ("16", student16)):
        distiller = tt.Distiller(teacher=teacher, student=student)
        distiller.compile(stage="joint")
        # Same projections for both: copy the float32 run's into the float16 run.
        if name == "16":
            for mine, theirs in (("embedding_projection", results["projections"][0]),
                                 ("hidden_projection", results["projections"][1])):
                getattr(distiller, mine).set_weights(theirs)
        results["projections"] = [distiller.embedding_projection.get_weights(),
                                  distiller.hidden_projection.get_weights()]
        results[name] = distiller.evaluate(features, labels, return_dict=True, verbose=0)
    float32, float16 = results["32"], results["16"]
    assert set(float32) == set(float16)
    for key in ("embedding_loss", "hidden_loss", "prediction_loss", "loss"):
        assert float16[key] == pytest.approx(float32[key], rel=1e-2), key
    assert float16["attention_loss"] == pytest.approx(float32["attention_loss"], rel=0.1,
                                                      abs=1e-5)
    assert any(float16[key] != float32[key] for key in ("embedding_loss", "hidden_loss", "loss"))


def _regression_models():
    teacher = tiny_classifier(num_layers=2, hidden_dim=16, num_classes=1, seed=5, dropout=0.0)
    student = tiny_classifier(num_layers=1, hidden_dim=8, num_classes=1, seed=6, dropout=0.0)
    # Spread the outputs so the squared errors are far from zero.
    teacher.output_dense.kernel.assign(teacher.output_dense.kernel * 50.0)
    return teacher, student


def test_regression_prediction_loss_is_the_numpy_mse_of_student_against_teacher():
    teacher, student = _regression_models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    assert distiller.is_regression
    distiller.compile(stage="prediction", temperature=3.0)  # no temperature in MSE
    _, features, _ = _dataset(batch_size=8)
    scores = np.linspace(0.0, 5.0, 8).astype("float32")
    result = distiller.evaluate(features, scores, return_dict=True, verbose=0)
    s = np.asarray(student.predict(features, verbose=0), "float64")
    t = np.asarray(teacher.predict(features, verbose=0), "float64")
    assert s.shape == t.shape == (8, 1)
    expected = ((s - t) ** 2).mean()
    assert expected > 1e-2
    assert result["prediction_loss"] == pytest.approx(expected, rel=1e-5)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert "accuracy" not in result
    # The same value straight from compute_losses on the models' outputs.
    values = distiller.compute_losses(features, None, {"logits": s.astype("float32")},
                                      {"logits": t.astype("float32")})
    assert float(values["prediction"]) == pytest.approx(expected, rel=1e-5)


def test_regression_hard_label_loss_is_the_numpy_mse_against_the_scores():
    teacher, student = _regression_models()
    distiller = tt.Distiller(teacher=teacher, student=student)
    distiller.compile(stage="prediction", loss_weights={"prediction": 0.25, "hard": 2.0})
    _, features, _ = _dataset(batch_size=8)
    scores = np.linspace(0.0, 5.0, 8).astype("float32")
    result = distiller.evaluate(features, scores, return_dict=True, verbose=0)
    s = np.asarray(student.predict(features, verbose=0), "float64")[:, 0]
    t = np.asarray(teacher.predict(features, verbose=0), "float64")[:, 0]
    hard = ((s - scores) ** 2).mean()
    soft = ((s - t) ** 2).mean()
    assert result["hard_loss"] == pytest.approx(hard, rel=1e-5)
    assert result["prediction_loss"] == pytest.approx(soft, rel=1e-5)
    assert result["loss"] == pytest.approx(0.25 * soft + 2.0 * hard, rel=1e-5)
    # Training on the scores alone moves the student towards them.
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), stage="prediction",
                      loss_weights={"prediction": 0.0, "hard": 1.0})
    distiller.fit(features, scores, batch_size=8, epochs=30, verbose=0)
    trained = np.asarray(student.predict(features, verbose=0), "float64")[:, 0]
    assert ((trained - scores) ** 2).mean() < 0.5 * hard


def test_distillation_learns_the_keyword_task_from_a_trained_teacher():
    from synthetic import accuracy, keyword_data, keyword_dataset, keyword_student, keyword_teacher

    teacher = keyword_teacher()
    held_out, held_out_labels = keyword_data(512, seed=7)
    assert accuracy(teacher, held_out, held_out_labels) >= 0.97
    untrained = accuracy(keyword_student(), held_out, held_out_labels)
    student = keyword_student()
    distiller = tt.Distiller(teacher=teacher, student=student)
    train = keyword_dataset(512, seed=3)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), stage="intermediate")
    history = distiller.fit(train, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3), stage="prediction")
    distiller.fit(train, epochs=4, verbose=0)
    distilled = accuracy(student, held_out, held_out_labels)
    assert distilled >= 0.85
    assert distilled >= untrained + 0.25
