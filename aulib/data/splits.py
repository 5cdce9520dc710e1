"""Splits of the labelled data: A (train) / B (choose checkpoints) / H (held out).

The paper holds out 10% of the optimization set as dataset B and expands it
x4 with degraded copies (``variant`` 1..3, see :func:`aulib.data.transforms.degrade`)
to match the test distribution. The held-out split ``H`` is expanded the same
way (:data:`HELDOUT_SPLITS`), so B and H differ only in which images the
choices saw, not in distribution. SynthAU's ``test`` split stands in for the
challenge's test set (Table 2): it carries the generator's own challenge-style
degradation and stays one copy per image. Per-AU checkpoint choice needs positives of
every AU in B, so the split is a seeded iterative multi-label stratification
(Sechidis et al., 2011) followed by a repair step that moves a positive into
any fold left without one.

Split files (``splits/<name>.csv``): ``image, variant`` then the AU columns,
int8 codes 1 / 0 / -1 (unknown); see docs/layout.md.

With subjects (``labels/subjects.csv``) every split, and every fold of the
k-fold protocol (:func:`kfold_split`), is subject-exclusive: the
stratification places whole subjects.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from aulib import aus as aulib_aus
from aulib import io
from aulib.data.labels import read_label_table, require_au_columns
from aulib.data.protocols import fold_rows, get_protocol
from aulib.data.sources import load_subjects

#: Label-table splits copied to split files as they are (variant 0).
PASSTHROUGH_SPLITS = ("noisy", "validation", "test")
#: Held-out splits: expanded with the same degraded copies as B.
HELDOUT_SPLITS = ("H",)
#: Label tables whose images the splits refer to.
LABEL_TABLES = ("optimization",) + PASSTHROUGH_SPLITS
#: ``splits/left_out.csv`` (``image, reason``): labelled images no split holds, because they cannot be read.
LEFT_OUT = "left_out"


def unreadable_images(ws) -> dict[str, str]:
    """``{image: reason}`` of the images the workspace's face cache or any of
    its crop stores marks ``unreadable`` (a corrupt file; a frame past the
    damage of a truncated video, whose header still counts it): their crops
    are black, so no split may train on or score them."""
    found = []
    if Path(ws.faces).exists():
        found.append((ws.faces, "unreadable in the face cache"))
    found += [(p, f"unreadable in crop store {p.parent.name}")
              for p in sorted((Path(ws.root) / "crops").glob("*/index.csv"))]
    out: dict[str, str] = {}
    for path, reason in found:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "status" in df.columns:
            for image in df.loc[df["status"] == "unreadable", "image"]:
                out.setdefault(image, reason)
    return out


def left_out_summary(ws, shown: int = 5) -> str:
    """One line: how many labelled images 02_split left out as unreadable, the first few, and where they are listed."""
    path = Path(ws.split(LEFT_OUT))
    if not path.exists():
        return "left out of every split: none (no labelled image is unreadable)"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    more = f" ... (+{len(df) - shown})" if len(df) > shown else ""
    return (f"left out of every split (not trained on, not scored): {len(df)} unreadable image(s), listed in {path}: "
            + ", ".join(df["image"].head(shown)) + more)


def _leave_out(table: pd.DataFrame, left_out: dict[str, str], kept: dict[str, str]) -> pd.DataFrame:
    """``table`` without the rows of ``left_out`` images (those found go to ``kept``)."""
    gone = table["image"].isin(left_out).to_numpy()
    kept.update({i: left_out[i] for i in table["image"][gone]})
    return table[~gone].reset_index(drop=True) if gone.any() else table


def _aus_of(aus) -> tuple[int, ...]:
    """AU numbers of a group (name or :class:`aulib.aus.AUGroup`) or a sequence of AU numbers."""
    return aulib_aus.aus_of(aus)


def _au_columns_of(df: pd.DataFrame) -> list[str]:
    """The AU columns of a table, in the table's order."""
    return aulib_aus.au_columns_in(df.columns)


