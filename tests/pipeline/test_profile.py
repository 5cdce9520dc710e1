"""Profile resolution against the real notebooks and shipped profiles (nothing executed)."""
import re

import pytest
import yaml

from aulib.pipeline import fingerprint as F
from aulib.pipeline import profile as P

STEMS = ["01_data", "02_split", "03_noisy_filter", "04_train", "05_convergence", "06_choose", "07_tables",
         "08_predict", "09_kfold_summary"]
SHIPPED = ["ci", "demo", "paper"]


def _namespace(stem, **given):
    """A notebook's globals after its parameters cell: every parameter None but ``given``."""
    return {**{k: None for k in P.declared_parameters(stem)}, **given}


@pytest.mark.parametrize("stem", STEMS)
def test_builtin_defaults_name_exactly_the_parameters_each_notebook_declares(stem):
    base = yaml.safe_load((P.profile_dir() / "base.yaml").read_text())["defaults"]
    assert set(base) == set(STEMS)
    assert set(base[stem]) == set(P.declared_parameters(stem)) - set(P.RUNNER_KEYS)


def test_paper_heldout_reaches_04_train_everywhere_and_explicit_values_win():
    paper = P.load_profile("paper")
    trains = [s for s in paper.steps if s.stem == "04_train"]
    assert trains and all(P.resolve(paper, "04_train", s.parameters)["heldout"] == "H" for s in trains)
    alone = P.step_settings("04_train", _namespace("04_train", profile="paper", group="6au"))
    assert (alone["heldout"], alone["group"], alone["epochs"], alone["nproc"]) == ("H", "6au", 100, 8)
    assert alone.ws.root.name == "paper" and alone.name == "paper"
    assert P.step_settings("04_train", _namespace("04_train", profile="paper", heldout="test"))["heldout"] == "test"


def test_notebook_alone_takes_AULIB_PROFILE_and_none_resolves_every_value(monkeypatch):
    monkeypatch.setenv("AULIB_PROFILE", "ci")
    s = P.step_settings("04_train", _namespace("04_train"))
    assert s.name == "ci" and s["profile"] == "ci" and s["img_size"] == 48 and s["epochs"] == 3
    # every value notebook_config reads is given, so its own profile lookup has nothing left to do
    assert all(s[k] is not None for k in ("backbones", "epochs", "img_size", "batch_size", "lr", "heldout", "nproc"))


@pytest.mark.parametrize("name", SHIPPED)
def test_resolution_is_idempotent(name):
    profile = P.load_profile(name)
    for step in profile.steps:
        once = P.resolve(profile, step.stem, step.parameters)
        assert P.resolve(profile, step.stem, step.parameters, given=once) == once
        assert P.resolve(profile, step.stem, {}, given=once) == once     # a notebook re-resolving it


def test_ci_is_demo_at_toy_size():
    ci, demo = P.load_profile("ci"), P.load_profile("demo")
    assert [s.name for s in ci.steps] == [s.name for s in demo.steps] and ci.tables == demo.tables
    assert {s.parameters["epochs"] for s in ci.steps if s.stem == "04_train"} == {2}
    assert P.resolve(ci, "02_split")["sizes"] == [48] and P.resolve(ci, "01_data")["synth_profile"] == "ci"


def test_profile_by_path_extends_a_shipped_one_and_names_its_workspace(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"profile": "mine", "extends": "demo", "defaults": {"04_train": {"epochs": 1}}}))
    s = P.step_settings("04_train", _namespace("04_train", profile=str(path)))
    assert s["epochs"] == 1 and s["img_size"] == 64 and s["profile"] == str(path)
    assert s.ws.root == P.repo_root() / "runs" / "mine"
    assert P.step_settings("04_train", _namespace("04_train", profile=str(path), workspace=str(tmp_path)))["workspace"] \
        == str(tmp_path)
    path.write_text(yaml.safe_dump({"profile": "mine", "extends": "demo", "defaults": {"04_train": {"epcohs": 3}}}))
    with pytest.raises(ValueError, match=rf"{path}: defaults.04_train sets 'epcohs'.*did you mean 'epochs'"):
        P.step_settings("04_train", _namespace("04_train", profile=str(path)))


