"""Figures and tables people can read: Figure 2 as small multiples with
titles inside the figure, the forest plot of every gain with its interval,
the compact tables and the per-AU table as a notebook shows them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from aulib.report import compact, figure2, gains
from aulib.runs import load_run_preds

from synthetic_runs import write_synthetic_run

LONG_NAME = "17au_efficientnet_b0_pretrained_then_finetuned_seed0"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = write_synthetic_run(tmp_path_factory.mktemp("r") / LONG_NAME, "17au", epochs=6, n_images=40, heldout=None)
    return load_run_preds(d, "B")


def _draw(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _inside(fig, artist) -> bool:
    """The artist's drawn box lies within the figure (a clipped title does not)."""
    box = artist.get_window_extent(_draw(fig))
    return box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_figure2_titles_of_long_run_names_are_not_clipped(run):
    fig = figure2.plot_convergence(run)
    title = fig.axes[0].title
    assert LONG_NAME in title.get_text() and _inside(fig, title)
    panels = figure2.plot_convergence_panels(run)
    assert LONG_NAME in panels._suptitle.get_text() and _inside(panels, panels._suptitle)
    legend = fig.axes[0].get_legend()                # outside the axes: it hides no star
    r = _draw(fig)
    assert legend.get_window_extent(r).x0 >= fig.axes[0].get_window_extent(r).x1


def test_figure2_small_multiples_one_panel_per_au(run, tmp_path):
    table = figure2.convergence_table(run)
    fig = figure2.plot_convergence_panels(run, out_path=tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == len(run.aus)
    mean_curve = np.nanmean(figure2.convergence_scores(run)[2], axis=1)
    for ax, au in zip(shown, run.aus):
        best = table.loc[f"AU{au}", "best_epoch"]
        assert ax.get_title().startswith(f"AU{au} · ep {best} ")
        star = [ln for ln in ax.lines if ln.get_marker() == "*"]
        assert len(star) == 1 and star[0].get_xdata()[0] == best
        assert any(np.allclose(ln.get_ydata(), mean_curve) for ln in ax.lines)        # the average in each
        assert any(ln.get_xdata()[0] == table.loc["mean", "avg_epoch"] and ln.get_linestyle() == ":"
                   for ln in ax.lines)


def _table1() -> pd.DataFrame:
    rows = ["Baseline", "Ensemble", "Ensemble-chosen"]
    df = pd.DataFrame({"row": rows, "Paper Final": [0.80, 0.81, np.nan]})
    for i, est in enumerate(("B", "B cross-fit", "Held-out")):
        df[f"{est} Final"] = [0.70, 0.72 + i / 100, 0.73]
        for comp, ref in (("vs Baseline", 0), ("vs previous row", None)):
            g = [np.nan, 0.02 + i / 100, 0.03 if comp == "vs Baseline" else 0.01]
            df[f"{est} gain {comp}"] = g
            df[f"{est} gain {comp} lo"] = [np.nan, g[1] - 0.01, g[2] - 0.02]
            df[f"{est} gain {comp} hi"] = [np.nan, g[1] + 0.01, g[2] + 0.02]
    df["Paper gain vs Baseline"] = [np.nan, 0.01, np.nan]
    df["Paper gain vs previous row"] = [np.nan, 0.01, np.nan]
    return df


def test_gains_are_each_step_and_the_whole_system_per_estimate():
    g = gains.table_gains(_table1(), "table1_x")
    assert len(g) == 3 * 3                                    # two steps and the whole system, three estimates
    step = g[(g["row"] == "Ensemble-chosen") & (g["comparison"] == "vs previous row")].set_index("estimate")
    assert step.loc["Held-out", ["gain", "lo", "hi"]].tolist() == pytest.approx([0.01, -0.01, 0.03])
    whole = g[g["comparison"] == "vs Baseline"]
    assert whole["row"].unique().tolist() == ["Ensemble-chosen"]


def test_forest_plot_draws_every_interval_and_the_papers_gain(tmp_path):
    g = gains.table_gains(_table1(), "table1_x")
    fig = gains.plot_forest(g, out_path=tmp_path / "f.png")
    ax = fig.axes[0]
    bars = {tuple(np.round(ln.get_xdata(), 6)) for ln in ax.lines if len(ln.get_xdata()) == 2}
    want = {tuple(np.round(r, 6)) for r in g[["lo", "hi"]].to_numpy()}
    assert want <= bars
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Ensemble", "Ensemble-chosen", "whole system vs Baseline"]
    paper = [ln for ln in ax.lines if ln.get_marker() == "D" and ln.get_markerfacecolor() == "none"]
    assert [ln.get_xdata()[0] for ln in paper] == [pytest.approx(0.01)]
    assert _inside(fig, fig._suptitle)
    with pytest.raises(ValueError, match="notebook 07"):
        gains.plot_forest(gains.table_gains(pd.DataFrame({"row": []}), "t"))


def test_choice_figure_has_each_strategys_gain_per_estimate(tmp_path):
    table = pd.DataFrame({"gain_optimistic": [0.0, 0.02, 0.03], "gain_cross_fitted": [0.0, -0.01, 0.01],
                          "gain_heldout": [0.0, -0.005, np.nan]}, index=["baseline", "chosen", "threshold"])
    g = gains.choice_gains(table, "17au")
    assert g["row"].unique().tolist() == ["chosen", "threshold"]
    assert g.set_index(["row", "estimate"]).loc[("chosen", "B cross-fit"), "gain"] == -0.01
    fig = gains.plot_forest(g)
    markers = {ln.get_marker(): ln.get_xdata()[0] for ln in fig.axes[0].lines if len(ln.get_xdata()) == 1
               and ln.get_ydata()[0] < 0.5}
    assert markers == {"o": 0.02, "s": -0.01, "D": -0.005}
    assert "interval" not in fig.axes[-1].get_xlabel()                # the choice report has none


def test_compact_table_is_final_and_gain_per_estimate_in_one_line():
    frame = compact.compact_frame(_table1())
    assert frame.columns.tolist() == ["row", "paper", "B", "B gain", "B cross-fit", "B cross-fit gain",
                                      "Held-out", "Held-out gain"]
    assert frame.loc[1, "Held-out gain"] == "+0.0400 [+0.0300, +0.0500]"
    assert frame.loc[0, "B gain"] == "" and frame.loc[2, "paper"] == ""
    html = compact.style_compact(_table1()).to_html()
    assert "white-space: nowrap" in html and "nan" not in html.lower()


def test_per_au_table_prints_counts_whole_and_no_nan():
    df = pd.DataFrame({"au": ["AU1", "AU51"], "F1 a": [0.4031, np.nan], "positives a": [88.0, np.nan],
                       "F1 b": [np.nan, 0.15], "positives b": pd.array([pd.NA, 12], dtype="Int64")})
    html = compact.style_per_au(df).to_html()
    assert "nan" not in html.lower() and "88.000" not in html and ">88<" in html and ">12<" in html
    assert ">0.403<" in html and ">–<" in html


def test_forest_panels_carry_the_papers_names_and_the_other_seeds(tmp_path):
    """Panels are titled as the paper names the tables (not table1_17au), and a gain
    retrained under other seeds is drawn as extra open markers on its line."""
    g = pd.DataFrame({"table": ["table1_17au"] * 3 + ["table3"] * 3, "row": ["Ensemble"] * 3 + ["w/o L_cr"] * 3,
                      "comparison": ["vs previous row"] * 3 + ["vs Baseline"] * 3,
                      "estimate": list(gains.ESTIMATES) * 2, "gain": [0.01, 0.02, 0.0, -0.01, -0.02, -0.03],
                      "lo": [0.0] * 6, "hi": [0.03] * 6, "paper": [0.014] * 3 + [np.nan] * 3})
    seeds = pd.concat([g.assign(seed=s, gain=g["gain"] + 0.001 * s) for s in (0, 1, 2)])
    fig = gains.plot_forest(g, seeds=seeds)
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["Table 1 · 17 AUs", "Table 3 · 12 AUs, ablations"]
    ax = fig.axes[0]
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "none" and ln.get_markeredgecolor() != "black"]
    xs = sorted(float(x) for ln in hollow for x in ln.get_xdata())
    assert xs == pytest.approx(sorted([0.011, 0.012, 0.021, 0.022, 0.001, 0.002]))     # seeds 1 and 2, not 0
    assert any("other seeds" in t.get_text() for t in fig.legends[0].get_texts())


