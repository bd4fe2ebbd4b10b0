"""Replacement candidates for TinyBERT augmentation, drawn from the teacher itself.

The paper (Jiao et al., 2020, Algorithm 1) asks a masked language model for the top-K
words at a masked single-piece word, and GloVe for the K nearest words otherwise. Without
a download, our "GloVe" is the teacher's own word-piece embedding table: a word's vector
is the mean of its pieces' rows, its neighbours the K whole-word tokens of highest cosine.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_tinybert.data.features import PADDING_MASK, SEGMENT_IDS, TOKEN_IDS


def whole_word_tokens(vocabulary) -> np.ndarray:
    """Ids of vocabulary entries that can stand in for a word: alphabetic, not `##` pieces,
    not special (`[CLS]`, `[unused0]`, ...)."""
    return np.array([
        index for index, token in enumerate(vocabulary)
        if token.isalpha() and not token.startswith("##")
    ], dtype=np.int64)


class EmbeddingNeighbours:
    """The K nearest whole-word tokens of a word in the teacher's token-embedding table.

    Args:
        embeddings: the [vocabulary, hidden] token-embedding matrix.
        vocabulary: the tokenizer's vocabulary (index = token id).
        k: candidates per word.

    Example:
    ```python
    neighbours = EmbeddingNeighbours(backbone.token_embedding.embeddings.numpy(),
                                     tokenizer.get_vocabulary(), k=15)
    neighbours([[2001], [2143, 2015]])   # ids of the pieces of each word
    ```
    """

    def __init__(self, embeddings, vocabulary, k: int):
        embeddings = np.asarray(embeddings, dtype=np.float32)
        self.vocabulary = np.array(vocabulary, dtype=object)
        self.candidate_ids = whole_word_tokens(vocabulary)
        if len(self.candidate_ids) <= k:
            raise ValueError(
                f"Expected more than `candidates`={k} whole-word tokens in the vocabulary. "
                f"Received a vocabulary with {len(self.candidate_ids)}."
            )
        self.k = int(k)
        self.embeddings = embeddings
        table = embeddings[self.candidate_ids]
        self.table = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
        self.column = {int(token): column for column, token in enumerate(self.candidate_ids)}
        self._table = tf.constant(self.table)

    @tf.function(reduce_retracing=True)
    def _top_k(self, vectors, excluded):
        similarity = tf.matmul(vectors, self._table, transpose_b=True)
        minus_inf = tf.fill(tf.shape(excluded)[:1], tf.constant(-np.inf, tf.float32))
        similarity = tf.tensor_scatter_nd_update(similarity, excluded, minus_inf)
        return tf.math.top_k(similarity, k=self.k).indices

    def __call__(self, pieces_per_word: list) -> list:
        """For each word (a list of its piece ids), its K neighbours as strings (best first);
        an empty list for a word with no pieces."""
        results = [[] for _ in pieces_per_word]
        rows = [index for index, pieces in enumerate(pieces_per_word) if len(pieces)]
        if not rows:
            return results
        vectors = np.stack([self.embeddings[pieces_per_word[row]].mean(axis=0) for row in rows])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        # Never propose the word itself.
        own = np.array([self.column.get(pieces_per_word[row][0], -1)
                        if len(pieces_per_word[row]) == 1 else -1 for row in rows])
        hit = np.flatnonzero(own >= 0)
        top = self._top_k(vectors, np.stack([hit, own[hit]], axis=1)).numpy()
        for position, row in enumerate(rows):
            results[row] = list(self.vocabulary[self.candidate_ids[top[position]]])
        return results


class MaskedLMCandidates:
    """The teacher MLM's top-K whole-word tokens at masked positions.

    Args:
        masked_lm: a `keras_hub.models.BertMaskedLM` (its preprocessor is not used).
        tokenizer: the teacher's `BertTokenizer`.
        k: candidates per word.

    Example:
    ```python
    mlm = MaskedLMCandidates(masked_lm, tokenizer, k=15)
    mlm([[101, 1037, 2143, 102]], [[2]])   # -> [["movie", "show", ...]]
    ```
    """

    def __init__(self, masked_lm, tokenizer, k: int, batch_size: int = 64):
        self.masked_lm = masked_lm
        self.k = int(k)
        self.batch_size = int(batch_size)
        self.mask_id = int(tokenizer.mask_token_id)
        self.vocabulary = np.array(tokenizer.get_vocabulary(), dtype=object)
        allowed = np.full(len(self.vocabulary), -np.inf, dtype=np.float32)
        allowed[whole_word_tokens(self.vocabulary)] = 0.0
        self.allowed = allowed
        self._predict = tf.function(self._logits, reduce_retracing=True)

    def _logits(self, token_ids, padding_mask, mask_positions):
        inputs = {
            TOKEN_IDS: token_ids,
            SEGMENT_IDS: tf.zeros_like(token_ids),
            PADDING_MASK: padding_mask,
            "mask_positions": mask_positions,
        }
        return self.masked_lm(inputs, training=False)[:, 0, :]

    def __call__(self, token_ids: list, positions: list) -> list:
        """For each (ids, position): the K best replacements when `ids[position]` is masked."""
        results = []
        for start in range(0, len(token_ids), self.batch_size):
            rows = token_ids[start:start + self.batch_size]
            where = positions[start:start + self.batch_size]
            width = max(len(row) for row in rows)
            ids = np.zeros((len(rows), width), dtype=np.int32)
            mask = np.zeros((len(rows), width), dtype=np.int32)
            for index, (row, position) in enumerate(zip(rows, where)):
                ids[index, : len(row)] = row
                ids[index, position] = self.mask_id
                mask[index, : len(row)] = 1
            original = np.array([row[position] for row, position in zip(rows, where)])
            logits = self._predict(ids, mask, np.array(where, dtype=np.int32)[:, None]).numpy()
            logits = logits + self.allowed[None, :]
            logits[np.arange(len(rows)), original] = -np.inf
            top = np.argsort(-logits, axis=1, kind="stable")[:, : self.k]
            results += [list(self.vocabulary[row]) for row in top]
        return results