def test_input_files_of_an_emotionet_root_change_with_one_row(tmp_path):
    (tmp_path / "noisy").mkdir()
    (tmp_path / "images" / "optimization").mkdir(parents=True)
    opt = tmp_path / "optimization.csv"
    opt.write_text("URL,URL orig,'AU 1'\nhttp://x/a.jpg,http://x/a.jpg,0\n")
    (tmp_path / "noisy" / "part1.txt").write_text("http://x/b.jpg\thttp://x/b.jpg\t1\n")
    values = {"dataset": "emotionet", "data_root": str(tmp_path)}
    files = F.input_files(values)
    assert {opt, tmp_path / "noisy" / "part1.txt", tmp_path / "images" / "optimization"} <= set(files)
    assert F.input_files({"dataset": "emotionet", "data_root": None}) == []
    before = F.fingerprint(P.repo_root() / "notebooks" / "01_data.ipynb", values, F.identity(files), "")
    opt.write_text("URL,URL orig,'AU 1'\nhttp://x/a.jpg,http://x/a.jpg,1\n")
    after = F.fingerprint(P.repo_root() / "notebooks" / "01_data.ipynb", values, F.identity(files), "")
    assert before != after


@pytest.mark.parametrize("notebook", sorted(p.name for p in (P.repo_root() / "notebooks").glob("*.ipynb")))
def test_declared_parameters_are_what_papermill_reads(notebook):
    """The profile loader reads parameters cells with ast (kernels no longer
    import papermill for it); the names and their order are papermill's."""
    import papermill

    stem = notebook.removesuffix(".ipynb")
    assert P.declared_parameters(stem) == tuple(papermill.inspect_notebook(str(P.repo_root() / "notebooks" / notebook)))
    assert P.declared_parameters(stem)


def test_step_settings_does_not_import_papermill():
    code = ("import sys; from aulib.pipeline import step_settings; "
            "step_settings('05_convergence', {'profile': 'demo', 'workspace': None, 'runs': None, 'group': None, "
            "'split': None}); assert 'papermill' not in sys.modules, 'papermill imported'")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=P.repo_root())
    assert done.returncode == 0, done.stderr[-2000:]


def _seeded(tmp_path, **raw):
    path = tmp_path / "seeded.yaml"
    path.write_text(yaml.safe_dump({"profile": "seeded", "extends": "demo", **raw}))
    return path


def test_seeds_train_every_04_train_run_once_per_seed_and_finetunes_follow_their_seed(tmp_path):
    from aulib.model.config import notebook_config

    demo = P.load_profile("demo")
    seeded = P.load_profile(_seeded(tmp_path, seeds=[0, 1, 2]))
    trains = [s.name for s in demo.steps if s.stem == "04_train"]
    assert [s.name for s in seeded.steps if s.stem == "04_train"] == [
        n if k == 0 else f"{n}_s{k}" for n in trains for k in (0, 1, 2)]
    assert [s.name for s in seeded.steps if s.stem != "04_train"] == [s.name for s in demo.steps if s.stem != "04_train"]
    assert [s.name for s in seeded.steps].index("03_noisy_filter__17au") \
        < [s.name for s in seeded.steps].index("04_train__17au_effnet_pretrain")
    by_name = {s.name: P.resolve(seeded, s.stem, s.parameters) for s in seeded.steps}
    # the first seed's steps are demo's own, parameter for parameter (same fingerprints: no rerun)
    for s in demo.steps:
        assert by_name[s.name] == {**P.resolve(demo, s.stem, s.parameters), "profile": str(seeded.path)}
    for seed in (0, 1, 2):
        suffix = "" if seed == 0 else f"_s{seed}"
        ft = by_name[f"04_train__17au_resnet_finetune{suffix}"]
        cfg = notebook_config(tmp_path, **{k: ft[k] for k in ("group", "backbones", "stage", "init_from", "epochs",
                                                              "run_name", "overrides")})
        assert (cfg.seed, cfg.run_name, cfg.init_from) == (seed, f"17au_resnet_finetune{suffix}",
                                                            f"train/17au_resnet_pretrain{suffix}")
        pre = by_name[f"04_train__17au_effnet_pretrain{suffix}"]
        assert pre["overrides"] == ({"multicrop": False} if seed == 0 else {"multicrop": False, "seed": seed})
    assert seeded.seed_replicas["17au_effnet_finetune"] == {0: "17au_effnet_finetune", 1: "17au_effnet_finetune_s1",
                                                            2: "17au_effnet_finetune_s2"}
    assert set(seeded.seed_replicas) == {by_name[n]["run_name"] for n in trains}
    spec = seeded.table_spec()
    assert spec["seed_replicas"] == seeded.seed_replicas and {k: v for k, v in spec.items() if k != "seed_replicas"} \
        == demo.tables
    # one seed, the default: the profile and its table spec as they always were
    assert demo.seeds == (0,) and demo.seed_replicas == {} and demo.table_spec() is demo.tables
    assert [s.name for s in P.load_profile(_seeded(tmp_path, seeds=[0])).steps] == [s.name for s in demo.steps]


