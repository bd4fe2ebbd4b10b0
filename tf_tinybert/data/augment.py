"""augment: TinyBERT data augmentation (Jiao et al., 2020, Algorithm 1) of a prepared directory."""

from __future__ import annotations

import os
import re
import time

import keras
import keras_hub
import numpy as np

from tf_tinybert.data import features
from tf_tinybert.data.candidates import EmbeddingNeighbours, MaskedLMCandidates
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.manifest import (
    Manifest,
    read_manifest,
    read_tokenizer,
    write_manifest,
    write_vocabulary,
)
from tf_tinybert.data.shards import ShardWriter, claim_output_dir, read_records, shard_paths
from tf_tinybert.fingerprints import weights_fingerprint
from tf_tinybert.tokenizers import load_tokenizer, vocabulary_hash

__all__ = ["augment", "build_augmenter"]

# Words as BERT's basic tokenizer sees them: runs of word characters, or one punctuation mark.
_WORD = re.compile(r"\w+|[^\w\s]")


def _resolve_teacher(teacher):
    """(backbone, masked_lm or None, name) of a keras-hub BERT model."""
    if isinstance(teacher, (str, os.PathLike)):
        raise ValueError(
            f"Expected `teacher` to be a loaded keras-hub BERT model. Received the source "
            f"{os.fspath(teacher)!r}: load it first with "
            "`tf_tinybert.teachers.load_augmentation_teacher(source)` (a .keras file keeps its "
            "masked-LM head; other sources, aliases included, give their backbone)."
        )
    masked_lm = teacher if isinstance(teacher, keras_hub.models.BertMaskedLM) else None
    backbone = getattr(teacher, "backbone", teacher)
    if not hasattr(backbone, "token_embedding"):
        raise ValueError(
            "Expected `teacher` to be a keras-hub BERT model (BertMaskedLM, BertTextClassifier or "
            f"BertBackbone). Received: {type(teacher).__name__}"
        )
    return backbone, masked_lm, getattr(teacher, "name", "teacher")


class _Augmenter:
    """Candidates per word and sampled copies for one data set (Algorithm 1)."""

    def __init__(self, encoder, neighbours, masked_lm, copies, p, rng, teacher_name="teacher",
                 teacher_weights=None):
        self.encoder = encoder
        self.teacher_name = teacher_name
        self.teacher_weights = teacher_weights
        self.neighbours = neighbours
        self.masked_lm = masked_lm
        self.copies = copies
        self.p = p
        self.rng = rng
        self.words = 0
        self._pieces: dict[str, list] = {}
        self._similar: dict[str, list] = {}
        self.unk_id = int(encoder.tokenizer.token_to_id(encoder.tokenizer.oov_token))

    def describe(self) -> dict:
        """The teacher's name and weights fingerprint and the candidate method, for
        manifests and reports."""
        method = "masked_lm+embedding_neighbours" if self.masked_lm else "embedding_neighbours"
        return {"teacher": self.teacher_name, "teacher_weights": self.teacher_weights,
                "method": method}

    def _learn(self, words: set) -> None:
        new = sorted(word for word in words if word not in self._pieces)
        if not new:
            return
        for word, pieces in zip(new, self.encoder.pieces(new)):
            self._pieces[word] = [piece for piece in pieces if piece != self.unk_id]
        for word, similar in zip(new, self.neighbours([self._pieces[word] for word in new])):
            self._similar[word] = similar

    def _mlm_candidates(self, sentences: list) -> dict:
        """{(sentence index, word index): candidates} for single-piece words (the MLM route)."""
        requests, keys = [], []
        limit = self.encoder.sequence_length - 1
        for sentence, words in enumerate(sentences):
            ids, starts = [self.encoder.tokenizer.cls_token_id], []
            for word in words:
                starts.append(len(ids))
                ids += self._pieces[word]
            ids = ids[:limit] + [self.encoder.tokenizer.sep_token_id]
            for index, word in enumerate(words):
                if word.isalpha() and len(self._pieces[word]) == 1 and starts[index] < limit:
                    requests.append((ids, starts[index]))
                    keys.append((sentence, index))
        if not requests:
            return {}
        found = self.masked_lm([ids for ids, _ in requests], [position for _, position in requests])
        return dict(zip(keys, found))

    def __call__(self, texts: list) -> list:
        """For each text: up to `copies` distinct augmented texts (never the text itself)."""
        sentences = [_WORD.findall(text) for text in texts]
        self._learn({word for words in sentences for word in words})
        from_mlm = self._mlm_candidates(sentences) if self.masked_lm is not None else {}
        results = []
        for sentence, words in enumerate(sentences):
            self.words += len(words)
            choices = [
                (from_mlm.get((sentence, index)) or self._similar[word]) if word.isalpha() else []
                for index, word in enumerate(words)
            ]
            replace = self.rng.random((self.copies, len(words))) < self.p
            picks = self.rng.integers(0, 1 << 30, size=(self.copies, len(words)))
            original = " ".join(words)
            seen, copies = {original}, []
            for copy in range(self.copies):
                new = [
                    choices[index][picks[copy, index] % len(choices[index])]
                    if replace[copy, index] and choices[index] else word
                    for index, word in enumerate(words)
                ]
                text = " ".join(new)
                if text not in seen:
                    seen.add(text)
                    copies.append(text)
            results.append(copies)
        return results


