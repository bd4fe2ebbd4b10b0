"""GLUE's real file layouts: every task config reads its files through prepare, the CLI and the
recipe's data stage (no header, byte-order marks, pairs, scores, stray quotes), and bad files stop
before training naming file, line and what was expected."""

import collections
import csv
import os
import pathlib
import random

import pytest
import tensorflow as tf
from conftest import SHARED_DATA
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert import cli
from tf_tinybert.config import load_recipe, load_task
from tf_tinybert.data import BadRowError, prepare, read_manifest
from tf_tinybert.data.features import decode_row
from tf_tinybert.recipe import Run, _subset_file, check_same_labels, prepare_data, run_recipe

BOM = "\ufeff"

# Each task's files in the GLUE download layout: (header line or None, [(fields, text, pair,
# label name)]). Texts carry the quirks: stray quote characters, a quoted-looking field.
MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
               "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")


def _mnli(index, premise, hypothesis, label):
    return [str(index), "31193", f"{index}n", "government", "( ( x ) )", "( y )", "(ROOT x)",
            "(ROOT y)", premise, hypothesis, label, label]


LAYOUTS = {
    "sst2": ("sentence\tlabel", [
        (["a witty , \" charming film ", "1"], 'a witty , " charming film ', None, "positive"),
        (["boring", "0"], "boring", None, "negative"),
    ]),
    "cola": (None, [
        (["gj04", "1", "", "The film is good."], "The film is good.", None, "acceptable"),
        (["clc95", "0", "*", "Film \"the good is."], 'Film "the good is.', None, "unacceptable"),
    ]),
    "mrpc": (BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", [
        (["1", "702876", "702977", "he called \" the witness \"", "\" the witness \" he said"],
         'he called " the witness "', '" the witness " he said', "equivalent"),
        (["0", "2108705", "2108831", "a plot", "the story"], "a plot", "the story",
         "not_equivalent"),
    ]),
    "stsb": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore", [
        (["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none",
          "A plane is taking off.", "An air plane is taking off.", "5.000"],
         "A plane is taking off.", "An air plane is taking off.", 5.0),
        (["1", "main-forums", "deft", "2014", "0004", "none", "none", "\"Quoted\" start",
          "end", "0.250"], '"Quoted" start', "end", 0.25),
    ]),
    "rte": ("index\tsentence1\tsentence2\tlabel", [
        (["0", "the film was good", "it was good", "entailment"], "the film was good",
         "it was good", "entailment"),
        (["1", "a plot", "no plot", "not_entailment"], "a plot", "no plot", "not_entailment"),
    ]),
    "qnli": ("index\tquestion\tsentence\tlabel", [
        (["0", "is it good?", "it is good.", "entailment"], "is it good?", "it is good.",
         "entailment"),
        (["1", "who?", "the film.", "not_entailment"], "who?", "the film.", "not_entailment"),
    ]),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", [
        (["133273", "213221", "213222", "how good is it?", "is it good?", "1"],
         "how good is it?", "is it good?", "duplicate"),
        (["402555", "536040", "536041", "why \"bad\"?", "what film?", "0"], 'why "bad"?',
         "what film?", "not_duplicate"),
    ]),
    "mnli": (MNLI_HEADER, [
        (_mnli(0, "the film is good", "it is good", "entailment"), "the film is good",
         "it is good", "entailment"),
        (_mnli(1, "a plot", "a story", "neutral"), "a plot", "a story", "neutral"),
        (_mnli(2, "good", "bad", "contradiction"), "good", "bad", "contradiction"),
    ]),
}


