"""``python -m aulib.pipeline``'s arguments and its answers that run nothing.

``--list``: every step of the profile (every fold's, with ``protocol:
{kfold: K}``, then the k-fold summary's), its resolved parameters and whether it is up to date
(:func:`aulib.pipeline.fingerprint.step_states`). ``--dry-run``: the steps a
run would execute (with ``--force`` and ``--only`` as given) and the time
their last runs took; nothing is written. This module imports neither torch
nor the notebook runner, so ``--help``, ``--list`` and ``--dry-run`` answer in
well under a second (``python -X importtime -m aulib.pipeline --help``).
"""
from __future__ import annotations

import argparse
import json
import sys

from ..io import YAMLFileError
from ..lock import LockedError
from ..progress import format_duration
from ..settings import SettingError, one_line
from ..workspace import Workspace
from . import kfold
from .fingerprint import DataRootError, StepState, check_data_root, step_states
from .profile import Profile, ProfileNotFound, load_profile, plan, shown_parameters

USAGE = ("python -m aulib.pipeline --profile demo|ci|paper|PATH.yaml [--data-root DIR] [--force] [--publish] "
         "[--list | --dry-run]")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m aulib.pipeline", usage=USAGE,
                                 description="Run the numbered notebooks headless, in order, from a profile "
                                             "(docs/usage.md). Steps that are up to date are skipped.")
    ap.add_argument("--profile", default="demo", help="demo | ci | paper | path to a profile YAML (default demo)")
    ap.add_argument("--data-root", default=None, help="data root given to every notebook that takes data_root")
    ap.add_argument("--force", action="store_true", help="rerun steps that are up to date")
    ap.add_argument("--only", default=None, help="comma-separated substrings of step names to run")
    ap.add_argument("--workspace", default=None, help="workspace folder (default runs/<profile>)")
    ap.add_argument("--results", default=None, help="results folder (default <workspace>/results)")
    ap.add_argument("--quiet", action="store_true", help="do not echo the notebooks' printed output")
    ap.add_argument("--publish", action="store_true",
                    help="after the run, copy <workspace>/results over the project's results/ (the only way "
                         "the committed results/ changes; refused while a step is out of date)")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true",
                      help="list the steps, their resolved parameters and whether each is up to date; run nothing")
    what.add_argument("--dry-run", action="store_true", help="show what would run (and its last duration); write nothing")
    return ap


#: Errors of the user's input (a profile that does not parse or is refused, a
#: wrong data root, a workspace another runner holds) that the command answers
#: in one line (:func:`aulib.settings.one_line`) instead of a traceback.
USER_ERRORS = (SettingError, YAMLFileError, DataRootError, LockedError, ProfileNotFound)


def refuse(error: BaseException):
    """Print a user error in one line and exit 1 (no traceback)."""
    print(f"python -m aulib.pipeline: {one_line(error)}", file=sys.stderr)
    raise SystemExit(1) from None


def answer(args) -> bool:
    """What is answered before the runner (and torch) is imported: ``--list``
    / ``--dry-run`` (True: nothing more to do), else the profile and its data
    root are checked (False: go on and run). A user error exits 1 in one line."""
    try:
        if args.list or args.dry_run:
            print(describe(args))
            return True
        check_args(args)
    except USER_ERRORS as e:
        refuse(e)
    return False


def check_data_roots(profile: Profile, ws: Workspace, extra: dict) -> None:
    """:func:`aulib.pipeline.fingerprint.check_data_root` on every step of the
    first pass (the folds share the data root): a wrong root is refused at once."""
    heading, fws, given = workspaces(profile, ws, extra)[0]
    for _, _, params in plan(profile, fws, given):
        check_data_root(params)


def check_args(args) -> None:
    """Load the profile and check its data root, before the runner (and torch) is imported."""
    profile = load_profile(args.profile)
    ws = Workspace.for_profile(profile.name, root=args.workspace, results=args.results)
    check_data_roots(profile, ws, {"data_root": args.data_root} if args.data_root else {})


def only_list(args) -> list[str] | None:
    return args.only.split(",") if args.only else None


def workspaces(profile: Profile, ws: Workspace, extra: dict) -> list[tuple[str, Workspace, dict]]:
    """(heading, workspace, given values) of each pass over the steps: one, or one per fold."""
    if not profile.kfold:
        return [("", ws, extra)]
    return [(f"fold {k} of {profile.kfold}", ws.fold(k), {**extra, **profile.fold_parameters(k)})
            for k in range(1, profile.kfold + 1)]