def test_seeds_whose_first_is_not_zero_set_the_first_runs_seed_too(tmp_path):
    prof = P.load_profile(_seeded(tmp_path, seeds=[4, 1]))
    steps = {s.name: P.resolve(prof, s.stem, s.parameters) for s in prof.steps}
    assert steps["04_train__6au_resnet_plain"]["overrides"] == {"multicrop": False, "seed": 4}
    assert steps["04_train__6au_resnet_plain"]["run_name"] == "6au_resnet_plain"
    assert steps["04_train__6au_resnet_plain_s1"]["overrides"] == {"multicrop": False, "seed": 1}
    assert steps["04_train__17au_effnet_finetune"]["init_from"] == "train/17au_effnet_pretrain"
    assert steps["04_train__17au_effnet_finetune_s1"]["init_from"] == "train/17au_effnet_pretrain_s1"
    assert P.seed_name("r", 4, (4, 1)) == "r" and P.seed_name("r", 1, (4, 1)) == "r_s1"


@pytest.mark.parametrize("seeds", [[0, 0], [0, -1], 3, [], [0, 1.5], [True, 2], "0,1", [[0, 1]]])
def test_bad_seeds_are_refused_naming_the_key(tmp_path, seeds):
    path = _seeded(tmp_path, seeds=seeds)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: seeds must be a non-empty list of distinct "
                                         rf"non-negative integers.*got {re.escape(repr(seeds))}") as e:
        P.load_profile(path)
    assert str(e.value).endswith("which repeats a seed") == (seeds == [0, 0])


def test_seeds_refuse_a_step_that_sets_its_seed_or_names_no_run(tmp_path):
    path = _seeded(tmp_path, seeds=[0, 1], defaults={"04_train": {"overrides": {"seed": 3}}})
    with pytest.raises(ValueError, match=r"seeds \[0, 1\] set the seed of every 04_train run, but step "
                                         r"04_train__17au_resnet_plain sets overrides.seed \(3\)"):
        P.load_profile(path)
    # without seeds, a seed in overrides is today's route and stays allowed
    assert P.load_profile(_seeded(tmp_path, defaults={"04_train": {"overrides": {"seed": 3}}}))
    path = _seeded(tmp_path, seeds=[0, 1], steps=[{"notebook": "01_data.ipynb"}, {"notebook": "04_train.ipynb"}])
    with pytest.raises(ValueError, match=r"step 04_train sets none"):
        P.load_profile(path)
    path = _seeded(tmp_path, seeds=[0, 1], steps=[
        {"notebook": "01_data.ipynb"}, {"notebook": "04_train.ipynb", "name": "a", "parameters": {"run_name": "a"}},
        {"notebook": "04_train.ipynb", "name": "b", "parameters": {"run_name": "a_s1"}}])
    with pytest.raises(ValueError, match=r"name a seed's run 'a_s1', which another run"):
        P.load_profile(path)


def test_a_profile_of_an_older_version_still_loads_with_its_ablation_switches(tmp_path, capsys):
    """Before ablate was a 04_train parameter, profiles wrote no_mv / no_cr / no_balance (and repeated
    TrainConfig's defaults): such a profile is read once, each switch as ablate, with a one-line note."""
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({
        "profile": "old", "defaults": {"04_train": {"no_balance": True, "epochs": 10, "lr": 0.002}},
        "steps": [{"notebook": "04_train.ipynb", "name": "nomv",
                   "parameters": {"group": "12au", "no_mv": True, "no_cr": False, "run_name": "12_nomv"}},
                  {"notebook": "04_train.ipynb", "name": "plain", "parameters": {"group": "12au"}}]}))
    old = P.load_profile(str(path))
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 2 and all(str(path) in n and "old spelling" in n for n in notes), notes
    nomv, plain = (P.resolve(old, "04_train", s.parameters) for s in old.steps)
    assert nomv["ablate"] == ["mv"] and "no_mv" not in nomv       # the step's own switches replace the defaults'
    assert plain["ablate"] == ["balance"] and plain["epochs"] == 10 and plain["backbones"] == ["lcnet_050"] * 2
    with pytest.raises(P.SettingError, match="no_cr = 'yes' must be true or false"):
        path.write_text(yaml.safe_dump({"steps": [{"notebook": "04_train.ipynb", "parameters": {"no_cr": "yes"}}]}))
        P.load_profile(str(path))


def test_builtin_training_defaults_are_trainconfigs(tmp_path):
    """base.yaml leaves 04_train's TrainConfig keys null; resolving fills in TrainConfig's own defaults."""
    from aulib.model.config import TrainConfig

    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump({"steps": [{"notebook": "04_train.ipynb"}]}))
    resolved = P.resolve(P.load_profile(str(path)), "04_train")
    keys = ("group", "backbones", "stage", "epochs", "img_size", "batch_size", "lr", "ablate")
    assert {k: resolved[k] for k in keys} == {k: getattr(TrainConfig(), k) for k in keys}
