"""DESIGN.md's import rules, enforced on the source: every import counts, lazy ones inside functions too.

algorithms/                imports only torch and the standard library
serving/, labeling/        never import training code (stages, training, pipelines), nor each other: what both
                           HTTP apps share lives in web/
web/                       imports neither app, nor training code
evaluation/                never imports a stage or a pipeline (a study that trains is a pipeline)
stages/                    never import another stage, a pipeline or the command line
training/                  never imports a stage, a pipeline or the command line
the whole package          no import circle
"""

import ast
import sys
from pathlib import Path

from tests import tiny

ROOT = tiny.ROOT / "posttrain"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name: str) -> set[str]:
    """Every module `name` imports, anywhere in its file: posttrain modules resolved, others by top name."""
    path, out = MODULES[name], set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {resolve(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for a in node.names:  # `from posttrain.x import y`: the module posttrain.x.y if there is one
                out.add(resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in MODULES else resolve(base))
    return out - {name}


def resolve(dotted: str) -> str:
    return dotted if dotted.startswith("posttrain") and dotted in MODULES else dotted.split(".")[0]


GRAPH = {name: imports(name) for name in MODULES}


def under(name: str, *packages: str) -> bool:
    return any(name == f"posttrain.{p}" or name.startswith(f"posttrain.{p}.") for p in packages)


def edges(source: str, *targets: str) -> list[str]:
    return sorted(f"{a} -> {b}" for a in GRAPH if under(a, source) for b in GRAPH[a] if under(b, *targets))


def test_the_graph_sees_lazy_imports():
    # the loop imports the stages inside functions: if those were missed, every rule below would be blind
    assert {"posttrain.stages.sample", "posttrain.stages.rm", "posttrain.stages.ppo"} <= GRAPH[
        "posttrain.pipelines.loop"
    ]
    assert "torch" in GRAPH["posttrain.algorithms.ppo"]


def test_algorithms_import_only_torch_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"torch", "__future__"}
    bad = sorted(
        f"{a} -> {b}"
        for a in GRAPH
        if under(a, "algorithms")
        for b in GRAPH[a]
        if b not in allowed and not under(b, "algorithms")
    )
    assert not bad, bad


def test_serving_and_labeling_never_import_training_code():
    bad = edges("serving", "stages", "training", "pipelines") + edges(
        "labeling", "stages", "training", "pipelines"
    )
    assert not bad, bad


def test_serving_and_labeling_never_import_each_other():
    bad = edges("serving", "labeling") + edges("labeling", "serving") + edges("web", "serving", "labeling")
    assert not bad, bad


def test_web_never_imports_training_code():
    bad = edges("web", "stages", "training", "pipelines")
    assert not bad, bad


def test_evaluation_never_imports_stages_or_pipelines():
    bad = edges("evaluation", "stages", "pipelines")
    assert not bad, bad


def test_no_stage_imports_another_stage():
    bad = [e for e in edges("stages", "stages") if e.split(" -> ")[1] != "posttrain.stages"]
    assert not bad, bad


def test_training_code_never_imports_pipelines_or_the_command_line():
    bad = edges("stages", "pipelines", "cli", "commands") + edges(
        "training", "stages", "pipelines", "cli", "commands"
    )
    assert not bad, bad


def test_no_import_circle():
    # a package's __init__ that imports its own submodules is not a circle in use: those edges are left out
    graph = {
        a: {b for b in bs if b in GRAPH and not (a != "posttrain" and b.startswith(a + "."))}
        for a, bs in GRAPH.items()
    }
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            circle = visit(node)
            assert circle is None, " -> ".join(circle)
