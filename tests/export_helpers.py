"""Helpers shared by the test_export_*.py modules: a decisive tiny classifier, sentences."""

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from tiny_models import random_features, tiny_classifier

SENTENCES = [
    "a gorgeous, witty film",
    "the plot is boring and the actors are awful",
    "it was not very good",
    "great fun!",
    "i hate this movie",
    "love the story, love the actors",
    "",
    "bad bad bad",
    "The Film Was Very Witty.",
    "zebra quantum unknown words",
    "not boring, not awful, but not great either - a film",
    "the movie is good but the plot is bad and boring and the actors are not great",
]


def decisive_classifier(seed=0, **kwargs):
    """tiny_classifier re-drawn with large weights, so its outputs depend on the input.

    BERT's initialiser (stddev 0.02) makes a random tiny model return nearly the same
    probabilities for every input; with stddev 0.5 kernels and unit embeddings the
    classes split across inputs, so top-1 agreement and score differences mean something.
    """
    model = tiny_classifier(seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if len(weight.shape) < 2:
            continue
        scale = 1.0 if "embedding" in weight.path else 0.5
        weight.assign(rng.normal(0.0, scale, size=weight.shape).astype("float32"))
    # Centre the logits on random inputs so that every class wins somewhere.
    features = random_features(batch_size=64, sequence_length=16, seed=seed + 1,
                               vocabulary_size=model.backbone.vocabulary_size)
    logits = model.predict(features, verbose=0)
    kernel, bias = model.output_dense.get_weights()
    model.output_dense.set_weights([kernel, bias - logits.mean(axis=0)])
    return model


def keras_reference(model, features):
    """Softmax of the Keras model's logits, computed here with numpy."""
    logits = np.asarray(model.predict(
        {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}, verbose=0
    ), dtype=np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


def _operators(content, op_name):
    """The model, its first subgraph and that subgraph's `op_name` operators."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    wanted = getattr(schema.BuiltinOperator, op_name)
    graph = model.subgraphs[0]
    return model, graph, [op for op in graph.operators if codes[op.opcodeIndex] == wanted]


def tensor_types(content, op_name, input_index=None):
    """TensorType names of every `op_name` operator's outputs (or its input `input_index`)."""
    _, graph, operators = _operators(content, op_name)
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return [names[graph.tensors[i].type] for op in operators
            for i in (op.outputs if input_index is None else [op.inputs[input_index]])]


def named_tensor_types(content, marker):
    """TensorType names of the tensors whose name contains `marker`."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return [names[t.type] for t in model.subgraphs[0].tensors
            if marker in (t.name or b"").decode()]


def reads_constant(content, op_name, input_index=0):
    """For every `op_name` operator: whether its input `input_index` is a constant (a tensor
    with data in the flatbuffer)."""
    model, graph, operators = _operators(content, op_name)

    def constant(index):
        buffer = model.buffers[graph.tensors[index].buffer]
        return buffer.data is not None and len(buffer.data) > 0

    return [constant(op.inputs[input_index]) for op in operators]
