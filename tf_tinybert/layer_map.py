"""Which teacher layer each student layer learns from: the paper's mapping g(m).

Layers are numbered as in the TinyBERT paper: 0 is the embedding output, 1..N the outputs
of the transformer layers. The embedding layer always maps to the embedding layer
(g(0) = 0), so a layer map lists the teacher layers of student layers 1..M.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf_tinybert.choices import LAYER_MAPS


def resolve_layer_map(
    layer_map: str | Sequence[int], student_layers: int, teacher_layers: int
) -> list[int]:
    """Return the teacher layer (1..N) for each student layer 1..M.

    - `"uniform"`: g(m) = floor(m * N / M), the paper's choice (every third layer for a
      4-layer student of a 12-layer teacher; [1, 3, 4, 6] for 4 layers of 6).
    - `"last"`: the teacher's last M layers, g(m) = N - M + m.
    - an explicit list of M strictly increasing teacher layers in 1..N.

    Example:
    ```python
    resolve_layer_map("uniform", student_layers=4, teacher_layers=12)  # [3, 6, 9, 12]
    resolve_layer_map([2, 4, 6, 12], student_layers=4, teacher_layers=12)
    ```
    """
    if student_layers > teacher_layers:
        raise ValueError(
            f"The student has more transformer layers ({student_layers}) than the teacher "
            f"({teacher_layers}); TinyBERT maps each student layer to a distinct teacher layer."
        )
    if isinstance(layer_map, str):
        if layer_map == "uniform":
            return [m * teacher_layers // student_layers for m in range(1, student_layers + 1)]
        if layer_map == "last":
            offset = teacher_layers - student_layers
            return [offset + m for m in range(1, student_layers + 1)]
        raise ValueError(
            f"Expected `layer_map` to be one of {LAYER_MAPS} or a list of teacher "
            f"layer numbers. Received: layer_map={layer_map!r}"
        )
    mapping = list(layer_map)
    if any(isinstance(layer, bool) or not isinstance(layer, int) for layer in mapping):
        raise ValueError(f"Expected `layer_map` to hold integers. Received: layer_map={mapping}")
    if len(mapping) != student_layers:
        raise ValueError(
            f"Expected `layer_map` to list one teacher layer per student layer "
            f"({student_layers}). Received {len(mapping)}: layer_map={mapping}"
        )
    out_of_range = [layer for layer in mapping if not 1 <= layer <= teacher_layers]
    if out_of_range:
        raise ValueError(
            f"`layer_map` names teacher layers {out_of_range}, but the teacher has layers "
            f"1..{teacher_layers} (0 is the embedding output, mapped implicitly). "
            f"Received: layer_map={mapping}"
        )
    if any(later <= earlier for earlier, later in zip(mapping, mapping[1:])):
        raise ValueError(
            f"Expected `layer_map` to be strictly increasing. Received: layer_map={mapping}"
        )
    return mapping
