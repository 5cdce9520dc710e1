"""Profiles: the only code that loads a profile and resolves a step's parameters.

A profile is ``notebooks/profiles/<name>.yaml`` (given by name) or a YAML
file anywhere on disk (given by path)::

    profile: demo                  # its name; the workspace is runs/<name>
    description: ...
    extends: demo                  # optional: a name, or a path relative to this file
    common: {dataset: synthau}     # to every notebook that declares the key
    defaults: {04_train: {epochs: 10}}        # per notebook stem
    step_overrides: {04_train: {epochs: 2}}   # set on every step of that notebook
    steps: [{notebook: 04_train.ipynb, name: 6au, parameters: {group: 6au}}]
    tables: {...}                  # <workspace>/table_spec.yaml for 07_tables
    groups: {disfa12: {aus: [1, 2, 4], crop: aligned}}   # the profile's own AU groups
    protocol: {kfold: 3}           # optional: run the steps once per subject-exclusive fold
                                   # ({folds: bp4d_3fold}: a published protocol's folds, aulib.data.protocols)
    seeds: [0, 1, 2]               # optional: train every 04_train run once per seed (default [0])

``groups`` are read into :class:`aulib.aus.AUGroup` values when the profile
is loaded (:attr:`Profile.groups`, :attr:`StepSettings.groups`; nothing is
registered in :mod:`aulib.aus`): a notebook passes them on (04_train's config
gets the group's ``aus`` and ``crop_style``), a run's config.yaml and a
chosen model record the AUs and crop style, and the table spec the runner
writes lists them (``groups:``), so nothing after training needs the profile.
``protocol: {kfold: K}`` makes the runner run the steps once per fold
(:mod:`aulib.pipeline.kfold`). ``seeds`` (distinct non-negative integers;
default ``[0]``, one run each, as without the key) expands every 04_train
step into one run per seed, named by :func:`seed_name`: the first seed's run
keeps its ``run_name`` (and step name), seed ``s`` of the others is
``<run_name>_s<s>``; each gets ``overrides: {seed: s}`` (TrainConfig's
``seed``; the first seed's parameters stay untouched when it is 0, the
default, so existing runs keep their fingerprint), a replica's ``init_from``
naming a run of the profile (``train/<run>[/...]``) names that run's replica
of the same seed, and the table spec gets ``seed_replicas`` ({run: {seed:
replica}}, :meth:`Profile.table_spec`) for the seed-spread columns of Tables
1 and 3. With several seeds every 04_train step needs a ``run_name`` and none
may set ``overrides.seed``; runs trained elsewhere (03_noisy_filter's base
model) are trained once and shared by every seed. 05_convergence and
06_choose with ``runs: null`` see the replicas too. An extending profile
merges ``common``, ``defaults``, ``step_overrides``, ``tables``, ``groups``
and ``protocol`` over its parent's, takes its parent's ``seeds`` unless it
sets its own, and keeps the parent's ``steps`` unless it lists its own.
A step's parameters resolve, later winning: built-in defaults
(``notebooks/profiles/base.yaml``, the notebooks' parameter cells hold
``None``) -> ``common`` -> ``defaults[<stem>]`` -> the step's own (and
``step_overrides``) -> values given explicitly (papermill ``-p``,
``--data-root``). A key no notebook it is meant for declares is refused,
naming the file, the section and the key.
"""
from __future__ import annotations

import ast
import difflib
import functools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..aus import AUGroup, get_group, groups_spec, parse_groups
from ..data.protocols import get_protocol
from ..io import read_yaml
from ..settings import SettingError
from .params import MAX_KFOLD, check_params, train_defaults
from ..workspace import Workspace, repo_root

PROFILE_DIR = Path("notebooks") / "profiles"
BASE = "base"
TOP_KEYS = ("profile", "description", "extends", "common", "defaults", "step_overrides", "steps", "tables",
            "groups", "protocol", "seeds")
PROTOCOL_KEYS = ("kfold", "folds")
#: The notebook ``seeds`` expands (one run per seed), and the default: one run, TrainConfig's seed 0.
TRAIN_STEM = "04_train"
#: 04_train's older ablation switches, read as ``ablate`` (:func:`migrate_ablation`).
OLD_ABLATION_KEYS = ("no_mv", "no_cr", "no_balance")
DEFAULT_SEEDS = (0,)
STEP_KEYS = ("notebook", "name", "parameters")
#: Parameters every notebook takes that the runner sets: the profile and its workspace.
RUNNER_KEYS = ("profile", "workspace")


