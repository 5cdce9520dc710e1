"""Published mean F1 on BP4D and DISFA, beside which the benchmark tables
(:mod:`aulib.report.benchmark`) put the kit's three numbers.

Every row: the method, its mean F1 (%, over the 12 BP4D / 8 DISFA AUs, on
the subject-exclusive 3 folds of :mod:`aulib.data.protocols`), its source
(paper, venue, year) and how it chooses its epoch where its public code
shows it ("not stated" otherwise). Numbers as the papers print them.
"""
from __future__ import annotations

import pandas as pd

#: (method, BP4D F1 %, DISFA F1 %, source, epoch selection, note)
PUBLISHED: tuple[tuple[str, float, float, str, str, str], ...] = (
    ("JAA-Net", 60.0, 56.0,
     "Shao, Liu, Cai, Ma: Deep Adaptive Attention for Joint Facial Action Unit Detection and Face Alignment, "
     "ECCV 2018",
     "on the test fold: its README (ZhiwenShao/PyTorch-JAANet) tests the models of every saved epoch on the test "
     "part (test_JAAv1.py --start_epoch=1 --n_epochs=12 --test_path_prefix=data/list/BP4D_part3)", ""),
    ("ME-GraphAU (ResNet-50)", 64.7, 63.1,
     "Luo, Song, Xie, Shen, Gunes: Learning Multi-dimensional Edge Feature-based AU Relation Graph for Facial "
     "Action Unit Recognition, IJCAI 2022",
     "on the test fold: its train_stage1.py (CVI-SZU/ME-GraphAU) scores the test fold (val_loader = the fold's test "
     "list, train=False) after every epoch", ""),
    ("ME-GraphAU (Swin-B)", 65.5, 62.4,
     "Luo, Song, Xie, Shen, Gunes: Learning Multi-dimensional Edge Feature-based AU Relation Graph for Facial "
     "Action Unit Recognition, IJCAI 2022",
     "on the test fold: its train_stage1.py (CVI-SZU/ME-GraphAU) scores the test fold (val_loader = the fold's test "
     "list, train=False) after every epoch", ""),
    ("AU-Net", 65.0, 66.1,
     "Yang, Hristov, Shen, Lin, Pantic: Toward Robust Facial Action Units' Detection, Proceedings of the IEEE 2023",
     "not stated", ""),
    ("FMAE-IAT", 67.1, 70.1,
     "Ning, Salah, Ertugrul: Representation Learning and Identity Adversarial Training for Facial Behavior "
     "Understanding, arXiv:2407.11243, 2024",
     "not stated", "its DISFA set keeps only frames with an active AU (not the full 130,814-frame set)"),
)
#: Column of each data set's number.
DATASETS = {"BP4D": 1, "DISFA": 2}


def published_table(dataset: str) -> pd.DataFrame:
    """The published rows of ``dataset`` (``BP4D`` or ``DISFA``): method, F1
    (%), source, selection, note. Another data set (e.g. Aff-Wild2) has no
    rows (an empty frame with those columns)."""
    cols = ["method", "F1", "source", "selection", "note"]
    k = DATASETS.get(str(dataset))
    if k is None:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([(r[0], r[k], r[3], r[4], r[5] if dataset == "DISFA" else "") for r in PUBLISHED],
                        columns=cols)
