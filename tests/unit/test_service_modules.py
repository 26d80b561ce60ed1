"""The services folder reads as the feature list (issue 26): small modules, each saying what
it owns, none importing a sibling late to dodge an import circle, none narrowing with assert."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.figures import report

SERVICES = Path(__file__).resolve().parents[2] / "chalicelib" / "services"
MAX_LINES = 600
# Split by the other branches of issue 26 (orders, partners: the order-events seam;
# customers, erasure, intake: their own split): checked once those are merged.
NOT_YET_SPLIT = {"orders.py", "partners.py", "customers.py", "erasure.py", "intake.py"}
# Late imports the other branches remove: orders and delivery (the order-events seam),
# intake and takeout (their split).
LATE_IMPORTS_PENDING = {"orders.py", "delivery.py", "intake.py", "takeout.py"}
# customers.py's one assert goes with its split.
ASSERTS_PENDING = {"customers.py"}


def _modules() -> list[Path]:
    return sorted(SERVICES.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(SERVICES).as_posix()


def test_no_service_module_is_over_600_lines():
    sizes = {_name(p): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    checked = {name: size for name, size in sizes.items() if name not in NOT_YET_SPLIT}
    over = sorted(name for name, size in checked.items() if size > MAX_LINES)
    largest = max(checked, key=checked.__getitem__)
    report(
        "service-modules",
        require=["modules"],
        modules=len(checked),
        largest=f"{largest}:{checked[largest]}",
        over_600=len(over),
    )
    assert over == [], {name: sizes[name] for name in over}


def test_every_service_module_opens_with_what_it_owns():
    """A docstring whose first line is the one-line summary (packages' ``__init__`` too)."""
    missing = []
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(_name(path))
    assert missing == []


def _late_service_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module:
                names = [inner.module] + [f"{inner.module}.{a.name}" for a in inner.names]
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            else:
                continue
            if any(n.startswith("chalicelib.services") for n in names):
                found.append(f"{_name(path)}:{inner.lineno} in {node.name}()")
    return sorted(set(found))


def test_no_service_imports_a_sibling_inside_a_function():
    """Heavy third-party libraries may load late (cold start); a sibling service may not."""
    late = [
        line
        for path in _modules()
        if _name(path) not in LATE_IMPORTS_PENDING
        for line in _late_service_imports(path)
    ]
    assert late == []


def test_no_service_narrows_types_with_assert():
    """``python -O`` drops asserts: a check that matters raises, a type is narrowed by ``if``."""
    found = [
        f"{_name(path)}:{node.lineno}"
        for path in _modules()
        if _name(path) not in ASSERTS_PENDING
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []
