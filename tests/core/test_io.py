import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from aulib import io


def test_round_trips(tmp_path):
    a = np.arange(12, dtype=np.float16).reshape(3, 4)
    io.write_npy(tmp_path / "a.npy", a)
    assert np.array_equal(io.read_npy(tmp_path / "a.npy"), a)
    df = pd.DataFrame({"image": ["x.jpg"], "AU1": [1]})
    io.write_csv(tmp_path / "d.csv", df)
    assert pd.read_csv(tmp_path / "d.csv").equals(df)
    io.write_yaml(tmp_path / "c.yaml", {"a": [1, 2], "b": "x"})
    assert io.read_yaml(tmp_path / "c.yaml") == {"a": [1, 2], "b": "x"}


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "t.txt"
    io.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["t.txt"]


def test_sigkill_mid_write_never_exposes_partial_file(tmp_path):
    target = tmp_path / "big.npy"
    io.write_npy(target, np.zeros(10))
    code = (
        "import os, signal, numpy as np\n"
        "from aulib import io\n"
        f"with io.atomic_path({str(target)!r}) as tmp:\n"
        "    open(tmp, 'wb').write(b'partial')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    r = subprocess.run([sys.executable, "-c", code])
    assert r.returncode == -9
    assert np.array_equal(io.read_npy(target), np.zeros(10))


def test_unsafe_yaml_and_pickles_are_refused(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(Exception):
        io.read_yaml(p)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        io.read_npy(tmp_path / "obj.npy")


def test_torch_checkpoint_weights_only(tmp_path):
    import torch

    io.write_torch(tmp_path / "ok.pt", {"w": torch.ones(2), "epoch": 3})
    assert io.read_torch(tmp_path / "ok.pt")["epoch"] == 3

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights"):
        io.read_torch(tmp_path / "evil.pt")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    """Issue 15.7: mkstemp made every artefact 0600 whatever the umask, so
    colleagues on a shared machine could not read results (022 -> 0644, 077 -> 0600)."""
    import torch
    from PIL import Image

    from aulib.data import crops
    from aulib.data.faces import cache as faces
    from aulib.data.faces.columns import FACE_COLUMNS
    from aulib.predict.inputs import annotate

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (40, 30), (90, 120, 150)).save(root / "images" / "a.png")
    gt = pd.DataFrame([{c: np.nan for c in FACE_COLUMNS}])
    gt[["image", "width", "height", "n_faces"]] = ["images/a.png", 40, 30, 0]
    gt.to_csv(root / "faces.csv", index=False)
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        io.write_text(out / "a.txt", "x")
        io.write_csv(out / "a.csv", pd.DataFrame({"a": [1]}))
        io.write_npy(out / "a.npy", np.zeros(3))
        io.write_yaml(out / "a.yaml", {"a": 1})
        io.write_torch(out / "a.pt", {"w": torch.zeros(2)})
        annotate(np.zeros((30, 40, 3), np.uint8), [], out / "annotated.jpg")
        faces.build_face_cache(root, ["images/a.png"], out / "faces.csv", method="ground_truth")
        crops.build_crop_store(root, out / "faces.csv", out / "store", "aligned", 16, progress=False)
    finally:
        os.umask(old)
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(written) == 11 and not [p for p in written if p.name.endswith(".tmp")]
    modes = {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_current_umask_reads_without_changing_it():
    old = os.umask(0o027)
    try:
        assert io.current_umask() == 0o027 and io.current_umask() == 0o027
    finally:
        os.umask(old)