#: The heading of the k-fold summary's pass (after the folds, in the top workspace).
SUMMARY_HEADING = "k-fold summary"


def summary_states(profile: Profile, ws: Workspace, extra: dict, folds: list[list[StepState]]) -> list[StepState]:
    """The state of the k-fold summary's step (:func:`aulib.pipeline.kfold.summary_step`)
    in the top workspace ``ws``, ``folds`` being every fold's step states: its
    fingerprint chains on from each fold's last step, so a change in any fold
    reruns it and a run with nothing changed skips it."""
    previous = ",".join(states[-1].fingerprint for states in folds if states)
    return step_states(plan(profile, ws, extra, [kfold.summary_step(profile)]), ws, previous)


def passes(profile: Profile, ws: Workspace, extra: dict) -> list[tuple[str, Workspace, list[StepState]]]:
    """(heading, workspace, step states) of each pass: one, or one per fold and
    then the k-fold summary's (:func:`summary_states`)."""
    out = [(h, fws, step_states(plan(profile, fws, given), fws)) for h, fws, given in workspaces(profile, ws, extra)]
    if profile.kfold:
        out.append((SUMMARY_HEADING, ws, summary_states(profile, ws, extra, [st for *_, st in out])))
    return out


def selected(state: StepState, only: list[str] | None) -> bool:
    """Whether ``--only`` selects the step: a substring of its name, or of a
    step that selects it too (:attr:`aulib.pipeline.profile.Step.selected_by`)."""
    return only is None or any(o in name for o in only for name in (state.step.name, *state.step.selected_by))


def to_run(states: list[StepState], force: bool, only: list[str] | None) -> list[StepState]:
    """The states a run executes: selected, and out of date (or ``force``). A
    changed step changes the fingerprint of every step after it (the chain of
    :mod:`aulib.pipeline.fingerprint`), so those are out of date too."""
    return [s for s in states if selected(s, only) and (force or not s.up_to_date)]


def estimate_s(states: list[StepState]) -> tuple[float, int]:
    """Seconds the last runs of ``states`` took, and how many have none."""
    known = [s.last_seconds for s in states if s.last_seconds is not None]
    return float(sum(known)), len(states) - len(known)


def stale_steps(profile: Profile, ws: Workspace, extra: dict) -> list[str]:
    """Names of the steps (every fold's, the k-fold summary's) that are not up to date."""
    return [(f"{h}: " if h else "") + s.step.name for h, _, states in passes(profile, ws, extra)
            for s in states if not s.up_to_date]


def describe(args) -> str:
    """The text of ``--list`` or ``--dry-run``."""
    profile = load_profile(args.profile)
    ws = Workspace.for_profile(profile.name, root=args.workspace, results=args.results)
    extra = {"data_root": args.data_root} if args.data_root else {}
    only = only_list(args)
    lines = [f"profile {profile.name} ({profile.path}), workspace {ws.root}"]
    total, unknown, n_run = 0.0, 0, 0
    for heading, _, states in passes(profile, ws, extra):
        running = to_run(states, args.force, only)
        ids = {id(s) for s in running}
        if heading:
            lines.append(f"=== {heading}")
        shown = states if args.list else running
        for k, s in enumerate(shown, 1):
            status = ("will run" if id(s) in ids else "up to date" if s.up_to_date else "out of date, not selected")
            took = f", last run {format_duration(s.last_seconds)}" if s.last_seconds is not None else ""
            lines.append(f"{k:>3}/{len(shown)}  {s.step.name:<40} {status}{took}")
            params = s.parameters if args.list else shown_parameters(profile, s.step, s.parameters)
            lines.append("         " + json.dumps(params, default=str))
        t, u = estimate_s(running)
        total, unknown, n_run = total + t, unknown + u, n_run + len(running)
    if n_run == 0:
        lines.append("nothing to run: every selected step is up to date (--force reruns them)")
    else:
        eta = f"about {format_duration(total)} by the steps' last runs" if total else "no step has run here before"
        lines.append(f"{n_run} step(s) would run; {eta}" + (f" ({unknown} never ran here)" if unknown and total else ""))
    if getattr(args, "publish", False):
        lines.append(f"then {ws.results} would be published to the project's results/ (--publish)")
    return "\n".join(lines)
