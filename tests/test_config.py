"""YAML recipes into frozen dataclasses: every shipped config loads, and bad input fails early,
naming the file, line and key."""

import dataclasses
import pathlib
import textwrap

import pytest

from tf_tinybert import config as cfg

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
KINDS = {"recipes": cfg.RecipeConfig, "tasks": cfg.TaskConfig, "students": cfg.StudentConfig}

MINIMAL = """\
name: tiny
task: sst2
student: bert_4l_128h
teacher:
  source: minilm-l6-offline
"""


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def recipe(tmp_path, extra=""):
    return cfg.load_recipe(write(tmp_path, MINIMAL + textwrap.dedent(extra)))


@pytest.mark.parametrize(
    "path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_shipped_config_loads(path):
    kind = KINDS[path.parent.name]
    if cfg.is_general_recipe(path):  # a corpus and no task: general distillation
        kind = cfg.GeneralRecipeConfig
    loaded = cfg.load_config(kind, path)
    assert dataclasses.is_dataclass(loaded)
    assert loaded.name == path.stem


def test_each_kind_of_config_is_shipped():
    for kind in KINDS:
        assert list((CONFIGS / kind).glob("*.yaml")), kind


# The paper shapes (Jiao et al., 2020; BERT-mini) the student presets must keep.
PAPER_STUDENTS = {
    "tinybert_4l_312h": {"num_layers": 4, "hidden_dim": 312, "num_heads": 12,
                         "intermediate_dim": 1200},
    "tinybert_6l_768h": {"num_layers": 6, "hidden_dim": 768, "num_heads": 12,
                         "intermediate_dim": 3072},
    "bert_4l_128h": {"num_layers": 4, "hidden_dim": 128, "num_heads": 4, "intermediate_dim": 512},
}
# GLUE's official metrics (Wang et al., 2019), the selection metric first.
GLUE_METRICS = {
    "cola": ("matthews_corrcoef",), "sst2": ("accuracy",), "mrpc": ("accuracy", "f1"),
    "stsb": ("pearson", "spearman"), "qqp": ("accuracy", "f1"), "mnli": ("accuracy",),
    "qnli": ("accuracy",), "rte": ("accuracy",),
}

# The token tasks of issue 14: task type and metrics, the selection metric first.
TOKEN_TASKS = {"conll2003": ("token_classification", ("f1", "precision", "recall")),
               "squad": ("question_answering", ("f1", "exact_match"))}
CONLL_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


def test_shipped_names_list_the_yaml_stems():
    assert cfg.shipped_names("students") == sorted(p.stem for p in (CONFIGS / "students").glob("*.yaml"))
    assert set(PAPER_STUDENTS) <= set(cfg.shipped_names("students"))
    assert cfg.shipped_names("tasks") == sorted([*GLUE_METRICS, *TOKEN_TASKS])


@pytest.mark.parametrize("name", sorted(PAPER_STUDENTS))
def test_student_presets_have_the_paper_shapes(name):
    assert cfg.load_student(name).backbone_config() == {**PAPER_STUDENTS[name], "dropout": 0.1}


@pytest.mark.parametrize("name", sorted(GLUE_METRICS))
def test_task_configs_report_the_glue_metrics(name):
    task = cfg.load_task(name)
    assert task.metrics == GLUE_METRICS[name]
    assert task.primary_metric == GLUE_METRICS[name][0]
    assert task.tfds is not None and task.tfds.name == f"glue/{name}"
    assert task.is_pair == (name not in ("sst2", "cola"))


def test_task_shapes():
    assert cfg.load_task("mnli").num_classes == 3
    assert cfg.load_task("mnli").files.dev == "dev_matched.tsv"
    assert cfg.load_task("mnli").tfds.dev_split == "validation_matched"
    stsb = cfg.load_task("stsb")
    assert (stsb.task_type, stsb.num_classes, stsb.primary_metric) == ("regression", 1, "pearson")
    cola = cfg.load_task("cola")
    assert not cola.files.header and cola.files.column_names[3] == "sentence"


def test_quickstart_resolves_task_student_and_defaults():
    config = cfg.load_recipe(CONFIGS / "recipes" / "quickstart.yaml")
    assert config.task.name == "sst2" and config.student.init == "from_teacher"
    assert config.student.hidden_dim == 384 and config.student.init_layers == (2, 4, 6)
    assert config.teacher.source == "minilm-l6-offline"
    assert config.run_dir == str(pathlib.Path("runs") / "quickstart")
    assert set(config.export.modes) >= {"dynamic", "int8"}
    assert config.data.train_subset and config.data.train_subset < 67349


def test_full_recipe_uses_all_training_rows():
    config = cfg.load_recipe(CONFIGS / "recipes" / "sst2_tinybert4.yaml")
    assert config.data.train_subset is None and config.student.name == "tinybert_4l_312h"


def test_configs_are_frozen(tmp_path):
    config = recipe(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.distill.intermediate.epochs = 1


def test_nested_defaults_fill_in(tmp_path):
    config = recipe(tmp_path)
    assert config.distill.intermediate == cfg.IntermediateStageConfig()
    assert config.distill.intermediate.layer_map == "uniform"
    assert config.training.strategy == "default"


def test_unknown_key_names_file_line_key_suggestion_and_valid_keys(tmp_path):
    path = write(tmp_path, MINIMAL + "distill:\n  intermediat:\n    epochs: 3\n")
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_recipe(path)
    message = str(caught.value)
    assert str(path) in message and "line 7" in message
    assert "'distill.intermediat'" in message
    assert "Did you mean 'intermediate'?" in message
    assert "general, intermediate, prediction" in message
    assert caught.value.key == "distill.intermediat" and caught.value.line == 7


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"unknown key 'sed'\. Did you mean 'seed'\?"):
        recipe(tmp_path, "sed: 3\n")


def test_wrong_type_names_expected_and_received(tmp_path):
    with pytest.raises(cfg.ConfigError) as caught:
        recipe(tmp_path, "distill:\n  prediction:\n    epochs: three\n")
    assert "key 'distill.prediction.epochs'" in str(caught.value)
    assert "expected int. Received: str 'three'" in str(caught.value)


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(cfg.ConfigError, match="expected int. Received: bool True"):
        recipe(tmp_path, "seed: true\n")


def test_list_where_a_mapping_belongs(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"expected mapping \(ExportConfig\)"):
        recipe(tmp_path, "export: [int8]\n")


def test_yaml_1_1_exponent_strings_read_as_floats(tmp_path):
    # PyYAML reads `3e-5` (no dot) as a string; float fields accept it.
    config = recipe(tmp_path, "distill:\n  prediction:\n    learning_rate: 3e-5\n")
    assert config.distill.prediction.learning_rate == pytest.approx(3e-5)


def test_lists_become_tuples_and_items_are_checked(tmp_path):
    config = recipe(tmp_path, "export:\n  modes: [fp32, int8]\n")
    assert config.export.modes == ("fp32", "int8")
    with pytest.raises(cfg.ConfigError) as caught:
        recipe(tmp_path, "export:\n  modes: [fp32, int4]\n")
    assert "key 'export.modes[1]'" in str(caught.value) and "line 7" in str(caught.value)
    assert "'int4'" in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("teacher:\n  source: minilm-l6-offline\n  finetune:\n    warmup: 1.5\n",
         "teacher.finetune.warmup"),
        ("distill:\n  intermediate:\n    batch_size: 0\n", "distill.intermediate.batch_size"),
        ("distill:\n  prediction:\n    temperature: -1.0\n", "distill.prediction.temperature"),
        ("distill:\n  intermediate:\n    layer_map: middle\n", "distill.intermediate.layer_map"),
        ("augment:\n  p: 1.5\n", "augment.p"),
        ("training:\n  strategy: cluster\n", "training.strategy"),
        ("data:\n  train_subset: 0\n", "data.train_subset"),
        ("distill:\n  general:\n    enabled: true\n", "distill.general.corpus"),
    ],
)
def test_ranges_are_checked_with_the_key_named(tmp_path, extra, key):
    text = MINIMAL.replace("teacher:\n  source: minilm-l6-offline\n", "") if extra.startswith(
        "teacher") else MINIMAL
    path = write(tmp_path, text + extra)
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_recipe(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value)


