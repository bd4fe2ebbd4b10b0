"""Exported tiny .tflite classifiers for the runtime tests (tests/test_runtime_*.py, web kit).

`export_tiny_model` goes through the real export path, `tf_tinybert.export.export_classifier`:
a SavedModel, `TFLiteConverter`, the signature int32 input_word_ids/input_mask/input_type_ids
[1, L] -> float32 probability [1, C], and TFLite metadata holding vocab.txt and labels.txt.
"""

import keras
import numpy as np

from tf_tinybert.export import export_classifier


def keras_probabilities(model, inputs):
    """Softmax of the Keras model's logits for packed runtime inputs (numpy [B, L] each)."""
    logits = model(
        {
            "token_ids": inputs["input_word_ids"],
            "segment_ids": inputs["input_type_ids"],
            "padding_mask": inputs["input_mask"],
        },
        training=False,
    )
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


def export_tiny_model(model, tokenizer, output_dir, labels=("negative", "positive"),
                      sequence_length=16):
    """Writes model.tflite (+ vocab.txt, labels.txt, export.json) into output_dir (replacing
    it); returns the model path."""
    report = export_classifier(model, tokenizer, output_dir, quantization="fp32",
                               labels=list(labels), sequence_length=sequence_length,
                               overwrite=True, max_eval_examples=32)
    return report.model_path


def pack_batch(tokenizer, texts, sequence_length):
    """Runtime-packed inputs for several texts, stacked to [B, L] numpy arrays."""
    packed = [tokenizer.pack(text, sequence_length=sequence_length) for text in texts]
    return {name: np.stack([p[name] for p in packed]) for name in packed[0]}
