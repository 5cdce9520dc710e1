"""``python -m aulib.predict IMAGES... --model ws/chosen/17au.yaml [--model ws/chosen/6au.yaml] [--format F]``:
AU predictions of chosen models on photos, folders and videos (:mod:`aulib.predict.predictor`),
written in the kit's format or as OpenFace 2 / py-feat write theirs (:mod:`aulib.predict.formats`).
The arguments are in :mod:`aulib.predict.parser`; ``python -m aulib.predict --help`` answers from
there, before this module (and torch) is imported.

Exit status: 0 every input was read, 1 some inputs could not be read (results
for the others are written), 2 a chosen file, a run's config.yaml or a
checkpoint is missing, malformed or refused (one line naming the file), or an
argument is wrong.
"""
from __future__ import annotations

import pickle
import sys

import yaml

from ..settings import one_line
from .parser import build_parser
from .predictor import predict_files


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _, errors = predict_files(args.inputs, args.model, args.out, args.annotate, args.video_fps or None,
                                  args.workspace, args.device, args.batch_size, args.multicrop, fmt=args.format)
    except (OSError, ValueError, pickle.UnpicklingError, yaml.YAMLError) as e:
        # a missing, malformed or hostile model file: one line naming it (the messages do), never a traceback
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 1 if len(errors) else 0
