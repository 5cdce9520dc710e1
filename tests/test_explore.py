"""The explorers (aulib.explore) driven as a notebook user drives them: set a
control's value, check the numbers and the figure on screen changed to the
right ones. The workspace is what notebooks 02-06 leave: run directories, the
crop store of the runs' faces (built from face rows, as 02 builds it from
MTCNN's) and the chosen model of 06."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aulib.data import crops as C
from aulib.data.faces import columns as F
from aulib.explore import compare_runs, explore_au, table_breakdown, threshold_curves, wrong_rows
from aulib.metrics import au_scores, batched_scores, decide
from aulib.runs import load_run_preds
from aulib.select.choose import choose_across_runs
from aulib.select.chosen import ChosenModel, load_chosen, save_chosen
from aulib.workspace import Workspace

from synthetic_runs import write_synthetic_run

N_IMAGES = 24


def _crop_store(ws: Workspace, images: list[str], size: int = 64) -> C.CropStore:
    """A crop store over ``images``: image k a face-sized patch of its own colour."""
    data = ws.root / "data"
    rows = []
    for k, name in enumerate(images):
        img = np.full((96, 96, 3), (20 + 9 * k) % 256, np.uint8)
        img[30:70, 30:70, 1] = (200 - 7 * k) % 256
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(data / name)
        row = {"image": name, "width": 96, "height": 96, "n_faces": 1, "score": 0.99, "status": "ok"}
        row.update(zip(F.BOX_COLUMNS, (20.0, 15.0, 76.0, 85.0)))
        row.update(zip(F.LANDMARK_COLUMNS, (36, 42, 60, 42, 48, 55, 38, 68, 58, 68)))
        rows.append(row)
    faces_csv = ws.root / "faces.csv"
    pd.DataFrame(rows, columns=F.CACHE_COLUMNS).to_csv(faces_csv, index=False)
    return C.build_crop_store(data, faces_csv, ws.crops("aligned", size), "aligned", size, progress=False)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace(root, root / "results")
    for seed, name in enumerate(("17_a", "17_b")):
        write_synthetic_run(ws.run(name), "17au", epochs=5, n_images=N_IMAGES, n_heldout=20, seed=seed)
    runs = [load_run_preds(ws.run(n), "B") for n in ("17_a", "17_b")]
    save_chosen(ws.chosen("17au"), ChosenModel.from_choice(choose_across_runs(runs, "threshold"), "17au",
                                                           ws.root, runs))
    _crop_store(ws, sorted(set(runs[0].index["image"])))
    return ws


def test_threshold_curves_are_the_metrics_at_each_threshold():
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, 0, 1], 200, p=[0.1, 0.6, 0.3])
    probs = rng.random(200)
    curves = threshold_curves(labels, probs, [0.0, 0.3, 0.5, 0.9, 1.0])
    for _, row in curves.iterrows():
        ref = au_scores(labels[:, None], decide(probs[:, None], row["threshold"])).iloc[0]
        assert row["f1"] == pytest.approx(ref["f1"]) and row["acc"] == pytest.approx(ref["acc"])
        pred, known = probs >= row["threshold"], labels >= 0
        tp = (pred & (labels == 1)).sum()
        assert row["recall"] == pytest.approx(tp / (labels == 1).sum())
        if (pred & known).any():
            assert row["precision"] == pytest.approx(tp / (pred & known).sum())
        else:
            assert np.isnan(row["precision"])


def test_wrong_rows_are_the_errors_most_confident_first():
    labels = np.array([0, 0, 1, 1, 0, -1, 1])
    probs = np.array([0.9, 0.2, 0.1, 0.8, 0.6, 0.99, 0.3])
    assert wrong_rows(labels, probs, 0.5, "FP").tolist() == [0, 4]           # the unknown row 5 is no error
    assert wrong_rows(labels, probs, 0.5, "FN").tolist() == [2, 6]
    assert wrong_rows(labels, probs, 0.5, "FN", n=1).tolist() == [2]
    with pytest.raises(ValueError, match="FP"):
        wrong_rows(labels, probs, 0.5, "TP")


def test_au_explorer_starts_at_the_chosen_model(ws):
    x = explore_au(ws, "17au")
    chosen = {p["au"]: p for p in load_chosen(ws.chosen("17au"), ws.root, check_files=False).per_au}
    for au in (1, 12, 43):
        x.au.value = au
        s = x.state()
        assert (s["run"], s["epoch"]) == (chosen[au]["run"], chosen[au]["epoch"])
        assert s["threshold"] == pytest.approx(chosen[au]["threshold"])


def test_moving_the_threshold_slider_changes_the_scores_and_the_faces(ws):
    x = explore_au(ws, "17au", n_faces=40)
    x.au.value = 12
    before = {v: getattr(x, v).widget.value for v in ("scores_view", "faces")}
    renders = x.scores_view.renders
    x.threshold.value = 0.15
    s = x.state()
    run = load_run_preds(ws.run(s["run"]), "B")
    c, k = run.aus.index(12), list(run.epochs).index(s["epoch"])
    labels, probs = run.labels[:, c], run.probs[k, :, c].astype(np.float64)
    ref = au_scores(labels[:, None], decide(probs[:, None], 0.15)).iloc[0]
    assert s["f1"] == pytest.approx(ref["f1"])
    assert s["fp"] == int(((probs >= 0.15) & (labels == 0)).sum()) > 0
    assert x.scores_view.renders == renders + 1
    assert x.scores_view.widget.value != before["scores_view"] and x.faces.widget.value != before["faces"]
    # the faces shown are the crops of the false positives, most confident first
    store = C.CropStore(ws.crops("aligned", 64))
    want = store.images[store.rows(run.index["image"].to_numpy()[s["rows"]])]
    shown = [ax.images[0].get_array() for ax in x.faces.figure.axes if ax.images]
    assert len(shown) == len(s["rows"]) == min(40, s["fp"])
    np.testing.assert_array_equal(np.stack(shown), want)
    assert f"p={probs[s['rows'][0]]:.2f}" in x.faces.figure.axes[0].get_title()
    x.kind.value = "FN"
    assert x.state()["rows"] == wrong_rows(labels, probs, 0.15, "FN", 40).tolist()


def test_au_explorer_without_a_chosen_model_or_faces(ws, tmp_path):
    bare = Workspace(tmp_path, tmp_path / "results")
    write_synthetic_run(bare.run("r"), "6au", epochs=4, n_images=N_IMAGES, heldout=None)
    x = explore_au(bare, "6au")
    run = load_run_preds(bare.run("r"), "B")
    final = batched_scores(run.labels, run.probs, 0.5)["final"]
    x.au.value = run.aus[2]
    assert x.state()["epoch"] == int(run.epochs[np.nanargmax(final[:, 2])]) and x.state()["threshold"] == 0.5
    assert "no faces to show" in x.faces.figure.texts[0].get_text()
    with pytest.raises(FileNotFoundError, match="04_train"):
        explore_au(bare, "17au")


def test_runs_side_by_side_overlay_the_chosen_runs_and_aus(ws):
    x = compare_runs(ws, "17au")
    x.runs.value = ("17_a", "17_b")
    x.aus.value = ("average", "AU4", "AU25")
    curves = x.curves()
    assert list(curves) == ["average", "AU4", "AU25"] and set(curves["AU4"]) == {"17_a", "17_b"}
    rb = load_run_preds(ws.run("17_b"), "B")
    s = batched_scores(rb.labels, rb.probs, 0.5)
    np.testing.assert_allclose(curves["AU25"]["17_b"][1], s["final"][:, rb.aus.index(25)])
    np.testing.assert_allclose(curves["average"]["17_b"][1], s["final"].mean(1))
    assert sum(ax.get_visible() for ax in x.view.figure.axes) == 3
    before = x.view.widget.value
    x.metric.value = "f1"
    np.testing.assert_allclose(x.curves()["AU25"]["17_b"][1], s["f1"][:, rb.aus.index(25)])
    assert x.view.widget.value != before


@pytest.fixture(scope="module")
def tables_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    ws = Workspace(root, root / "results")
    for seed, name in enumerate(("6_a", "6_b")):
        write_synthetic_run(ws.run(name), "6au", epochs=4, n_images=40, n_heldout=40, seed=seed)
    return ws


SPEC = {"heldout": "test", "folds": 3, "bootstrap": 0, "6au": {"baseline": "6_a", "ensemble": ["6_a", "6_b"]}}


def test_a_table_row_breaks_down_into_its_per_au_scores(tables_ws):
    from aulib.report import tables

    t1 = tables.table1(tables_ws, "6au", SPEC).set_index("row")
    x = table_breakdown(tables_ws, SPEC)
    assert x.table.options == ("table1_6au",)
    row = "Ensemble-chosen-threshold"
    per_au = tables.row_per_au(tables_ws, SPEC, "table1_6au", row)
    for est in ("B", "B cross-fit", "Held-out"):           # the per-AU means are the table's numbers
        sub = per_au[per_au["estimate"] == est]
        assert (sub["acc"].mean() + sub["f1"].mean()) / 2 == pytest.approx(t1.loc[row, f"{est} Final"])
    first = x.view.widget.value
    x.row.value = row
    frame = x.frame()
    base = x.per_au("table1_6au", "Baseline")
    ho = per_au[per_au["estimate"] == "Held-out"]["final"].to_numpy()
    np.testing.assert_allclose(frame["Held-out"], ho)
    np.testing.assert_allclose(frame["Held-out vs Baseline"], ho - base[base["estimate"] == "Held-out"]["final"])
    assert x.view.widget.value != first and f"AU{per_au['au'].iloc[0]}<" in x.html.value and "nan" not in x.html.value
    with pytest.raises(ValueError, match="no row"):
        tables.row_per_au(tables_ws, SPEC, "table1_6au", "Ensemble-multicrop")
