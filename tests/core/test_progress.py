"""Progress bars: widgets in a notebook kernel even after papermill is imported
(the profile loader imports it in JupyterLab kernels), text under the runner."""
import os

import IPython
import papermill  # noqa: F401 - imported on purpose: it must not decide the bar kind
import pytest

from aulib import progress
from aulib.pipeline import runner


class ZMQInteractiveShell:      # the class name JupyterLab's / nbclient's kernels report
    pass


@pytest.fixture
def in_kernel(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    monkeypatch.delenv(progress.HEADLESS_ENV, raising=False)


def test_kernel_gets_widget_bars_though_papermill_is_imported(in_kernel):
    assert progress._in_interactive_notebook()


def test_runner_kernels_get_text_bars_and_the_environment_is_restored(in_kernel, monkeypatch):
    with runner._headless_kernels():
        assert os.environ[progress.HEADLESS_ENV] == "1" and not progress._in_interactive_notebook()
    assert progress.HEADLESS_ENV not in os.environ and progress._in_interactive_notebook()
    monkeypatch.setenv(progress.HEADLESS_ENV, "0")
    with runner._headless_kernels():
        pass
    assert os.environ[progress.HEADLESS_ENV] == "0"


def test_outside_a_kernel_bars_are_text(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not progress._in_interactive_notebook()


def _piped_bar(monkeypatch, capsys, steps, leave, sleep=0.0, interval="0.2", total=True):
    """What a bar writes to a pipe (stderr not a TTY) over ``steps`` updates."""
    import time

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    monkeypatch.setenv("AULIB_PROGRESS_INTERVAL", interval)
    monkeypatch.delenv("AULIB_PROGRESS", raising=False)
    bar = progress.progress(total=steps if total else None, desc="epoch 1/2", unit="batch", leave=leave)
    for _ in range(steps):
        time.sleep(sleep)
        bar.update(1)
    bar.close()
    return capsys.readouterr().err


def test_piped_bars_print_whole_lines_and_never_a_frozen_zero(monkeypatch, capsys):
    """Issue 25.3: in a pipe no '0/75' line, no carriage return, no blanking;
    a short epoch (leave=False) prints nothing, a slow one prints periodic lines."""
    assert _piped_bar(monkeypatch, capsys, 75, leave=False) == ""
    err = _piped_bar(monkeypatch, capsys, 8, leave=False, sleep=0.1)
    lines = err.splitlines()
    assert "\r" not in err and err.endswith("\n") and 2 <= len(lines) <= 6, repr(err)
    assert all(ln.startswith("epoch 1/2: ") and "batch/s" in ln for ln in lines)
    assert not any(" 0/8" in ln for ln in lines)


def test_piped_bars_that_are_left_close_with_one_line(monkeypatch, capsys):
    err = _piped_bar(monkeypatch, capsys, 5, leave=True, interval="10")
    assert err == err.strip("\r") and err.splitlines() == [err.strip()] and "100% 5/5" in err
    err = _piped_bar(monkeypatch, capsys, 5, leave=True, interval="10", total=False)
    assert err.startswith("epoch 1/2: 5 [") and err.count("\n") == 1