def _check_settings(teacher, copies, p, candidates):
    """`_resolve_teacher(teacher)`, after checking the settings."""
    if int(copies) < 0 or not 0.0 <= float(p) <= 1.0 or int(candidates) < 1:
        raise ValueError(
            "Expected copies >= 0, 0 <= p <= 1 and candidates >= 1. "
            f"Received: copies={copies}, p={p}, candidates={candidates}"
        )
    return _resolve_teacher(teacher)


def build_augmenter(teacher, tokenizer, sequence_length: int, copies: int = 20,
                    p: float = 0.4, candidates: int = 15, seed: int = 0,
                    where: str = "the data") -> _Augmenter:
    """The word-replacement step of `augment`, for texts that are not in a prepared folder.

    Calling the result on a list of texts returns, for each, up to `copies` distinct
    augmented texts (never the text itself); `describe()` names the teacher and the method.
    `tf_tinybert.data.augment_squad` rewrites SQuAD questions with it.

    Args:
        teacher, copies, p, candidates, seed: as in `augment`.
        tokenizer: a keras-hub WordPiece tokenizer with the teacher's vocabulary.
        sequence_length: the longest text, in word pieces, the masked LM sees.
        where: what the texts come from, for error messages.

    Example:
    ```python
    augmenter = build_augmenter(teacher, tokenizer, 64, copies=4, seed=0)
    augmenter(["Which river flows through Paris?"])  # [[up to 4 rewrites]]
    ```
    """
    backbone, masked_lm, teacher_name = _check_settings(teacher, copies, p, candidates)
    if backbone.vocabulary_size != tokenizer.vocabulary_size():
        raise ValueError(
            f"{where}: the teacher has a {backbone.vocabulary_size}-token vocabulary, the data "
            f"was prepared with {tokenizer.vocabulary_size()} tokens; use the teacher's tokenizer."
        )
    encoder = Encoder(tokenizer, sequence_length)
    embeddings = keras.ops.convert_to_numpy(backbone.token_embedding.embeddings)
    neighbours = EmbeddingNeighbours(embeddings, tokenizer.get_vocabulary(), int(candidates))
    mlm = MaskedLMCandidates(masked_lm, tokenizer, int(candidates)) if masked_lm is not None else None
    return _Augmenter(encoder, neighbours, mlm, int(copies), float(p),
                      np.random.default_rng(seed), teacher_name, weights_fingerprint(teacher))


