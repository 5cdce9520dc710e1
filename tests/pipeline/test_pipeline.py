"""The notebook pipeline runner on tiny throwaway notebooks in a throwaway project."""
import nbformat
import papermill
import pytest
import yaml

from aulib import pipeline
from aulib.pipeline import runner

RESOLVE = "from aulib.pipeline import step_settings\np = step_settings({stem!r}, globals())\nglobals().update(p)\n"


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body_src)]
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """notebooks 01_a (n, data_root, dataset) and 02_b (k; resolves itself through
    step_settings, as the real notebooks do), built-in defaults n=1, k=0."""
    root = tmp_path / "proj"
    (root / "notebooks" / "profiles").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    monkeypatch.setenv("AULIB_ROOT", str(root))
    monkeypatch.delenv("AULIB_PROFILE", raising=False)
    log = tmp_path / "log.txt"
    _notebook(root / "notebooks" / "01_a.ipynb", "profile = None\nworkspace = None\nn = None\ndata_root = None\ndataset = None",
              f"open({str(log)!r}, 'a').write(f'a{{n}}\\n')")
    _notebook(root / "notebooks" / "02_b.ipynb", "profile = None\nworkspace = None\nk = None",
              RESOLVE.format(stem="02_b") +
              f"assert k >= 0, 'k must be >= 0'\nopen({str(log)!r}, 'a').write(f'b{{k}} {{p.ws.root.name}}\\n')")
    (root / "notebooks" / "profiles" / "base.yaml").write_text(yaml.safe_dump(
        {"defaults": {"01_a": {"n": 1, "data_root": None, "dataset": "csv"}, "02_b": {"k": 0}}}))
    return root, log


def _profile(root, steps, name="t", path=None, **extra):
    path = path or root / "notebooks" / "profiles" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"profile": name, "steps": steps, "tables": {"baseline": ["r1"]}, **extra}))
    return path


def _lines(log):
    return log.read_text().splitlines() if log.exists() else []


def test_runs_in_order_skips_up_to_date_and_reruns_downstream(project):
    root, log = project
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}},
                    {"notebook": "02_b.ipynb", "name": "one", "parameters": {"k": 1}},
                    {"notebook": "02_b.ipynb", "name": "two", "parameters": {"k": 2}}])
    ws = runner.run("t")
    assert _lines(log) == ["a5", "b1 t", "b2 t"]
    assert (ws.notebooks / "02_b__two.ipynb").exists()
    assert yaml.safe_load((ws.root / "table_spec.yaml").read_text()) == {"baseline": ["r1"]}
    runner.run("t")                      # nothing changed: all skipped
    assert len(_lines(log)) == 3
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}},
                    {"notebook": "02_b.ipynb", "name": "one", "parameters": {"k": 3}},
                    {"notebook": "02_b.ipynb", "name": "two", "parameters": {"k": 2}}])
    runner.run("t")                      # step one changed: it and the step after rerun
    assert _lines(log)[3:] == ["b3 t", "b2 t"]
    runner.run("t", force=True)
    assert _lines(log)[-3:] == ["a5", "b3 t", "b2 t"]


def test_profile_defaults_reach_the_step_and_its_fingerprint(project):
    root, log = project
    steps = [{"notebook": "01_a.ipynb"}, {"notebook": "02_b.ipynb"}]
    _profile(root, steps, defaults={"02_b": {"k": 7}})
    runner.run("t")
    assert _lines(log) == ["a1", "b7 t"]      # built-in n, the profile's k
    _profile(root, steps, defaults={"02_b": {"k": 8}}, common={"n": 2})
    runner.run("t")                          # common and defaults are in the fingerprint
    assert _lines(log)[2:] == ["a2", "b8 t"]


