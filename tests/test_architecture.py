"""The shape of the package, checked: every module imports, no import cycle among qa modules, the
terminal libraries only in qa/cli/, command modules apart, no module over 400 lines, no fake in qa/.

The import graph is read with `ast` from the source. An edge is any `import` or `from ... import`
of a qa module, wherever it stands: at module level, inside a function (qa imports heavy
libraries lazily), or under `if TYPE_CHECKING:`. `from pkg import name` is an edge to the module
`pkg.name` when there is one, else to `pkg`. A package's `__init__` running before its submodules
is Python's doing, not an edge.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qa"
TERMINAL = {"typer", "rich", "prompt_toolkit", "click"}
MAX_LINES = 400
CLI_HELPERS = {
    "qa.cli._shared",
    "qa.cli._help",
    "qa.cli.views",
    "qa.cli.documents",
    "qa.cli._chat_state",
    "qa.cli._chat_terminal",
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, wherever it stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.append((child if child in MODULES else target, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m, _ in _imports(name, path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "qa.__main__"))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_cycle_among_qa_modules():
    graph = _graph()
    assert sum(len(v) for v in graph.values()) > 100  # the graph was read
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_command_line_imports_terminal_libraries():
    offenders = [
        f"{name}:{line} imports {module}"
        for name, path in MODULES.items()
        if not name.startswith("qa.cli")
        for module, line in _imports(name, path)
        if module.split(".")[0] in TERMINAL
    ]
    assert offenders == []


def test_command_modules_import_only_the_shared_modules_and_the_library():
    """A command module never imports another command module, nor qa/cli/__init__.py that registers them."""
    commands = {n for n in MODULES if n.startswith("qa.cli.") and n not in CLI_HELPERS}
    assert {"qa.cli.ask", "qa.cli.chat", "qa.cli.evaluate"} <= commands
    offenders = [
        f"{name} imports {module}"
        for name in sorted(commands | CLI_HELPERS)
        for module, _ in _imports(name, MODULES[name])
        if module == "qa.cli" or module in commands
    ]
    assert offenders == []


def test_nothing_but_the_command_line_imports_it():
    """The library never imports the command line (`python -m qa`, qa/__main__.py, runs it)."""
    offenders = [
        f"{name} imports {module}"
        for name, path in MODULES.items()
        if not name.startswith("qa.cli") and name != "qa.__main__"
        for module, _ in _imports(name, path)
        if module.startswith("qa.cli")
    ]
    assert offenders == []


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_test_double_in_the_package():
    text = {name: path.read_text() for name, path in MODULES.items()}
    doubles = re.compile(r"class Fake|QA_FAKE|class Extractive|isinstance\([^)]*Extractive")
    assert [n for n, t in text.items() if doubles.search(t)] == []


def test_the_plugin_setting_is_read_by_the_composition_root_only():
    readers = [name for name, path in MODULES.items() if "plugins" in path.read_text() and name != "qa.settings"]
    assert readers == ["qa.library"]


def test_the_wheel_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert packages <= listed and "qa.prompt_files" in listed