def test_explicit_layer_map_list(tmp_path):
    config = recipe(tmp_path, "distill:\n  intermediate:\n    layer_map: [2, 4, 5, 6]\n")
    assert config.distill.intermediate.layer_map == (2, 4, 5, 6)


def test_dataclass_checks_also_apply_in_python():
    with pytest.raises(cfg.ConfigError, match="'num_heads'.*divisor of hidden_dim"):
        cfg.StudentConfig("s", num_layers=2, hidden_dim=10, num_heads=3, intermediate_dim=8)
    with pytest.raises(cfg.ConfigError, match="'labels'"):
        cfg.TaskConfig("t", task_type="regression", labels=("a", "b"), metrics=("pearson",))
    with pytest.raises(cfg.ConfigError, match=r"'metrics\[0\]'"):
        cfg.TaskConfig("t", labels=("a", "b"), metrics=("pearson",))
    with pytest.raises(cfg.ConfigError, match="'files.label_values'"):
        cfg.TaskConfig("t", labels=("a", "b"), files=cfg.FilesConfig(label_values=("0",)))
    with pytest.raises(cfg.ConfigError, match="'dev_subset'.*positive"):
        cfg.DataConfig(dev_subset=0)
    with pytest.raises(cfg.ConfigError, match="'max_sequence_length'.*at least 3"):
        cfg.DataConfig(max_sequence_length=2)
    with pytest.raises(cfg.ConfigError, match="'transfer_subset'.*no data.transfer_file"):
        cfg.DataConfig(transfer_subset=5)


