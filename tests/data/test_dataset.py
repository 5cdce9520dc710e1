import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from aulib.aus import AUS_2020, BUILTIN_GROUPS, au_columns
from aulib.data.crops import CropStore, build_crop_store
from aulib.data.dataset import AUDataset, make_loader, set_epoch, show_batch, show_crops, split_dataframe
from aulib.data.faces.columns import FACE_COLUMNS
from aulib.data.splits import expand_variants
from aulib.data.transforms import degrade
from aulib.io import write_csv
from aulib.workspace import Workspace

SIZE = 24
N_IMAGES = 30


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with 30 random images, a box1.5 crop store (real builder) and splits A, B."""
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace.for_profile("ci", root=root)
    rng = np.random.default_rng(0)
    names, faces = [], []
    for i in range(N_IMAGES):
        name = f"images/optimization/{i:06d}.png"
        (ws.data / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(ws.data / name)
        row = dict.fromkeys(FACE_COLUMNS, np.nan)
        row.update(image=name, width=40, height=40, n_faces=1, score=0.99, x0=10, y0=10, x1=30, y1=30)
        names.append(name)
        faces.append(row)
    faces = pd.DataFrame(faces, columns=FACE_COLUMNS)
    build_crop_store(ws.data, faces, ws.crops("box1.5", SIZE), "box1.5", SIZE, progress=False)
    labels = pd.DataFrame(rng.integers(-1, 2, (N_IMAGES, len(AUS_2020))).astype(np.int8),
                          columns=au_columns(AUS_2020))
    labels.insert(0, "image", names)
    write_csv(ws.split("A"), expand_variants(labels.iloc[:20], 1))
    write_csv(ws.split("B"), expand_variants(labels.iloc[20:], 4))
    return ws


def test_items_match_store_and_split(ws):
    store = CropStore(ws.crops("box1.5", SIZE))
    split = pd.read_csv(ws.split("B"))
    ds = AUDataset(store, split, "6au", seed=0)
    assert len(ds) == 40
    cols = au_columns(BUILTIN_GROUPS["6au"])
    for i in (0, 1, 2, 3, 9):
        x, y = ds[i]
        assert x.dtype == torch.uint8 and x.shape == (3, SIZE, SIZE)
        assert y.dtype == torch.int8 and y.shape == (6,)
        assert y.tolist() == split.loc[i, cols].tolist()
        raw = store.images[store.rows([split.loc[i, "image"]])[0]]
        expected = degrade(np.array(raw), int(split.loc[i, "variant"]), split.loc[i, "image"], 0)
        assert np.array_equal(x.permute(1, 2, 0).numpy(), expected)
    assert torch.equal(ds[0][0], ds[0][0]) and not torch.equal(ds[0][0], ds[2][0])  # variant 2 occluded


def test_batch_read_equals_items(ws):
    ds = AUDataset(CropStore(ws.crops("box1.5", SIZE)), pd.read_csv(ws.split("B")), "17au")
    idx = [7, 0, 31, 3, 3, 18]
    x, y = ds[idx]
    assert x.shape == (6, 3, SIZE, SIZE) and y.shape == (6, 17)
    for k, i in enumerate(idx):
        assert torch.equal(x[k], ds[i][0]) and torch.equal(y[k], ds[i][1])
    # pickles without copying the pixels, and still reads the same
    blob = pickle.dumps(ds)
    assert len(blob) < ds.pixels.nbytes
    assert torch.equal(pickle.loads(blob)[idx][0], x)


def test_missing_au_column_and_image(ws):
    store = CropStore(ws.crops("box1.5", SIZE))
    split = pd.read_csv(ws.split("A"))
    with pytest.raises(ValueError, match="AU51"):
        AUDataset(store, split.drop(columns="AU51"), "6au")
    split.loc[0, "image"] = "images/optimization/missing.png"
    with pytest.raises(KeyError, match="missing.png"):
        AUDataset(store, split, "6au")


def test_eval_loader_keeps_split_order(ws):
    split = pd.read_csv(ws.split("B"))
    for workers in (0, 2):
        loader = make_loader(ws, "B", "6au", SIZE, batch_size=7, train=False, num_workers=workers, style="box1.5")
        xs, ys = zip(*loader)
        assert [len(x) for x in xs] == [7, 7, 7, 7, 7, 5]
        assert torch.cat(ys).numpy().tolist() == split[au_columns(BUILTIN_GROUPS["6au"])].to_numpy().tolist()
        ds = loader.dataset
        assert torch.equal(torch.cat(xs), ds[list(range(len(ds)))][0])


def test_train_loader_shuffles_by_seed_and_epoch(ws):
    def order(loader, epoch=None):
        if epoch is not None:
            set_epoch(loader, epoch)
        return [i for b in loader.sampler for i in b]

    loader = make_loader(ws, "A", "17au", SIZE, batch_size=8, train=True, seed=1, style="box1.5")
    assert len(loader) == 2  # 20 rows, last incomplete batch dropped
    full = make_loader(ws, "A", "17au", SIZE, batch_size=8, train=True, seed=1, drop_last=False, style="box1.5")
    e0 = order(full, 0)
    assert sorted(e0) == list(range(20))
    assert order(full, 0) == e0 and order(full, 1) != e0
    assert order(make_loader(ws, "A", "17au", SIZE, 8, True, seed=2, drop_last=False, style="box1.5"), 0) != e0
    x, y = next(iter(loader))
    assert x.shape == (8, 3, SIZE, SIZE) and x.dtype == torch.uint8 and y.dtype == torch.int8
    # without set_epoch every pass is a new permutation
    fresh = make_loader(ws, "A", "17au", SIZE, 8, True, seed=1, drop_last=False, style="box1.5")
    assert order(fresh) == e0 and order(fresh) == order(full, 1)


def test_distributed_sampler_partitions(ws):
    for train in (True, False):
        shares = []
        for rank in range(2):
            loader = make_loader(ws, "B", "6au", SIZE, batch_size=4, train=train, distributed=True,
                                 world_size=2, rank=rank, drop_last=False, seed=3)
            set_epoch(loader, 5)
            shares.append([i for b in loader.sampler for i in b])
        assert len(shares[0]) == len(shares[1]) == 20
        assert sorted(shares[0] + shares[1]) == list(range(40))
    assert shares[0] == list(range(0, 40, 2))  # evaluation: rows rank::world_size


def test_split_dataframe(ws):
    both = split_dataframe(ws, ["A", "B"])
    assert len(both) == 60 and list(both.columns[:2]) == ["image", "variant"]
    assert both["variant"].tolist()[:21] == [0] * 21 and both[au_columns(AUS_2020)].dtypes.eq(np.int8).all()
    loader = make_loader(ws, both, "6au", SIZE, batch_size=16, train=False, style="box1.5")
    assert sum(len(y) for _, y in loader) == 60


def test_missing_store_is_named(ws):
    with pytest.raises(FileNotFoundError, match="aligned_24"):
        make_loader(ws, "A", "17au", SIZE, batch_size=4, train=False)


def test_show_batch_and_crops(ws):
    import matplotlib

    matplotlib.use("Agg")
    loader = make_loader(ws, "B", "6au", SIZE, batch_size=5, train=False, style="box1.5")
    x, y = next(iter(loader))
    fig = show_batch(x, y, "6au", ncols=4)
    titles = [ax.get_title() for ax in fig.axes][:5]
    expected = [" ".join(str(a) for a, v in zip(BUILTIN_GROUPS["6au"], row) if v == 1) or "none" for row in y.tolist()]
    assert len(fig.axes) == 8 and titles == expected
    images = pd.read_csv(ws.split("A"))["image"][:3]
    fig = show_crops(ws, images, SIZE, styles=("box1.5",))
    assert len(fig.axes) == 3
    assert np.array_equal(fig.axes[1].images[0].get_array(),
                          CropStore(ws.crops("box1.5", SIZE)).images[store_row(ws, images[1])])


def store_row(ws, image):
    return CropStore(ws.crops("box1.5", SIZE)).rows([image])[0]


def test_loader_over_a_jpeg_store_gives_uint8_batches(ws, tmp_path):
    """The loader does not care about the codec: a jpeg store gives batches of
    the same shape and dtype, in worker processes too, close to the raw pixels."""
    raw = CropStore(ws.crops("box1.5", SIZE))
    faces = pd.DataFrame([{**dict.fromkeys(FACE_COLUMNS, np.nan), "image": name, "width": 40, "height": 40,
                           "n_faces": 1, "score": 0.99, "x0": 10, "y0": 10, "x1": 30, "y1": 30}
                          for name in raw.index["image"]], columns=FACE_COLUMNS)
    jws = Workspace.for_profile("ci", root=tmp_path)
    jws.data.parent.mkdir(parents=True, exist_ok=True)
    jws.data.symlink_to(ws.data, target_is_directory=True)
    store = build_crop_store(jws.data, faces, jws.crops("box1.5", SIZE), "box1.5", SIZE, progress=False,
                             codec="jpeg", quality=95)
    assert store.codec == "jpeg"
    split = pd.read_csv(ws.split("B"))
    for workers in (0, 2):
        loader = make_loader(jws, split, "6au", SIZE, batch_size=16, train=False, num_workers=workers)
        batches = list(loader)
        assert [x.shape for x, _ in batches] == [(16, 3, SIZE, SIZE)] * 2 + [(8, 3, SIZE, SIZE)]
        assert all(x.dtype == torch.uint8 and y.dtype == torch.int8 and y.shape[1] == 6 for x, y in batches)
    x, _ = next(iter(make_loader(jws, split.iloc[::4], "6au", SIZE, batch_size=10, train=False)))
    expected = torch.from_numpy(raw.images[raw.rows(split["image"].iloc[::4])]).permute(0, 3, 1, 2).float()
    assert (x.float() - expected).abs().mean() < 12     # random noise is JPEG's worst case
