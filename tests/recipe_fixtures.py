"""A tiny task on disk for recipe and CLI tests: TSV files, a tokenizer folder, a teacher."""

import pathlib

import numpy as np
from tiny_models import TINY_VOCAB, tiny_classifier

POSITIVE = ["good", "great", "fun", "love", "witty", "gorgeous"]
NEGATIVE = ["bad", "awful", "boring", "hate"]
FILLER = ["a", "the", "film", "movie", "is", "was", "very", "plot", "story", "and", "it"]


def write_sentiment_tsv(path: pathlib.Path, rows: int, seed: int) -> None:
    """Sentences whose label is whether they hold a positive word (header sentence, label)."""
    rng = np.random.default_rng(seed)
    lines = ["sentence\tlabel"]
    for index in range(rows):
        label = index % 2
        words = list(rng.choice(FILLER, size=rng.integers(2, 7)))
        words.insert(int(rng.integers(0, len(words) + 1)),
                     str(rng.choice(POSITIVE if label else NEGATIVE)))
        lines.append(f"{' '.join(words)}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_tiny_task(root: pathlib.Path, train_rows: int = 96, dev_rows: int = 32) -> dict:
    """Create data/{train,dev}.tsv, tokenizer/vocab.txt and teacher.keras under `root`."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_sentiment_tsv(data / "train.tsv", train_rows, seed=0)
    write_sentiment_tsv(data / "dev.tsv", dev_rows, seed=1)
    tokenizer = root / "tokenizer"
    tokenizer.mkdir(exist_ok=True)
    (tokenizer / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    teacher = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                              max_sequence_length=32, seed=3)
    teacher_path = root / "teacher.keras"
    teacher.save(teacher_path)
    return {"data": data, "tokenizer": tokenizer, "teacher": teacher_path}


def write_tiny_recipe(root: pathlib.Path, paths: dict, modes=("fp32", "dynamic")) -> pathlib.Path:
    recipe = root / "tiny.yaml"
    recipe.write_text(f"""
name: tiny
task: sst2
student: {{from: bert_4l_128h, name: tiny, num_layers: 1, hidden_dim: 8, num_heads: 2,
           intermediate_dim: 16}}
output_dir: {root / 'run'}
seed: 0
data: {{data_dir: {paths['data']}, use_tfds: false, max_sequence_length: 16,
        tokenizer: {paths['tokenizer']}}}
teacher:
  source: {paths['teacher']}
  finetune: {{epochs: 2, batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
distill:
  intermediate: {{epochs: 1, batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
  prediction: {{epochs: 1, batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
baseline: {{batch_size: 16, learning_rate: 3.0e-3, warmup: 0.0}}
export:
  modes: [{', '.join(modes)}]
  sequence_length: 16
  latency_runs: 2
  evaluate_examples: 16
  min_agreement: 0.5
  example_sentences: ["a good film", "an awful plot"]
training: {{checkpoint_every_steps: 3, tensorboard: false}}
report: {{plots: true}}
""", encoding="utf-8")
    return recipe


def save_tiny_preset(root: pathlib.Path, seed: int = 3) -> pathlib.Path:
    """A keras-hub preset folder (`save_to_preset`): a tiny BertTextClassifier + its tokenizer."""
    from tiny_models import tiny_tokenizer

    teacher = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                              max_sequence_length=32, seed=seed)
    preset = root / "teacher_preset"
    teacher.save_to_preset(str(preset))
    tiny_tokenizer().save_to_preset(str(preset))
    return preset


def write_int8_recipe(root: pathlib.Path, data: pathlib.Path, preset: pathlib.Path,
                      train_subset: int = 64, dynamic_length: bool = False) -> pathlib.Path:
    """A recipe: preset teacher, student from the teacher's layers, hard labels, int8 export
    (with inputs of any length where `dynamic_length`)."""
    recipe = root / "int8.yaml"
    recipe.write_text(f"""
name: tiny-int8
task: sst2
student: {{from: bert_4l_128h, name: tiny, num_layers: 1, hidden_dim: 16, num_heads: 2,
           intermediate_dim: 32, init: from_teacher}}
output_dir: {root / 'run'}
seed: 0
cache_teacher: false
data: {{data_dir: {data}, use_tfds: false, max_sequence_length: 16,
        train_subset: {train_subset}}}
teacher:
  source: {preset}
  finetune: {{epochs: 1, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
distill:
  intermediate: {{epochs: 1, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
  prediction: {{epochs: 1, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0,
                hard_label_weight: 0.5}}
baseline: {{enabled: false}}
export:
  modes: [int8]
  sequence_length: 16
  dynamic_length: {str(dynamic_length).lower()}
  latency_runs: 2
  evaluate_examples: 32
  representative_examples: 32
  min_agreement: 0.5
  example_sentences: ["a good film", "an awful plot"]
training: {{checkpoint_every_steps: 50, tensorboard: false}}
report: {{plots: false}}
""", encoding="utf-8")
    return recipe
