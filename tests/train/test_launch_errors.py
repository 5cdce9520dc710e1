"""A torchrun child's exception reaches the user: run_training raises it with
its type, message and rank, and the pipeline runner prints it, ending with
the executed notebook's path."""
import pytest
import yaml

from aulib.pipeline import runner
from aulib.train import TrainConfig
from aulib.train.errors import ChildProcessFailed, child_failure, record_child_errors
from aulib.train.launch import run_training

TINY = ["test_efficientnet", "test_efficientnet"]


def test_recorded_error_file_names_rank_type_and_message(tmp_path, monkeypatch):
    err = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(err))
    monkeypatch.setenv("RANK", "1")

    @record_child_errors
    def entry():
        raise KeyError("no AU 99")

    with pytest.raises(KeyError):
        entry()
    failure = child_failure(err, "r", 2, 1)
    assert (failure.rank, failure.exc_type, failure.exc_message) == (1, "KeyError", "'no AU 99'")
    assert "child rank 1" in str(failure) and "KeyError: 'no AU 99'" in str(failure)
    assert "in entry" in str(failure)                    # the raising frame
    assert child_failure(tmp_path / "none.json", "r", 2, 1) is None


@pytest.mark.slow
def test_torchrun_child_exception_and_rank_reach_run_training(tmp_path):
    cfg = TrainConfig(workspace=str(tmp_path / "ws"), run_name="bad", backbones=TINY, train_splits=["nosuch"])
    with pytest.raises(ChildProcessFailed) as info:
        run_training(cfg, nproc=2)
    e = info.value
    assert e.exc_type == "FileNotFoundError" and "split 'nosuch' not found" in e.exc_message
    assert e.rank in (0, 1) and f"child rank {e.rank} (of 2 processes" in str(e)
    assert "ChildFailedError" not in str(e)


def test_runner_prints_any_failure_then_the_notebook_path(tmp_path, monkeypatch, capsys):
    import papermill

    def dies(*args, **kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"profile": "p", "steps": [{"notebook": "05_convergence.ipynb"}]}))
    with pytest.raises(SystemExit):
        runner.run(str(profile), workspace=str(tmp_path / "ws"))
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].strip() == "RuntimeError: Kernel died before replying to kernel_info"
    assert err[-1].endswith(str(tmp_path / "ws" / "notebooks" / "05_convergence.ipynb"))


@pytest.mark.slow
def test_runner_names_the_childs_exception_rank_and_notebook(tmp_path, capsys):
    profile = tmp_path / "p.yaml"
    step = {"notebook": "04_train.ipynb", "name": "bad",
            "parameters": {"run_name": "bad", "backbones": TINY, "epochs": 1, "nproc": 2,
                           "overrides": {"train_splits": ["nosuch"]}}}
    profile.write_text(yaml.safe_dump({"profile": "p", "steps": [step]}))
    with pytest.raises(SystemExit):
        runner.run(str(profile), workspace=str(tmp_path / "ws"))
    err = capsys.readouterr().err.strip().splitlines()
    text = "\n".join(err)
    assert "ChildProcessFailed: training run 'bad' failed in torchrun child rank" in text
    assert "FileNotFoundError: split 'nosuch' not found" in text
    assert "ChildFailedError" not in text
    assert err[-1].endswith(str(tmp_path / "ws" / "notebooks" / "04_train__bad.ipynb"))
