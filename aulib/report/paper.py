"""The paper's published numbers, as data (Wang et al., TAL EmotioNet 2020).

Copied from the paper's Tables 1-3 (``/work/shared/paper/tal_emotionet2020.md``
in the project's shared folder) digit for digit. Table 1 and Table 3 were
measured on the authors' dataset B; Table 2 is the official challenge
leaderboard (validation and testing phases, all 23 AUs).

Each table is a tuple of plain rows; the ``table*`` functions return fresh
DataFrames so a caller can never modify the published figures.
"""
from __future__ import annotations

import pandas as pd

#: Table 1 rows: (group, row name, F1, Accuracy, Final score).
TABLE1: tuple[tuple[str, str, float, float, float], ...] = (
    ("17au", "Baseline", 0.6740, 0.9330, 0.8030),
    ("17au", "Ensemble", 0.6913, 0.9435, 0.8174),
    ("17au", "Ensemble-multicrop", 0.6985, 0.9461, 0.8223),
    ("17au", "Ensemble-multicrop-pretrained", 0.7033, 0.9486, 0.8259),
    ("17au", "Ensemble-multicrop-pretrained-chosen", 0.7232, 0.9490, 0.8361),
    ("17au", "Ensemble-multicrop-pretrained-chosen-threshold", 0.7393, 0.9514, 0.8454),
    ("6au", "Baseline", 0.3628, 0.8708, 0.6168),
    ("6au", "Ensemble", 0.3916, 0.8574, 0.6245),
    ("6au", "Ensemble-chosen", 0.4068, 0.8633, 0.6350),
    ("6au", "Ensemble-chosen-threshold", 0.4148, 0.8644, 0.6396),
)

#: Table 2 rows: (phase, team, Mean Accuracy, F1, Final score). The paper
#: writes "phrase" for phase; the phases are named here as "validation" / "test".
TABLE2: tuple[tuple[str, str, float, float, float], ...] = (
    ("validation", "TAL", 0.9200, 0.5720, 0.7460),
    ("validation", "University of Magdeburg", 0.9198, 0.5706, 0.7452),
    ("validation", "SIAT-NTU", 0.9195, 0.3531, 0.6363),
    ("test", "TAL", 0.9147, 0.5465, 0.7306),
    ("test", "University of Magdeburg", 0.9124, 0.5478, 0.7301),
    ("test", "SIAT-NTU", 0.9013, 0.4410, 0.6711),
    ("test", "USTC-alibaba", 0.8609, 0.3497, 0.6053),
)

#: Table 3 rows (12 AUs of EmotioNet 2018, trained on A, evaluated on B):
#: (row name, F1, Accuracy, Final score).
TABLE3: tuple[tuple[str, float, float, float], ...] = (
    ("w/o L_mv", 0.6447, 0.9592, 0.8019),
    ("w/o L_cr", 0.6188, 0.9583, 0.7885),
    ("w/o batch balancing", 0.6446, 0.9593, 0.8019),
    ("Baseline", 0.6556, 0.9604, 0.8080),
)

#: Gains the paper's text claims (Sec. 3), in final score: (table, row, reference row, gain).
#: Table 1's are steps over the row above; Table 3's are the ablations against Baseline.
CLAIMED_GAINS: tuple[tuple[str, str, str, float], ...] = (
    ("table1_17au", "Ensemble-multicrop", "Ensemble", 0.0049),
    ("table1_17au", "Ensemble-multicrop-pretrained", "Ensemble-multicrop", 0.0036),
    ("table1_17au", "Ensemble-multicrop-pretrained-chosen", "Ensemble-multicrop-pretrained", 0.0102),
    ("table1_17au", "Ensemble-multicrop-pretrained-chosen-threshold", "Ensemble-multicrop-pretrained-chosen", 0.0093),
    ("table1_6au", "Ensemble-chosen", "Ensemble", 0.0105),
    ("table1_6au", "Ensemble-chosen-threshold", "Ensemble-chosen", 0.0046),
    ("table3", "w/o L_mv", "Baseline", -0.0061),
    ("table3", "w/o L_cr", "Baseline", -0.0195),
    ("table3", "w/o batch balancing", "Baseline", -0.0061),
)

#: Row names of Table 1 per group, in the paper's order.
TABLE1_ROWS: dict[str, tuple[str, ...]] = {
    g: tuple(r[1] for r in TABLE1 if r[0] == g) for g in ("17au", "6au")
}
#: Row names of Table 3, in the paper's order.
TABLE3_ROWS: tuple[str, ...] = tuple(r[0] for r in TABLE3)


def table1(group: str | None = None) -> pd.DataFrame:
    """Table 1 as a DataFrame: ``group, row, F1, Accuracy, Final score``
    (only ``group``'s rows when given: ``17au`` or ``6au``)."""
    df = pd.DataFrame(TABLE1, columns=["group", "row", "F1", "Accuracy", "Final score"])
    if group is not None:
        if group not in TABLE1_ROWS:
            raise ValueError(f"the paper's Table 1 has groups {sorted(TABLE1_ROWS)}, not {group!r}")
        df = df[df["group"] == group].reset_index(drop=True)
    return df


def table2() -> pd.DataFrame:
    """Table 2 as a DataFrame: ``phase, team, Mean Accuracy, F1, Final score``."""
    return pd.DataFrame(TABLE2, columns=["phase", "team", "Mean Accuracy", "F1", "Final score"])


def table3() -> pd.DataFrame:
    """Table 3 as a DataFrame: ``row, F1, Accuracy, Final score``."""
    return pd.DataFrame(TABLE3, columns=["row", "F1", "Accuracy", "Final score"])
