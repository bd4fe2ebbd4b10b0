"""TFLite metadata: read back with mediapipe's schema, and MediaPipe's TextClassifier loads it."""

import io
import zipfile

import keras_hub
import numpy as np
import pytest
from export_helpers import SENTENCES, decisive_classifier
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
from tiny_models import TINY_VOCAB, tiny_tokenizer

from tf_tinybert.export import add_metadata, read_metadata, to_tflite
from tf_tinybert.export.verify import tflite_probabilities

L = 16
LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = decisive_classifier()
    content = add_metadata(to_tflite(model, "fp32", sequence_length=L), TINY_VOCAB, LABELS)
    path = tmp_path_factory.mktemp("metadata") / "model.tflite"
    path.write_bytes(content)
    return content, path


def _model_metadata(content):
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    entries = {model.Metadata(i).Name(): model.Metadata(i).Buffer()
               for i in range(model.MetadataLength())}
    data = model.Buffers(entries[b"TFLITE_METADATA"]).DataAsNumpy().tobytes()
    assert metadata_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    return metadata_fb.ModelMetadataT.InitFromObj(metadata_fb.ModelMetadata.GetRootAs(data, 0))


def test_associated_files_are_a_zip_after_the_model(exported):
    content, _ = exported
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.read("vocab.txt").decode().splitlines() == TINY_VOCAB
        assert archive.read("labels.txt").decode().splitlines() == LABELS


def test_metadata_names_tensors_tokenizer_and_labels(exported):
    content, _ = exported
    metadata = _model_metadata(content)
    subgraph = metadata.subgraphMetadata[0]
    # Same order as the model's input tensors: word ids, type ids, mask.
    from ai_edge_litert.interpreter import Interpreter

    names = [d["name"] for d in Interpreter(model_content=content).get_input_details()]
    roles = {"serving_default_input_word_ids:0": b"ids", "serving_default_input_mask:0": b"mask",
             "serving_default_input_type_ids:0": b"segment_ids"}
    assert [t.name for t in subgraph.inputTensorMetadata] == [roles[n] for n in names]
    (unit,) = subgraph.inputProcessUnits
    assert unit.optionsType == metadata_fb.ProcessUnitOptions.BertTokenizerOptions
    assert unit.options.vocabFile[0].name == b"vocab.txt"
    assert unit.options.vocabFile[0].type == metadata_fb.AssociatedFileType.VOCABULARY
    (output,) = subgraph.outputTensorMetadata
    assert output.associatedFiles[0].name == b"labels.txt"
    assert output.associatedFiles[0].type == metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    assert metadata.minParserVersion == b"1.1.0"
    assert read_metadata(content)["process_units"] == ["BertTokenizerOptions"]


def test_metadata_leaves_the_model_unchanged(exported):
    content, _ = exported
    features = {"token_ids": np.full((3, L), 7, np.int32), "segment_ids": np.zeros((3, L), np.int32),
                "padding_mask": np.ones((3, L), np.int32)}
    bare = bytes(content[: content.index(b"PK\x03\x04")])  # flatbuffer part before the zip
    np.testing.assert_array_equal(
        tflite_probabilities(content, features), tflite_probabilities(bare, features)
    )


def test_refuses_a_model_that_already_has_metadata(exported):
    content, _ = exported
    with pytest.raises(ValueError, match="already holds"):
        add_metadata(content, TINY_VOCAB, LABELS)


def _mediapipe_scores(path, sentences):
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(path))
    )
    rows = []
    with text_classifier.TextClassifier.create_from_options(options) as classifier:
        for sentence in sentences:
            (head,) = classifier.classify(sentence).classifications
            rows.append({c.category_name: c.score for c in head.categories})
    return rows


def test_mediapipe_text_classifier_matches_litert(exported):
    content, path = exported
    mediapipe_rows = _mediapipe_scores(path, SENTENCES)
    assert all(set(row) == set(LABELS) for row in mediapipe_rows)
    mediapipe = np.array([[row[label] for label in LABELS] for row in mediapipe_rows])

    # Independent pipeline: keras-hub's tokenizer and packer, then ai-edge-litert.
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tiny_tokenizer(), sequence_length=L
    )
    packed = preprocessor(SENTENCES)
    features = {k: np.asarray(v).astype(np.int32) for k, v in packed.items()}
    litert = tflite_probabilities(content, features)
    np.testing.assert_allclose(mediapipe, litert, atol=1e-4)
    assert len(set(litert.argmax(-1))) == 2  # both labels occur: a swap would show


def test_runtime_text_classifier_matches_mediapipe(exported):
    from tf_tinybert import runtime

    _, path = exported
    mediapipe_rows = _mediapipe_scores(path, SENTENCES)
    classifier = runtime.TextClassifier(str(path))
    for sentence, expected, received in zip(
        SENTENCES, mediapipe_rows, classifier.classify(SENTENCES)
    ):
        scores = received.scores()
        for label in LABELS:
            assert abs(scores[label] - expected[label]) <= 1e-4, sentence
