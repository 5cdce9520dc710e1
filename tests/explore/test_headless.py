"""The explorers degrade (issue 31, point 2): without ipywidgets, or in a
headless run (the pipeline runner's kernels), ``explore_au``, ``compare_runs``
and ``table_breakdown`` print one line and return None, so the notebook goes
on; CI also runs a whole pipeline pass in an environment without the
notebooks extra (scripts/core_env.py, scripts/test.sh). Cost: about 10 s."""
import os
import subprocess
import sys
import textwrap

import pytest

CALLS = {"explore_au": "(ws, '17au', split='B')", "compare_runs": "(ws, '17au')", "table_breakdown": "(ws)"}


def _run(prelude: str, env: dict) -> subprocess.CompletedProcess:
    body = textwrap.dedent(f"""
        import sys
        {prelude}
        from aulib import explore
        ws = "/nonexistent/workspace"        # never read: nothing is shown
        for name, args in {CALLS!r}.items():
            assert eval(f"explore.{{name}}{{args}}") is None
        print("the notebook goes on")
    """)
    return subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("case", ["no ipywidgets", "headless"])
def test_explorers_print_one_line_and_the_notebook_goes_on(case):
    env = {k: v for k, v in os.environ.items() if k != "AULIB_HEADLESS"}
    if case == "headless":
        env["AULIB_HEADLESS"] = "1"
    done = _run("sys.modules['ipywidgets'] = None" if case == "no ipywidgets" else "", env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "the notebook goes on" and len(lines) == 4, lines
    why = "ipywidgets is not installed" if case == "no ipywidgets" else "a headless run (AULIB_HEADLESS is set)"
    for name, line in zip(CALLS, lines):
        assert line.startswith(f"{name}: interactive explorer skipped: {why}"), line
        assert "open this notebook in JupyterLab" in line


def test_the_explorers_are_plain_names():
    """No lazy name table: the package imports its modules (they import without ipywidgets, above)."""
    from aulib import explore

    assert explore.threshold_curves.__module__ == "aulib.explore.au"
    assert explore.RunsExplorer.__name__ == "RunsExplorer"
    assert explore.explore_au.__wrapped__.__module__ == "aulib.explore.au"
    assert not hasattr(explore, "__getattr__")
    with pytest.raises(AttributeError):
        explore.no_such_explorer
