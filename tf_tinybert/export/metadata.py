"""TFLite metadata for a BERT text classifier, as MediaPipe Tasks' TextClassifier reads it.

A model with metadata is the plain TFLite flatbuffer with two additions:
1. a `TFLITE_METADATA` entry in `Model.metadata` pointing at a buffer that holds a
   `ModelMetadata` flatbuffer (identifier "M001"): names for the three input tensors
   ("ids", "mask", "segment_ids", which MediaPipe's BERT preprocessor looks up), a
   BertTokenizer input process unit naming the vocabulary, and a classification output
   naming the label file;
2. a zip archive of the associated files (vocab.txt, labels.txt) appended after the
   flatbuffer. Zip readers find an archive from its end, flatbuffer readers from its
   start, so both views of the same bytes stay valid.

mediapipe 1.2.2's own metadata writer does not import (it needs the absent
`mediapipe.tasks.cc`), so this module builds the same flatbuffers from the generated
schema classes that mediapipe ships.

A regression model (one float32 `score`, STS-B) is no classifier, and MediaPipe's
TextClassifier would read its score as the probability of one class. For it
`add_metadata(..., labels=None)` writes what still fits: the three input tensors, the
BertTokenizer process unit and vocab.txt, and an output named "score" with no label
file, so tokenizer-aware LiteRT tooling (and `tf_tinybert.runtime`) still finds the
vocabulary inside the model. Run it with `tf_tinybert.runtime.TextClassifier`, which
returns the score, not with MediaPipe's TextClassifier.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import flatbuffers
import numpy as np

from tf_tinybert.runtime.contract import (
    INPUT_MASK,
    INPUT_TYPE_IDS,
    INPUT_WORD_IDS,
    LABELS_FILE,
    OUTPUT_NAME,
    SCORE_NAME,
    VOCAB_FILE,
)

METADATA_NAME = "TFLITE_METADATA"
# BertTokenizerOptions and input_process_units arrived in metadata schema 1.1.0; nothing
# newer is used, so any MediaPipe or TFLite Support release that reads 1.1.0 reads this.
MIN_PARSER_VERSION = "1.1.0"

_TENSOR_ROLES = {
    INPUT_WORD_IDS: ("ids", "Tokenized ids of the input text."),
    INPUT_MASK: ("mask", "Mask with 1 for real tokens and 0 for padding tokens."),
    INPUT_TYPE_IDS: ("segment_ids", "0 for the first sequence, 1 for the second."),
}


def _schemas():
    from ai_edge_litert import schema_py_generated as model_fb
    from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb

    return model_fb, metadata_fb


def add_metadata(
    model_content: bytes,
    vocabulary: Sequence[str],
    labels: Sequence[str] | None,
    name: str = "tf_tinybert text classifier",
    description: str = "Classifies a text into one of the labels (TinyBERT student).",
    version: str = "1",
) -> bytes:
    """Returns `model_content` with BERT text classifier metadata and associated files.

    Args:
        model_content: a TFLite model with int32 inputs whose names contain
            input_word_ids, input_mask and input_type_ids and one float32 or int8
            probability output, without metadata.
        vocabulary: the WordPiece vocabulary, one token per id.
        labels: one name per output class; None for a regression model (a float32
            `score` output): then no label file, and the output is described as a score.

    Example:
    ```python
    with_metadata = add_metadata(tflite_bytes, tokenizer.get_vocabulary(),
                                 ["negative", "positive"])
    ```
    """
    model_fb, metadata_fb = _schemas()
    model = model_fb.ModelT.InitFromObj(model_fb.Model.GetRootAs(model_content, 0))
    if model.metadata and any(m.name == METADATA_NAME.encode() for m in model.metadata):
        raise ValueError("The model already holds TFLite metadata; expected a bare model.")
    subgraph = model.subgraphs[0]
    input_names = [subgraph.tensors[i].name.decode() for i in subgraph.inputs]
    output_types = [subgraph.tensors[i].type for i in subgraph.outputs]
    if len(output_types) != 1:
        raise ValueError(f"Expected one output tensor. Received: {len(output_types)}.")

    inputs = [_input_tensor_metadata(metadata_fb, tensor_name) for tensor_name in input_names]
    output = _output_tensor_metadata(
        metadata_fb, is_float=output_types[0] == model_fb.TensorType.FLOAT32,
        regression=labels is None,
    )
    subgraph_metadata = metadata_fb.SubGraphMetadataT()
    subgraph_metadata.inputTensorMetadata = inputs
    subgraph_metadata.outputTensorMetadata = [output]
    subgraph_metadata.inputProcessUnits = [_bert_tokenizer_unit(metadata_fb)]

    model_metadata = metadata_fb.ModelMetadataT()
    model_metadata.name = name
    model_metadata.description = description
    model_metadata.version = version
    model_metadata.minParserVersion = MIN_PARSER_VERSION
    model_metadata.subgraphMetadata = [subgraph_metadata]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_metadata.Pack(builder), file_identifier=b"M001")
    metadata_bytes = bytes(builder.Output())

    buffer = model_fb.BufferT()
    buffer.data = np.frombuffer(metadata_bytes, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = model_fb.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(model_content) + len(metadata_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    files = {VOCAB_FILE: _lines(vocabulary)}
    if labels is not None:
        files[LABELS_FILE] = _lines(labels)
    return _append_files(bytes(builder.Output()), files)


def _lines(items: Sequence[str]) -> bytes:
    return ("\n".join(items) + "\n").encode("utf-8")


def _input_tensor_metadata(metadata_fb, tensor_name: str):
    role = next((r for key, r in _TENSOR_ROLES.items() if key in tensor_name), None)
    if role is None:
        raise ValueError(
            f"Input tensor {tensor_name!r} is none of {list(_TENSOR_ROLES)}; MediaPipe's "
            "BERT preprocessor could not tell ids, mask and segment ids apart."
        )
    tensor = metadata_fb.TensorMetadataT()
    tensor.name, tensor.description = role
    tensor.content = _feature_content(metadata_fb)
    tensor.stats = metadata_fb.StatsT()
    return tensor


def _output_tensor_metadata(metadata_fb, is_float: bool, regression: bool = False):
    tensor = metadata_fb.TensorMetadataT()
    if regression:
        tensor.name = SCORE_NAME
        tensor.description = "The predicted score (regression; no softmax, no labels)."
        tensor.content = _feature_content(metadata_fb)
        tensor.stats = metadata_fb.StatsT()
        return tensor
    tensor.name = OUTPUT_NAME
    tensor.description = "Probabilities of the labels respectively."
    tensor.content = _feature_content(metadata_fb)
    tensor.stats = metadata_fb.StatsT()
    if is_float:
        tensor.stats.min, tensor.stats.max = [0.0], [1.0]
    labels = metadata_fb.AssociatedFileT()
    labels.name = LABELS_FILE
    labels.description = "Labels for categories that the model can recognize."
    labels.type = metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor.associatedFiles = [labels]
    return tensor


def _feature_content(metadata_fb):
    content = metadata_fb.ContentT()
    content.contentPropertiesType = metadata_fb.ContentProperties.FeatureProperties
    content.contentProperties = metadata_fb.FeaturePropertiesT()
    return content


def _bert_tokenizer_unit(metadata_fb):
    vocab = metadata_fb.AssociatedFileT()
    vocab.name = VOCAB_FILE
    vocab.description = "Vocabulary file to convert natural language words to embedding vectors."
    vocab.type = metadata_fb.AssociatedFileType.VOCABULARY
    unit = metadata_fb.ProcessUnitT()
    unit.optionsType = metadata_fb.ProcessUnitOptions.BertTokenizerOptions
    unit.options = metadata_fb.BertTokenizerOptionsT()
    unit.options.vocabFile = [vocab]
    return unit


def _append_files(model_content: bytes, files: dict[str, bytes]) -> bytes:
    stream = io.BytesIO(model_content)
    stream.seek(0, io.SEEK_END)
    # Stored, not deflated: MediaPipe memory-maps associated files out of the model.
    with zipfile.ZipFile(stream, mode="a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            archive.writestr(file_name, content)
    return stream.getvalue()


def read_metadata(model_content: bytes) -> dict:
    """Reads back what `add_metadata` wrote: metadata fields and associated files.

    Returns a dict with "name", "min_parser_version", "input_names" (metadata names in
    the model's input order), "output_name", "process_units" (option type names) and
    "files" ({file name: bytes}).

    Example:
    ```python
    read_metadata(open("model.tflite", "rb").read())["files"]["labels.txt"]
    ```
    """
    model_fb, metadata_fb = _schemas()
    model = model_fb.Model.GetRootAs(model_content, 0)
    buffer_index = None
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name().decode() == METADATA_NAME:
            buffer_index = model.Metadata(i).Buffer()
    if buffer_index is None:
        raise ValueError(f"The model holds no {METADATA_NAME} entry.")
    data = model.Buffers(buffer_index).DataAsNumpy().tobytes()
    metadata = metadata_fb.ModelMetadataT.InitFromObj(
        metadata_fb.ModelMetadata.GetRootAs(data, 0)
    )
    subgraph = metadata.subgraphMetadata[0]
    option_names = {v: k for k, v in vars(metadata_fb.ProcessUnitOptions).items()
                    if not k.startswith("_")}
    with zipfile.ZipFile(io.BytesIO(model_content)) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    return {
        "name": metadata.name.decode(),
        "min_parser_version": metadata.minParserVersion.decode(),
        "input_names": [t.name.decode() for t in subgraph.inputTensorMetadata],
        "output_name": subgraph.outputTensorMetadata[0].name.decode(),
        "process_units": [option_names[u.optionsType] for u in subgraph.inputProcessUnits],
        "files": files,
    }
