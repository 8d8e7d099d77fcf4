"""``edgecls.rundir`` is the contract: every path inside a run or an export folder comes
from ``RunDir`` or ``ExportDir``, none is joined by hand elsewhere in the package."""

from __future__ import annotations

import ast
from pathlib import Path

from edgecls.rundir import ExportDir, RunDir

PACKAGE = Path(__file__).resolve().parents[1] / "edgecls"


def _layout_names() -> set[str]:
    """Every file or folder name the two layouts define (``export``, ``manifest.json``...)."""
    names = set()
    for layout in (RunDir(Path("R")), ExportDir(Path("E"))):
        for attribute, value in vars(type(layout)).items():
            if isinstance(value, property):
                path = getattr(layout, attribute)
                path = path.root if isinstance(path, ExportDir) else path
                names.update(path.relative_to(layout.root).parts)
    return names


def _joined_by_hand(path: Path, names: set[str]) -> list[str]:
    """``something / "name"`` with a layout name, outside rundir.py."""
    return [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} / {node.right.value!r}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant) and node.right.value in names]


def test_layout_names_are_joined_only_in_rundir() -> None:
    names = _layout_names()
    assert {"export", "manifest.json", "prune_report.json", "best.keras", "backup"} <= names
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.name != "rundir.py"
             for hit in _joined_by_hand(path, names)]
    assert not found, "use RunDir / ExportDir:\n" + "\n".join(found)


def test_a_runs_export_folder_and_its_files() -> None:
    run = RunDir(Path("runs/flowers"))
    assert run.export == ExportDir(Path("runs/flowers/export"))
    assert run.export.manifest == Path("runs/flowers/export/manifest.json")
    assert run.export.predictions.name == ExportDir.PREDICTIONS == "predictions.json"
    assert run.export.changes_page.name == "changes.html"
    assert run.prune_report == Path("runs/flowers/prune_report.json")
    assert run.backup == Path("runs/flowers/checkpoints/backup")
