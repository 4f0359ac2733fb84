"""The package's layers: every import (module level and inside functions) goes down, never up,
and no group of modules imports itself round a cycle. Read from the source, nothing is imported."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cryogeom"

#: the layers, bottom first: a part may import only parts of lower layers (and itself)
LAYERS = [
    {"cryogeom", "errors"},
    {"files", "cpu"},
    {"imaging"},
    {"physics", "structure"},
    {"particles", "losses", "metrics", "run_dir", "examples"},
    {"model", "simulate", "reconstruct"},
    {"train"},
    {"analysis"},
    {"evaluate"},
    {"cli"},
    {"__main__"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """'cryogeom.train.loop' -> 'train'; 'cryogeom.files' -> 'files'; 'cryogeom' -> 'cryogeom'."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported cryogeom module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    module = module_name(path)
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative import
                    anchor = module.split(".")[: len(module.split(".")) - child.level + (path.name == "__init__.py")]
                    base = ".".join(anchor + ([base] if base else []))
                if base.startswith("cryogeom"):
                    # 'from cryogeom import files' imports the module cryogeom.files
                    names = [f"{base}.{a.name}" if base == "cryogeom" and (PACKAGE / f"{a.name}.py").exists() else base for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names if a.name.startswith("cryogeom")]
            found.extend((n, child.lineno, inside) for n in names)
            visit(child, inside)

    visit(tree, False)
    return found


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {part_of(module_name(p)) for p in source_files()}
    assert parts <= set(LAYER), f"parts without a layer: {sorted(parts - set(LAYER))}"


def test_imports_go_down_the_layers():
    upward = []
    for path in source_files():
        source = part_of(module_name(path))
        for target, line, _ in imports(path):
            target_part = part_of(target)
            if target_part != source and LAYER[target_part] >= LAYER[source]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {target} (layer {LAYER[target_part]} >= {LAYER[source]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules():
    graph = defaultdict(set)
    modules = {module_name(p) for p in source_files()}
    for path in source_files():
        for target, _, _ in imports(path):
            # 'from cryogeom.train import inference' names a module; 'from cryogeom.train.loop import X' too
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module_name(path):
                graph[module_name(path)].add(target)
    # Tarjan's strongly connected components: a component of more than one module is a cycle.
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
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
                cycles.append(sorted(component))

    for v in sorted(modules):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_package_imports_inside_functions_only_in_the_command_line():
    """Outside cli/ (where deferring imports keeps ``cryogeom --help`` fast) a module imports the
    package's other modules at its top, where the layers can be read."""
    deferred = [f"{p.relative_to(PACKAGE)}:{line} {target}" for p in source_files() if part_of(module_name(p)) not in ("cli", "__main__")
                for target, line, inside in imports(p) if inside]
    assert not deferred, "\n".join(deferred)


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path, monkeypatch):
    """The walker itself: a planted upward import and a planted cycle are found."""
    fake = tmp_path / "cryogeom"
    (fake / "imaging").mkdir(parents=True)
    (fake / "train").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "imaging" / "__init__.py").write_text("")
    (fake / "train" / "__init__.py").write_text("")
    (fake / "imaging" / "a.py").write_text("def f():\n    from cryogeom.train.b import g\n")
    (fake / "train" / "b.py").write_text("from cryogeom.imaging.a import f\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="imaging/a.py:2 imports cryogeom.train.b"):
        test_imports_go_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle_between_modules()
    with pytest.raises(AssertionError, match="imaging/a.py:2 cryogeom.train.b"):
        test_package_imports_inside_functions_only_in_the_command_line()