def test_missing_recipe_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(cfg.ConfigError, match="config file not found.*nope.yaml"):
        cfg.load_recipe(missing)


def test_missing_referenced_task_names_reference_paths_and_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL.replace("task: sst2", "task: sst3"))
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_recipe(path)
    message = str(caught.value)
    assert "key 'task'" in message and "line 2" in message
    assert "sst3.yaml" in message and "Did you mean 'sst2'?" in message


def test_missing_required_key(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"missing required key\(s\) \['teacher'\]"):
        cfg.load_recipe(write(tmp_path, "name: x\ntask: sst2\nstudent: bert_4l_128h\n"))


def test_reference_with_from_replaces_listed_keys(tmp_path):
    path = write(tmp_path, MINIMAL.replace(
        "student: bert_4l_128h", "student: {from: tinybert_4l_312h, dropout: 0.0}"))
    student = cfg.load_recipe(path).student
    assert (student.hidden_dim, student.dropout) == (312, 0.0)


def test_local_task_file_beside_the_recipe_wins(tmp_path):
    (tmp_path / "tasks").mkdir()
    write(tmp_path / "tasks", "name: sst2\nlabels: [neg, pos]\n", "sst2.yaml")
    (tmp_path / "recipes").mkdir()
    path = write(tmp_path / "recipes", MINIMAL)
    assert cfg.load_recipe(path).task.labels == ("neg", "pos")


def test_errors_inside_a_referenced_file_name_that_file(tmp_path):
    (tmp_path / "students").mkdir()
    bad = write(tmp_path / "students", "name: s\nnum_layers: 2\nhidden_dim: 8\nnum_head: 2\n"
                "intermediate_dim: 8\n", "broken.yaml")
    path = write(tmp_path, MINIMAL.replace("bert_4l_128h", "broken"))
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_recipe(path)
    assert caught.value.file == str(bad) and caught.value.line == 4
    assert "Did you mean 'num_heads'?" in str(caught.value)


