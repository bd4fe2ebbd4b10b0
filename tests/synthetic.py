"""A synthetic task a tiny BERT learns in seconds: label 1 iff a keyword token occurs.

Used by the learning tests (distillation must beat chance and an untrained student), so that
a broken loss, a frozen student or swapped teacher/student shows as a failed accuracy bar
instead of passing a range check.
"""

import keras
import numpy as np
import tensorflow as tf
from tiny_models import TINY_VOCAB, TINY_VOCAB_SIZE, tiny_classifier

KEYWORD = TINY_VOCAB.index("good")
SEQUENCE_LENGTH = 10


def keyword_data(rows, seed, sequence_length=SEQUENCE_LENGTH, keyword=KEYWORD):
    """(features, labels): [CLS] then random word ids; label 1 iff `keyword` is among them.

    Half the rows (alternating) hold the keyword once, at a random position; lengths vary and
    the padding is zeros, so the padding mask matters.
    """
    rng = np.random.default_rng(seed)
    words = np.array([i for i in range(5, TINY_VOCAB_SIZE) if i != keyword])
    token_ids = np.zeros((rows, sequence_length), "int32")
    padding_mask = np.zeros((rows, sequence_length), "int32")
    labels = np.arange(rows, dtype="int32") % 2
    for row in range(rows):
        length = int(rng.integers(4, sequence_length + 1))
        token_ids[row, 0] = 2
        token_ids[row, 1:length] = rng.choice(words, size=length - 1)
        if labels[row]:
            token_ids[row, int(rng.integers(1, length))] = keyword
        padding_mask[row, :length] = 1
    features = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                "padding_mask": padding_mask}
    return features, labels


def keyword_dataset(rows, seed, batch_size=32):
    """`keyword_data` as a batched tf.data.Dataset of (features, labels)."""
    features, labels = keyword_data(rows, seed)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


def accuracy(model, features, labels):
    """Fraction of rows whose argmax logit is the label (numpy, from `model.predict`)."""
    logits = model.predict(features, batch_size=256, verbose=0)
    return float((np.asarray(logits).argmax(-1) == labels).mean())


def keyword_teacher(seed=1, rows=512, epochs=12):
    """A tiny BertTextClassifier trained on the keyword labels (near 100% held out)."""
    teacher = tiny_classifier(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                              max_sequence_length=32, seed=seed, dropout=0.0)
    teacher.compile(optimizer=keras.optimizers.Adam(3e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    features, labels = keyword_data(rows, seed=100 + seed)
    teacher.fit(features, labels, batch_size=32, epochs=epochs, verbose=0)
    return teacher


def keyword_student(seed=2):
    """An untrained tiny student sharing the teacher's vocabulary and head count."""
    return tiny_classifier(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16,
                           max_sequence_length=32, seed=seed, dropout=0.0)