def augment(
    input: str | os.PathLike,
    output: str | os.PathLike,
    teacher,
    copies: int = 20,
    p: float = 0.4,
    candidates: int = 15,
    seed: int = 0,
    tokenizer=None,
    keep_original: bool = True,
    shard_size: int = 10000,
    overwrite: bool = False,
    batch_size: int = 256,
    verbose: int = 1,
) -> Manifest:
    """TinyBERT data augmentation of a prepared directory into a new one.

    For each word of each text, the candidates are the teacher MLM's top-`candidates`
    predictions at that position masked, when the word is a single word piece and `teacher`
    is a `keras_hub.models.BertMaskedLM`; otherwise its `candidates` nearest whole-word
    tokens in the teacher's token-embedding table (cosine; a multi-piece word is the mean of
    its pieces). Each copy replaces every word with probability `p` by a random candidate.
    Punctuation and numbers are kept. Copies identical to the text or to an earlier copy
    are dropped; labels are kept; sentence pairs have both texts augmented.

    Args:
        input: a prepared directory (its records keep their text).
        output: the directory to write; a prepared directory with its own manifest.
        teacher: a loaded `BertMaskedLM` (MLM candidates), `BertTextClassifier` or
            `BertBackbone` (embedding neighbours only). Load a source (a `.keras` file, a
            keras-hub preset, a Hugging Face folder, the "minilm-l6-offline" alias) with
            `tf_tinybert.teachers.load_augmentation_teacher`.
        copies: augmented copies per row (the paper's N_a = 20).
        p: probability of replacing each word (p_t = 0.4).
        candidates: candidates per word (K = 15).
        seed: the same seed gives the same output.
        tokenizer: the tokenizer `input` was prepared with; by default rebuilt from its
            `vocab.txt` (`read_tokenizer`). The teacher must share its vocabulary.
        keep_original: write each original row before its copies.
        shard_size, overwrite, batch_size, verbose: as in `prepare`.

    Returns:
        The output `Manifest`; `manifest.augmentation` records the settings.

    Example:
    ```python
    import tf_tinybert as tt

    teacher = load_augmentation_teacher("minilm-l6-offline")  # tf_tinybert.teachers
    tt.data.augment("runs/sst2_train", "runs/sst2_aug", teacher=teacher,
                    copies=20, p=0.4, candidates=15, seed=0)
    ```
    """
    _check_settings(teacher, copies, p, candidates)
    manifest = read_manifest(input)
    paths = shard_paths(input, manifest)
    tokenizer = read_tokenizer(input) if tokenizer is None else load_tokenizer(tokenizer)
    if vocabulary_hash(tokenizer) != manifest.tokenizer.get("vocabulary_hash"):
        raise ValueError(
            f"{input}: prepared with another vocabulary than the given tokenizer "
            f"({manifest.tokenizer.get('vocabulary_size')} vs {tokenizer.vocabulary_size()} "
            "tokens); prepare it with the teacher's tokenizer."
        )
    augmenter = build_augmenter(teacher, tokenizer, manifest.sequence_length, copies=copies,
                                p=p, candidates=candidates, seed=seed, where=str(input))
    encoder = augmenter.encoder

    directory = claim_output_dir(output, overwrite, inputs=[input])
    writer = ShardWriter(directory, shard_size)
    progress = keras.utils.Progbar(manifest.num_examples, verbose=verbose, unit_name="row")
    started, done = time.perf_counter(), 0
    try:
        for path in paths:
            for batch in read_records(path, batch_size):
                _augment_batch(batch, augmenter, encoder, writer, keep_original)
                done += len(batch)
                elapsed = max(time.perf_counter() - started, 1e-9)
                progress.update(done, [("words/s", augmenter.words / elapsed)])
        shards = writer.close()
        if not shards:
            raise ValueError(f"{input}: nothing to write (no rows, copies=0 and keep_original=False)")
        result = Manifest(
            task=manifest.task,
            label_names=manifest.label_names,
            sequence_length=manifest.sequence_length,
            tokenizer=manifest.tokenizer,
            shards=tuple(shards),
            source={**manifest.source, "augmented_from": os.path.abspath(os.fspath(input))},
            has_text_pair=manifest.has_text_pair,
            augmentation={
                "copies": int(copies), "p": float(p), "candidates": int(candidates),
                "seed": seed, "keep_original": keep_original, **augmenter.describe(),
            },
        )
        write_vocabulary(directory, tokenizer)
        write_manifest(directory, result)
    except BaseException:
        writer.abort()
        raise
    return result


def _augment_batch(batch, augmenter, encoder, writer, keep_original) -> None:
    rows = [features.decode_row(record) for record in batch]
    texts = augmenter([text for text, _, _ in rows])
    has_pair = rows[0][1] is not None
    pairs = augmenter([pair for _, pair, _ in rows]) if has_pair else None
    new_texts, new_pairs, labels, originals = [], [], [], []
    for index, (text, pair, label) in enumerate(rows):
        originals.append(features.without_teacher_logits(batch[index]) if keep_original else None)
        if has_pair:
            # Copy j pairs the j-th variant of each text, falling back to the original.
            count = max(len(texts[index]), len(pairs[index]))
            firsts = texts[index] + [text] * (count - len(texts[index]))
            seconds = pairs[index] + [pair] * (count - len(pairs[index]))
        else:
            firsts, seconds = texts[index], [None] * len(texts[index])
        new_texts.append(firsts)
        new_pairs.append(seconds)
        labels.append(label)
    flat_texts = [text for group in new_texts for text in group]
    if flat_texts:
        flat_pairs = [pair for group in new_pairs for pair in group] if has_pair else None
        token_ids, segment_ids, lengths, _ = encoder(flat_texts, flat_pairs)
    position = 0
    for index, group in enumerate(new_texts):
        if originals[index] is not None:
            writer.write(originals[index])
        for offset, text in enumerate(group):
            row = position + offset
            writer.write(features.encode_example(
                token_ids[row, : lengths[row]].tolist(), segment_ids[row, : lengths[row]].tolist(),
                label=labels[index], text=text, text_pair=new_pairs[index][offset],
            ))
        position += len(group)
