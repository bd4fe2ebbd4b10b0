"""A QA recipe's transfer set: more questions, answers never read, distilled on beside the
training windows. Checked here: the file written (training questions left out, answers
removed), its windows (positions UNLABELED), the hard loss that skips them (numpy), the
mixed data set, the config's checks and the recipe end to end."""

import json

import numpy as np
import pytest
from tiny_models import random_features, tiny_backbone, tiny_tokenizer
from token_fixtures import make_token_tasks, spy_on_training_data, write_squad, write_token_recipe

from tf_tinybert import token_losses, token_recipe
from tf_tinybert.config import ConfigError, load_recipe
from tf_tinybert.data import squad
from tf_tinybert.data.prepare_tokens import prepare_squad
from tf_tinybert.data.readers import BadRowError
from tf_tinybert.recipe import run_recipe
from tf_tinybert.token_distiller import TokenDistiller
from tf_tinybert.token_models import BertSpanExtractor
from tf_tinybert.token_recipe import load_token_data, subset_squad, transfer_squad


def _questions(path):
    return [qa for a in json.loads(path.read_text())["data"] for p in a["paragraphs"]
            for qa in p["qas"]]


def _numpy_span_ce(logits, positions, mask):
    """(CE(start) + CE(end)) / 2 per labeled row, averaged over labeled rows only."""
    logits = np.where(mask[:, :, None] > 0, logits, -1e4)
    log_p = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(
        1, keepdims=True)) - logits.max(1, keepdims=True)
    rows = [-(log_p[r, s, 0] + log_p[r, e, 1]) / 2 for r, (s, e) in enumerate(positions) if s >= 0]
    return float(np.mean(rows))


def test_the_hard_span_loss_skips_unlabeled_rows_and_averages_over_labeled_ones():
    rng = np.random.default_rng(0)
    mask = np.ones((4, 6), "int32")
    mask[1, 4:] = 0
    logits = rng.normal(size=(4, 6, 2)).astype("float32")
    positions = np.array([[1, 2], [squad.UNLABELED] * 2, [3, 3], [squad.UNLABELED] * 2])
    got = float(token_losses.span_hard_cross_entropy(logits, positions, mask))
    assert got == pytest.approx(_numpy_span_ce(logits, positions, mask), rel=1e-5)
    assert float(token_losses.labeled_rows(positions)) == 2.0
    # A batch of unlabeled rows only gives no hard loss (not NaN).
    none = np.full((4, 2), squad.UNLABELED)
    assert float(token_losses.span_hard_cross_entropy(logits, none, mask)) == 0.0


def test_the_distillers_hard_loss_on_a_mixed_batch_is_the_labeled_rows_mean():
    teacher = BertSpanExtractor(tiny_backbone(0, 2, 12), dropout=0.0)
    student = BertSpanExtractor(tiny_backbone(1, 1, 8), dropout=0.0)
    distiller = TokenDistiller(teacher, student)
    distiller.compile(optimizer="adam", stage="prediction", loss_weights={"hard": 0.5})
    x = random_features(seed=2)
    y = np.array([[1, 2], [-1, -1], [2, 2], [-1, -1]], "int32")
    values = distiller.compute_losses(x, y, distiller._student_outputs(x, False),
                                      distiller._teacher_outputs(x))
    expected = _numpy_span_ce(np.asarray(student(x)), y, x["padding_mask"])
    assert float(values["hard"]) == pytest.approx(expected, rel=1e-5)


def test_the_transfer_file_leaves_out_training_questions_and_every_answer(tmp_path):
    source = tmp_path / "train.json"
    write_squad(source, 20, seed=0)
    training = subset_squad(source, tmp_path / "subset.json", 15, seed=0)
    trained = {qa["id"] for qa in _questions(training)}
    target = transfer_squad(source, tmp_path / "transfer.json", training, None, seed=0)
    transfer = _questions(target)
    everything = {qa["id"]: qa for qa in _questions(source)}
    assert {qa["id"] for qa in transfer} == set(everything) - trained
    assert len(transfer) == 40 - 15
    assert all(qa["answers"] == [] and qa["question"] == everything[qa["id"]]["question"]
               for qa in transfer)
    some = _questions(transfer_squad(source, tmp_path / "t10.json", training, 10, seed=0))
    assert len(some) == 10 and {qa["id"] for qa in some} <= {qa["id"] for qa in transfer}
    with pytest.raises(ValueError, match="no transfer questions"):
        transfer_squad(training, tmp_path / "none.json", training, None, seed=0)
    assert not (tmp_path / "none.json").exists()


def test_unlabeled_windows_are_the_labeled_ones_with_no_positions(tmp_path):
    source = tmp_path / "train.json"
    write_squad(source, 6, seed=1)
    labeled = prepare_squad(str(source), tiny_tokenizer(), str(tmp_path / "a"),
                            sequence_length=12, stride=4)
    unlabeled = prepare_squad(str(source), tiny_tokenizer(), str(tmp_path / "b"),
                              sequence_length=12, stride=4, with_answers=False)
    assert labeled["labeled"] is True and unlabeled["labeled"] is False
    assert unlabeled["windows"] == labeled["windows"] > unlabeled["questions"] == 12
    assert labeled["windows_with_answer"] > 0 and unlabeled["windows_with_answer"] == 0
    (xa, ya), = load_token_data(tmp_path / "a", 1000, training=False)
    (xb, yb), = load_token_data(tmp_path / "b", 1000, training=False)
    np.testing.assert_array_equal(xa["token_ids"], xb["token_ids"])
    assert (np.asarray(yb) == squad.UNLABELED).all() and (np.asarray(ya) >= 0).all()


