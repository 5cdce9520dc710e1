"""The kit's notebooks stay as committed when a user runs and saves them in JupyterLab.

JupyterLab saves (and autosaves every two minutes) a notebook with its
outputs, execution counts, cell timings, widget state and the kernel's full
``language_info``, so Run All of the numbered notebooks would leave the clone
dirty. :func:`pre_save_hook` (Jupyter's ``ContentsManager.pre_save_hook``;
``scripts/setup.sh`` writes the setting into the environment's
``etc/jupyter/jupyter_server_config.json``) saves a kit notebook
(``NN_*.ipynb`` in a project's ``notebooks/`` folder, the one holding
``profiles/``) in its committed form and keeps the run, outputs and all, as
``runs/notebooks/<name>.ipynb`` (git-ignored; open it to see the last run).
An edited cell is saved as edited. Any other notebook is saved untouched.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .io import write_text

#: Cell metadata that running or viewing a notebook writes (JupyterLab, classic Notebook, papermill).
RUN_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "papermill", "trusted")
#: Notebook metadata that running a notebook writes.
RUN_NOTEBOOK_METADATA = ("widgets", "papermill", "vscode")
#: The kernelspec every kit notebook names (a kernel's display name differs between installs).
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: The kit's numbered notebooks.
KIT_NOTEBOOK = re.compile(r"\d\d_[A-Za-z0-9_]+\.ipynb")
#: Where a kit notebook's last run in JupyterLab is kept, relative to the project root.
LAST_RUNS = Path("runs") / "notebooks"
#: The server setting that installs the hook (scripts/setup.sh writes it).
#: (ContentsManager: the base of every contents manager, JupyterLab's default AsyncLargeFileManager included.)
SERVER_CONFIG = {"ContentsManager": {"pre_save_hook": "aulib.notebook_form.pre_save_hook"}}


def strip(nb: dict) -> dict:
    """The notebook ``nb`` (nbformat 4 as a dict) as committed: no outputs, counts or run metadata."""
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k not in RUN_NOTEBOOK_METADATA}
    if meta.get("kernelspec", {}).get("name") == KERNELSPEC["name"]:
        meta["kernelspec"] = dict(KERNELSPEC)
    if "language_info" in meta:
        meta["language_info"] = {"name": meta["language_info"].get("name", "python")}
    cells = []
    for cell in nb.get("cells", []):
        cell = {**cell, "metadata": {k: v for k, v in cell.get("metadata", {}).items()
                                     if k not in RUN_CELL_METADATA}}
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**nb, "metadata": meta, "cells": cells}


def kit_notebook(path: Path) -> bool:
    """Whether ``path`` is one of the kit's numbered notebooks in a project's ``notebooks/`` folder."""
    return bool(KIT_NOTEBOOK.fullmatch(path.name)) and (path.parent / "profiles").is_dir()


def pre_save_hook(model: dict, path: str, contents_manager, **kwargs) -> None:
    """Jupyter's pre-save hook: a kit notebook is saved as committed, its run kept under ``runs/notebooks/``."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    os_path = Path(contents_manager.root_dir, path.lstrip("/"))
    if not kit_notebook(os_path):
        return
    run = model["content"]
    if any(c.get("outputs") for c in run.get("cells", [])):
        write_text(os_path.parent.parent / LAST_RUNS / os_path.name,
                   json.dumps(run, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    model["content"] = strip(run)


def install_server_config(prefix: str | None = None) -> Path:
    """Set :data:`SERVER_CONFIG` in the environment's ``etc/jupyter/jupyter_server_config.json`` (other
    settings there kept; the ``.d`` folders beside it only enable extensions); returns the file."""
    target = Path(prefix or sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    config = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
    for section, values in SERVER_CONFIG.items():
        config[section] = {**config.get(section, {}), **values}
    write_text(target, json.dumps(config, indent=2) + "\n")
    return target
