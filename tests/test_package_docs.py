"""Package docstrings are maps: every module a package's docstring names must exist.

A name in double backquotes (``fit``, ``pipeline.export_run``, ``edgecls.runtime``) counts
when it is a plain dotted identifier; it must be a module of that package (or a name the
package's ``__init__`` defines or imports), or a module of edgecls when spelled in full.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecls"
QUOTED = re.compile(r"``([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)``")


def _module_exists(dotted: str, root: Path = PACKAGE.parent) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _names_defined(init: Path) -> set[str]:
    """Names an ``__init__.py`` binds: defs, classes, assignments and imports."""
    names = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names.update(ast.literal_eval(node.value))  # lazy names served by __getattr__
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def missing_modules(init: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Names in ``init``'s docstring that are neither a module nor a name it binds."""
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    package = ".".join(init.parent.relative_to(root).parts)
    bound = _names_defined(init)
    missing = []
    for name in QUOTED.findall(docstring):
        head = name.split(".")[0]
        if name.startswith("edgecls."):
            dotted = name.split(".")
            top_init = root / "edgecls" / "__init__.py"
            if len(dotted) == 2 and top_init.is_file() and dotted[1] in _names_defined(top_init):
                continue
            if not any(_module_exists(".".join(dotted[:n]), root) for n in range(len(dotted), 1, -1)):
                missing.append(name)
        elif head not in bound and not _module_exists(f"{package}.{head}", root):
            missing.append(name)
    return missing


def test_package_docstrings_name_only_existing_modules() -> None:
    stale = {str(init.relative_to(PACKAGE.parent)): missing_modules(init)
             for init in sorted(PACKAGE.glob("*/__init__.py"))}
    assert not {k: v for k, v in stale.items() if v}, f"docstrings name missing modules: {stale}"


def test_the_check_sees_a_missing_module(tmp_path: Path) -> None:
    init = tmp_path / "edgecls" / "train" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text('"""``fit`` trains, ``gone`` is gone, ``edgecls.nothere``."""\n'
                    "from edgecls.train.fit import fit\n", encoding="utf-8")
    assert missing_modules(init, tmp_path) == ["gone", "edgecls.nothere"]