class ProfileNotFound(FileNotFoundError):
    """A profile (or the one it extends) that is neither a shipped name nor a file."""


@dataclass
class Step:
    """One notebook execution: ``notebook`` (file name in notebooks/),
    ``name`` (unique, names the executed copy), ``parameters``;
    ``selected_by``: names of other steps whose selection by ``--only``
    selects this one too (the k-fold summary's, :func:`aulib.pipeline.kfold.summary_step`)."""

    notebook: str
    name: str
    parameters: dict = field(default_factory=dict)
    selected_by: tuple = ()

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem


@dataclass
class Profile:
    """A loaded, checked profile (``extends`` already merged)."""

    name: str
    path: Path
    steps: list[Step]
    tables: dict
    common: dict
    defaults: dict
    base: dict
    #: The profile's own AU groups: {name: :class:`aulib.aus.AUGroup`}.
    groups: dict = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    seeds: tuple = DEFAULT_SEEDS
    #: {run_name: {seed: replica run_name}} of every 04_train run, with several seeds (else empty).
    seed_replicas: dict = field(default_factory=dict)

    def table_spec(self) -> dict:
        """What the runner writes to ``<workspace>/table_spec.yaml``: ``tables``,
        plus ``seed_replicas`` when the profile trains several seeds and
        ``groups`` (the profile's own groups, :func:`aulib.aus.groups_spec`)
        when it declares any, so the tables know them without the profile."""
        if not (self.groups or self.seed_replicas):
            return self.tables
        out = dict(self.tables)
        if self.groups:
            out["groups"] = {**(self.tables.get("groups") or {}), **groups_spec(self.groups)}
        if self.seed_replicas:
            out["seed_replicas"] = {**(self.tables.get("seed_replicas") or {}), **self.seed_replicas}
        return out

    @property
    def kfold(self) -> int:
        """Folds the runner runs: K of ``{kfold: K}``, or the named protocol's
        (``{folds: bp4d_3fold}``: 3; ``affwild2_official``: 1); 0: none."""
        if self.protocol.get("folds"):
            return get_protocol(self.protocol["folds"]).n_folds
        return int(self.protocol.get("kfold") or 0)

    def fold_parameters(self, fold: int) -> dict:
        """What the runner gives 02_split for fold ``fold``: ``kfold`` (or
        ``published_folds``, the protocol's name: 06_choose's ``folds`` is its cross-fit count) and ``fold``."""
        if self.protocol.get("folds"):
            return {"published_folds": self.protocol["folds"], "fold": int(fold)}
        return {"kfold": self.kfold, "fold": int(fold)}

    @property
    def ref(self) -> str:
        """How a notebook finds this profile again: its name when it is a
        shipped profile, else its absolute path."""
        shipped = profile_dir() / f"{self.name}.yaml"
        return self.name if shipped.exists() and shipped.resolve() == self.path else str(self.path)


class StepSettings(dict):
    """A step's resolved parameters (name -> value), plus ``ws`` (its
    :class:`Workspace`), ``name`` (the profile's name) and ``groups`` (the
    profile's own AU groups, {name: :class:`aulib.aus.AUGroup`})."""

    def __init__(self, values: dict, ws: Workspace, name: str, groups: dict | None = None):
        super().__init__(values)
        self.ws, self.name, self.groups = ws, name, dict(groups or {})

    def group(self, name) -> AUGroup:
        """The :class:`aulib.aus.AUGroup` of a group name: the profile's own, else a built-in one."""
        return get_group(name, self.groups)


def profile_dir() -> Path:
    return repo_root() / PROFILE_DIR


def default_profile() -> str:
    """``$AULIB_PROFILE`` if set (CI sets ``ci``), else ``demo``."""
    return os.environ.get("AULIB_PROFILE", "demo")


def resolve_profile(profile: str | None) -> str:
    """A notebook's ``profile`` parameter: None means :func:`default_profile`."""
    return default_profile() if profile is None else str(profile)


