"""The field's published evaluation protocols, by name (docs/benchmarks.md).

A protocol says which subjects (or which label table) each test fold is:

- ``bp4d_3fold``, ``disfa_3fold``: the subject-exclusive 3 folds of BP4D and
  DISFA used by JAA-Net, ME-GraphAU and FMAE-IAT. Fold ``k`` tests on part
  ``4 - k`` (fold 1 on part 3, fold 2 on part 2, fold 3 on part 1), as
  ME-GraphAU's ``BP4D_test_img_path_fold<k>.txt`` lists do; the other two
  parts train.
- ``affwild2_official``: the ABAW AU track's official split: train on
  ``Train_Set`` (the ``optimization`` label table), report on
  ``Validation_Set`` (the ``validation`` label table), one fold.

:func:`aulib.data.splits.protocol_split` turns a protocol's fold into the kit's splits: ``H``
= the fold's test subjects (or the test table, images as they are), ``A`` /
``B`` from the training parts, ``B`` subject-exclusive (``frac_b`` of the
training subjects, :func:`aulib.data.splits.split_optimization`). Listed
subjects missing from the data are counted and warned; a test fold left
with no subject is an error; subjects of the data in no part are left out
(warned; :func:`fold_rows`). The reported metric is per-AU F1 at 0.5 on ``H``, variant 0,
mean over the AUs (:mod:`aulib.report.benchmark`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Protocol:
    """A named protocol: ``parts`` (subject lists, test part of fold k is
    ``parts[n - k]``) or ``test_table`` (the label table that is ``H``)."""

    name: str
    dataset: str
    source: str
    parts: tuple[tuple[str, ...], ...] = ()
    test_table: str | None = None

    @property
    def n_folds(self) -> int:
        """Folds the runner runs (one workspace each)."""
        return len(self.parts) if self.parts else 1

    def check_fold(self, fold) -> int:
        if not (isinstance(fold, (int, np.integer)) and not isinstance(fold, bool) and 1 <= fold <= self.n_folds):
            raise ValueError(f"protocol {self.name!r}: fold must be one of 1..{self.n_folds}, got {fold!r}")
        return int(fold)

    def test_part(self, fold: int) -> int:
        """1-based part tested in fold ``fold`` (fold 1 -> the last part)."""
        return self.n_folds + 1 - self.check_fold(fold)

    def test_subjects(self, fold: int) -> tuple[str, ...]:
        return self.parts[self.test_part(fold) - 1]

    def train_subjects(self, fold: int) -> tuple[str, ...]:
        test = self.test_part(fold)
        return tuple(s for j, part in enumerate(self.parts, 1) if j != test for s in part)


_ME_GRAPHAU = "ME-GraphAU (Luo et al., IJCAI 2022) data lists, as JAA-Net (Shao et al., ECCV 2018)"

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("bp4d_3fold", "BP4D", _ME_GRAPHAU, parts=(
        ("F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016", "M014", "F023",
         "M008"),
        ("M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020", "F011", "M013",
         "M005"),
        ("F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017", "M015", "F014"),
    )),
    Protocol("disfa_3fold", "DISFA", _ME_GRAPHAU, parts=(
        ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
        ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
        ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
    )),
    Protocol("affwild2_official", "Aff-Wild2", "ABAW AU detection challenge: Train_Set trains, Validation_Set "
             "is reported (Kollias et al.)", test_table="validation"),
)}


def get_protocol(name) -> Protocol:
    """The protocol called ``name``; a ValueError listing the known ones otherwise."""
    try:
        return PROTOCOLS[str(name)]
    except KeyError:
        raise ValueError(f"unknown protocol folds {name!r}; the kit knows {sorted(PROTOCOLS)} "
                         "(docs/benchmarks.md), or use protocol: {kfold: K} for folds of its own") from None


def fold_rows(protocol, fold: int, subjects) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) bool masks (N,) over rows whose subjects are ``subjects``
    (N,) for fold ``fold`` of a subject-list protocol (a name or
    :class:`Protocol`). Listed subjects missing from the data are warned
    (counted); a test part with none of its subjects in the data is a
    ValueError; subjects in no part are in neither mask (warned)."""
    p = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    fold = p.check_fold(fold)
    if not p.parts:
        raise ValueError(f"protocol {p.name!r} has no subject lists; its test split is the "
                         f"{p.test_table!r} label table")
    if subjects is None:
        raise ValueError(f"protocol {p.name!r} names its test folds by subject, but the label tables have no "
                         "subjects (labels/subjects.csv); give the labels a subject column (or use the data set's "
                         "reader, which writes it)")
    subjects = np.asarray(subjects).astype(str)
    present = set(subjects)
    test, train = p.test_subjects(fold), p.train_subjects(fold)
    absent = [s for s in test + train if s not in present]
    if absent:
        warnings.warn(f"protocol {p.name!r} fold {fold}: {len(absent)} of its {len(test) + len(train)} listed "
                      f"subjects are not in the data ({', '.join(absent[:8])}{' ...' if len(absent) > 8 else ''}); "
                      "the folds use the others", stacklevel=3)
    if not any(s in present for s in test):
        raise ValueError(f"protocol {p.name!r} fold {fold} tests on part {p.test_part(fold)} ({', '.join(test)}), "
                         f"none of whose subjects is in the data (its subjects are e.g. {sorted(present)[:5]}); "
                         f"check the data root and that subjects are named as {p.dataset} names them")
    if not any(s in present for s in train):
        raise ValueError(f"protocol {p.name!r} fold {fold}: none of its training subjects is in the data")
    unlisted = sorted(present - set(test) - set(train))
    if unlisted:
        warnings.warn(f"protocol {p.name!r}: {len(unlisted)} subject(s) of the data are in none of its parts "
                      f"({', '.join(unlisted[:8])}); their images are left out of A, B and H", stacklevel=3)
    return np.isin(subjects, list(test)), np.isin(subjects, list(train))
