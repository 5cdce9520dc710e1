"""Profiles and the notebook runner: :mod:`.profile` loads a profile and
resolves a step's parameters (the only code that does), :mod:`.fingerprint`
decides which steps are up to date, :mod:`.runner` executes them
(``aulib.pipeline.runner.run``), :mod:`.cli` parses ``python -m aulib.pipeline``
and answers ``--list`` / ``--dry-run``.

The package imports neither the runner nor torch, so ``python -m
aulib.pipeline --help`` answers at once and a notebook's ``step_settings``
stays light; ``from aulib.pipeline.runner import run`` for the runner.
"""
from .profile import (Profile, Step, StepSettings, declared_parameters, default_profile, find_profile,
                      load_profile, plan, profile_path, resolve, step_settings)

__all__ = ["Profile", "Step", "StepSettings", "declared_parameters", "default_profile", "find_profile",
           "load_profile", "plan", "profile_path", "resolve", "step_settings"]
