"""Profiles and the notebook runner: :mod:`.profile` loads a profile and
resolves a step's parameters (the only code that does), :mod:`.runner`
executes the steps, :mod:`.fingerprint` decides which are up to date."""
from .profile import (Profile, Settings, Step, declared_parameters, default_profile, find_profile, load_profile,
                      profile_path, resolve, step_settings)
from .runner import main, plan, run

__all__ = ["Profile", "Settings", "Step", "declared_parameters", "default_profile", "find_profile", "load_profile",
           "main", "plan", "profile_path", "resolve", "run", "step_settings"]
