"""Which operators a TFLite model uses, and a check that all of them are builtin.

MediaPipe Tasks and a plain LiteRT app link the builtin op resolver only. A model that
needs the Flex delegate (a TensorFlow op such as `FlexErf` or `FlexEinsum`, written as a
CUSTOM operator) or any other custom op fails to load there, so an export with one must
fail before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable


class UnsupportedOpsError(ValueError):
    """A TFLite model uses Flex (SELECT_TF_OPS) or other custom operators."""


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def builtin_operator_names() -> frozenset[str]:
    """Every builtin operator name in the TFLite schema ("SOFTMAX", "FULLY_CONNECTED", ...).

    Example:
    ```python
    "BATCH_MATMUL" in builtin_operator_names()  # True
    ```
    """
    return frozenset(_builtin_codes())


def _builtin_codes() -> dict[str, int]:
    """{builtin operator name: its code} from the schema's BuiltinOperator class."""
    return {name: code for name, code in vars(_schema().BuiltinOperator).items()
            if not name.startswith("_")}


def operator_versions(model_content: bytes) -> dict[str, int]:
    """{operator name: highest version used} for a TFLite model.

    Builtin ops appear by their schema name ("FULLY_CONNECTED"); custom ops, Flex ones
    included, as "CUSTOM:<custom code>" ("CUSTOM:FlexErf").

    Example:
    ```python
    operator_versions(tflite_bytes)  # {'ADD': 1, 'FULLY_CONNECTED': 5, ...}
    ```
    """
    schema = _schema()
    model = schema.Model.GetRootAs(model_content, 0)
    names_by_code = {code: name for name, code in _builtin_codes().items()}
    versions: dict[str, int] = {}
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes below 127 live in the deprecated int8 field as well; take the larger.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            name = f"CUSTOM:{custom.decode() if custom else '?'}"
        else:
            name = names_by_code.get(builtin, f"BUILTIN_{builtin}")
        versions[name] = max(versions.get(name, 0), code.Version())
    return dict(sorted(versions.items()))


def operator_names(model_content: bytes) -> list[str]:
    """Names of the operators a TFLite model uses, sorted, each once.

    Example:
    ```python
    operator_names(tflite_bytes)  # ['ADD', 'BATCH_MATMUL', 'FULLY_CONNECTED', ...]
    ```
    """
    return list(operator_versions(model_content))


def tensor_names(model_content: bytes) -> list[str]:
    """The name of every tensor in a TFLite model's subgraphs, in order.

    Example:
    ```python
    tensor_names(tflite_bytes)  # ['serving_default_input_word_ids:0', ..., 'Identity']
    ```
    """
    model = _schema().Model.GetRootAs(model_content, 0)
    names = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            names.append((subgraph.Tensors(t).Name() or b"").decode())
    return names


def min_runtime_version(model_content: bytes) -> str | None:
    """The converter's estimate of the oldest TFLite runtime that has every op version.

    The converter stores it as the `min_runtime_version` metadata entry; None if absent.

    Example:
    ```python
    min_runtime_version(tflite_bytes)  # '2.9.0'
    ```
    """
    schema = _schema()
    model = schema.Model.GetRootAs(model_content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == b"min_runtime_version":
            raw = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            return raw.split(b"\0", 1)[0].decode() or None
    return None


def check_builtin_ops(model_content: bytes, what: str = "the exported model") -> list[str]:
    """Returns the operator names, or raises UnsupportedOpsError naming non-builtin ones.

    Example:
    ```python
    check_builtin_ops(tflite_bytes)  # raises on ['CUSTOM:FlexErf']
    ```
    """
    names = operator_names(model_content)
    custom = _custom(names)
    if custom:
        flex = [n for n in custom if n.startswith("CUSTOM:Flex")]
        hint = (
            " Flex ops come from TensorFlow ops with no TFLite kernel (exact erf GELU, "
            "einsum forms the converter cannot lower): use keras-hub's tanh GELU and "
            "standard layers."
            if flex
            else ""
        )
        raise UnsupportedOpsError(
            f"{what} needs operators outside the TFLite builtin set: {custom}. MediaPipe "
            f"Tasks and plain LiteRT apps cannot run it.{hint} Expected builtin ops only. "
            f"All ops: {names}."
        )
    return names


def _custom(names: Iterable[str]) -> list[str]:
    return [name for name in names if name.startswith("CUSTOM:")]
