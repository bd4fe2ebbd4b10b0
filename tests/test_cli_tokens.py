"""The CLI on the token task shapes: prepare --format conll|squad (bad rows stop or are
skipped and listed), finetune-teacher and distill on prepared token data, evaluate of .keras
and .tflite token models against scores computed here."""

import json

import keras
import pytest
from tiny_models import tiny_tokenizer
from token_fixtures import make_token_tasks

from tf_tinybert.cli import main
from tf_tinybert.data.token_records import load_token_records
from tf_tinybert.export.token_export import export_token_model
from tf_tinybert.token_models import BertSpanExtractor, BertTokenTagger, build_token_model

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TINY = {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16}


def _prepare(paths, tmp_path, split, fmt, *extra):
    source = {"conll": paths["conll"] / ("train.txt" if split == "train" else "valid.txt"),
              "squad": paths["squad"] / f"{split}.json"}[fmt]
    output = tmp_path / f"{fmt}_{split}"
    assert main(["prepare", "--format", fmt, "--input", str(source), "--tokenizer",
                 str(paths["tokenizer"]), "--output", str(output), "--max-sequence-length",
                 "16", *extra]) == 0
    return output


def _chunks(tags):
    """(type, start, end) entity chunks of one IOB2 sentence, as conlleval reads them."""
    found, kind, start = set(), None, 0
    for index, tag in enumerate([*tags, "O"]):
        if tag == "O" or tag.startswith("B-") or tag[2:] != kind:
            if kind is not None:
                found.add((kind, start, index))
            kind, start = (None, index) if tag == "O" else (tag[2:], index)
    return found


def _entity_f1(model_logits, labels):
    gold = predicted = correct = 0
    for row_logits, row_labels in zip(model_logits, labels):
        keep = row_labels != -100
        gold_tags = [TAGS[i] for i in row_labels[keep]]
        predicted_tags = [TAGS[i] for i in row_logits.argmax(-1)[keep]]
        g, p = _chunks(gold_tags), _chunks(predicted_tags)
        gold, predicted, correct = gold + len(g), predicted + len(p), correct + len(g & p)
    precision, recall = correct / max(predicted, 1), correct / max(gold, 1)
    return 0.0 if not correct else 2 * precision * recall / (precision + recall)


def test_prepare_conll_stops_on_a_bad_row_or_skips_and_lists_it(tmp_path, capsys):
    paths = make_token_tasks(tmp_path)
    bad = tmp_path / "bad.txt"
    lines = (paths["conll"] / "valid.txt").read_text().splitlines()
    lines[3] = "actors NN B-PER"  # three columns where the file has four
    bad.write_text("\n".join(lines) + "\n")
    args = ["prepare", "--format", "conll", "--input", str(bad), "--tokenizer",
            str(paths["tokenizer"]), "--tags", ",".join(TAGS), "--max-sequence-length", "16"]
    assert main([*args, "--output", str(tmp_path / "a")]) == 2
    assert f"{bad}:4" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "b"), "--skip-bad-rows"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["skipped_rows"] == 1 and f"{bad}:4" in summary["skipped_examples"][0]["where"]
    assert f"{bad}:4" in out and "skipped 1 malformed rows" in out
    sentences = sum(1 for block in bad.read_text().split("\n\n")
                    if block.strip() and not block.startswith("-DOCSTART-"))
    assert summary["sentences"] == sentences - 1
    # An unknown tag is refused by name.
    valid = paths["conll"] / "valid.txt"
    assert main(["prepare", "--format", "conll", "--input", str(valid), "--tokenizer",
                 str(paths["tokenizer"]), "--tags", "O,B-PER,I-PER", "--output",
                 str(tmp_path / "c")]) == 2
    assert "unknown tag 'B-LOC'" in capsys.readouterr().err


def test_prepare_squad_names_the_json_path_of_a_bad_answer(tmp_path, capsys):
    paths = make_token_tasks(tmp_path)
    document = json.loads((paths["squad"] / "dev.json").read_text())
    document["data"][2]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    args = ["prepare", "--format", "squad", "--input", str(bad), "--tokenizer",
            str(paths["tokenizer"]), "--max-sequence-length", "16", "--doc-stride", "4"]
    assert main([*args, "--output", str(tmp_path / "a")]) == 2
    where = "data[2].paragraphs[0].qas[1].answers[0]"
    assert where in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "b"), "--skip-bad-rows"]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["questions"] == 23 and summary["skipped_rows"] == 1
    assert summary["windows"] > summary["questions"]  # contexts longer than 16 pieces split
    assert where in capsys.readouterr().out


