"""AU groups are values: a profile's own group is resolved once where its
definition is read (profile, config.yaml, chosen file, table spec) and passed
on; reading a file never changes a module-level table (house round 3)."""
import inspect
import types

import pytest
import yaml

from aulib import aus
from aulib.io import read_yaml, write_yaml
from aulib.model import config as config_mod
from aulib.model.config import TrainConfig, notebook_config
from aulib.pipeline import profile as profile_mod
from aulib.runs import run_aus, run_group
from aulib.select import chosen as chosen_mod
from aulib.select import recipes
from aulib.workspace import Workspace

from synthetic_runs import write_synthetic_run

MINE_A, MINE_B = [1, 2, 4], [6, 12, 25, 26]
MODULES = (aus, config_mod, chosen_mod, recipes, profile_mod)


def _state() -> dict:
    """Every module-level value (not functions, classes, modules) of the modules that read group definitions."""
    out = {}
    for mod in MODULES:
        for name, value in vars(mod).items():
            if name.startswith("__") or inspect.isroutine(value) or inspect.isclass(value) \
                    or isinstance(value, types.ModuleType):
                continue
            out[f"{mod.__name__}.{name}"] = repr(value)
    return out


def _workspace(root, name, group_aus, crop):
    """A workspace whose run r and chosen/mine.yaml declare group 'mine' with ``group_aus``."""
    ws = Workspace.for_profile(name, root=root / name)
    cfg = TrainConfig(group="mine", aus=group_aus, crop_style=crop, workspace=str(ws.root), run_name="r").resolved()
    write_yaml(ws.run("r") / "config.yaml", cfg.to_dict())
    write_yaml(ws.chosen("mine"), {
        "group": "mine", "aus": group_aus, "ensemble": None,
        "runs": {"r": {"dir": "train/r", "backbones": ["a", "a"], "img_size": 64, "crop_style": crop}},
        "per_au": [{"au": a, "run": "r", "epoch": 1, "threshold": 0.5} for a in group_aus]})
    return ws


def _profile(path, group_aus, crop):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"profile": path.stem, "steps": [{"notebook": "02_split.ipynb"}],
                                    "groups": {"mine": {"aus": group_aus, "crop": crop}}}))
    return path


def test_reading_files_of_a_custom_group_changes_no_global_state(tmp_path):
    builtin, before = dict(aus.BUILTIN), _state()
    ws = _workspace(tmp_path, "one", MINE_A, "box1.3")
    cfg = TrainConfig.from_yaml(ws.run("r") / "config.yaml").resolved()
    model = chosen_mod.load_chosen(ws.chosen("mine"), check_files=False)
    prof = profile_mod.load_profile(_profile(tmp_path / "p" / "one.yaml", MINE_A, "box1.3"))
    spec = recipes.load_table_spec({"groups": {"mine": {"aus": MINE_A}}, "mine": {"baseline": "r", "ensemble": ["r"]}})
    assert cfg.au_group == model.au_group == prof.groups["mine"] == aus.AUGroup("mine", tuple(MINE_A), "box1.3")
    assert run_group(read_yaml(ws.run("r") / "config.yaml")) == cfg.au_group
    assert recipes.table1_groups(spec) == ["mine"]
    assert dict(aus.BUILTIN) == builtin and "mine" not in aus.BUILTIN and _state() == before
    with pytest.raises(ValueError, match="unknown AU group 'mine'"):
        aus.group_aus("mine")                       # nothing was registered by the reads
    with pytest.raises(ValueError, match=r"'mine' is not an AU group .*groups: \{name"):
        recipes.load_table_spec({"mine": {"baseline": "r"}})   # a spec must list its own groups


def test_two_workspaces_define_one_group_name_differently_without_interfering(tmp_path):
    one = _workspace(tmp_path, "one", MINE_A, "aligned")
    two = _workspace(tmp_path, "two", MINE_B, "box1.3")
    for ws, want, crop in ((one, MINE_A, "aligned"), (two, MINE_B, "box1.3"), (one, MINE_A, "aligned")):
        cfg = TrainConfig.from_yaml(ws.run("r") / "config.yaml").resolved()
        assert cfg.aus == want and cfg.crop_style == crop
        assert chosen_mod.load_chosen(ws.chosen("mine"), check_files=False).aus == want
        assert run_aus(read_yaml(ws.run("r") / "config.yaml")) == tuple(want)
    p1 = profile_mod.load_profile(_profile(tmp_path / "p1" / "mine.yaml", MINE_A, "aligned"))
    p2 = profile_mod.load_profile(_profile(tmp_path / "p2" / "mine.yaml", MINE_B, "box1.3"))
    assert notebook_config(one.root, group="mine", groups=p1.groups).aus == MINE_A
    assert notebook_config(two.root, group="mine", groups=p2.groups).au_group == aus.AUGroup("mine", tuple(MINE_B),
                                                                                             "box1.3")


def test_runs_of_one_group_name_with_different_aus_are_refused_in_one_table(tmp_path):
    """Two runs named group 'mine' but trained on different AUs cannot share a table;
    the error names both config files."""
    ws = Workspace.for_profile("t", root=tmp_path / "ws")
    for name, base in (("r1", "6au"), ("r2", "12au")):
        d = write_synthetic_run(ws.run(name), group=base, epochs=2, n_images=8, heldout=None)
        cfg = read_yaml(d / "config.yaml")
        write_yaml(d / "config.yaml", {**cfg, "group": "mine", "aus": list(aus.BUILTIN_GROUPS[base])})
    cache = recipes.RunCache(ws)
    assert cache.get(["r1"], "B")[0].aus == aus.BUILTIN_GROUPS["6au"]
    with pytest.raises(ValueError, match=r"group 'mine' is defined twice: .*r1/config\.yaml has AUs "
                                         r"\[51, .*r2/config\.yaml has \[1, "):
        cache.get(["r2"], "B")


def test_a_profile_may_not_redefine_a_group_of_the_profile_it_extends(tmp_path):
    parent = _profile(tmp_path / "p" / "parent.yaml", MINE_A, "aligned")
    child = tmp_path / "p" / "child.yaml"
    for group_aus, ok in ((MINE_A, True), (MINE_B, False)):
        child.write_text(yaml.safe_dump({"profile": "child", "extends": parent.name,
                                         "groups": {"mine": {"aus": group_aus}}}))
        if ok:
            assert profile_mod.load_profile(child).groups["mine"].aus == tuple(MINE_A)
        else:
            with pytest.raises(ValueError, match=r"child\.yaml: groups: group 'mine' is already defined by the "
                                                 r"profile it extends as AUs \[1, 2, 4\]"):
                profile_mod.load_profile(child)


def test_a_run_of_a_profiles_own_group_gets_its_views_from_its_config():
    """Multi-crop views (run_views) read a custom group's AUs from the run's config, as training and
    the noisy filter do: the own-data and noisy-label rehearsals stopped at an 'unknown AU group'."""
    from aulib.infer.multicrop import run_views

    assert run_views({"group": "lab12", "aus": [1, 2, 4, 6, 9, 12, 15, 17, 20, 25, 26, 43]}) == ("image", "flip")
    assert run_views({"group": "6au"}) == ("image",)          # 6au trains without flips: no flip view
