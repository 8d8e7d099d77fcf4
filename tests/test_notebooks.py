"""The notebooks of ``examples/`` run from top to bottom (in order: the second benches what
the first exported) and are committed without outputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_two_notebooks_committed_without_outputs() -> None:
    assert [n.name for n in NOTEBOOKS] == ["01_train_export_run.ipynb", "02_bench_and_report.ipynb"]
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code and all(not c["outputs"] and c["execution_count"] is None for c in code), notebook.name


@pytest.mark.slow  # trains a small MobileNet for one epoch, exports, benches: 1.5 CPU-min (6 min on a busy box)
def test_the_notebooks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")]))
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, tmp_path)
        book = nbformat.read(tmp_path / notebook.name, as_version=4)
        client = NotebookClient(book, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    demo = tmp_path / "notebook-demo"
    assert (demo / "run" / "export" / "manifest.json").is_file()
    assert json.loads((demo / "bench.json").read_text())["records"]
    assert "<svg" in (demo / "report.html").read_text()