def test_profile_by_path_outside_the_repo(project, tmp_path):
    root, log = project
    path = _profile(root, [{"notebook": "02_b.ipynb"}], name="mine", path=tmp_path / "elsewhere" / "my.yaml",
                    defaults={"02_b": {"k": 4}})
    ws = runner.run(str(path))
    assert ws.root == root / "runs" / "mine"
    assert _lines(log) == ["b4 mine"]          # the notebook found the profile again by its path
    stamp = yaml.safe_load((ws.notebooks / "02_b.stamp.yaml").read_text())
    assert stamp["parameters"]["profile"] == str(path) and stamp["parameters"]["k"] == 4
    with pytest.raises(FileNotFoundError) as e:
        runner.run(str(tmp_path / "elsewhere" / "nope.yaml"))
    assert str(tmp_path / "elsewhere" / "nope.yaml") in str(e.value) and ".yaml.yaml" not in str(e.value)


def test_explicit_papermill_value_wins_over_the_profile_which_wins_over_builtin(project, tmp_path, monkeypatch):
    root, log = project
    _profile(root, [{"notebook": "02_b.ipynb"}], defaults={"02_b": {"k": 7}})
    nb, out = str(root / "notebooks" / "02_b.ipynb"), str(tmp_path / "out.ipynb")
    papermill.execute_notebook(nb, out, parameters={"profile": "t", "k": 5}, kernel_name="python3", progress_bar=False)
    monkeypatch.setenv("AULIB_PROFILE", "t")
    papermill.execute_notebook(nb, out, kernel_name="python3", progress_bar=False)
    _profile(root, [{"notebook": "02_b.ipynb"}], name="u")
    monkeypatch.setenv("AULIB_PROFILE", "u")
    papermill.execute_notebook(nb, out, kernel_name="python3", progress_bar=False)
    assert _lines(log) == ["b5 t", "b7 t", "b0 u"]


def test_changed_input_file_reruns_the_data_step_and_everything_after(project, tmp_path):
    root, log = project
    data = tmp_path / "data"
    data.mkdir()
    labels = data / "labels.csv"
    labels.write_text("image,AU1\na.jpg,0\nb.jpg,1\n")
    _profile(root, [{"notebook": "01_a.ipynb"}, {"notebook": "02_b.ipynb"}])
    runner.run("t", data_root=str(data))
    runner.run("t", data_root=str(data))
    assert _lines(log) == ["a1", "b0 t"]       # unchanged data: skipped
    labels.write_text("image,AU1\na.jpg,1\nb.jpg,1\n")
    ws = runner.run("t", data_root=str(data))
    assert _lines(log) == ["a1", "b0 t", "a1", "b0 t"]
    stamp = yaml.safe_load((ws.notebooks / "01_a.stamp.yaml").read_text())
    st = labels.stat()
    assert [str(labels), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns] in stamp["inputs"]


def test_stops_at_first_failing_notebook_and_names_the_cell(project, capsys):
    root, log = project
    _profile(root, [{"notebook": "02_b.ipynb", "parameters": {"k": -1}},
                    {"notebook": "01_a.ipynb"}])
    with pytest.raises(SystemExit):
        runner.run("t")
    err = capsys.readouterr().err
    assert "02_b" in err and "AssertionError" in err and "k must be >= 0" in err
    assert not log.exists()                 # the step after the failure never ran


@pytest.mark.parametrize("extra, message", [
    ({"steps": [{"notebook": "01_a.ipynb", "parameters": {"nn": 5}}]}, r"step 01_a sets 'nn'.*did you mean 'n'"),
    ({"defaults": {"02_b": {"kk": 1}}}, r"defaults.02_b sets 'kk'.*02_b.ipynb does not declare; did you mean 'k'"),
    ({"common": {"datset": "csv"}}, r"common sets 'datset'.*did you mean 'dataset'"),
    ({"defaults": {"02_bb": {"k": 1}}}, r"defaults sets '02_bb'.*did you mean '02_b'"),
    ({"stesp": []}, r"the top level sets 'stesp'.*did you mean 'steps'"),
    ({"common": {"workspace": "/tmp/x"}}, r"common sets 'workspace', which the runner sets itself"),
])
def test_unknown_keys_are_refused_before_running_naming_file_section_and_key(project, extra, message):
    root, log = project
    steps = extra.pop("steps", [{"notebook": "01_a.ipynb"}, {"notebook": "02_b.ipynb"}])
    path = _profile(root, steps, **extra)
    with pytest.raises(ValueError, match=message) as e:
        runner.run("t")
    assert str(path) in str(e.value)
    assert not log.exists()


