"""mailbot's own import graph has no cycle.

The graph is built from the source, not from what happens to be imported at run time: every
``import mailbot.x`` and ``from mailbot.x import y`` (relative ones too) in every module, at module
level, inside functions and under ``if TYPE_CHECKING:`` alike. A function-level import is where a
cycle hides: it postpones the failure, it does not remove it (issue 19: ``cli`` imported its
command modules inside ``try … except ImportError`` because they imported ``cli``).

There is no allowlist: the last known cycles (config <-> config_alerts, mails <-> summaries) were
broken, so any cycle fails.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import mailbot

ROOT = Path(mailbot.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """Every mailbot module ``name`` imports, with the line that imports it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _existing(alias.name, known)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # `from mailbot.entrypoints import cli` imports the module cli, not just its package.
                full = f"{base}.{alias.name}"
                target = full if full in known else _existing(base, known)
                if target is not None:
                    yield target, node.lineno


def _existing(dotted: str, known: Mapping[str, Path]) -> str | None:
    """The module of ours that importing ``dotted`` runs last (the longest known prefix)."""
    if dotted != "mailbot" and not dotted.startswith("mailbot."):
        return None
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}."""
    known = modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imported_modules(name, path, known):
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def strongly_connected(graph: Mapping[str, Mapping[str, int]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iteratively (the graph is small, but recursion limits are not a test's business)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def one_cycle(graph: Mapping[str, Mapping[str, int]], component: frozenset[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, to name the cycle."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node]):
            if child == start:
                return [*paths[node], start]
            if child in component and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"{sorted(component)} is not a cycle")


def describe(graph: Mapping[str, Mapping[str, int]], component: frozenset[str]) -> str:
    cycle = one_cycle(graph, component)
    steps = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle))
    return f"{steps} -> {cycle[-1]}\n    all modules of the cycle: {', '.join(sorted(component))}"


def test_the_graph_is_built_from_every_module_and_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "mailbot.entrypoints.cli.main" in graph
    assert "mailbot.bootstrap" in graph["mailbot.entrypoints.cli.common"]
    # A cycle built through a function-level import is found.
    looped = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert strongly_connected(looped) == [frozenset({"a", "b", "c"})]
    assert one_cycle(looped, frozenset({"a", "b", "c"})) == ["a", "b", "c", "a"]


def test_the_entry_points_are_in_no_import_cycle() -> None:
    graph = import_graph()
    touching = [c for c in strongly_connected(graph) if any(m.startswith("mailbot.entrypoints") for m in c)]
    assert not touching, "import cycles through the entry points:\n" + "\n".join(describe(graph, c) for c in touching)


def test_mailbot_has_no_import_cycle() -> None:
    graph = import_graph()
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles in mailbot/:\n" + "\n".join(describe(graph, c) for c in cycles)
