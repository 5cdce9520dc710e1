"""The notebooks in git stay clean: kernel python3, one cell tagged
parameters with profile/workspace, no stored outputs, no papermill metadata,
and no logic beyond calling the library (no def/class in code cells)."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_all_eight_notebooks_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    nb = nbformat.read(path, 4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "profile = None" in params[0].source and "workspace = None" in params[0].source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored output"
            assert "papermill" not in cell.metadata
            lines = cell.source.splitlines()
            assert not any(ln.startswith(("def ", "class ")) for ln in lines), f"{path.name}: logic in a notebook"
