"""Teacher loading from every kind of source, checked against the saved model's own outputs and
against a numpy BERT forward pass over Hugging Face weights; teacher fine-tuning."""

import json

import keras
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import save_file
from tiny_models import TINY_VOCAB, random_features, tiny_classifier

from tf_tinybert import teachers

HIDDEN, HEADS, INTERMEDIATE, LAYERS, POSITIONS = 8, 2, 16, 2, 32


# ----------------------------------------------------------------------------- references


def numpy_bert(weights: dict, features: dict, heads: int, epsilon: float = 1e-12):
    """BERT's forward pass in numpy from Hugging Face weight names (tanh GELU, as keras-hub)."""

    def w(name):
        return weights[name]

    def dense(x, name):
        return x @ w(f"{name}.weight").T + w(f"{name}.bias")

    def layer_norm(x, name):
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + epsilon) * w(f"{name}.weight") + w(f"{name}.bias")

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    token_ids, segment_ids = features["token_ids"], features["segment_ids"]
    mask = features["padding_mask"].astype("float64")
    batch, length = token_ids.shape
    x = (w("embeddings.word_embeddings.weight")[token_ids]
         + w("embeddings.position_embeddings.weight")[:length]
         + w("embeddings.token_type_embeddings.weight")[segment_ids])
    x = layer_norm(x, "embeddings.LayerNorm")
    hidden = x.shape[-1]
    size = hidden // heads
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in weights:
        prefix = f"encoder.layer.{layer}"

        def split(t):
            return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q = split(dense(x, f"{prefix}.attention.self.query"))
        k = split(dense(x, f"{prefix}.attention.self.key"))
        v = split(dense(x, f"{prefix}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + (1 - mask)[:, None, None, :] * -1e9
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = (probabilities @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = layer_norm(x + dense(context, f"{prefix}.attention.output.dense"),
                       f"{prefix}.attention.output.LayerNorm")
        x = layer_norm(x + dense(gelu(dense(x, f"{prefix}.intermediate.dense")),
                                 f"{prefix}.output.dense"), f"{prefix}.output.LayerNorm")
        layer += 1
    return x, np.tanh(dense(x[:, 0], "pooler.dense"))


def random_hf_weights(seed=0) -> dict:
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=0.3):
        return (rng.normal(size=shape) * scale).astype("float32")

    weights = {
        "embeddings.word_embeddings.weight": normal(len(TINY_VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": normal(2, HIDDEN),
        "embeddings.LayerNorm.weight": 1 + normal(HIDDEN, scale=0.1),
        "embeddings.LayerNorm.bias": normal(HIDDEN, scale=0.1),
        "pooler.dense.weight": normal(HIDDEN, HIDDEN),
        "pooler.dense.bias": normal(HIDDEN, scale=0.1),
    }
    shapes = {
        "attention.self.query": (HIDDEN, HIDDEN), "attention.self.key": (HIDDEN, HIDDEN),
        "attention.self.value": (HIDDEN, HIDDEN), "attention.output.dense": (HIDDEN, HIDDEN),
        "intermediate.dense": (INTERMEDIATE, HIDDEN), "output.dense": (HIDDEN, INTERMEDIATE),
    }
    for layer in range(LAYERS):
        prefix = f"encoder.layer.{layer}"
        for name, shape in shapes.items():
            weights[f"{prefix}.{name}.weight"] = normal(*shape)
            weights[f"{prefix}.{name}.bias"] = normal(shape[0], scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{prefix}.{norm}.weight"] = 1 + normal(HIDDEN, scale=0.1)
            weights[f"{prefix}.{norm}.bias"] = normal(HIDDEN, scale=0.1)
    return weights


def write_hf_folder(folder, weights, model_type="bert"):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": model_type, "vocab_size": len(TINY_VOCAB),
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE, "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    }))
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    save_file(weights, str(folder / "model.safetensors"))
    return folder


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny classifier saved as .keras, as a keras-hub task preset and as a backbone preset."""
    root = tmp_path_factory.mktemp("teachers")
    classifier = tiny_classifier(num_classes=2, seed=1)
    classifier.save(root / "teacher.keras")
    classifier.save_to_preset(str(root / "task_preset"))
    classifier.backbone.save_to_preset(str(root / "backbone_preset"))
    features = random_features(batch_size=3, sequence_length=10, seed=2)
    return {
        "root": root,
        "logits": np.asarray(classifier.predict(features, verbose=0)),
        "sequence": np.asarray(classifier.backbone(features)["sequence_output"]),
        "features": features,
    }


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    weights = random_hf_weights()
    return write_hf_folder(tmp_path_factory.mktemp("hf") / "tiny_bert", weights), weights


# ----------------------------------------------------------------------------- loading


@pytest.mark.parametrize("source", ["teacher.keras", "task_preset"])
def test_saved_classifier_keeps_its_head(saved, source):
    teacher = teachers.load_teacher(saved["root"] / source)
    assert isinstance(teacher, keras_hub.models.BertTextClassifier)
    assert teacher.preprocessor is None
    np.testing.assert_allclose(teacher.predict(saved["features"], verbose=0), saved["logits"],
                               atol=1e-6)


@pytest.mark.parametrize("source", ["teacher.keras", "task_preset", "backbone_preset"])
def test_new_class_count_gets_a_new_head_on_the_same_backbone(saved, source):
    teacher = teachers.load_teacher(saved["root"] / source, num_classes=3)
    assert teacher.num_classes == 3
    assert teacher.predict(saved["features"], verbose=0).shape == (3, 3)
    sequence = teacher.backbone(saved["features"])["sequence_output"]
    np.testing.assert_allclose(sequence, saved["sequence"], atol=1e-6)


def test_backbone_without_head_needs_num_classes(saved):
    with pytest.raises(teachers.TeacherSourceError, match="num_classes"):
        teachers.load_teacher(saved["root"] / "backbone_preset")


@pytest.mark.parametrize("source", ["teacher.keras", "task_preset", "backbone_preset"])
def test_load_backbone_from_each_source(saved, source):
    backbone = teachers.load_backbone(saved["root"] / source)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    np.testing.assert_allclose(backbone(saved["features"])["sequence_output"], saved["sequence"],
                               atol=1e-6)


def test_hugging_face_folder_matches_numpy_bert(hf_folder):
    folder, weights = hf_folder
    features = random_features(batch_size=3, sequence_length=12, seed=4)
    expected_sequence, expected_pooled = numpy_bert(weights, features, HEADS)
    backbone = teachers.load_backbone(folder)
    outputs = backbone(features)
    np.testing.assert_allclose(outputs["sequence_output"], expected_sequence, atol=2e-5)
    np.testing.assert_allclose(outputs["pooled_output"], expected_pooled, atol=2e-5)


def test_hugging_face_folder_gets_a_classifier_head(hf_folder):
    folder, weights = hf_folder
    teacher = teachers.load_teacher(folder, num_classes=2)
    features = random_features(batch_size=2, sequence_length=8, seed=5)
    _, pooled = numpy_bert(weights, features, HEADS)
    kernel, bias = teacher.output_dense.get_weights()
    np.testing.assert_allclose(teacher(features, training=False), pooled @ kernel + bias,
                               atol=2e-5)


def test_non_bert_hugging_face_folder_is_refused(tmp_path):
    folder = write_hf_folder(tmp_path / "roberta", random_hf_weights(), model_type="roberta")
    with pytest.raises(teachers.TeacherSourceError, match="model_type='roberta'"):
        teachers.load_teacher(folder, num_classes=2)


def test_non_bert_keras_hub_preset_is_refused(saved, tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"registered_name": "keras_hub>GPT2Backbone",
                                                    "config": {}}))
    with pytest.raises(teachers.TeacherSourceError, match="GPT2Backbone"):
        teachers.load_backbone(folder)


def test_non_bert_keras_model_is_refused(tmp_path):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "dense.keras")
    with pytest.raises(teachers.TeacherSourceError, match="Functional"):
        teachers.load_teacher(tmp_path / "dense.keras")


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "teacher.keras"
    with pytest.raises(teachers.TeacherSourceError, match=f"{missing}.*not found"):
        teachers.load_teacher(missing)


def test_unknown_preset_name_lists_bert_presets():
    # Checked against keras-hub's preset list before any download is attempted.
    with pytest.raises(teachers.TeacherSourceError, match="bert_tiny_en_uncased"):
        teachers.load_teacher("roberta_base_en", num_classes=2)


def test_offline_alias_resolves_to_the_packaged_folder():
    folder = teachers.resolve_source("minilm-l6-offline")
    assert folder.endswith("model")
    assert json.loads(open(f"{folder}/config.json").read())["hidden_size"] == 384


@pytest.mark.large
def test_offline_minilm_matches_numpy_bert():
    from safetensors.numpy import load_file

    folder = teachers.resolve_source("minilm-l6-offline")
    teacher = teachers.load_teacher("minilm-l6-offline", num_classes=2)
    backbone = teacher.backbone
    assert (backbone.num_layers, backbone.hidden_dim, backbone.vocabulary_size) == (6, 384, 30522)
    assert 22_000_000 < teacher.count_params() < 23_500_000
    weights = load_file(f"{folder}/model.safetensors")
    features = random_features(batch_size=2, sequence_length=16, vocabulary_size=30522, seed=6)
    expected, _ = numpy_bert(weights, features, heads=12)
    np.testing.assert_allclose(backbone(features)["sequence_output"], expected, atol=1e-4)
