"""Size limits that keep src/opsrun readable: no module over 400 lines, no function of 60 lines or more, and
every module opening with a docstring that says its job. What is still over a limit is listed below with
its size today: the lists may only shrink (an entry that grows, or a new one, fails; so does an entry that
is back under the limit and still listed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "opsrun"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 59  # "under 60"

# Still over a limit, with their size today (none at present): module -> lines.
LONG_MODULES: dict[str, int] = {}
# function (module:name) -> lines.
LONG_FUNCTIONS: dict[str, int] = {}


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def measured() -> tuple[dict[str, int], dict[str, int]]:
    long_modules, long_functions = {}, {}
    for path in modules():
        name = path.relative_to(SRC).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions[f"{name}:{node.name}"] = max(lines, long_functions.get(f"{name}:{node.name}", 0))
    return long_modules, long_functions


@pytest.mark.parametrize(("found", "allowed"), [(0, LONG_MODULES), (1, LONG_FUNCTIONS)], ids=["modules", "functions"])
def test_nothing_new_is_over_the_limit_and_nothing_listed_grew(found, allowed):
    over = measured()[found]
    grew = {k: (allowed.get(k), v) for k, v in over.items() if v > allowed.get(k, 0)}
    assert grew == {}, "over the limit (listed, now): split it"
    fixed = sorted(set(allowed) - set(over))
    assert fixed == [], "back under the limit: remove it from the list"


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_every_module_opens_with_a_docstring(path):
    tree = ast.parse(path.read_text())
    doc = ast.get_docstring(tree)
    assert doc and doc.splitlines()[0].strip(), "say the module's one job in its first line"