def test_overrides_set_nested_values_parsed_as_yaml(tmp_path):
    config = cfg.apply_overrides(recipe(tmp_path), [
        "distill.intermediate.epochs=3",
        "distill.prediction.learning_rate=2e-5",
        "export.modes=[fp16, int8]",
        "data.train_subset=null",
        "student=tinybert_6l_768h",
    ])
    assert config.distill.intermediate.epochs == 3
    assert config.distill.prediction.learning_rate == pytest.approx(2e-5)
    assert config.export.modes == ("fp16", "int8")
    assert config.data.train_subset is None
    assert config.student.hidden_dim == 768


def test_load_recipe_applies_overrides(tmp_path):
    config = cfg.load_recipe(write(tmp_path, MINIMAL), ["seed=7", "training.xla=true"])
    assert (config.seed, config.training.xla) == (7, True)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("distill.intermediate.epochs=abc", r"--set distill.intermediate.epochs=abc: "
                                            r"key 'distill.intermediate.epochs': expected int"),
        ("distill.intermediat.epochs=3", r"Did you mean 'intermediate'\?"),
        ("seed.value=1", r"'seed' is a value, not a section"),
        ("no_equals_sign", r"expected KEY=VALUE"),
        ("export.min_agreement=2", r"'export.min_agreement': expected a number in \[0, 1\]"),
    ],
)
def test_bad_overrides_are_named(tmp_path, override, pattern):
    with pytest.raises(cfg.ConfigError, match=pattern):
        cfg.apply_overrides(recipe(tmp_path), [override])


def test_overrides_leave_the_original_untouched(tmp_path):
    config = recipe(tmp_path)
    cfg.apply_overrides(config, ["seed=5"])
    assert config.seed == 0


def test_save_config_round_trips(tmp_path):
    config = cfg.apply_overrides(recipe(tmp_path), ["export.modes=[int8]", "seed=3"])
    saved = tmp_path / "run" / "config.yaml"
    saved.parent.mkdir()
    cfg.save_config(config, saved)
    assert cfg.load_config(cfg.RecipeConfig, saved) == config
    assert [p.name for p in saved.parent.iterdir()] == ["config.yaml"]  # no temporary left


def test_missing_teacher_path_is_named_before_anything_runs(tmp_path):
    path = write(tmp_path, MINIMAL.replace("minilm-l6-offline", "runs/none/teacher.keras"))
    with pytest.raises(cfg.ConfigError, match=r"key 'teacher.source'.*not found"):
        cfg.load_recipe(path)


def test_invalid_yaml_is_named(tmp_path):
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load_recipe(write(tmp_path, "name: [unclosed\n"))


def test_config_error_is_a_value_error():
    assert issubclass(cfg.ConfigError, ValueError)


def test_extra_dev_files_are_checked():
    assert cfg.load_task("mnli").files.extra_dev == ("dev_mismatched.tsv",)
    assert cfg.load_task("mnli").tfds.extra_dev_splits == ("validation_mismatched",)
    with pytest.raises(cfg.ConfigError, match="extra_dev"):
        cfg.FilesConfig(extra_dev=("x/dev.tsv",))  # its stem would be the dev folder
    with pytest.raises(cfg.ConfigError, match="jsonl"):
        cfg.FilesConfig(format="jsonl", header=False, column_names=("sentence", "label"))
    with pytest.raises(cfg.ConfigError, match="tfds.extra_dev_splits"):
        cfg.TaskConfig(name="t", labels=("a", "b"), files=cfg.FilesConfig(extra_dev=("more.tsv",)),
                       tfds=cfg.TfdsConfig(name="glue/t"))


def test_token_task_configs():
    for name, (task_type, metrics) in TOKEN_TASKS.items():
        task = cfg.load_task(name)
        assert (task.task_type, task.metrics, task.is_token_task) == (task_type, metrics, True)
        assert task.labels == () and task.tfds is None
    conll = cfg.load_task("conll2003")
    assert conll.tags == CONLL_TAGS and conll.num_classes == 9
    assert (conll.files.train, conll.files.dev, conll.files.format) == ("train.txt", "valid.txt",
                                                                        "conll")
    assert conll.files.tag_column == -1
    squad = cfg.load_task("squad")
    assert (squad.files.train, squad.files.dev, squad.files.format) == ("train.json", "dev.json",
                                                                        "squad")
    assert (squad.max_sequence_length, squad.doc_stride, squad.max_answer_length) == (384, 128, 30)
    assert squad.num_classes == 2 and squad.tags == ()
    assert cfg.load_task("sst2").is_token_task is False