def test_duplicate_names_and_unknown_profiles_fail_before_running(project):
    root, log = project
    _profile(root, [{"notebook": "01_a.ipynb"}, {"notebook": "01_a.ipynb"}])
    with pytest.raises(ValueError, match="unique"):
        runner.run("t")
    with pytest.raises(FileNotFoundError, match="known profiles"):
        runner.run("nope")
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
    assert all(p["workspace"] == str(tmp_path) for _, _, p in steps)


def _summary_notebook(root, log):
    """A stand-in for notebooks/09_kfold_summary.ipynb: logs its workspace and the profile's folds and protocol."""
    _notebook(root / "notebooks" / "09_kfold_summary.ipynb", "profile = None\nworkspace = None",
              RESOLVE.format(stem="09_kfold_summary") + "from aulib.pipeline import load_profile\n"
              "prof = load_profile(p['profile'])\n"
              f"open({str(log)!r}, 'a').write(f'summary {{p.ws.root.name}} {{prof.kfold}} {{prof.protocol.get(\"folds\")}}\\n')")


def test_kfold_protocol_runs_every_step_once_per_fold(project, capsys):
    """protocol: {kfold: K}: the steps run in <workspace>/fold<k> with kfold/fold given
    to the notebook that declares them; fold k > 1 gets fold 1's face cache; then the
    summary's step, notebook 09_kfold_summary, once in <workspace>: a step like the others
    (stamped, listed, skipped when no fold changed, out of date when one did)."""
    from aulib.pipeline import cli

    root, log = project
    _notebook(root / "notebooks" / "03_c.ipynb", "profile = None\nworkspace = None\nkfold = None\nfold = None",
              RESOLVE.format(stem="03_c") + f"open({str(log)!r}, 'a').write(f'c{{kfold}}/{{fold}} {{p.ws.root.name}}\\n')\n"
              "(p.ws.root / 'faces.csv').write_text('image\\n') if fold == 1 else None")
    _summary_notebook(root, log)
    base = yaml.safe_load((root / "notebooks" / "profiles" / "base.yaml").read_text())
    base["defaults"]["03_c"] = {"kfold": 0, "fold": None}
    (root / "notebooks" / "profiles" / "base.yaml").write_text(yaml.safe_dump(base))
    steps = [{"notebook": "02_b.ipynb"}, {"notebook": "03_c.ipynb"}]
    _profile(root, steps, protocol={"kfold": 3})
    ws = runner.run("t", quiet=True)
    assert _lines(log) == ["b0 fold1", "c3/1 fold1", "b0 fold2", "c3/2 fold2", "b0 fold3", "c3/3 fold3", "summary t 3 None"]
    assert (ws.notebooks / "09_kfold_summary.stamp.yaml").exists() and (ws.notebooks / "09_kfold_summary.ipynb").exists()
    assert (ws.root / "fold3" / "faces.csv").stat().st_ino == (ws.root / "fold1" / "faces.csv").stat().st_ino
    capsys.readouterr()
    runner.run("t", quiet=True)                      # nothing changed: every step skipped, the summary's too
    assert len(_lines(log)) == 7 and "[skip] 09_kfold_summary: up to date" in capsys.readouterr().out
    runner.main(["--profile", "t", "--list"])
    listed = capsys.readouterr().out.split("=== k-fold summary\n")
    assert len(listed) == 2 and "09_kfold_summary" in listed[1] and "up to date" in listed[1]
    _profile(root, steps, protocol={"kfold": 3}, defaults={"02_b": {"k": 1}})    # a fold's step changed:
    *_, (heading, _, summary) = cli.passes(pipeline.load_profile("t"), ws, {})    # the summary is out of date
    assert heading == "k-fold summary" and [s.up_to_date for s in summary] == [False]
    for bad, msg in (({"kfold": 1}, "kfold must be an integer >= 2"), ({"fold": 3}, "'fold', which a protocol")):
        _profile(root, [{"notebook": "02_b.ipynb"}], protocol=bad)
        with pytest.raises(ValueError, match=msg):
            runner.run("t")