def _iterative_stratification(positive: np.ndarray, ratios: np.ndarray,
                              rng: np.random.Generator) -> np.ndarray:
    """Sechidis et al.'s iterative stratification.

    positive: bool (N, L); ratios: (K,) summing to 1. Returns the fold (0..K-1)
    of every row, int64 (N,). The label with the fewest remaining examples is
    handled first; each of its examples goes to the fold that most lacks that
    label (ties: the fold that most lacks examples, then at random). Examples
    without any positive label fill the folds that still lack examples.
    """
    n, n_labels = positive.shape
    k = len(ratios)
    fold = np.full(n, -1, dtype=np.int64)
    order = rng.permutation(n)  # random order within each label's batch
    pos = positive[order]
    want_total = ratios * n                                   # (K,)
    want_label = ratios[:, None] * pos.sum(0)[None, :]        # (K, L)
    assigned = np.zeros(n, dtype=bool)
    while True:
        remaining = pos[~assigned].sum(0)
        remaining = np.where(remaining > 0, remaining, np.iinfo(np.int64).max)
        label = int(np.argmin(remaining))
        if remaining[label] == np.iinfo(np.int64).max:
            break
        members = np.flatnonzero(pos[:, label] & ~assigned)
        wl = want_label[:, label].tolist()
        wt = want_total.tolist()
        chosen = np.empty(len(members), dtype=np.int64)
        ties = rng.random((len(members), k))
        for i in range(len(members)):
            best = max(range(k), key=lambda j: (wl[j], wt[j], ties[i, j]))
            chosen[i] = best
            wl[best] -= 1
            wt[best] -= 1
        fold[members] = chosen
        assigned[members] = True
        want_total = np.asarray(wt)
        # every label of the examples just placed is now less wanted in their fold
        onehot = np.zeros((k, len(members)))
        onehot[chosen, np.arange(len(members))] = 1
        want_label -= onehot @ pos[members]
    rest = np.flatnonzero(~assigned)
    if len(rest):
        # what each fold still lacks sums to len(rest); round it, largest remainder first
        want = np.clip(want_total, 0, None)
        want = want / want.sum() * len(rest) if want.sum() > 0 else ratios * len(rest)
        counts = np.floor(want).astype(np.int64)
        counts[np.argsort(counts - want, kind="stable")[: len(rest) - counts.sum()]] += 1
        fold[rest] = np.repeat(np.arange(k), counts)
    out = np.empty(n, dtype=np.int64)
    out[order] = fold
    return out


def _ensure_positives(fold: np.ndarray, positive: np.ndarray, k: int,
                      priority: list[int]) -> None:
    """Move positives so that every label with >= k positives has one in every
    fold (in place). Moves are swaps, so fold sizes are kept: the moved positive
    example is exchanged for an example of the receiving fold that is not a
    positive of the label. Neither swapped example may be the last positive of
    any label in its fold. Folds are served in ``priority`` order."""
    counts = np.stack([positive[fold == j].sum(0) for j in range(k)])  # (K, L)
    n_pos = positive.sum(0)
    n_labels_per_row = positive.sum(1)
    for label in np.argsort(n_pos, kind="stable"):
        if n_pos[label] < k:
            continue
        for target in priority:
            if counts[target, label] > 0:
                continue
            donor = int(np.argmax(counts[:, label]))
            if counts[donor, label] < 2:
                continue
            # the donor's example must not be its fold's last positive of another label
            sole_in_donor = (counts[donor] == 1)[None, :] & positive
            cand_out = np.flatnonzero((fold == donor) & positive[:, label] & ~sole_in_donor.any(1))
            sole_in_target = (counts[target] == 1)[None, :] & positive
            cand_in = np.flatnonzero((fold == target) & ~positive[:, label] & ~sole_in_target.any(1))
            if len(cand_out) == 0 or len(cand_in) == 0:
                continue
            out_row = cand_out[np.argmin(n_labels_per_row[cand_out])]
            in_row = cand_in[np.argmin(n_labels_per_row[cand_in])]
            fold[out_row], fold[in_row] = target, donor
            counts[donor] += positive[in_row].astype(np.int64) - positive[out_row]
            counts[target] += positive[out_row].astype(np.int64) - positive[in_row]


def _check_table(labels: pd.DataFrame, aus) -> list[str]:
    """The AU columns to stratify on; ValueError for a table that cannot be split."""
    if "image" not in labels.columns:
        raise ValueError("label table has no 'image' column")
    if labels["image"].duplicated().any():
        dup = labels.loc[labels["image"].duplicated(), "image"].iloc[0]
        raise ValueError(f"label table lists image {dup!r} more than once; images must be unique")
    cols = _au_columns_of(labels) if aus is None else require_au_columns(labels, _aus_of(aus))
    if not cols:
        raise ValueError("label table has no AU columns (AU1, AU2, ...) to stratify on")
    return cols


