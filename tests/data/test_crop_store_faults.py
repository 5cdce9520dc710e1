"""Crop stores under faults (issue 26, points 1, 4, 5): a full disk, a write
error or a dead worker ends the build with a message naming the store; SIGTERM
leaves no worker behind; damaged crops (bytes overwritten, flipped, offsets
permuted, truncated, negative) are caught and named by store, row and image."""
import errno
import gc
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aulib import io as aio
from aulib.data import crops as C
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.data.packed import DamagedCrop

N, SIZE = 24, 32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``N`` smooth random images (48 px) under ``images/``, a face box filling each; the face cache."""
    root = tmp_path_factory.mktemp("faults")
    (root / "images").mkdir()
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N):
        name = f"images/{i:03d}.png"
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((48, 48), Image.Resampling.BICUBIC).save(root / name)
        row = dict.fromkeys(FACE_COLUMNS, np.nan)
        row.update(image=name, width=48, height=48, n_faces=1, score=1.0, x0=0, y0=0, x1=48, y1=48)
        rows.append(row)
    faces = pd.DataFrame(rows, columns=FACE_COLUMNS)
    faces.to_csv(root / "faces.csv", index=False)
    return root, root / "faces.csv"


def _build(data, out, codec="jpeg", **kw):
    root, faces = data
    return C.build_crop_store(root, faces, out, "box1.0", SIZE, chunk=4, progress=False, codec=codec, **kw)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def _patching(tmp_path, patch: str) -> dict:
    """An environment in which every Python process runs ``patch`` first (a
    ``sitecustomize``): crop workers start clean, not forked, so a patch made in
    the building process would not reach them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(patch))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


# ---- point 5: integrity ---------------------------------------------------------------------------------

