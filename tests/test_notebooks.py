"""The notebooks: stored without outputs, in sync with ``tools/build_notebooks.py``, and each runs top to bottom.

Execution uses nbclient with the current interpreter's kernel, from ``notebooks/`` as a student would, and fails
on the first cell that raises. Each notebook must finish within five minutes on a 2-core CPU (issue #6).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIME_LIMIT_S = 300


def _builder():
    return load_tool("build_notebooks")


def test_there_is_one_notebook_per_module():
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: run `python tools/build_notebooks.py`"


def test_notebooks_match_their_source():
    builder = _builder()
    assert sorted(builder.NOTEBOOKS) == [p.stem for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        stored = [c.source for c in nbformat.read(path, as_version=4).cells]
        built = [c.source for c in builder.build(path.stem, builder.NOTEBOOKS[path.stem]).cells]
        assert stored == built, f"{path.name} differs from tools/build_notebooks.py; rerun it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=TIME_LIMIT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