def _write_layout(path: pathlib.Path, task: str) -> list:
    header, rows = LAYOUTS[task]
    lines = ([header] if header is not None else []) + ["\t".join(fields) for fields, *_ in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def _stored(directory) -> list:
    """(text, pair, label) of every record, read with the TFRecord reader itself."""
    manifest = read_manifest(directory)
    out = []
    for shard in manifest.shards:
        for raw in tf.data.TFRecordDataset(os.path.join(directory, shard.file)).as_numpy_iterator():
            out.append(decode_row(raw))
    return out


def _prepare_as_task(task, source, output):
    config = load_task(task)
    files = config.files
    labels = list(files.label_values or config.labels) or None
    return prepare(source, tiny_tokenizer(), output, format=files.format,
                   text_column=files.text_column, text_pair_column=files.text_pair_column,
                   label_column=files.label_column, header=files.header,
                   column_names=files.column_names, labels=labels, task=config.task_type,
                   max_sequence_length=24, verbose=0)


@pytest.mark.parametrize("task", sorted(LAYOUTS))
def test_each_task_config_reads_its_glue_layout(tmp_path, task):
    rows = _write_layout(tmp_path / "train.tsv", task)
    config = load_task(task)
    manifest = _prepare_as_task(task, tmp_path / "train.tsv", tmp_path / "out")
    assert manifest.num_examples == len(rows) and manifest.has_text_pair == config.is_pair
    expected = []
    for _fields, text, pair, label in rows:
        label_id = label if config.task_type == "regression" else config.labels.index(label)
        expected.append((text, pair, label_id))
    stored = _stored(tmp_path / "out")
    assert [(text, pair) for text, pair, _ in stored] == [(t, p) for t, p, _ in expected]
    assert [label for *_, label in stored] == pytest.approx([label for *_, label in expected])


def test_mnli_config_prepares_the_mismatched_dev_file_beside_dev(tmp_path):
    data = tmp_path / "glue"
    data.mkdir()
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _write_layout(data / name, "mnli")
    config = _recipe(tmp_path, "mnli", data)
    run = Run(config, verbose=0)
    train, dev = prepare_data(run, tiny_tokenizer())
    extra = run.report["data"]["extra_dev"]["dev_mismatched"]
    assert pathlib.Path(extra["dir"]) == run.path("data", "dev_mismatched") and extra["examples"] == 3
    assert read_manifest(extra["dir"]).label_names == read_manifest(train).label_names == (
        "entailment", "neutral", "contradiction")
    assert read_manifest(dev).source["path"].endswith("dev_matched.tsv")


# ----------------------------------------------------------------------------- through the CLI


def _tokenizer_dir(tmp_path) -> pathlib.Path:
    folder = tmp_path / "tokenizer"
    folder.mkdir(exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return folder


def _cli_prepare(tmp_path, source, output, *flags):
    return cli.main(["prepare", "--input", str(source), "--tokenizer", str(_tokenizer_dir(tmp_path)),
                     "--output", str(output), "--max-sequence-length", "24", *flags])


def test_cli_reads_a_headerless_file_with_named_columns(tmp_path, capsys):
    rows = _write_layout(tmp_path / "cola.tsv", "cola")
    code = _cli_prepare(tmp_path, tmp_path / "cola.tsv", tmp_path / "out", "--no-header",
                        "--column-names", "source,label,original_label,sentence",
                        "--text-column", "sentence", "--labels", "0,1")
    assert code == 0, capsys.readouterr().err
    assert _stored(tmp_path / "out") == [(text, None, int(fields[1])) for fields, text, *_ in rows]
    assert read_manifest(tmp_path / "out").source["column_names"][3] == "sentence"


def test_cli_without_no_header_names_the_fix(tmp_path, capsys):
    _write_layout(tmp_path / "cola.tsv", "cola")
    code = _cli_prepare(tmp_path, tmp_path / "cola.tsv", tmp_path / "out", "--labels", "0,1")
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'cola.tsv'}:1: header has no text column 'sentence'" in err
    assert "--no-header --column-names" in err
    assert not (tmp_path / "out").exists()


def test_cli_no_header_needs_column_names(tmp_path, capsys):
    _write_layout(tmp_path / "cola.tsv", "cola")
    assert _cli_prepare(tmp_path, tmp_path / "cola.tsv", tmp_path / "out", "--no-header") == 2
    assert "needs column_names" in capsys.readouterr().err


def test_cli_reads_pairs_behind_a_byte_order_mark_and_keeps_quotes(tmp_path, capsys):
    rows = _write_layout(tmp_path / "mrpc.tsv", "mrpc")
    assert (tmp_path / "mrpc.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality\t")
    code = _cli_prepare(tmp_path, tmp_path / "mrpc.tsv", tmp_path / "out", "--text-column",
                        "#1 String", "--text-pair-column", "#2 String", "--label-column",
                        "Quality", "--labels", "0,1")
    assert code == 0, capsys.readouterr().err
    assert _stored(tmp_path / "out") == [(text, pair, int(fields[0]))
                                         for fields, text, pair, _ in rows]


def test_cli_reads_regression_scores(tmp_path, capsys):
    rows = _write_layout(tmp_path / "stsb.tsv", "stsb")
    code = _cli_prepare(tmp_path, tmp_path / "stsb.tsv", tmp_path / "out", "--text-column",
                        "sentence1", "--text-pair-column", "sentence2", "--label-column", "score",
                        "--task", "regression")
    assert code == 0, capsys.readouterr().err
    stored = _stored(tmp_path / "out")
    assert [label for *_, label in stored] == pytest.approx([float(f[-1]) for f, *_ in rows])
    assert read_manifest(tmp_path / "out").task == "regression"


def test_cli_column_names_replace_a_header(tmp_path, capsys):
    _write_layout(tmp_path / "rte.tsv", "rte")
    code = _cli_prepare(tmp_path, tmp_path / "rte.tsv", tmp_path / "out", "--column-names",
                        "i,a,b,y", "--text-column", "a", "--text-pair-column", "b",
                        "--label-column", "y")
    assert code == 0, capsys.readouterr().err
    assert [label for *_, label in _stored(tmp_path / "out")] == [0, 1]  # sorted names
    code = _cli_prepare(tmp_path, tmp_path / "rte.tsv", tmp_path / "out2", "--column-names", "a,b")
    assert code == 2
    assert "header has 4 columns but column_names names 2" in capsys.readouterr().err


@pytest.mark.parametrize("task, flags, fault, line, expected", [
    # A pair task given a single-sentence file.
    ("sst2", ["--text-pair-column", "sentence2"], None, 1, "has no text pair column 'sentence2'"),
    # A regression score that is not a number.
    ("stsb", ["--text-column", "sentence1", "--text-pair-column", "sentence2",
              "--label-column", "score", "--task", "regression"], ("0.250", "about 3"), 3,
     "label 'about 3' in column 'score' is not a number; expected a number"),
    # A label outside the task's label values.
    ("sst2", ["--labels", "0,1"], ("\t0\n", "\t2\n"), 3,
     "unknown label '2' in column 'label'; expected one of ['0', '1']"),
])
def test_cli_bad_files_stop_naming_file_line_and_expected_values(tmp_path, capsys, task, flags,
                                                                 fault, line, expected):
    source = tmp_path / f"{task}.tsv"
    _write_layout(source, task)
    if fault:
        text = source.read_text(encoding="utf-8")
        assert fault[0] in text
        source.write_text(text.replace(fault[0], fault[1]), encoding="utf-8")
    code = _cli_prepare(tmp_path, source, tmp_path / "out", *flags)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{source}:{line}: " in err and expected in err
    assert not (tmp_path / "out").exists()  # nothing half-written


# ----------------------------------------------------------------------------- the recipe


def _recipe(tmp_path, task, data_dir, *overrides):
    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes(b"")  # never loaded: these tests stop at or before the data stage
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""
name: glue
task: {task}
student: bert_4l_128h
output_dir: {tmp_path / 'run'}
data: {{data_dir: {data_dir}, use_tfds: false, max_sequence_length: 24,
        tokenizer: {_tokenizer_dir(tmp_path)}}}
teacher: {{source: {teacher}}}
""", encoding="utf-8")
    return load_recipe(recipe, list(overrides))


def _copy_rows(task, path, count, seed):
    """`count` rows in the task's layout (its two example rows, repeated)."""
    header, rows = LAYOUTS[task]
    rng = random.Random(seed)
    lines = [header] if header is not None else []
    lines += ["\t".join(rng.choice(rows)[0]) for _ in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


@pytest.mark.parametrize("task, subset", [("cola", None), ("cola", 5), ("mrpc", None), ("mrpc", 4)])
def test_recipe_data_stage_reads_headerless_and_bom_files_with_and_without_subset(
        tmp_path, task, subset):
    data = tmp_path / "glue"
    data.mkdir()
    train_lines = _copy_rows(task, data / "train.tsv", 12, seed=0)
    _copy_rows(task, data / "dev.tsv", 6, seed=1)
    overrides = [f"data.train_subset={subset}"] if subset else []
    run = Run(_recipe(tmp_path, task, data, *overrides), verbose=0)
    train, dev = prepare_data(run, tiny_tokenizer())
    assert run.report["data"]["train_examples"] == (subset or 12)
    assert run.report["data"]["dev_examples"] == 6
    label_at = 1 if task == "cola" else 0
    body = train_lines[1:] if task == "mrpc" else train_lines
    if subset:
        written = (run.path("data", "train_subset.tsv")).read_text(encoding="utf-8").split("\n")
        # The subset keeps the layout: header-less stays header-less, MRPC keeps BOM and header.
        if task == "mrpc":
            assert written[0] == train_lines[0] and written[0].startswith(BOM)
            chosen = written[1:-1]
        else:
            chosen = written[:-1]
        assert len(chosen) == subset and all(line in body for line in chosen)
        body = chosen
    expected = collections.Counter(int(line.split("\t")[label_at]) for line in body)
    assert collections.Counter(label for *_, label in _stored(train)) == expected


def test_subset_file_keeps_layout_and_picks_rows_in_order(tmp_path):
    rows = [f"r{index}\t{index % 2}" for index in range(20)]
    source = tmp_path / "a.tsv"
    source.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode())  # no newline at the end
    _subset_file(source, tmp_path / "b.tsv", 7, seed=3, header=False)
    written = (tmp_path / "b.tsv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbf") and written.endswith(b"\n")
    picked = written[3:].decode().split("\n")[:-1]
    order = list(range(20))
    random.Random(3).shuffle(order)
    assert picked == [rows[i] for i in sorted(order[:7])]
    source.write_bytes(("h\tlabel\n" + "\n".join(rows) + "\n").encode())
    _subset_file(source, tmp_path / "c.tsv", 3, seed=3, header=True)
    lines = (tmp_path / "c.tsv").read_text().split("\n")
    assert lines[0] == "h\tlabel" and lines[1:-1] == [rows[i] for i in sorted(order[:3])]


def test_recipe_stops_before_training_on_a_dev_label_outside_the_task(tmp_path, capsys):
    data = tmp_path / "glue"
    data.mkdir()
    _copy_rows("sst2", data / "train.tsv", 8, seed=0)
    lines = _copy_rows("sst2", data / "dev.tsv", 4, seed=1)
    lines[3] = "a fine film\tpositive"
    (data / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = _recipe(tmp_path, "sst2", data)
    code = cli.main(["run", str(tmp_path / "recipe.yaml"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data / 'dev.tsv'}:4: unknown label 'positive'" in err and "['0', '1']" in err
    run_dir = pathlib.Path(config.run_dir)
    assert not (run_dir / "data" / "dev").exists()
    assert not (run_dir / "teacher.keras").exists()


def test_recipe_checks_every_file_before_tokenising_any(tmp_path):
    data = tmp_path / "glue"
    data.mkdir()
    _copy_rows("mrpc", data / "train.tsv", 8, seed=0)
    _copy_rows("sst2", data / "dev.tsv", 4, seed=1)  # a single-sentence file for a pair task
    with pytest.raises(ValueError, match=r"dev\.tsv:1: header has no text column '#1 String'"):
        run_recipe(_recipe(tmp_path, "mrpc", data), verbose=0)
    assert not (tmp_path / "run" / "data" / "train").exists()


def test_recipe_reprepares_a_changed_file(tmp_path):
    data = tmp_path / "glue"
    data.mkdir()
    _copy_rows("sst2", data / "train.tsv", 8, seed=0)
    _copy_rows("sst2", data / "dev.tsv", 4, seed=1)
    config = _recipe(tmp_path, "sst2", data)
    train, _ = prepare_data(Run(config, verbose=0), tiny_tokenizer())
    assert read_manifest(train).num_examples == 8
    _copy_rows("sst2", data / "train.tsv", 10, seed=2)
    run = Run(config, verbose=0)
    train, _ = prepare_data(run, tiny_tokenizer())
    assert read_manifest(train).num_examples == run.report["data"]["train_examples"] == 10


def test_dev_labels_unlike_train_labels_are_refused(tmp_path):
    source = tmp_path / "a.tsv"
    source.write_text("sentence\tlabel\ngood\tpos\nbad\tneg\n", encoding="utf-8")
    prepare(source, tiny_tokenizer(), tmp_path / "train", labels="neg,pos", verbose=0)
    prepare(source, tiny_tokenizer(), tmp_path / "dev", labels="pos,neg", verbose=0)
    with pytest.raises(ValueError, match=r"dev/manifest\.json .* has label names \['pos', 'neg'\], "
                                         r"but .*train/manifest\.json .* has \['neg', 'pos'\]"):
        check_same_labels(tmp_path / "train", tmp_path / "dev")
    check_same_labels(tmp_path / "train", tmp_path / "train")


def test_a_bad_row_in_a_headerless_file_names_its_physical_line(tmp_path):
    source = tmp_path / "cola.tsv"
    source.write_text("gj04\t1\t\tgood\ngj04\t0\t*\n", encoding="utf-8")
    with pytest.raises(BadRowError, match=r"cola\.tsv:2: 3 columns, expected 4 as in column_names"):
        _prepare_as_task("cola", source, tmp_path / "out")


# ----------------------------------------------------------------------------- the real files

REAL = {  # task: (folder, train rows, dev rows), as STACK.md counts them
    "cola": ("cola", 8551, 1043),
    "mrpc": ("mrpc", 3667, 408),
    "stsb": ("stsb", 5749, 1500),
    "sst2": ("sst2", 67349, 872),
}


def _independent_rows(path, header):
    """Rows and their label column, read by Python's csv module with quoting off."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:] if header else rows


@pytest.mark.parametrize("task", sorted(REAL))
def test_real_glue_files_keep_every_row(tmp_path, task):
    folder, train_rows, dev_rows = REAL[task]
    directory = SHARED_DATA / folder
    if not (directory / "train.tsv").exists():
        pytest.skip(f"GLUE {task} not found at {directory} (../shared/data is absent)")
    config = load_task(task)
    splits = [("dev", dev_rows)] if task == "sst2" else [("train", train_rows), ("dev", dev_rows)]
    # SST-2's 67,349 training rows go through prepare in test_data_sst2.py.
    for split, count in splits:
        source = directory / getattr(config.files, split)
        rows = _independent_rows(source, config.files.header)
        assert len(rows) == count
        manifest = _prepare_as_task(task, source, tmp_path / split)
        assert manifest.num_examples == count and manifest.skipped_rows == 0
        label_at = list(config.files.column_names or _header(source)).index(
            config.files.label_column)
        stored = [label for *_, label in _stored(tmp_path / split)]
        if config.task_type == "regression":
            assert stored == pytest.approx([float(row[label_at]) for row in rows], abs=1e-6)
            assert 0.0 <= min(stored) and max(stored) <= 5.0
        else:
            values = list(config.files.label_values)
            assert collections.Counter(stored) == collections.Counter(
                values.index(row[label_at]) for row in rows)


def _header(path):
    with open(path, encoding="utf-8-sig") as file:
        return file.readline().rstrip("\n").split("\t")