TOKEN_TASK_HEAD = """\
name: t
task_type: token_classification
tags: [O, B-PER, I-PER]
metrics: [f1]
files: {format: conll}
"""


@pytest.mark.parametrize("extra, key, reason", [
    ("labels: [a, b]\n", "labels", "no labels for a token_classification task"),
    ("metrics: [accuracy]\n", "metrics[0]", "one of ('f1', 'precision', 'recall')"),
    ("tags: [B-PER, I-PER]\n", "tags", "\"O\" among them"),
    ("tags: [O, PER]\n", "tags[1]", "IOB2 tag"),
    ("tags: [O, B-PER, B-PER]\n", "tags", "distinct names"),
    ("files: {format: squad}\n", "files.format", "one of ('conll', 'jsonl')"),
    ("tfds: {name: conll2003}\n", "tfds", "no tfds fallback"),
    ("tag: [O]\n", "tag", "unknown key 'tag'. Did you mean 'tags'?"),
])
def test_token_classification_task_checks(tmp_path, extra, key, reason):
    # A later key replaces an earlier one (PyYAML), so `extra` overrides the head's value.
    path = write(tmp_path, TOKEN_TASK_HEAD + extra, "task.yaml")
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_config(cfg.TaskConfig, path)
    assert caught.value.key == key and reason in str(caught.value)
    assert caught.value.file == str(path) and caught.value.line is not None


@pytest.mark.parametrize("text, key, reason", [
    ("task_type: question_answering\nmetrics: [f1]\ntags: [O, B-X]\nfiles: {format: squad}\n",
     "tags", "no tags for a question_answering task"),
    ("task_type: question_answering\nmetrics: [accuracy]\nfiles: {format: squad}\n",
     "metrics[0]", "one of ('f1', 'exact_match')"),
    ("task_type: question_answering\nmetrics: [f1]\nfiles: {format: conll}\n",
     "files.format", "one of ('squad',)"),
    ("task_type: question_answering\nmetrics: [f1]\nfiles: {format: squad}\n"
     "max_sequence_length: 64\ndoc_stride: 64\n", "doc_stride", "fewer word pieces"),
    ("labels: [a, b]\nmetrics: [exact_match]\n", "metrics[0]", "one of ('accuracy'"),
    ("labels: [a, b]\ntags: [O, B-X]\n", "tags", "no tags for a classification task"),
    ("labels: [a, b]\nmax_sequence_length: 64\n", "max_sequence_length", "null for a "
     "classification task"),
    ("labels: [a, b]\nfiles: {format: conll}\n", "files.format", "one of ('tsv', 'csv', 'jsonl')"),
])
def test_task_shapes_check_their_own_keys(tmp_path, text, key, reason):
    path = write(tmp_path, "name: t\n" + text, "task.yaml")
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load_config(cfg.TaskConfig, path)
    assert caught.value.key == key and reason in str(caught.value), str(caught.value)


def test_token_recipes_resolve_their_tasks_and_override_lengths():
    ner = cfg.load_recipe(CONFIGS / "recipes" / "conll2003_minilm.yaml")
    assert ner.task.task_type == "token_classification" and ner.task.primary_metric == "f1"
    assert ner.data.data_dir and ner.data.train_subset
    qa = cfg.load_recipe(CONFIGS / "recipes" / "squad_minilm.yaml",
                         ["task.max_sequence_length=192", "task.doc_stride=64"])
    assert (qa.task.max_sequence_length, qa.task.doc_stride) == (192, 64)
    assert qa.task.metrics == ("f1", "exact_match")
