"""Profile resolution against the real notebooks and shipped profiles (nothing executed)."""
import pytest
import yaml

from aulib.pipeline import fingerprint as F
from aulib.pipeline import profile as P

STEMS = ["01_data", "02_split", "03_noisy_filter", "04_train", "05_convergence", "06_choose", "07_tables",
         "08_predict"]
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
