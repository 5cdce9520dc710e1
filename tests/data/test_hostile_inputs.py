"""Error messages from the hostile-input probe (issue 15.9) name a way to fix
things that exists in the notebooks, not only a Python keyword."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aulib.data import crops as C
from aulib.data.faces import columns as FCOL


def test_crop_store_mismatch_names_the_notebook_way(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (40, 30), (90, 120, 150)).save(root / "images" / "a.png")
    faces = pd.DataFrame([{c: np.nan for c in FCOL.FACE_COLUMNS}])
    faces[["image", "width", "height", "n_faces"]] = ["images/a.png", 40, 30, 0]
    out = tmp_path / "crops" / "aligned_16"
    C.build_crop_store(root, faces, out, "aligned", 16, progress=False)
    with pytest.raises(ValueError, match=rf"delete {out} and rerun notebooks/02_split\.ipynb"):
        C.build_crop_store(root, faces, out, "aligned", 24, progress=False)
    (out / "pixels.u8").write_bytes(b"short")
    with pytest.raises(ValueError, match=r"damaged .*delete the folder and rerun notebooks/02_split\.ipynb"):
        C.CropStore(out)
