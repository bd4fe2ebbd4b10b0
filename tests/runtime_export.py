"""Exported tiny .tflite classifiers for the runtime tests (tests/test_runtime_*.py, web kit).

`export_tiny_model` goes through `tf_tinybert.export.export_classifier` when it exists, so the
runtime is tested against the real export path; until then it uses a stand-in with the same
contract: a SavedModel from `model.export(format="tf_saved_model")`, `TFLiteConverter`, the
signature int32 input_word_ids/input_mask/input_type_ids [1, L] -> float32 probability [1, C],
and vocab.txt + labels.txt in a zip appended to the flatbuffer (TFLite associated files).
"""

import io
import json
import os
import tempfile
import zipfile

import keras
import numpy as np
import tensorflow as tf

STAND_IN_REASON = "tf_tinybert.export.export_classifier is not available yet"


def _export_classifier():
    try:
        from tf_tinybert.export import export_classifier
    except ImportError:
        return None
    return export_classifier


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


def _stand_in_tflite(model, sequence_length):
    names = ("input_word_ids", "input_mask", "input_type_ids")
    inputs = {n: keras.Input((sequence_length,), batch_size=1, dtype="int32", name=n) for n in names}
    logits = model(
        {
            "token_ids": inputs["input_word_ids"],
            "segment_ids": inputs["input_type_ids"],
            "padding_mask": inputs["input_mask"],
        }
    )
    probability = keras.layers.Softmax(name="probability", dtype="float32")(logits)
    serving = keras.Model(inputs, {"probability": probability})
    with tempfile.TemporaryDirectory() as saved:
        serving.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return converter.convert()


def export_tiny_model(model, tokenizer, output_dir, labels=("negative", "positive"),
                      sequence_length=16):
    """Writes model.tflite (+ vocab.txt, labels.txt, export.json) into output_dir (replacing
    it); returns the model path."""
    export_classifier = _export_classifier()
    if export_classifier is not None:
        report = export_classifier(model, tokenizer, output_dir, quantization="fp32",
                                   labels=list(labels), sequence_length=sequence_length,
                                   overwrite=True, max_eval_examples=32)
        return report.model_path
    os.makedirs(output_dir, exist_ok=True)
    model_bytes = _stand_in_tflite(model, sequence_length)
    try:
        from tf_tinybert.export.metadata import add_metadata
    except ImportError:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("vocab.txt", "".join(f"{t}\n" for t in tokenizer.get_vocabulary()))
            zipped.writestr("labels.txt", "".join(f"{label}\n" for label in labels))
        model_bytes += archive.getvalue()
    else:
        model_bytes = add_metadata(model_bytes, tokenizer.get_vocabulary(), list(labels))
    path = os.path.join(output_dir, "model.tflite")
    with open(path, "wb") as file:
        file.write(model_bytes)
    with open(os.path.join(output_dir, "export.json"), "w") as file:
        json.dump({"sequence_length": sequence_length, "stand_in": STAND_IN_REASON,
                   "tokenizer": {"lowercase": bool(tokenizer.lowercase),
                                 "strip_accents": bool(tokenizer.strip_accents)}}, file)
    return path


def pack_batch(tokenizer, texts, sequence_length):
    """Runtime-packed inputs for several texts, stacked to [B, L] numpy arrays."""
    packed = [tokenizer.pack(text, sequence_length=sequence_length) for text in texts]
    return {name: np.stack([p[name] for p in packed]) for name in packed[0]}
