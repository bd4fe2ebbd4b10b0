"""data.readers: malformed rows stop with `file:line: reason`; random input gives only documented errors."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_tinybert.data.readers import BadRowError, Row, infer_format, open_source


def _items(path, **kwargs):
    return list(open_source(path, **kwargs).rows())


def test_tsv_rows_carry_text_label_and_line(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes(b"sentence\tlabel\na witty film \t1\nboring\t0\n")
    rows = _items(path)
    assert rows == [Row(f"{path}:2", "a witty film ", None, "1"), Row(f"{path}:3", "boring", None, "0")]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"a\t1\tx\n", "3 columns, expected 2"),
        (b"a\t\n", "missing label"),
        (b"\t1\n", "empty text"),
        (b"   \t1\n", "empty text"),
        (b"caf\xe9\t1\n", "invalid UTF-8"),
        (b"\n", "1 columns, expected 2"),
    ],
)
def test_tsv_bad_rows_name_file_line_and_reason(tmp_path, body, reason):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t0\n" + body)
    good, bad = _items(path)
    assert isinstance(good, Row)
    assert isinstance(bad, BadRowError)
    assert str(bad).startswith(f"{path}:3: ") and reason in str(bad)


def test_header_without_requested_column_is_an_error_naming_line_one(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("text\tlabel\nx\t1\n")
    with pytest.raises(ValueError, match=r"a\.tsv:1: header has no text column 'sentence'"):
        _items(path)


def test_csv_pairs_with_quoted_newline_count_physical_lines(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'q1,q2,label\n"first, with comma","two\nlines",1\n"x",,0\nonly,two\n')
    first, second, third = _items(path, text_column="q1", text_pair_column="q2")
    assert first == Row(f"{path}:2", "first, with comma", "two\nlines", "1")
    assert isinstance(second, BadRowError) and second.where == f"{path}:4"
    assert "empty text in column 'q2'" in str(second)
    assert third.where == f"{path}:5" and "2 columns, expected 3" in str(third)


def test_csv_invalid_utf8_is_reported_by_row(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"sentence,label\n\xff\xfe,1\nfine,0\n")
    bad, good = _items(path)
    assert bad.where == f"{path}:2" and "invalid UTF-8" in bad.reason
    assert good.text == "fine"


def test_jsonl_rows_and_their_errors(tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [
        json.dumps({"sentence": "good", "label": 1}),
        "{not json",
        json.dumps(["a", 1]),
        json.dumps({"text": "x"}),
        json.dumps({"sentence": "x", "label": None}),
        json.dumps({"sentence": 5, "label": 0}),
        '{"sentence": "\\ud800", "label": 0}',
        json.dumps({"sentence": "nan", "label": float("nan")}),
    ]
    path.write_text("\n".join(lines) + "\n")
    items = _items(path)
    assert items[0] == Row(f"{path}:1", "good", None, 1)
    reasons = [item.reason for item in items[1:]]
    assert [item.where for item in items[1:]] == [f"{path}:{n}" for n in range(2, 9)]
    for reason, expected in zip(reasons, [
        "invalid JSON", "expected a JSON object", "no key 'sentence'", "missing label",
        "is a int, expected a string", "lone surrogate", "not a finite number",
    ]):
        assert expected in reason


def test_plain_text_skips_blank_lines_and_needs_unlabeled(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"first passage\n\n  \nsecond\n\xc3\n")
    first, second, bad = _items(path, unlabeled=True)
    assert (first.where, first.text, second.where) == (f"{path}:1", "first passage", f"{path}:4")
    assert bad.where == f"{path}:5" and "invalid UTF-8" in bad.reason
    with pytest.raises(ValueError, match="unlabeled=True"):
        open_source(path)


def test_format_inference_and_unknown_format(tmp_path):
    assert infer_format("x/train.TSV") == "tsv"
    assert infer_format("glue/sst2") == "tfds"
    with pytest.raises(ValueError, match="cannot tell the input format"):
        infer_format(str(tmp_path / "data.bin"))
    with pytest.raises(ValueError, match="input file not found"):
        open_source(tmp_path / "missing.tsv")


_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_only_documented(path, **kwargs):
    try:
        items = _items(path, **kwargs)
    except BadRowError:
        return
    except ValueError as error:  # whole-source problems: an empty file or a bad header
        assert str(path) in str(error)
        return
    for item in items:
        assert isinstance(item, (Row, BadRowError))
        assert item.where.startswith(f"{path}:")
        if isinstance(item, Row):
            assert item.text.strip()
            item.text.encode("utf-8")


@_SETTINGS
@given(data=st.binary(max_size=300))
@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl", ".txt"])
def test_random_bytes_give_rows_or_documented_errors(tmp_path, suffix, data):
    path = tmp_path / f"random{suffix}"
    header = b"" if suffix in (".jsonl", ".txt") else (b"sentence\tlabel\n" if suffix == ".tsv" else b"sentence,label\n")
    path.write_bytes(header + data)
    _check_only_documented(path, unlabeled=suffix == ".txt")


_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@_SETTINGS
@given(rows=st.lists(st.lists(_cell, min_size=0, max_size=4), max_size=8))
def test_random_csv_rows_give_rows_or_documented_errors(tmp_path, rows):
    import csv

    path = tmp_path / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["sentence", "pair", "label"])
        writer.writerows(rows)
    _check_only_documented(path, text_pair_column="pair")


@_SETTINGS
@given(records=st.lists(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["sentence", "label", "other"]), children, max_size=3),
    max_leaves=6), max_size=6))
def test_random_json_records_give_rows_or_documented_errors(tmp_path, records):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n", encoding="utf-8")
    _check_only_documented(path)


def test_headerless_tsv_reads_every_line_with_given_column_names(tmp_path):
    path = tmp_path / "cola.tsv"
    path.write_bytes(b'gj04\t1\t\tsay "hi\ngj04\t0\t*\tbad\n')
    rows = _items(path, header=False, column_names=["source", "label", "original", "sentence"])
    assert rows == [Row(f"{path}:1", 'say "hi', None, "1"), Row(f"{path}:2", "bad", None, "0")]
    with pytest.raises(ValueError, match="needs column_names"):
        open_source(path, header=False)
    with pytest.raises(ValueError, match=r"column_names has no text column 'text'"):
        open_source(path, header=False, column_names="a,label,c,d", text_column="text")


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path, suffix):
    path = tmp_path / f"a{suffix}"
    sep = b"\t" if suffix == ".tsv" else b","
    path.write_bytes(b"\xef\xbb\xbflabel" + sep + b"sentence\n1" + sep + b"good\n")
    assert _items(path) == [Row(f"{path}:2", "good", None, "1")]


def test_bom_on_a_headerless_first_row_and_jsonl_line(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes(b"\xef\xbb\xbf1\tgood\n")
    assert _items(path, header=False, column_names=("label", "sentence"))[0].label == "1"
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"sentence": "good", "label": 1}\n')
    assert _items(path)[0] == Row(f"{path}:1", "good", None, 1)


def test_column_names_apply_to_tables_only(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"sentence": "x", "label": 1}\n')
    with pytest.raises(ValueError, match="apply to"):
        open_source(path, column_names=["sentence", "label"])


def test_jsonl_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"sentence": "good", "label": 1}) + "\n\n   \n"
                    + json.dumps({"sentence": "bad", "label": 0}) + "\n\n")
    items = _items(path)
    assert items == [Row(f"{path}:1", "good", None, 1), Row(f"{path}:4", "bad", None, 0)]
