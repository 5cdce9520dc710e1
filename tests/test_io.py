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
