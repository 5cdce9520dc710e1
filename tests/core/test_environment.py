"""The recorded environment: constraints.txt is what set-up installs, and each run says what it ran with."""
import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from aulib.environment import environment_lines, write_environment

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_setup_and_conda_install_from_constraints_unless_floated():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "-c constraints.txt" in setup and "AULIB_FLOAT" in setup
    assert setup.count('"${LOCK[@]}"') == 2               # torch and the project with its extras
    assert "-c constraints.txt" in (ROOT / "environment.yml").read_text()


def test_constraints_pin_every_dependency_of_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"]) + [d for ds in project["optional-dependencies"].values() for d in ds]
    pins = _pins()
    for dep in names:
        name = re.match(r"[A-Za-z0-9_.\-]+", dep).group(0).lower().replace("_", "-")
        assert name in pins, f"{name} (pyproject.toml) has no pin in constraints.txt"


@pytest.mark.skipif(os.environ.get("AULIB_FLOAT") == "1", reason="set-up floated the versions on purpose")
def test_installed_versions_are_the_pinned_ones():
    """What scripts/setup.sh installed is constraints.txt (the environment results/ ran with)."""
    pins = _pins()
    wrong = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if name in pins and dist.version != pins[name] and not dist.version.startswith(pins[name] + "+"):
            wrong[name] = (dist.version, pins[name])
    assert not wrong, f"installed (version, pinned): {wrong}; run bash scripts/setup.sh"


def test_environment_record(tmp_path):
    lines = environment_lines()
    assert lines[0].startswith("python: ") and any(ln.startswith("cpu: ") for ln in lines)
    assert f"torch=={metadata.version('torch')}" in lines
    assert any(ln.startswith("torch cpu capability: ") for ln in lines)
    path = write_environment(tmp_path / "environment.txt")
    assert path.read_text().splitlines() == lines
