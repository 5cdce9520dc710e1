"""Shared by the rehearsals of the shipped template profiles (own data, noisy labels): write a profile
derived from a template and run the whole pipeline on it from outside the repo, as a user would."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from aulib.workspace import repo_root


def write_profile(profile: dict, tmp_path: Path) -> Path:
    """``profile`` (a template's YAML, edited) written as ``<tmp_path>/profiles/mine.yaml``."""
    path = tmp_path / "profiles" / "mine.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def user_env() -> dict:
    """The environment of a user's process: this checkout importable, no profile preset."""
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "MPLBACKEND": "Agg"}
    env.pop("AULIB_PROFILE", None)
    return env


def run_pipeline(profile: Path, data_root: Path, workspace: Path, cwd: Path) -> None:
    """``python -m aulib.pipeline --profile P --data-root R --workspace W`` in a fresh process; must succeed."""
    res = subprocess.run([sys.executable, "-m", "aulib.pipeline", "--profile", str(profile), "--data-root",
                          str(data_root), "--workspace", str(workspace)], cwd=cwd, env=user_env(),
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
