"""Figure 1 (label counts) and the face grid."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from aulib.aus import AUS_2020, BUILTIN_GROUPS  # noqa: E402
from aulib.data.labels import AU_COLUMNS  # noqa: E402
from aulib.report.faces import au_caption, example_grid, face_grid, load_images  # noqa: E402
from aulib.report.figure1 import bar_heights, plot_label_counts  # noqa: E402


def label_table(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.6, len(AU_COLUMNS))
    values = (rng.random((n, len(AU_COLUMNS))) < p).astype(np.int8)
    values[rng.random(values.shape) < 0.1] = -1
    df = pd.DataFrame(values, columns=AU_COLUMNS)
    df.insert(0, "image", [f"images/x/{i:04d}.jpg" for i in range(n)])
    return df


@pytest.mark.parametrize("stacked", [False, True])
def test_figure1_bars_equal_table_counts(tmp_path, stacked):
    df = label_table(300)
    out = tmp_path / "figs" / "figure1.png"
    fig = plot_label_counts(df, out_path=out, stacked=stacked)
    values = df[AU_COLUMNS].to_numpy()
    assert np.array_equal(bar_heights(fig, "positive"), (values == 1).sum(0))
    assert np.array_equal(bar_heights(fig, "negative"), (values == 0).sum(0))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(a) for a in AUS_2020]
    assert ax.get_yscale() == "log"
    # the head-pose block is set apart: a wider step between AU43 and AU51 than elsewhere
    ticks = ax.get_xticks()
    step = np.diff(ticks)
    assert step[16] > step[:16].max()
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "17 expression AUs" in texts and "6 head-pose AUs" in texts
    assert Image.open(out).format == "PNG"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    plt.close(fig)


def test_figure1_subset_of_aus_and_linear_scale():
    df = label_table(50, seed=1)
    fig = plot_label_counts(df, aus=BUILTIN_GROUPS["12au"], log=False)
    assert len(bar_heights(fig, "positive")) == 12
    assert np.array_equal(bar_heights(fig, "positive"), (df[[f"AU{a}" for a in BUILTIN_GROUPS["12au"]]] == 1).sum(axis=0))
    assert fig.axes[0].get_yscale() == "linear"
    plt.close(fig)


def test_au_caption():
    row = pd.Series({c: 0 for c in AU_COLUMNS})
    assert au_caption(row) == "no AU"
    row["AU12"], row["AU25"], row["AU51"] = 1, 1, -1
    assert au_caption(row) == "12 25 ?51"
    row["AU12"] = 0
    assert au_caption(row, aus=(1, 2, 51)) == "no AU ?51"


def test_face_grid_and_example_grid(tmp_path):
    df = label_table(5, seed=2)
    root = tmp_path / "root"
    for i, img in enumerate(df["image"]):
        (root / img).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 16, 3), 40 * i, np.uint8)).save(root / img)
    images = load_images(root, df["image"])
    assert images[3].shape == (20, 16, 3) and images[3].dtype == np.uint8
    fig = face_grid(images, df, ncols=3, out_path=tmp_path / "grid.png")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(shown) == 5
    assert [ax.get_title() for ax in shown] == [au_caption(r) for _, r in df.iterrows()]
    assert (tmp_path / "grid.png").exists()
    plt.close(fig)
    fig = example_grid(root, df, n=4, seed=0)
    assert len([ax for ax in fig.axes if ax.images]) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="2 images but 5 label rows"):
        face_grid(images[:2], df)
    with pytest.raises(ValueError, match="data root"):
        load_images(root, ["../x.jpg"])
