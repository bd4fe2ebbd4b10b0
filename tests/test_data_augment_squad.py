"""data.augment_squad: rewritten SQuAD questions keep their contexts and answers; the QA recipe
distils on them (and only the distillation stages do)."""

import json

import pytest
from tiny_models import TINY_VOCAB, tiny_classifier, tiny_tokenizer
from token_fixtures import make_token_tasks, spy_on_training_data, write_squad, write_token_recipe

from tf_tinybert.data.augment_squad import augment_squad, augmentation_of
from tf_tinybert.data.candidates import EmbeddingNeighbours
from tf_tinybert.data.readers import BadRowError
from tf_tinybert.data.squad import read_squad


def _questions(path):
    document = json.loads(path.read_text(encoding="utf-8"))
    return [(paragraph["context"], qa) for article in document["data"]
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("squad") / "train.json"
    write_squad(path, 6, seed=0)
    return path


def test_copies_follow_their_question_with_its_context_and_answers(squad_file, tmp_path):
    teacher = tiny_classifier(seed=2)
    output = tmp_path / "aug.json"
    settings = augment_squad(squad_file, output, teacher, tiny_tokenizer(), copies=3, p=0.5,
                             candidates=3, verbose=0)
    originals = _questions(squad_file)
    written = _questions(output)
    assert settings["questions"] == len(originals) == 12 and settings["written"] == len(written)
    assert len(originals) < len(written) <= 4 * len(originals)
    assert augmentation_of(output) == settings and settings["method"] == "embedding_neighbours"
    # Every question of the output reads as valid SQuAD: the answers still point at their text.
    assert not [item for item in read_squad(str(output)) if isinstance(item, BadRowError)]
    neighbours = EmbeddingNeighbours(teacher.backbone.token_embedding.embeddings.numpy(),
                                     TINY_VOCAB, k=3)
    tokenizer = tiny_tokenizer()
    position = 0
    for context, qa in originals:
        assert written[position] == (context, qa)  # the original first, unchanged
        position += 1
        k = 1
        while position < len(written) and written[position][1]["id"] == f"{qa['id']}@aug{k}":
            copy_context, copy = written[position]
            assert copy_context == context and copy["answers"] == qa["answers"]
            words, before = copy["question"].split(), qa["question"].split()
            assert len(words) == len(before) and words != before
            for word, old in zip(words, before):
                if word != old:
                    pieces = [int(i) for i in tokenizer([old])[0]]
                    assert word in neighbours([pieces])[0]
            position, k = position + 1, k + 1
    assert position == len(written)


def test_same_seed_same_file_and_p_zero_writes_the_originals(squad_file, tmp_path):
    teacher = tiny_classifier(seed=2)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        augment_squad(squad_file, tmp_path / f"{name}.json", teacher, tiny_tokenizer(), copies=3,
                      seed=seed, verbose=0)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()
    settings = augment_squad(squad_file, tmp_path / "p0.json", teacher, tiny_tokenizer(), p=0.0,
                             verbose=0)
    assert settings["written"] == settings["questions"]
    assert _questions(tmp_path / "p0.json") == _questions(squad_file)
    with pytest.raises(ValueError, match="nothing to write"):
        augment_squad(squad_file, tmp_path / "none.json", teacher, tiny_tokenizer(), copies=0,
                      keep_original=False, verbose=0)
    assert not (tmp_path / "none.json").exists()


def test_a_bad_question_stops_with_its_json_path_or_is_skipped(squad_file, tmp_path):
    document = json.loads(squad_file.read_text(encoding="utf-8"))
    document["data"][2]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    teacher = tiny_classifier(seed=2)
    with pytest.raises(ValueError, match=r"bad\.json:data\[2\]\.paragraphs\[0\]\.qas\[1\]"
                                         r"\.answers\[0\]: answer_start 0"):
        augment_squad(bad, tmp_path / "out.json", teacher, tiny_tokenizer(), copies=2, verbose=0)
    assert not list(tmp_path.glob("out*"))
    settings = augment_squad(bad, tmp_path / "out.json", teacher, tiny_tokenizer(), copies=2,
                             skip_bad_rows=True, verbose=0)
    assert settings["skipped"] == 1 and settings["questions"] == 11
    ids = {qa["id"].split("@")[0] for _, qa in _questions(tmp_path / "out.json")}
    assert "p2-what" not in ids and len(ids) == 11


def _recipe_with_augmentation(tmp_path, task, name):
    paths = make_token_tasks(tmp_path)
    recipe = write_token_recipe(tmp_path, paths, task, name, modes=(), teacher_export=False,
                                length=16)
    recipe.write_text(recipe.read_text(encoding="utf-8")
                      + "augment: {enabled: true, copies: 2, p: 0.5}\n", encoding="utf-8")
    return recipe


def test_the_qa_recipe_distils_on_the_augmented_questions_and_trains_the_baseline_on_the_rest(
        tmp_path, monkeypatch):
    from tf_tinybert.config import load_recipe
    from tf_tinybert.recipe import run_recipe

    used = spy_on_training_data(monkeypatch)
    recipe = _recipe_with_augmentation(tmp_path, "squad", "qa")
    report = run_recipe(load_recipe(recipe), verbose=0)
    run = tmp_path / "qa"
    data = report["data"]
    assert data["train_questions"] < data["augmented_questions"] <= 3 * data["train_questions"]
    assert data["augmented_windows"] > data["train_windows"]
    assert data["augmentation"]["copies"] == 2
    augmented, train = str(run / "data" / "augmented"), str(run / "data" / "train")
    assert used == [("teacher", (train,)), ("intermediate", (augmented,)),
                    ("prediction", (augmented,)), ("baseline", (train,))]
    assert augmentation_of(run / "data" / "train_augmented.json")["written"] == \
        data["augmented_questions"] + data["augmented_skipped"]
    # Run again: the augmented file and folder are reused as they are.
    stamp = (run / "data" / "augmented" / "summary.json").stat().st_mtime_ns
    run_recipe(load_recipe(recipe), verbose=0)
    assert (run / "data" / "augmented" / "summary.json").stat().st_mtime_ns == stamp


def test_the_ner_recipe_refuses_augmentation_by_name(tmp_path):
    from tf_tinybert.config import load_recipe
    from tf_tinybert.recipe import run_recipe

    recipe = _recipe_with_augmentation(tmp_path, "conll2003", "ner")
    with pytest.raises(ValueError, match=r"augment is not run for the token_classification task "
                                         r"'conll2003'.*augment\.enabled=false"):
        run_recipe(load_recipe(recipe), verbose=0)
    assert not (tmp_path / "ner" / "teacher.keras").exists()


def test_the_cli_augments_a_squad_file(tmp_path, capsys):
    from tf_tinybert.cli import main

    paths = make_token_tasks(tmp_path)
    source, output = paths["squad"] / "train.json", tmp_path / "aug.json"
    base = ["augment", "--input", str(source), "--output", str(output),
            "--teacher", str(paths["teacher"]), "--copies", "2"]
    assert main(base) == 2
    assert "train.json: a SQuAD .json input needs --tokenizer" in capsys.readouterr().err
    assert main([*base, "--tokenizer", str(paths["tokenizer"])]) == 0
    settings = augmentation_of(output)
    assert settings["copies"] == 2 and settings["questions"] == len(_questions(source))
    assert f"wrote {settings['written']} questions" in capsys.readouterr().out
    assert main([*base, "--tokenizer", str(paths["tokenizer"])]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
