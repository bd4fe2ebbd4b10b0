"""Tiny NER and QA tasks on disk for the token recipe and CLI tests: CoNLL and SQuAD files over
the tiny vocabulary, a tokenizer folder and a tiny teacher."""

import json
import pathlib

import numpy as np
from tiny_models import TINY_VOCAB, tiny_classifier

FILLER = ["a", "the", "film", "movie", "is", "was", "very", "good", "and", "it", "fun"]
PEOPLE = [["actors"], ["actors", "witty"]]
PLACES = [["plot"], ["story", "plot"]]


def write_conll(path: pathlib.Path, sentences: int, seed: int) -> None:
    """Sentences of filler words with PER ("actors ...") and LOC ("plot", "story plot")
    entities, four columns as CoNLL-2003, documents separated by -DOCSTART-."""
    rng = np.random.default_rng(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for index in range(sentences):
        words = [(str(w), "O") for w in rng.choice(FILLER, size=rng.integers(2, 6))]
        for kind, choices in (("PER", PEOPLE), ("LOC", PLACES)):
            if rng.random() < 0.7:
                entity = choices[int(rng.integers(len(choices)))]
                tagged = [(w, f"{'B' if i == 0 else 'I'}-{kind}") for i, w in enumerate(entity)]
                at = int(rng.integers(0, len(words) + 1))
                words[at:at] = tagged
        lines += [f"{word} NN O {tag}" for word, tag in words] + [""]
        if index % 10 == 9:
            lines += ["-DOCSTART- -X- -X- O", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_squad(path: pathlib.Path, paragraphs: int, seed: int) -> None:
    """Contexts of filler words holding "the actors" and "the plot"; questions ask "who"
    (answer: "actors ...") and "what" (answer: "plot")."""
    rng = np.random.default_rng(seed)
    data = []
    for p in range(paragraphs):
        before = " ".join(rng.choice(FILLER, size=rng.integers(1, 5)))
        middle = " ".join(rng.choice(FILLER, size=rng.integers(1, 5)))
        person = "actors witty" if rng.random() < 0.5 else "actors"
        context = f"{before} {person} love {middle} the plot ."
        qas = [
            {"id": f"p{p}-who", "question": "who love it ?",
             "answers": [{"text": person, "answer_start": context.index(person)}]},
            {"id": f"p{p}-what", "question": "what is the story ?",
             "answers": [{"text": "plot", "answer_start": context.index("plot")}]},
        ]
        data.append({"title": f"t{p}", "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")


def make_token_tasks(root: pathlib.Path) -> dict:
    """conll/{train,valid}.txt, squad/{train,dev}.json, tokenizer/vocab.txt, teacher.keras."""
    conll, qa = root / "conll", root / "squad"
    conll.mkdir(parents=True, exist_ok=True)
    qa.mkdir(parents=True, exist_ok=True)
    write_conll(conll / "train.txt", 96, seed=0)
    write_conll(conll / "valid.txt", 24, seed=1)
    write_squad(qa / "train.json", 48, seed=0)
    write_squad(qa / "dev.json", 12, seed=1)
    tokenizer = root / "tokenizer"
    tokenizer.mkdir(exist_ok=True)
    (tokenizer / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    teacher = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                              max_sequence_length=32, seed=3)
    teacher.save(root / "teacher.keras")
    return {"conll": conll, "squad": qa, "tokenizer": tokenizer, "teacher": root / "teacher.keras"}


def write_token_recipe(root: pathlib.Path, paths: dict, task: str, name: str,
                       modes=("int8",), teacher_export: bool = True, length: int = 24
                       ) -> pathlib.Path:
    """A tiny recipe for task "conll2003" or "squad" on the files of `make_token_tasks`."""
    data_dir = paths["conll"] if task == "conll2003" else paths["squad"]
    task_value = task if task == "conll2003" else (
        f"{{from: squad, max_sequence_length: {length}, doc_stride: 8, max_answer_length: 4}}")
    recipe = root / f"{name}.yaml"
    recipe.write_text(f"""
name: {name}
task: {task_value}
student: {{from: bert_4l_128h, name: tiny, num_layers: 1, hidden_dim: 8, num_heads: 2,
           intermediate_dim: 16}}
output_dir: {root / name}
seed: 0
data: {{data_dir: {data_dir}, max_sequence_length: {length}, tokenizer: {paths['tokenizer']},
        train_subset: 64}}
teacher:
  source: {paths['teacher']}
  finetune: {{epochs: 2, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
distill:
  intermediate: {{epochs: 1, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
  prediction: {{epochs: 1, batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
baseline: {{batch_size: 32, learning_rate: 5.0e-3, warmup: 0.0}}
export:
  modes: [{', '.join(modes)}]
  teacher: {'true' if teacher_export else 'false'}
  sequence_length: {length}
  latency_runs: 2
  representative_examples: 16
training: {{checkpoint_every_steps: 2, tensorboard: false}}
report: {{plots: false}}
""", encoding="utf-8")
    return recipe


def spy_on_training_data(monkeypatch) -> list:
    """Record, in the returned list, `(stage or model name, folders)` for every distillation
    stage and label training of the token recipe, folders as a tuple of str paths."""
    from tf_tinybert import token_recipe

    folders, used = {}, []
    load, distill, train = (token_recipe.load_token_data, token_recipe.distill,
                            token_recipe.train_on_labels)

    def spy_load(folder, *args, **kwargs):
        dataset = load(folder, *args, **kwargs)
        folders[id(dataset)] = tuple(map(str, folder if isinstance(folder, list) else [folder]))
        return dataset

    def spy(function):
        def wrapped(model, dataset, **kwargs):
            used.append((kwargs.get("stage") or kwargs.get("name"), folders[id(dataset)]))
            return function(model, dataset, **kwargs)
        return wrapped

    monkeypatch.setattr(token_recipe, "load_token_data", spy_load)
    monkeypatch.setattr(token_recipe, "distill", spy(distill))
    monkeypatch.setattr(token_recipe, "train_on_labels", spy(train))
    return used