def test_named_protocol_folds_run_once_per_fold(project, monkeypatch):
    """protocol: {folds: disfa_3fold}: 3 fold workspaces, each given folds/fold,
    then the summary's step in the top workspace; affwild2_official is one fold;
    unknown names are refused at load, listing the known ones."""
    from aulib.pipeline import cli

    root, log = project
    _summary_notebook(root, log)
    calls = []
    monkeypatch.setattr(runner, "_run_steps", lambda profile, ws, states, *_: calls.append(
        (ws.root.name, [s.step.name for s in states])) or states)
    for name, folds, n in (("t", "disfa_3fold", 3), ("aw", "affwild2_official", 1)):
        _profile(root, [{"notebook": "02_b.ipynb"}], name=name, protocol={"folds": folds})
        calls.clear()
        ws = runner.run(name)
        assert calls == [(f"fold{k}", ["02_b"]) for k in range(1, n + 1)] + [(name, ["09_kfold_summary"])]
        assert [given for *_, given in cli.workspaces(pipeline.load_profile(name), ws, {})] == [
            {"published_folds": folds, "fold": k} for k in range(1, n + 1)]
    for bad, msg in (({"folds": "bp4d"}, r"unknown protocol folds 'bp4d'; the kit knows \['affwild2_official', "
                                         r"'bp4d_3fold', 'disfa_3fold'\]"),
                     ({"folds": "bp4d_3fold", "kfold": 3}, "sets both kfold")):
        _profile(root, [{"notebook": "02_b.ipynb"}], protocol=bad)
        with pytest.raises(ValueError, match=msg):
            runner.run("t")


def test_profile_groups_are_values_and_checked(project):
    from aulib import aus

    root, _ = project
    _profile(root, [{"notebook": "02_b.ipynb"}], name="g", groups={"mine7": {"aus": [1, 2, 12], "crop": "box1.3"}})
    profile = pipeline.load_profile("g")
    assert profile.groups == {"mine7": aus.AUGroup("mine7", (1, 2, 12), "box1.3")}
    assert "mine7" not in aus.BUILTIN and profile.table_spec()["groups"] == {"mine7": {"aus": [1, 2, 12],
                                                                                       "crop": "box1.3"}}
    _profile(root, [{"notebook": "02_b.ipynb"}], name="g", groups={"17au": {"aus": [1, 2]}})
    with pytest.raises(ValueError, match=r"g\.yaml: groups: group '17au' is a built-in group"):
        pipeline.load_profile("g")


def test_seeds_run_each_training_step_per_seed_and_the_table_spec_lists_the_replicas(project):
    """seeds: [0, 3]: every 04_train step runs once more as <run>_s3 with overrides {seed: 3}
    (the notebook receives them), a finetune's init_from names its own seed's pretrain
    run, and table_spec.yaml maps each run to its replicas."""
    root, log = project
    _notebook(root / "notebooks" / "04_train.ipynb",
              "profile = None\nworkspace = None\nrun_name = None\ninit_from = None\noverrides = None",
              f"open({str(log)!r}, 'a').write(f'{{run_name}} {{overrides}} {{init_from}}\\n')")
    base = yaml.safe_load((root / "notebooks" / "profiles" / "base.yaml").read_text())
    base["defaults"]["04_train"] = {"run_name": None, "init_from": None, "overrides": {}}
    (root / "notebooks" / "profiles" / "base.yaml").write_text(yaml.safe_dump(base))
    _profile(root, [{"notebook": "04_train.ipynb", "name": "pre", "parameters": {"run_name": "pre"}},
                    {"notebook": "04_train.ipynb", "name": "ft",
                     "parameters": {"run_name": "ft", "init_from": "train/pre", "overrides": {"lr": 0.1}}},
                    {"notebook": "02_b.ipynb"}], seeds=[0, 3])
    ws = runner.run("t")
    assert _lines(log) == ["pre {} None", "pre_s3 {'seed': 3} None", "ft {'lr': 0.1} train/pre",
                           "ft_s3 {'lr': 0.1, 'seed': 3} train/pre_s3", "b0 t"]
    assert (ws.notebooks / "04_train__ft_s3.ipynb").exists()
    assert yaml.safe_load((ws.root / "table_spec.yaml").read_text()) == {
        "baseline": ["r1"], "seed_replicas": {"pre": {0: "pre", 3: "pre_s3"}, "ft": {0: "ft", 3: "ft_s3"}}}


