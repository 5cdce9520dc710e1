"""``python -m aulib.predict IMAGES... --model ws/chosen/17au.yaml [--model ws/chosen/6au.yaml]``:
AU predictions of chosen models on photos, folders and videos (:mod:`aulib.predict.predictor`).

Exit status: 0 every input was read, 1 some inputs could not be read (results
for the others are written), 2 a chosen file, a run's config.yaml or a
checkpoint is missing, malformed or refused (one line naming the file), or an
argument is wrong.
"""
from __future__ import annotations

import argparse
import pickle
import sys

import yaml

from ..settings import one_line
from .predictor import predict_files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aulib.predict",
                                 description="AU predictions of chosen models on photos, folders and videos")
    ap.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) and video files")
    ap.add_argument("--model", action="append", required=True,
                    help="chosen-model YAML (e.g. runs/demo/chosen/17au.yaml); repeat for each group")
    ap.add_argument("--out", default="predictions.csv", help="results CSV (errors go to <stem>_errors.csv beside it)")
    ap.add_argument("--annotate", default=None, metavar="DIR", help="also write annotated pictures into DIR")
    ap.add_argument("--video-fps", type=float, default=2.0, help="frames per second sampled from videos (0: all)")
    ap.add_argument("--workspace", default=None, help="workspace root the chosen files' run dirs are relative to")
    ap.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    ap.add_argument("--batch-size", type=int, default=32, help="faces per forward pass")
    ap.add_argument("--multicrop", action="store_true", help="average over the multi-crop views")
    args = ap.parse_args(argv)
    try:
        _, errors = predict_files(args.inputs, args.model, args.out, args.annotate, args.video_fps or None,
                                  args.workspace, args.device, args.batch_size, args.multicrop)
    except (OSError, ValueError, pickle.UnpicklingError, yaml.YAMLError) as e:
        # a missing, malformed or hostile model file: one line naming it (the messages do), never a traceback
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 1 if len(errors) else 0
