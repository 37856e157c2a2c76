"""The package's import graph: no cycles, no upward imports, no imports inside functions except for optional
dependencies (and the command line, which imports a command's workflow when the command runs, so `--help` starts
in well under a second). Run it alone with ``python -m pytest tests/unit/test_architecture.py -q``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "medclass"

# Layers, bottom first: a module may import its own package and anything in a lower layer, never a higher one.
LAYERS = [
    {"errors", "utils", "_version"},
    {"config", "recipes", "evaluation"},
    {"tasks", "transforms", "run_folder"},
    {"data", "models"},
    {"training", "interpret", "reports"},
    {"runs"},
    {"search"},
    {"cli", "__main__", "__init__"},
]
# Third-party packages a function may import lazily: optional extras, and the readers of file formats that
# `import medclass` must not need (STYLE: "optional dependencies stay optional").
OPTIONAL = {"optuna", "sqlalchemy", "onnx", "onnxruntime", "pydicom", "nibabel", "medmnistc", "psycopg2",
            "acsconv"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # `from . import x` names submodules
    return [f"{target}.{a.name}" for a in node.names] + [target]


def _imports(module: str, path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(medclass modules imported at module level, [(line, name)] of imports inside functions)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    top, inner = set(), []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = _resolve(module, node, is_package)
        inside = any(isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)) for p in _parents(tree, node))
        for n in names:
            if inside:
                inner.append((node.lineno, n))
            elif n.startswith("medclass"):
                top.add(n)
    return top, inner


def _parents(tree: ast.AST, target: ast.AST) -> list[ast.AST]:
    chain: list[ast.AST] = []

    def walk(node, stack):
        if node is target:
            chain.extend(stack)
            return True
        return any(walk(child, stack + [node]) for child in ast.iter_child_nodes(node))

    walk(tree, [])
    return chain


MODULES = _modules()
GRAPH = {m: {t for t in _imports(m, p)[0] if t in MODULES and t != m} for m, p in MODULES.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: its package {top!r} is in no layer of tests/unit/test_architecture.py")


def test_no_import_cycles():
    seen, on_stack, cycles = set(), [], []

    def visit(m):
        if m in on_stack:
            cycles.append(on_stack[on_stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_stack.append(m)
        for t in sorted(GRAPH[m]):
            if t != m.rsplit(".", 1)[0] or not MODULES[t].name == "__init__.py":  # a module and its package
                visit(t)
        on_stack.pop()

    for m in sorted(GRAPH):
        visit(m)
    real = [c for c in cycles if not all(c[0].startswith(x) or x.startswith(c[0]) for x in c)]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_no_upward_imports():
    bad = [f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets
           if _layer(t) > _layer(m) and m != "medclass"]
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_imports_inside_functions_only_for_optional_dependencies_or_the_command_line():
    bad = []
    for m, p in MODULES.items():
        if m.startswith("medclass.cli"):
            continue
        for line, name in _imports(m, p)[1]:
            root = name.split(".")[0]
            if root == "medclass" or root not in OPTIONAL:
                bad.append(f"{p.relative_to(ROOT.parent)}:{line}: {name}")
    assert not bad, "imports inside functions:\n" + "\n".join(sorted(set(bad)))


@pytest.mark.parametrize("package", ["reports", "evaluation", "data", "transforms", "models"])
def test_lower_layers_never_reach_the_workflows(package):
    reach = {t for m, targets in GRAPH.items() if m.startswith(f"medclass.{package}") for t in targets}
    assert not {t for t in reach if t.startswith(("medclass.runs", "medclass.cli", "medclass.search"))}
