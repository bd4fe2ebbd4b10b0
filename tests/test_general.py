"""General distillation end to end on tiny models: recipe, resume-safe stage, preset folder."""

import json

import keras_hub
import numpy as np
import pytest
from tiny_models import TINY_VOCAB, random_features, tiny_classifier, tiny_tokenizer

from tf_tinybert.config import (
    ConfigError,
    StudentConfig,
    is_general_recipe,
    load_config,
    load_general_recipe,
)
from tf_tinybert.general import classifier_from_preset, run_general

RECIPE = """
name: tiny_general
teacher: {teacher}
tokenizer: {tokenizer}
student: {{name: tiny, num_layers: 1, hidden_dim: 8, num_heads: 4, intermediate_dim: 16,
          dropout: 0.0}}
corpus: {corpus}
output_dir: {run}
max_sequence_length: 16
general:
  epochs: 1
  batch_size: 4
  learning_rate: 1.0e-2
  loss_weights: {{attention: 0.0, relation: 1.0}}
  relation_layers: layer_map
training: {{checkpoint_every_steps: 2, tensorboard: false}}
"""


@pytest.fixture()
def recipe(tmp_path):
    teacher = tiny_classifier(num_layers=2, hidden_dim=24, num_heads=12, seed=1, dropout=0.0)
    teacher.save(tmp_path / "teacher.keras")
    (tmp_path / "tokenizer").mkdir()  # a Hugging Face tokenizer folder
    (tmp_path / "tokenizer" / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text(
        "the film is good\nit was fun\n\na witty plot\n" * 6, encoding="utf-8")
    path = tmp_path / "general.yaml"
    path.write_text(RECIPE.format(teacher=tmp_path / "teacher.keras",
                                  tokenizer=tmp_path / "tokenizer", corpus=tmp_path / "corpus",
                                  run=tmp_path / "run"), encoding="utf-8")
    return path


def test_general_recipe_saves_a_preset_folder_that_keras_hub_and_task_recipes_load(recipe,
                                                                                  tmp_path):
    assert is_general_recipe(recipe)
    folder = run_general(load_general_recipe(recipe), verbose=0)
    backbone = keras_hub.models.BertBackbone.from_preset(str(folder))
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads) == (1, 8, 4)
    assert keras_hub.models.BertTokenizer.from_preset(str(folder)).vocabulary_size() == \
        tiny_tokenizer().vocabulary_size()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["history"]["relation_loss"][0] > 0 and report["data"]["documents"] == 7
    # A task student starts from it: the same backbone outputs, a new head.
    student = classifier_from_preset(folder, num_classes=3)
    features = random_features(2, 8)
    np.testing.assert_allclose(
        np.asarray(student.backbone(features)["sequence_output"]),
        np.asarray(backbone(features)["sequence_output"]), atol=1e-6)
    assert student.num_classes == 3
    with pytest.raises(ValueError, match="hidden_dim 8 \\(config: 312\\)"):
        classifier_from_preset(folder, 2, expected={"hidden_dim": 312, "num_layers": 1})
    assert StudentConfig("s", 1, 8, 4, 16, init=str(folder)).init == str(folder)
    # Not left behind: backups after the stage completed, temporary preset folders.
    assert not (tmp_path / "run" / "backup" / "general").exists()
    assert not list((tmp_path / "run").glob(".*partial*"))


def test_general_recipe_errors_name_the_key(recipe, tmp_path):
    with pytest.raises(ConfigError, match="key 'corpus'"):
        load_general_recipe(recipe, ["corpus=/nonexistent/corpus"])
    with pytest.raises(ConfigError, match="init"):
        StudentConfig("s", 1, 8, 4, 16, init="warm")
    with pytest.raises(ValueError, match="not a keras-hub preset folder"):
        classifier_from_preset(tmp_path, num_classes=2)


def test_shipped_general_recipe_loads_and_points_at_the_shared_corpus():
    config = load_config(__import__("tf_tinybert.config").config.GeneralRecipeConfig,
                         "configs/recipes/general_tinybert4.yaml")
    assert config.corpus == "../shared/data/corpus" and config.student.num_layers == 4
    assert config.general.loss_weights.attention == 1.0


def test_cli_distill_general_writes_a_preset_folder(recipe, tmp_path):
    from tf_tinybert.cli import main
    from tf_tinybert.data.corpus import prepare_corpus

    prepare_corpus(tmp_path / "corpus", tiny_tokenizer(), tmp_path / "data",
                   max_sequence_length=16, verbose=0)
    student = tmp_path / "student.yaml"
    student.write_text("name: tiny\nnum_layers: 1\nhidden_dim: 8\nnum_heads: 4\n"
                       "intermediate_dim: 16\n")
    code = main(["distill", "--stage", "general", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", str(student), "--train", str(tmp_path / "data"),
                 "--output", str(tmp_path / "preset"), "--max-sequence-length", "32",
                 "--relation-weight", "1", "--attention-weight", "0", "--epochs", "1"])
    assert code == 0
    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "preset"))
    assert backbone.num_heads == 4
    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "preset"))
    assert tokenizer.get_vocabulary() == TINY_VOCAB