def stratified_folds(labels: pd.DataFrame, names: list[str], ratios, aus=None, seed: int = 0,
                     subjects=None) -> np.ndarray:
    """Fold (0..K-1, one per name) of every row, int64 (N,): iterative
    multi-label stratification on the AU columns (``aus``; None: all), every
    AU with at least K positives getting one in every fold, the folds after
    the first served first. ``subjects`` (N,) makes the folds subject-exclusive:
    a subject is one unit whose label is "has a positive", and ``ratios`` are
    shares of subjects. AUs that cannot have a positive everywhere are named
    in a warning."""
    cols = _check_table(labels, aus)
    k, ratios = len(names), np.asarray(ratios, float)
    positive = labels[cols].to_numpy() == 1
    if subjects is None:
        inverse = np.arange(len(labels))
        unit_pos = positive
    else:
        subjects = np.asarray(subjects).astype(str)
        if len(subjects) != len(labels):
            raise ValueError(f"{len(subjects)} subjects for {len(labels)} label rows")
        uniq, inverse = np.unique(subjects, return_inverse=True)
        unit_pos = np.zeros((len(uniq), len(cols)), bool)
        np.logical_or.at(unit_pos, inverse, positive)
    if len(unit_pos) < k:
        unit = "subject(s)" if subjects is not None else "image(s)"
        shown = names if k <= 6 else names[:3] + ["...", names[-1]]
        raise ValueError(f"cannot split {len(unit_pos)} {unit} into {k} splits {shown}; each split needs at least "
                         f"one {unit[:-3]}; add data or lower the number of splits/folds (kfold <= {len(unit_pos)})")
    rng = np.random.default_rng(seed)
    unit_fold = _iterative_stratification(unit_pos, ratios, rng)
    _ensure_positives(unit_fold, unit_pos, k, priority=list(range(1, k)) + [0])
    fold = unit_fold[inverse]

    counts = np.stack([positive[fold == j].sum(0) for j in range(k)])
    labelled = (labels[cols].to_numpy() != -1).any(0)      # AUs a data set never labels are not named
    few = [c for c, m, known in zip(cols, unit_pos.sum(0), labelled) if m < 2 and known]
    if few:
        per = "subjects with positives" if subjects is not None else "positive labels"
        warnings.warn(f"AU(s) {few} have fewer than 2 {per} in the table, so they cannot have "
                      f"positives both in A and B; their per-AU checkpoint choice will be uninformative. "
                      f"Add labelled positives for them or leave them out of the group.", stacklevel=3)
    for j, name in enumerate(names):
        lacking = [c for c, ok, known in zip(cols, counts[j] > 0, labelled) if not ok and known and c not in few]
        if lacking:
            warnings.warn(f"split {name} has no positive of AU(s) {lacking} (too few positives to give "
                          f"every split one); lower frac_holdout or add labelled positives.", stacklevel=3)
    return fold


def split_optimization(labels: pd.DataFrame, aus=None, frac_b: float = 0.1,
                       frac_holdout: float = 0.0, seed: int = 0, subjects=None) -> dict[str, pd.DataFrame]:
    """Split a label table into ``A`` / ``B`` (and ``H`` when ``frac_holdout > 0``).

    labels: label table (``image`` + AU columns, codes 1/0/-1). aus: AU numbers
    (or a group name) to stratify on; None = every AU column of the table.
    ``B`` gets ``frac_b`` of the images, ``H`` ``frac_holdout`` (carved out of
    what would be A), ``A`` the rest. Unknown labels (-1) count as "not positive".
    Every AU with at least 2 positives (3 when H is asked) gets a positive in
    every split; an AU for which that is impossible is named in a warning.
    ``subjects`` (one per row): no subject in two splits; fractions are then
    shares of subjects (:func:`stratified_folds`).
    Returns label-table DataFrames (all columns of ``labels``) in the input's row order.
    """
    if not 0.0 < frac_b < 1.0:
        raise ValueError(f"frac_b must be in (0, 1), got {frac_b}")
    if not 0.0 <= frac_holdout < 1.0 or frac_b + frac_holdout >= 1.0:
        raise ValueError(f"frac_holdout must be >= 0 with frac_b + frac_holdout < 1, got {frac_holdout}")
    names = ["A", "B"] + (["H"] if frac_holdout > 0 else [])
    ratios = [1.0 - frac_b - frac_holdout, frac_b] + ([frac_holdout] if frac_holdout > 0 else [])
    fold = stratified_folds(labels, names, ratios, aus, seed, subjects)
    return {name: labels.loc[fold == j].reset_index(drop=True) for j, name in enumerate(names)}


