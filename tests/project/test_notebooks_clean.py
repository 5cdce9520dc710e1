"""The notebooks in git stay clean: kernel python3, one cell tagged
parameters with profile/workspace, no stored outputs, no papermill metadata,
and no logic beyond calling the library (no def/class in code cells)."""
import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_all_nine_notebooks_are_there():
    """01-08 run in every workspace (once per fold under a fold protocol); 09_kfold_summary runs once after
    the folds, in the profile's own workspace (the k-fold summary: a step of the runner, not its own code)."""
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08", "09"]


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_library_name_a_notebook_uses_exists(path):
    """``from aulib.x import y`` and ``x.y`` on an imported aulib module resolve (the packages
    import none of their modules, so a name reached through a package fails only when a
    notebook runs that far: 08_predict once did, at the end of a 14-minute rehearsal)."""
    import ast
    import importlib
    import types

    nb = nbformat.read(path, 4)
    code = "\n".join(ln for c in nb.cells if c.cell_type == "code"
                     for ln in c.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    names, missing = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aulib"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
                else:
                    try:
                        names[alias.asname or alias.name] = importlib.import_module(f"{node.module}.{alias.name}")
                    except ModuleNotFoundError:
                        missing.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aulib"):
                    module = importlib.import_module(alias.name)
                    names[alias.asname or alias.name.split(".")[0]] = module if alias.asname else importlib.import_module("aulib")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = names.get(node.value.id)
            if isinstance(owner, types.ModuleType) and not hasattr(owner, node.attr):
                missing.append(f"{node.value.id}.{node.attr}")
    assert not missing, f"{path.name} uses names the library does not have: {missing}"



@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_in_the_form_jupyterlab_saves_it(path):
    """A committed notebook is what the save hook writes (else the first save would dirty a fresh clone)."""
    from aulib.notebook_form import strip

    text = path.read_text(encoding="utf-8")
    assert json.dumps(strip(json.loads(text)), indent=1, sort_keys=True, ensure_ascii=False) + "\n" == text


def _as_jupyterlab_saves(nb: dict) -> dict:
    """``nb`` after Run All in JupyterLab 4: outputs, counts, cell timings, widget state,
    the kernel's full language_info and its install-specific display name."""
    nb = json.loads(json.dumps(nb))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["execution_count"] = i + 1
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "ran\n"}]
            cell["metadata"]["execution"] = {"iopub.execute_input": "2026-12-07T05:00:00.000Z"}
            cell["metadata"]["scrolled"] = True
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    nb["metadata"]["language_info"] = {"codemirror_mode": {"name": "ipython", "version": 3}, "name": "python",
                                       "version": "3.11.7", "mimetype": "text/x-python"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def test_a_kit_notebook_run_and_saved_in_jupyterlab_stays_as_committed(tmp_path, monkeypatch):
    """Issue 35.6: Jupyter's file manager, with the setting scripts/setup.sh installs, saves a run kit
    notebook byte for byte as committed and keeps the run under runs/notebooks/; an edit is saved;
    a notebook of the user's own is saved with its outputs."""
    import shutil

    import asyncio

    from jupyter_server.serverapp import ServerApp

    from aulib.notebook_form import SERVER_CONFIG, install_server_config

    (tmp_path / "env" / "etc" / "jupyter").mkdir(parents=True)
    (tmp_path / "env" / "etc" / "jupyter" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"port": 8899}}))                   # a setting of the user's, kept
    installed = json.loads(install_server_config(tmp_path / "env").read_text())
    assert installed == {"ServerApp": {"port": 8899}, **SERVER_CONFIG}
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "env" / "etc" / "jupyter"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "user"))
    app = ServerApp()
    app.load_config_file()                                        # as the server reads its environment's config
    project = tmp_path / "project"
    shutil.copytree(NOTEBOOKS[0].parent / "profiles", project / "notebooks" / "profiles")
    committed = (NOTEBOOKS[0].parent / "07_tables.ipynb").read_text(encoding="utf-8")
    manager = ServerApp.contents_manager_class.default_value       # JupyterLab's (AsyncLargeFileManager)
    cm = manager(config=app.config, root_dir=str(project))
    assert cm.pre_save_hook is not None, "the server did not read the hook's setting"

    def save(model, path):
        out = cm.save(model, path)
        return asyncio.run(out) if asyncio.iscoroutine(out) else out
    ran = _as_jupyterlab_saves(json.loads(committed))
    save({"type": "notebook", "format": "json", "content": ran}, "notebooks/07_tables.ipynb")
    assert (project / "notebooks" / "07_tables.ipynb").read_text(encoding="utf-8") == committed
    last = json.loads((project / "runs" / "notebooks" / "07_tables.ipynb").read_text())
    assert [c["outputs"] for c in last["cells"] if c["cell_type"] == "code"][0][0]["text"] == "ran\n"
    ran["cells"][0]["source"] = "# edited"
    save({"type": "notebook", "format": "json", "content": ran}, "notebooks/07_tables.ipynb")
    saved = json.loads((project / "notebooks" / "07_tables.ipynb").read_text())
    assert "".join(saved["cells"][0]["source"]) == "# edited" and not any(c.get("outputs") for c in saved["cells"])
    save({"type": "notebook", "format": "json", "content": ran}, "mine.ipynb")
    assert any(c.get("outputs") for c in json.loads((project / "mine.ipynb").read_text())["cells"])
