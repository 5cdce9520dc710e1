"""Decoding pools start clean and are watched (issue 31, point 1).

A crop store built with workers from DISFA videos that the building process has
just read (as face detection does) hung for good when the workers were forked:
a lock of the parent's decoder threads stayed held in every child. The builds
run in a subprocess with a time limit, so the old code fails the test instead of
hanging it. A worker stopped on purpose (SIGSTOP) is reported within the limit,
naming the step, the stuck rows and the setting; the rows finished are kept.
Cost: about 20 s on a 2-core machine.
"""
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import torch
import pandas as pd
import pytest

from aulib.data import crops as C
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.workers import Stalled
from native_layouts import write_disfa

BUILDS = 4


def _box_faces(images, size=128) -> pd.DataFrame:
    """A face cache whose box is the middle of every ``size`` px frame."""
    return pd.DataFrame([{**dict.fromkeys(FACE_COLUMNS, np.nan), "image": i, "width": size, "height": size,
                          "n_faces": 1, "score": 1.0, "x0": size / 4, "y0": size / 4, "x1": 3 * size / 4,
                          "y1": 3 * size / 4} for i in images], columns=FACE_COLUMNS)


def test_crop_store_from_videos_the_builder_has_read(tmp_path):
    """Every frame of the AVIs read in the building process (its video
    readers left open, as face detection leaves them), then a crop store built
    with two workers, ``BUILDS`` times: all finish (the forked workers of the old
    code hung in the first, in OpenCV's video open) with the serial bytes."""
    root = tmp_path / "DISFA"
    written = write_disfa(root, subjects=("SN002", "SN010", "SN001"), frames=6, extra=0)
    images = sorted(written.labels["optimization"])
    _box_faces(images).to_csv(tmp_path / "faces.csv", index=False)
    script = textwrap.dedent(f"""
        from aulib.data.crops import build_crop_store
        from aulib.data.images import load_rgb

        if __name__ == "__main__":
            root, images = {str(root)!r}, {images!r}
            for k in range({BUILDS}):
                for image in images:            # the builder's own readers of the videos, open and used
                    load_rgb(root + "/" + image)
                build_crop_store(root, {str(tmp_path / "faces.csv")!r}, root + f"/crops{{k}}", "box1.5", 16,
                                 images=images, chunk=4, num_workers=2, progress=False)
                print("built", k, flush=True)
    """)
    (tmp_path / "build.py").write_text(script)
    try:
        done = subprocess.run([sys.executable, str(tmp_path / "build.py")], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"crop building with workers hung (output so far: {e.stdout!r})")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == " ".join(f"built {k}" for k in range(BUILDS)).split()
    serial = C.build_crop_store(root, tmp_path / "faces.csv", tmp_path / "serial", "box1.5", 16, images=images,
                                progress=False)
    for k in range(BUILDS):
        store = C.CropStore(root / f"crops{k}")
        assert (store.status == "ok").all(), store.status
        np.testing.assert_array_equal(store.images[np.arange(len(images))], serial.images[np.arange(len(images))])


def _stop_new_workers(stop: threading.Event, stopped: list) -> None:
    """Thread: SIGSTOP every crop worker (a child of the forkserver) as soon as it appears."""
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        for kid in me.children(recursive=True):
            try:
                if kid.ppid() != me.pid and kid.pid not in stopped:   # the forkserver's children: the workers
                    kid.suspend()
                    stopped.append(kid.pid)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.002)


def test_a_stuck_worker_is_reported_within_the_limit(tmp_path):
    root = tmp_path / "DISFA"
    written = write_disfa(root, subjects=("SN002",), frames=8, extra=0)
    images = sorted(written.labels["optimization"])
    faces = _box_faces(images)
    out = tmp_path / "store"
    C.build_crop_store(root, faces, tmp_path / "warm", "box1.0", 16, images=images[:1], num_workers=1,
                       progress=False)   # the forkserver started, so the limit below times the worker alone
    stop, stopped = threading.Event(), []
    watcher = threading.Thread(target=_stop_new_workers, args=(stop, stopped), daemon=True)
    watcher.start()
    t0 = time.time()
    try:
        with pytest.raises(Stalled) as caught:
            C.build_crop_store(root, faces, out, "box1.0", 16, images=images, num_workers=1, chunk=4,
                               progress=False, stall_minutes=0.05)
    finally:
        stop.set()
        watcher.join()
    took = time.time() - t0
    assert stopped, "no worker was seen to stop"
    message = str(caught.value)
    assert "02_split: building crop store" in message and str(out) in message
    assert "no worker finished a task for 0.05 min" in message
    assert f"rows 0-3 (images {images[0]}, {images[1]}, {images[2]}, ...)" in message
    assert "raise 02_split's stall_minutes" in message and "rerun to continue" in message
    assert took < 3 + 30, f"reported after {took:.0f} s"
    import psutil

    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in stopped)
    store = C.build_crop_store(root, faces, out, "box1.0", 16, images=images, num_workers=1, chunk=4,
                               progress=False)   # a rerun finishes it
    assert len(store) == len(images) and C.verify_store(store.dir).empty


def test_a_stall_limit_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="stall_minutes must be a positive number of minutes, got 0"):
        C.build_crop_store(tmp_path, pd.DataFrame(), tmp_path / "s", "box1.0", 16, stall_minutes=0)


class SlowImages(torch.utils.data.Dataset):
    """Four images whose batch takes a minute to read (a decoder that hangs)."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        time.sleep(60)
        return torch.zeros(len(index), 3)


def test_a_stuck_loader_worker_is_named():
    from aulib.data.dataset import WatchedLoader

    loader = WatchedLoader(SlowImages(), sampler=[[0, 1, 2, 3]], batch_size=None, num_workers=1,
                           stall_minutes=0.05, work="data loader of split B (crops/aligned_32)")
    t0 = time.time()
    with pytest.raises(Stalled) as caught:
        next(iter(loader))
    assert time.time() - t0 < 3 + 30
    message = str(caught.value)
    assert message.startswith("data loader of split B (crops/aligned_32): no worker finished a task for 0.05 min")
    assert "stuck: batch 1 of 1" in message
    assert "raise TrainConfig's stall_minutes" in message