def kfold_split(labels: pd.DataFrame, kfold: int, fold: int, aus=None, frac_b: float = 0.1, seed: int = 0,
                subjects=None) -> dict[str, pd.DataFrame]:
    """Fold ``fold`` (1..kfold) of the k-fold protocol BP4D/DISFA papers
    report: the table is cut into ``kfold`` stratified (subject-exclusive
    with ``subjects``) folds; fold ``fold`` is the held-out ``H`` (test), the
    other folds are split into ``A`` / ``B`` (``frac_b`` of them, as
    :func:`split_optimization`). The same ``seed`` gives the same folds for
    every ``fold``, so the k test folds partition the table."""
    if not (isinstance(kfold, (int, np.integer)) and kfold >= 2):
        raise ValueError(f"kfold must be an integer >= 2 (the field's protocol uses 3), got {kfold!r}")
    if fold not in range(1, kfold + 1):
        raise ValueError(f"fold must be one of 1..{kfold}, got {fold!r}")
    names = [f"fold{j + 1}" for j in range(kfold)]
    folds = stratified_folds(labels, names, [1.0 / kfold] * kfold, aus, seed, subjects)
    test = folds == fold - 1
    rest = labels.loc[~test].reset_index(drop=True)
    rest_subjects = None if subjects is None else np.asarray(subjects)[~test]
    parts = split_optimization(rest, aus, frac_b=frac_b, seed=seed, subjects=rest_subjects)
    parts["H"] = labels.loc[test].reset_index(drop=True)
    return parts


def protocol_split(protocol: str, fold: int, labels: pd.DataFrame, subjects=None,
                   test_labels: pd.DataFrame | None = None, aus=None, frac_b: float = 0.1,
                   seed: int = 0) -> dict[str, pd.DataFrame]:
    """Fold ``fold`` of a published protocol (:mod:`aulib.data.protocols`,
    e.g. ``bp4d_3fold``): ``H`` = the fold's listed test subjects (or, for
    a ``test_table`` protocol, ``test_labels`` as it is), ``A`` / ``B`` from
    the training subjects, ``B`` ``frac_b`` of them, subject-exclusive
    (:func:`split_optimization`). ``labels``: the optimization label table,
    ``subjects`` one per row. Returns label-table DataFrames."""
    p = get_protocol(protocol)
    fold = p.check_fold(fold)
    if p.test_table is not None:
        if test_labels is None:
            raise ValueError(f"protocol {p.name!r} reports on the {p.test_table!r} label table; the workspace has "
                             f"none (labels/{p.test_table}.csv): build it with notebook 01_data")
        parts = split_optimization(labels, aus, frac_b=frac_b, seed=seed, subjects=subjects)
        parts["H"] = test_labels.reset_index(drop=True)
        return parts
    is_test, is_train = fold_rows(p, fold, subjects)
    subjects = np.asarray(subjects).astype(str)
    parts = split_optimization(labels.loc[is_train].reset_index(drop=True), aus, frac_b=frac_b, seed=seed,
                               subjects=subjects[is_train])
    parts["H"] = labels.loc[is_test].reset_index(drop=True)
    return parts


def expand_variants(df: pd.DataFrame, copies: int = 4) -> pd.DataFrame:
    """Repeat every row ``copies`` times with ``variant`` 0..copies-1 (image-major:
    all variants of an image are adjacent). ``variant`` becomes the second column."""
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    base = df.drop(columns=["variant"], errors="ignore")
    out = base.loc[base.index.repeat(copies)].reset_index(drop=True)
    out.insert(1, "variant", np.tile(np.arange(copies, dtype=np.int64), len(base)))
    return out


def _write_split(path: Path, df: pd.DataFrame) -> Path:
    cols = ["image", "variant"] + _au_columns_of(df)
    out = df[cols].copy()
    out["variant"] = out["variant"].astype(np.int64)
    for c in cols[2:]:
        out[c] = out[c].astype(np.int8)
    io.write_csv(path, out)
    return path