def known_profiles() -> list[str]:
    return sorted(q.stem for q in profile_dir().glob("*.yaml") if q.stem != BASE)


def find_profile(ref: str | os.PathLike, base_dir: Path | None = None) -> Path:
    """The file of a profile: a name (``demo``) in notebooks/profiles/, or a
    path to a YAML file (relative to ``base_dir`` or the current folder)."""
    p = Path(ref).expanduser()
    if p.suffix in (".yaml", ".yml") or len(p.parts) > 1:
        p = p if p.is_absolute() or base_dir is None else base_dir / p
        if p.is_file():
            return p.resolve()
        raise ProfileNotFound(f"no profile file {p.resolve()}; give an existing YAML file "
                                f"or a profile name ({', '.join(known_profiles())})")
    path = profile_dir() / f"{ref}.yaml"
    if path.is_file():
        return path.resolve()
    raise ProfileNotFound(f"no profile {str(ref)!r} ({path}); known profiles: {known_profiles()}, "
                            "or give the path of a profile YAML file")


def profile_path(ref: str) -> Path:
    """:func:`find_profile`, or the path a name would have when there is none."""
    try:
        return find_profile(ref)
    except FileNotFoundError:
        return profile_dir() / f"{ref}.yaml"


@functools.lru_cache(maxsize=64)
def _declared(path: str, mtime_ns: int) -> tuple[str, ...]:
    """Names assigned in the notebook's cell tagged ``parameters``, in order:
    the names papermill would inject, read with :mod:`ast` (the cell holds
    plain assignments) so that every kernel is spared papermill's import."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return ()
    source = cells[0]["source"]
    tree = ast.parse(source if isinstance(source, str) else "".join(source), filename=f"{path} (parameters cell)")
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return tuple(names)


def declared_parameters(stem: str) -> tuple[str, ...]:
    """Names declared in the ``parameters`` cell of ``notebooks/<stem>.ipynb``, in order."""
    path = repo_root() / "notebooks" / f"{stem}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"no notebook {path}")
    return _declared(str(path), path.stat().st_mtime_ns)


def _refuse_unknown(path: Path, where: str, keys, allowed, owner: str) -> None:
    """ValueError naming the file, section and first key not in ``allowed`` (with a close match)."""
    for key in keys:
        if key in RUNNER_KEYS and owner != "a profile":
            raise SettingError(f"{path}: {where} sets {key!r}, which the runner sets itself "
                             "(the profile; --workspace); remove it")
        if key not in allowed:
            close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SettingError(f"{path}: {where} sets {key!r}, which {owner} does not declare{hint} "
                             f"(known: {sorted(map(str, allowed))})")


def _mapping(path: Path, where: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingError(f"{path}: {where} must be a mapping, got {value!r}")
    return dict(value)


def _read_chain(path: Path, seen: tuple = ()) -> list[tuple[Path, dict]]:
    """[(file, raw mapping)] from the root of the ``extends`` chain to ``path``."""
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise SettingError(f"{path}: a profile is a mapping with keys {list(TOP_KEYS)}")
    _refuse_unknown(path, "the top level", raw, TOP_KEYS, "a profile")
    name = raw.get("profile")
    if name is not None and not (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
                                 and "\\" not in name):
        raise SettingError(f"{path}: profile = {name!r} is not allowed; profile (names the workspace "
                           "runs/<profile>) must be a plain name, without '/' or '..'")
    if not raw.get("extends"):
        return [(path, raw)]
    try:
        parent = find_profile(raw["extends"], base_dir=path.parent)
    except FileNotFoundError as err:
        raise ProfileNotFound(f"{path}: extends: {raw['extends']}: {err}") from None
    if parent in seen or parent == path:
        raise SettingError(f"{path}: 'extends: {raw['extends']}' makes a cycle ({[str(s) for s in seen]})")
    return _read_chain(parent, seen + (path,)) + [(path, raw)]


def _parse_steps(path: Path, raw_steps) -> list[Step]:
    steps, seen = [], set()
    for i, s in enumerate(raw_steps or []):
        if not isinstance(s, dict) or "notebook" not in s:
            raise SettingError(f"{path}: step {i + 1} needs a 'notebook' key, got {s!r}")
        _refuse_unknown(path, f"step {i + 1}", s, STEP_KEYS, "a step")
        stem = Path(s["notebook"]).stem
        name = f"{stem}__{s['name']}" if s.get("name") else stem
        if name in seen:
            raise SettingError(f"{path}: step {i + 1} ({s['notebook']}) repeats the name {name!r}; give it a unique 'name'")
        seen.add(name)
        params = migrate_ablation(path, f"step {name}", stem, _mapping(path, f"step {name} parameters",
                                                                       s.get("parameters")))
        _refuse_unknown(path, f"step {name}", params, declared_parameters(stem), s["notebook"])
        check_params(stem, params, f"{path}: step {name}")
        steps.append(Step(s["notebook"], name, params))
    return steps


def _check_sections(path: Path, section: str, raw: dict) -> dict:
    """``defaults`` / ``step_overrides``: {notebook stem: {declared key: value}}, checked."""
    out = _mapping(path, section, raw.get(section))
    stems = sorted(q.stem for q in (repo_root() / "notebooks").glob("*.ipynb"))
    for stem, values in out.items():
        _refuse_unknown(path, section, [stem], stems, "the notebooks folder")
        out[stem] = migrate_ablation(path, f"{section}.{stem}", stem, _mapping(path, f"{section}.{stem}", values))
        _refuse_unknown(path, f"{section}.{stem}", out[stem], declared_parameters(stem), f"{stem}.ipynb")
        check_params(stem, out[stem], f"{path}: {section}.{stem}")
    return out


def migrate_ablation(path: Path, where: str, stem: str, values: dict) -> dict:
    """A 04_train mapping with the old switches ``no_mv`` / ``no_cr`` / ``no_balance``
    read as ``ablate`` (the one spelling; TrainConfig's), with a one-line note naming the file."""
    old = [k for k in OLD_ABLATION_KEYS if k in values] if stem == TRAIN_STEM else []
    if not old:
        return values
    out = {k: v for k, v in values.items() if k not in old}
    for k in old:
        if not isinstance(values[k], bool):
            raise SettingError(f"{path}: {where}: {k} = {values[k]!r} must be true or false (better: ablate: [names])")
    given = out.get("ablate") or []
    out["ablate"] = list(dict.fromkeys([*([given] if isinstance(given, str) else given),
                                        *(k[3:] for k in old if values[k])]))
    print(f"note: {path}: {where}: {', '.join(f'{k}: {str(values[k]).lower()}' for k in old)} read as "
          f"ablate: {out['ablate']} (the old spelling; write ablate)", file=sys.stderr)
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_profile(ref: str | os.PathLike | None = None) -> Profile:
    """Load a profile by name or path (None: :func:`default_profile`), merge
    its ``extends`` chain and check every key before anything runs."""
    path = find_profile(resolve_profile(None if ref is None else str(ref)))
    chain = _read_chain(path)
    steps_file, steps_raw = next(((p, raw["steps"]) for p, raw in reversed(chain) if raw.get("steps")), (path, None))
    steps = _parse_steps(steps_file, steps_raw)
    if not steps:
        raise SettingError(f"{path}: the profile lists no steps")
    declared_by_steps = {k for s in steps for k in declared_parameters(s.stem)}
    common, defaults, overrides, tables, groups, protocol = {}, {}, {}, {}, {}, {}
    seeds = DEFAULT_SEEDS
    for p, raw in chain:
        if raw.get("seeds") is not None:
            seeds = _check_seeds(p, raw["seeds"])
        for name, g in parse_groups(_mapping(p, "groups", raw.get("groups")), where=f"{p}: groups").items():
            if name in groups and groups[name] != g:
                raise SettingError(f"{p}: groups: group {name!r} is already defined by the profile it extends as "
                                   f"AUs {list(groups[name].aus)}, crop {groups[name].crop!r}; give the group "
                                   f"{list(g.aus)} ({g.crop}) another name")
            groups[name] = g
        protocol.update(_check_protocol(p, raw.get("protocol")))
        own = _mapping(p, "common", raw.get("common"))
        _refuse_unknown(p, "common", own, declared_by_steps, "any notebook of the profile")
        for stem in dict.fromkeys(s.stem for s in steps):
            check_params(stem, {k: v for k, v in own.items() if k in declared_parameters(stem)}, f"{p}: common")
        common.update(own)
        defaults = _deep_merge(defaults, _check_sections(p, "defaults", raw))
        overrides = _deep_merge(overrides, _check_sections(p, "step_overrides", raw))
        tables = _deep_merge(tables, _mapping(p, "tables", raw.get("tables")))
    for s in steps:
        s.parameters.update(overrides.get(s.stem, {}))
    base_file = profile_dir() / f"{BASE}.yaml"
    base = _check_sections(base_file, "defaults", read_yaml(base_file) or {}) if base_file.exists() else {}
    profile = Profile(str(chain[-1][1].get("profile") or path.stem), path, steps, tables, common, defaults, base,
                      groups, protocol, seeds)
    if seeds != DEFAULT_SEEDS:
        _expand_seeds(profile)
    return profile


def seed_name(name: str, seed: int, seeds) -> str:
    """The name of seed ``seed``'s replica of a run or step ``name`` under the
    profile's ``seeds``: ``name`` itself for the first seed, else
    ``<name>_s<seed>``. The one owner of this rule (the table spec gets the
    names it makes, :attr:`Profile.seed_replicas`)."""
    return name if int(seed) == int(seeds[0]) else f"{name}_s{int(seed)}"


def _check_seeds(path: Path, value) -> tuple[int, ...]:
    """A profile's ``seeds``: a non-empty list of distinct non-negative integers."""
    ok = isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                  for s in value)
    if not ok or len(set(value)) != len(value):
        raise SettingError(f"{path}: seeds must be a non-empty list of distinct non-negative integers, e.g. [0, 1, 2] "
                         "(one run per seed; the first keeps the run's name, the others are named <run>_s<seed>); "
                         f"got {value!r}" + (", which repeats a seed" if ok else ""))
    return tuple(value)


