"""One typed settings schema for TrainConfig and every profile key: wrong
types and out-of-range values are refused before anything is written, naming
the file/step, the key, the value and what is allowed; ``python -m
aulib.train`` prints its usage without settings and lists every key with its
default and meaning in ``--help`` (generated, without importing torch)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aulib.pipeline import runner as pipeline
from aulib.pipeline import profile as P
from aulib.train import TrainConfig
from aulib.workspace import repo_root

ENV = {**os.environ, "PYTHONPATH": str(repo_root())}

BAD_TRAIN = [("epochs", "ten", "an integer >= 1"), ("batch_size", "16", "an integer >= 1"),
             ("lr", "fast", "a number >= 0"), ("epochs", 1.5, "an integer >= 1"), ("batch_size", 7.5, "integer"),
             ("img_size", 32.5, "an integer >= 8"), ("alpha", 5, "in (0, 1]"), ("warmup_epochs", -3, ">= 0"),
             ("keep_checkpoints", 0, "'all' or 'last'"), ("backbones", ["a"], "a list of 2"),
             ("stage", "warm", "'plain', 'pretrain' or 'finetune'"), ("multicrop", "yes", "true or false")]


@pytest.mark.parametrize("key,value,allowed", BAD_TRAIN)
def test_train_config_refuses_wrong_types_and_ranges_naming_file_key_value(tmp_path, key, value, allowed):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ValueError) as info:
        TrainConfig.from_yaml(path)
    msg = str(info.value)
    assert str(path) in msg and f"{key} = {value!r}" in msg and allowed in msg
    with pytest.raises(ValueError, match=key):           # the Python API too
        TrainConfig(**{key: value})


def test_yaml_exponent_without_dot_gets_a_hint(tmp_path):
    with pytest.raises(ValueError, match=r"write it with a dot, e.g. 0.0003"):
        TrainConfig.from_dict({"lr": "3e-4"})
    assert TrainConfig.from_dict({"lr": 3.0e-4, "warmup_epochs": 0, "keep_checkpoints": "last"}).lr == 3.0e-4


def test_cli_refuses_fractional_epochs_before_writing_anything(tmp_path):
    ws = tmp_path / "ws"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"workspace": str(ws), "run_name": "r", "epochs": 1.5}))
    p = subprocess.run([sys.executable, "-m", "aulib.train", "--config", str(cfg)], capture_output=True, text=True,
                       env=ENV, timeout=120)
    assert p.returncode != 0 and "epochs = 1.5 is not allowed" in p.stderr and str(cfg) in p.stderr
    assert not ws.exists()                               # no config.yaml, no preds/B_index.csv


def test_cli_without_settings_prints_usage_and_exits_2():
    p = subprocess.run([sys.executable, "-m", "aulib.train"], capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("usage: python -m aulib.train") and p.stdout == ""


def test_cli_help_lists_every_key_with_default_and_meaning_without_torch():
    from aulib.model.config import TRAIN_SPECS

    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "aulib.train", "--help"], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert p.returncode == 0
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in p.stderr.splitlines() if ln.startswith("import time:")}
    assert "torch" not in imported and "aulib.train.loop" not in imported
    out = p.stdout
    assert len(TRAIN_SPECS) >= 40
    for key, spec in TRAIN_SPECS.items():
        assert f"\n  {key}  [default: " in out, key
        assert spec.help and spec.help in out.replace("\n      ", " ")
    assert "[default: 10]" in out.split("\n  epochs  ", 1)[1].splitlines()[0]


def _profile(tmp_path, **sections) -> Path:
    path = tmp_path / "elsewhere" / "mine.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"profile": "mine", "extends": "ci", **sections}))
    return path


@pytest.mark.parametrize("sections,needle", [
    ({"defaults": {"02_split": {"frac_b": 1.5}}}, "defaults.02_split: frac_b = 1.5 is not allowed"),
    ({"defaults": {"02_split": {"sizes": "48"}}}, "sizes = '48' is not allowed"),
    ({"defaults": {"02_split": {"kfold": 1000}}}, "kfold = 1000 is not allowed"),
    ({"protocol": {"kfold": 1000}}, "protocol kfold = 1000 is not allowed"),
    ({"step_overrides": {"04_train": {"epochs": 1.5}}}, "step_overrides.04_train: epochs = 1.5"),
    ({"defaults": {"04_train": {"overrides": {"alpha": 5}}}}, "overrides.alpha = 5 is not allowed"),
    ({"defaults": {"04_train": {"overrides": {"alhpa": 0.5}}}}, "overrides sets ['alhpa'], which are no TrainConfig"),
    ({"common": {"seed": "0"}}, "common: seed = '0' is not allowed"),
    ({"steps": [{"notebook": "02_split.ipynb", "parameters": {"b_copies": 0}}]}, "step 02_split: b_copies = 0"),
])
def test_profile_values_are_refused_at_load_naming_file_section_and_key(tmp_path, sections, needle):
    path = _profile(tmp_path, **sections)
    with pytest.raises(ValueError) as info:
        P.load_profile(str(path))
    assert needle in str(info.value) and str(path) in str(info.value)


def test_bad_split_value_stops_the_pipeline_before_any_crop_store(tmp_path):
    path = _profile(tmp_path, defaults={"02_split": {"frac_b": 1.5}})
    ws = tmp_path / "ws"
    with pytest.raises(ValueError, match="frac_b"):
        pipeline.run(str(path), workspace=str(ws))
    assert not ws.exists()


def test_explicit_notebook_value_is_checked_too():
    ns = {k: None for k in P.declared_parameters("02_split")}
    with pytest.raises(ValueError, match=r"02_split \(resolved\): frac_b = 1.5"):
        P.step_settings("02_split", {**ns, "profile": "ci", "frac_b": 1.5})


def test_every_notebook_parameter_has_a_spec_and_the_builtin_defaults_pass():
    from aulib.pipeline.params import PARAMS, check_params

    _check_every_profile(PARAMS, check_params)


def _check_every_profile(PARAMS, check_params):

    base = yaml.safe_load((P.profile_dir() / "base.yaml").read_text())["defaults"]
    for stem, values in base.items():
        assert set(PARAMS[stem]) == set(P.declared_parameters(stem)) - set(P.RUNNER_KEYS), stem
        check_params(stem, values, f"base.yaml {stem}")
    for name in ("ci", "demo", "paper", "own_data_template", "noisy_labels_template"):
        prof = P.load_profile(name)
        for step in prof.steps:
            P.resolve(prof, step.stem, step.parameters)


def test_command_line_exponent_is_a_number():
    from aulib.model.config import parse_overrides

    assert parse_overrides(["lr=1e-4", "epochs=3", "run_name=1e5x"]) == {"lr": 1e-4, "epochs": 3, "run_name": "1e5x"}


#: Notebooks whose parameters reach a TrainConfig (03's base run, 04's run).
TRAINING_STEMS = ("03_noisy_filter", "04_train")
#: base.yaml values of a training setting that differ from TrainConfig's on purpose (never a repeat of it).
PIPELINE_CHOICES = {("04_train", "heldout"): "the pipeline's splits hold a held-out split named test; "
                                              "a bare TrainConfig names none"}


def declarations() -> dict[str, list[str]]:
    """{TrainConfig key: every place that declares its type, range, help or default}: TrainConfig itself;
    a notebook parameter's own spec (aulib.pipeline.params) instead of TrainConfig's; a value in
    notebooks/profiles/base.yaml; a default of notebook_config's signature; a value written into a
    training notebook's parameters cell or its comment ("else 10")."""
    import ast
    import dataclasses
    import inspect
    import json
    import re

    from aulib.model.config import TRAIN_SPECS, notebook_config
    from aulib.pipeline.params import PARAMS

    def key_of(name, spec):      # the TrainConfig key a parameter's spec is (or copies), else its name
        same = [k for k, s in TRAIN_SPECS.items()
                if spec is not None and (spec is s or dataclasses.replace(spec, nullable=s.nullable) == s)]
        return same[0] if same else name

    places = {k: ["aulib.model.config.TrainConfig"] for k in TRAIN_SPECS}
    base = yaml.safe_load((P.profile_dir() / "base.yaml").read_text())["defaults"]
    for stem in TRAINING_STEMS:
        for name, spec in PARAMS[stem].items():
            key = key_of(name, spec)
            if key in TRAIN_SPECS and not (spec is TRAIN_SPECS[key] or key != name or spec == TRAIN_SPECS[key]
                                           .nullable_copy()):
                places[key].append(f"aulib.pipeline.params {stem}.{name} (its own spec)")
            if key in TRAIN_SPECS and base[stem].get(name) is not None and (stem, name) not in PIPELINE_CHOICES:
                places[key].append(f"notebooks/profiles/base.yaml {stem}.{name} = {base[stem][name]!r}")
        cell = next(c for c in json.loads((repo_root() / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
                    if "parameters" in c.get("metadata", {}).get("tags", []))
        for line in "".join(cell["source"]).splitlines():
            name, _, rest = line.partition("=")
            value, _, comment = rest.partition("#")
            key = key_of(name.strip(), PARAMS[stem].get(name.strip()))
            said = re.search(r"else (.+?)\s*$", comment)
            written = ast.literal_eval(value.strip()) if value.strip() else None
            if key in TRAIN_SPECS and (stem, key) not in PIPELINE_CHOICES and (
                    written is not None or (said and said.group(1) not in ("TrainConfig's", "none", "None"))):
                places[key].append(f"notebooks/{stem}.ipynb parameters: {line.strip()}")
    for name, p in inspect.signature(notebook_config).parameters.items():
        if name in TRAIN_SPECS and p.default not in (None, inspect.Parameter.empty):
            places[name].append(f"aulib.model.config.notebook_config({name}={p.default!r})")
    return places


def test_every_training_setting_is_declared_once():
    """Its name, type, range, default and help live in TrainConfig alone; the profiles' built-in
    defaults, notebook 04 and the notebook parameters' specs take them from there."""
    twice = {k: v for k, v in declarations().items() if len(v) > 1}
    assert not twice, "training settings declared in several places:\n" + "\n".join(
        f"{k}: {'; '.join(v)}" for k, v in twice.items())
    assert all(why for why in PIPELINE_CHOICES.values())


def test_the_declaration_list_finds_a_second_declaration(monkeypatch):
    """What the list would say on the base.yaml of before (epochs 10, lr 0.002 repeated there)."""
    from aulib.pipeline import params

    monkeypatch.setitem(params.PARAMS["04_train"], "lr", params._s("float", "a learning rate of its own", lo=0))
    found = declarations()["lr"]
    assert found[0] == "aulib.model.config.TrainConfig" and "aulib.pipeline.params 04_train.lr (its own spec)" in found