def _cli(root, *args, timeout=240, python_args=()):
    import os
    import subprocess
    import sys

    env = {**os.environ, "AULIB_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    env.pop("AULIB_PROFILE", None)
    return subprocess.run([sys.executable, *python_args, "-m", "aulib.pipeline", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_cli_prints_step_k_of_n_streams_the_notebook_and_leaves_no_empty_stderr(project):
    """Issue 25.3: 'step k/N', the notebook's lines as they happen (indented),
    no kernel TCP-encryption warnings, no empty stderr blocks in the executed copy."""
    root, log = project
    _notebook(root / "notebooks" / "03_e.ipynb", "profile = None\nworkspace = None",
              "import time\nfrom aulib.progress import progress\n"
              "for e in (1, 2):\n    bar = progress(total=5, desc=f'epoch {e}/2', leave=False)\n"
              "    for _ in range(5):\n        bar.update(1)\n    bar.close()\n    print(f'[run] epoch {e}/2 done', flush=True)")
    _profile(root, [{"notebook": "01_a.ipynb"}, {"notebook": "03_e.ipynb"}])
    proc = _cli(root, "--profile", "t")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[run ] step 1/2 01_a" in out and "[run ] step 2/2 03_e" in out
    assert out.index("      | [run] epoch 1/2 done") < out.index("[done] 03_e")
    assert "without encryption" not in out and "\r" not in out
    nb = nbformat.read(root / "runs" / "t" / "notebooks" / "03_e.ipynb", 4)
    streams = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "stream"]
    assert [o["text"] for o in streams if o["name"] == "stdout"] == ["[run] epoch 1/2 done\n", "[run] epoch 2/2 done\n"]
    assert not [o for o in streams if o["name"] == "stderr" and not o["text"].strip()]
    again = _cli(root, "--profile", "t")
    assert "[skip] 01_a: up to date" in again.stdout and "step 1/" not in again.stdout


def test_list_and_dry_run_say_what_would_run_and_write_nothing(project, capsys):
    root, log = project
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}}, {"notebook": "02_b.ipynb"}])
    ws_root = root / "runs" / "t"
    runner.main(["--profile", "t", "--list"])
    listed = capsys.readouterr().out
    assert '01_a' in listed and '"n": 5' in listed and '"k": 0' in listed and listed.count("will run") == 2
    runner.main(["--profile", "t", "--dry-run"])
    assert "2 step(s) would run; no step has run here before" in capsys.readouterr().out
    assert not ws_root.exists() and _lines(log) == []          # nothing written, nothing run
    runner.run("t", quiet=True)
    capsys.readouterr()
    runner.main(["--profile", "t", "--list"])
    listed = capsys.readouterr().out
    assert listed.count("up to date, last run") == 2 and "nothing to run" in listed
    _profile(root, [{"notebook": "01_a.ipynb", "parameters": {"n": 5}}, {"notebook": "02_b.ipynb", "parameters": {"k": 2}}])
    runner.main(["--profile", "t", "--dry-run"])
    dry = capsys.readouterr().out
    assert "02_b" in dry and "01_a" not in dry.split("\n", 1)[1] and '{"k": 2}' in dry
    assert "1 step(s) would run; about" in dry
    stamps = sorted(p.name for p in (ws_root / "notebooks").iterdir())
    runner.main(["--profile", "t", "--dry-run", "--force"])
    assert "2 step(s) would run" in capsys.readouterr().out
    assert sorted(p.name for p in (ws_root / "notebooks").iterdir()) == stamps and len(_lines(log)) == 2


