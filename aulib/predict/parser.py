"""The arguments of ``python -m aulib.predict`` (:mod:`aulib.predict.cli`), in a module that imports
neither torch nor the models, so ``--help`` and a wrong argument are answered at once."""
from __future__ import annotations

import argparse

from .formats import FORMATS


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m aulib.predict",
                                 description="AU predictions of chosen models on photos, folders and videos")
    ap.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) and video files")
    ap.add_argument("--model", action="append", required=True,
                    help="chosen-model YAML (e.g. runs/demo/chosen/17au.yaml); repeat for each group")
    ap.add_argument("--out", default="predictions.csv",
                    help="results CSV (the thresholds used go to <stem>_thresholds.csv beside it, errors to "
                         "<stem>_errors.csv)")
    ap.add_argument("--format", default="aulib", choices=FORMATS,
                    help="aulib: AU01_prob probabilities and AU01_c decisions; openface: OpenFace 2's columns "
                         "(frame, face_id, timestamp, confidence, success, AU01_c, AU01_prob); fex: py-feat's "
                         "(FaceRectX/Y/Width/Height, FaceScore, AU01 probabilities, input)")
    ap.add_argument("--annotate", default=None, metavar="DIR", help="also write annotated pictures into DIR")
    ap.add_argument("--video-fps", type=float, default=2.0, help="frames per second sampled from videos (0: all)")
    ap.add_argument("--workspace", default=None, help="workspace root the chosen files' run dirs are relative to")
    ap.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    ap.add_argument("--batch-size", type=int, default=32, help="faces per forward pass")
    ap.add_argument("--multicrop", action="store_true", help="average over the multi-crop views")
    return ap
