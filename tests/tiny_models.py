"""Tiny random models and vocabularies shared by the test modules (fast on 2 cores)."""

import keras
import keras_hub
import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "a", "the", "film", "movie", "is", "was", "good", "bad", "great", "awful", "witty",
    "gorgeous", "boring", "fun", "plot", "actors", "not", "very", "and", "but", "it",
    "##s", "##ly", "##ing", "##ed", ",", ".", "!", "?", "'", "-", "love", "hate", "story",
]
TINY_VOCAB = SPECIAL_TOKENS + WORDS
TINY_VOCAB_SIZE = len(TINY_VOCAB)


def tiny_tokenizer():
    """A lower-casing keras-hub BertTokenizer over TINY_VOCAB."""
    return keras_hub.models.BertTokenizer(vocabulary=list(TINY_VOCAB), lowercase=True)


def tiny_classifier(
    num_layers=2,
    hidden_dim=8,
    num_heads=2,
    intermediate_dim=16,
    vocabulary_size=TINY_VOCAB_SIZE,
    max_sequence_length=32,
    num_classes=2,
    seed=0,
    dropout=0.1,
):
    """A random BertTextClassifier with no preprocessor (its inputs are token ids)."""
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length,
        dropout=dropout,
    )
    return keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=num_classes, preprocessor=None, dropout=dropout
    )


def tiny_backbone(seed, num_layers, hidden_dim):
    """A seeded BertBackbone over the tiny vocabulary: 2 heads, I16, length 32, no dropout."""
    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(
        vocabulary_size=TINY_VOCAB_SIZE, num_layers=num_layers, num_heads=2,
        hidden_dim=hidden_dim, intermediate_dim=16, max_sequence_length=32, dropout=0.0)


def random_features(batch_size=4, sequence_length=12, vocabulary_size=TINY_VOCAB_SIZE, seed=0,
                    min_length=3):
    """A batch of token ids with per-row lengths, [CLS] first, zero padding after."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, sequence_length + 1, size=batch_size)
    token_ids = np.zeros((batch_size, sequence_length), dtype="int32")
    padding_mask = np.zeros((batch_size, sequence_length), dtype="int32")
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(5, vocabulary_size, size=length)
        token_ids[row, 0] = 2
        padding_mask[row, :length] = 1
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }


def spread_weights(model, std=0.5, seed=0):
    """Redraws every matrix with a large std so that the text moves the probabilities.

    At BERT's 0.02 initialisation a tiny model gives near-uniform probabilities whatever
    the text, which would make a parity check between runtimes almost vacuous.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if len(weight.shape) >= 2:
            weight.assign(rng.normal(0.0, std, weight.shape).astype("float32"))
    return model


def make_pre_layer_norm(model):
    """Turn a classifier's encoder layers pre-LayerNorm (keras-hub's `normalize_first=True`).

    BertBackbone builds post-LN layers only; the flag is read on every call, so setting it
    before the model first runs gives a pre-LN model with the same weights.
    """
    for layer in model.backbone.transformer_layers:
        layer.normalize_first = True
    return model
