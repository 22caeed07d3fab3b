"""The library's shape, as docs/library.md states it: short functions, no imports inside functions, and
no import cycles between modules."""
import ast
from pathlib import Path

import pytest

import multitune_lib

PACKAGE = Path(multitune_lib.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 40
# The architecture table of docs/library.md, top to bottom: a module imports only from its own row or the rows above.
LAYERS = [
    ["errors", "paths", "env"],
    ["store.files", "store"],  # the bare packages `store` and `core` hold only a docstring
    ["core.registry", "core.config", "core.backbone", "core.l2sp", "core.method", "core"],
    ["backbones"],
    ["data"],
    ["methods"],
    ["store.checkpoint", "store.results"],
    ["core.trainer", "core.fit"],
    ["study"],
    ["tools"],
    [""],  # the package itself
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def imported(path: Path, tree: ast.Module) -> set[str]:
    """Library modules that `path` imports at module level (relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + (node.module.split(".") if node.module else []))
            if node.module:  # `from . import x` imports x, not the package it sits in
                out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("multitune_lib")}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_fit_on_a_screen_and_import_nothing(path):
    tree = ast.parse(path.read_text())
    for fn in functions(tree):
        lines = fn.end_lineno - fn.lineno + 1
        assert lines <= MAX_LINES, f"{path.name}:{fn.lineno} {fn.name} is {lines} lines, over {MAX_LINES}"
        inner = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not inner, f"{path.name}:{fn.lineno} {fn.name} imports inside a function"


def layer(module: str) -> int:
    name = module.removeprefix("multitune_lib").removeprefix(".")
    exact = [i for i, row in enumerate(LAYERS) if name in row]
    if exact:
        return exact[0]
    for i, row in enumerate(LAYERS):
        if any(name.startswith(p + ".") for p in row if p):
            return i
    raise AssertionError(f"{module} is in no layer of the architecture table in docs/library.md")


def import_graph() -> dict[str, set[str]]:
    names = {module_name(p): p for p in MODULES}
    return {m: {d for d in imported(p, ast.parse(p.read_text())) if d in names and d != m} for m, p in names.items()}


def test_modules_import_only_their_own_layer_or_those_above():
    for module, deps in import_graph().items():
        for dep in deps:
            if module.endswith("__main__") or dep.startswith(module + "."):
                continue  # entry points reach down to the CLI; a package's __init__ gathers its own modules
            assert layer(dep) <= layer(module), f"{module} (layer {layer(module)}) imports {dep} ({layer(dep)})"


def test_no_import_cycles():
    graph = import_graph()
    # A package's __init__ importing its own submodules is how packages are built, not a cycle.
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m, trail):
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(trail + [m, d])
            if d not in state:
                visit(d, trail + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert len(graph) > 30  # the walk saw the whole library
