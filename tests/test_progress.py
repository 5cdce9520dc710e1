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