def test_bytes_overwritten_in_pixels_jpg_name_store_row_and_image(tmp_path, data):
    store = _build(data, tmp_path / "s")
    start, length = store.images.offsets[5]
    with open(store.dir / "pixels.jpg", "r+b") as f:
        f.seek(int(start))
        f.write(b"\x00" * int(length // 2))
    store = C.CropStore(store.dir)
    with pytest.raises(DamagedCrop, match=rf"crop store {store.dir}: row 5 \(image images/005.png\) is damaged"):
        store.images[[3, 5]]
    store.images[[3, 4, 6]]                 # the other rows still read


def test_one_flipped_byte_in_each_of_20_crops_is_caught(tmp_path, data):
    store = _build(data, tmp_path / "s")
    damaged = list(range(2, 22))
    with open(store.dir / "pixels.jpg", "r+b") as f:
        for r in damaged:
            start, length = store.images.offsets[r]
            f.seek(int(start + length // 2))
            b = f.read(1)
            f.seek(int(start + length // 2))
            f.write(bytes([b[0] ^ 0x10]))
    store = C.CropStore(store.dir)
    for r in damaged:
        with pytest.raises(DamagedCrop, match=rf"row {r} \(image images/{r:03d}.png\)"):
            store.images[r]
    bad = C.verify_store(store.dir)
    assert bad["row"].tolist() == damaged and bad["image"].tolist() == [f"images/{r:03d}.png" for r in damaged]
    proc = subprocess.run([sys.executable, "-m", "aulib.data.crops", "verify", str(store.dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "20 of 24 rows are damaged" in proc.stdout and "images/021.png" in proc.stdout


def test_permuted_rows_of_offsets_are_caught(tmp_path, data):
    store = _build(data, tmp_path / "s")
    offsets = np.load(store.dir / "offsets.npy")
    perm = np.arange(N)
    perm[[0, 7, 9]] = [7, 9, 0]
    np.save(store.dir / "offsets.npy", offsets[perm])
    store = C.CropStore(store.dir)
    with pytest.raises(DamagedCrop, match=r"row (0|7|9) \(image images/00\d.png\).*crc32"):
        store.images[np.arange(N)]
    assert C.verify_store(store.dir)["row"].tolist() == [0, 7, 9]


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"offsets\.npy is damaged \(not a readable \.npy"),
    ("negative", r"have a negative start"),
    ("overlap", r"share bytes with another row"),
    ("past_end", r"an end past the \d+ bytes of pixels\.jpg"),
    ("short", r"offsets\.npy has 23 rows, the store has 24"),
])
def test_damaged_offsets_are_refused_on_open(tmp_path, data, damage, message, monkeypatch):
    store = _build(data, tmp_path / "s")
    path = store.dir / "offsets.npy"
    offsets = np.load(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        if damage == "negative":
            offsets[3, 0] = -5
        elif damage == "overlap":
            offsets[4, 0] = offsets[3, 0] + 1
        elif damage == "past_end":
            offsets[6, 1] += 10**6
        elif damage == "short":
            offsets = offsets[:-1]
        np.save(path, offsets)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(ValueError, match=message) as e:
        C.CropStore(store.dir)
    assert str(store.dir) in str(e.value) and "rerun notebooks/02_split.ipynb" in str(e.value)
    assert C.main(["verify", str(store.dir)]) == 2          # the verify command says it cannot check it
    gc.collect()
    assert unraisable == []                 # no "Exception ignored in PackedJpeg.__del__"


def test_raw_store_rows_are_checked_and_verified(tmp_path, data):
    store = _build(data, tmp_path / "raw", codec="raw")
    assert C.verify_store(store.dir).empty
    row_bytes = SIZE * SIZE * 3
    with open(store.dir / "pixels.u8", "r+b") as f:
        f.seek(11 * row_bytes + 100)
        b = f.read(1)
        f.seek(11 * row_bytes + 100)
        f.write(bytes([b[0] ^ 1]))
    store = C.CropStore(store.dir)
    with pytest.raises(DamagedCrop, match=r"row 11 \(image images/011.png\).*pixels\.u8 bytes have crc32"):
        store.images[np.arange(8, 16)]
    assert C.verify_store(store.dir)["row"].tolist() == [11]
    five_rows = C.verify_store(store.dir, chunk_bytes=5 * row_bytes)    # read 5 rows at a time
    assert five_rows["row"].tolist() == [11] and five_rows["image"].tolist() == ["images/011.png"]


def test_damaged_crop_is_named_through_the_data_loader(tmp_path, data):
    from aulib.data.dataset import AUDataset

    store = _build(data, tmp_path / "s")
    start, length = store.images.offsets[2]
    with open(store.dir / "pixels.jpg", "r+b") as f:
        f.seek(int(start + length - 10))
        f.write(b"\x55")
    split = pd.DataFrame({"image": [f"images/{i:03d}.png" for i in range(4)], "variant": 0, "AU1": 1})
    ds = AUDataset(C.CropStore(store.dir), split, [1])
    with pytest.raises(DamagedCrop, match=r"row 2 \(image images/002.png\)"):
        ds[[0, 1, 2, 3]]


def test_format_1_stores_open_unchecked_and_are_rebuilt(tmp_path, data):
    store = _build(data, tmp_path / "s", codec="raw")
    meta = aio.read_yaml(store.dir / "meta.yaml")
    aio.write_yaml(store.dir / "meta.yaml", {**meta, "format": "aulib-crop-store/1"})
    aio.write_csv(store.dir / "index.csv", store.index.drop(columns="crc32"))
    old = C.CropStore(store.dir)
    assert old.crc32 is None
    np.testing.assert_array_equal(old.images[np.arange(N)], store.images[np.arange(N)])
    with pytest.raises(ValueError, match="no checksums; rebuild it"):
        C.verify_store(store.dir)
    again = _build(data, tmp_path / "s", codec="raw")
    assert again.meta["format"] == C.FORMAT and C.verify_store(again.dir).empty


def test_index_without_checksums_is_damage(tmp_path, data):
    store = _build(data, tmp_path / "s")
    aio.write_csv(store.dir / "index.csv", store.index.drop(columns="crc32"))
    with pytest.raises(ValueError, match=r"index\.csv: its columns are"):
        C.CropStore(store.dir)


# ---- point 1: disk ---------------------------------------------------------------------------------------

def _free(monkeypatch, free):
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    monkeypatch.setattr(aio.shutil, "disk_usage", lambda p: usage(real(p).total, 0, free))


@pytest.mark.parametrize("codec", ["raw", "jpeg"])
def test_too_little_space_is_refused_before_building(tmp_path, data, monkeypatch, codec):
    _free(monkeypatch, 5000)
    out = tmp_path / codec
    with pytest.raises(OSError, match=rf"no space left on the device for the crop store.* {out}/pixels\."
                                      rf".*it needs [\d,]+ bytes .*, 5,000 bytes \(0\.0 MiB\) are free") as e:
        _build(data, out, codec=codec)
    assert e.value.errno == errno.ENOSPC
    assert not (out / "meta.yaml").exists()


def test_raw_pixels_are_allocated_before_they_are_mapped(tmp_path, data, monkeypatch):
    """A memmap over a sparse file raises SIGBUS (Bus error) when the disk is
    full; every block of pixels.u8 is allocated before any row is written."""
    seen = []

    def stop(*args, **kw):
        path = tmp_path / "raw" / "pixels.u8"
        seen.append(path.stat().st_blocks * 512 >= path.stat().st_size == N * SIZE * SIZE * 3)
        raise KeyboardInterrupt

    monkeypatch.setattr(C, "_crop_todo", stop)
    with pytest.raises(KeyboardInterrupt):
        _build(data, tmp_path / "raw", codec="raw")
    assert seen == [True]


def test_full_disk_while_appending_names_the_store_and_a_rerun_resumes(tmp_path, data, monkeypatch):
    real, calls = C._append, []

    def append(path, blob):
        calls.append(path.name)
        if calls.count("pixels.jpg") == 3:
            with open(path, "ab") as f:          # half the chunk reaches the disk, then it is full
                f.write(blob[: len(blob) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, blob)

    monkeypatch.setattr(C, "_append", append)
    out = tmp_path / "s"
    with pytest.raises(OSError, match=rf"no space left on the device for the crop store {out}/pixels\.jpg"):
        _build(data, out)
    assert C.rows_done(out) == 8
    monkeypatch.setattr(C, "_append", real)
    store = _build(data, out)
    whole = _build(data, tmp_path / "whole")
    np.testing.assert_array_equal(store.images[np.arange(N)], whole.images[np.arange(N)])
    assert C.verify_store(out).empty


@pytest.mark.parametrize("fault", ["eio", "killed"])
def test_a_worker_that_fails_or_dies_ends_the_build(tmp_path, data, fault):
    """A write error in a worker is reported with the store's name; a worker
    killed by a signal (as by a Bus error) ends the build instead of hanging it."""
    root, faces = data
    out = tmp_path / "s"
    act = ("raise OSError(errno.EIO, 'Input/output error', str(path))" if fault == "eio"
           else "os.kill(os.getpid(), signal.SIGKILL)")
    env = _patching(tmp_path, f"""
        import errno, multiprocessing, os, signal
        import numpy as np
        real = np.memmap.flush
        def flush(self):
            path = {str(out / "pixels.u8")!r}
            if multiprocessing.current_process().name != "MainProcess":
                {act}
            return real(self)
        np.memmap.flush = flush
    """)
    proc = subprocess.run(_script(f"""
        from aulib.data import crops
        crops.build_crop_store({str(root)!r}, {str(faces)!r}, {str(out)!r}, "box1.0", {SIZE}, chunk=4,
                               num_workers=2, progress=False)
    """), capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    if fault == "eio":
        assert f"writing the crop store {out}/pixels.u8 failed: Input/output error (EIO)" in last
    else:
        assert f"crop store {out}: a crop worker process died" in last and "rerun to continue" in last


def test_checkpoint_write_checks_free_space(tmp_path, monkeypatch):
    import torch

    path = tmp_path / "checkpoints" / "epoch002.pt"
    aio.write_torch(tmp_path / "checkpoints" / "epoch001.pt", {"w": torch.zeros(10)})
    _free(monkeypatch, 2**20)
    with pytest.raises(OSError, match=rf"no space left on the device for the checkpoint {path}: it needs "
                                      r"5,2\d\d,\d\d\d bytes .* 1,048,576 bytes \(1\.0 MiB\) are free"):
        aio.write_torch(path, {"w": torch.zeros(2**20)})
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch001.pt"]


# ---- point 4: SIGTERM ------------------------------------------------------------------------------------

def _children(pid):
    import psutil

    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_a_build_leaves_no_worker_behind(tmp_path, data, sig):
    """SIGTERM ends the pool as Ctrl-C does (the build exits non-zero); a parent
    killed outright (SIGKILL, a notebook kernel's os._exit) takes its workers with it."""
    import psutil

    root, faces = data
    env = _patching(tmp_path, """
        import time
        from aulib.data import crops
        real = crops.crop_face
        def slow(*a, **k):
            time.sleep(3)       # one long chunk: one worker busy (it would outlive the parent)
            return real(*a, **k)
        crops.crop_face = slow
    """)
    proc = subprocess.Popen(_script(f"""
        from aulib.data import crops
        crops.build_crop_store({str(root)!r}, {str(faces)!r}, {str(tmp_path / "s")!r}, "box1.0", {SIZE}, chunk={N},
                               num_workers=2, progress=False)
    """), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    kids = []
    try:
        deadline = time.time() + 60   # the forkserver, its resource tracker and the worker of the one chunk
        while len(kids := _children(proc.pid)) < 3 and time.time() < deadline:
            time.sleep(0.2)
        assert len(kids) >= 3, f"the build never started its worker: {kids}"
        time.sleep(1.0)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode != 0
        gone, alive = psutil.wait_procs(kids, timeout=2)
        assert alive == [], f"workers left behind: {alive}"
        if sig == signal.SIGTERM:
            assert "stopped by SIGTERM" in err
    finally:
        for p in [psutil.Process(proc.pid)] + kids if proc.poll() is None else kids:
            if p.is_running():
                p.kill()
    store = _build(data, tmp_path / "s", codec="raw")          # and a rerun finishes the store
    assert len(store) == N and C.verify_store(store.dir).empty
