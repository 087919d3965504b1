"""The layout stays a layout: no import cycles between modules, and no private name (one with a
leading underscore) used outside the module that defines it. Both are read from the source with
`ast`, imports inside functions and under `TYPE_CHECKING` included: a lazy import is still a
dependency, and a cycle hidden in a function is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crs", "policy", "knowledge_graph", "simulators", "ui")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to (a module, or a name inside one), None for others."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, module: str, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    out.append((target, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in modules else _resolve(base, modules)
                if target:
                    out.append((target, "" if full in modules else alias.name, node.lineno))
    return out


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for target, _, _ in _imports(path, module, modules):
            # A package's __init__ that re-exports its own modules is not a dependency on itself.
            if target != module and not target.startswith(module + "."):
                graph.add_edge(module, target)
    cycles = [
        sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1
    ]
    assert not cycles, "modules that import each other, directly or around a cycle:\n" + "\n".join(
        ", ".join(component) for component in cycles
    )


def test_no_private_names_cross_modules() -> None:
    modules = _modules()
    files = dict(modules)
    for folder in ("tests", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).glob("*.py")):
            files[f"{folder}.{path.stem}"] = path
    crossings = []
    for module, path in files.items():
        for target, name, line in _imports(path, module, modules):
            if name.startswith("_") and not name.startswith("__") and target != module:
                crossings.append(f"{path.relative_to(ROOT)}:{line} imports {name} from {target}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_modules = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if _resolve(alias.name, modules)
        } | {  # `from package import module`
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
            if f"{node.module}.{alias.name}" in modules
        }
        for node in ast.walk(tree):  # module._private, through `import package.module`
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                owner = ast.unparse(node.value)
                if owner in imported_modules:
                    crossings.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {owner}.{node.attr}")
    assert not crossings, "private names used outside their module:\n" + "\n".join(crossings)


def test_the_checks_see_what_they_should() -> None:
    """Guard against a check that passes because it looks at nothing."""
    modules = _modules()
    assert {"crs.env", "crs.settings", "crs.cli.common", "policy.belief", "ui.app"} <= set(modules)
    edges = {
        (module, target)
        for module, path in modules.items()
        for target, _, _ in _imports(path, module, modules)
    }
    assert ("crs.evaluation.runner", "crs.env") in edges
    assert ("crs.chat", "crs.language.reading") in edges  # a lazy import inside a method counts
    assert len(edges) > 150
