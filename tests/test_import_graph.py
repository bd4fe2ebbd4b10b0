"""The package's import graph, function-level imports included, has no cycle: a training stage
(tf_tinybert.stage) sits above its leaf helpers (evaluation, callbacks, resume), and loaders
(teachers) never import the training stack."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tf_tinybert"


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> tf_tinybert modules it imports anywhere in its code (not just at the top)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                submodules = [f"{base}.{alias.name}" for alias in node.names]
                # `from pkg import submodule` needs the submodule; `from pkg import name`, pkg.
                targets = (submodules if all(sub in modules for sub in submodules)
                           else [base, *submodules])
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_tf_tinybert_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_training_stack_is_layered():
    graph = import_graph()
    assert graph["tf_tinybert.evaluation"] <= {"tf_tinybert.metrics", "tf_tinybert.data.features"}
    assert "tf_tinybert.stage" not in graph["tf_tinybert.callbacks"] | graph["tf_tinybert.resume"]
    assert {"tf_tinybert.callbacks", "tf_tinybert.resume"} <= graph["tf_tinybert.stage"]
    assert not graph["tf_tinybert.teachers"] & {"tf_tinybert.stage", "tf_tinybert.callbacks",
                                                "tf_tinybert.resume", "tf_tinybert.optimizers"}
    assert "tf_tinybert.training" not in graph
