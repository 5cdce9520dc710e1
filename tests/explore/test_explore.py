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
    images = run.index["image"].to_numpy()
    n_distinct = len(set(images[(probs >= 0.15) & (labels == 0)]))
    assert len(shown) == len(s["rows"]) == min(40, n_distinct) < s["fp"]        # B's copies counted once
    assert len(set(images[s["rows"]])) == len(s["rows"])
    assert f"the {len(s['rows'])} images shown" in x.faces_caption.value and images[s["rows"][0]] in x.faces_caption.value
    np.testing.assert_array_equal(np.stack(shown), want)
    assert f"p={probs[s['rows'][0]]:.2f}" in x.faces.figure.axes[0].get_title()
    x.kind.value = "FN"
    assert x.state()["rows"] == wrong_rows(labels, probs, 0.15, "FN", 40, images).tolist()


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


def test_wrong_rows_show_each_image_once_its_most_confident_copy_first():
    """Issue 35.4: B's degraded copies of one image count once in the error grid."""
    labels = np.array([0, 0, 0, 0, 0, 1])
    probs = np.array([0.9, 0.95, 0.7, 0.8, 0.6, 0.99])
    images = np.array(["a", "a", "b", "c", "b", "a"])
    assert wrong_rows(labels, probs, 0.5, "FP").tolist() == [1, 0, 3, 2, 4]
    assert wrong_rows(labels, probs, 0.5, "FP", images=images).tolist() == [1, 3, 2]
    assert wrong_rows(labels, probs, 0.5, "FP", n=2, images=images).tolist() == [1, 3]


def test_debouncer_runs_once_after_a_burst_in_an_event_loop_and_at_once_without_one():
    import asyncio

    from aulib.explore.widgets_common import Debouncer

    seen = []
    d = Debouncer(lambda: seen.append(1), delay=0.05)
    d()
    assert seen == [1] and not d.pending                    # no running loop: at once

    async def burst():
        for _ in range(5):
            d()
            await asyncio.sleep(0.005)
        assert d.pending and seen == [1]
        await asyncio.sleep(0.2)

    asyncio.run(burst())
    assert seen == [1, 1] and d.calls == 2


def test_threshold_steps_redraw_once_and_leave_the_curves_alone(ws):
    """Issue 35.4: five arrow-key steps in a kernel (a running event loop) make one redraw of the
    two threshold figures and none of the unchanged curves figure."""
    import asyncio

    x = explore_au(ws, "17au")
    x.later.delay = 0.05
    counts = lambda: (x.curves.renders, x.scores_view.renders, x.faces.renders)  # noqa: E731
    before = counts()

    async def keys():
        for _ in range(5):
            x.threshold.value = round(x.threshold.value - 0.01, 2)
            await asyncio.sleep(0.005)
        assert counts() == before                        # nothing drawn during the burst
        await asyncio.sleep(0.3)

    asyncio.run(keys())
    assert counts() == (before[0], before[1] + 1, before[2] + 1)
    assert f"threshold {x.threshold.value:.2f}" in [t.get_text() for t in x.scores_view.figure.legends[0].texts]


def test_reset_goes_back_to_the_chosen_threshold_and_nothing_chosen_draws_no_chosen_line(ws, tmp_path):
    x = explore_au(ws, "17au")
    x.au.value = 12
    chosen = x.chosen_for(12)
    assert chosen is not None and x.reset.description == f"reset: chosen {chosen[2]:.3f}"
    x.threshold.value = 0.9
    x.reset.click()
    assert x.threshold.value == pytest.approx(chosen[2], abs=0.005)
    legend = lambda e: [t.get_text() for t in e.scores_view.figure.legends[0].texts]  # noqa: E731
    assert any(t.startswith("chosen ") for t in legend(x))
    bare = explore_au(ws, "17au", chosen=False)          # nothing chosen: no "chosen 0.500"
    assert bare.chosen_for(12) is None and not any(t.startswith("chosen") for t in legend(bare))
    assert bare.reset.description == "reset: 0.500 (none chosen)"
    assert "best at 0.5" in " ".join(t.get_text() for t in bare.curves.figure.legends[0].texts)


def test_one_run_shows_its_name_and_a_selection_is_never_emptied(tmp_path):
    """Issue 35.4 (edges 1, 2): one run (a newcomer's first 04_train) gets no one-row list; emptying
    the AU list goes back to the last selection; one panel is one readable figure, not stretched."""
    one = Workspace(tmp_path, tmp_path / "results")
    write_synthetic_run(one.run("r"), "6au", epochs=3, n_images=N_IMAGES, heldout=None)
    x = compare_runs(one)
    controls = x.widget.children[0].children
    assert x.runs not in controls and "aulib-one-run" in controls[0]._dom_classes and "r" in controls[0].value
    assert len(x.aus.options) == 7 and x.aus.value == ("average",)
    x.aus.value = ()
    assert x.aus.value == ("average",)
    fig = x.view.figure
    assert tuple(fig.get_size_inches()) == (7.0, 4.2) and x.view.widget.layout.width == "630px"
    x.aus.value = x.aus.options[:4]
    assert x.view.figure.get_size_inches()[0] == 11.0 and x.view.widget.layout.width == "990px"


def test_two_runs_cannot_both_be_deselected(ws):
    x = compare_runs(ws, "17au")
    assert x.runs in x.widget.children[0].children and x.runs.rows >= 3
    x.runs.value = ()
    assert x.runs.value == ("17_a", "17_b") and len(x.aus.options) == 18


def test_breakdown_offers_only_rows_it_can_fit_clears_the_figure_and_shows_a_busy_sign(tables_ws, monkeypatch):
    """Issue 35.4 (edge 3)."""
    from aulib.explore import breakdown

    spec = {**SPEC, "6au": {"baseline": "6_a", "ensemble": ["6_a", "6_gone"]}}
    x = table_breakdown(tables_ws, spec)
    assert x.row.options == ("Baseline",)
    assert "Ensemble-chosen" in x.skipped.value and "6_gone" in x.skipped.value
    assert x.view.widget.layout.display is None and x.view.figure is not None
    seen = {}

    def slow_fit(ws, spec, table, row):
        seen["busy"], seen["disabled"] = x.busy.value, x.row.disabled
        raise ValueError("predictions damaged")

    monkeypatch.setattr(breakdown, "row_per_au", slow_fit)
    x.metric.value = "f1"                                  # cached: no refit, no busy sign
    assert not seen
    x._cache.clear()
    x.metric.value = "acc"
    assert "fitting table1_6au · Baseline" in seen["busy"] and seen["disabled"]
    assert x.busy.value == "" and not x.row.disabled
    assert "No breakdown" in x.html.value and "predictions damaged" in x.html.value
    assert x.view.widget.layout.display == "none"        # the previous row's figure is not left under it
