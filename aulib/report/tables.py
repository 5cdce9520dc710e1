"""The paper's Tables 1-3 rebuilt from run directories, its numbers beside ours.

Each row's system (which runs, which predictions, which choices) is fitted
by its recipe (:mod:`aulib.select.recipes`, which also reads the table spec
``<workspace>/table_spec.yaml``, format there); a row whose runs the spec
does not name keeps the paper's numbers and gets NaN for ours, with a note.
This module assembles the rows, their gains and seed spread, Table 2 and
the files. It reads prediction files only: the held-out and Table 2
predictions are made first by the inference step
(:func:`aulib.infer.at_epochs.predict_needed` of
:func:`aulib.select.recipes.predictions_needed`, notebook 07).

Three estimates of every row (F1, Accuracy, Final score each):

- ``B``: the paper's protocol: every choice (epochs, ensemble weights,
  thresholds) fitted on all of B and scored on B, in-sample, for every row
  alike (Baseline and ensembles).
- ``B cross-fit``: the whole recipe (epochs, ensemble, thresholds) fitted on
  k-1 folds of B and applied to the remaining fold (out-of-fold); decisions
  pooled, scored once.
- ``Held-out``: the recipe fitted on all of B, applied to the runs'
  predictions on the held-out split at the same epochs (degraded x4 like B).

Gains with 95 % paired cluster-bootstrap intervals (:mod:`.bootstrap`;
resamples of B's images, their four copies together) on the final score,
for every estimate: ``<estimate> gain vs Baseline`` (each row against the
table's Baseline row) and, in Table 1, ``<estimate> gain vs previous row``
(the step the row adds, e.g. the paper's "chosen" and "threshold" gains);
``... lo`` / ``... hi`` bound the interval, ``Paper gain ...`` is the paper's.
Spec keys ``bootstrap`` (resamples, default 1000; 0: no intervals) and ``seed``.

Seed spread (only when the spec's ``seed_replicas``, {run: {seed: replica
run}}, which the pipeline runner writes for a profile's ``seeds``, gives a
row's runs replicas; otherwise the table has none of these columns): the
bootstrap interval resamples images for fixed trained models, the seed spread
retrains them. A row's recipe is fitted again for every seed on the seed's
replicas of all its runs together (a run without replicas, such as the noisy
filter's base model, is the same in every seed); ``seeds`` is the number of
seeds a row's score was computed for (1: trained once) and, for ``B`` and
``B cross-fit``, ``<estimate> Final seed sd`` is the sample standard
deviation (n - 1) over those seeds of the row's final score, ``<estimate>
gain <comparison> seed sd`` that of its gain, seed by seed (NaN with fewer
than two seeds, or when neither row has replicas). The other columns stay the
first seed's runs' (the spec's names), so they match a one-seed table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import aus as aulib_aus
from ..data.splits import read_split
from ..io import write_csv, write_text
from ..metrics import au_scores, decide, summarize, trivial_f1
from ..runs import load_run_preds
from ..select.chosen import ChosenModel, load_chosen
from ..select.recipes import (ESTIMATES, SEED_REPLICAS, TABLE2_SPLITS, TABLE3_RECIPES, Recipe, RunCache,
                              check_seed_replicas, chosen_probs, group_runs, load_table_spec, recipe_decisions,
                              recipe_scores, row_recipe, row_replicas, table1_groups, table1_recipes)
from ..select.stored import MissingPredictions
from . import paper
from .bootstrap import paired_gains
from .markdown import to_markdown

#: Estimates that get a seed spread (their seeds' recipes are fitted on B alone).
SEED_ESTIMATES = ("B", "B cross-fit")
METRICS = (("f1", "F1"), ("acc", "Acc"), ("final", "Final"))


def _row(recipe: Recipe, paper_row, scores: dict | None, runs: list[str], note: str) -> dict:
    row = {"row": recipe.row, "runs": " + ".join(runs)}
    pf = dict(zip(("f1", "acc", "final"), paper_row)) if paper_row is not None else {}
    for key, label in METRICS:
        row[f"Paper {label}"] = pf.get(key, np.nan)
    for est in ESTIMATES:
        for key, label in METRICS:
            row[f"{est} {label}"] = (scores or {}).get(est, {}).get(key, np.nan)
    row["note"] = note
    return row


def _references(rows: list[str], previous: bool) -> dict[str, list[int | None]]:
    """Gain comparisons: {name: reference row of every row (None: no gain)}."""
    base = rows.index("Baseline")
    refs = {"vs Baseline": [None if i == base else base for i in range(len(rows))]}
    if previous:
        refs["vs previous row"] = [i - 1 if i > 0 else None for i in range(len(rows))]
    return refs


def add_gains(df: pd.DataFrame, decisions: list[dict | None], previous: bool, n_boot: int = 1000,
              seed: int = 0) -> pd.DataFrame:
    """Add gain columns to a table (see the module docstring): for every
    comparison and estimate the final-score gain and its 95 % paired cluster
    bootstrap interval (``lo`` / ``hi``), and the paper's gain.
    ``decisions``: per table row, :func:`recipe_decisions`' dict or None."""
    df = df.copy()
    refs = _references(df["row"].tolist(), previous)
    for name, ref in refs.items():
        pf = df["Paper Final"].to_numpy(np.float64)
        df[f"Paper gain {name}"] = [np.nan if r is None else pf[i] - pf[r] for i, r in enumerate(ref)]
    for est in ESTIMATES:
        final = df[f"{est} Final"].to_numpy(np.float64)
        have = [i for i, d in enumerate(decisions) if d is not None and d[est][1] is not None]
        lab, clusters = (decisions[have[0]][est][0], decisions[have[0]][est][2]) if have else (None, None)
        # every row's decisions must be on the same rows (B and B_mc share the split's index)
        have = [i for i in have if np.array_equal(decisions[i][est][0], lab)
                and np.array_equal(decisions[i][est][2], clusters)]
        pos = {i: k for k, i in enumerate(have)}
        pairs = [(pos[i], pos[r]) for ref in refs.values() for i, r in enumerate(ref)
                 if r is not None and i in pos and r in pos]
        res = {}
        if pairs and n_boot > 0:
            stack = np.stack([decisions[i][est][1] for i in have])
            got = paired_gains(lab, stack, clusters, sorted(set(pairs)), n_boot, seed)
            res = {(int(a), int(b)): (lo, hi) for a, b, lo, hi in zip(got["a"], got["b"], got["lo"], got["hi"])}
        for name, ref in refs.items():
            gain, lo, hi = (np.full(len(df), np.nan) for _ in range(3))
            for i, r in enumerate(ref):
                if r is None:
                    continue
                gain[i] = final[i] - final[r]
                lo[i], hi[i] = res.get((pos.get(i), pos.get(r)), (np.nan, np.nan))
            df[f"{est} gain {name}"], df[f"{est} gain {name} lo"], df[f"{est} gain {name} hi"] = gain, lo, hi
    return df[[c for c in df.columns if c != "note"] + ["note"]]


