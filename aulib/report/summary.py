"""``results/README.md``: the regenerated figures and tables on one page.

Written by notebook 07 from what the earlier notebooks left in the workspace
(figures, ``tables/*.csv``, the pipeline's step stamps). Every table keeps
the paper's published numbers beside ours; the page says which data the runs
were trained on, so SynthAU results are never mistaken for EmotioNet ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..environment import write_environment
from ..io import read_yaml, write_text
from . import paper
from .compact import at_trivial, compact_frame, gain_cell, interval_cell
from .gains import CHOICE_ESTIMATES, all_gains, read_seed_gains, seed_verdicts, table_title
from .tables import to_markdown

_DATA_NOTE = {
    "synthau": ("These numbers come from **SynthAU**, the kit's generated data set of synthetic faces, "
                "not from EmotioNet. They show that every step of the method runs and how large each "
                "step's effect is on this data; they are not comparable to the paper's EmotioNet figures, "
                "which stand beside them for reference only."),
}


COLUMNS = (
    "Columns of Tables 1 and 3: *Paper* = the paper's published value (measured on the authors' B). "
    "*B* = the paper's protocol for every row alike: epochs, ensemble weights and thresholds fitted on all "
    "of B and scored on the same B (in-sample). *B cross-fit* = the whole recipe fitted on 4/5 of B's "
    "images and applied to the other fifth (out-of-fold), the five folds' decisions pooled and scored once. "
    "*Held-out* = the recipe fitted on all of B, scored on the held-out split `H` (carved from the "
    "optimization set like B and degraded x4 exactly as B), which no choice saw. The last two are the kit's honest estimate "
    "of what each step is worth. *gain vs Baseline* / *gain vs previous row* = final-score difference to "
    "the table's Baseline row / to the row above (the step the row adds), with its 95 % paired bootstrap "
    "interval in brackets (1,000 resamples of the images, a B image's four copies together)."
)
SEED_COLUMNS = (
    "*seed sd* (the profile trains several `seeds`): the sample standard deviation over the training seeds "
    "of the final score or gain beside it, each seed's recipe fitted on that seed's runs (*seeds*: how many; "
    "1: trained once, the same in every seed). The bootstrap keeps the trained models fixed; this retrains them."
)
GAINS_NOTE = (
    "Each step of Table 1 (gain vs the row above; last line of a group: the whole system vs Baseline) and each "
    "ablation of Table 3 (vs Baseline), beside the gain the paper claims. *Excludes 0*: the estimates whose "
    "95 % interval lies entirely on one side of zero; *claimed in the text*: a gain the paper's Sec. 3 "
    "states in words. Intervals on *B cross-fit* leave out the variability "
    "of refitting the folds. Every interval holds the trained models fixed: *other seeds* gives the same gain "
    "with every run of the table retrained under another seed (`benchmarks/seed_spread.py --tables`), and "
    "*every seed* marks the only gains this page calls distinguishable from zero: their interval excludes 0, "
    "on the same side, under every seed."
)
LOSS_WEIGHTS_NOTE = (
    "The regularisers' weights, which the paper does not give, retrained by `python -m aulib.train.study` "
    "(not part of the pipeline): `kit` = the default 1/1, `none` = 0/0, `mlcr` = MLCR's released 400/100 "
    "converted to the kit's per-label mean BCE (see `aulib/model/losses.py`). Last epoch of each run; "
    "|cos| and JS are the regularisers' values on the training batches of that epoch. The table is the study's "
    "own last run, not the pipeline's: its header gives the data and epochs it ran on."
)
PER_AU_NOTE = (
    "Per-AU F1 on B of each table's Baseline run at its last epoch and threshold 0.5 (Figure 2's last point), "
    "with the AU's positive rows in B (four copies an image) and its *trivial F1*: the F1 of calling the AU "
    "present in every image, 2p / (1 + p) for its prevalence p in B (0.09 at p = 5 %, 0.33 at p = 20 %). An F1 "
    "at or below it (marked **) is no better than that: such an AU is never learned, the noisy filter then "
    "deletes its positives from C, and no ablation can move it."
)
_GAIN_ESTIMATES = ("B", "B cross-fit", "Held-out")
SEED_NOTE = (
    "Each table's Baseline trained again under other seeds (`benchmarks/seed_spread.py`, same config, "
    "`<run>_seed<k>` in a workspace of its own): B final score at the last epoch, threshold 0.5, its smallest "
    "per-AU F1 and the AUs at or below their trivial F1 2p / (1 + p) (not learned). The spread over seeds is "
    "what a difference between two runs must exceed to mean anything, and `benchmarks/reproduce.py` takes 3 "
    "standard deviations of it as the tolerance within which a fresh demo run on another machine must land."
)
CHOICE_NOTE = (
    "Notebook 06 chooses among single (run, epoch) candidates of *every* run of the group (17 AUs: all six "
    "runs, the pretraining and finetuned ones included; 6 AUs: both), so its *baseline* is the best single "
    "candidate at threshold 0.5 over all of them. Table 1's Baseline is one run (the table spec's, e.g. "
    "`17au_base`) at its own best-average epoch: the two baselines differ by construction, and so do the gains "
    "measured from them. Each gain over the baseline has its 95 % paired bootstrap interval in brackets "
    "(trained models and choices fixed, as in the tables)."
)
TABLE2_NOTE = (
    "**Not a place on the leaderboard.** The teams' rows are the EmotioNet 2020 challenge's, scored by its "
    "server on EmotioNet's validation and test sets. Ours, in a block of their own below them, are the kit's "
    "chosen models scored on the {dataset} data's own validation and test splits: other faces, other AUs' "
    "difficulty, no server. The numbers cannot be compared; ours being higher does not beat the winner."
)
FIGURE2_NOTE = (
    "Each group's figure is drawn from its longest-trained baseline run (trained from scratch on A, the table's "
    "Baseline on a tie; a short finetune hides the per-AU peaks); every run's own figure is in `figures/`. "
    "An AU whose score never moves is drawn grey and called flat: it has no best epoch."
)
COMPACT_NOTE = (
    "Final scores per estimate and the gain of each row's step over the row above, with its 95 % interval; "
    "F1 and accuracy per estimate, and every gain vs Baseline, are in `tables/table1_*.csv` / `.md`. "
    "*Baseline* here is one run at its own best-average epoch; the choice table further down starts from "
    "another baseline, the best single (run, epoch) over all the group's runs."
)
MULTICROP_NOTE = (
    "Final score and mean F1 on B of the 17-AU baseline's last epoch under each view alone and under the "
    "averages (`aulib.infer.multicrop_study`). Multi-crop averages the views training produces (`image`, `flip`); "
    "the corner crops (a 1.11x zoom shifted 5 % of the side) are outside the training distribution of "
    "5-point-aligned faces, which is why they are not averaged."
)
NOISY_NOTE = (
    "Per AU (table of `aulib.noisy.score_filter`): `labels_*`, `pos_*` = known labels and labels 1 in the noisy "
    "split (before) and in C (after), `kept` = the share of known labels C keeps, `acc_*` = their agreement with "
    "the true labels. `prev_before`, `prev_after` = share of positives among the known labels of the noisy split "
    "and of C; `prev_true` = among the true labels of the noisy images. Of the noisy images whose true label is 1, "
    "`true_pos_kept` have label 1 in C and `true_pos_as_neg` a wrong 0; of those whose true label is 0, "
    "`true_neg_kept` have 0 in C and `true_neg_as_pos` a wrong 1 (the rest are unknown in C). Row `mean`: counts "
    "summed, `kept` pooled, every other rate the mean over the AUs. The columns that need the truth are empty "
    "without the noisy images' true labels (SynthAU keeps them; EmotioNet has none)."
)
NOISY_RATES = ["prev_before", "prev_after", "prev_true",
               "true_pos_kept", "true_neg_kept", "true_pos_as_neg", "true_neg_as_pos"]
SHIFT_TOLERANCE = 0.1      # |prev_after / prev_true - 1| within this: C keeps the true prevalence
FEW_TRUE_POSITIVES = 0.05  # an AU whose C keeps fewer of its true positives is named


def _pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def noisy_filter_sentence(df: pd.DataFrame) -> str:
    """One sentence on which class the noisy filter favours, from the table of
    :func:`aulib.noisy.score_filter` (index ``au``). Rates are averaged over
    the AUs whose true prevalence is known (the ``mean`` row when every AU has
    truth): C is shifted toward negatives (positives) when its prevalence
    ``prev_after`` lies more than ``SHIFT_TOLERANCE`` (relative) below (above)
    the true one ``prev_true``; AUs whose C keeps under ``FEW_TRUE_POSITIVES``
    of their true positives are named."""
    if not set(NOISY_RATES) <= set(df.columns) or "mean" not in df.index:
        return "*(this table predates the prevalence and true-class columns: rerun notebook 03)*"
    aus = df.drop(index=["mean", "images"], errors="ignore")
    known = aus[aus["prev_true"].notna() & aus["prev_after"].notna()]
    if known.empty:
        m = df.loc["mean"]
        return (f"Without the noisy images' true labels the table cannot say which class the filter favours "
                f"(positives, mean over AUs: {float(m['prev_before']):.3f} of the noisy labels, "
                f"{float(m['prev_after']):.3f} of C's).")
    pb, pa, pt, tpk, tnk, tpn, ab, aa = (float(known[c].mean()) for c in (
        "prev_before", "prev_after", "prev_true", "true_pos_kept", "true_neg_kept", "true_pos_as_neg",
        "acc_before", "acc_after"))
    prev = (f"C's labels are {pa:.3f} positive against a true {pt:.3f} (the noisy labels: {pb:.3f}; "
            f"means over the {len(known)} AUs with true labels)")
    acc = (f" Label accuracy ({ab:.3f} before filtering, {aa:.3f} after) pools both classes and does not show "
           "this.")
    if pa < pt * (1 - SHIFT_TOLERANCE):
        few = known[known["true_pos_kept"] < FEW_TRUE_POSITIVES]["true_pos_kept"].sort_values()
        named = (f" C keeps under {_pct(FEW_TRUE_POSITIVES)} of the true positives of "
                 + ", ".join(f"{au} ({_pct(v, 1)})" for au, v in few.items()) + "." if len(few) else "")
        return (f"**The filter shifts C toward negatives**: it keeps {_pct(tpk)} of the true positives as positives "
                f"against {_pct(tnk)} of the true negatives as negatives ({_pct(tpn)} of the true positives "
                f"become wrong negatives), so {prev}." + named + acc)
    if pa > pt * (1 + SHIFT_TOLERANCE):
        return (f"**The filter shifts C toward positives**: it keeps {_pct(tpk)} of the true positives as positives "
                f"against {_pct(tnk)} of the true negatives as negatives, so {prev}." + acc)
    return (f"The filter keeps C's prevalence near the truth: {prev}; it keeps {_pct(tpk)} of the true positives "
            f"and {_pct(tnk)} of the true negatives.")


def noisy_filter_section(tab: Path) -> list[str]:
    """Markdown lines of the noisy-filter section: per group with a table
    (``noisy_filter_17au.csv`` always, ``noisy_filter_6au.csv`` when written),
    the sentence of :func:`noisy_filter_sentence`, then the table."""
    out = ["## Noisy-label filtering (dataset C)", NOISY_NOTE, ""]
    for group in ("17au", "6au"):
        path = tab / f"noisy_filter_{group}.csv"
        if not path.exists():
            if group == "17au":
                out += [f"*({path.name} not produced)*", ""]
            continue
        df = pd.read_csv(path)
        out += [f"**{group}**", "", noisy_filter_sentence(df.set_index("au")), "", to_markdown(df), ""]
    return out


def gains_table(tab: Path) -> str:
    """Markdown: the gains of Tables 1 and 3 (from ``table1_*.csv``, ``table3.csv``
    in folder ``tab``; which gains: :func:`aulib.report.gains.table_gains`)
    beside the paper's, which intervals exclude zero, and, where ``seed_gains.csv``
    is in ``tab``, each gain under the other seeds and whether its interval
    excludes 0 under every seed (:func:`aulib.report.gains.seed_verdicts`);
    then one sentence on multiplicity (:func:`multiplicity_sentence`)."""
    claimed = {(t, row, ref == "Baseline") for t, row, ref, _ in paper.CLAIMED_GAINS}
    long = all_gains(tab)
    seeds = read_seed_gains(tab)
    verdicts = seed_verdicts(long, seeds).set_index(["table", "row", "comparison", "estimate"]).sort_index()
    out = []
    for (name, row, comp), g in long.groupby(["table", "row", "comparison"], sort=False):
        g = g.set_index("estimate")
        cell = lambda e: interval_cell(*g.loc[e, ["gain", "lo", "hi"]])  # noqa: E731
        pg = g["paper"].iloc[0]
        excl = [e for e in _GAIN_ESTIMATES if g.loc[e, "lo"] > 0 or g.loc[e, "hi"] < 0]
        line = {"table": table_title(name), "row": row, "gain": comp, "paper": "" if pg != pg else f"{pg:+.4f}",
                "claimed in the text": "yes" if (name, row, comp == "vs Baseline") in claimed else "",
                **{e: cell(e) for e in _GAIN_ESTIMATES}, "excludes 0": ", ".join(excl) or "none"}
        if seeds is not None:
            v = verdicts.loc[(name, row, comp)]
            for e in _GAIN_ESTIMATES:
                line[f"{e}, other seeds"] = v.loc[e, "per_seed"]
            line["excludes 0 under every seed"] = ", ".join(e for e in _GAIN_ESTIMATES if v.loc[e, "every seed"]) \
                or "none"
        out.append(line)
    if not out:
        return "*(no gain columns in the tables: regenerate them with notebook 07)*"
    return to_markdown(pd.DataFrame(out)) + "\n" + multiplicity_sentence(long, seeds)


def multiplicity_sentence(long: pd.DataFrame, seeds: pd.DataFrame | None = None, level: float = 0.95) -> str:
    """How many of the intervals shown exclude 0, against how many chance alone
    would (``1 - level`` of them if no gain were real), and, with ``seeds``,
    how many do under every seed."""
    shown = long["lo"].notna() & long["hi"].notna()
    n = int(shown.sum())
    flagged = int(((long["lo"] > 0) | (long["hi"] < 0))[shown].sum())
    text = (f"**Multiplicity.** {flagged} of the {n} intervals above exclude 0; if no step had any effect, chance "
            f"alone would make about {(1 - level) * n:.0f} of {n} exclude 0 at {100 * level:.0f} % (the intervals "
            "are not adjusted for the number shown), so a single \"excludes 0\" is weak evidence.")
    if seeds is not None:
        v = seed_verdicts(long, seeds)
        k = int(seeds["seed"].nunique())
        text += (f" Under all {k} seeds {int(v['every seed'].sum())} of them do, and {int(v['flips'].sum())} "
                 "flags appear or vanish with the seed.")
    return text


def verdict(tab: Path) -> list[str]:
    """The page's three-line verdict: per Table 1 group the whole system's
    gain over its Baseline held out and cross-fitted, with intervals (B,
    in-sample, beside them); then which gains of Tables 1 and 3 are
    distinguishable from zero on the honest estimates (cross-fitted, held out)
    under every seed of ``seed_gains.csv`` (or in the one training run, said so)."""
    lines = ["**Verdict.**", ""]
    for group, title in (("17au", "17 AUs"), ("6au", "6 AUs")):
        csv = tab / f"table1_{group}.csv"
        if not csv.exists():
            continue
        last = pd.read_csv(csv).iloc[-1]
        if "Held-out gain vs Baseline" not in last.index:
            continue
        honest = [(e, float(last[f"{e} gain vs Baseline lo"]), float(last[f"{e} gain vs Baseline hi"]))
                  for e in ("Held-out", "B cross-fit")]
        zero = all(lo <= 0 <= hi for _, lo, hi in honest)
        lines.append(f"- {title}, whole system vs Baseline: held out {gain_cell(last, 'Held-out gain vs Baseline')}, "
                     f"cross-fitted {gain_cell(last, 'B cross-fit gain vs Baseline')}"
                     + (" — not distinguishable from zero" if zero else "")
                     + f" (B in-sample, the paper's protocol: {float(last['B gain vs Baseline']):+.4f}).")
    long = all_gains(tab)
    if long.empty:
        return lines
    seeds = read_seed_gains(tab)
    v = seed_verdicts(long, seeds)
    honest = v[v["estimate"].isin(["B cross-fit", "Held-out"])]
    if seeds is not None:
        k = int(seeds["seed"].nunique())
        keep = honest[honest["every seed"]]
        what = f"under every one of {k} seeds (every run retrained)"
    else:
        keep = honest[honest["excludes 0"]]
        what = "in this one training run (no seed run: `benchmarks/seed_spread.py --tables`)"
    said = {"B cross-fit": "cross-fitted", "Held-out": "held out"}
    found: dict[tuple, list[str]] = {}
    for i, (t, r, c, e) in keep[["table", "row", "comparison", "estimate"]].iterrows():
        found.setdefault((t, r, c), []).append(f"{said[e]} {float(long.loc[i, 'gain']):+.4f}")
    named = [f"{table_title(t)} *{'whole system' if c == 'vs Baseline' and t.startswith('table1') else r}* "
             f"({', '.join(v)})" for (t, r, c), v in found.items()]
    lines.append(f"- Distinguishable from zero, cross-fitted or held out, {what}: "
                 + ("; ".join(named) if named else "none") + ".")
    return lines


def choice_table(csv: Path) -> str:
    """Markdown of notebook 06's ``choice_<group>.csv``: per strategy the final
    score per estimate and its gain over the baseline with its interval."""
    if not csv.exists():
        return f"*({csv.name} not produced)*"
    df = pd.read_csv(csv)
    out = pd.DataFrame({"strategy": df["strategy"]})
    for key in CHOICE_ESTIMATES:
        if key not in df.columns:
            continue
        out[key] = df[key].map(lambda v: "" if v != v else f"{v:.4f}")
        out[f"gain_{key}"] = [interval_cell(*(float(r.get(f"gain_{key}{x}", float("nan"))) for x in ("", "_lo", "_hi")))
                              if r["strategy"] != "baseline" else "" for _, r in df.iterrows()]
    return to_markdown(out)


def compact_table(csv: Path) -> str:
    """Markdown of a Table 1 or 3 at a glance (:func:`aulib.report.compact.compact_frame`;
    the full columns stay in the CSV)."""
    if not csv.exists():
        return f"*({csv.name} not produced)*"
    return to_markdown(compact_frame(pd.read_csv(csv)))


def reading(csv: Path) -> str:
    """One paragraph on what a Table 1 shows, from its numbers: the whole
    system's gain per estimate, and each step's sign in-sample and held out."""
    if not csv.exists():
        return ""
    df = pd.read_csv(csv)
    if "B gain vs previous row" not in df.columns or len(df) < 2:
        return ""
    last = df.iloc[-1]

    def sign(r, est):
        g, lo, hi = (float(r.get(f"{est} gain vs previous row{x}", float("nan"))) for x in ("", " lo", " hi"))
        if g != g:
            return "n/a"
        return f"{g:+.4f}" + (" (interval excludes 0)" if lo > 0 or hi < 0 else "")

    whole = "; ".join(f"{e} {gain_cell(last, f'{e} gain vs Baseline')}" for e in _GAIN_ESTIMATES)
    steps = "; ".join(f"*{r['row']}* {sign(r, 'B')} on B, {sign(r, 'Held-out')} held out"
                      for _, r in df.iloc[1:].iterrows())
    lose_b = [r["row"] for _, r in df.iloc[1:].iterrows() if float(r["B gain vs previous row"]) < 0]
    return (f"**Reading.** The whole system against the Baseline: {whole}. Step by step: {steps}. "
            + ("In-sample on B every step gains or ties. " if not lose_b else
               f"In-sample on B these steps lose: {', '.join(lose_b)}. ")
            + "The held-out column is the estimate to trust; B is the paper's protocol, optimistic by construction "
              "for the chosen and threshold steps.")


def seed_spread_table(csv: Path) -> str:
    """Markdown of ``seed_spread.csv``: per baseline and seed, then per group the mean, sd and range."""
    df = pd.read_csv(csv)
    agg = df.groupby("group", sort=False).agg(seeds=("seed", "count"), mean=("B_final", "mean"),
                                              sd=("B_final", "std"), lo=("B_final", "min"),
                                              hi=("B_final", "max"), min_f1=("min_f1", "min")).reset_index()
    return to_markdown(df) + "\n" + to_markdown(agg)


def _md_table(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.exists() else f"*({path.name} not produced)*"


def _csv_table(path: Path) -> str:
    if not path.exists():
        return f"*({path.name} not produced)*"
    return to_markdown(pd.read_csv(path))


def _per_au_table(path: Path) -> str:
    """per_au_baselines.csv as Markdown, an F1 at or below the AU's trivial F1 marked ``**``
    (:func:`aulib.report.compact.at_trivial`)."""
    if not path.exists():
        return f"*({path.name} not produced)*"
    df = pd.read_csv(path)
    low = at_trivial(df)
    for col in [c for c in df.columns if c.startswith(("F1 ", "trivial F1 "))]:
        df[col] = [("" if v != v else f"{v:.3f}" + (" **" if m else "")) for v, m in zip(df[col], low[col])]
    return to_markdown(df)


def _pipeline_minutes(ws) -> float | None:
    stamps = list(ws.notebooks.glob("*.stamp.yaml")) if ws.notebooks.exists() else []
    secs = [float((read_yaml(s) or {}).get("seconds", 0)) for s in stamps]
    return sum(secs) / 60 if secs else None


def _has_seed_columns(tab: Path) -> bool:
    """Whether a Table 1 or 3 in ``tab`` has seed-spread columns."""
    return any("seeds" in p.read_text(encoding="utf-8").partition("\n")[0].split(",")
               for p in [*tab.glob("table1_*.csv"), tab / "table3.csv"] if p.exists())


def write_results_readme(ws, profile: str, dataset: str = "synthau") -> Path:
    """Write ``<results>/README.md`` for workspace ``ws``; returns its path."""
    fig, tab = ws.figures, ws.tables
    rel = lambda p: os.path.relpath(p, ws.results).replace(os.sep, "/")  # noqa: E731
    fig2 = sorted(fig.glob("figure2_convergence_*au.png"))
    minutes = _pipeline_minutes(ws)
    parts = [
        f"# Results of the `{profile}` profile",
        "",
        *verdict(tab),
        "",
        _DATA_NOTE.get(dataset, f"These numbers come from the `{dataset}` data set in `{ws.root}`."),
        "",
        f"Regenerated by `python -m aulib.pipeline --profile {profile} --publish`: the notebooks write into "
        f"`runs/{profile}/results/`, and `--publish` copies that folder here"
        + (f" (last full run: {minutes:.1f} min of notebook time)." if minutes else "."),
        COLUMNS + (" " + SEED_COLUMNS if _has_seed_columns(tab) else ""),
        "",
        "## Figure 1 · positive and negative labels per AU (optimization set)",
        f"![Figure 1]({rel(fig / 'figure1_label_counts.png')})",
        "",
        "## Figure 2 · per-AU final score on B by epoch",
        FIGURE2_NOTE,
        "",
    ]
    parts += [f"![{p.stem}]({rel(p)})" for p in fig2] or ["*(not produced)*"]
    parts += [f"![{p.stem}]({rel(p)})" for p in sorted(fig.glob("figure2_panels_*.png"))]
    parts += [
        "",
        "## Table 1 · 17 AUs (trained on A, evaluated on B)",
        COMPACT_NOTE,
        "",
        compact_table(tab / "table1_17au.csv"),
        "",
        reading(tab / "table1_17au.csv"),
        "",
        "## Table 1 · 6 AUs",
        compact_table(tab / "table1_6au.csv"),
        "",
        reading(tab / "table1_6au.csv"),
        "",
        "## Table 2 · validation and test phases",
        *([TABLE2_NOTE.format(dataset={"synthau": "SynthAU"}.get(dataset, dataset)), ""]
          if dataset != "emotionet" else []),
        _md_table(tab / "table2.md"),
        "",
        "## Table 3 · 12 AUs (EmotioNet 2018 set): ablations",
        compact_table(tab / "table3.csv"),
        "",
        "## Multi-crop views, one by one (17-AU baseline, B)",
        MULTICROP_NOTE,
        "",
        _csv_table(tab / "multicrop_views.csv"),
        "",
    ]
    if (tab / "loss_weights.md").exists():  # written by the loss-weight study (python -m aulib.train.study)
        parts += ["## Loss weights (w_mv, w_cr) · 12 AUs", LOSS_WEIGHTS_NOTE, "", _md_table(tab / "loss_weights.md"), ""]
    parts += [
        "## How much of the 'chosen' gain survives (final score by strategy)",
        CHOICE_NOTE,
        "",
    ]
    for group in ("17au", "6au"):
        parts += [f"**{group}**", "", choice_table(tab / f"choice_{group}.csv"), ""]
        if (fig / f"choice_{group}.png").exists():
            parts += [f"![choice {group}]({rel(fig / f'choice_{group}.png')})", ""]
    parts += ["## Which gains are distinguishable from zero", GAINS_NOTE, ""]
    if (fig / "gains_forest.png").exists():
        parts += [f"![every gain with its interval]({rel(fig / 'gains_forest.png')})", ""]
    parts += [gains_table(tab), ""]
    parts += ["## Does each baseline learn every AU?", PER_AU_NOTE, "", _per_au_table(tab / "per_au_baselines.csv"), ""]
    if (tab / "seed_spread.csv").exists():     # written by benchmarks/seed_spread.py (not part of the pipeline)
        parts += ["## Under other seeds", SEED_NOTE, "", seed_spread_table(tab / "seed_spread.csv"), ""]
    parts += noisy_filter_section(tab)
    env = write_environment(ws.results / "environment.txt")
    parts += ["## Environment", f"Software and CPU of this run: [`{rel(env)}`]({rel(env)}) (the pinned versions: "
              "`constraints.txt`; CPU training is deterministic on one machine, not across machines).", ""]
    path = ws.results / "README.md"
    write_text(path, "\n".join(parts) + "\n")
    return path
