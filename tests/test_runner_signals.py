"""SIGTERM and Ctrl-C stop the runner with one line naming the step and the
workspace (issue 31), then the usual status of that signal. Cost: about 30 s."""
import os
import signal
import subprocess
import sys
import time

import pytest

from aulib.workspace import repo_root


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_runner_names_the_step_and_the_workspace(tmp_path, sig):
    ws = tmp_path / "ws"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env.pop("AULIB_PROFILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "aulib.pipeline", "--profile", "ci", "--workspace", str(ws)],
                            cwd=repo_root(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        line = ""
        while "[run ]" not in line and time.time() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        assert "[run ] step 1/" in line and "01_data" in line, line
        time.sleep(3)                                    # inside the step's notebook
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -sig, (proc.returncode, err[-2000:])
    lines = [ln for ln in err.splitlines() if ln.startswith("python -m aulib.pipeline: stopped by")]
    assert lines == [f"python -m aulib.pipeline: stopped by {sig.name} during step 01_data (workspace {ws}); "
                     "the steps finished are kept: rerun the same command to continue"], err[-2000:]