def test_figure2_never_highlights_a_flat_au_as_earliest_peaking(tmp_path):
    """A never-learned AU (the same score every epoch) has no best epoch: the default
    highlight skips it and its panel says flat instead of 'ep 1'."""
    d = write_synthetic_run(tmp_path / "r", "6au", peaks=[3, 6, 4, 5, 5, 6], epochs=6, n_images=40, heldout=None)
    for e in range(1, 7):
        path = d / "preds" / f"B_epoch{e:03d}.npy"
        p = np.load(path)
        p[:, 0] = 0.01                       # AU51 predicted absent throughout: flat, argmax at epoch 1
        np.save(path, p)
    rp = load_run_preds(d, "B")
    t = figure2.convergence_table(rp)
    assert bool(t.loc["AU51", "flat"]) and t.loc["AU51", "best_epoch"] == 1 and not t.drop("AU51")["flat"].any()
    fig = figure2.plot_convergence(rp)
    names = [x.get_text() for x in fig.axes[0].get_legend().get_texts()]
    assert not any(n.startswith("AU51") for n in names), names
    earliest = t.drop(index=["AU51", "mean"])["best_epoch"].idxmin()
    assert any(n.startswith(f"{earliest} (best epoch") for n in names)     # the earliest real peak instead
    panels = figure2.plot_convergence_panels(rp)
    assert panels.axes[0].get_title() == "AU51 · flat (never moves)"


def test_figure2_is_drawn_from_the_longest_trained_baseline_run():
    """The group's figure: the longest run trained from scratch (not a short finetune with
    a better score), the table's Baseline on a tie."""
    s = pd.DataFrame({"epochs": [10, 10, 5, 2, 12], "stage": ["plain", "plain", "finetune", "pretrain", "finetune"],
                      "avg_score": [0.70, 0.72, 0.80, 0.60, 0.9]},
                     index=["17au_base", "17au_resnet_plain", "17au_effnet_finetune", "17au_effnet_pretrain", "ft"])
    assert figure2.main_run(s, "17au_base") == "17au_base"
    assert figure2.main_run(s, None) == "17au_resnet_plain"
    assert figure2.main_run(s.drop(index=["17au_base", "17au_resnet_plain"]), None) == "ft"


def test_per_au_style_marks_f1_at_its_own_trivial_line():
    df = pd.DataFrame({"au": ["AU5", "AU25"], "F1 a": [0.15, 0.55], "trivial F1 a": [0.09, 0.66],
                       "positives a": [10, 300]})
    low = compact.at_trivial(df)
    assert low["F1 a"].tolist() == [False, True] and not low.drop(columns="F1 a").any().any()
    assert compact.style_per_au(df).to_html().count("#f4c7c3") == 1