def make_splits(ws, seed: int = 0, frac_b: float = 0.1, b_copies: int = 4,
                frac_holdout: float = 0.0, kfold: int = 0, fold: int | None = None,
                folds: str | None = None) -> dict[str, Path]:
    """Write the split files of a workspace from its label tables.

    Reads ``ws.labels("optimization")`` (required) and splits it into A, B
    and H (when ``frac_holdout > 0``); with ``kfold`` >= 2, H is test fold
    ``fold`` of the k-fold protocol (:func:`kfold_split`) instead; with
    ``folds`` (a published protocol's name, e.g. ``bp4d_3fold``) H is that
    protocol's test fold ``fold`` (:func:`protocol_split`), one copy per
    image (the protocol scores the images as they are). With
    ``labels/subjects.csv`` (a generic CSV's ``subject`` column) every split
    is subject-exclusive. The ``noisy``, ``validation`` and
    ``test`` label tables, when present, become splits too. B and the
    held-out split (:data:`HELDOUT_SPLITS`: ``H``) get variants
    0..``b_copies``-1 (the same degraded copies), every other split variant 0.
    Images the face cache or a crop store marks unreadable
    (:func:`unreadable_images`) go to no split: they are listed in
    ``splits/left_out.csv`` (``image, reason``; :func:`left_out_summary`).
    Returns {split name: written path}.
    """

    opt_path = ws.labels("optimization")
    if not Path(opt_path).exists():
        raise FileNotFoundError(f"{opt_path} not found: build the label tables first (notebook 01_data)")
    unreadable, left_out = unreadable_images(ws), {}
    labels = _leave_out(read_label_table(opt_path), unreadable, left_out)
    subjects = image_subjects(load_subjects(ws), labels["image"])
    images, image_subject = labels["image"].to_numpy(), subjects     # every table the plan draws on
    if folds:
        if kfold or frac_holdout:
            raise ValueError(f"folds={folds!r} names the test folds; set kfold and frac_holdout to 0 "
                             f"(got {kfold}, {frac_holdout})")
        table = get_protocol(folds).test_table
        test_labels = None
        if table is not None and Path(ws.labels(table)).exists():
            test_labels = _leave_out(read_label_table(ws.labels(table)), unreadable, left_out)
            test_subjects = image_subjects(load_subjects(ws), test_labels["image"])
            images = np.concatenate([images, test_labels["image"].to_numpy()])
            image_subject = None if subjects is None else np.concatenate([subjects, test_subjects])
        parts = protocol_split(folds, fold, labels, subjects, test_labels, frac_b=frac_b, seed=seed)
    elif kfold:
        if frac_holdout:
            raise ValueError(f"kfold={kfold} takes H from the folds; set frac_holdout to 0 (got {frac_holdout})")
        parts = kfold_split(labels, kfold, fold, frac_b=frac_b, seed=seed, subjects=subjects)
    else:
        parts = split_optimization(labels, None, frac_b=frac_b, frac_holdout=frac_holdout, seed=seed,
                                   subjects=subjects)
    check_split_plan(parts, images, image_subject, frac_b=frac_b, frac_holdout=frac_holdout, kfold=kfold,
                     fold=fold)
    for stale in ("H",):
        if stale not in parts and Path(ws.split(stale)).exists():
            Path(ws.split(stale)).unlink()
    written = {}
    for name, df in parts.items():
        # a published protocol scores its test fold as the images are: H keeps one copy
        copies = b_copies if name == "B" or (name in HELDOUT_SPLITS and not folds) else 1
        written[name] = _write_split(ws.split(name), expand_variants(df, copies))
    for name in PASSTHROUGH_SPLITS:
        path = ws.labels(name)
        if Path(path).exists():
            copies = b_copies if name in HELDOUT_SPLITS else 1
            table = _leave_out(read_label_table(path), unreadable, left_out)
            written[name] = _write_split(ws.split(name), expand_variants(table, copies))
    if left_out:
        io.write_csv(ws.split(LEFT_OUT), pd.DataFrame({"image": list(left_out), "reason": list(left_out.values())}))
    elif Path(ws.split(LEFT_OUT)).exists():
        Path(ws.split(LEFT_OUT)).unlink()
    return written


#: The fewest images a split of the plan may get: B needs two to choose checkpoints and thresholds on.
MIN_IMAGES = {"A": 1, "B": 2, "H": 1}


