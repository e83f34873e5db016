"""The tree's layout: no import circle anywhere, and each role imports only what its image installs.

Every ``import`` in every module counts, also those inside functions (a lazy import is still a
dependency); ``from . import x`` counts as importing the submodule ``x`` when there is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    """Every module of the workspace's ``hallq`` packages: dotted name -> file."""
    found = {}
    for src in sorted(ROOT.glob("*/src/hallq")):
        for path in src.rglob("*.py"):
            rel = path.relative_to(src.parent).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            # ``from pkg import module`` imports that module; ``from pkg import name`` the package itself
            targets = subs if all(t in modules for t in subs) else [mod, *subs]
        else:
            continue
        for t in targets:
            # the deepest module of the workspace that ``t`` names
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_controller():
    g = _graph()
    assert "hallq.controller.core.machine" in g
    assert "hallq.controller.core.state" in g["hallq.controller.core.dispatch"]
    assert "hallq.controller.db" in g["hallq.controller.storage"]


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_anywhere():
    assert _cycles(_graph()) == []


#: What the controller's pure core may import of the controller beyond itself (pure modules).
CORE_MAY_IMPORT = {"hallq.controller", "hallq.controller.config", "hallq.controller.haocp",
                   "hallq.controller.haocp.record"}
#: Modules that do IO or tell the time: never in a pure core.
IO_MODULES = {"sqlite3", "socket", "threading", "time", "asyncio", "subprocess", "paho", "httpx", "pygame",
              "gpiozero", "serial", "evdev", "escpos"}


def _top_level_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_the_controller_does_not_import_the_demo():
    for name, deps in _graph().items():
        if name.startswith("hallq.controller"):
            assert not any(d.startswith("hallq.demo") for d in deps), (name, deps)


def test_the_controller_core_imports_only_pure_modules():
    modules = _modules()
    g = _graph()
    core = [n for n in g if n.startswith("hallq.controller.core")]
    assert len(core) >= 6
    for name in core:
        bad = {d for d in g[name] if not d.startswith("hallq.controller.core") and d.startswith("hallq.controller")
               and d not in CORE_MAY_IMPORT}
        assert not bad, (name, bad)
        assert not _top_level_imports(modules[name]) & IO_MODULES, name
    for name in CORE_MAY_IMPORT - {"hallq.controller"}:
        assert not _top_level_imports(modules[name]) & IO_MODULES, name
        assert all(d in CORE_MAY_IMPORT or d.startswith("hallq.shared") for d in g[name]), (name, g[name])