def _seed_sd(x: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (rows, seeds), the sample standard deviation (n - 1) of
    its finite values; NaN with fewer than two."""
    ok = np.isfinite(x)
    n = ok.sum(axis=1)
    v = np.where(ok, x, 0.0)
    mean = v.sum(axis=1) / np.maximum(n, 1)
    ss = (np.where(ok, x - mean[:, None], 0.0) ** 2).sum(axis=1)
    return np.where(n >= 2, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


def add_seed_spread(df: pd.DataFrame, per_seed: list[dict], previous: bool) -> pd.DataFrame:
    """Add the seed-spread columns (see the module docstring) to a table with
    its gains. ``per_seed``: per table row, {seed: :func:`~aulib.select.recipes.recipe_scores` of the row's
    recipe on that seed's replicas} ({} when its runs have no replicas). A
    table none of whose rows has replicas is returned unchanged."""
    if not any(per_seed):
        return df
    df = df.copy()
    seeds = sorted({s for p in per_seed for s in p})
    has = np.array([bool(p) for p in per_seed])
    refs = _references(df["row"].tolist(), previous)
    trained_once = np.where(np.isfinite(df["B Final"].to_numpy(np.float64)), 1.0, np.nan)
    df.insert(df.columns.get_loc("runs") + 1, "seeds", np.where(has, [float(len(p)) for p in per_seed], trained_once))
    for est in SEED_ESTIMATES:
        main = df[f"{est} Final"].to_numpy(np.float64)
        # (rows, seeds): a row without replicas scores the same in every seed
        final = np.array([[p[s][est]["final"] if s in p else np.nan for s in seeds] if p else [m] * len(seeds)
                          for p, m in zip(per_seed, main)], dtype=np.float64)
        df.insert(df.columns.get_loc(f"{est} Final") + 1, f"{est} Final seed sd",
                  np.where(has, _seed_sd(final), np.nan))
        for name, ref in refs.items():
            r = np.array([-1 if x is None else x for x in ref])
            sd = _seed_sd(final - final[r])
            keep = (r >= 0) & (has | has[r])
            col = f"{est} gain {name}"
            df.insert(df.columns.get_loc(f"{col} hi") + 1, f"{col} seed sd", np.where(keep, sd, np.nan))
    return df


def _seed_scores(recipe: Recipe, names: list[str], replicas: dict, cache: RunCache, split: str, scores: dict,
                 folds: int, seed: int, C: float) -> tuple[dict, list[int]]:
    """{seed: :func:`~aulib.select.recipes.recipe_scores` of ``recipe`` on that seed's replicas of ``names``}
    (B and B cross-fit; ``scores``, the row's own, for the seed whose runs are
    ``names``) and the seeds whose runs are missing; ({}, []) without replicas."""
    out, missing = {}, []
    for s, names_s in row_replicas(names, replicas).items():
        if names_s == names:
            out[s] = scores
            continue
        try:
            runs_s = cache.get(names_s, split)
        except FileNotFoundError:
            missing.append(s)
            continue
        out[s] = recipe_scores(recipe_decisions(recipe, runs_s, None, folds, seed, C)[0], runs_s[0].aus)
    return out, missing


def _table(ws, recipes, group_spec: dict, paper_rows: dict, heldout: str | None, folds: int, seed: int,
           C: float, n_boot: int, previous: bool, replicas: dict | None = None) -> pd.DataFrame:
    cache = RunCache(ws)
    replicas = check_seed_replicas(replicas) if replicas else {}
    rows, decisions, per_seed = [], [], []
    for rec in recipes:
        names = group_spec.get(rec.runs) or []
        per_seed.append({})
        if not names:
            rows.append(_row(rec, paper_rows.get(rec.row), None, [], f"spec names no '{rec.runs}' runs"))
            decisions.append(None)
            continue
        split = "B_mc" if rec.multicrop else "B"
        runs_b = cache.get(names, split)
        runs_h, why = cache.heldout(names, heldout, rec.multicrop)
        try:
            dec, _ = recipe_decisions(rec, runs_b, runs_h, folds, seed, C)
        except FileNotFoundError as err:       # a pruned checkpoint: no held-out estimate for this row
            dec, _ = recipe_decisions(rec, runs_b, None, folds, seed, C)
            why = str(err)
        scores = recipe_scores(dec, runs_b[0].aus)
        per_seed[-1], missing = _seed_scores(rec, names, replicas, cache, split, scores, folds, seed, C)
        if missing:
            why = "; ".join(filter(None, [why, f"no runs of seed(s) {missing} (seed spread without them)"]))
        rows.append(_row(rec, paper_rows.get(rec.row), scores, names, why or ""))
        decisions.append(dec)
    table = add_gains(pd.DataFrame(rows), decisions, previous, n_boot, seed)
    return add_seed_spread(table, per_seed, previous)


def table1(ws, group: str, spec) -> pd.DataFrame:
    """Table 1 of ``group`` (``17au``, ``6au`` or a profile's own group,
    :func:`table1_recipes`): the paper's rows, the paper's F1/Acc/Final
    beside ours (17au / 6au only) on B, cross-fitted on B and held out."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    gspec = group_runs(full, group)
    paper_rows = {}
    if group in paper.TABLE1_ROWS:
        p = paper.table1(group)
        paper_rows = {r: (f, a, s) for r, f, a, s in zip(p["row"], p["F1"], p["Accuracy"], p["Final score"])}
    return _table(ws, table1_recipes(group, gspec), gspec, paper_rows, full.get("heldout"),
                  int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0)),
                  int(full.get("bootstrap", 1000)), previous=True, replicas=full.get(SEED_REPLICAS))


def table3(ws, spec) -> pd.DataFrame:
    """Table 3 (12 AUs): baseline and the three ablation runs, each at its
    best-average epoch and threshold 0.5, the paper's numbers beside ours."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    p = paper.table3()
    paper_rows = {r: (f, a, s) for r, f, a, s in zip(p["row"], p["F1"], p["Accuracy"], p["Final score"])}
    return _table(ws, TABLE3_RECIPES, group_runs(full, "12au"), paper_rows, full.get("heldout"),
                  int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0)),
                  int(full.get("bootstrap", 1000)), previous=False, replicas=full.get(SEED_REPLICAS))




def row_per_au(ws, spec, table: str, row: str) -> pd.DataFrame:
    """One table row's per-AU breakdown: the row's recipe fitted again on its
    runs exactly as the table does (:func:`recipe_decisions`), scored per AU
    under each estimate. ``table``: ``table1_<group>`` or ``table3``; ``row``:
    a row name of that table (:func:`table_rows`). Returns one line per
    (estimate, AU): ``estimate, au, acc, f1, final, n, n_pos``; the mean of
    an estimate's ``acc`` and ``f1`` over its AUs gives the table's numbers.
    Reads the runs' saved predictions (held-out ones the inference step of notebook 07 made)."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    rec, names = row_recipe(full, table, row)
    if not names:
        raise ValueError(f"{table} row {row!r}: the table spec names no '{rec.runs}' runs, so the row has only "
                         "the paper's numbers")
    cache = RunCache(ws)
    runs_b = cache.get(names, "B_mc" if rec.multicrop else "B")
    runs_h, _why = cache.heldout(names, full.get("heldout"), rec.multicrop)
    folds, seed, C = int(full.get("folds", 5)), int(full.get("seed", 0)), float(full.get("C", 1.0))
    try:
        dec, _ = recipe_decisions(rec, runs_b, runs_h, folds, seed, C)
    except FileNotFoundError:              # a pruned checkpoint: no held-out estimate, as in the table
        dec, _ = recipe_decisions(rec, runs_b, None, folds, seed, C)
    parts = [au_scores(lab, d, runs_b[0].aus).reset_index().assign(estimate=est)
             for est, (lab, d, _) in dec.items() if d is not None]
    out = pd.concat(parts, ignore_index=True)
    return out[["estimate", "au", "acc", "f1", "final", "n", "n_pos"]]


def per_au_baselines(ws, spec, split: str = "B") -> pd.DataFrame:
    """Per-AU F1 on ``split`` of each table's Baseline run (Tables 1 and 3) at
    its last epoch and threshold 0.5, as Figure 2 plots it: one row per AU
    (``au``, then per run ``F1 <run>``, ``trivial F1 <run>`` and ``positives
    <run>``, the AU's positive rows of ``split``). ``trivial F1`` is the F1 of
    the all-present predictor on the same rows, ``2p / (1 + p)`` for the AU's
    prevalence p (:func:`aulib.metrics.trivial_f1`): an AU whose F1 is at or
    below it is not predicted better than calling it present everywhere."""
    full = spec if isinstance(spec, dict) else load_table_spec(spec)
    out = None
    for group in [*table1_groups(full), "12au"]:
        base = group_runs(full, group).get("baseline") or []
        if not base or not ws.run(base[0]).exists():
            continue
        run = load_run_preds(ws.run(base[0]), split)
        if not len(run.epochs):
            continue
        per = au_scores(run.labels, decide(run.probs[-1]), run.aus)
        col = pd.DataFrame({f"F1 {run.run_name}": per["f1"],
                            f"trivial F1 {run.run_name}": trivial_f1(per["n"], per["n_pos"]),
                            f"positives {run.run_name}": per["n_pos"]})
        out = col if out is None else out.join(col, how="outer")
    if out is None:
        return pd.DataFrame({"au": []})
    out.index = [f"AU{a}" for a in out.index]
    counts = [c for c in out.columns if c.startswith("positives ")]
    out[counts] = out[counts].astype("Int64")          # whole numbers, <NA> where a group lacks the AU
    return out.rename_axis("au").reset_index()




def _table2_note(dataset: str | None, split: str) -> str:
    """The note on our Table 2 rows: what they were scored on, and whether the teams' rows compare."""
    if dataset == "emotionet":
        return (f"our chosen models on the {split} split of this workspace's EmotioNet data, scored by aulib; "
                "the teams' rows are the challenge server's scores on its own sets")
    return (f"{dataset or 'this workspace'} data ({split} split), not EmotioNet: NOT comparable with the "
            "EmotioNet teams above; it does not beat the winner")


def table2(ws, chosen=None, splits=TABLE2_SPLITS, dataset: str | None = None) -> pd.DataFrame:
    """Table 2: the paper's leaderboard rows (the EmotioNet 2020 teams, both
    phases), then ours in a block of their own: the chosen models
    (``chosen``: {group: ChosenModel or path}; default every
    ``chosen/<group>.yaml`` of 17au and 6au) scored together (all their AUs)
    on the workspace's ``validation`` and ``test`` splits. ``dataset`` (None:
    ``synthau`` when the workspace holds generated SynthAU data) names the
    data in our rows' team and note, so a SynthAU score is never read as a
    place on the EmotioNet leaderboard."""
    if chosen is None:
        chosen = {g: ws.chosen(g) for g in ("17au", "6au") if ws.chosen(g).exists()}
    if dataset is None and (Path(ws.data) / "synthau.yaml").exists():
        dataset = "synthau"
    models = {g: (m if isinstance(m, ChosenModel) else load_chosen(m, ws.root)) for g, m in chosen.items()}
    p = paper.table2().assign(source="paper", note="")
    on = {"synthau": " on SynthAU"}.get(dataset or "", f" on {dataset}" if dataset else "")
    rows = []
    for split in splits:
        row = {"phase": split, "team": f"ours{on} (" + " + ".join(models) + ")", "source": "aulib"}
        if not models:
            rows.append({**row, "note": "no chosen model in the workspace"})
            continue
        if not ws.split(split).exists():
            rows.append({**row, "note": f"workspace has no split {split!r}"})
            continue
        labels, decisions, aus = [], [], []
        try:
            for g, m in models.items():
                table = read_split(split, m.aus, ws=ws)
                labels.append(table[aulib_aus.au_columns(m.aus)].to_numpy(np.int8))
                decisions.append(decide(chosen_probs(ws, m, split, images=table["image"].to_numpy()), m.thresholds))
                aus += list(m.aus)
        except (FileNotFoundError, MissingPredictions) as err:   # e.g. no crop store for this split: say so
            rows.append({**row, "note": f"cannot predict {split}: {err}"})
            continue
        s = summarize(au_scores(np.concatenate(labels, 1), np.concatenate(decisions, 1), aus))
        rows.append({**row, "Mean Accuracy": s["acc"], "F1": s["f1"], "Final score": s["final"],
                     "note": _table2_note(dataset, split)})
    ours = pd.DataFrame(rows)
    out = pd.concat([p, ours], ignore_index=True)
    order = {s: i for i, s in enumerate(splits)}
    out["_o"] = out["phase"].map(order)
    out["_s"] = (out["source"] != "paper").astype(int)          # the teams' leaderboard first, ours in a block below
    return out.sort_values(["_s", "_o"], kind="stable").drop(columns=["_o", "_s"]).reset_index(drop=True)[
        ["phase", "team", "Mean Accuracy", "F1", "Final score", "source", "note"]]


# --------------------------------------------------------------------------- output

def with_intervals(df: pd.DataFrame) -> pd.DataFrame:
    """For reading: every column ``X`` with ``X lo`` and ``X hi`` beside it
    becomes one text column ``+0.0102 [-0.0030, +0.0210]`` (empty when ``X`` is NaN)."""
    out = df.copy()
    for col in [c for c in df.columns if f"{c} lo" in df.columns and f"{c} hi" in df.columns]:
        def cell(g, lo, hi):
            if not np.isfinite(g):
                return ""
            return f"{g:+.4f}" + (f" [{lo:+.4f}, {hi:+.4f}]" if np.isfinite(lo) and np.isfinite(hi) else "")
        out[col] = [cell(*v) for v in zip(df[col].astype(float), df[f"{col} lo"].astype(float),
                                           df[f"{col} hi"].astype(float))]
        out = out.drop(columns=[f"{col} lo", f"{col} hi"])
    return out


def write_table(df: pd.DataFrame, name: str, ws) -> tuple[Path, Path]:
    """Write ``<ws.tables>/<name>.csv`` and ``.md`` atomically; returns both
    paths. The Markdown shows each gain with its interval in one cell."""
    csv, md = ws.tables / f"{name}.csv", ws.tables / f"{name}.md"
    write_csv(csv, df)
    write_text(md, to_markdown(with_intervals(df)))
    return csv, md


def style_table(df: pd.DataFrame):
    """A pandas Styler for notebooks: 4 decimals, the paper's columns shaded,
    the best of each of our final-score columns in bold, gains as ``gain [lo, hi]``."""
    df = with_intervals(df)
    num = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    paper_cols = [c for c in df.columns if str(c).startswith("Paper") or c in ("Mean Accuracy", "F1", "Final score")
                  and "source" in df.columns]
    st = df.style.format({c: "{:.4f}" for c in num}, na_rep="–").hide(axis="index")
    if "source" in df.columns:
        st = st.apply(lambda r: ["background-color: #eef2f7" if r["source"] == "paper" else "font-weight: bold"
                                 for _ in r], axis=1)
    else:
        st = st.set_properties(subset=[c for c in paper_cols if c in df.columns],
                               **{"background-color": "#eef2f7"})
        finals = [c for c in df.columns if str(c).endswith("Final") and not str(c).startswith("Paper")]
        st = st.highlight_max(subset=finals, props="font-weight: bold")
    return st
