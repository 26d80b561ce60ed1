"""The structure the next features build on (issue 26), checked on the code itself.

import-linter (`make lint`) keeps the layers and the services acyclic; these
tests add what a contract cannot say: no import circle anywhere under
chalicelib/ (grimp's graph, strongly connected components), no service
reaching for another service inside a function, no module using another's
private names, no `assert` doing a type's work, and service files that own
one thing (a size cap).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp

from tests.figures import report

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
SERVICES = PACKAGE / "services"
MAX_SERVICE_LINES = 600
TARGET_SERVICE_LINES = 500


def _sources() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield dotted.removesuffix(".__init__"), path, ast.parse(path.read_text(encoding="utf-8"))


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            self_import = module in graph.find_modules_directly_imported_by(module)
            if len(component) > 1 or self_import:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def _imported_names(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The dotted modules (or module.name) an import statement names, relative ones resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = module.split(".")[: -node.level]
        base = ".".join([*parent, base] if base else parent)
    return [f"{base}.{alias.name}" for alias in node.names]


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_import_circle_anywhere_under_chalicelib():
    # Imports under `if TYPE_CHECKING:` never run; every other one, late or not, counts.
    graph = grimp.build_graph("chalicelib", exclude_type_checking_imports=True)
    cycles = _cycles(graph)
    report("import_graph", modules=len(graph.modules), cycles=len(cycles))
    assert len(graph.modules) > 50, "the graph did not see the package"
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_a_planted_circle_is_found():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_services_import_services_at_the_top_only():
    late = []
    for module, path, tree in _sources():
        if not module.startswith("chalicelib.services"):
            continue
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = _imported_names(node, module)
                    if any(n.startswith("chalicelib.services") for n in names):
                        late.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not late, f"function-level imports of services (import at the top): {late}"


def test_no_module_uses_another_modules_private_names():
    """`from x import _name` and `x._name` on an imported chalicelib module are both refused.

    (ruff's PLC2701 sees the first form only.)
    """
    found = []
    for module, path, tree in _sources():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias, name in zip(node.names, _imported_names(node, module), strict=True):
                    if not name.startswith("chalicelib."):
                        continue
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
                    if _is_module(name):
                        aliases[alias.asname or alias.name] = name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("chalicelib.") and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}"
                )
    assert not found, "\n".join(found)


def test_no_assert_narrows_types_in_the_app():
    """`python -O` drops asserts: a check that guards behaviour must be a real one."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for _module, path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
    ]
    assert not found, found


def test_nothing_under_chalicelib_imports_the_app_module():
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for module, path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(n == "app" or n.startswith("app.") for n in _imported_names(node, module))
    ]
    assert not found, found


def test_every_service_file_owns_one_thing():
    """At most 600 lines (500 is the aim), opening with the line that says what it owns."""
    sizes: dict[str, int] = {}
    undocumented: list[str] = []
    for path in sorted(SERVICES.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(SERVICES))
        sizes[name] = text.count("\n")
        if text.strip() and not ast.get_docstring(ast.parse(text)):
            undocumented.append(name)
    largest = max(sizes, key=sizes.__getitem__)
    over = sorted(name for name, lines in sizes.items() if lines > MAX_SERVICE_LINES)
    report(
        "service-modules",
        require=["modules"],
        modules=len(sizes),
        largest=f"{largest}:{sizes[largest]}",
        over_target=sum(lines > TARGET_SERVICE_LINES for lines in sizes.values()),
        over_600=len(over),
        undocumented=len(undocumented),
    )
    assert not over, f"split by responsibility: {over}"
    assert not undocumented, f"no docstring saying what it owns: {undocumented}"
