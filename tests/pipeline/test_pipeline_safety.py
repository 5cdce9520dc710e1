"""The pipeline's guards around a workspace: fingerprints that notice an image
changed in place, a workspace that stays under runs/, an ``extends`` error
naming the file that says it, one runner per workspace, and temporary file
names unique per process."""
import os
import subprocess
import sys
import time

import pytest
import yaml

from aulib import io as aio
from aulib.pipeline import fingerprint as F
from aulib.pipeline import profile as P
from aulib.workspace import Workspace, repo_root


def _same_size_and_mtime(path, data: bytes) -> None:
    """Rewrite ``path`` in place with ``data`` (same length), putting its mtime back."""
    st = path.stat()
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("dataset,folder", [("csv", "faces/s1"), ("emotionet", "images/optimization")])
def test_image_changed_in_place_with_size_and_mtime_kept_changes_the_fingerprint(tmp_path, dataset, folder):
    root = tmp_path / "data"
    (root / folder).mkdir(parents=True)
    img = root / folder / "a.jpg"
    img.write_bytes(b"\xff\xd8" + b"1" * 100)
    (root / "labels.csv").write_text("image,subject,AU1\nfaces/s1/a.jpg,s1,1\n")
    dir_mtime = (root / folder).stat().st_mtime_ns
    values = {"dataset": dataset, "data_root": str(root), "labels_csv": "labels.csv"}
    nb = repo_root() / "notebooks" / "02_split.ipynb"
    before = F.fingerprint(nb, values, F.identity(F.input_files(values)), "")
    time.sleep(0.01)
    _same_size_and_mtime(img, b"\xff\xd8" + b"2" * 100)
    os.utime(root / folder, ns=(dir_mtime, dir_mtime))
    assert F.fingerprint(nb, values, F.identity(F.input_files(values)), "") != before
    again = F.fingerprint(nb, values, F.identity(F.input_files(values)), "")
    assert again == F.fingerprint(nb, values, F.identity(F.input_files(values)), "")   # stable when nothing changes


def test_image_replaced_by_another_file_changes_the_fingerprint(tmp_path):
    img, other = tmp_path / "a.jpg", tmp_path / ".new"
    img.write_bytes(b"1" * 50)
    other.write_bytes(b"2" * 50)
    ident = F.identity([img])
    st = img.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))   # same size, same mtime: another inode
    os.replace(other, img)
    assert F.identity([img]) != ident


def test_profile_name_leaving_runs_is_refused_unless_a_workspace_is_given(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({"profile": "../../../elsewhere/x", "extends": "ci"}))
    with pytest.raises(ValueError, match=r"profile = '../../../elsewhere/x' is not allowed.*plain name"):
        P.load_profile(str(path))
    with pytest.raises(ValueError, match="outside .*runs.*--workspace"):
        Workspace.for_profile("../../elsewhere/x")
    assert Workspace.for_profile("../../elsewhere/x", root=tmp_path / "ws").root == tmp_path / "ws"
    assert Workspace.for_profile("ci").root == repo_root() / "runs" / "ci"


def test_missing_extends_target_names_the_file_that_says_extends(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"profile": "child", "extends": "parent.yaml"}))
    top = tmp_path / "top.yaml"
    top.write_text(yaml.safe_dump({"profile": "top", "extends": "child.yaml"}))
    with pytest.raises(FileNotFoundError) as info:
        P.load_profile(str(top))
    msg = str(info.value)
    assert msg.startswith(f"{child}: extends: parent.yaml") and str(tmp_path / "parent.yaml") in msg


def test_atomic_temporary_names_are_unique_per_process(tmp_path):
    target = tmp_path / "000517.jpg"
    names = {aio.temp_path(target).name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith(".000517.jpg.") and n.endswith(".tmp") for n in names)
    assert all(str(os.getpid()) in n for n in names)
    aio.write_bytes(target, b"abc", fsync=False)
    assert target.read_bytes() == b"abc" and [p.name for p in tmp_path.iterdir()] == ["000517.jpg"]


def test_synthau_writers_never_share_a_temporary_name(tmp_path, monkeypatch):
    """Two generators writing one image: each uses its own temporary file
    (the fixed ``.000517.jpg.tmp`` made one rename the other's file away)."""
    import numpy as np

    from aulib.data.sources.synthau import generate as synth

    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    img = np.zeros((8, 8, 3), np.uint8)
    synth._write_jpeg(tmp_path / "000517.jpg", img)
    synth._write_jpeg(tmp_path / "000517.jpg", img)
    assert len(seen) == 2 and seen[0] != seen[1] and ".000517.jpg.tmp" not in seen


HOLD_WS = """
import sys, time
from aulib.lock import WorkspaceLock
WorkspaceLock(sys.argv[1]).acquire()
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def _one_step_profile(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"profile": "p", "steps": [{"notebook": "05_convergence.ipynb"}]}))
    return path


def test_second_runner_on_a_workspace_is_refused_at_once_naming_the_holder(tmp_path, monkeypatch):
    import socket

    import papermill

    from aulib.pipeline import runner as pipeline

    ws, ready = tmp_path / "ws", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WS, str(ws), str(ready)], env=env, text=True,
                              stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while not ready.exists():
            assert holder.poll() is None, holder.stderr.read()
            assert time.time() - t0 < 120
            time.sleep(0.05)
        p = subprocess.run([sys.executable, "-m", "aulib.pipeline", "--profile", str(_one_step_profile(tmp_path)),
                            "--workspace", str(ws)], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 1, p.stderr
        assert f"pid {holder.pid} on host {socket.gethostname()}, started 20" in p.stderr
        assert str(ws / ".pipeline.lock") in p.stderr and "--workspace" in p.stderr
        assert "Traceback" not in p.stderr and not (ws / "notebooks").exists()
    finally:
        holder.kill()
        holder.wait()
    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, **kw: ran.append(out))
    pipeline.run(str(_one_step_profile(tmp_path)), workspace=str(ws))   # the dead holder's lock is taken over
    assert ran and not (ws / ".pipeline.lock").exists()
