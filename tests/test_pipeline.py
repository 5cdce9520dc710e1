"""The notebook pipeline runner on tiny throwaway notebooks (no aulib logic)."""
import nbformat
import pytest
import yaml

from aulib import pipeline


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body_src)]
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "notebooks" / "profiles").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    monkeypatch.setenv("AULIB_ROOT", str(root))
    log = tmp_path / "log.txt"
    _notebook(root / "notebooks" / "01_a.ipynb", "profile = 'x'\nworkspace = None\nn = 1",
              f"open({str(log)!r}, 'a').write(f'a{{n}}\\n')")
    _notebook(root / "notebooks" / "02_b.ipynb", "profile = 'x'\nworkspace = None\nk = 0",
              f"assert k >= 0, 'k must be >= 0'\nopen({str(log)!r}, 'a').write(f'b{{k}}\\n')")
    return root, log


def _profile(root, steps, name="t"):
    (root / "notebooks" / "profiles" / f"{name}.yaml").write_text(
        yaml.safe_dump({"profile": name, "steps": steps, "tables": {"baseline": ["r1"]}}))


def test_runs_in_order_skips_up_to_date_and_reruns_downstream(project):
    root, log = project
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}},
                    {"notebook": "02_b.ipynb", "name": "one", "parameters": {"k": 1}},
                    {"notebook": "02_b.ipynb", "name": "two", "parameters": {"k": 2}}])
    ws = pipeline.run("t")
    assert log.read_text().split() == ["a5", "b1", "b2"]
    assert (ws.notebooks / "02_b__two.ipynb").exists()
    assert yaml.safe_load((ws.root / "table_spec.yaml").read_text()) == {"baseline": ["r1"]}
    pipeline.run("t")                      # nothing changed: all skipped
    assert log.read_text().split() == ["a5", "b1", "b2"]
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}},
                    {"notebook": "02_b.ipynb", "name": "one", "parameters": {"k": 3}},
                    {"notebook": "02_b.ipynb", "name": "two", "parameters": {"k": 2}}])
    pipeline.run("t")                      # step one changed: it and the step after rerun
    assert log.read_text().split() == ["a5", "b1", "b2", "b3", "b2"]
    pipeline.run("t", force=True)
    assert log.read_text().split()[-3:] == ["a5", "b3", "b2"]


def test_stops_at_first_failing_notebook_and_names_the_cell(project, capsys):
    root, log = project
    _profile(root, [{"notebook": "02_b.ipynb", "parameters": {"k": -1}},
                    {"notebook": "01_a.ipynb"}])
    with pytest.raises(SystemExit):
        pipeline.run("t")
    err = capsys.readouterr().err
    assert "02_b" in err and "AssertionError" in err and "k must be >= 0" in err
    assert not log.exists()                 # the step after the failure never ran


def test_unknown_parameter_and_duplicate_names_fail_before_running(project):
    root, log = project
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"nn": 5}}])
    with pytest.raises(ValueError, match="does not declare"):
        pipeline.run("t")
    _profile(root, [{"notebook": "01_a.ipynb"}, {"notebook": "01_a.ipynb"}])
    with pytest.raises(ValueError, match="unique"):
        pipeline.run("t")
    with pytest.raises(FileNotFoundError, match="known profiles"):
        pipeline.run("nope")
    assert not log.exists()


@pytest.mark.parametrize("name", ["ci", "demo", "paper"])
def test_shipped_profiles_plan_cleanly(name, tmp_path):
    """Every step of the shipped profiles names an existing notebook and only
    parameters that notebook declares; table specs name trained runs."""
    from aulib.workspace import Workspace

    profile = pipeline.load_profile(name)
    steps = pipeline.plan(profile, Workspace(tmp_path, tmp_path / "results"), {})
    trained = {p["run_name"] for s, _, p in steps if s.notebook == "04_train.ipynb"}
    trained |= {f"{p['group']}_base" for s, _, p in steps if s.notebook == "03_noisy_filter.ipynb"}
    for group, rows in profile.tables.items():
        if isinstance(rows, dict):
            named = {r for v in rows.values() for r in ([v] if isinstance(v, str) else v)}
            assert named <= trained, (group, named - trained)
    finetunes = [p for s, _, p in steps if p.get("stage") == "finetune"]
    assert finetunes and all(p["init_from"].split("/")[-1] in trained for p in finetunes)
