"""Profile defaults for notebook parameters.

A profile file (``notebooks/profiles/<name>.yaml``) has a ``defaults`` section
with one mapping per notebook stem, e.g. ``04_train: {epochs: 12, img_size: 64}``.
A notebook parameter left at ``None`` takes the profile's default, so the same
notebook runs toy-sized under ``ci``, minutes-sized under ``demo`` and at paper
scale under ``paper`` — and any parameter given explicitly (papermill ``-p``)
wins. The default profile of every notebook is ``$AULIB_PROFILE`` or ``demo``.
"""
from __future__ import annotations

import os

from .io import read_yaml
from .workspace import Workspace, repo_root


def default_profile() -> str:
    """``$AULIB_PROFILE`` if set (CI sets ``ci``), else ``demo``."""
    return os.environ.get("AULIB_PROFILE", "demo")


def resolve_profile(profile: str | None) -> str:
    """A notebook's ``profile`` parameter: None means :func:`default_profile`."""
    return default_profile() if profile is None else profile


def profile_defaults(profile: str | None, notebook: str) -> dict:
    """The ``defaults[notebook]`` mapping of a profile ({} if none)."""
    from .pipeline import profile_path

    path = profile_path(resolve_profile(profile))
    if not path.exists():
        raise FileNotFoundError(f"no profile file for {profile!r} at {path}")
    raw = read_yaml(path) or {}
    return dict((raw.get("defaults") or {}).get(notebook) or {})


def notebook_params(profile: str | None, notebook: str, given: dict) -> dict:
    """Resolve a notebook's parameters: every ``None`` in ``given`` is
    replaced by the profile's default for that notebook (left None when the
    profile has none). Returns a new dict."""
    defaults = profile_defaults(profile, notebook)
    return {k: (defaults.get(k) if v is None else v) for k, v in given.items()}


def notebook_workspace(profile: str | None, workspace=None) -> Workspace:
    """The workspace a notebook works in: ``workspace`` if given, else the
    profile's (``runs/<profile>``)."""
    return Workspace.for_profile(resolve_profile(profile), root=workspace)


__all__ = ["default_profile", "resolve_profile", "profile_defaults", "notebook_params", "notebook_workspace", "repo_root"]
