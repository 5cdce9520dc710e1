"""Run the numbered notebooks headless, in order, from a profile file.

``python -m aulib.pipeline --profile demo|ci|paper [--data-root DIR] [--force]``

A profile (``notebooks/profiles/<name>.yaml``) lists the steps: which notebook
to run with which papermill parameters. A notebook may appear several times
(``04_train`` once per training run), each step with a unique ``name``.
``common`` parameters go to every notebook that declares them in its
``parameters`` cell; a step's own parameters must be declared there too (a
typo fails before anything runs). ``tables`` is written to
``<workspace>/table_spec.yaml`` for ``07_tables``.

Executed copies go to ``runs/<profile>/notebooks/<step>.ipynb``. A step is up
to date, and skipped, when its stamp (``<step>.stamp.yaml``) holds the same
fingerprint: a hash of the notebook's source, its parameters and the
fingerprint of the step before it, so changing a step reruns it and every
step after it. ``--force`` reruns everything. The runner stops at the first
failing notebook and prints the failing cell and error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .io import read_yaml, write_yaml
from .workspace import Workspace, repo_root

PROFILE_DIR = Path("notebooks") / "profiles"


@dataclass
class Step:
    """One notebook execution: ``notebook`` (file name in notebooks/),
    ``name`` (unique, names the executed copy), ``parameters``."""

    notebook: str
    name: str
    parameters: dict = field(default_factory=dict)


@dataclass
class Profile:
    name: str
    steps: list[Step]
    tables: dict
    common: dict


def profile_path(name: str) -> Path:
    """Path of a profile name, or of a YAML file given directly."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    return repo_root() / PROFILE_DIR / f"{name}.yaml"


def load_profile(name: str) -> Profile:
    """Read and check a profile file (clear errors naming the step)."""
    path = profile_path(name)
    if not path.exists():
        known = sorted(q.stem for q in (repo_root() / PROFILE_DIR).glob("*.yaml"))
        raise FileNotFoundError(f"no profile {name!r} ({path}); known profiles: {known}")
    raw = read_yaml(path) or {}
    common = dict(raw.get("common") or {})
    common.setdefault("profile", raw.get("profile", path.stem))
    steps, seen = [], set()
    for i, s in enumerate(raw.get("steps") or []):
        if not isinstance(s, dict) or "notebook" not in s:
            raise ValueError(f"{path}: step {i + 1} needs a 'notebook' key, got {s!r}")
        nb = s["notebook"]
        stem = Path(nb).stem
        name_ = f"{stem}__{s['name']}" if s.get("name") else stem
        if name_ in seen:
            raise ValueError(f"{path}: step {i + 1} ({nb}) repeats the name {name_!r}; give it a unique 'name'")
        seen.add(name_)
        steps.append(Step(nb, name_, dict(s.get("parameters") or {})))
    if not steps:
        raise ValueError(f"{path}: the profile lists no steps")
    return Profile(common["profile"], steps, dict(raw.get("tables") or {}), common)


def notebook_parameters(path: Path) -> set[str]:
    """Names declared in a notebook's cell tagged ``parameters``."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def _fingerprint(nb_path: Path, params: dict, previous: str) -> str:
    h = hashlib.sha256()
    h.update(nb_path.read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(previous.encode())
    return h.hexdigest()[:16]


def plan(profile: Profile, ws: Workspace, extra: dict) -> list[tuple[Step, Path, dict]]:
    """Resolve every step's notebook path and full parameters; check that
    each explicit parameter is declared by its notebook."""
    nb_dir = repo_root() / "notebooks"
    out = []
    for step in profile.steps:
        nb_path = nb_dir / step.notebook
        if not nb_path.exists():
            raise FileNotFoundError(f"profile {profile.name}: step {step.name} names {nb_path}, which does not exist")
        declared = notebook_parameters(nb_path)
        unknown = sorted(set(step.parameters) - declared)
        if unknown:
            raise ValueError(f"profile {profile.name}: step {step.name} sets {unknown}, which "
                             f"{step.notebook} does not declare (it declares {sorted(declared)})")
        params = {k: v for k, v in {**profile.common, **extra}.items() if k in declared}
        params.update(step.parameters)
        if "workspace" in declared:
            params["workspace"] = str(ws.root)
        out.append((step, nb_path, params))
    return out


def run(profile_name: str, data_root: str | None = None, force: bool = False,
        only: list[str] | None = None, workspace: str | None = None, results: str | None = None) -> Workspace:
    """Execute a profile's notebooks in order; returns the workspace."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    profile = load_profile(profile_name)
    ws = Workspace.for_profile(profile.name, root=workspace, results=results)
    extra = {"data_root": data_root} if data_root else {}
    steps = plan(profile, ws, extra)
    ws.notebooks.mkdir(parents=True, exist_ok=True)
    if profile.tables:
        write_yaml(ws.root / "table_spec.yaml", profile.tables)
    previous = ""
    t_all = time.time()
    for step, nb_path, params in steps:
        fp = _fingerprint(nb_path, params, previous)
        previous = fp
        out_nb = ws.notebooks / f"{step.name}.ipynb"
        stamp = ws.notebooks / f"{step.name}.stamp.yaml"
        selected = only is None or any(o in step.name for o in only)
        if not selected:
            continue
        if not force and stamp.exists() and out_nb.exists() and (read_yaml(stamp) or {}).get("fingerprint") == fp:
            print(f"[skip] {step.name}: up to date", flush=True)
            continue
        print(f"[run ] {step.name}  {json.dumps({k: v for k, v in params.items() if k != 'workspace'})}", flush=True)
        t0 = time.time()
        try:
            papermill.execute_notebook(str(nb_path), str(out_nb), parameters=params, kernel_name="python3",
                                       cwd=str(nb_path.parent), progress_bar=False, log_output=False)
        except PapermillExecutionError as e:
            if stamp.exists():
                stamp.unlink()
            print(f"\n[fail] {step.name}: cell {e.exec_count} ({e.ename}: {e.evalue})\n"
                  f"       executed copy with the traceback: {out_nb}", file=sys.stderr, flush=True)
            print("       cell source:\n" + "\n".join("         " + ln for ln in e.source.splitlines()),
                  file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        write_yaml(stamp, {"fingerprint": fp, "seconds": round(time.time() - t0, 1), "parameters": params})
        print(f"[done] {step.name} in {time.time() - t0:.0f} s", flush=True)
    print(f"\nPipeline '{profile.name}' finished in {(time.time() - t_all) / 60:.1f} min.")
    print(f"  figures:  {ws.figures}")
    print(f"  tables:   {ws.tables}")
    print(f"  notebooks (executed): {ws.notebooks}")
    return ws


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aulib.pipeline", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo", help="demo | ci | paper | path to a profile YAML")
    ap.add_argument("--data-root", default=None, help="data root given to every notebook that takes data_root")
    ap.add_argument("--force", action="store_true", help="rerun steps that are up to date")
    ap.add_argument("--only", default=None, help="comma-separated substrings of step names to run")
    ap.add_argument("--workspace", default=None, help="workspace folder (default runs/<profile>)")
    ap.add_argument("--results", default=None, help="results folder (default: results/ for demo)")
    a = ap.parse_args(argv)
    run(a.profile, data_root=a.data_root, force=a.force, only=a.only.split(",") if a.only else None,
        workspace=a.workspace, results=a.results)


if __name__ == "__main__":
    main()