def test_evaluate_a_tagger_and_its_export_against_an_independent_f1(tmp_path, capsys):
    paths = make_token_tasks(tmp_path)
    dev = _prepare(paths, tmp_path, "dev", "conll", "--tags", ",".join(TAGS))
    keras.utils.set_random_seed(1)
    tagger = build_token_model(TINY, "token_classification", num_classes=len(TAGS),
                               vocabulary_size=len(tiny_tokenizer().get_vocabulary()),
                               max_sequence_length=16)
    tagger.save(tmp_path / "tagger.keras")
    export_token_model(tagger, tiny_tokenizer(), tmp_path / "export", label_names=TAGS,
                       quantization="fp32", sequence_length=16)
    features, labels = next(iter(load_token_records(
        [str(dev / "data.tfrecord")], "token_classification", 1000, 16)))
    logits = keras.ops.convert_to_numpy(tagger({k: features[k] for k in
                                                ("token_ids", "segment_ids", "padding_mask")}))
    expected = _entity_f1(logits, labels.numpy())
    assert expected > 0  # a random tagger still finds some entities: the check can fail
    capsys.readouterr()
    scores = {}
    for model in ("tagger.keras", "export/model.tflite"):
        assert main(["evaluate", "--model", str(tmp_path / model), "--data", str(dev)]) == 0
        scores[model] = json.loads(capsys.readouterr().out)
        assert scores[model]["f1"] == pytest.approx(expected)
        assert set(scores[model]["per_type"]) <= {"PER", "LOC"}
    assert scores["tagger.keras"] == scores["export/model.tflite"]
    # A tagger is not scored on QA data, by name.
    squad_dev = _prepare(paths, tmp_path, "dev", "squad")
    assert main(["evaluate", "--model", str(tmp_path / "tagger.keras"), "--data",
                 str(squad_dev)]) == 2
    assert "token_classification model" in capsys.readouterr().err


def test_finetune_distill_and_evaluate_on_squad_folders(tmp_path, capsys):
    paths = make_token_tasks(tmp_path)
    train = _prepare(paths, tmp_path, "train", "squad")
    dev = _prepare(paths, tmp_path, "dev", "squad")
    common = ["--train", str(train), "--dev", str(dev), "--epochs", "1", "--batch-size", "32",
              "--learning-rate", "5e-3", "--checkpoint-every", "10"]
    assert main(["finetune-teacher", "--teacher", str(paths["teacher"]), *common,
                 "--output", str(tmp_path / "teacher.keras")]) == 0
    teacher = keras.saving.load_model(tmp_path / "teacher.keras", compile=False)
    assert isinstance(teacher, BertSpanExtractor)
    student_yaml = tmp_path / "tiny_student.yaml"
    student_yaml.write_text("name: tiny\n" + "".join(f"{k}: {v}\n" for k, v in TINY.items()))
    assert main(["distill", "--stage", "prediction", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", str(student_yaml), *common, "--hard-label-weight", "0.5",
                 "--output", str(tmp_path / "student.keras")]) == 0
    student = keras.saving.load_model(tmp_path / "student.keras", compile=False)
    assert isinstance(student, BertSpanExtractor) and student.backbone.num_layers == 1
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "student.keras"), "--data", str(dev)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["count"] == 24 and 0.0 <= scores["exact_match"] <= scores["f1"] <= 1.0
    # The best student's dev scores, kept beside it by the stage, are the ones evaluate prints.
    best = json.loads((tmp_path / "student.keras.logs" / "best_prediction.json").read_text())
    assert best["f1"] == pytest.approx(scores["f1"])
    # A tagger teacher is no teacher for a QA student.
    assert not isinstance(teacher, BertTokenTagger)
    assert main(["distill", "--stage", "general", "--teacher", str(tmp_path / "teacher.keras"),
                 "--student", str(student_yaml), *common, "--output",
                 str(tmp_path / "x.keras")]) == 2
    assert "token-task data" in capsys.readouterr().err
