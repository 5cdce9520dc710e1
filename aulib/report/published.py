"""Published mean F1 on BP4D and DISFA, beside which the benchmark tables
(:mod:`aulib.report.benchmark`) put the kit's selection audit.

Every row: the method, its mean F1 (%, over the 12 BP4D / 8 DISFA AUs, on
the subject-exclusive 3 folds of :mod:`aulib.data.protocols`), its source
(paper, venue, year) and, per data set, how its public code chooses the
epoch, with the repository, file and line that show it (read at the commits
named in docs/benchmarks.md). Numbers as the papers print them.
"""
from __future__ import annotations

import pandas as pd

_ME_GRAPHAU = ("Luo, Song, Xie, Shen, Gunes: Learning Multi-dimensional Edge Feature-based AU Relation Graph for "
               "Facial Action Unit Recognition, IJCAI 2022")


def _me_graphau(dataset: str) -> str:
    line = 21 if dataset == "BP4D" else 27
    return (f"on the test fold, both stages: CVI-SZU/ME-GraphAU train_stage1.py:{line} and train_stage2.py:{line} "
            "build the "
            f"validation set as {dataset}(..., train=False, fold=conf.fold), which reads the fold's test list "
            f"(dataset.py: {dataset}_test_img_path_fold<k>.txt), and score it after every epoch; stage 2 starts from "
            "a stage-1 checkpoint picked by hand (README: --resume .../xxxx_fold1.pth); the published models are "
            "the second stage's")


_FMAE = ("on the test fold: forever208/FMAE-IAT {script}: the validation set is --test_path ({data_line}); after every "
         "epoch AU_evaluate scores it and the best F1 and its epoch are kept ({keep}); AU_evaluate "
         "(engine_finetune.py:208-221) reports the mean F1 at the best of the global thresholds 0.01..0.99 on that set")

#: (method, BP4D F1 %, DISFA F1 %, source, BP4D epoch selection, DISFA epoch selection, DISFA note)
PUBLISHED: tuple[tuple[str, float, float, str, str, str, str], ...] = (
    ("JAA-Net", 60.0, 56.0,
     "Shao, Liu, Cai, Ma: Deep Adaptive Attention for Joint Facial Action Unit Detection and Face Alignment, "
     "ECCV 2018",
     "on the test fold: ZhiwenShao/PyTorch-JAANet README.md:55 tests the models of every saved epoch on the test "
     "part (test_JAAv1.py --start_epoch=1 --n_epochs=12 --test_path_prefix='data/list/BP4D_part3')",
     "on the test fold: ZhiwenShao/PyTorch-JAANet README.md:49 trains with --test_path_prefix='data/list/DISFA_part3' "
     "(train_JAAv1_disfa.py), which scores that test part after every epoch (train_JAAv1_disfa.py:177-191)", ""),
    ("ME-GraphAU (ResNet-50)", 64.7, 63.1, _ME_GRAPHAU, _me_graphau("BP4D"), _me_graphau("DISFA"), ""),
    ("ME-GraphAU (Swin-B)", 65.5, 62.4, _ME_GRAPHAU, _me_graphau("BP4D"), _me_graphau("DISFA"), ""),
    ("AU-Net", 65.0, 66.1,
     "Yang, Hristov, Shen, Lin, Pantic: Toward Robust Facial Action Units' Detection, Proceedings of the IEEE 2023",
     "on the test fold: jingyang2017/AU-Net train_video_vae.py:67 builds the validation set as "
     "data_load(phase='val'), which reads the test split (data/data_load.py:161, BP4D_ts<k>_path.txt); "
     "CallBackEvaluation scores it after every epoch (train_video_vae.py:150) and logs the best F1 and its epoch "
     "(utils/utils_callbacks.py:46-48)",
     "on the test fold: jingyang2017/AU-Net train_video_vae.py:67 builds the validation set as "
     "data_load(phase='val'), which reads the test part (data/data_load.py:191, DISFA_part<k>_path.txt); "
     "CallBackEvaluation scores it after every epoch (train_video_vae.py:150) and logs the best F1 and its epoch "
     "(utils/utils_callbacks.py:46-48)", ""),
    ("FMAE-IAT", 67.1, 70.1,
     "Ning, Salah, Ertugrul: Representation Learning and Identity Adversarial Training for Facial Behavior "
     "Understanding, arXiv:2407.11243, 2024",
     _FMAE.format(script="BP4D_finetune.py", data_line="BP4D_finetune.py:107, 147", keep="BP4D_finetune.py:301-304"),
     _FMAE.format(script="DISFA_finetune.py (branch DISFA_finetune_or_ID_adversarial)",
                  data_line="DISFA_finetune.py:108, 151", keep="DISFA_finetune.py:308-311"),
     "its DISFA frames come from the RIGHT camera (AU/DISFA_preprocess.py:67, RightVideo<subject>_comp.avi; the "
     "others use the left), all 130,814 annotated frames kept (AU/DISFA_preprocess.py:124; intensity < 2 is "
     "absent), faces detected and cropped to 224 x 224 by a separate face_align step (AU/DISFA_preprocess.py:217)"),
    ("MDHR", 66.6, 66.2,
     "Wang, Song, Luo, Deng, Xie, Shen: Multi-Scale Dynamic and Hierarchical Relationship Modeling for Facial "
     "Action Units Recognition, CVPR 2024",
     "on the test fold: CVI-SZU/MDHR train.py:20 builds the validation set as video_BP4D_val, which reads the "
     "fold's test list (dataset/dataset.py:116, BP4D_test_img_path_fold<k>.txt); train.py:109-119 keeps "
     "best_model.pth by its mean F1",
     "on the test fold: CVI-SZU/MDHR's DISFA validation set video_DISFA_val (dataset/dataset.py:281) reads the "
     "fold's test list (dataset/dataset.py:293, DISFA_test_path_fold<k>.txt); train.py:109-119 keeps "
     "best_model.pth by mean F1 on the validation set (the stored train.py imports the BP4D sets, train.py:11)", ""),
)
#: Column of each data set's number and of its epoch selection.
DATASETS = {"BP4D": (1, 4), "DISFA": (2, 5)}


def published_table(dataset: str) -> pd.DataFrame:
    """The published rows of ``dataset`` (``BP4D`` or ``DISFA``): method, F1
    (%), source, selection (that data set's), note. Another data set (e.g.
    Aff-Wild2) has no rows (an empty frame with those columns)."""
    cols = ["method", "F1", "source", "selection", "note"]
    k = DATASETS.get(str(dataset))
    if k is None:
        return pd.DataFrame(columns=cols)
    f1, sel = k
    return pd.DataFrame([(r[0], r[f1], r[3], r[sel], r[6] if dataset == "DISFA" else "") for r in PUBLISHED],
                        columns=cols)