def test_two_folders_are_mixed_through_the_epoch_each_window_once(tmp_path, monkeypatch):
    source = tmp_path / "train.json"
    write_squad(source, 40, seed=2)
    prepare_squad(str(source), tiny_tokenizer(), str(tmp_path / "a"), sequence_length=16,
                  stride=8)
    prepare_squad(str(source), tiny_tokenizer(), str(tmp_path / "b"), sequence_length=16,
                  stride=8, with_answers=False)
    # training=True shuffles within a buffer, here far smaller than the data (as 10,000 is
    # against SQuAD's); the folders are drawn from at random, so the first fifth of the
    # epoch already holds both (read one after the other, it would not).
    monkeypatch.setattr(token_recipe, "SHUFFLE_BUFFER", 4)
    batches = list(load_token_data([tmp_path / "a", tmp_path / "b"], 1, training=True))
    labels = np.concatenate([np.asarray(y) for _, y in batches])
    from_b = labels[:, 0] == squad.UNLABELED
    assert len(labels) == 2 * len(list(load_token_data(tmp_path / "a", 1, training=False)))
    assert from_b.sum() == len(labels) // 2
    first = from_b[: len(labels) // 5]
    assert 0 < first.sum() < len(first)
    ids = sorted(tuple(np.asarray(x["token_ids"])[0]) for x, _ in batches)
    single = sorted(tuple(np.asarray(x["token_ids"])[0])
                    for x, _ in load_token_data(tmp_path / "a", 1, training=False))
    assert ids == sorted(single * 2)


def test_a_transfer_file_is_refused_for_other_tasks_and_when_missing(tmp_path):
    paths = make_token_tasks(tmp_path)
    recipe = write_token_recipe(tmp_path, paths, "conll2003", "ner")
    with pytest.raises(ConfigError, match="data.transfer_file.*question answering"):
        load_recipe(recipe, ["data.transfer_file=train.json"])
    recipe = write_token_recipe(tmp_path, paths, "squad", "qa")
    with pytest.raises(ConfigError, match="data.transfer_file.*missing.json.*not found"):
        load_recipe(recipe, ["data.transfer_file=missing.json"])
    with pytest.raises(ConfigError, match="transfer_subset.*no data.transfer_file"):
        load_recipe(recipe, ["data.transfer_subset=10"])


def test_a_bad_transfer_question_stops_the_recipe_naming_it_and_its_source(tmp_path):
    paths = make_token_tasks(tmp_path)
    extra = tmp_path / "extra.json"
    write_squad(extra, 3, seed=5)
    document = json.loads(extra.read_text())
    for article in document["data"]:  # ids of their own: no training question's
        for qa in article["paragraphs"][0]["qas"]:
            qa["id"] = "extra-" + qa["id"]
    document["data"][1]["paragraphs"][0]["qas"][1]["question"] = " film" * 30
    extra.write_text(json.dumps(document))
    recipe = write_token_recipe(tmp_path, paths, "squad", "qa", modes=(), length=16)
    config = load_recipe(recipe, [f"data.transfer_file={extra}"])
    with pytest.raises(BadRowError, match=r"transfer.json:data\[1\].paragraphs\[0\].qas\[1\]"
                       r".question: the question has .* transfer set, written from .*extra.json"):
        run_recipe(config, verbose=0)
    assert not (tmp_path / "qa" / "data" / "transfer" / "summary.json").exists()


def test_the_qa_recipe_distils_on_the_transfer_set_and_prepares_it_again_when_it_changes(
        tmp_path, monkeypatch):
    used = spy_on_training_data(monkeypatch)
    paths = make_token_tasks(tmp_path)
    recipe = write_token_recipe(tmp_path, paths, "squad", "qa", modes=(), length=16)
    report = run_recipe(load_recipe(recipe, ["data.transfer_file=train.json"]), verbose=0)
    data = report["data"]
    assert data["train_questions"] == 64 and data["transfer_questions"] == 96 - 64
    run = tmp_path / "qa"
    transfer = _questions(run / "data" / "transfer.json")
    trained = {qa["id"] for qa in _questions(run / "data" / "train_subset.json")}
    assert len(transfer) == 32 and not trained & {qa["id"] for qa in transfer}
    # The distillation stages read the training and the transfer windows together; the
    # teacher and the labels-only baseline the training windows alone.
    assert data["distill_windows"] == data["train_windows"] + data["transfer_windows"]
    train, transfer_dir = str(run / "data" / "train"), str(run / "data" / "transfer")
    assert used == [("teacher", (train,)), ("intermediate", (train, transfer_dir)),
                    ("prediction", (train, transfer_dir)), ("baseline", (train,))]
    for model in ("teacher", "student", "baseline"):
        assert 0.0 <= report[model]["exact_match"] <= report[model]["f1"] <= 1.0
    # Other subsets: both prepared folders follow (their files changed under the same name).
    again = run_recipe(load_recipe(recipe, ["data.transfer_file=train.json",
                                            "data.train_subset=60", "data.transfer_subset=10"]),
                       verbose=0)
    assert again["data"]["train_questions"] == 60 and again["data"]["transfer_questions"] == 10
    assert len(_questions(run / "data" / "transfer.json")) == 10
