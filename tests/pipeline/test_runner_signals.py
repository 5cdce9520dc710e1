"""SIGTERM and Ctrl-C stop the runner with one line naming the step and the
workspace (issue 31), then the usual status of that signal, and leave no
process of its own behind. Cost: about 30 s."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from aulib.workspace import repo_root


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_runner_names_the_step_and_the_workspace(tmp_path, sig):
    ws = tmp_path / "ws"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env.pop("AULIB_PROFILE", None)
    err_path = tmp_path / "stderr.txt"
    # stderr to a file: a pipe is held open by any process that inherited it, so reading it to its end
    # would wait for the runner's kernel too, and a slow kernel would read as a runner that never stopped
    with open(err_path, "w") as err_file:
        # Ctrl-C as a terminal delivers it: SIGINT at its default in the runner, also when this test runs
        # in a background job, whose processes inherit SIGINT ignored (Python then never raises KeyboardInterrupt)
        proc = subprocess.Popen([sys.executable, "-m", "aulib.pipeline", "--profile", "ci", "--workspace", str(ws)],
                                cwd=repo_root(), env=env, stdout=subprocess.PIPE, stderr=err_file, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    children = []
    try:
        deadline = time.time() + 120
        line = ""
        while "[run ]" not in line and time.time() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, err_path.read_text()
        assert "[run ] step 1/" in line and "01_data" in line, line
        time.sleep(3)                                    # inside the step's notebook
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
        proc.wait(timeout=120)
        _, left = psutil.wait_procs([c for c in children if c.is_running()], timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        for c in children:
            if c.is_running():
                c.kill()
        proc.stdout.close()
    err = err_path.read_text()
    assert proc.returncode == -sig, (proc.returncode, err[-2000:])
    lines = [ln for ln in err.splitlines() if ln.startswith("python -m aulib.pipeline: stopped by")]
    assert lines == [f"python -m aulib.pipeline: stopped by {sig.name} during step 01_data (workspace {ws}); "
                     "the steps finished are kept: rerun the same command to continue"], err[-2000:]
    assert not left, f"processes the runner started outlived it by a minute: {[(p.pid, p.name()) for p in left]}"