def _follow_seed(init_from, replicas: dict) -> str | None:
    """``init_from`` with a run of the profile (``.../train/<run>[/...]``) replaced by
    ``replicas[<run>]`` (that run's replica of the same seed); else unchanged."""
    if not init_from:
        return init_from
    parts = list(Path(str(init_from)).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "train" and parts[i + 1] in replicas:
            parts[i + 1] = replicas[parts[i + 1]]
            return Path(*parts).as_posix()
    return init_from


def _expand_seeds(profile: Profile) -> None:
    """Replace every 04_train step by one step per seed of ``profile.seeds``
    (see the module docstring; names: :func:`seed_name`), each right after the
    one before, and fill :attr:`Profile.seed_replicas`."""
    seeds, where = profile.seeds, f"{profile.path}: seeds {list(profile.seeds)}"
    resolved, runs = {}, []
    for s in (s for s in profile.steps if s.stem == TRAIN_STEM):
        r = resolved[s.name] = resolve(profile, s.stem, s.parameters)
        if not r.get("run_name"):
            raise SettingError(f"{where} name each seed's run after the step's run_name; step {s.name} sets none "
                             "(give it parameters: {run_name: ...})")
        if "seed" in (r.get("overrides") or {}):
            raise SettingError(f"{where} set the seed of every 04_train run, but step {s.name} sets overrides.seed "
                             f"({r['overrides']['seed']!r}); remove one of the two")
        runs.append(r["run_name"])
    steps, replicas = [], {}
    for step in profile.steps:
        if step.stem != TRAIN_STEM:
            steps.append(step)
            continue
        r = resolved[step.name]
        run = r["run_name"]
        for seed in seeds:
            params = dict(step.parameters)
            if not (seed == seeds[0] == 0):          # the first seed at TrainConfig's default: as without seeds
                params["overrides"] = {**(r.get("overrides") or {}), "seed": seed}
                params["run_name"] = seed_name(run, seed, seeds)
                init = _follow_seed(r.get("init_from"), {k: seed_name(k, seed, seeds) for k in runs})
                if init != r.get("init_from"):
                    params["init_from"] = init
            replicas.setdefault(run, {})[seed] = seed_name(run, seed, seeds)
            steps.append(Step(step.notebook, seed_name(step.name, seed, seeds), params))
    for kind, made in (("step", [s.name for s in steps]), ("run", [n for m in replicas.values() for n in m.values()])):
        taken = sorted({n for n in made if made.count(n) > 1})
        if taken:
            raise SettingError(f"{where} name a seed's {kind} {taken[0]!r}, which another {kind} of the profile "
                             "has already; rename it")
    profile.steps, profile.seed_replicas = steps, (replicas if len(seeds) > 1 else {})


def _check_protocol(path: Path, value) -> dict:
    """A profile's ``protocol``: ``{kfold: K}`` with K >= 2 (or 0/null: none),
    or ``{folds: <name>}`` naming a published protocol (:data:`aulib.data.protocols.PROTOCOLS`)."""
    out = _mapping(path, "protocol", value)
    _refuse_unknown(path, "protocol", out, PROTOCOL_KEYS, "a protocol")
    if out.get("folds") is not None:
        try:
            get_protocol(out["folds"])
        except ValueError as err:
            raise SettingError(f"{path}: protocol: {err}") from None
        if out.get("kfold"):
            raise SettingError(f"{path}: protocol sets both kfold ({out['kfold']}) and folds ({out['folds']!r}); "
                             "a named protocol brings its own folds, keep one")
    k = out.get("kfold")
    if k not in (None, 0) and not (isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= MAX_KFOLD):
        raise SettingError(f"{path}: protocol kfold = {k!r} is not allowed; kfold must be an integer >= 2 "
                           f"and <= {MAX_KFOLD} (the BP4D/DISFA protocol uses 3; no more folds than subjects) "
                           "or 0 for none")
    return out


def resolve(profile: Profile, stem: str, step_params: dict | None = None, given: dict | None = None) -> dict:
    """Every parameter ``notebooks/<stem>.ipynb`` declares except ``workspace``:
    base -> common -> defaults[stem] -> ``step_params`` -> ``given`` (its
    None values count as not given). ``profile`` is :attr:`Profile.ref`.
    Idempotent: resolving a resolved dict again returns it unchanged."""
    declared = declared_parameters(stem)
    out = dict(profile.base.get(stem, {}))
    out.update({k: v for k, v in profile.common.items() if k in declared})
    out.update(profile.defaults.get(stem, {}))
    out.update(step_params or {})
    out.update({k: v for k, v in (given or {}).items() if v is not None and k in declared})
    out["profile"] = profile.ref
    out.update({k: v for k, v in train_defaults(stem).items() if out.get(k) is None})
    values = {k: out.get(k) for k in declared if k != "workspace"}
    check_params(stem, values, f"{profile.path}: {stem} (resolved)")
    return values


def step_settings(stem: str, namespace: dict) -> StepSettings:
    """A notebook's resolved parameters, from its namespace (``globals()``
    after the parameters cell): ``profile`` (name or path; None:
    ``$AULIB_PROFILE`` or demo) and ``workspace`` (None: runs/<profile name>)
    pick the profile; every declared parameter left None takes the profile's
    value, else the built-in default; a value given explicitly wins."""
    profile = load_profile(namespace.get("profile"))
    ws = Workspace.for_profile(profile.name, root=namespace.get("workspace"))
    values = resolve(profile, stem, given={k: namespace.get(k) for k in declared_parameters(stem)})
    if "workspace" in declared_parameters(stem):
        values["workspace"] = str(ws.root)
    return StepSettings(values, ws, profile.name, profile.groups)


def plan(profile: Profile, ws: Workspace, extra: dict, steps: list[Step] | None = None) -> list[tuple[Step, Path, dict]]:
    """Every step's notebook path and fully resolved parameters (``extra``:
    values given on the command line, which win); ``steps``: these instead
    of the profile's (the k-fold summary's, :func:`aulib.pipeline.kfold.summary_step`)."""
    out = []
    for step in profile.steps if steps is None else steps:
        nb_path = repo_root() / "notebooks" / step.notebook
        values = resolve(profile, step.stem, step.parameters, extra)
        if "workspace" in declared_parameters(step.stem):
            values["workspace"] = str(ws.root)
        out.append((step, nb_path, values))
    return out


def shown_parameters(profile: Profile, step: Step, values: dict) -> dict:
    """The values of a step that differ from the built-in defaults (for the log line)."""
    base = dict(profile.base.get(step.stem, {}))
    base.update({k: v for k, v in train_defaults(step.stem).items() if base.get(k) is None})
    return {k: v for k, v in values.items() if k not in ("workspace", "profile") and base.get(k) != v}
