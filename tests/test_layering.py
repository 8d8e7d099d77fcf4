"""The layer order of the package (docs/architecture.md): a module imports only its own
layer or lower ones, and terminal rendering (rich) stays in ``edgecls/cli`` and the
presentation room both the CLI and the Python API use, ``edgecls/present``.

Imports are read with ``ast`` (nothing is imported), function-level imports included: a
lazy import upward is still a dependency upward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgecls"

# Lowest first; the same order as docs/architecture.md.
LAYERS: list[set[str]] = [
    {"errors", "atomic", "registry", "config", "resources", "formats", "metrics", "stats",
     "rundir", "digest", "build_info"},
    {"runtime"},
    {"live"},
    {"data"},
    {"models"},
    {"train", "optimize", "export"},
    {"bench", "explain", "remote"},
    {"review", "tune"},  # the labelling page (above explain); the search driving train/export/bench
    {"present"},  # progress bars and lines shared by the CLI and the Python API
    {"api"},  # the Python API: the façade the CLI is a thin layer over
    {"cli", "__main__"},
]
# Modules that may draw on the terminal (or in a notebook) with rich.
RENDERING = {"cli", "present"}
# Where rich still sits outside cli/ (each one a known, named exception to move).
RENDERING_EXCEPTIONS: set[str] = set()


def _layer_of(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"edgecls.{top} has no layer: add it to LAYERS and docs/architecture.md")


def _top(module: str) -> str | None:
    """'edgecls.data.split' -> 'data'; None for the package itself or a foreign module."""
    parts = module.split(".")
    if parts[0] != "edgecls" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file of the package at ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, module))
            if module == "edgecls":  # from edgecls import metrics
                found.extend((node.lineno, f"edgecls.{alias.name}") for alias in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


def _source_top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_module_imports_only_its_own_layer_or_lower() -> None:
    upward = []
    for path in _modules():
        own = _source_top(path)
        own_layer = _layer_of(own)
        for line, module in _imports(path):
            top = _top(module)
            if top is None or top == own or top == "__init__":
                continue
            if _layer_of(top) > own_layer:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_terminal_rendering_only_in_cli() -> None:
    outside = []
    for path in _modules():
        if _source_top(path) in RENDERING:
            continue
        if any(module == "rich" or module.startswith("rich.") for _, module in _imports(path)):
            outside.append(str(path.relative_to(PACKAGE.parent)))
    assert sorted(outside) == sorted(RENDERING_EXCEPTIONS), \
        "rich outside edgecls/cli and edgecls/present (render there, pass plain data or callbacks down)"


def test_the_checker_sees_upward_imports(tmp_path: Path) -> None:
    """The checker itself: relative, absolute and package-level upward imports are all seen."""
    fake = tmp_path / "edgecls" / "runtime" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..export import pipeline\nimport edgecls.cli\n"
                    "def f():\n    from edgecls import bench\n", encoding="utf-8")
    tops = [_top(module) for _, module in _imports(fake, tmp_path / "edgecls")]
    assert {"export", "cli", "bench"} <= set(tops)
    assert all(_layer_of(top) > _layer_of("runtime") for top in ("export", "cli", "bench", "live"))
    assert _layer_of("runtime") < _layer_of("live") < _layer_of("data")
    with pytest.raises(AssertionError, match="no layer"):
        _layer_of("newpackage")


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/helpers/ (or conftest fixtures), never in a test module."""
    tests = Path(__file__).resolve().parent
    found = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(tests)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0].startswith("test_") or name == "conftest"]
    assert not found, "\n".join(found)


def _private_uses(path: Path) -> list[str]:
    """Private names a script takes from edgecls: ``from edgecls.x import _y`` and
    ``obj._y`` on anything but ``self``/``cls``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgecls"):
            found += [f"{node.lineno}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def test_benchmarks_use_only_public_names() -> None:
    """Benchmarks measure the library as a user gets it: a renamed private helper must not break them."""
    scripts = sorted((PACKAGE.parent / "benchmarks").glob("*.py"))
    found = {str(p.relative_to(PACKAGE.parent)): uses for p in scripts if (uses := _private_uses(p))}
    assert not found, found
