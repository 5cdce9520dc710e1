"""torchrun faults: the reported root cause is torchrun's own (the rank killed
by a signal, not a follower's "Connection closed by peer"), a stopped rank
ends a collective after the configured timeout, and SIGTERM of the launcher
leaves no torchrun or worker process behind."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from aulib.train.errors import child_failure, torchrun_failures
from aulib.workspace import repo_root

ENV = {**os.environ, "PYTHONPATH": str(repo_root()), "OMP_NUM_THREADS": "1"}

SUMMARY = """[rank1]: RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer
E1202 01:00:00 torch/distributed/elastic/multiprocessing/api.py:881] failed (exitcode: -9) local_rank: 0
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
job.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-02_01:00:00
  host      : h
  rank      : 1 (local_rank: 1)
  exitcode  : 1 (pid: 11)
  error_file: /tmp/x/1/error.json
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-02_01:00:00
  host      : h
  rank      : 0 (local_rank: 0)
  exitcode  : -9 (pid: 10)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 10
============================================================
"""


def _follower_error(path, rank=1, message="[pair.cc:534] Connection closed by peer [127.0.0.1]:1234"):
    path.write_text(json.dumps({"message": {"message": f"RuntimeError: {message}", "extraInfo": {
        "rank": rank, "exc_type": "RuntimeError", "exc_message": message, "py_callstack": ""}}}))


def test_summary_parsed_root_cause_first():
    f = torchrun_failures(SUMMARY)
    assert [(x["rank"], x["exitcode"], x["signal"], x["root"]) for x in f] == [(0, -9, "SIGKILL", True),
                                                                              (1, 1, None, False)]
    assert f[1]["error_file"] == "/tmp/x/1/error.json" and f[0]["error_file"] is None


def test_killed_rank_is_the_cause_not_the_followers_connection_error(tmp_path):
    err = tmp_path / "error.json"
    _follower_error(err)                     # what torchrun copied: rank 1's gloo error
    e = child_failure(err, "r", 2, 1, SUMMARY)
    assert (e.rank, e.exc_type) == (0, "Signal") and "killed by SIGKILL" in str(e) and "child rank 0" in str(e)
    assert "Connection closed by peer" in str(e).split("then failed with", 1)[1]
    e = child_failure(tmp_path / "none.json", "r", 2, 1, SUMMARY)      # torchrun copied nothing
    assert e.rank == 0 and "SIGKILL" in str(e)
    _follower_error(err, rank=1, message="KeyError: 'AU99'")           # a real error stays the cause
    e = child_failure(err, "r", 2, 1, SUMMARY.replace("Root Cause (first observed failure):\n[0]",
                                                      "Root Cause (first observed failure):\n[7]"))
    assert child_failure(err, "r", 2, 1, "").rank == 1 and e.rank == 0  # a signal beats a follower only if peer


WORKER = r"""
import os, signal, sys, time
import torch, torch.distributed as dist
from aulib.model import distributed as D
from aulib.train.errors import record_child_errors

@record_child_errors
def main():
    mode, out = sys.argv[1], sys.argv[2]
    D.setup(torch.device("cpu"), timeout_min=float(os.environ.get("T_MIN", "30")))
    open(os.path.join(out, f"pid{D.rank()}"), "w").write(str(os.getpid()))
    if mode == "kill0" and D.rank() == 0:
        time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "sleep":
        time.sleep(600)
    D.all_reduce_mean(torch.ones(3))
main()
"""


def _torchrun(script, *args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script), *args]


@pytest.mark.slow
def test_rank_killed_by_sigkill_is_reported_with_its_signal(tmp_path):
    from aulib.train.errors import ChildProcessFailed
    from aulib.train.launch import stream_torchrun

    script = tmp_path / "job.py"
    script.write_text(WORKER)
    with pytest.raises(ChildProcessFailed) as info:
        stream_torchrun(_torchrun(script, "kill0", tmp_path), ENV, "r", 2)
    assert info.value.rank == 0 and info.value.exc_type == "Signal" and "SIGKILL" in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_stopped_rank_fails_the_collective_after_the_configured_timeout(tmp_path):
    code = r"""
import os, signal, sys, time, torch
from aulib.model import distributed as D
D.setup(torch.device("cpu"), timeout_min=0.05)
if D.rank() == 1:
    os.kill(os.getpid(), signal.SIGSTOP)
t0 = time.time()
try:
    D.all_reduce_mean(torch.ones(3))
except Exception as e:
    print(f"FAILED after {time.time() - t0:.1f} s: {type(e).__name__}", flush=True)
    sys.exit(3)
"""
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    try:
        out, _ = procs[0].communicate(timeout=120)
        assert procs[0].returncode == 3, out
        assert float(out.split("FAILED after ")[1].split(" s")[0]) < 30    # 3 s asked; the default was 12 h
    finally:
        procs[1].kill()
        procs[1].wait()
    from aulib.model.config import TrainConfig
    assert TrainConfig().dist_timeout_min == 30.0


LAUNCHER = r"""
import os, sys
from aulib.train.launch import stream_torchrun
cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", sys.argv[1], "sleep",
       sys.argv[2]]
stream_torchrun(cmd, dict(os.environ), "r", 2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:                    # a zombie is gone for good
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_launcher_stopped_or_killed_leaves_no_worker_behind(tmp_path, sig):
    script = tmp_path / "job.py"
    script.write_text(WORKER)
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(script), str(tmp_path)], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not all((tmp_path / f"pid{r}").exists() for r in (0, 1)):
        assert launcher.poll() is None and time.time() - t0 < 120
        time.sleep(0.2)
    pids = [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]
    launcher.send_signal(sig)
    launcher.wait(timeout=90)
    t0 = time.time()
    while any(_alive(p) for p in pids) and time.time() - t0 < 60:
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived the launcher ({sig.name})"