def check_split_plan(parts: dict, images, subjects=None, frac_b: float = 0.1, frac_holdout: float = 0.0,
                     kfold: int = 0, fold: int | None = None) -> None:
    """Refuse, before anything is written, a split plan that leaves A, B or H
    (a fold's test split) without a subject or with fewer than
    :data:`MIN_IMAGES` images, naming how many there are and what to change;
    warn when B holds a single subject. ``parts``: split name -> label rows;
    ``images``/``subjects``: the whole table's (subjects None: image-level)."""
    sub = None if subjects is None else pd.Series(np.asarray(subjects), index=pd.Index(np.asarray(images, str)))
    n_subjects = None if sub is None else sub.nunique()
    where = f"fold {fold} of kfold {kfold}" if kfold else "the split"
    for name, need in MIN_IMAGES.items():
        if name not in parts:
            continue
        n_img = len(parts[name])
        n_sub = None if sub is None else sub.reindex(parts[name]["image"].astype(str)).nunique()
        if n_img >= need and (n_sub is None or n_sub >= 1):
            if name == "B" and n_sub == 1:
                warnings.warn(f"{where}: B holds a single subject ({n_img} images): checkpoints and thresholds "
                              "are chosen on one person; raise frac_b or add subjects", stacklevel=3)
            continue
        have = f"{n_img} image(s)" + ("" if sub is None else f" of {n_sub} subject(s)")
        total = (f"{len(images)} images" if sub is None else f"{n_subjects} subjects")
        if name == "B":
            todo = f"raise frac_b (now {frac_b}) so that B gets at least {'one subject' if sub is not None else need}"
        elif name == "H":
            todo = (f"lower kfold (now {kfold}; {n_subjects or len(images)} {'subjects' if sub is not None else 'images'}"
                    " give at most that many folds)") if kfold else f"raise frac_holdout (now {frac_holdout})"
        else:
            todo = "lower frac_b / frac_holdout"
        raise ValueError(f"{where} leaves {name} with {have} (of {total} in the label table); {name} needs at least "
                         f"{need} image(s){'' if sub is None else ' and one subject'}"
                         f"{' to choose checkpoints and thresholds on' if name == 'B' else ''}. Add labelled data "
                         f"(more subjects), {todo}"
                         + ("" if sub is None else ", or drop the subject column (an image-level split: subjects "
                            "may then share splits)"))


def image_subjects(subjects: pd.Series | None, images) -> np.ndarray | None:
    """Subject (str) of each image, from an image -> subject Series (None -> None);
    an image without a subject is a ValueError naming it."""
    if subjects is None:
        return None
    images = pd.Index(pd.Series(images).astype(str))
    missing = ~images.isin(subjects.index)
    if missing.any():
        raise ValueError(f"image {images[np.flatnonzero(missing)[0]]!r} has no subject in labels/subjects.csv; "
                         "rerun notebook 01_data (every row of the label CSV needs a subject)")
    return subjects.reindex(images).to_numpy(str)


def subject_overlap(ws, names=("A", "B", "H", "test", "validation")) -> dict[tuple[str, str], list[str]]:
    """{(split, split): subjects in both} for every pair of existing split
    files that share a subject ({} when all are subject-exclusive or the
    workspace has no subjects)."""

    subjects = load_subjects(ws)
    if subjects is None:
        return {}
    have = {n: set(image_subjects(subjects, read_split(n, ws=ws)["image"].unique()))
            for n in names if Path(ws.split(n)).exists()}
    keys = list(have)
    return {(a, b): sorted(have[a] & have[b]) for i, a in enumerate(keys) for b in keys[i + 1:]
            if have[a] & have[b]}