def test_help_and_list_import_no_torch(project):
    """Issue 25.4: ``--help`` and ``--list`` import neither torch nor the runner
    (nor papermill, which the runner loads to run a step), so they answer at once."""
    root, _ = project
    _profile(root, [{"notebook": "01_a.ipynb"}])
    for args in (["--help"], ["--profile", "t", "--list"]):
        proc = _cli(root, *args, python_args=("-X", "importtime"), timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")}
        assert "aulib.pipeline.cli" in imported and "torch" not in imported and "aulib.pipeline.runner" not in imported


def test_list_with_a_data_root_not_yet_in_place_says_what_would_run(tmp_path, capsys):
    """A data root that does not exist yet (typo, unmounted disk) is planned, not a traceback:
    the data step is out of date, and running it names what is missing."""
    runner.main(["--profile", "bp4d", "--data-root", str(tmp_path / "not there"), "--workspace",
                 str(tmp_path / "ws"), "--list"])
    out = capsys.readouterr().out
    assert "01_data" in out and "will run" in out and not (tmp_path / "ws").exists()


def _git(root, *args):
    import subprocess

    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout


def test_demo_notebooks_leave_the_committed_results_alone_until_publish(project, capsys):
    """Issue 35.6: a `demo` step writing tables (as 07_tables does) writes runs/demo/results/, so
    `git status` stays clean; `--publish` copies it over results/ (a file only results/ has is kept
    and named), and is refused, copying nothing, while a step is out of date."""
    root, _ = project
    _notebook(root / "notebooks" / "07_w.ipynb", "profile = None\nworkspace = None\nk = None",
              RESOLVE.format(stem="07_w") + "from aulib.io import write_text\nwrite_text(p.ws.tables / 't.csv', f'k,{k}\\n')")
    base = root / "notebooks" / "profiles" / "base.yaml"
    base.write_text(yaml.safe_dump({"defaults": {**yaml.safe_load(base.read_text())["defaults"], "07_w": {"k": 0}}}))
    _profile(root, [{"notebook": "07_w.ipynb"}], name="demo")
    (root / ".gitignore").write_text("/runs/\n")
    (root / "results" / "tables").mkdir(parents=True)
    (root / "results" / "tables" / "t.csv").write_text("k,old\n")
    (root / "results" / "seed_spread.csv").write_text("by hand\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "clone")
    runner.main(["--profile", "demo", "--quiet"])
    assert (root / "runs" / "demo" / "results" / "tables" / "t.csv").read_text() == "k,0\n"
    assert _git(root, "status", "--porcelain") == ""
    capsys.readouterr()
    runner.main(["--profile", "demo", "--quiet", "--publish"])
    out = capsys.readouterr().out
    assert "[skip] 07_w: up to date" in out and "1 file(s) new or changed" in out and "seed_spread.csv" in out
    assert (root / "results" / "tables" / "t.csv").read_text() == "k,0\n"
    assert (root / "results" / "seed_spread.csv").read_text() == "by hand\n"
    assert _git(root, "status", "--porcelain").split() == ["M", "results/tables/t.csv"]
    assert not [p for p in root.iterdir() if p.name.startswith(".results")]          # no staging folder left
    _profile(root, [{"notebook": "01_a.ipynb"}, {"notebook": "07_w.ipynb", "parameters": {"k": 3}}], name="demo")
    with pytest.raises(SystemExit):
        runner.main(["--profile", "demo", "--quiet", "--only", "01_a", "--publish"])
    err = capsys.readouterr().err
    assert "not published" in err and "07_w" in err
    assert (root / "results" / "tables" / "t.csv").read_text() == "k,0\n"


def test_publish_refuses_an_empty_workspace_and_nested_folders(tmp_path):
    from aulib.pipeline.publish import publish

    with pytest.raises(FileNotFoundError, match="nothing to publish"):
        publish(tmp_path / "ws" / "results", tmp_path / "results")
    (tmp_path / "ws" / "results").mkdir(parents=True)
    (tmp_path / "ws" / "results" / "a.txt").write_text("a")
    with pytest.raises(ValueError, match="inside"):
        publish(tmp_path / "ws" / "results", tmp_path / "ws")
    done = publish(tmp_path / "ws" / "results", tmp_path / "results")
    assert done.changed == ["a.txt"] and (tmp_path / "results" / "a.txt").read_text() == "a"
    assert publish(tmp_path / "ws" / "results", tmp_path / "results").same == ["a.txt"]