def read_split(path: str | os.PathLike, aus=None, ws=None) -> pd.DataFrame:
    """Read a split file, checking its columns and codes.

    path: a file path, or a split name (``"A"``) of workspace ``ws``.
    aus: AU numbers or a group name; when given, only ``image, variant`` and
    those AU columns are returned (each must be present). Codes are int8.
    """
    if ws is not None:
        path = ws.split(str(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split file {path} not found: run make_splits (notebook 02_split) first")
    return check_split(pd.read_csv(path, dtype={"image": str}), aus, source=str(path))


def check_split(df: pd.DataFrame, aus=None, source: str = "split") -> pd.DataFrame:
    """Validate a split table (``image, variant, AU...``) and return a copy with
    int64 variants, int8 codes and only the AU columns of ``aus`` (all when None).
    ``source`` names the table in error messages."""
    path = source
    df = df.copy()
    for col in ("image", "variant"):
        if col not in df.columns:
            raise ValueError(f"{path}: missing column {col!r}; a split file has 'image, variant, AU...' columns")
    cols = _au_columns_of(df) if aus is None else require_au_columns(df, _aus_of(aus), path)
    if df["image"].isna().any():
        raise ValueError(f"{path}: empty image path at row {int(np.flatnonzero(df['image'].isna())[0])}")
    df["image"] = df["image"].astype(str)
    bad_path = df["image"].str.startswith("/") | df["image"].str.contains(r"(?:^|/)\.\.(?:/|$)", regex=True)
    if bad_path.any():
        i = int(np.flatnonzero(bad_path)[0])
        raise ValueError(f"{path}: row {i} image {df['image'].iloc[i]!r} leaves the data root; "
                         f"paths must be relative to it")
    variant = pd.to_numeric(df["variant"], errors="coerce")
    bad = variant.isna() | (variant < 0) | (variant != variant.round())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: row {i} has variant {df['variant'].iloc[i]!r}; variants are integers >= 0")
    df["variant"] = variant.astype(np.int64)
    for c in cols:
        values = df[c]
        bad = ~values.isin([-1, 0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}: row {i} column {c} has {values.iloc[i]!r}; codes are 1, 0, -1 (unknown)")
        df[c] = values.astype(np.int8)
    dup = df.duplicated(["image", "variant"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(f"{path}: row {i} repeats image {df['image'].iloc[i]!r} variant {df['variant'].iloc[i]}")
    return df[["image", "variant"] + cols].reset_index(drop=True)


def labelled_images(ws) -> list[str]:
    """Images of every label table of the workspace (optimization, noisy,
    validation, test), each once, in table order: what faces and crops are needed for."""
    images: dict[str, None] = {}
    for name in LABEL_TABLES:
        if Path(ws.labels(name)).exists():
            images.update(dict.fromkeys(read_label_table(ws.labels(name))["image"].astype(str)))
    if not images:
        raise FileNotFoundError(f"no label table under {Path(ws.labels('optimization')).parent}; "
                                f"build the label tables first (notebook 01_data)")
    return list(images)


def split_summary(ws, names=("A", "B", "H", "noisy", "validation", "test")) -> pd.DataFrame:
    """Rows, images and positives per AU of each split file that exists.

    One row per split: ``rows``, ``images``, then one column per AU (count of
    label 1); unknown (-1) labels are not counted."""
    out = {}
    for name in names:
        if Path(ws.split(name)).exists():
            df = read_split(name, ws=ws)
            cols = _au_columns_of(df)
            out[name] = {"rows": len(df), "images": df["image"].nunique(),
                         **(df[cols] == 1).sum().astype(int).to_dict()}
    return pd.DataFrame.from_dict(out, orient="index").fillna(0).astype(int)


def covered_groups(df: pd.DataFrame, prefer=("17au", "6au"), groups=None) -> list[str]:
    """Names of the built-in groups and of ``groups`` (a profile's own,
    {name: :class:`aulib.aus.AUGroup`}) every AU of which has a column in
    ``df`` (a split or label table): those of ``prefer`` first, then the
    others, most AUs first (EmotioNet: ``17au``, ``6au``, ...; BP4D:
    ``bp4d12``, ...). For showing a table's data with a group it can feed."""
    have = set(_au_columns_of(df))
    every = {**aulib_aus.BUILTIN, **(groups or {})}
    ok = [g for g, grp in every.items() if set(aulib_aus.au_columns(grp.aus)) <= have]
    return [g for g in prefer if g in ok] + sorted((g for g in ok if g not in prefer),
                                                   key=lambda g: -len(every[g].aus))


def example_rows(df: pd.DataFrame, first_aus=(55, 56), n: int = 4) -> pd.DataFrame:
    """``n`` rows of a split for illustration: rows positive for any AU of
    ``first_aus`` first (e.g. head tilts), then the others, in table order."""
    cols = [c for c in aulib_aus.au_columns(first_aus) if c in df.columns]
    hit = (df[cols] == 1).any(axis=1) if cols else pd.Series(False, index=df.index)
    return pd.concat([df[hit], df[~hit]]).head(n).reset_index(drop=True)
